//! The core runtime's behaviour, across worker counts {1, 2, 4, 8}.

mod common;

use common::{each_worker_count, system};
use jobsys::{Affinity, Counter, Ctx, JobDecl, JobMeta, JobSystem, StackClass, job_meta};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};

/// Asserts every flag was bumped exactly once (a job lost or run twice fails it).
fn assert_each_ran_once(flags: &[AtomicU8], what: &str) {
    let bad = flags
        .iter()
        .filter(|f| f.load(Ordering::Relaxed) != 1)
        .count();
    assert_eq!(bad, 0, "{bad} jobs not run exactly once: {what}");
}

fn bump_u8(_: &Ctx, data: *mut ()) {
    // SAFETY: every declaration points at one live `AtomicU8` of the test's flag array.
    unsafe { &*(data as *const AtomicU8) }.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn a_million_batch_jobs_each_run_exactly_once() {
    const N: usize = 1_000_000;
    let meta = job_meta!("bump");
    let flags: Vec<AtomicU8> = (0..N).map(|_| AtomicU8::new(0)).collect();
    let decls: Vec<JobDecl> = flags
        .iter()
        .map(|f| JobDecl::new(meta, bump_u8, f as *const AtomicU8 as *mut ()))
        .collect();
    each_worker_count(|jobs, n| {
        flags.iter().for_each(|f| f.store(0, Ordering::Relaxed));
        jobs.run(|ctx| {
            let counter = Counter::new();
            // SAFETY: `decls`, `flags` and `counter` outlive the wait below.
            unsafe { ctx.run_jobs(&decls, &counter) };
            ctx.wait_for_counter(&counter, 0);
            assert!(!counter.is_poisoned());
        });
        assert_each_ran_once(&flags, &format!("batch at {n} workers"));
    });
}

#[test]
fn a_million_scope_spawns_each_run_exactly_once() {
    const N: usize = 1_000_000;
    let flags: Vec<AtomicU8> = (0..N).map(|_| AtomicU8::new(0)).collect();
    each_worker_count(|jobs, n| {
        flags.iter().for_each(|f| f.store(0, Ordering::Relaxed));
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for f in &flags {
                    s.spawn(move |_| {
                        f.fetch_add(1, Ordering::Relaxed);
                    });
                }
            })
        });
        assert_each_ran_once(&flags, &format!("scope spawns at {n} workers"));
    });
}

/// One level of the chain: submit one Large child on a counter in this frame and wait for it.
fn chain_level(ctx: &Ctx, data: *mut ()) {
    // SAFETY: `data` is the `ChainState` of the test, alive for the whole run.
    let state = unsafe { &*(data as *const ChainState) };
    let depth = state.depth.fetch_add(1, Ordering::Relaxed) + 1;
    state.max_fibers_seen.fetch_max(depth, Ordering::Relaxed);
    if depth < state.target {
        let child = [JobDecl::new(&CHAIN, chain_level, data)];
        let counter = Counter::new();
        // SAFETY: `child` and `counter` live in this frame until the wait returns.
        unsafe { ctx.run_jobs(&child, &counter) };
        ctx.wait_for_counter(&counter, 0);
    }
}

static CHAIN: JobMeta = JobMeta::new("chain", file!(), line!()).stack(StackClass::Large);

struct ChainState {
    depth: AtomicU32,
    max_fibers_seen: AtomicU32,
    target: u32,
}

/// A chain of 500 `Large` levels, each submitting the next and waiting for it. On one worker
/// every level runs inline while its fiber has the headroom, so 500 levels fit in 16 fibers.
/// With thieves, a level another worker steals starts on a fiber of its own, so how
/// many fibers the chain holds depends on the race (up to one a level; more still where frames
/// are bigger, as under AddressSanitizer): there the pool has a fiber for every level, and the
/// test checks that the chain completes whatever the thieves do.
#[test]
fn a_chain_of_500_nested_waits_fits_in_16_fibers_because_children_run_inline() {
    for n in common::WORKER_COUNTS {
        let large = if n == 1 {
            (8, 512 * 1024)
        } else {
            (520, 128 * 1024)
        };
        let jobs = JobSystem::builder()
            .workers(n)
            .small_fibers(8, 64 * 1024)
            .large_fibers(large.0, large.1)
            .build()
            .unwrap();
        let state = ChainState {
            depth: AtomicU32::new(0),
            max_fibers_seen: AtomicU32::new(0),
            target: 500,
        };
        jobs.run(|ctx| {
            let first = [JobDecl::new(
                &CHAIN,
                chain_level,
                &state as *const ChainState as *mut (),
            )];
            let counter = Counter::new();
            // SAFETY: everything lives until the wait returns.
            unsafe { ctx.run_jobs(&first, &counter) };
            ctx.wait_for_counter(&counter, 0);
        });
        assert_eq!(
            state.depth.load(Ordering::Relaxed),
            500,
            "chain incomplete at {n} workers"
        );
    }
}

fn slow_bump(ctx: &Ctx, data: *mut ()) {
    let _ = ctx;
    // SAFETY: points at the test's live `AtomicUsize`.
    unsafe { &*(data as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn waits_for_non_zero_values_return_once_the_count_reaches_them() {
    each_worker_count(|jobs, n| {
        let done = AtomicUsize::new(0);
        let meta = job_meta!("partial");
        let decls: Vec<JobDecl> = (0..64)
            .map(|_| JobDecl::new(meta, slow_bump, &done as *const _ as *mut ()))
            .collect();
        jobs.run(|ctx| {
            let counter = Counter::new();
            // SAFETY: all alive until the final wait.
            unsafe { ctx.run_jobs(&decls, &counter) };
            for target in [48, 32, 16, 1] {
                ctx.wait_for_counter(&counter, target);
                let v = counter.value();
                assert!(
                    v <= target,
                    "woke at {v} waiting for {target} ({n} workers)"
                );
                // At most `v` jobs are unfinished, so at least 64 - v have finished.
                assert!(done.load(Ordering::SeqCst) >= 64 - v as usize);
            }
            ctx.wait_for_counter(&counter, 0);
            assert_eq!(done.load(Ordering::SeqCst), 64);
        });
    });
}

#[test]
fn scopes_borrow_and_mutate_stack_data() {
    each_worker_count(|jobs, n| {
        let mut grid = [[0u32; 64]; 64];
        let total = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for (y, row) in grid.iter_mut().enumerate() {
                    let total = &total;
                    s.spawn(move |s| {
                        // nested scope inside a job, borrowing the row
                        s.scope(|inner| {
                            for (x, cell) in row.iter_mut().enumerate() {
                                inner.spawn(move |_| *cell = (y * 64 + x) as u32);
                            }
                        });
                        total.fetch_add(row.iter().map(|&c| c as usize).sum(), Ordering::Relaxed);
                    });
                }
            });
        });
        for (i, cell) in grid.iter().flatten().enumerate() {
            assert_eq!(*cell as usize, i, "cell {i} at {n} workers");
        }
        assert_eq!(total.load(Ordering::Relaxed), (0..4096).sum::<usize>());
    });
}

fn fib(ctx: &Ctx, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = ctx.join(|c| fib(c, n - 1), |c| fib(c, n - 2));
    a + b
}

#[test]
fn join_computes_fib() {
    each_worker_count(|jobs, n| {
        assert_eq!(jobs.run(|ctx| fib(ctx, 22)), 17711, "{n} workers");
    });
}

#[test]
fn a_thousand_panicking_jobs_reach_their_owners_and_the_system_stays_healthy() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    each_worker_count(|jobs, n| {
        // Scope: the first panic is re-raised in the owner, after every job ran.
        let ran = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    for i in 0..1000 {
                        let ran = &ran;
                        s.spawn(move |_| {
                            ran.fetch_add(1, Ordering::Relaxed);
                            panic!("job {i} failed");
                        });
                    }
                })
            })
        }));
        let payload = caught.expect_err("the scope must re-raise a job panic");
        assert!(
            payload
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with("job "))
        );
        assert_eq!(
            ran.load(Ordering::Relaxed),
            1000,
            "every job ran despite panics ({n} workers)"
        );
        // Raw batch: the counter is poisoned, the waiter is not unwound.
        let decls: Vec<JobDecl> = (0..1000)
            .map(|_| {
                JobDecl::new(
                    job_meta!("boom"),
                    |_, _| panic!("raw"),
                    std::ptr::null_mut(),
                )
            })
            .collect();
        jobs.run(|ctx| {
            let c = Counter::new();
            // SAFETY: alive until the wait.
            unsafe { ctx.run_jobs(&decls, &c) };
            ctx.wait_for_counter(&c, 0);
            assert!(c.is_poisoned());
        });
        // Join: a panic in the stolen half reaches the joiner.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            jobs.run(|ctx| ctx.join(|_| 1, |_| -> u32 { panic!("b") }))
        }));
        assert!(r.is_err());
        // Healthy afterwards: every worker still runs jobs.
        assert_eq!(jobs.run(|ctx| fib(ctx, 18)), 2584);
    });
    std::panic::set_hook(hook);
}

/// The `'static` meta of a job pinned to worker `k` (`k` < 8, the most workers these tests
/// build) — static, so no test leaks one per use (LeakSanitizer would report it).
fn pinned_meta(k: usize) -> &'static JobMeta {
    static PINNED: [JobMeta; 8] = {
        let mut m = [const { JobMeta::new("pinned", file!(), line!()) }; 8];
        let mut k = 0;
        while k < 8 {
            m[k] = JobMeta::new("pinned", file!(), line!()).affinity(Affinity::Worker(k));
            k += 1;
        }
        m
    };
    &PINNED[k]
}

#[test]
fn pinned_jobs_run_only_on_their_worker() {
    each_worker_count(|jobs, n| {
        for target in 0..n {
            let wrong = AtomicUsize::new(0);
            let ran = AtomicUsize::new(0);
            let meta = pinned_meta(target);
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    for _ in 0..200 {
                        s.spawn(|s| {
                            // spawned from arbitrary workers
                            s.spawn_with(meta, |s| {
                                if s.worker_index() != target {
                                    wrong.fetch_add(1, Ordering::Relaxed);
                                }
                                ran.fetch_add(1, Ordering::Relaxed);
                                // a wait inside a pinned job resumes on the same worker
                                let (_, _) = s.join(|_| (), |_| ());
                                if s.worker_index() != target {
                                    wrong.fetch_add(1, Ordering::Relaxed);
                                }
                            });
                        });
                    }
                });
            });
            assert_eq!(ran.load(Ordering::Relaxed), 200);
            assert_eq!(
                wrong.load(Ordering::Relaxed),
                0,
                "pinned to {target} of {n}"
            );
        }
    });
}

#[test]
fn a_parked_job_resumes_on_the_worker_that_parked_it() {
    each_worker_count(|jobs, n| {
        let moved = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..256 {
                    s.spawn(|s| {
                        let before = s.worker_index();
                        let thread = std::thread::current().id();
                        s.scope(|inner| {
                            for _ in 0..8 {
                                inner.spawn(|_| std::hint::black_box(()));
                            }
                        });
                        if s.worker_index() != before || std::thread::current().id() != thread {
                            moved.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
        });
        assert_eq!(moved.load(Ordering::Relaxed), 0, "{n} workers");
    });
}

#[test]
fn foreign_threads_submit_and_wait() {
    each_worker_count(|jobs, n| {
        let handle = jobs.handle();
        let results: Vec<usize> = std::thread::scope(|t| {
            let workers: Vec<_> = (0..3)
                .map(|k| {
                    let handle = handle.clone();
                    t.spawn(move || {
                        let hits = AtomicUsize::new(0);
                        let decls: Vec<JobDecl> = (0..1000)
                            .map(|_| {
                                JobDecl::new(
                                    job_meta!("foreign"),
                                    slow_bump,
                                    &hits as *const _ as *mut (),
                                )
                            })
                            .collect();
                        let c = Counter::new();
                        // SAFETY: all alive until the blocking wait returns.
                        unsafe { handle.run_jobs(&decls, &c) };
                        handle.wait_for_counter(&c, 0);
                        let _ = k;
                        hits.load(Ordering::SeqCst)
                    })
                })
                .collect();
            // The owner thread runs as worker 0 meanwhile (with 1 worker nobody else would).
            jobs.run(|ctx| {
                while !workers.iter().all(|w| w.is_finished()) {
                    ctx.yield_now();
                    std::thread::yield_now();
                }
            });
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(results, vec![1000; 3], "{n} workers");
    });
}

#[test]
fn shutdown_drains_queued_work() {
    each_worker_count(|_, n| {
        let hits = AtomicUsize::new(0);
        let decls: Vec<JobDecl> = (0..10_000)
            .map(|_| JobDecl::new(job_meta!("late"), slow_bump, &hits as *const _ as *mut ()))
            .collect();
        let pinned_meta: &'static JobMeta = job_meta!("late-pinned", affinity(Affinity::Worker(0)));
        let pinned: Vec<JobDecl> = (0..100)
            .map(|_| JobDecl::new(pinned_meta, slow_bump, &hits as *const _ as *mut ()))
            .collect();
        let c = Counter::new();
        let c2 = Counter::new();
        {
            let jobs = system(n);
            let handle = jobs.handle();
            // SAFETY: decls, hits and counters outlive the system, whose drop runs them all.
            unsafe {
                handle.run_jobs(&decls, &c);
                handle.run_jobs(&pinned, &c2);
            }
            // Dropped with work queued (and pinned to worker 0, which never entered `run`).
        }
        assert_eq!(hits.load(Ordering::SeqCst), 10_100, "{n} workers");
        assert_eq!((c.value(), c2.value()), (0, 0));
    });
}

#[test]
fn a_handle_refuses_submissions_after_shutdown() {
    let jobs = system(2);
    let handle = jobs.handle();
    drop(jobs);
    let decls = [JobDecl::new(
        job_meta!("late"),
        |_, _| {},
        std::ptr::null_mut(),
    )];
    let c = Counter::new();
    // SAFETY: nothing runs: the call must panic before submitting.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        handle.run_jobs(&decls, &c)
    }));
    let msg = *r
        .expect_err("submission after shutdown must panic")
        .downcast::<&str>()
        .unwrap();
    assert!(
        msg.contains("after the JobSystem started shutting down"),
        "{msg}"
    );
    assert_eq!(c.value(), 0);
}

#[test]
fn yield_lets_other_jobs_run_on_a_single_worker() {
    let jobs = system(1);
    let flag = AtomicUsize::new(0);
    jobs.run(|ctx| {
        ctx.scope(|s| {
            s.spawn(|_| {
                flag.store(1, Ordering::SeqCst);
            });
            // With one worker the spawned job can only run if this fiber yields — and one
            // yield is enough: it lets one queued job run before this fiber continues (even
            // for the `run` closure, which the loop started itself).
            s.yield_now();
            assert_eq!(
                flag.load(Ordering::SeqCst),
                1,
                "one yield did not let the job run"
            );
        });
    });
    assert_eq!(flag.load(Ordering::SeqCst), 1);
}

#[test]
fn run_is_not_reentrant() {
    let jobs = system(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|_| jobs.run(|_| ()))
    }));
    let payload = r.expect_err("nested run must panic");
    assert!(
        payload
            .downcast_ref::<&str>()
            .is_some_and(|m| m.contains("inside run"))
    );
    // and the system is still usable
    assert_eq!(jobs.run(|ctx| fib(ctx, 10)), 55);
}

#[test]
fn a_counter_waited_through_one_system_is_counted_down_by_another() {
    let a = system(2);
    let b = system(2);
    let hits = AtomicUsize::new(0);
    let decls: Vec<JobDecl> = (0..2000)
        .map(|_| JobDecl::new(job_meta!("cross"), slow_bump, &hits as *const _ as *mut ()))
        .collect();
    let c = Counter::new();
    let (ha, hb) = (a.handle(), b.handle());
    std::thread::scope(|t| {
        t.spawn(|| {
            // SAFETY: `decls`, `hits` and `c` outlive the blocking wait below.
            unsafe { hb.run_jobs(&decls, &c) };
            ha.wait_for_counter(&c, 0);
            assert_eq!(hits.load(Ordering::SeqCst), 2000);
        });
    });
    assert_eq!(c.value(), 0);
}

#[test]
fn migration_mode_runs_the_same_work_correctly() {
    for n in common::WORKER_COUNTS {
        // SAFETY: these jobs hold nothing thread-affine across their waits.
        let jobs = unsafe { JobSystem::builder().workers(n).allow_migration() }
            .build()
            .unwrap();
        assert_eq!(jobs.run(|ctx| fib(ctx, 20)), 6765);
        let mut data = vec![1u64; 10_000];
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for chunk in data.chunks_mut(100) {
                    s.spawn(move |s| {
                        let (a, b) = chunk.split_at_mut(50);
                        s.join(
                            |_| a.iter_mut().for_each(|x| *x += 1),
                            |_| b.iter_mut().for_each(|x| *x += 1),
                        );
                    });
                }
            })
        });
        assert!(data.iter().all(|&x| x == 2), "{n} workers");
    }
}

#[test]
fn tiny_rings_overflow_to_the_injector_without_losing_or_repeating_jobs() {
    const N: usize = 200_000;
    let flags: Vec<AtomicU8> = (0..N).map(|_| AtomicU8::new(0)).collect();
    for n in common::WORKER_COUNTS {
        let jobs = JobSystem::builder()
            .workers(n)
            .queue_capacity(4)
            .queue_growth_limit(4)
            .build()
            .unwrap();
        flags.iter().for_each(|f| f.store(0, Ordering::Relaxed));
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for chunk in flags.chunks(1000) {
                    // nested spawners overflow their own rings concurrently
                    s.spawn(move |s| {
                        for f in chunk {
                            s.spawn(move |_| {
                                f.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                    });
                }
            })
        });
        assert_each_ran_once(&flags, &format!("tiny rings at {n} workers"));
    }
}

#[test]
fn migration_never_moves_pinned_jobs_or_the_run_closure() {
    for n in common::WORKER_COUNTS {
        // SAFETY: the test jobs hold nothing thread-affine across waits (they only compare ids).
        let jobs = unsafe { JobSystem::builder().workers(n).allow_migration() }
            .build()
            .unwrap();
        let moved = AtomicUsize::new(0);
        jobs.run(|ctx| {
            let main = std::thread::current().id();
            for _ in 0..50 {
                ctx.scope(|s| {
                    for k in 0..n {
                        let meta = pinned_meta(k);
                        let moved = &moved;
                        s.spawn_with(meta, move |s| {
                            let t = std::thread::current().id();
                            // waits whose children other workers may run
                            s.scope(|inner| {
                                (0..4).for_each(|_| {
                                    inner.spawn(|_| std::hint::black_box(()));
                                })
                            });
                            if std::thread::current().id() != t || s.worker_index() != k {
                                moved.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                });
                if std::thread::current().id() != main {
                    moved.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        assert_eq!(moved.load(Ordering::Relaxed), 0, "{n} workers");
    }
}

static LARGE_PARENT: JobMeta =
    JobMeta::new("large-parent", file!(), line!()).stack(StackClass::Large);

/// A worker must never hold a job it has no fiber for while the work that would free one sits
/// in its own queue (found in review: this hung forever).
#[test]
fn a_job_waiting_for_a_fiber_never_blocks_the_work_that_frees_one() {
    for n in common::WORKER_COUNTS {
        let jobs = JobSystem::builder()
            .workers(n)
            .large_fibers(1, 512 * 1024)
            .queue_capacity(4)
            .queue_growth_limit(4)
            .build()
            .unwrap();
        let done = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..8 {
                    s.spawn_with(&LARGE_PARENT, |s| {
                        s.scope(|t| {
                            for _ in 0..16 {
                                t.spawn(|_| {
                                    done.fetch_add(1, Ordering::Relaxed);
                                });
                            }
                        })
                    });
                }
            })
        });
        assert_eq!(done.load(Ordering::Relaxed), 128, "{n} workers");
    }
}
