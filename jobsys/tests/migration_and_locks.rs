//! The runtime's stages under migration and contention (owner-only `WorkerCore` behind the resume value,
//! the shared wait-list layer with its `Locked` guard, one spin lock): attempts to break it from
//! safe code (and with the `allow_migration` opt-in, as a user would use it). Each test asserts
//! an invariant that a stale or shared worker core, a double or lost wake of a wait node, or a
//! broken lock would violate.

mod common;

use common::WORKER_COUNTS;
use jobsys::sync::{Channel, RecvArm, SelectArm, SpinLock, ThisThread, select_timeout};
use jobsys::{Counter, Ctx, JobDecl, JobSystem, job_meta};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

/// A system of `n` workers in migration mode.
fn migrating(n: usize) -> JobSystem {
    #[cfg(feature = "fault-injection")]
    eprintln!(
        "fault injection: replay with JOBSYS_FAULT_SEED={}",
        jobsys::fault::seed()
    );
    // SAFETY: the jobs of these tests hold nothing thread-affine across a wait: they read
    // `std::thread::current()` afresh after each one and keep no thread-local borrow.
    unsafe { JobSystem::builder().workers(n).allow_migration() }
        .build()
        .unwrap()
}

/// xorshift, for jitter that does not depend on the clock.
fn jitter(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Which OS thread each worker index was seen on. A `Ctx` whose worker (and so its owner-only
/// core: tick, random stream, batched decrements) were stale after a switch would name one
/// worker while running on another's thread.
struct Seen {
    threads: Vec<OnceLock<ThreadId>>,
    mismatches: AtomicUsize,
    checks: AtomicUsize,
}

impl Seen {
    fn new(n: usize) -> Self {
        Self {
            threads: (0..n).map(|_| OnceLock::new()).collect(),
            mismatches: AtomicUsize::new(0),
            checks: AtomicUsize::new(0),
        }
    }

    fn check(&self, ctx: &Ctx) {
        let me = std::thread::current().id();
        let first = *self.threads[ctx.worker_index()].get_or_init(|| me);
        if first != me {
            self.mismatches.fetch_add(1, Ordering::Relaxed);
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
    }

    /// No index was seen on two threads, and no thread under two indices.
    fn assert_coherent(&self, what: &str) {
        assert_eq!(self.mismatches.load(Ordering::Relaxed), 0, "{what}");
        let ids: Vec<ThreadId> = self
            .threads
            .iter()
            .filter_map(|t| t.get().copied())
            .collect();
        for (i, a) in ids.iter().enumerate() {
            assert!(
                ids[i + 1..].iter().all(|b| b != a),
                "{what}: one thread under two worker indices"
            );
        }
        assert!(self.checks.load(Ordering::Relaxed) > 0, "{what}");
    }
}

/// A job that spins `data` (a count, not a pointer) rounds.
fn spin(_: &Ctx, data: *mut ()) {
    for _ in 0..data as usize {
        std::hint::spin_loop();
    }
}

/// Joins and scopes whose children run inline and wait (so a fiber suspends inside the
/// inline-children pass, and may come back on another worker), checking after every wait that
/// the `Ctx` names the thread it runs on.
fn tree(ctx: &Ctx, seen: &Seen, depth: u32) -> u64 {
    seen.check(ctx);
    if depth == 0 {
        return 1;
    }
    let (a, b) = ctx.join(
        |c| tree(c, seen, depth - 1),
        |c| {
            let r = tree(c, seen, depth - 1);
            c.yield_now();
            seen.check(c);
            r
        },
    );
    seen.check(ctx);
    let extra = AtomicU64::new(0);
    ctx.scope(|s| {
        for _ in 0..2 {
            s.spawn(|s| {
                seen.check(s);
                s.scope(|inner| {
                    inner.spawn(|i| {
                        seen.check(i);
                        extra.fetch_add(1, Ordering::Relaxed);
                    });
                });
                seen.check(s);
            });
        }
    });
    seen.check(ctx);
    a + b + extra.load(Ordering::Relaxed)
}

/// With migration, a fiber that waits inside the inline-children pass (an inline child that
/// waited, a join's `b`, nested scopes, yields) reads its worker and owner-only core afresh:
/// every check after a wait finds the `Ctx` naming the thread it runs on, results are exact
/// and no wake-up is lost.
#[test]
fn with_migration_the_ctx_names_the_thread_it_runs_on_after_every_wait() {
    // tree(d) = 2 tree(d-1) + 2, tree(0) = 1: 3·2^d − 2.
    const DEPTH: u32 = 9;
    for n in WORKER_COUNTS {
        let jobs = migrating(n);
        let seen = Seen::new(n);
        for _ in 0..3 {
            let r = jobs.run(|ctx| tree(ctx, &seen, DEPTH));
            assert_eq!(r, 3 * (1 << DEPTH) - 2, "{n} workers");
        }
        seen.assert_coherent(&format!("{n} workers"));
        assert_eq!(jobs.lost_wakeups(), 0, "{n} workers");
    }
}

/// Batched decrements (the worker's debt) across waits that migrate: waits for non-zero
/// targets on batches of tiny jobs, some of which wait themselves. A debt left on a stale core
/// would never be paid (the wait hangs) or paid twice (the counter goes below zero: abort).
#[test]
fn with_migration_batched_decrements_are_paid_once_for_nonzero_targets() {
    fn child(ctx: &Ctx, data: *mut ()) {
        let k = data as usize;
        if k.is_multiple_of(7) {
            // A wait in the middle of a run of same-counter jobs: the debt is paid first, and
            // the fiber may come back on another worker with another core.
            let _ = ctx.join(|_| k, |c| c.yield_now());
        } else {
            spin(ctx, (k % 50) as *mut ());
        }
    }
    const N: usize = 600;
    for n in WORKER_COUNTS {
        let jobs = migrating(n);
        let seen = Seen::new(n);
        jobs.run(|ctx| {
            let decls: Vec<JobDecl> = (0..N)
                .map(|k| JobDecl::new(job_meta!("child"), child, k as *mut ()))
                .collect();
            for round in 0..20 {
                let counter = Counter::new();
                // SAFETY: decls and counter outlive the jobs: we wait for zero below.
                unsafe { ctx.run_jobs(&decls, &counter) };
                let target = (round * 37 % N) as u32;
                ctx.wait_for_counter(&counter, target);
                seen.check(ctx);
                assert!(counter.value() <= target, "{n} workers, round {round}");
                ctx.wait_for_counter(&counter, 0);
                seen.check(ctx);
                assert_eq!(counter.value(), 0);
            }
        });
        seen.assert_coherent(&format!("{n} workers"));
        assert_eq!(jobs.lost_wakeups(), 0, "{n} workers");
    }
}

/// Timed counter waits racing the decrement that reaches their target, with migration: the
/// timer's cancel and the decrement's wake settle under the bucket lock who unlinks the node.
/// A node woken twice trips the fiber state assertion (abort); a lost one hangs; `true` must
/// mean the target was reached.
#[test]
fn with_migration_timed_counter_waits_racing_decrements_wake_once() {
    for n in WORKER_COUNTS {
        let jobs = migrating(n);
        let seen = Seen::new(n);
        let (timed_out, reached) = (AtomicUsize::new(0), AtomicUsize::new(0));
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for w in 0..4u64 {
                    let (seen, timed_out, reached) = (&seen, &timed_out, &reached);
                    s.spawn(move |s| {
                        let mut seed = w * 0x9E37 + 5;
                        for _ in 0..100 {
                            let counter = Counter::new();
                            let decls: Vec<JobDecl> = (0..3)
                                .map(|_| {
                                    let spins = jitter(&mut seed) % 4000;
                                    JobDecl::new(job_meta!("spin"), spin, spins as usize as *mut ())
                                })
                                .collect();
                            // SAFETY: decls and counter outlive the jobs (waited for below).
                            unsafe { s.run_jobs(&decls, &counter) };
                            let t = Duration::from_micros(jitter(&mut seed) % 40);
                            let target = (jitter(&mut seed) % 2) as u32;
                            if s.wait_for_counter_timeout(&counter, target, t) {
                                assert!(counter.is_done(target), "true means reached");
                                reached.fetch_add(1, Ordering::Relaxed);
                            } else {
                                timed_out.fetch_add(1, Ordering::Relaxed);
                            }
                            seen.check(s);
                            s.wait_for_counter(&counter, 0);
                            seen.check(s);
                        }
                    });
                }
            });
        });
        assert_eq!(
            timed_out.load(Ordering::Relaxed) + reached.load(Ordering::Relaxed),
            400,
            "{n} workers"
        );
        seen.assert_coherent(&format!("{n} workers"));
        assert_eq!(jobs.lost_wakeups(), 0, "{n} workers");
    }
}

/// Selects with timeouts (group nodes on two channels, claimed by a send or by the timer's
/// cancel) racing senders, on fibers that may migrate and on a plain thread: every message is
/// received exactly once, and each finished select leaves no node behind (a node freed while
/// still linked would be dereferenced by a later send).
#[test]
fn with_migration_select_timeouts_racing_sends_receive_every_message_once() {
    const EACH: usize = 400;
    for n in WORKER_COUNTS {
        let jobs = migrating(n);
        let seen = Seen::new(n);
        let (a, b) = (Channel::<usize>::new(1), Channel::<usize>::new(1));
        let got: Vec<AtomicUsize> = (0..2 * EACH).map(|_| AtomicUsize::new(0)).collect();
        let closed = AtomicUsize::new(0);
        let receive = |blocker: &dyn Fn(&mut [&mut dyn SelectArm]) -> Option<usize>,
                       on_fiber: Option<&Ctx>| {
            let (mut ra, mut rb) = (RecvArm::new(&a), RecvArm::new(&b));
            let mut done = [false, false];
            while !(done[0] && done[1]) {
                // A closed arm completes at once: select only over the open ones, or a
                // receiver would spin on it and starve the other sender on one worker.
                let arm = match done {
                    [false, false] => blocker(&mut [&mut ra, &mut rb]),
                    [true, false] => blocker(&mut [&mut rb]).map(|_| 1),
                    _ => blocker(&mut [&mut ra]).map(|_| 0),
                };
                if let Some(c) = on_fiber {
                    seen.check(c);
                }
                let taken = match arm {
                    Some(0) => ra.take(),
                    Some(1) => rb.take(),
                    Some(_) => unreachable!(),
                    None => continue,
                };
                match taken {
                    Some(Ok(v)) => {
                        got[v].fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Err(_)) => {
                        let i = arm.unwrap();
                        if !done[i] {
                            done[i] = true;
                            closed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => unreachable!("the chosen arm holds its outcome"),
                }
            }
        };
        std::thread::scope(|t| {
            t.spawn(|| {
                receive(
                    &|arms| select_timeout(&ThisThread, arms, Duration::from_micros(30)),
                    None,
                )
            });
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    for (k, ch) in [&a, &b].into_iter().enumerate() {
                        s.spawn(move |s| {
                            let mut seed = k as u64 * 31 + 7;
                            for i in 0..EACH {
                                if jitter(&mut seed).is_multiple_of(3) {
                                    s.yield_now();
                                }
                                ch.send(s, k * EACH + i).unwrap();
                            }
                            // Receivers drain what is left, then see the close.
                            ch.close();
                        });
                    }
                    for _ in 0..2 {
                        s.spawn(|s| {
                            let ctx: &Ctx = s;
                            receive(
                                &|arms| select_timeout(ctx, arms, Duration::from_micros(20)),
                                Some(ctx),
                            );
                        });
                    }
                });
            });
        });
        // Each of the three receivers saw each channel close once.
        assert_eq!(closed.load(Ordering::Relaxed), 6, "{n} workers");
        for (v, c) in got.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), 1, "{n} workers: message {v}");
        }
        seen.assert_coherent(&format!("{n} workers"));
        assert_eq!(jobs.lost_wakeups(), 0, "{n} workers");
    }
}

/// Worker 0's owner-only core lives in the `JobSystem` and is reached by fibers through a raw
/// pointer: moving the system between runs (out of a `Box`, whose memory is freed, into a
/// `Vec`) must leave no fiber on the old address. Idle pooled fibers and parked ones from an
/// earlier run resume with the new one (under AddressSanitizer a stale use is a report).
#[test]
fn worker_0_core_follows_the_system_when_it_moves_between_runs() {
    for n in WORKER_COUNTS {
        let boxed = Box::new(common::system(n));
        let seen = Seen::new(n);
        let batch = |jobs: &JobSystem| {
            jobs.run(|ctx| {
                let decls: Vec<JobDecl> = (0..300usize)
                    .map(|k| JobDecl::new(job_meta!("spin"), spin, (k % 9) as *mut ()))
                    .collect();
                let counter = Counter::new();
                // SAFETY: decls and counter outlive the jobs: we wait for zero below.
                unsafe { ctx.run_jobs(&decls, &counter) };
                ctx.wait_for_counter(&counter, 100);
                seen.check(ctx);
                ctx.wait_for_counter(&counter, 0);
                seen.check(ctx);
                assert_eq!(ctx.worker_index(), 0, "run's closure runs on worker 0");
                tree(ctx, &seen, 5)
            })
        };
        assert_eq!(batch(&boxed), 3 * 32 - 2);
        let moved: JobSystem = *boxed; // the Box's memory is freed here
        assert_eq!(batch(&moved), 3 * 32 - 2);
        let mut v = Vec::with_capacity(1);
        v.push(moved);
        assert_eq!(batch(&v[0]), 3 * 32 - 2);
        let again = v.pop().unwrap();
        drop(v);
        assert_eq!(batch(&again), 3 * 32 - 2);
        assert_eq!(again.lost_wakeups(), 0, "{n} workers");
        seen.assert_coherent(&format!("{n} workers"));
        drop(again);
    }
}

/// One spin lock for the runtime and the public `SpinLock`: CAS first, then test-and-test-and-
/// set. Plain (non-atomic) increments under it from many jobs and two plain threads add up.
#[test]
fn spin_lock_excludes_jobs_and_threads() {
    const PER_JOB: u64 = 200;
    const JOBS: u64 = 64;
    const PER_THREAD: u64 = 20_000;
    for n in WORKER_COUNTS {
        let jobs = common::system(n);
        let lock = SpinLock::new((0u64, 0u64));
        std::thread::scope(|t| {
            for _ in 0..2 {
                t.spawn(|| {
                    for _ in 0..PER_THREAD {
                        let mut g = lock.lock();
                        // Two plain fields changed together: a torn critical section shows.
                        g.0 += 1;
                        g.1 += 2;
                    }
                });
            }
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    for _ in 0..JOBS {
                        s.spawn(|_| {
                            for _ in 0..PER_JOB {
                                // Both entries: try_lock (no spin), then lock.
                                let mut g = lock.try_lock().unwrap_or_else(|| lock.lock());
                                g.0 += 1;
                                g.1 += 2;
                            }
                        });
                    }
                });
            });
        });
        let (a, b) = lock.into_inner();
        let total = JOBS * PER_JOB + 2 * PER_THREAD;
        assert_eq!((a, b), (total, 2 * total), "{n} workers");
    }
}

/// The public `SpinLock` over an unsized value (the wrapper and the runtime lock are both
/// `?Sized`).
#[test]
fn an_unsized_spin_lock_locks() {
    let lock: Box<SpinLock<[u32]>> = Box::new(SpinLock::new([1, 2, 3]));
    lock.lock()[1] = 20;
    assert_eq!(&*lock.lock(), &[1, 20, 3]);
    let g = lock.try_lock().unwrap();
    assert!(lock.try_lock().is_none(), "held");
    drop(g);
    assert!(lock.try_lock().is_some(), "released");
}

/// The message of a caught panic.
fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Yields while holding a guard of `lock` taken with `try_lock` or `lock`; returns the panic
/// message (debug builds).
fn yield_under_guard(jobs: &JobSystem, lock: &SpinLock<u32>, via_try: bool) -> String {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            let _g = if via_try {
                lock.try_lock().unwrap()
            } else {
                lock.lock()
            };
            ctx.yield_now();
        })
    }));
    let msg = message(r.expect_err("a yield under a SpinLock guard must panic in debug"));
    // The guard unwound with the panic: the lock is free, and waits work again once the guard
    // is gone.
    assert!(lock.try_lock().is_some());
    jobs.run(|ctx| {
        drop(lock.try_lock().unwrap());
        drop(lock.lock());
        ctx.yield_now();
    });
    msg
}

/// A `lock` guard is a no-suspend region (debug builds), reported at the caller's line.
#[test]
#[cfg_attr(not(debug_assertions), ignore = "regions are checked in debug builds")]
fn a_lock_guard_is_a_no_suspend_region_named_at_the_caller() {
    let jobs = common::system(2);
    let lock = SpinLock::new(0u32);
    let msg = yield_under_guard(&jobs, &lock, false);
    assert!(
        msg.contains("Ctx::yield_now inside a no-suspend region")
            && msg.contains("tests/migration_and_locks.rs"),
        "{msg}"
    );
}

/// A `try_lock` guard is a no-suspend region too, and the report names the caller's line
/// like `lock`'s does — not a line inside jobsys (`#[track_caller]` does not reach into the
/// closure that built the guard).
#[test]
#[cfg_attr(not(debug_assertions), ignore = "regions are checked in debug builds")]
fn a_try_lock_guard_is_a_no_suspend_region_named_at_the_caller() {
    let jobs = common::system(2);
    let lock = SpinLock::new(0u32);
    let msg = yield_under_guard(&jobs, &lock, true);
    assert!(
        msg.contains("Ctx::yield_now inside a no-suspend region"),
        "{msg}"
    );
    assert!(
        msg.contains("tests/migration_and_locks.rs") && !msg.contains("src/sync/spin.rs"),
        "the report must name where try_lock was called: {msg}"
    );
}

/// A plain thread's timed counter wait racing the last decrement (the thread cancels its own
/// node under the lock, or the decrement owns the wake): `true` means reached, and every wait
/// ends.
#[test]
fn thread_timed_counter_waits_racing_the_last_job() {
    // At least one worker thread besides worker 0, which runs nothing outside `run`.
    for n in [2, 4, 8] {
        let jobs = common::system(n);
        let handle = jobs.handle();
        let mut seed = 99u64;
        let mut outcomes = [0usize; 2];
        for _ in 0..300 {
            let counter = Counter::new();
            let decls = [JobDecl::new(
                job_meta!("spin"),
                spin,
                (jitter(&mut seed) % 5000) as usize as *mut (),
            )];
            // SAFETY: decls and counter outlive the job: we wait for zero below.
            unsafe { handle.run_jobs(&decls, &counter) };
            let t = Duration::from_micros(jitter(&mut seed) % 30);
            let r = handle.wait_for_counter_timeout(&counter, 0, t);
            assert!(!r || counter.is_done(0), "true means reached");
            outcomes[usize::from(r)] += 1;
            handle.wait_for_counter(&counter, 0);
        }
        assert_eq!(outcomes[0] + outcomes[1], 300);
        // Drop with nothing left: the system drains.
        drop(jobs);
    }
}
