//! Memory of job handles, measured with a counting global allocator.
//!
//! - Scoped handles allocate nothing once warmed up: their value slots live in the scope's
//!   pooled records.
//! - Detached jobs keep memory bounded by the jobs in flight: 240,000 of them, over 240
//!   batches, never hold more than two batches' records, whether their handles are joined or
//!   dropped.
//!
//! The counts are process-wide, so this is a `harness = false` binary (see
//! `jobsys/Cargo.toml`) whose `main` runs the checks one after another on the main thread.
use jobsys::{Counter, JobSystem};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "common/counting.rs"]
mod counting;
use counting::{Check, Counting, count_allocs};

#[global_allocator]
static GLOBAL: Counting = Counting;

const WORKER_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// One frame of scoped fan-out whose every job returns a value through its handle.
fn scoped_round(jobs: &JobSystem, data: &[u64]) -> u64 {
    jobs.run(|ctx| {
        ctx.scope(|s| {
            let mut total = 0;
            for chunk in data.chunks(64 * 16) {
                let handles: [_; 64] = core::array::from_fn(|i| {
                    let part = &chunk[(i * 16).min(chunk.len())..((i + 1) * 16).min(chunk.len())];
                    s.spawn(move |_| part.iter().sum::<u64>())
                });
                total += handles.into_iter().map(|h| h.join(s)).sum::<u64>();
            }
            // Handles dropped unjoined cost nothing either.
            for _ in 0..64 {
                s.spawn(|_| 1u64);
            }
            total
        })
    })
}

/// The counter sees an allocation made by a job on another worker thread (so a zero below
/// cannot come from a counter that does not count).
fn allocations_on_other_workers_are_counted() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let on_one = jobsys::JobOptions::new("on worker 1").affinity(jobsys::Affinity::Worker(1));
    let allocs = count_allocs(|| {
        let w = jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_opts(on_one, |s| {
                    std::hint::black_box(Box::new(1u64));
                    s.worker_index()
                })
                .join(s)
            })
        });
        assert_eq!(w, 1);
    });
    assert!(allocs >= 1, "an allocation on worker 1 was not counted");
}

fn scoped_handles_allocate_nothing_after_warm_up() {
    let data: Vec<u64> = (0..64 * 16 * 16).collect();
    let want: u64 = data.iter().sum();
    for n in WORKER_COUNTS {
        let jobs = JobSystem::builder().workers(n).build().unwrap();
        for _ in 0..3 {
            assert_eq!(scoped_round(&jobs, &data), want);
        }
        let mut got = 0;
        let allocs = count_allocs(|| {
            for _ in 0..10 {
                got = scoped_round(&jobs, &data);
            }
        });
        assert_eq!(got, want);
        println!("{n} workers: {allocs} allocations in 10 warmed-up rounds of 1,088 scoped spawns");
        assert_eq!(
            allocs, 0,
            "{n} workers: scoped handles allocated in steady state"
        );
    }
}

/// Bytes a detached record may take for the closures below (header, slot, closure), rounded
/// up generously: the bound below is about growth, not the exact record size.
const RECORD_BOUND: isize = 256;
const BATCH: usize = 1000;
const BATCHES: usize = 240;

fn detached_memory_stays_bounded() {
    for n in WORKER_COUNTS {
        let jobs = JobSystem::builder().workers(n).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let mut kept = Vec::with_capacity(BATCH);
        let mut base = None;
        let mut peak = 0isize;
        jobs.run(|ctx| {
            let done = Arc::new(Counter::new());
            for batch in 0..BATCHES {
                if batch % 2 == 0 {
                    // Handles kept, then joined: `join` frees each record.
                    for i in 0..BATCH {
                        let ran = ran.clone();
                        kept.push(ctx.spawn_detached(move |_| {
                            ran.fetch_add(1, Ordering::Relaxed);
                            i
                        }));
                    }
                    for (i, h) in kept.drain(..).enumerate() {
                        assert_eq!(h.join(ctx), i);
                    }
                } else {
                    // Handles dropped at once: each job frees its own record when it ends.
                    done.add(BATCH as u32);
                    for _ in 0..BATCH {
                        let (ran, done) = (ran.clone(), done.clone());
                        ctx.spawn_detached(move |_| {
                            ran.fetch_add(1, Ordering::Relaxed);
                            done.sub(1);
                        });
                    }
                    ctx.wait_for_counter(&done, 0);
                }
                let live = counting::live_bytes();
                match base {
                    // After the first two batches: every lazily allocated structure is warm.
                    None if batch == 1 => base = Some(live),
                    None => {}
                    Some(_) => peak = peak.max(live),
                }
            }
        });
        let base = base.unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), BATCH * BATCHES, "{n} workers");
        // Records of a dropped-handle batch may still be freeing themselves when the batch's
        // counter reaches zero (the job ends after its closure), but at most one per worker,
        // and never more than one batch.
        let bound = BATCH as isize * RECORD_BOUND;
        println!(
            "{n} workers: {} detached jobs, live bytes after warm-up {base}, peak growth {}",
            BATCH * BATCHES,
            peak - base
        );
        assert!(
            peak - base <= bound,
            "{n} workers: live bytes grew by {} over {} detached jobs (bound {bound})",
            peak - base,
            BATCH * BATCHES
        );
        drop(jobs);
    }
}

fn main() {
    let checks: &[Check] = &[
        (
            "allocations_on_other_workers_are_counted",
            allocations_on_other_workers_are_counted,
        ),
        (
            "scoped_handles_allocate_nothing_after_warm_up",
            scoped_handles_allocate_nothing_after_warm_up,
        ),
        (
            "detached_memory_stays_bounded",
            detached_memory_stays_bounded,
        ),
    ];
    counting::run_checks(checks);
}
