//! # sync — fiber-aware Mutex, Event, Semaphore, WaitGroup and Barrier
//!
//! Jobs that contend for a lock, wait for a signal from an IO thread, share two streaming
//! slots and meet at a barrier each frame: every wait parks the job's fiber, so the worker
//! keeps running other jobs — including the one that will release the waiter.
//!
//! ```text
//! cargo run -p jobsys-samples --example sync
//! ```

use jobsys::JobSystem;
use jobsys::sync::{Barrier, Event, EventKind, Mutex, Semaphore, ThisThread, WaitGroup};
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() -> Result<(), jobsys::BuildError> {
    let jobs = JobSystem::builder().workers(2).build()?;
    let draw_calls = Mutex::new(0u32);
    let asset_loaded = Event::new(EventKind::Manual);
    let streaming_slots = Semaphore::new(2);
    let (streaming, most_streaming) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let uploads = WaitGroup::new();
    let phase = Barrier::new(4);
    let leaders = AtomicUsize::new(0);

    std::thread::scope(|t| {
        // An IO thread (not a worker): loads the asset, then signals the jobs waiting for it.
        t.spawn(|| {
            uploads.add(1);
            asset_loaded.set();
            uploads.done();
        });
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..4 {
                    s.spawn(|s| {
                        asset_loaded.wait(s);
                        for _ in 0..100 {
                            *draw_calls.lock(s) += 1;
                        }
                        streaming_slots.acquire(s);
                        let now = streaming.fetch_add(1, Ordering::SeqCst) + 1;
                        most_streaming.fetch_max(now, Ordering::SeqCst);
                        streaming.fetch_sub(1, Ordering::SeqCst);
                        streaming_slots.release();
                        if phase.wait(s).is_leader() {
                            leaders.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
        });
    });
    // The IO thread is done; a thread-side wait returns at once.
    uploads.wait(&ThisThread);

    let draws = draw_calls.into_inner();
    assert_eq!(draws, 400);
    assert!(most_streaming.load(Ordering::SeqCst) <= 2);
    assert_eq!(leaders.load(Ordering::Relaxed), 1);
    println!(
        "400 locked increments = {draws}; at most {} of 2 streaming slots in use; one barrier leader",
        most_streaming.load(Ordering::SeqCst)
    );
    Ok(())
}
