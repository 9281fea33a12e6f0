//! Randomized job DAGs: joins, scopes, raw batches with counter waits, channel pipelines under a
//! mutex and a wait group, and panicking children, nested up to six levels, across worker
//! counts. The shape of every DAG comes from a seed and the path to each node (never from the
//! execution order), so a sequential reference evaluation of the same seed gives the exact sum
//! every run must produce. Bounded: `STRESS_SEEDS` seeds (default 200) per worker count; a
//! failure names its seed (replay: `STRESS_SEED=<seed> cargo test -p jobsys --test stress`).

mod common;

use common::WORKER_COUNTS;
use jobsys::sync::{Channel, Mutex, WaitGroup};
use jobsys::{Counter, Ctx, JobDecl, JobSystem, job_meta};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

const MAX_DEPTH: u32 = 6;

/// splitmix64: the seed of child `i` of the node with seed `s`.
fn mix(s: u64, i: u64) -> u64 {
    let mut z = s
        .wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a node does, from its seed and depth.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Leaf,
    Join,
    Scope(u64),
    Batch(u64),
    Pipeline(u64),
    Panicky(u64),
}

fn kind(s: u64, depth: u32) -> Kind {
    if depth >= MAX_DEPTH {
        return Kind::Leaf;
    }
    let fan = 2 + (s >> 8) % 4; // 2..=5
    match s % 7 {
        // No leaves near the root: every DAG has some width.
        0 if depth < 2 => Kind::Scope(fan),
        0 => Kind::Leaf,
        1 | 2 => Kind::Join,
        3 => Kind::Scope(fan),
        4 => Kind::Batch(fan * 4),
        5 => Kind::Pipeline(fan * 8),
        _ => Kind::Panicky(fan),
    }
}

fn leaf_value(s: u64) -> u64 {
    s % 1000
}

/// The sum a node must produce, computed sequentially.
fn reference(s: u64, depth: u32) -> u64 {
    match kind(s, depth) {
        Kind::Leaf => leaf_value(s),
        Kind::Join => reference(mix(s, 0), depth + 1) + reference(mix(s, 1), depth + 1),
        Kind::Scope(n) => (0..n).map(|i| reference(mix(s, i), depth + 1)).sum(),
        Kind::Batch(n) => (0..n).map(|i| leaf_value(mix(s, i))).sum(),
        Kind::Pipeline(n) => (0..n).map(|i| leaf_value(mix(s, i))).sum(),
        // Child 0 panics; the others still count.
        Kind::Panicky(n) => (1..n).map(|i| reference(mix(s, i), depth + 1)).sum(),
    }
}

/// How many nodes (jobs, batch leaves, messages) a DAG has.
fn nodes(s: u64, depth: u32) -> u64 {
    1 + match kind(s, depth) {
        Kind::Leaf => 0,
        Kind::Join => nodes(mix(s, 0), depth + 1) + nodes(mix(s, 1), depth + 1),
        Kind::Scope(n) | Kind::Panicky(n) => (0..n).map(|i| nodes(mix(s, i), depth + 1)).sum(),
        Kind::Batch(n) | Kind::Pipeline(n) => n,
    }
}

/// A batch leaf: adds its value to the accumulator.
struct BatchLeaf<'a> {
    value: u64,
    out: &'a AtomicU64,
}

fn batch_leaf(_: &Ctx, data: *mut ()) {
    // SAFETY: points at a `BatchLeaf` of a batch that its submitter waits for.
    let leaf = unsafe { &*(data as *const BatchLeaf<'_>) };
    leaf.out.fetch_add(leaf.value, Ordering::Relaxed);
}

/// The same sum, computed by jobs.
fn run(ctx: &Ctx, s: u64, depth: u32) -> u64 {
    match kind(s, depth) {
        Kind::Leaf => leaf_value(s),
        Kind::Join => {
            let (a, b) = ctx.join(
                |ctx| run(ctx, mix(s, 0), depth + 1),
                |ctx| run(ctx, mix(s, 1), depth + 1),
            );
            a + b
        }
        Kind::Scope(n) => {
            let sum = AtomicU64::new(0);
            ctx.scope(|sc| {
                for i in 0..n {
                    let sum = &sum;
                    sc.spawn(move |sc| {
                        sum.fetch_add(run(sc, mix(s, i), depth + 1), Ordering::Relaxed);
                    });
                }
            });
            sum.into_inner()
        }
        Kind::Batch(n) => {
            let out = AtomicU64::new(0);
            let leaves: Vec<BatchLeaf<'_>> = (0..n)
                .map(|i| BatchLeaf {
                    value: leaf_value(mix(s, i)),
                    out: &out,
                })
                .collect();
            let decls: Vec<JobDecl> = leaves
                .iter()
                .map(|l| JobDecl::new(job_meta!("leaf"), batch_leaf, l as *const _ as *mut ()))
                .collect();
            let counter = Counter::new();
            // SAFETY: `leaves`, `decls` and `counter` outlive the wait below.
            unsafe { ctx.run_jobs(&decls, &counter) };
            ctx.wait_for_counter(&counter, 0);
            out.into_inner()
        }
        Kind::Pipeline(n) => {
            // Two producers feed a capacity-2 channel; the body receives, adds under a mutex,
            // and a wait group tracks the producers.
            let chan = Channel::new(2);
            let total = Mutex::new(0u64);
            let producers = WaitGroup::new();
            producers.add(2);
            ctx.scope(|sc| {
                for half in 0..2u64 {
                    let (chan, producers) = (&chan, &producers);
                    sc.spawn(move |sc| {
                        for i in (half..n).step_by(2) {
                            chan.send(sc, leaf_value(mix(s, i))).expect("open");
                        }
                        producers.done();
                    });
                }
                for _ in 0..n {
                    let v = chan.recv(sc).expect("open");
                    *total.lock(sc) += v;
                }
                producers.wait(sc);
            });
            total.into_inner()
        }
        Kind::Panicky(n) => {
            let sum = AtomicU64::new(0);
            let r = catch_unwind(AssertUnwindSafe(|| {
                ctx.scope(|sc| {
                    for i in 0..n {
                        let sum = &sum;
                        sc.spawn(move |sc| {
                            if i == 0 {
                                std::panic::panic_any(StressPanic(s));
                            }
                            sum.fetch_add(run(sc, mix(s, i), depth + 1), Ordering::Relaxed);
                        });
                    }
                });
            }));
            let payload = r.expect_err("the scope re-raises its child's panic");
            assert_eq!(payload.downcast_ref::<StressPanic>().map(|p| p.0), Some(s));
            sum.into_inner()
        }
    }
}

/// The payload of the planned panics (the hook below keeps them quiet).
struct StressPanic(u64);

fn seeds() -> Vec<u64> {
    if let Some(s) = std::env::var("STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![s];
    }
    let n = std::env::var("STRESS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    (1..=n).collect()
}

#[test]
fn random_dags_produce_their_reference_sums() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<StressPanic>().is_none() {
            default_hook(info);
        }
    }));
    for n in WORKER_COUNTS {
        let jobs = JobSystem::builder().workers(n).build().expect("build");
        for seed in seeds() {
            let root = mix(seed, 0xDA6);
            let expected = reference(root, 0);
            let got = jobs.run(|ctx| run(ctx, root, 0));
            if std::env::var("STRESS_VERBOSE").is_ok() {
                eprintln!("seed {seed}: {} nodes, sum {expected}", nodes(root, 0));
            }
            assert_eq!(
                got, expected,
                "{n} workers, seed {seed}: replay with STRESS_SEED={seed} cargo test -p jobsys --test stress"
            );
        }
        assert_eq!(jobs.lost_wakeups(), 0, "{n} workers");
    }
}
