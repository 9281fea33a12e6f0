//! Waits that guard borrowed data never unwind while the jobs they wait for still run.
//!
//! A scope's jobs borrow the scope's records, its state and the caller's stack; a join's `b`
//! lives in the joiner's frame. If the wait unwound early (a no-suspend check, a panicking
//! profiler hook), those would be freed under running jobs. Each test here would fail (an
//! assertion, or a use-after-free that ASan reports) if a wait unwound before its children
//! were done.

use jobsys::{Hint, JobSystem, job_meta};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The message of the panic that `r` must hold.
fn panic_message<T>(r: std::thread::Result<T>) -> String {
    let payload = r.err().expect("must panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|m| m.to_string()))
        .unwrap_or_default()
}

/// A scope whose body leaves a no-suspend region open at its wait: the wait runs or waits
/// for every spawned job first, and only then reports the region. With one worker the jobs
/// are still queued when the wait starts, so an early unwind would leave them unrun (and
/// later run them on freed records).
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "needs debug assertions: the region check that makes the wait panic exists only in debug builds"
)]
fn a_scope_wait_in_a_no_suspend_region_panics_only_after_its_jobs_finished() {
    for workers in [1, 2] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let ran = AtomicUsize::new(0);
        let mut data = vec![0u64; 64];
        let finished_before_panic = jobs.run(|ctx| {
            let r = catch_unwind(AssertUnwindSafe(|| {
                ctx.scope(|s| {
                    for chunk in data.chunks_mut(4) {
                        let ran = &ran;
                        s.spawn(move |_| {
                            chunk.iter_mut().for_each(|x| *x += 1);
                            ran.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    // Leaves a region open into the scope's wait (the misuse under test).
                    core::mem::forget(s.no_suspend());
                })
            }));
            let seen = ran.load(Ordering::SeqCst);
            let msg = panic_message(r);
            assert!(
                msg.contains("a counter wait inside a no-suspend region"),
                "{msg}"
            );
            seen
        });
        assert_eq!(
            finished_before_panic, 16,
            "the scope unwound before its jobs were done ({workers} workers)"
        );
        assert!(data.iter().all(|&x| x == 1));
        // The leaked region was closed when that job ended: waits work again.
        assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
    }
}

/// The usual mistake — a scope opened while a `SpinLock` guard is held — is refused before
/// the body runs, so nothing is spawned.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "needs debug assertions: the refusal is the debug-only no-suspend check"
)]
fn a_scope_or_join_under_a_spin_lock_guard_is_refused_before_spawning() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let lock = jobsys::sync::SpinLock::new(0u32);
    let ran = AtomicUsize::new(0);
    let msg = jobs.run(|ctx| {
        panic_message(catch_unwind(AssertUnwindSafe(|| {
            let _g = lock.lock();
            ctx.scope(|s| {
                s.spawn(|_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            });
        })))
    });
    assert!(
        msg.contains("Ctx::scope inside a no-suspend region"),
        "{msg}"
    );
    let msg = jobs.run(|ctx| {
        panic_message(catch_unwind(AssertUnwindSafe(|| {
            let _g = lock.lock();
            ctx.join(
                |_| (),
                |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                },
            )
        })))
    });
    assert!(
        msg.contains("Ctx::join inside a no-suspend region"),
        "{msg}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "nothing was spawned");
    assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
}

/// A join whose `a` leaves a region open: `b` (stolen or not) has finished before the join
/// reports it.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "needs debug assertions: the region check that makes the wait panic exists only in debug builds"
)]
fn a_join_wait_in_a_no_suspend_region_panics_only_after_b_finished() {
    for workers in [1, 2] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let b_done = AtomicUsize::new(0);
        let seen = jobs.run(|ctx| {
            let r = catch_unwind(AssertUnwindSafe(|| {
                ctx.join(
                    |c| {
                        // Leave a region open into the join's wait, and fail, so the join
                        // must wait for `b` instead of running it here.
                        core::mem::forget(c.no_suspend());
                        panic!("a failed");
                    },
                    |_| {
                        b_done.fetch_add(1, Ordering::SeqCst);
                    },
                )
            }));
            let seen = b_done.load(Ordering::SeqCst);
            assert!(
                panic_message(r).contains("inside a no-suspend region"),
                "the region is reported"
            );
            seen
        });
        assert_eq!(
            seen, 1,
            "the join unwound before `b` finished ({workers} workers)"
        );
    }
}

/// A fiber that suspends with a region open (a counter wait reports it only after the wait)
/// does not lend the region to the other fibers of its thread meanwhile.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "needs debug assertions: regions are tracked only in debug builds"
)]
fn a_region_stays_with_its_fiber_across_a_wait() {
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let other_waits_ok = AtomicUsize::new(0);
    let msg = jobs.run(|ctx| {
        panic_message(catch_unwind(AssertUnwindSafe(|| {
            ctx.scope(|s| {
                // Queued behind the body (not one of its inline children): runs on another
                // fiber of this only worker while the body parks.
                s.spawn_hinted(Hint::Fifo, job_meta!("other"), |s| {
                    s.yield_now();
                    s.scope(|s2| {
                        s2.spawn(|_| ());
                    });
                    other_waits_ok.fetch_add(1, Ordering::SeqCst);
                });
                core::mem::forget(s.no_suspend());
            })
        })))
    });
    assert!(msg.contains("inside a no-suspend region"), "{msg}");
    assert_eq!(other_waits_ok.load(Ordering::SeqCst), 1);
}

/// A `ProfileHooks` implementation is safe code; a panic in one must not unwind out of a
/// wait. It aborts the process with a message instead (checked in a child process).
#[cfg(feature = "profile")]
#[test]
fn a_panicking_profile_hook_aborts_instead_of_unwinding_a_wait() {
    if std::env::var_os("JOBSYS_CHILD").is_some() {
        struct Bad;
        impl jobsys::profile::ProfileHooks for Bad {
            fn wait_begin(&self, _worker: usize) {
                panic!("hook failure");
            }
        }
        assert!(jobsys::profile::set_hooks(&Bad));
        let jobs = JobSystem::builder().workers(1).build().unwrap();
        let mut data = [0u32; 8];
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for x in data.iter_mut() {
                    // Not inlined by the scope's wait, which therefore parks.
                    s.spawn_hinted(Hint::Fifo, job_meta!("queued"), move |_| *x += 1);
                }
            })
        });
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "a_panicking_profile_hook_aborts_instead_of_unwinding_a_wait",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("JOBSYS_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child must abort");
    assert!(
        stderr.contains("a ProfileHooks::wait_begin hook panicked"),
        "{stderr}"
    );
}

/// A panic payload whose `Drop` panics again, `depth` times.
struct Bomb(u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 > 0 {
            std::panic::panic_any(Bomb(self.0 - 1));
        }
    }
}

/// Two scope jobs panic with payloads whose drops panic twice over: the scope keeps one payload
/// and drops the other, and a raw job's payload is dropped where the counter is poisoned. Those
/// drops must not unwind through the scheduler (which would skip the job's completion and abort
/// the process, or free what the waiter still reads).
#[test]
fn payloads_whose_drop_panics_never_unwind_through_the_scheduler() {
    fn boom(_: &jobsys::Ctx, _: *mut ()) {
        std::panic::panic_any(Bomb(2));
    }
    for workers in [1, 2] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    s.spawn(|_| std::panic::panic_any(Bomb(2)));
                    s.spawn(|_| std::panic::panic_any(Bomb(2)));
                })
            })
        }));
        let mut kept = r
            .expect_err("the scope re-raises a job's panic")
            .downcast::<Bomb>()
            .expect("the re-raised payload is a job's");
        kept.0 = 0;

        let poisoned = jobs.run(|ctx| {
            let decls = [jobsys::JobDecl::new(
                job_meta!("boom"),
                boom,
                core::ptr::null_mut(),
            )];
            let counter = jobsys::Counter::new();
            // SAFETY: `boom` ignores its data; `decls` and `counter` outlive the wait.
            unsafe { ctx.run_jobs(&decls, &counter) };
            ctx.wait_for_counter(&counter, 0);
            counter.is_poisoned()
        });
        assert!(poisoned, "the raw job's panic poisons its counter");
    }
}

/// A lock guard the caller holds around `run` is the caller's, not the root job's: the root job
/// may wait (its fiber is not inside the caller's region).
#[test]
fn a_region_held_around_run_does_not_reach_the_root_job() {
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let lock = jobsys::sync::SpinLock::new(0u32);
    let mut guard = lock.lock();
    let sum = jobs.run(|ctx| {
        let (a, b) = ctx.join(|_| 1, |_| 2);
        ctx.scope(|s| {
            s.spawn(|_| ());
        });
        a + b
    });
    *guard += sum;
    drop(guard);
    assert_eq!(*lock.lock(), 3);
}
