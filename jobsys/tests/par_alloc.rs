//! Parallel loops allocate nothing in steady state, proven with a counting global allocator.
//!
//! After a warm-up, `par_for`, `par_for_chunks`, `par_chunks`, `par_chunks_mut` and
//! `par_reduce` (nested inside each other and inside a scope) and `par_sort_unstable` perform
//! no heap allocation on any
//! thread, at 1, 2, 4 and 8 workers.
//!
//! The count is process-wide, so nothing else may allocate while it counts: like `alloc.rs`,
//! this is a `harness = false` binary (see `jobsys/Cargo.toml`) whose `main` runs the checks on
//! the main thread, with no test-harness threads around. A self-check first proves that the
//! counter sees an allocation made inside a loop's leaf on another worker, so a zero cannot
//! come from a counter that does not count.
use jobsys::{Ctx, JobSystem};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[path = "common/counting.rs"]
mod counting;
use counting::{Check, Counting, count_allocs};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The buffers one frame of loops works on.
struct Parts {
    bodies: Vec<f32>,
    velocity: Vec<f32>,
    hits: Vec<AtomicUsize>,
    keys: Vec<u32>,
}

/// One frame: every loop kind, nested and inside a scope; checks its own results.
fn frame(jobs: &JobSystem, p: &mut Parts) {
    let Parts {
        bodies,
        velocity,
        hits,
        keys,
    } = p;
    jobs.run(|ctx: &Ctx| {
        ctx.par_chunks_mut(bodies, 256, |_, offset, chunk| {
            for (b, v) in chunk.iter_mut().zip(&velocity[offset..]) {
                *b += v;
            }
        });
        ctx.par_for(0..hits.len(), 16, |_, i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        let sum = ctx.par_reduce(0..10_000, 64, || 0u64, |_, i| i as u64, |a, b| a + b);
        assert_eq!(sum, 49_995_000);
        // Scramble, then sort back.
        ctx.par_chunks_mut(keys, 512, |_, offset, chunk| {
            for (k, key) in chunk.iter_mut().enumerate() {
                *key = (((offset + k) as u32).wrapping_mul(2_654_435_761)) >> 8;
            }
        });
        ctx.par_sort_unstable(keys, 256);
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        ctx.scope(|s| {
            s.spawn(|s| {
                s.par_chunks(velocity, 100, |c, _, chunk| {
                    c.par_for_chunks(0..chunk.len(), 10, |_, r| assert!(!r.is_empty()));
                });
            });
        });
    });
}

fn allocations_inside_a_leaf_on_another_worker_are_counted() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let spun = AtomicBool::new(false);
    let allocs = count_allocs(|| {
        jobs.run(|ctx| {
            ctx.par_for(0..2, 1, |c, i| {
                if i == 0 {
                    // Hold this worker until the other leaf ran on the other one.
                    while !spun.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                } else {
                    assert_ne!(c.worker_index(), 0);
                    std::hint::black_box(Box::new(7u64));
                    spun.store(true, Ordering::Release);
                }
            });
        });
    });
    assert!(
        allocs >= 1,
        "the counter missed an allocation on another worker"
    );
}

fn steady_state_parallel_loops_allocate_nothing() {
    for workers in [1, 2, 4, 8] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let mut parts = Parts {
            bodies: vec![0.0; 100_000],
            velocity: vec![1.0; 100_000],
            hits: (0..5_000).map(|_| AtomicUsize::new(0)).collect(),
            keys: vec![0; 20_000],
        };
        for _ in 0..50 {
            frame(&jobs, &mut parts);
        }
        let allocs = count_allocs(|| {
            for _ in 0..200 {
                frame(&jobs, &mut parts);
            }
        });
        assert!(parts.bodies.iter().all(|&b| b == 250.0));
        assert!(parts.hits.iter().all(|h| h.load(Ordering::Relaxed) == 250));
        assert_eq!(
            allocs, 0,
            "{allocs} heap allocations in 200 warmed-up frames of loops at {workers} workers"
        );
    }
}

fn main() {
    let checks: &[Check] = &[
        (
            "allocations_inside_a_leaf_on_another_worker_are_counted",
            allocations_inside_a_leaf_on_another_worker_are_counted,
        ),
        (
            "steady_state_parallel_loops_allocate_nothing",
            steady_state_parallel_loops_allocate_nothing,
        ),
    ];
    counting::run_checks(checks);
}
