//! # frames — frame-aware idle, priorities and submit hints
//!
//! An engine's frame loop: each frame is marked with `ctx.frame(..)`, so idle workers spin
//! while its jobs run (the next fan-out is microseconds away) and sleep between frames.
//! Inside the frame, a latency-critical job is `Priority::High`, background streaming is
//! `Priority::Low` queued `Hint::Fifo` behind other work, and the piece the submitting fiber
//! would run anyway is `Hint::Inline`.
//!
//! ```text
//! cargo run -p jobsys-samples --example frames
//! ```

use jobsys::{Hint, JobSystem, Priority, job_meta};
use std::sync::atomic::{AtomicU64, Ordering};

const FRAMES: usize = 5;
const PARTICLES: usize = 4096;

fn main() -> Result<(), jobsys::BuildError> {
    let jobs = JobSystem::builder().workers(2).build()?;
    let mut particles = vec![0.0f32; PARTICLES];
    let streamed = AtomicU64::new(0);
    let input_polls = AtomicU64::new(0);

    for _ in 0..FRAMES {
        jobs.run(|ctx| {
            ctx.frame(|_f| {
                ctx.scope(|s| {
                    // Runs before Normal work queued on this worker, and within 60 picks of
                    // any busy worker when submitted from elsewhere.
                    s.spawn_with(job_meta!("input", priority(Priority::High)), |_| {
                        input_polls.fetch_add(1, Ordering::Relaxed);
                    });
                    // Background work: behind everything already queued.
                    s.spawn_hinted(
                        Hint::Fifo,
                        job_meta!("stream", priority(Priority::Low)),
                        |_| {
                            streamed.fetch_add(64 * 1024, Ordering::Relaxed);
                        },
                    );
                    let (first, rest) = particles.split_at_mut(PARTICLES / 4);
                    for chunk in rest.chunks_mut(512) {
                        s.spawn_with(job_meta!("particles"), move |_| {
                            chunk.iter_mut().for_each(|p| *p += 1.0)
                        });
                    }
                    // The quarter this fiber would do anyway: run here, now.
                    s.spawn_hinted(Hint::Inline, job_meta!("particles-here"), move |_| {
                        first.iter_mut().for_each(|p| *p += 1.0)
                    });
                });
            });
        });
        // Between frames idle workers spin briefly, then sleep (the engine would present and
        // wait for vsync here); `jobs.sleeping_workers()` reports how many are asleep.
    }

    assert!(particles.iter().all(|&p| p == FRAMES as f32));
    assert_eq!(input_polls.load(Ordering::Relaxed), FRAMES as u64);
    println!(
        "{FRAMES} frames: every particle advanced {FRAMES} times, input polled {} times, {} KiB streamed",
        input_polls.load(Ordering::Relaxed),
        streamed.load(Ordering::Relaxed) / 1024
    );
    Ok(())
}
