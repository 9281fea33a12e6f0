//! Parallel loops (`Ctx::par_for`, `par_for_chunks`, `par_chunks`, `par_chunks_mut`,
//! `par_reduce`): every index exactly once, chunk shapes, borrowing, panics after all chunks,
//! real parallelism, adaptive splitting, and use inside scopes — at 1, 2, 4 and 8 workers.

mod common;

use common::each_worker_count;
use jobsys::{Counter, Ctx};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

/// Every index of the range is visited exactly once, for lengths around the grain.
#[test]
fn par_for_visits_every_index_once() {
    each_worker_count(|jobs, n| {
        for (len, grain) in [
            (0, 1),
            (1, 1),
            (7, 3),
            (1000, 1),
            (1000, 7),
            (4096, 64),
            (5, 100),
        ] {
            let hits: Vec<AtomicU32> = (0..len + 20).map(|_| AtomicU32::new(0)).collect();
            jobs.run(|ctx| {
                ctx.par_for(10..10 + len, grain, |_, i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            });
            for (i, h) in hits.iter().enumerate() {
                let want = u32::from((10..10 + len).contains(&i));
                assert_eq!(
                    h.load(Ordering::Relaxed),
                    want,
                    "{n} workers, len {len}, grain {grain}, index {i}"
                );
            }
        }
    });
}

/// Sub-ranges are disjoint, cover the range, and hold whole grains (only the last may be short).
#[test]
fn par_for_chunks_hands_out_whole_grains_covering_the_range() {
    each_worker_count(|jobs, n| {
        for (len, grain) in [(0, 4), (1, 4), (1001, 10), (65_536, 256), (100, 1)] {
            let subs = Mutex::new(Vec::new());
            jobs.run(|ctx| {
                ctx.par_for_chunks(5..5 + len, grain, |_, sub| {
                    subs.lock().unwrap().push(sub);
                });
            });
            let mut subs = subs.into_inner().unwrap();
            subs.sort_by_key(|r| r.start);
            let mut at = 5;
            for s in &subs {
                assert_eq!(s.start, at, "{n} workers: gap or overlap at {at}");
                assert!(!s.is_empty(), "{n} workers: empty sub-range {s:?}");
                assert_eq!(
                    (s.start - 5) % grain,
                    0,
                    "{n} workers: {s:?} starts mid-grain"
                );
                if s.end != 5 + len {
                    assert_eq!(s.len() % grain, 0, "{n} workers: {s:?} is not whole grains");
                }
                at = s.end;
            }
            assert_eq!(at, 5 + len, "{n} workers: the sub-ranges stop short");
        }
    });
}

/// `par_chunks_mut` writes every element once through chunks whose offset matches their place;
/// `par_chunks` reads them back with the right offsets. Closures borrow the caller's stack.
#[test]
fn par_chunks_mut_and_par_chunks_see_the_right_offsets() {
    each_worker_count(|jobs, n| {
        let mut data = vec![0usize; 100_003];
        let input: Vec<usize> = (0..data.len()).map(|i| i * 3).collect();
        jobs.run(|ctx| {
            ctx.par_chunks_mut(&mut data, 1000, |_, offset, chunk| {
                let src = &input[offset..offset + chunk.len()];
                for (d, s) in chunk.iter_mut().zip(src) {
                    *d += s + 1;
                }
            });
        });
        for (i, &d) in data.iter().enumerate() {
            assert_eq!(d, i * 3 + 1, "{n} workers: element {i}");
        }
        let bad = AtomicUsize::new(0);
        let total = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.par_chunks(&data, 777, |_, offset, chunk| {
                for (k, &d) in chunk.iter().enumerate() {
                    if d != (offset + k) * 3 + 1 {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
                total.fetch_add(chunk.len(), Ordering::Relaxed);
            });
        });
        assert_eq!(bad.into_inner(), 0, "{n} workers");
        assert_eq!(total.into_inner(), data.len(), "{n} workers");
    });
}

/// `par_reduce` equals the sequential fold, keeps operand order (a non-commutative but
/// associative reduce: concatenation order via (first, last) pairs), and returns the identity
/// for an empty range.
#[test]
fn par_reduce_matches_the_sequential_fold_in_order() {
    each_worker_count(|jobs, n| {
        let (sum, ends, empty) = jobs.run(|ctx| {
            let sum = ctx.par_reduce(0..100_000, 100, || 0u64, |_, i| i as u64 * 2, |a, b| a + b);
            // (first, last, ordered): combining keeps order only if left operands come first.
            let ends = ctx.par_reduce(
                0..10_000,
                13,
                || None,
                |_, i| Some((i, i, true)),
                |a: Option<(usize, usize, bool)>, b| match (a, b) {
                    (None, x) | (x, None) => x,
                    (Some((f, l, ok1)), Some((f2, l2, ok2))) => {
                        Some((f, l2, ok1 && ok2 && l + 1 == f2))
                    }
                },
            );
            let empty = ctx.par_reduce(3..3, 1, || 42u32, |_, _| 0, |a, b| a + b);
            (sum, ends, empty)
        });
        assert_eq!(sum, 99_999 * 100_000, "{n} workers");
        assert_eq!(
            ends,
            Some((0, 9_999, true)),
            "{n} workers: operands out of order"
        );
        assert_eq!(empty, 42, "{n} workers");
    });
}

/// Spins (no park, so this worker runs nothing else) until `flag` is set by another worker.
/// The 60 s guard only turns a broken loop (one that never runs the other leaf in parallel)
/// into a failure instead of a hang; a working loop sets the flag as soon as a thief runs.
fn spin_until(flag: &AtomicBool) {
    let guard = std::time::Instant::now() + Duration::from_secs(60);
    while !flag.load(Ordering::Acquire) {
        assert!(
            std::time::Instant::now() < guard,
            "the other leaf never ran while this one held its worker"
        );
        std::hint::spin_loop();
    }
}

/// With several workers the loop really runs in parallel: the first leaf spins — holding its
/// worker — until the second leaf has started, which only another worker can do.
#[test]
fn leaves_run_on_several_workers_at_once() {
    for n in [2, 4, 8] {
        let jobs = common::system(n);
        let second = AtomicBool::new(false);
        let workers = Mutex::new(std::collections::BTreeSet::new());
        jobs.run(|ctx| {
            ctx.par_for(0..2, 1, |c, i| {
                workers.lock().unwrap().insert(c.worker_index());
                if i == 0 {
                    spin_until(&second);
                } else {
                    second.store(true, Ordering::Release);
                }
            });
        });
        assert_eq!(workers.into_inner().unwrap().len(), 2, "{n} workers");
    }
}

/// Adaptive splitting, part one: nobody steals on one worker, so a big range becomes only the
/// initial budget's leaves (one split: two leaves), not one leaf per grain.
#[test]
fn one_worker_makes_two_leaves() {
    let jobs = common::system(1);
    let leaves = AtomicUsize::new(0);
    jobs.run(|ctx| {
        ctx.par_for_chunks(0..1024 * 16, 16, |_, _| {
            leaves.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert_eq!(leaves.into_inner(), 2);
}

/// Adaptive splitting, part two: a half that another worker took gets its split budget back.
/// Two workers, 64 grains of 1: the budget of 2 splits the loop into quarters. The first leaf
/// (0..16) holds worker 0, spinning until the leaf that starts at 32 has started: worker 1 must
/// steal the right half. Stolen, it resets its budget to 2 and splits down to leaves of 4
/// (32..36 first); without the reset it would run 32..48 as one leaf.
#[test]
fn a_stolen_half_gets_its_split_budget_back() {
    let jobs = common::system(2);
    let at_32 = AtomicBool::new(false);
    let leaves = Mutex::new(Vec::new());
    jobs.run(|ctx| {
        ctx.par_for_chunks(0..64, 1, |c, sub| {
            leaves.lock().unwrap().push((sub.clone(), c.worker_index()));
            if sub.start == 32 {
                at_32.store(true, Ordering::Release);
            }
            if sub.start == 0 {
                spin_until(&at_32);
            }
        });
    });
    let leaves = leaves.into_inner().unwrap();
    let (first, worker) = leaves
        .iter()
        .find(|(r, _)| r.start == 32)
        .cloned()
        .expect("no leaf starts at 32");
    assert_eq!(worker, 1, "the right half was not stolen");
    assert_eq!(
        first,
        32..36,
        "the stolen half did not split again: {leaves:?}"
    );
    let (zero, _) = leaves.iter().find(|(r, _)| r.start == 0).unwrap();
    assert_eq!(
        *zero,
        0..16,
        "the home half split past its budget: {leaves:?}"
    );
}

/// A panic in one leaf is re-raised by the loop only after every other leaf ran to its end
/// (no leaf still runs, or is skipped, when the caller sees the panic).
#[test]
fn a_leaf_panic_is_raised_after_all_other_leaves_finished() {
    each_worker_count(|jobs, n| {
        let ran = AtomicUsize::new(0);
        let failed_len = AtomicUsize::new(0);
        let running = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            jobs.run(|ctx| {
                ctx.par_for_chunks(0..1000, 10, |c, sub| {
                    if sub.contains(&5) {
                        failed_len.store(sub.len(), Ordering::SeqCst);
                        panic!("leaf {sub:?} failed");
                    }
                    running.fetch_add(1, Ordering::SeqCst);
                    c.yield_now();
                    ran.fetch_add(sub.len(), Ordering::SeqCst);
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            })
        }));
        let msg = r.expect_err("the panic was lost");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.starts_with("leaf 0.."), "{n} workers: payload {msg:?}");
        assert_eq!(
            running.load(Ordering::SeqCst),
            0,
            "{n} workers: a leaf still ran"
        );
        assert_eq!(
            ran.load(Ordering::SeqCst) + failed_len.load(Ordering::SeqCst),
            1000,
            "{n} workers: leaves were skipped"
        );
    });
}

/// The loop unwinds only after every leaf is done: the right leaf starts, then the left one
/// panics while the right one still runs (yielding); when the panic reaches the caller, the
/// right leaf has finished.
#[test]
fn the_panic_waits_for_the_other_leaf() {
    for n in [2, 4, 8] {
        let jobs = common::system(n);
        let started = Counter::new();
        started.add(1);
        let done = AtomicBool::new(false);
        let r = catch_unwind(AssertUnwindSafe(|| {
            jobs.run(|ctx| {
                ctx.par_for(0..2, 1, |c, i| {
                    if i == 0 {
                        // Wait until the other leaf has started, then fail. (The timeout only
                        // keeps a loop that never splits from hanging here.)
                        c.wait_for_counter_timeout(&started, 0, Duration::from_secs(60));
                        panic!("left leaf failed");
                    } else {
                        started.sub(1);
                        for _ in 0..50 {
                            c.yield_now();
                        }
                        done.store(true, Ordering::SeqCst);
                    }
                });
            })
        }));
        assert!(r.is_err(), "{n} workers");
        assert!(
            done.load(Ordering::SeqCst),
            "{n} workers: unwound before the other leaf finished"
        );
    }
}

/// Loops work inside scopes (through the `Scope`'s `Ctx`) and nest.
#[test]
fn loops_run_inside_scopes_and_nest() {
    each_worker_count(|jobs, n| {
        let mut grid = vec![vec![0u32; 300]; 40];
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.par_chunks_mut(&mut grid, 3, |c, row0, rows| {
                    for (k, row) in rows.iter_mut().enumerate() {
                        c.par_chunks_mut(row, 50, |_, col0, cells| {
                            for (j, cell) in cells.iter_mut().enumerate() {
                                *cell = ((row0 + k) * 1000 + col0 + j) as u32;
                            }
                        });
                    }
                });
                s.spawn(|s| {
                    let total = s.par_reduce(0..100, 1, || 0, |_, i| i, |a, b| a + b);
                    assert_eq!(total, 4950);
                });
            });
        });
        for (r, row) in grid.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                assert_eq!(v, (r * 1000 + c) as u32, "{n} workers");
            }
        }
    });
}

/// Grain 0 is refused with a clear message.
#[test]
fn grain_zero_panics() {
    let jobs = common::system(1);
    let r = catch_unwind(AssertUnwindSafe(|| {
        jobs.run(|ctx: &Ctx| ctx.par_for(0..10, 0, |_, _| {}))
    }));
    let p = r.expect_err("grain 0 accepted");
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("grain must be at least 1"), "{msg:?}");
}

/// A small deterministic generator (no dependency): the test data.
fn lcg(n: usize, seed: u64, modulo: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % modulo
        })
        .collect()
}

/// The parallel sort agrees with the standard sort on random, duplicate-heavy, sorted,
/// reversed and all-equal inputs, for small and large grains, and really forks with several
/// workers (more than one worker takes part).
#[test]
fn par_sort_unstable_sorts_like_std() {
    each_worker_count(|jobs, n| {
        let inputs = [
            lcg(100_000, 1, u64::MAX),
            lcg(50_000, 2, 10),
            (0..30_000).collect(),
            (0..30_000).rev().collect(),
            vec![7; 20_000],
            lcg(5, 3, 100),
            Vec::new(),
        ];
        for (k, input) in inputs.iter().enumerate() {
            for grain in [1, 64, 4096] {
                let mut want = input.clone();
                want.sort_unstable();
                let mut got = input.clone();
                let mut by = input.clone();
                jobs.run(|ctx| {
                    ctx.par_sort_unstable(&mut got, grain);
                    ctx.par_sort_unstable_by(&mut by, grain, |a, b| b.cmp(a));
                });
                assert!(
                    got == want,
                    "{n} workers, input {k}, grain {grain}: not sorted"
                );
                by.reverse();
                assert!(
                    by == want,
                    "{n} workers, input {k}, grain {grain}: `_by` not sorted"
                );
            }
        }
    });
}

/// The sort forks: with two workers, once the first partition is done (the right side is
/// published), comparisons on the calling thread spin — holding its worker — until a
/// comparison ran on another thread, which only a thief that took a side can do.
#[test]
fn par_sort_runs_on_several_workers() {
    let jobs = common::system(2);
    let other = AtomicBool::new(false);
    let home_calls = AtomicUsize::new(0);
    let len = 10_000;
    let mut v = lcg(len, 4, u64::MAX);
    let home = std::thread::current().id();
    jobs.run(|ctx| {
        ctx.par_sort_unstable_by(&mut v, 16, |a, b| {
            if std::thread::current().id() != home {
                other.store(true, Ordering::Release);
            // The first partition makes at most `len + 2` comparisons (median of three, then
            // one per element); later ones come after its fork.
            } else if home_calls.fetch_add(1, Ordering::Relaxed) > len + 2 {
                spin_until(&other);
            }
            a.cmp(b)
        });
    });
    assert!(v.windows(2).all(|w| w[0] <= w[1]));
    assert!(other.into_inner());
}

/// A comparison that panics: the panic reaches the caller and the data is still a
/// permutation of the input.
#[test]
fn par_sort_compare_panic_keeps_a_permutation() {
    each_worker_count(|jobs, n| {
        let input = lcg(20_000, 5, 1000);
        let mut v = input.clone();
        let calls = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            jobs.run(|ctx| {
                ctx.par_sort_unstable_by(&mut v, 32, |a, b| {
                    if calls.fetch_add(1, Ordering::Relaxed) == 50_000 {
                        panic!("compare failed");
                    }
                    a.cmp(b)
                })
            })
        }));
        assert!(r.is_err(), "{n} workers: the panic was lost");
        let (mut a, mut b) = (input, v);
        a.sort_unstable();
        b.sort_unstable();
        assert!(a == b, "{n} workers: elements lost or duplicated");
    });
}
