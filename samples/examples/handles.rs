//! # handles — job values, detached background work, run-time options
//!
//! - `Scope::spawn` returns a handle: `join` it for the job's value (its record, value slot
//!   included, lives in the scope's pooled arena: no allocation).
//! - `Ctx::spawn_detached` / `Handle::spawn_detached` submit `'static` work that outlives the
//!   calling job (one allocation per job, freed when it finished and its handle is gone).
//! - Low-priority background work progresses while a frame loop runs, even one that never
//!   parks: each frame opening first runs one Low job.
//! - `JobOptions` chooses priority, hint and name at run time.
//!
//! ```text
//! cargo run -p jobsys-samples --example handles
//! ```

use jobsys::{JobOptions, JobSystem, Priority};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A stand-in for decoding one chunk of a streamed asset.
fn decode(chunk: u64) -> u64 {
    (0..1_000).fold(chunk, |h, i| h.rotate_left(5) ^ i)
}

fn main() -> Result<(), jobsys::BuildError> {
    let jobs = JobSystem::builder().workers(2).build()?;
    let mut bodies = vec![[0.0f32; 2]; 10_000];
    let streamed = Arc::new(AtomicUsize::new(0));

    let (energy, asset) = jobs.run(|ctx| {
        // Background streaming: 64 Low chunks, handles kept to collect the results.
        let chunks: Vec<_> = (0..64u64)
            .map(|c| {
                let streamed = streamed.clone();
                let opts = JobOptions::new("stream chunk").priority(Priority::Low);
                ctx.spawn_detached_opts(opts, move |_| {
                    streamed.fetch_add(1, Ordering::Relaxed);
                    decode(c)
                })
            })
            .collect();

        // The frame loop: physics in parallel, energy summed through scoped handles.
        let mut energy = 0.0;
        ctx.frames(|frames| {
            for _ in 0..120 {
                energy = frames.frame(|_| {
                    ctx.scope(|s| {
                        let handles: Vec<_> = bodies
                            .chunks_mut(1_000)
                            .map(|chunk| {
                                s.spawn(move |_| {
                                    chunk
                                        .iter_mut()
                                        .map(|b| {
                                            b[1] -= 9.81 / 60.0;
                                            b[0] += b[1] / 60.0;
                                            0.5 * b[1] * b[1]
                                        })
                                        .sum::<f32>()
                                })
                            })
                            .collect();
                        handles.into_iter().map(|h| h.join(s)).sum::<f32>()
                    })
                });
            }
        });
        let asset = chunks
            .into_iter()
            .fold(0u64, |h, c| h.wrapping_mul(31).wrapping_add(c.join(ctx)));
        (energy, asset)
    });
    println!("kinetic energy after 120 frames: {energy:.1}");
    println!(
        "streamed {} chunks beside the frames, asset hash {asset:#x}",
        streamed.load(Ordering::Relaxed)
    );

    // Fire-and-forget from a thread outside the pool; dropping the system runs it.
    let io = jobs.handle();
    let logged = Arc::new(AtomicUsize::new(0));
    let l = logged.clone();
    std::thread::spawn(move || {
        io.spawn_detached(move |_| l.fetch_add(1, Ordering::Relaxed));
    })
    .join()
    .unwrap();
    drop(jobs); // drains queued work, detached jobs included
    assert_eq!(logged.load(Ordering::Relaxed), 1);
    println!("detached job from an IO thread ran before shutdown returned");
    Ok(())
}
