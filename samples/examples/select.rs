//! # select — one job serving several channels, with a deadline
//!
//! A streaming job waits on two request channels (gameplay and audio) and a shutdown channel
//! at once with `select`, and gives up waiting for a slow "GPU fence" event with
//! `wait_timeout`: both park the job's fiber, never the worker, and allocate nothing.
//!
//! ```text
//! cargo run -p jobsys-samples --example select
//! ```

use jobsys::JobSystem;
use jobsys::sync::{Channel, Event, EventKind, RecvArm, select, select_timeout};
use std::time::Duration;

fn main() -> Result<(), jobsys::BuildError> {
    let jobs = JobSystem::builder().workers(2).build()?;
    let gameplay = Channel::<u32>::new(8);
    let audio = Channel::<u32>::new(8);
    let shutdown = Channel::<()>::new(2);
    let gpu_fence = Event::new(EventKind::Manual);

    let (served, idle_polls, fence_timeouts) = jobs.run(|ctx| {
        ctx.scope(|s| {
            // Producers: gameplay and audio requests, then shutdown.
            s.spawn(|s| {
                for i in 0..20 {
                    gameplay.send(s, i).unwrap();
                    audio.send(s, 100 + i).unwrap();
                }
                shutdown.send(s, ()).unwrap();
            });
            // The streamer: serves whichever channel is ready, fairly, until shutdown.
            let (mut served, mut idle_polls) = (0u32, 0u32);
            loop {
                let mut g = RecvArm::new(&gameplay);
                let mut a = RecvArm::new(&audio);
                let mut stop = RecvArm::new(&shutdown);
                match select_timeout(
                    s,
                    &mut [&mut g, &mut a, &mut stop],
                    Duration::from_millis(5),
                ) {
                    Some(0) => served += u32::from(g.take().is_some_and(|r| r.is_ok())),
                    Some(1) => served += u32::from(a.take().is_some_and(|r| r.is_ok())),
                    Some(_) => break,
                    None => idle_polls += 1, // nothing for 5 ms: housekeeping would go here
                }
            }
            // Requests that raced the shutdown are still served.
            while gameplay.try_recv().or_else(|_| audio.try_recv()).is_ok() {
                served += 1;
            }
            // Wait for a fence that never comes this frame: time out, then carry on.
            let fence_timeouts = u32::from(!gpu_fence.wait_timeout(s, Duration::from_millis(2)));
            // A plain select (no deadline) on a ready channel returns at once.
            shutdown.try_send(()).unwrap();
            let mut stop = RecvArm::new(&shutdown);
            assert_eq!(select(s, &mut [&mut stop]), 0);
            (served, idle_polls, fence_timeouts)
        })
    });
    assert_eq!(served, 40);
    assert_eq!(fence_timeouts, 1);
    println!(
        "served {served} requests from two channels ({idle_polls} idle 5 ms polls); the GPU fence wait timed out once"
    );
    Ok(())
}
