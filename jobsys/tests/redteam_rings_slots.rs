//! Red-team attacks on the growable rings (growth limits, jobs taken exactly once while rings
//! grow under stealing), the slimmer spawn records (values with `Drop`, zero-sized and large
//! values, joined, dropped and leaked handles, panicking jobs: each value dropped exactly once
//! by whoever owns it), and nested systems on one thread.

use jobsys::{Counter, JobSystem};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};

/// A ring never holds more slots than `queue_growth_limit`, also when the limit is not a power
/// of two: one worker pushes more jobs than the limit onto its own ring, so some overflow.
#[test]
fn a_growth_limit_that_is_not_a_power_of_two_still_bounds_the_ring() {
    for (capacity, limit, pushes) in [
        (4usize, 4usize, 5usize),
        (4, 6, 7),
        (4, 7, 7),
        (8, 12, 12),
        (16, 100, 100),
    ] {
        let jobs = JobSystem::builder()
            .workers(1)
            .queue_capacity(capacity)
            .queue_growth_limit(limit)
            .build()
            .unwrap();
        let ran = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..pushes {
                    s.spawn(|_| {
                        ran.fetch_add(1, SeqCst);
                    });
                }
            })
        });
        assert_eq!(ran.load(SeqCst), pushes);
        assert!(
            jobs.worker_stats(0).overflowed > 0,
            "capacity {capacity}, limit {limit}: {pushes} jobs fitted in the ring without an \
             overflow, so it grew past its limit"
        );
    }
}

/// Rings that start at four slots grow while thieves steal from them: at 2, 4 and 8 workers
/// every job runs exactly once.
#[test]
fn jobs_run_exactly_once_while_rings_grow_under_stealing() {
    const N: usize = 40_000;
    for workers in [2, 4, 8] {
        let jobs = JobSystem::builder()
            .workers(workers)
            .queue_capacity(4)
            .build()
            .unwrap();
        let runs: Vec<AtomicU8> = (0..N).map(|_| AtomicU8::new(0)).collect();
        let runs = &runs;
        for _ in 0..3 {
            runs.iter().for_each(|r| r.store(0, SeqCst));
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    // Two spawners, so that rings grow on more than one worker.
                    for half in 0..2 {
                        s.spawn(move |s| {
                            for i in (half..N).step_by(2) {
                                s.spawn(move |_| {
                                    runs[i].fetch_add(1, SeqCst);
                                });
                            }
                        });
                    }
                })
            });
            let wrong: Vec<(usize, u8)> = runs
                .iter()
                .enumerate()
                .map(|(i, r)| (i, r.load(SeqCst)))
                .filter(|&(_, r)| r != 1)
                .take(8)
                .collect();
            assert!(wrong.is_empty(), "{workers} workers: (job, runs) {wrong:?}");
        }
    }
}

static DROPS: AtomicUsize = AtomicUsize::new(0);

/// A value that counts its drops.
struct Counted<const N: usize>([u8; N]);

impl<const N: usize> Drop for Counted<N> {
    fn drop(&mut self) {
        DROPS.fetch_add(1, SeqCst);
    }
}

/// Every scoped handle outcome, for a value type `T`: joined (the caller drops it), dropped
/// before or after the job ran (the slot's owner drops it), leaked with `mem::forget` (never
/// dropped: a leak, not a double drop), and a panicking job (no value to drop).
fn handle_outcomes<const N: usize>(workers: usize) {
    let jobs = JobSystem::builder().workers(workers).build().unwrap();
    for _ in 0..50 {
        DROPS.store(0, SeqCst);
        let gate = Counter::with_value(1);
        let gate = &gate;
        jobs.run(|ctx| {
            ctx.scope(|s| {
                let joined = s.spawn(|_| Counted::<N>([7; N]));
                let dropped_early = s.spawn(move |s| {
                    s.wait_for_counter(gate, 0);
                    Counted::<N>([1; N])
                });
                let dropped_late = s.spawn(|_| Counted::<N>([2; N]));
                let leaked = s.spawn(|_| Counted::<N>([3; N]));
                let panicked = s.spawn(|_| -> Counted<N> { panic!("boom") });
                drop(dropped_early);
                gate.sub(1);
                let v = joined.join(s);
                assert_eq!(v.0, [7; N]);
                drop(v);
                while !dropped_late.is_finished() {
                    s.yield_now();
                }
                drop(dropped_late);
                std::mem::forget(leaked);
                let r = catch_unwind(AssertUnwindSafe(|| panicked.join(s)));
                assert!(r.is_err());
            })
        });
        assert_eq!(
            DROPS.load(SeqCst),
            3,
            "{N}-byte values on {workers} workers: joined, dropped early and dropped late are \
             dropped once each, the leaked one never"
        );
    }
}

#[test]
fn scoped_handle_values_are_dropped_exactly_once() {
    for workers in [1, 2, 4] {
        handle_outcomes::<0>(workers);
        handle_outcomes::<1>(workers);
        handle_outcomes::<4096>(workers);
    }
}

/// Nested systems on one thread: a job of system X builds and runs system Y (one worker: the
/// job's own thread), whose jobs finish scopes and release a counter that a fiber of X waits
/// on: the same-thread hand-off must not cross systems.
#[test]
fn nested_systems_wake_each_others_fibers_on_one_thread() {
    for workers in [1, 2] {
        let x = JobSystem::builder().workers(workers).build().unwrap();
        let done = AtomicUsize::new(0);
        let done = &done;
        for _ in 0..4 {
            x.run(|xc| {
                xc.scope(|xs| {
                    for _ in 0..4 {
                        xs.spawn(move |xc| {
                            let c = Counter::with_value(1);
                            let c = &c;
                            xc.join(
                                |xc| xc.wait_for_counter(c, 0),
                                |_| {
                                    let y = JobSystem::builder().workers(1).build().unwrap();
                                    y.run(|yc| {
                                        yc.scope(|ys| {
                                            for _ in 0..4 {
                                                ys.spawn(move |yc| {
                                                    yc.scope(|s| {
                                                        s.spawn(move |_| done.fetch_add(1, SeqCst));
                                                    })
                                                });
                                            }
                                        });
                                        c.sub(1);
                                    });
                                },
                            );
                        });
                    }
                })
            });
        }
        assert_eq!(done.load(SeqCst), 4 * 4 * 4);
    }
}
