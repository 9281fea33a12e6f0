//! Job handles: scoped spawns return a `ScopedJobHandle`, detached spawns an owned
//! `JobHandle`; run-time `JobOptions`; the background lane at frame openings.

mod common;

use common::{WORKER_COUNTS, each_worker_count, system};
use jobsys::sync::{Event, EventKind};
use jobsys::{Affinity, Hint, JobOptions, JobSystem, Priority};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn panic_message<T>(r: std::thread::Result<T>) -> String {
    let payload = r.err().expect("must panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|m| m.to_string()))
        .unwrap_or_default()
}

/// Every scoped handle returns its own job's value.
#[test]
fn scoped_handles_return_values() {
    each_worker_count(|jobs, n| {
        let data: Vec<u64> = (0..1000).collect();
        let sums = jobs.run(|ctx| {
            ctx.scope(|s| {
                let handles: Vec<_> = data
                    .chunks(10)
                    .map(|c| s.spawn(move |_| c.iter().sum::<u64>()))
                    .collect();
                handles.into_iter().map(|h| h.join(s)).collect::<Vec<_>>()
            })
        });
        let want: Vec<u64> = data.chunks(10).map(|c| c.iter().sum()).collect();
        assert_eq!(sums, want, "{n} workers");
    });
}

/// `is_finished` is false while the job is held up and true once it returned.
#[test]
fn scoped_is_finished() {
    each_worker_count(|jobs, n| {
        let gate = Event::new(EventKind::Manual);
        let gate = &gate;
        jobs.run(|ctx| {
            ctx.scope(|s| {
                let h = s.spawn(move |s| {
                    gate.wait(s);
                    3u32
                });
                assert!(!h.is_finished(), "{n} workers");
                gate.set();
                while !h.is_finished() {
                    s.yield_now();
                }
                assert_eq!(h.join(s), 3);
            })
        });
    });
}

/// A joined panic reaches the joiner only: the scope returns normally.
#[test]
fn scoped_join_reraises_and_scope_does_not() {
    each_worker_count(|jobs, n| {
        let out = jobs.run(|ctx| {
            ctx.scope(|s| {
                let h = s.spawn(|_| -> u32 { panic!("joined boom") });
                let ok = s.spawn(|_| 5u32);
                let msg = panic_message(catch_unwind(AssertUnwindSafe(|| h.join(s))));
                assert_eq!(msg, "joined boom", "{n} workers");
                ok.join(s)
            })
        });
        assert_eq!(out, 5, "{n} workers");
    });
}

/// A panic whose handle was dropped — before the job ran, or after it finished — is
/// re-raised by the scope.
#[test]
fn scoped_dropped_handle_panic_reaches_scope() {
    each_worker_count(|jobs, n| {
        let early = jobs.run(|ctx| {
            panic_message(catch_unwind(AssertUnwindSafe(|| {
                ctx.scope(|s| {
                    s.spawn(|_| panic!("dropped early"));
                })
            })))
        });
        assert_eq!(early, "dropped early", "{n} workers");
        let late = jobs.run(|ctx| {
            panic_message(catch_unwind(AssertUnwindSafe(|| {
                ctx.scope(|s| {
                    let h = s.spawn(|_| -> u8 { panic!("dropped late") });
                    while !h.is_finished() {
                        s.yield_now();
                    }
                    drop(h);
                })
            })))
        });
        assert_eq!(late, "dropped late", "{n} workers");
    });
}

/// Values of unjoined handles are dropped (by the job or by the handle, whichever is last).
#[test]
fn scoped_unjoined_values_are_dropped() {
    each_worker_count(|jobs, n| {
        let token = Arc::new(());
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for i in 0..100 {
                    let t = token.clone();
                    let h = s.spawn(move |_| t);
                    if i % 2 == 0 {
                        while !h.is_finished() {
                            s.yield_now();
                        }
                    }
                }
            })
        });
        assert_eq!(Arc::strong_count(&token), 1, "{n} workers");
    });
}

/// A scoped join that unwinds after the job finished (its wait refuses a no-suspend region
/// left open, debug builds) still disposes of the job's result: the value is dropped, and a
/// panic of the job reaches the scope, as for a handle dropped without joining.
#[test]
#[cfg_attr(not(debug_assertions), ignore = "regions are checked in debug builds")]
fn scoped_join_that_unwinds_disposes_of_the_result() {
    each_worker_count(|jobs, n| {
        let token = Arc::new(());
        let t = token.clone();
        let msg = panic_message(catch_unwind(AssertUnwindSafe(|| {
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    let h = s.spawn(move |_| t);
                    while !h.is_finished() {
                        s.yield_now();
                    }
                    let _region = s.no_suspend();
                    drop(h.join(s));
                })
            })
        })));
        assert!(msg.contains("no-suspend region"), "{n} workers: {msg}");
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "{n} workers: the value was leaked"
        );
        let msg = panic_message(catch_unwind(AssertUnwindSafe(|| {
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    let h = s.spawn(|_| -> u32 { panic!("the job's own panic") });
                    while !h.is_finished() {
                        s.yield_now();
                    }
                    let _region = s.no_suspend();
                    h.join(s)
                })
            })
        })));
        assert_eq!(
            msg, "the job's own panic",
            "{n} workers: the job's panic was lost"
        );
    });
}

/// Detached jobs return their values to a joining job and to a joining foreign thread.
#[test]
fn detached_join_from_jobs_and_threads() {
    each_worker_count(|jobs, n| {
        let total = jobs.run(|ctx| {
            let hs: Vec<_> = (0..200u64)
                .map(|i| ctx.spawn_detached(move |_| i * 2))
                .collect();
            hs.into_iter().map(|h| h.join(ctx)).sum::<u64>()
        });
        assert_eq!(total, 199 * 200, "{n} workers");
        let handle = jobs.handle();
        let from_thread = std::thread::spawn(move || {
            let hs: Vec<_> = (0..200u64)
                .map(|i| handle.spawn_detached(move |_| i))
                .collect();
            hs.into_iter().map(|h| h.join_blocking()).sum::<u64>()
        });
        // The foreign thread's jobs run on the pool's workers, worker 0 while it runs jobs:
        // keep it in `run` until the thread has its values.
        let thread_total = jobs.run(|ctx| {
            while !from_thread.is_finished() {
                ctx.yield_now();
            }
            from_thread.join().unwrap()
        });
        assert_eq!(thread_total, 199 * 100, "{n} workers");
    });
}

/// A detached job's panic goes to its joiner; with its handle dropped, the system goes on.
#[test]
fn detached_panics() {
    each_worker_count(|jobs, n| {
        let msg = jobs.run(|ctx| {
            let h = ctx.spawn_detached(|_| -> u32 { panic!("detached boom") });
            panic_message(catch_unwind(AssertUnwindSafe(|| h.join(ctx))))
        });
        assert_eq!(msg, "detached boom", "{n} workers");
        let v = jobs.run(|ctx| {
            drop(ctx.spawn_detached(|_| panic!("nobody joins")));
            ctx.spawn_detached(|_| 9).join(ctx)
        });
        assert_eq!(v, 9, "{n} workers");
    });
}

/// Shutdown loses no detached work: every job queued from jobs and from foreign threads,
/// handles dropped, runs before the system's drop returns; their values are dropped.
#[test]
fn shutdown_runs_detached_work() {
    for n in WORKER_COUNTS {
        let ran = Arc::new(AtomicUsize::new(0));
        let token = Arc::new(());
        let jobs = system(n);
        jobs.run(|ctx| {
            for _ in 0..1000 {
                let (ran, t) = (ran.clone(), token.clone());
                ctx.spawn_detached_opts(JobOptions::new("bg").priority(Priority::Low), move |_| {
                    ran.fetch_add(1, Ordering::Relaxed);
                    t
                });
            }
        });
        let handle = jobs.handle();
        for _ in 0..1000 {
            let ran = ran.clone();
            handle.spawn_detached(move |_| ran.fetch_add(1, Ordering::Relaxed));
        }
        drop(jobs);
        assert_eq!(ran.load(Ordering::Relaxed), 2000, "{n} workers");
        assert_eq!(Arc::strong_count(&token), 1, "{n} workers");
    }
}

/// Options chosen at run time reach the scheduler: an affinity pins the job, an `Inline`
/// hint runs it before the spawn returns, and the interned metadata carries name and priority.
#[test]
fn run_time_options() {
    each_worker_count(|jobs, n| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..50 {
                    let opts = JobOptions::new("main only").affinity(Affinity::Worker(0));
                    let h = s.spawn_opts(opts, |s| s.worker_index());
                    assert_eq!(h.join(s), 0, "{n} workers");
                }
                let h = s.spawn_opts(JobOptions::new("now").hint(Hint::Inline), |_| 1);
                assert!(
                    h.is_finished(),
                    "{n} workers: an Inline spawn ran before returning"
                );
                assert_eq!(h.join(s), 1);
            });
            let d = ctx.spawn_detached_opts(
                JobOptions::new("pinned").affinity(Affinity::Worker(0)),
                |c| c.worker_index(),
            );
            assert_eq!(d.join(ctx), 0, "{n} workers");
        });
    });
    let metas: Vec<_> = [Priority::Low, Priority::High, Priority::Low]
        .into_iter()
        .map(|p| JobOptions::new("io").priority(p).meta())
        .collect();
    assert!(
        std::ptr::eq(metas[0], metas[2]),
        "same options, same call site: interned once"
    );
    assert!(!std::ptr::eq(metas[0], metas[1]));
    assert_eq!((metas[0].name, metas[0].priority), ("io", Priority::Low));
    assert_eq!(metas[1].priority, Priority::High);
}

/// The background lane: on one worker, Low detached work completes while 240 frames run
/// with a body that never parks (each outermost frame opening runs one Low job first).
#[test]
fn background_progresses_under_a_frame_loop_that_never_parks() {
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let seen = jobs.run(|ctx| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let done = done.clone();
                ctx.spawn_detached_opts(
                    JobOptions::new("stream").priority(Priority::Low),
                    move |_| {
                        done.fetch_add(1, Ordering::Relaxed);
                    },
                )
            })
            .collect();
        let mut world = vec![0u64; 1024];
        let mut seen = Vec::new();
        ctx.frames(|frames| {
            for _ in 0..240 {
                frames.frame(|_| {
                    // Pure computation: the body never waits, so the loop never parks.
                    world
                        .iter_mut()
                        .for_each(|x| *x = x.wrapping_mul(31).wrapping_add(7));
                });
                seen.push(done.load(Ordering::Relaxed));
            }
        });
        drop(handles);
        std::hint::black_box(&world);
        seen
    });
    // One Low job per frame opening, from the first frame on.
    for (frame, &d) in seen.iter().enumerate() {
        assert_eq!(d, (frame + 1).min(100), "after frame {frame}");
    }
}

/// Low detached work spawned before a frame loop completes at every worker count; its
/// values come back through the handles.
#[test]
fn background_work_with_frames_at_every_worker_count() {
    each_worker_count(|jobs, n| {
        let sum = jobs.run(|ctx| {
            let handles: Vec<_> = (0..64u64)
                .map(|i| ctx.spawn_detached_opts(JobOptions::from(Priority::Low), move |_| i))
                .collect();
            ctx.frames(|frames| {
                for _ in 0..64 {
                    frames.frame(|_| ());
                }
            });
            handles.into_iter().map(|h| h.join(ctx)).sum::<u64>()
        });
        assert_eq!(sum, 63 * 32, "{n} workers");
    });
}

/// The background lane starts its Low job on a fiber of its own: a background job that waits
/// for the frame loop itself does not hold the loop up. (The timeout only turns a hang into a
/// failure; a passing run never comes near it.)
#[test]
fn a_waiting_background_job_does_not_hold_up_the_frame_loop() {
    each_worker_count(|jobs, n| {
        let loaded = Arc::new(Event::new(EventKind::Manual));
        let set_at = jobs.run(|ctx| {
            let l = loaded.clone();
            let h = ctx.spawn_detached_opts(JobOptions::from(Priority::Low), move |c| {
                l.wait_timeout(c, std::time::Duration::from_secs(10))
            });
            let mut set_at = None;
            ctx.frames(|frames| {
                for i in 0..10 {
                    frames.frame(|_| {
                        if i == 5 {
                            loaded.set();
                            set_at = Some(i);
                        }
                    });
                }
            });
            assert!(
                h.join(ctx),
                "{n} workers: the background job's wait timed out"
            );
            set_at
        });
        assert_eq!(set_at, Some(5), "{n} workers");
    });
}

/// A handle joined while its job is still the newest on this worker's ring runs the job right
/// there, without parking: on one worker, 100 spawn-and-join pairs park no wait.
#[test]
fn join_runs_an_unstarted_job_here() {
    let jobs = system(1);
    let before = jobs.worker_stats(0).parked_waits;
    let sum = jobs.run(|ctx| {
        ctx.scope(|s| {
            (0..100u32)
                .map(|i| s.spawn(move |_| i).join(s))
                .sum::<u32>()
        })
    });
    assert_eq!(sum, 4950);
    assert_eq!(jobs.worker_stats(0).parked_waits - before, 0);
}
