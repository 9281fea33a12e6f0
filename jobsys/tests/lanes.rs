//! The blocking lane (`Ctx::blocking`), fiber sleeps (`Ctx::sleep`, `Ctx::sleep_until`),
//! worker start/stop hooks and `WorkerLocal`, across worker counts.

mod common;

use common::{WORKER_COUNTS, each_worker_count};
use jobsys::{JobSystem, WorkerLocal};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// How long a blocking call waits for its message before the test calls it a deadlock (a
/// failure bound only: the message comes as soon as its job runs).
const DEADLOCK: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Blocking lane

/// With one worker, a blocking call that waits for a message sent by another job returns: the
/// worker ran that job while the call blocked on a lane thread (had the call blocked the
/// worker, the sender could never run and the receive would time out). At more workers, as
/// many blocking calls as workers block at once, each waiting for a job spawned after it.
#[test]
fn a_blocking_call_leaves_its_worker_free() {
    each_worker_count(|jobs, n| {
        let got = jobs.run(|ctx| {
            let (tx, rx) = mpsc::channel::<u32>();
            let (got, ()) = ctx.join(
                |c| c.blocking(move || rx.recv_timeout(DEADLOCK)),
                |_| tx.send(7).unwrap(),
            );
            got
        });
        assert_eq!(got, Ok(7), "{n} workers: the sender never ran");

        let calls = 2 * n;
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..calls).map(|_| mpsc::channel()).unzip();
        let mut got = vec![None; calls];
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for (rx, out) in receivers.into_iter().zip(got.iter_mut()) {
                    s.spawn(move |s| *out = s.blocking(move || rx.recv_timeout(DEADLOCK).ok()));
                }
                for (i, tx) in senders.into_iter().enumerate() {
                    s.spawn(move |_| tx.send(i).unwrap());
                }
            })
        });
        let want: Vec<_> = (0..calls).map(Some).collect();
        assert_eq!(got, want, "{n} workers");
    });
}

/// The closure borrows the caller's stack (mutably) and runs on a lane thread, never on a
/// worker; its value comes back, and its panic is re-raised in the job, after which the
/// system goes on working.
#[test]
fn a_blocking_call_borrows_returns_and_reraises() {
    each_worker_count(|jobs, n| {
        let mut workers = HashMap::new();
        let worker_threads = Mutex::new(&mut workers);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..4 * n {
                    s.spawn(|s| {
                        let id = std::thread::current().id();
                        worker_threads.lock().unwrap().insert(id, s.worker_index());
                    });
                }
            })
        });
        let r = jobs.run(|ctx| {
            let mut buf = [0u8; 256];
            let (name, id) = ctx.blocking(|| {
                buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
                let t = std::thread::current();
                (t.name().map(str::to_owned), t.id())
            });
            assert_eq!(buf[200], 200);
            (name, id)
        });
        let (name, id) = r;
        assert!(
            name.as_deref()
                .is_some_and(|n| n.starts_with("jobsys-blocking-")),
            "{n} workers: ran on {name:?}"
        );
        assert!(!workers.contains_key(&id), "{n} workers: ran on a worker");

        let caught = jobs.run(|ctx| {
            catch_unwind(AssertUnwindSafe(|| {
                ctx.blocking(|| -> u32 { panic!("blocking boom") })
            }))
        });
        let payload = caught.expect_err("the closure's panic was not re-raised");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"blocking boom"));
        assert_eq!(jobs.run(|ctx| ctx.blocking(|| 5)), 5, "{n} workers");
    });
}

/// Every fiber of the pool waits in a blocking call at once (the calls meet at a barrier, so
/// all are in flight together): such waits end by themselves, so this is no deadlock — the
/// deadlock check would otherwise abort the process.
#[test]
fn every_fiber_in_a_blocking_call_is_no_deadlock() {
    const FIBERS: usize = 4;
    for n in WORKER_COUNTS {
        let jobs = JobSystem::builder()
            .workers(n)
            .small_fibers(FIBERS, 64 * 1024)
            .large_fibers(0, 0)
            .blocking_threads(FIBERS)
            .build()
            .unwrap();
        let meet = Barrier::new(FIBERS);
        let done = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..FIBERS - 1 {
                    s.spawn(|s| {
                        s.blocking(|| meet.wait());
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
                // The root's fiber is the last of the pool: it blocks too, before its scope
                // waits (and could run a child inline).
                ctx.blocking(|| meet.wait());
                done.fetch_add(1, Ordering::SeqCst);
            })
        });
        assert_eq!(done.load(Ordering::SeqCst), FIBERS, "{n} workers");
    }
}

/// With no lane threads, the closure runs inline on the worker (documented).
#[test]
fn zero_blocking_threads_run_inline() {
    let jobs = JobSystem::builder()
        .workers(2)
        .blocking_threads(0)
        .build()
        .unwrap();
    let (worker, ran_on) = jobs.run(|ctx| {
        (
            std::thread::current().id(),
            ctx.blocking(|| std::thread::current().id()),
        )
    });
    assert_eq!(worker, ran_on);
}

// ---------------------------------------------------------------------------------------------
// Sleep

/// Sleeps return no earlier than their deadlines (a correctness lower bound), at every worker
/// count, with several sleepers at once.
#[test]
fn sleeps_last_at_least_their_duration() {
    each_worker_count(|jobs, n| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for i in 0..2 * n {
                    s.spawn(move |s| {
                        let d = Duration::from_millis(1 + (i % 4) as u64);
                        let start = Instant::now();
                        s.sleep(d);
                        assert!(start.elapsed() >= d, "{n} workers: woke early");
                        let deadline = Instant::now() + d;
                        s.sleep_until(deadline);
                        assert!(Instant::now() >= deadline, "{n} workers: woke early");
                    });
                }
            });
            // Zero and past deadlines return at once.
            ctx.sleep(Duration::ZERO);
            ctx.sleep_until(Instant::now() - Duration::from_millis(1));
        });
    });
}

/// On one worker, the other half of a join runs while the first half sleeps: it sees the
/// sleeper started and not yet woken. (After the sleeper parks, the worker takes the queued job
/// before it resumes any fiber whose timer fired meanwhile, so this holds however long the
/// thread is descheduled. A sleep that blocked the thread would run the other half after it.)
#[test]
fn other_jobs_run_while_a_fiber_sleeps() {
    let jobs = common::system(1);
    let asleep = AtomicBool::new(false);
    let woke = AtomicBool::new(false);
    let seen = jobs.run(|ctx| {
        let ((), seen) = ctx.join(
            |c| {
                asleep.store(true, Ordering::SeqCst);
                c.sleep(Duration::from_millis(20));
                woke.store(true, Ordering::SeqCst);
            },
            |_| (asleep.load(Ordering::SeqCst), woke.load(Ordering::SeqCst)),
        );
        seen
    });
    assert_eq!(
        seen,
        (true, false),
        "the other job did not run during the sleep"
    );
}

// ---------------------------------------------------------------------------------------------
// Worker hooks

/// Start hooks run once per worker, on the thread that then runs that worker's jobs, all before
/// `build` returns; stop hooks once per worker during the drop, worker 0's on the thread that
/// built and drops the system.
#[test]
fn hooks_run_once_per_worker_on_its_thread() {
    for n in WORKER_COUNTS {
        type Log = Arc<Mutex<Vec<(usize, ThreadId, Option<String>, Option<usize>)>>>;
        let (starts, stops): (Log, Log) = Default::default();
        let (s1, s2) = (starts.clone(), stops.clone());
        let record = |log: &Log, w: &jobsys::WorkerInfo<'_>| {
            let t = std::thread::current().id();
            let name = w.thread_name.map(str::to_owned);
            log.lock().unwrap().push((w.index, t, name, w.core));
        };
        let jobs = JobSystem::builder()
            .workers(n)
            .on_worker_start(move |w| record(&s1, w))
            .on_worker_stop(move |w| record(&s2, w))
            .build()
            .unwrap();
        let me = std::thread::current().id();
        let started = starts.lock().unwrap().clone();
        assert_eq!(
            started.len(),
            n,
            "{n} workers: every start hook ran before build returned"
        );
        let mut thread_of = HashMap::new();
        for (index, thread, name, core) in &started {
            assert!(
                thread_of.insert(*index, *thread).is_none(),
                "{n} workers: worker {index} started twice"
            );
            assert_eq!(*core, None, "pinning is off");
            if *index == 0 {
                assert_eq!(*thread, me);
            } else {
                assert_eq!(
                    name.as_deref(),
                    Some(format!("jobsys-worker-{index}").as_str())
                );
            }
        }
        // Jobs run on the thread whose start hook named their worker.
        let mismatches = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..16 * n {
                    s.spawn(|s| {
                        if thread_of[&s.worker_index()] != std::thread::current().id() {
                            mismatches.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            })
        });
        assert_eq!(mismatches.load(Ordering::SeqCst), 0, "{n} workers");
        assert!(
            stops.lock().unwrap().is_empty(),
            "{n} workers: stopped early"
        );
        drop(jobs);
        let stopped = stops.lock().unwrap().clone();
        assert_eq!(
            stopped.len(),
            n,
            "{n} workers: every stop hook ran before drop returned"
        );
        for (index, thread, _, _) in &stopped {
            assert_eq!(
                thread_of[index], *thread,
                "{n} workers: worker {index} stopped elsewhere"
            );
        }
    }
}

/// With pinning on, the start hook reports the core each worker was pinned to — the same as
/// `JobSystem::pinned_cores`.
#[test]
fn hooks_report_the_pinned_core() {
    let cores = Arc::new(Mutex::new(HashMap::new()));
    let log = cores.clone();
    let jobs = JobSystem::builder()
        .workers(2)
        .pin_workers(true)
        .on_worker_start(move |w| {
            log.lock().unwrap().insert(w.index, w.core);
        })
        .build()
        .unwrap();
    let cores = cores.lock().unwrap().clone();
    for (i, pinned) in jobs.pinned_cores().iter().enumerate() {
        assert_eq!(cores[&i], *pinned, "worker {i}");
    }
}

// ---------------------------------------------------------------------------------------------
// WorkerLocal

/// Each job gets the value of the worker it runs on — also after a wait, when it may have
/// moved (migration mode) — and the per-worker tallies add up to every job.
#[test]
fn worker_local_is_per_worker_across_waits() {
    for migration in [false, true] {
        for n in WORKER_COUNTS {
            let mut b = JobSystem::builder().workers(n);
            if migration {
                // SAFETY: the jobs hold nothing thread-bound across their waits.
                b = unsafe { b.allow_migration() };
            }
            let jobs = b.build().unwrap();
            let mut local = WorkerLocal::new(n, |i| (i, 0u64));
            assert_eq!(local.len(), n);
            let wrong = AtomicUsize::new(0);
            const JOBS: u64 = 400;
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    for _ in 0..JOBS {
                        s.spawn(|s| {
                            let check = |ctx: &jobsys::Ctx| {
                                let here = ctx.worker_index();
                                local.with(ctx, |(owner, tally)| {
                                    if *owner != here {
                                        wrong.fetch_add(1, Ordering::SeqCst);
                                    }
                                    *tally += 1;
                                });
                            };
                            check(s);
                            // A wait: the job may resume on another worker (migration mode).
                            s.join(|_| std::hint::black_box(1), |_| std::hint::black_box(2));
                            check(s);
                        });
                    }
                })
            });
            assert_eq!(
                wrong.load(Ordering::SeqCst),
                0,
                "{n} workers, migration {migration}"
            );
            let total: u64 = local.iter_mut().map(|(_, t)| *t).sum();
            assert_eq!(total, 2 * JOBS, "{n} workers, migration {migration}");
            let owners: Vec<usize> = local.into_inner().into_iter().map(|(o, _)| o).collect();
            assert_eq!(owners, (0..n).collect::<Vec<_>>());
        }
    }
}

/// A `with` nested in another on the same worker panics instead of lending the value twice;
/// the value is lent again afterwards.
#[test]
fn worker_local_refuses_to_lend_twice() {
    each_worker_count(|jobs, n| {
        let local = WorkerLocal::new(n, |_| 0u32);
        let (nested, after) = jobs.run(|ctx| {
            let nested = catch_unwind(AssertUnwindSafe(|| {
                local.with(ctx, |v| {
                    *v += 1;
                    local.with(ctx, |w| *w += 1);
                })
            }));
            (nested.is_err(), local.with(ctx, |v| *v))
        });
        assert!(nested, "{n} workers: a nested with was not refused");
        assert_eq!(after, 1, "{n} workers");
    });
}

/// A `WorkerLocal` built for fewer workers than the system has refuses the others.
#[test]
#[should_panic(expected = "holds values for 1 workers")]
fn worker_local_for_too_few_workers_panics() {
    let jobs = common::system(2);
    let local = WorkerLocal::new(1, |_| ());
    jobs.run(|ctx| {
        ctx.scope(|s| {
            for _ in 0..64 {
                s.spawn(|s| local.with(s, |_| ()));
            }
        });
        // Worker 1 may have run none of them: make sure one runs there.
        let pinned = jobsys::job_meta!("on worker 1", affinity(jobsys::Affinity::Worker(1)));
        ctx.scope(|s| {
            s.spawn_with(pinned, |s| local.with(s, |_| ()));
        });
    });
}
