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
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations (and reallocations) that `f` makes, on any thread.
fn count_allocs(f: impl FnOnce()) -> usize {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
}

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
    let checks: [(&str, fn()); 2] = [
        (
            "allocations_inside_a_leaf_on_another_worker_are_counted",
            allocations_inside_a_leaf_on_another_worker_are_counted,
        ),
        (
            "steady_state_parallel_loops_allocate_nothing",
            steady_state_parallel_loops_allocate_nothing,
        ),
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in &checks {
            println!("{name}: test");
        }
        return;
    }
    let selected: Vec<_> = checks
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    for (name, check) in &selected {
        check();
        println!("test {name} ... ok");
    }
    println!(
        "\ntest result: ok. {} passed; 0 failed; {} filtered out\n",
        selected.len(),
        checks.len() - selected.len()
    );
}
