//! The random job DAGs of the stress test and the simulation: a seed and the path to each
//! node fix its shape (never the execution order), so a sequential [`reference`] of the same
//! seed gives the exact sum every run must produce.
#![allow(dead_code)]

use jobsys::sync::{Channel, Mutex, WaitGroup};
use jobsys::{Counter, Ctx, JobDecl, job_meta};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

/// The seeds to run: the one in `$one` (a replay), else 1..=`$many` (default `default`).
pub(crate) fn seeds(one: &str, many: &str, default: u64) -> Vec<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse().ok());
    match var(one) {
        Some(seed) => vec![seed],
        None => (1..=var(many).unwrap_or(default)).collect(),
    }
}

pub(crate) const MAX_DEPTH: u32 = 6;

/// splitmix64: the seed of child `i` of the node with seed `s`.
pub(crate) fn mix(s: u64, i: u64) -> u64 {
    let mut z = s
        .wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a node does, from its seed and depth.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Leaf,
    Join,
    Scope(u64),
    Batch(u64),
    Pipeline(u64),
    Panicky(u64),
}

pub(crate) fn kind(s: u64, depth: u32) -> Kind {
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

pub(crate) fn leaf_value(s: u64) -> u64 {
    s % 1000
}

/// The sum a node must produce, computed sequentially.
pub(crate) fn reference(s: u64, depth: u32) -> u64 {
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
pub(crate) fn nodes(s: u64, depth: u32) -> u64 {
    1 + match kind(s, depth) {
        Kind::Leaf => 0,
        Kind::Join => nodes(mix(s, 0), depth + 1) + nodes(mix(s, 1), depth + 1),
        Kind::Scope(n) | Kind::Panicky(n) => (0..n).map(|i| nodes(mix(s, i), depth + 1)).sum(),
        Kind::Batch(n) | Kind::Pipeline(n) => n,
    }
}

/// A batch leaf: adds its value to the accumulator.
pub(crate) struct BatchLeaf<'a> {
    value: u64,
    out: &'a AtomicU64,
}

pub(crate) fn batch_leaf(_: &Ctx, data: *mut ()) {
    // SAFETY: points at a `BatchLeaf` of a batch that its submitter waits for.
    let leaf = unsafe { &*(data as *const BatchLeaf<'_>) };
    leaf.out.fetch_add(leaf.value, Ordering::Relaxed);
}

/// The same sum, computed by jobs.
pub(crate) fn run(ctx: &Ctx, s: u64, depth: u32) -> u64 {
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
pub(crate) struct StressPanic(pub(crate) u64);
