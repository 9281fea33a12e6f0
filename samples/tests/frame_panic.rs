//! A panic in the frame loop reaches the caller of `simulate` as a panic, and the job system
//! still shuts down: the asset stream's background job, parked on its request channel, must
//! not be left parked forever: `JobSystem::run` waits for the main thread's parked fibers, so
//! it would never return (the test hangs; that is how it fails).

use jobsys_samples::frame::{build_system, simulate};
use jobsys_samples::world::World;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

/// Calls of `panics_on_the_fifth_call`.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The allocation counter `simulate` reads after every frame: panics after four frames, while
/// the stream has requests queued and its job waits for more.
fn panics_on_the_fifth_call() -> u64 {
    // The first call marks the start of frame 0; the fifth follows frame 3.
    if CALLS.fetch_add(1, Ordering::Relaxed) == 5 {
        panic!("injected: the frame loop fails");
    }
    0
}

#[test]
fn a_panicking_frame_loop_unwinds_and_the_system_shuts_down() {
    let jobs = build_system(Some(2), 2000).expect("job system");
    let mut world = World::new(2000);
    let result = catch_unwind(AssertUnwindSafe(|| {
        simulate(&jobs, &mut world, 12, 2, panics_on_the_fifth_call)
    }));
    let payload = result.expect_err("the injected panic reaches the caller");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"injected: the frame loop fails")
    );
    // Without the stream closed on unwind, `simulate` never returns above: `run` waits for the
    // stream's fiber, parked on worker 0 with nothing left to wake it.
    drop(jobs);
    assert_eq!(CALLS.load(Ordering::Relaxed), 6);
}
