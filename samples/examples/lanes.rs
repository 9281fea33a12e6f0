//! # lanes — blocking calls, sleeps, worker hooks and per-worker state
//!
//! An asset load over a few "frames": the file read runs on the blocking lane (the worker keeps
//! running the frame's jobs meanwhile), a streaming job sleeps between polls instead of
//! spinning, worker hooks report each thread, and every worker tallies its work in a
//! `WorkerLocal` that the end of the program merges.
//!
//! ```text
//! cargo run -p jobsys-samples --example lanes
//! ```

use jobsys::{JobSystem, WorkerLocal};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("jobsys-lanes-{}.bin", std::process::id()));
    std::fs::write(&path, vec![7u8; 1 << 20])?;

    let jobs = JobSystem::builder()
        .workers(2)
        .blocking_threads(2)
        .on_worker_start(|w| {
            println!(
                "worker {} starts on thread {:?} (pinned to {:?})",
                w.index,
                w.thread_name.unwrap_or("<unnamed>"),
                w.core
            )
        })
        .on_worker_stop(|w| println!("worker {} stops", w.index))
        .build()?;

    // (jobs run, bytes touched) per worker.
    let mut tally = WorkerLocal::new(jobs.worker_count(), |_| (0u64, 0u64));
    let loaded = AtomicBool::new(false);
    let frames = AtomicUsize::new(0);
    let start = Instant::now();

    let checksum = jobs.run(|ctx| {
        let (checksum, ()) = ctx.join(
            // The asset load: a blocking read on a lane thread, then the parse on a worker.
            |ctx| {
                let mut bytes = Vec::new();
                ctx.blocking(|| {
                    bytes = std::fs::read(&path).expect("read the asset");
                });
                let sum: u64 = bytes.iter().map(|&b| u64::from(b)).sum();
                tally.with(ctx, |(n, touched)| {
                    *n += 1;
                    *touched += bytes.len() as u64;
                });
                loaded.store(true, Ordering::Release);
                sum
            },
            // The frame loop: runs while the load is in flight; sleeps a little between
            // frames (a frame limiter) instead of spinning.
            |ctx| {
                while !loaded.load(Ordering::Acquire) || frames.load(Ordering::Relaxed) < 3 {
                    ctx.scope(|s| {
                        for _ in 0..8 {
                            s.spawn(|s| tally.with(s, |(n, _)| *n += 1));
                        }
                    });
                    frames.fetch_add(1, Ordering::Relaxed);
                    ctx.sleep(Duration::from_millis(2));
                }
            },
        );
        checksum
    });

    let per_worker: Vec<(u64, u64)> = tally.iter_mut().map(|v| *v).collect();
    println!(
        "asset checksum {checksum} after {} frames in {:?}; per worker (jobs, bytes): {per_worker:?}",
        frames.load(Ordering::Relaxed),
        start.elapsed()
    );
    assert_eq!(checksum, 7 << 20);
    drop(jobs);
    std::fs::remove_file(&path)?;
    Ok(())
}
