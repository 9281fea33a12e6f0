//! Frames as first-class objects, tried from the outside: frames in flight and their
//! ordering, retirement, the per-worker frame arenas (sharing, non-overlap, reuse, growth,
//! budgets), later jobs, panics, loops from several jobs at once, and migration mode.
//!
//! Overlap and ordering are built from waits, never from timing: a later job of frame N that
//! waits for an event only frame N + 1's body sets completes only if the two overlap.

mod common;

use common::{child_stderr, hang_guard};
use jobsys::sync::{Event, EventKind};
use jobsys::{ArenaFull, Ctx, FrameStats, JobSystem};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The worker counts the frame tests run at.
const COUNTS: [usize; 3] = [1, 2, 4];

/// A system with `n` workers and `k` frames in flight.
fn sys(n: usize, k: usize) -> JobSystem {
    JobSystem::builder()
        .workers(n)
        .frames_in_flight(k)
        .build()
        .unwrap()
}

fn events(n: usize) -> Vec<Event> {
    (0..n).map(|_| Event::new(EventKind::Manual)).collect()
}

/// A little work that parks the calling job (a scope of jobs it waits for).
fn some_jobs(ctx: &Ctx, n: u64) -> u64 {
    let sum = AtomicU64::new(0);
    ctx.scope(|s| {
        for i in 0..n {
            let sum = &sum;
            s.spawn(move |_| {
                sum.fetch_add(i, Ordering::Relaxed);
            });
        }
    });
    sum.into_inner()
}

/// Runs `body` in a child process (this test binary, filtered to `test`) with a hang guard, so
/// that a deadlock — how these tests fail when frames do not overlap or order as they should —
/// ends in a report instead of a hung run.
fn guarded(test: &str, body: impl FnOnce()) {
    const ENV: &str = "JOBSYS_FRAMES_CHILD";
    if std::env::var_os(ENV).is_none() {
        let report = child_stderr(test, ENV, "child: done");
        assert!(report.contains("child: done"), "{report}");
        return;
    }
    hang_guard(300, "a frames test hung");
    body();
    eprintln!("child: done");
}

// ---------------------------------------------------------------------------------------------
// Frames in flight and ordering
// ---------------------------------------------------------------------------------------------

/// K = 2: frame N's later job waits for an event that only frame N + 1's body sets, so the
/// loop completes only if frame N + 1's body runs while frame N is still live.
#[test]
fn with_two_in_flight_the_next_body_overlaps_the_later_job() {
    guarded(
        "with_two_in_flight_the_next_body_overlaps_the_later_job",
        || {
            const FRAMES: usize = 12;
            for n in COUNTS {
                let jobs = sys(n, 2);
                let ev = events(FRAMES);
                let later_done = AtomicUsize::new(0);
                jobs.run(|ctx| {
                    ctx.frames(|frames| {
                        for i in 0..FRAMES {
                            frames.frame(|f| {
                                if i > 0 {
                                    // Frame i - 1's later job cannot have finished: it waits for us.
                                    assert!(!f.is_retired(f.index() - 1), "{n} workers, frame {i}");
                                    ev[i - 1].set();
                                }
                                let (ev, later_done) = (&ev, &later_done);
                                f.later(ctx, move |c| {
                                    ev[i].wait(c);
                                    later_done.fetch_add(1, Ordering::Relaxed);
                                });
                            });
                        }
                        // The last frame's later job: nobody opens a frame after it.
                        ev[FRAMES - 1].set();
                    });
                    assert_eq!(later_done.load(Ordering::Relaxed), FRAMES);
                });
            }
        },
    );
}

/// K = 1: frame N + 1 opens only after frame N retired, later job included, and sees what
/// that later job wrote.
#[test]
fn with_one_in_flight_the_next_frame_opens_after_retirement() {
    const FRAMES: u64 = 10;
    for n in COUNTS {
        let jobs = sys(n, 1);
        let written = AtomicU64::new(u64::MAX);
        jobs.run(|ctx| {
            ctx.frames(|frames| {
                for i in 0..FRAMES {
                    frames.frame(|f| {
                        if i > 0 {
                            let prev = f.index() - 1;
                            assert!(f.is_retired(prev), "{n} workers: frame {prev} live");
                            assert!(ctx.is_frame_retired(prev));
                            assert_eq!(written.load(Ordering::Relaxed), prev, "{n} workers");
                        }
                        assert!(!f.is_retired(f.index()));
                        let written = &written;
                        f.later(ctx, move |c| {
                            // Park for a while: the next opener must wait for this.
                            assert_eq!(some_jobs(c, 16), 120);
                            written.store(f.index(), Ordering::Relaxed);
                        });
                    });
                }
            });
        });
    }
}

/// K = 2: opening frame 2 parks until frame 0 retired. Frame 0's later job is held on an
/// event that frame 1's later job sets only once the loop is about to open frame 2; frame 2's
/// body must then find frame 0 retired and its later job done.
#[test]
fn opening_frame_n_plus_k_parks_until_frame_n_retired() {
    guarded("opening_frame_n_plus_k_parks_until_frame_n_retired", || {
        for n in COUNTS {
            let jobs = sys(n, 2);
            let release0 = Event::new(EventKind::Manual);
            let (about_to_open2, opened2, done0) = (
                AtomicBool::new(false),
                AtomicBool::new(false),
                AtomicBool::new(false),
            );
            jobs.run(|ctx| {
                ctx.frames(|frames| {
                    let (release0, about_to_open2, opened2, done0) =
                        (&release0, &about_to_open2, &opened2, &done0);
                    frames.frame(|f| {
                        f.later(ctx, move |c| {
                            release0.wait(c);
                            done0.store(true, Ordering::Relaxed);
                        });
                    });
                    frames.frame(|f| {
                        f.later(ctx, move |c| {
                            while !about_to_open2.load(Ordering::Acquire) {
                                c.yield_now();
                            }
                            // Frame 0 is held by us, so frame 2 cannot have opened.
                            assert!(!opened2.load(Ordering::Acquire), "{n} workers");
                            release0.set();
                        });
                    });
                    about_to_open2.store(true, Ordering::Release);
                    frames.frame(|f| {
                        opened2.store(true, Ordering::Release);
                        assert_eq!(f.index(), 2);
                        assert!(
                            f.is_retired(0),
                            "{n} workers: frame 2 opened beside frame 0"
                        );
                        assert!(done0.load(Ordering::Relaxed));
                    });
                });
            });
        }
    });
}

/// Indices go up by one per frame across loops and single frames; `Ctx::frame` returns only
/// after its later jobs ran; `Ctx::frames` only after every frame it opened retired.
#[test]
fn indices_are_sequential_and_frame_and_frames_wait_for_later_jobs() {
    for n in COUNTS {
        let jobs = sys(n, 2);
        let mut seen = Vec::new();
        let later_done = AtomicUsize::new(0);
        jobs.run(|ctx| {
            for _ in 0..3 {
                let later_ran = AtomicBool::new(false);
                let index = ctx.frame(|f| {
                    let later_ran = &later_ran;
                    f.later(ctx, move |c| {
                        assert_eq!(some_jobs(c, 32), 496);
                        later_ran.store(true, Ordering::Relaxed);
                    });
                    f.index()
                });
                assert!(later_ran.load(Ordering::Relaxed), "{n} workers: Ctx::frame");
                assert!(ctx.is_frame_retired(index));
                seen.push(index);
            }
            let loop_indices = ctx.frames(|frames| {
                let mut v = Vec::new();
                for _ in 0..6 {
                    v.push(frames.frame(|f| {
                        let later_done = &later_done;
                        for _ in 0..3 {
                            f.later(ctx, move |c| {
                                assert_eq!(some_jobs(c, 8), 28);
                                later_done.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                        f.index()
                    }));
                }
                v
            });
            assert_eq!(later_done.load(Ordering::Relaxed), 18, "{n} workers");
            for &i in &loop_indices {
                assert!(ctx.is_frame_retired(i));
            }
            seen.extend(loop_indices);
            seen.push(ctx.frame(|f| f.index()));
        });
        assert_eq!(seen, (0..10).collect::<Vec<u64>>(), "{n} workers");
    }
}

/// In-order render: the later job of frame N + 1 waits for frame N to retire before it
/// presents. Frame N's later job is held until frame N + 1's later job runs, so the wait is
/// real; the presented order must still be ascending.
#[test]
fn wait_retired_orders_later_jobs() {
    guarded("wait_retired_orders_later_jobs", || {
        const FRAMES: usize = 16;
        for n in COUNTS {
            let jobs = sys(n, 2);
            let ev = events(FRAMES);
            let log = Mutex::new(Vec::new());
            jobs.run(|ctx| {
                ctx.frames(|frames| {
                    for i in 0..FRAMES {
                        frames.frame(|f| {
                            let (ev, log) = (&ev, &log);
                            f.later(ctx, move |c| {
                                if i > 0 {
                                    ev[i - 1].set();
                                    f.wait_retired(c, f.index() - 1);
                                    assert!(f.is_retired(f.index() - 1));
                                }
                                ev[i].wait(c);
                                log.lock().unwrap().push(f.index());
                            });
                        });
                    }
                    ev[FRAMES - 1].set();
                });
            });
            assert_eq!(
                log.into_inner().unwrap(),
                (0..FRAMES as u64).collect::<Vec<_>>(),
                "{n} workers"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Arenas
// ---------------------------------------------------------------------------------------------

/// Data one job allocated is read by jobs of the same frame on any worker: scope jobs spawned
/// after, and a later job; scope jobs' own allocations reach a later job too.
#[test]
fn arena_data_is_shared_across_workers_within_the_frame() {
    for n in COUNTS {
        let jobs = sys(n, 2);
        let checked = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.frames(|frames| {
                for round in 0..8u32 {
                    frames.frame(|f| {
                        let data: &[u32] = f
                            .arena(ctx)
                            .alloc_slice_fill_with(1024, |i| i as u32 ^ round);
                        let parts = Mutex::new(Vec::new());
                        ctx.scope(|s| {
                            for j in 0..16u32 {
                                let parts = &parts;
                                s.spawn(move |s| {
                                    assert!(
                                        data.iter()
                                            .enumerate()
                                            .all(|(i, &x)| x == i as u32 ^ round)
                                    );
                                    let mine: &[u32] =
                                        f.arena(s).alloc_slice_fill_copy(64, j * 1000 + round);
                                    parts.lock().unwrap().push((j, mine));
                                });
                            }
                        });
                        let parts = parts.into_inner().unwrap();
                        assert_eq!(parts.len(), 16);
                        let checked = &checked;
                        f.later(ctx, move |_| {
                            assert!(data.iter().enumerate().all(|(i, &x)| x == i as u32 ^ round));
                            for (j, mine) in parts {
                                assert!(mine.iter().all(|&x| x == j * 1000 + round));
                            }
                            checked.fetch_add(1, Ordering::Relaxed);
                        });
                    });
                }
            });
        });
        assert_eq!(checked.load(Ordering::Relaxed), 8, "{n} workers");
    }
}

/// Many jobs each allocate a different size and fill it with their own pattern; at the end
/// of the frame every allocation still holds its pattern and no two overlap. Some jobs park
/// between two allocations (other jobs allocate on their worker meanwhile).
#[test]
fn arena_allocations_do_not_overlap_and_survive_parking() {
    const JOBS: usize = 300;
    for n in COUNTS {
        let jobs = sys(n, 2);
        jobs.run(|ctx| {
            ctx.frames(|frames| {
                for round in 0..4usize {
                    frames.frame(|f| {
                        let slices: Mutex<Vec<(usize, &[u64])>> = Mutex::new(Vec::new());
                        ctx.scope(|s| {
                            for j in 0..JOBS {
                                let slices = &slices;
                                s.spawn(move |s| {
                                    let tag = (j * 7919 + round) as u64;
                                    let arena = f.arena(s);
                                    let a: &[u64] = arena.alloc_slice_fill_copy(1 + j % 13, tag);
                                    let mut pushed = vec![(j, a)];
                                    if j % 5 == 0 {
                                        // Park; other jobs bump this worker's arena meanwhile.
                                        assert_eq!(some_jobs(s, 4), 6);
                                        let b: &[u64] =
                                            arena.alloc_slice_fill_copy(3 + j % 7, !tag);
                                        pushed.push((j + JOBS, b));
                                    }
                                    slices.lock().unwrap().extend(pushed);
                                });
                            }
                        });
                        let mut all = slices.into_inner().unwrap();
                        assert_eq!(all.len(), JOBS + JOBS / 5);
                        for &(id, sl) in &all {
                            let (j, want) = if id >= JOBS {
                                (id - JOBS, !((id - JOBS) * 7919 + round) as u64)
                            } else {
                                (id, (id * 7919 + round) as u64)
                            };
                            assert!(sl.iter().all(|&x| x == want), "{n} workers: job {j}");
                        }
                        all.sort_by_key(|(_, s)| s.as_ptr() as usize);
                        for w in all.windows(2) {
                            let end = w[0].1.as_ptr() as usize + std::mem::size_of_val(w[0].1);
                            assert!(end <= w[1].1.as_ptr() as usize, "{n} workers: overlap");
                        }
                    });
                }
            });
        });
    }
}

/// On one worker with K slots, frame N + K's first allocation lands where frame N's did, and
/// each frame starts with nothing used: memory is reused once a frame retired.
#[test]
fn arena_memory_is_reused_after_retirement() {
    for k in [1, 2, 3] {
        let jobs = sys(1, k);
        let mut firsts = Vec::new();
        jobs.run(|ctx| {
            for _ in 0..(4 * k) {
                firsts.push(ctx.frame(|f| {
                    let arena = f.arena(ctx);
                    assert_eq!(arena.used(), 0);
                    let p = arena.alloc(0u64) as *mut u64 as usize;
                    arena.alloc_slice_fill_copy(1000, 1u8);
                    assert_eq!(arena.used(), 1008);
                    p
                }));
            }
        });
        for i in k..firsts.len() {
            assert_eq!(firsts[i], firsts[i - k], "K = {k}, frame {i}");
        }
        // The K slots have distinct arenas.
        let mut distinct = firsts[..k].to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), k);
    }
}

/// An arena vector grows (moving when it is not the last allocation), and `leak` hands its
/// elements to a later job for the rest of the frame.
#[test]
fn arena_vec_grows_and_leaks_to_a_later_job() {
    for n in COUNTS {
        let jobs = sys(n, 2);
        let sums = Mutex::new(Vec::new());
        jobs.run(|ctx| {
            ctx.frames(|frames| {
                for round in 0..4u64 {
                    frames.frame(|f| {
                        let arena = f.arena(ctx);
                        let mut v = arena.vec::<u64>();
                        let mut others = Vec::new();
                        for i in 0..5000u64 {
                            v.push(i * round);
                            if i % 1000 == 0 {
                                // Not the last allocation any more: the next growth moves.
                                others.push(&*arena.alloc(i));
                            }
                        }
                        assert!(v.capacity() >= 5000);
                        let leaked: &[u64] = v.leak();
                        for (k, o) in others.iter().enumerate() {
                            assert_eq!(**o, k as u64 * 1000);
                        }
                        let sums = &sums;
                        f.later(ctx, move |_| {
                            assert!(
                                leaked
                                    .iter()
                                    .enumerate()
                                    .all(|(i, &x)| x == i as u64 * round)
                            );
                            sums.lock().unwrap().push(leaked.iter().sum::<u64>());
                        });
                    });
                }
            });
        });
        let mut sums = sums.into_inner().unwrap();
        sums.sort_unstable();
        let base: u64 = (0..5000).sum();
        assert_eq!(sums, [0, base, 2 * base, 3 * base], "{n} workers");
    }
}

/// Migration mode: a job that waits may resume on another worker; a fresh arena taken after
/// the wait is that worker's, and everything allocated before and after stays intact.
#[test]
fn migration_mode_fresh_arena_after_a_wait() {
    for n in [2, 4] {
        // SAFETY: the jobs hold nothing thread-affine across a wait: each takes its arena
        // afresh after every wait, and keeps only `&'f` data across it.
        let jobs = unsafe { JobSystem::builder().workers(n).allow_migration() }
            .build()
            .unwrap();
        let migrated = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.frames(|frames| {
                for round in 0..6u64 {
                    frames.frame(|f| {
                        let all = Mutex::new(Vec::new());
                        ctx.scope(|s| {
                            for j in 0..64u64 {
                                let (all, migrated) = (&all, &migrated);
                                s.spawn(move |s| {
                                    let before = s.worker_index();
                                    let a: &[u64] = f.arena(s).alloc_slice_fill_copy(8, j ^ round);
                                    let mut mine = vec![(j ^ round, a)];
                                    for step in 0..3u64 {
                                        assert_eq!(some_jobs(s, 6), 15);
                                        let tag = (j << 8 | step) ^ round;
                                        let b: &[u64] = f
                                            .arena(s)
                                            .alloc_slice_fill_with(4 + step as usize, |_| tag);
                                        mine.push((tag, b));
                                    }
                                    if s.worker_index() != before {
                                        migrated.fetch_add(1, Ordering::Relaxed);
                                    }
                                    all.lock().unwrap().extend(mine);
                                });
                            }
                        });
                        let mut all = all.into_inner().unwrap();
                        assert_eq!(all.len(), 64 * 4);
                        for &(tag, sl) in &all {
                            assert!(sl.iter().all(|&x| x == tag), "{n} workers");
                        }
                        all.sort_by_key(|(_, s)| s.as_ptr() as usize);
                        for w in all.windows(2) {
                            let end = w[0].1.as_ptr() as usize + std::mem::size_of_val(w[0].1);
                            assert!(end <= w[1].1.as_ptr() as usize, "{n} workers: overlap");
                        }
                        let all = &*f.arena(ctx).alloc_slice_copy(&all);
                        f.later(ctx, move |_| {
                            assert!(all.iter().all(|(tag, sl)| sl.iter().all(|x| x == tag)));
                        });
                    });
                }
            });
        });
        // Informational only: whether any job resumed elsewhere depends on the scheduler.
        eprintln!(
            "{n} workers: {} jobs resumed on another worker",
            migrated.load(Ordering::Relaxed)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Budgets and stats
// ---------------------------------------------------------------------------------------------

/// `frame_arena(cap, cap)`: a strict budget. `try_alloc` past it says `ArenaFull` with the
/// right fields, `alloc` panics with that message, on the body's worker and on others.
#[test]
fn a_strict_arena_budget_refuses_past_the_capacity() {
    const CAP: usize = 4096;
    for n in COUNTS {
        let jobs = JobSystem::builder()
            .workers(n)
            .frame_arena(CAP, CAP)
            .build()
            .unwrap();
        let refused = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.frame(|f| {
                let arena = f.arena(ctx);
                assert!(arena.try_alloc([7u8; CAP]).is_ok());
                assert_eq!(arena.reserved(), CAP);
                let err = arena.try_alloc(1u16).unwrap_err();
                assert_eq!(
                    err,
                    ArenaFull {
                        requested: 2,
                        used: CAP,
                        limit: CAP,
                        worker: ctx.worker_index(),
                    }
                );
                let msg = panic_message(catch_unwind(AssertUnwindSafe(|| {
                    arena.alloc(5u32);
                })));
                assert!(msg.contains("frame arena of worker"), "{msg}");
                assert_eq!(msg, err_with(err, 4, CAP).to_string());
                ctx.scope(|s| {
                    for _ in 0..n * 2 {
                        let refused = &refused;
                        s.spawn(move |s| {
                            let arena = f.arena(s);
                            // Too big even for an empty arena.
                            let err = arena.try_alloc([0u8; CAP + 1]).unwrap_err();
                            assert_eq!(err.worker, s.worker_index());
                            assert_eq!((err.requested, err.limit), (CAP + 1, CAP));
                            let r = catch_unwind(AssertUnwindSafe(|| {
                                arena.alloc_slice_fill_copy(CAP + 64, 0u8);
                            }));
                            assert!(panic_message(r).contains("is exhausted"));
                            refused.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            });
        });
        assert_eq!(refused.load(Ordering::Relaxed), n * 2);
    }
}

fn err_with(e: ArenaFull, requested: usize, used: usize) -> ArenaFull {
    ArenaFull {
        requested,
        used,
        ..e
    }
}

fn panic_message<T>(r: std::thread::Result<T>) -> String {
    let payload = match r {
        Ok(_) => panic!("did not panic"),
        Err(p) => p,
    };
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        panic!("a panic payload that is not a message")
    }
}

/// `frame_arena(cap, 8 * cap)`: allocations past the capacity succeed by growing, counted in
/// the frame's stats once per slot; a later frame of the same demand in the same slot grows
/// nothing; past the limit, `ArenaFull`. The stats' `arena_used` is exactly what the frame
/// allocated.
#[test]
fn arena_growth_is_counted_once_and_kept() {
    const CAP: usize = 4096;
    let jobs = JobSystem::builder()
        .workers(1)
        .frames_in_flight(2)
        .frame_arena(CAP, 8 * CAP)
        .build()
        .unwrap();
    let mut stats = FrameStats::new();
    assert!(!jobs.frame_stats(&mut stats));
    for frame in 0..6u64 {
        jobs.run(|ctx| {
            ctx.frame(|f| {
                assert_eq!(f.index(), frame);
                let arena = f.arena(ctx);
                let parts: Vec<&[u8]> = (0..3u8)
                    .map(|i| &*arena.alloc_slice_fill_copy(CAP, i))
                    .collect();
                assert!(arena.reserved() > CAP);
                assert_eq!(arena.used(), 3 * CAP);
                for (i, p) in parts.iter().enumerate() {
                    assert!(p.iter().all(|&x| x == i as u8));
                }
            });
            assert!(ctx.frame_stats(&mut stats));
        });
        assert_eq!(stats.index, frame);
        assert_eq!(stats.arena_used, 3 * CAP);
        assert_eq!(stats.workers().len(), 1);
        assert_eq!(stats.workers()[0].arena_used, 3 * CAP);
        assert!(stats.workers()[0].arena_high_water >= 3 * CAP);
        if frame < 2 {
            // The first use of each of the two slots grows it.
            assert!(stats.arena_grown > 0, "frame {frame}: {stats:?}");
            assert_eq!(stats.workers()[0].arena_grown, stats.arena_grown);
        } else {
            assert_eq!(stats.arena_grown, 0, "frame {frame} grew again: {stats:?}");
        }
    }
    // Past the limit.
    jobs.run(|ctx| {
        ctx.frame(|f| {
            let arena = f.arena(ctx);
            let err = arena.try_alloc([0u8; 8 * CAP]).unwrap_err();
            assert_eq!(
                (err.requested, err.used, err.limit, err.worker),
                (8 * CAP, 0, 8 * CAP, 0)
            );
            // Each slot keeps its block and an 8 KiB chunk (12 KiB of the 32 KiB limit): a
            // request for exactly the 20 KiB left still fits (chunks are 64-byte aligned).
            assert_eq!(arena.reserved(), 3 * CAP);
            assert_eq!(arena.alloc_slice_fill_copy(5 * CAP, 3u8).len(), 5 * CAP);
            assert_eq!(arena.reserved(), 8 * CAP);
            let err = arena.try_alloc(0u8).unwrap_err();
            assert_eq!((err.requested, err.used, err.limit), (1, 5 * CAP, 8 * CAP));
        });
    });
}

/// The stats' per-worker `arena_used` is exactly what the frame allocated on that worker, with
/// sizes that are multiples of their alignment (no padding).
#[test]
fn frame_stats_arena_used_is_exact() {
    let jobs = sys(1, 2);
    let mut stats = FrameStats::new();
    jobs.run(|ctx| {
        for frame in 0..4usize {
            let index = ctx.frame(|f| {
                let arena = f.arena(ctx);
                arena.alloc([0u64; 3]);
                arena.alloc_slice_fill_copy(10 + frame, 1u32);
                arena.alloc_str("ab");
                ctx.scope(|s| {
                    s.spawn(move |s| {
                        f.arena(s).alloc(1u16);
                    });
                });
                f.index()
            });
            assert!(ctx.frame_stats(&mut stats));
            assert_eq!(stats.index, index);
            let want = 24 + 4 * (10 + frame) + 2 + 2;
            assert_eq!(stats.workers()[0].arena_used, want, "frame {frame}");
            assert_eq!(stats.arena_used, want);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------------------------

/// A panic in a later job reaches `Ctx::frames` (or `Ctx::frame`) with its own payload, after
/// every frame retired and every other later job ran; the system stays usable.
#[test]
fn a_later_job_panic_reaches_the_loop_after_every_frame_retired() {
    #[derive(Debug, PartialEq)]
    struct Boom(u64);
    for n in COUNTS {
        let jobs = sys(n, 2);
        let done = AtomicUsize::new(0);
        let r = jobs.run(|ctx| {
            let mut opened = Vec::new();
            let r = catch_unwind(AssertUnwindSafe(|| {
                ctx.frames(|frames| {
                    for i in 0..6u64 {
                        opened.push(frames.frame(|f| {
                            let done = &done;
                            f.later(ctx, move |c| {
                                assert_eq!(some_jobs(c, 8), 28);
                                if i == 1 || i == 4 {
                                    std::panic::panic_any(Boom(i));
                                }
                                done.fetch_add(1, Ordering::Relaxed);
                            });
                            f.index()
                        }));
                    }
                })
            }));
            for &i in &opened {
                assert!(ctx.is_frame_retired(i), "{n} workers: frame {i} live");
            }
            assert_eq!(done.load(Ordering::Relaxed), 4);
            let r2 = catch_unwind(AssertUnwindSafe(|| {
                ctx.frame(|f| f.later(ctx, |_| std::panic::panic_any(Boom(99))))
            }));
            assert_eq!(r2.unwrap_err().downcast_ref::<Boom>(), Some(&Boom(99)));
            r
        });
        let payload = r.unwrap_err();
        let boom = payload
            .downcast_ref::<Boom>()
            .expect("the original payload");
        assert!(boom.0 == 1 || boom.0 == 4, "{n} workers: {boom:?}");
        // Still usable.
        assert_eq!(jobs.run(|ctx| ctx.frame(|_| some_jobs(ctx, 10))), 45);
    }
}

/// A panic in a frame body propagates out of `Frames::frame`; the frames after it work; a
/// later-job panic wins over the body's at the loop.
#[test]
fn a_frame_body_panic_propagates_and_the_next_frames_work() {
    for n in COUNTS {
        let jobs = sys(n, 2);
        let later_ran = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.frames(|frames| {
                for i in 0..6u64 {
                    let later_ran = &later_ran;
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        frames.frame(|f| {
                            f.later(ctx, move |_| {
                                later_ran.fetch_add(1, Ordering::Relaxed);
                            });
                            let x = f.arena(ctx).alloc(i);
                            if i % 2 == 1 {
                                panic!("body {i}");
                            }
                            *x
                        })
                    }));
                    match r {
                        Ok(v) => assert_eq!(v, i),
                        Err(p) => assert_eq!(panic_message(Err::<(), _>(p)), format!("body {i}")),
                    }
                }
            });
            assert_eq!(later_ran.load(Ordering::Relaxed), 6, "{n} workers");
            // Body panic alone: re-raised by the loop.
            let r = catch_unwind(AssertUnwindSafe(|| {
                ctx.frames(|frames| frames.frame(|_| panic!("body only")))
            }));
            assert_eq!(panic_message(r), "body only");
            // Body and later job both panic: the later job's payload wins.
            let r = catch_unwind(AssertUnwindSafe(|| {
                ctx.frames(|frames| {
                    frames.frame(|f| {
                        f.later(ctx, |_| panic!("later"));
                        panic!("body");
                    })
                })
            }));
            assert_eq!(panic_message(r), "later");
            assert_eq!(ctx.frame(|f| *f.arena(ctx).alloc(5u8)), 5);
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Loops from several jobs at once
// ---------------------------------------------------------------------------------------------

/// Two jobs each run a loop of frames at once: every index is used exactly once, each loop's
/// later jobs all ran when its `frames` returned, and nothing deadlocks.
#[test]
fn two_loops_at_once_share_the_index_sequence() {
    const PER_LOOP: usize = 40;
    guarded("two_loops_at_once_share_the_index_sequence", || {
        for n in [2, 4] {
            for k in [2, 3] {
                let jobs = sys(n, k);
                let indices = Mutex::new(Vec::new());
                jobs.run(|ctx| {
                    ctx.scope(|s| {
                        for lp in 0..2 {
                            let indices = &indices;
                            s.spawn(move |s| {
                                let done = AtomicUsize::new(0);
                                let mine = s.frames(|frames| {
                                    let mut mine = Vec::new();
                                    for _ in 0..PER_LOOP {
                                        mine.push(frames.frame(|f| {
                                            let v: &[u64] =
                                                f.arena(s).alloc_slice_fill_copy(16, f.index());
                                            let done = &done;
                                            f.later(s, move |c| {
                                                assert_eq!(some_jobs(c, 4), 6);
                                                assert!(v.iter().all(|&x| x == f.index()));
                                                done.fetch_add(1, Ordering::Relaxed);
                                            });
                                            f.index()
                                        }));
                                    }
                                    mine
                                });
                                assert_eq!(done.load(Ordering::Relaxed), PER_LOOP, "loop {lp}");
                                assert!(mine.windows(2).all(|w| w[0] < w[1]));
                                indices.lock().unwrap().extend(mine);
                            });
                        }
                    });
                });
                let mut all = indices.into_inner().unwrap();
                all.sort_unstable();
                assert_eq!(
                    all,
                    (0..2 * PER_LOOP as u64).collect::<Vec<_>>(),
                    "{n} workers, K = {k}"
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Misuse
// ---------------------------------------------------------------------------------------------

/// `Frame::arena` with a `Ctx` of another system panics with a message.
#[test]
fn frame_arena_with_another_systems_ctx_panics() {
    let a = sys(2, 2);
    a.run(|ctx| {
        ctx.frame(|f| {
            // A second system on another thread (a `JobSystem` stays on its thread).
            let msg = std::thread::scope(|t| {
                t.spawn(|| {
                    let b = sys(1, 2);
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        b.run(|other| {
                            f.arena(other).alloc(1u8);
                        })
                    }));
                    // `b` remains usable.
                    assert_eq!(b.run(|c| c.frame(|g| *g.arena(c).alloc(4u8))), 4);
                    panic_message(r)
                })
                .join()
                .unwrap()
            });
            assert!(msg.contains("belongs to another JobSystem"), "{msg}");
            // This system's own arena still works.
            assert_eq!(*f.arena(ctx).alloc(3u8), 3);
        })
    });
}

/// A later job pinned to worker 0 (present on the main thread) runs there, whichever worker
/// submitted it.
#[test]
fn a_pinned_later_job_runs_on_its_worker() {
    for n in COUNTS {
        let jobs = sys(n, 2);
        let ran = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.frames(|frames| {
                for _ in 0..4 {
                    frames.frame(|f| {
                        ctx.scope(|s| {
                            for _ in 0..8 {
                                let ran = &ran;
                                s.spawn(move |s| {
                                    let v: &u64 = f.arena(s).alloc(f.index());
                                    f.later_with(
                                        s,
                                        jobsys::job_meta!(
                                            "present",
                                            affinity(jobsys::Affinity::Worker(0))
                                        ),
                                        move |c| {
                                            assert_eq!(c.worker_index(), 0);
                                            assert_eq!(*v, f.index());
                                            ran.fetch_add(1, Ordering::Relaxed);
                                        },
                                    );
                                });
                            }
                        });
                    });
                }
            });
        });
        assert_eq!(ran.load(Ordering::Relaxed), 32, "{n} workers");
    }
}

/// The scheduler figures of a frame's stats count what ran in it: a frame of 100 scope jobs
/// and one later job, with nothing else running, reports exactly 101 jobs (summed over the
/// workers, and the per-worker shares add up), one more frame's worth each frame, and the
/// index of the frame it describes.
#[test]
fn frame_stats_count_the_jobs_of_the_frame() {
    for n in COUNTS {
        let jobs = sys(n, 2);
        let mut stats = FrameStats::new();
        jobs.run(|ctx| {
            assert!(!ctx.frame_stats(&mut stats), "no frame has completed yet");
            for round in 0..3u64 {
                let index = ctx.frame(|f| {
                    ctx.scope(|s| {
                        for _ in 0..100 {
                            s.spawn(move |ctx| {
                                f.arena(ctx).alloc(1u64);
                            });
                        }
                    });
                    f.later(ctx, |_| ());
                    f.index()
                });
                // `frame` returned: the frame retired, and with no newer frame open its
                // period ended at its retirement.
                assert!(ctx.frame_stats(&mut stats), "{n} workers, round {round}");
                assert_eq!(stats.index, index);
                assert_eq!(stats.jobs_run, 101, "{n} workers, round {round}: {stats:?}");
                let per_worker: u64 = stats.workers().iter().map(|w| w.jobs_run).sum();
                assert_eq!(per_worker, stats.jobs_run);
                assert_eq!(stats.workers().len(), n);
                // 100 u64s and the later job's record, wherever they ran.
                assert!(stats.arena_used >= 100 * 8, "{stats:?}");
                let arena: usize = stats.workers().iter().map(|w| w.arena_used).sum();
                assert_eq!(arena, stats.arena_used);
                assert_eq!(stats.lost_wakeups, 0);
                assert!(stats.fibers_high_water >= 1);
            }
        });
        assert!(jobs.frame_stats(&mut stats));
    }
}
