//! Frame-aware idle: workers sleep between frames, a frame wakes them, and none sleeps while
//! one is open.

use jobsys::JobSystem;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Polls (no sleeping) until `jobs` reports `n` workers asleep.
fn until_asleep(jobs: &JobSystem, n: usize) {
    while jobs.sleeping_workers() != n {
        std::thread::yield_now();
    }
}

#[test]
fn workers_sleep_between_frames_and_stay_awake_inside_one() {
    let jobs = JobSystem::builder()
        .workers(2)
        .idle_spins(0)
        .build()
        .unwrap();
    let ran = AtomicUsize::new(0);
    for frame in 0..3 {
        // Between frames worker 1 runs out of work and sleeps (this loop ends only if it does).
        until_asleep(&jobs, 1);
        jobs.run(|ctx| {
            ctx.frame(|_f| {
                // Opening the frame woke it, before `frame` called us.
                assert_eq!(ctx.sleeping_workers(), 0, "frame {frame}: not woken");
                for round in 0..50 {
                    ctx.scope(|s| {
                        for _ in 0..4 {
                            s.spawn(|_| {
                                ran.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                    });
                    // An idle gap between fan-outs (busy, not sleeping: the main thread is a
                    // worker too), long enough for a worker that ignored the frame to sleep.
                    for _ in 0..50_000 {
                        std::hint::spin_loop();
                    }
                    assert_eq!(
                        ctx.sleeping_workers(),
                        0,
                        "frame {frame}, round {round}: a worker slept inside the frame"
                    );
                }
            })
        });
    }
    assert_eq!(ran.load(Ordering::Relaxed), 3 * 50 * 4);
    assert_eq!(
        jobs.lost_wakeups(),
        0,
        "the sleep watchdog caught a lost wake-up"
    );
}

#[test]
fn a_frame_closes_on_panic_and_nested_frames_count() {
    let jobs = JobSystem::builder()
        .workers(2)
        .idle_spins(8)
        .build()
        .unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.frame(|_f| {
                ctx.frame(|_f| assert_eq!(ctx.sleeping_workers(), 0));
                // Still inside the outer frame.
                assert_eq!(ctx.sleeping_workers(), 0);
                panic!("frame body panics");
            })
        })
    }));
    assert!(r.is_err());
    // Both frames closed: worker 1 goes back to sleep (this returns only if it does).
    until_asleep(&jobs, 1);
}

/// Frames nested deeper than the frames in flight in one job would wait for their own outer
/// frame: the innermost call panics with a message before claiming an index, and the frame
/// sequence goes on.
#[test]
fn nesting_deeper_than_the_frames_in_flight_panics_and_frames_go_on() {
    let jobs = JobSystem::builder()
        .workers(2)
        .frames_in_flight(2)
        .build()
        .unwrap();
    let message = jobs.run(|ctx| {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ctx.frame(|_| ctx.frame(|_| ctx.frame(|_| ())))
        }));
        let payload = caught.expect_err("a third nested frame with two in flight must panic");
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    });
    assert!(
        message.contains("frames nested 3 deep") && message.contains("frames_in_flight"),
        "{message}"
    );
    // Two nested frames are fine, and the sequence goes on with no index skipped.
    let indices = jobs.run(|ctx| ctx.frame(|a| ctx.frame(|b| (a.index(), b.index()))));
    assert_eq!(indices, (2, 3));
    assert!(jobs.run(|ctx| ctx.frame(|f| f.index())) == 4);
}
