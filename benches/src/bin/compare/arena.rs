//! The `arena` section: the frame arenas (`FrameArena`) against a plain `bumpalo::Bump` and
//! the global allocator, per allocation, per frame, and for a vector's pushes.
//!
//! Everything runs on one worker (the root job of a 1-worker pool, or the calling thread for
//! the peers); only the empty-frame row is repeated on the `--workers` pool, whose frame
//! open and retire touch every worker's arena.

use crate::session::{Row, Session, cell, progress};
use bumpalo::Bump;
use jobsys::{Ctx, JobSystem};
use jobsys_benches::{Sample, timed, warm_then_time};
use std::hint::black_box;
use std::time::Duration;

/// Allocations per frame in the per-call and per-frame rows.
const ALLOCS: usize = 10_000;
/// Elements pushed into each vector in the vector rows.
const VEC_LEN: usize = 1_000;
/// Vectors filled per frame in the vector rows.
const VECS: usize = 100;
/// Bytes each arena (ours: per worker per frame in flight, strict; bumpalo: its first chunk)
/// reserves: room for the largest frame here (10,000 × 256-byte slices), so nothing grows.
const ARENA_BYTES: usize = 4 << 20;

/// The 16-byte value of the per-call rows (only written: it is the allocations' payload).
#[derive(Clone, Copy)]
#[allow(dead_code)]
struct Small {
    a: u64,
    b: u32,
    c: u32,
}

impl Small {
    #[inline]
    fn new(i: usize) -> Self {
        Self {
            a: i as u64,
            b: i as u32,
            c: !(i as u32),
        }
    }
}

/// What the global-allocator frame keeps until its end (one heap block each).
enum Held {
    U64(#[allow(dead_code)] Box<u64>),
    Small(#[allow(dead_code)] Box<Small>),
    Array(#[allow(dead_code)] Box<[f32; 16]>),
    Slice(#[allow(dead_code)] Vec<f32>),
}

/// Bytes one mixed frame asks for (8 + 16 + 64 + 256 per 4 allocations, all 8- or 4-aligned
/// and laid back to back, so no padding).
const MIXED_BYTES: usize = ALLOCS / 4 * (8 + 16 + 64 + 256);

/// One call of allocation `i` of the mixed frame on `$alloc` (the value) / `$slice` (the
/// 64-element slice), each result kept observable.
macro_rules! mixed_alloc {
    ($i:expr, $src:expr, $alloc:expr, $slice:expr) => {
        match $i % 4 {
            0 => {
                black_box($alloc($i as u64));
            }
            1 => {
                black_box($alloc(Small::new($i)));
            }
            2 => {
                black_box($alloc([$i as f32; 16]));
            }
            _ => {
                black_box($slice($src));
            }
        }
    };
}

/// A pool of `workers` whose arenas hold a whole frame of this section without growing, with
/// `in_flight` frames in flight (so as many arenas per worker, used in turn).
fn arena_pool(workers: usize, in_flight: usize) -> JobSystem {
    JobSystem::builder()
        .workers(workers)
        .frames_in_flight(in_flight)
        .frame_arena(ARENA_BYTES, ARENA_BYTES)
        .build()
        .expect("building the jobsys pool")
}

/// Times `ALLOCS` calls of `body(arena, i)` in each of `frames` frames (the timed part
/// excludes opening and retiring the frame) and checks the arena's use.
fn ours_per_call(
    ctx: &Ctx,
    frames: usize,
    bytes_per_call: usize,
    body: impl for<'f> Fn(jobsys::FrameArena<'f>, usize),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..frames {
        ctx.frame(|f| {
            let a = f.arena(ctx);
            total += timed(|| {
                for i in 0..ALLOCS {
                    body(a, i);
                }
            });
            assert_eq!(a.used(), ALLOCS * bytes_per_call, "frame arena use");
        });
    }
    total
}

/// The same on `bump`, reset (untimed) after each frame.
fn bump_per_call(bump: &mut Bump, frames: usize, body: impl Fn(&Bump, usize)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..frames {
        total += timed(|| {
            for i in 0..ALLOCS {
                body(bump, i);
            }
        });
        assert_eq!(bump.iter_allocated_chunks().count(), 1, "the Bump grew");
        bump.reset();
    }
    total
}

/// The same with the global allocator: each value is freed right away.
fn global_per_call(frames: usize, body: impl Fn(usize)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..frames {
        total += timed(|| {
            for i in 0..ALLOCS {
                body(i);
            }
        });
    }
    total
}

/// A row of three: ours, bumpalo, global; ratio ours / bumpalo, and ours / global in the
/// target column.
fn push_row(b: &mut Session, workload: String, ours: Sample, bump: Sample, global: Sample) {
    let digits = if ours.median < 100.0 { 2 } else { 1 };
    b.rows.push(Row {
        workload,
        jobsys: cell(ours, digits),
        peer: format!(
            "bumpalo {}; global {}",
            cell(bump, digits),
            cell(global, digits)
        ),
        ratio: Some(ours.median / bump.median),
        target: format!("reported; vs global {:.2}×", ours.median / global.median),
        met: "—".into(),
    });
}

/// arena: frame arenas vs bumpalo vs the global allocator.
pub(crate) fn arena(b: &mut Session) {
    let (t, runs, quick) = (b.args.workers, b.args.runs, b.args.quick);
    if !b.args.wants("arena") {
        return;
    }
    let frames = if quick { 10 } else { 100 };
    let vec_frames = if quick { 2 } else { 20 };
    let empty_frames = if quick { 10_000 } else { 100_000 };
    let src: [f32; 64] = black_box(core::array::from_fn(|i| i as f32));
    let src = &src[..];
    let per_alloc = (frames * ALLOCS) as f64;
    let pushes = (vec_frames * VECS * VEC_LEN) as f64;

    let jobs = arena_pool(1, 2);
    let mut bump = Bump::with_capacity(ARENA_BYTES);

    // Per call: a 16-byte value.
    progress("arena: per call, 16-byte value");
    let ours = jobs.run(|ctx| {
        warm_then_time(runs, || {
            ours_per_call(ctx, frames, 16, |a, i| {
                black_box(a.alloc(Small::new(i)));
            })
        })
    });
    let bu = warm_then_time(runs, || {
        bump_per_call(&mut bump, frames, |bump, i| {
            black_box(bump.alloc(Small::new(i)));
        })
    });
    let gl = warm_then_time(runs, || {
        global_per_call(frames, |i| {
            black_box(Box::new(Small::new(i)));
        })
    });
    push_row(
        b,
        "arena: alloc a 16-byte value, ns per call (ours: FrameArena::alloc; bumpalo: Bump::alloc; global: Box::new + drop)".into(),
        Sample::of(&ours).scaled(per_alloc),
        Sample::of(&bu).scaled(per_alloc),
        Sample::of(&gl).scaled(per_alloc),
    );

    // Per call: a copy of a 64-element f32 slice.
    progress("arena: per call, 64 × f32 slice copy");
    let ours = jobs.run(|ctx| {
        warm_then_time(runs, || {
            ours_per_call(ctx, frames, 256, |a, _| {
                black_box(a.alloc_slice_copy(src));
            })
        })
    });
    let bu = warm_then_time(runs, || {
        bump_per_call(&mut bump, frames, |bump, _| {
            black_box(bump.alloc_slice_copy(src));
        })
    });
    let gl = warm_then_time(runs, || {
        global_per_call(frames, |_| {
            black_box(src.to_vec());
        })
    });
    push_row(
        b,
        "arena: copy a 64 × f32 slice, ns per call (alloc_slice_copy; global: Vec from slice + drop)".into(),
        Sample::of(&ours).scaled(per_alloc),
        Sample::of(&bu).scaled(per_alloc),
        Sample::of(&gl).scaled(per_alloc),
    );

    // Per frame: 10,000 mixed allocations, then the bulk reset.
    progress("arena: per frame, 10,000 mixed allocations + reset");
    let per_frame_us = frames as f64 * 1e3;
    let mixed_ours = |jobs: &JobSystem| {
        jobs.run(|ctx| {
            warm_then_time(runs, || {
                timed(|| {
                    for _ in 0..frames {
                        ctx.frame(|f| {
                            let a = f.arena(ctx);
                            for i in 0..ALLOCS {
                                mixed_alloc!(i, src, |v| a.alloc(v), |s| a.alloc_slice_copy(s));
                            }
                            assert_eq!(a.used(), MIXED_BYTES, "frame arena use");
                        });
                    }
                })
            })
        })
    };
    let ours = mixed_ours(&jobs);
    let ours_k1 = Sample::of(&mixed_ours(&arena_pool(1, 1))).scaled(per_frame_us);
    let bu = warm_then_time(runs, || {
        timed(|| {
            for _ in 0..frames {
                for i in 0..ALLOCS {
                    mixed_alloc!(i, src, |v| bump.alloc(v), |s| bump.alloc_slice_copy(s));
                }
                assert_eq!(bump.iter_allocated_chunks().count(), 1, "the Bump grew");
                bump.reset();
            }
        })
    });
    let mut held: Vec<Held> = Vec::with_capacity(ALLOCS);
    let gl = warm_then_time(runs, || {
        timed(|| {
            for _ in 0..frames {
                for i in 0..ALLOCS {
                    match i % 4 {
                        0 => held.push(Held::U64(Box::new(black_box(i as u64)))),
                        1 => held.push(Held::Small(Box::new(black_box(Small::new(i))))),
                        2 => held.push(Held::Array(Box::new(black_box([i as f32; 16])))),
                        _ => held.push(Held::Slice(black_box(src.to_vec()))),
                    }
                }
                assert_eq!(held.len(), ALLOCS);
                held.clear();
            }
        })
    });
    push_row(
        b,
        "arena: one frame of 10,000 mixed allocations (8/16/64/256 B) + bulk reset, µs per frame (ours: ctx.frame open + allocs + retire; bumpalo: allocs + reset(); global: Boxes kept in a Vec, then dropped)".into(),
        Sample::of(&ours).scaled(per_frame_us),
        Sample::of(&bu).scaled(per_frame_us),
        Sample::of(&gl).scaled(per_frame_us),
    );

    b.notes.push(format!(
        "arena: the mixed frame with `frames_in_flight(1)` (one arena per worker, reused by every frame, as bumpalo's one chunk is; the default 2 alternates two arenas, twice the memory touched): {} µs per frame ({:.2}× bumpalo).",
        cell(ours_k1, 2),
        ours_k1.median / Sample::of(&bu).scaled(per_frame_us).median
    ));

    // An empty frame: open + retire alone.
    progress("arena: empty frame");
    let empty = |jobs: &JobSystem| {
        Sample::of(&jobs.run(|ctx| {
            warm_then_time(runs, || {
                timed(|| {
                    for _ in 0..empty_frames {
                        ctx.frame(|f| {
                            black_box(f.index());
                        });
                    }
                })
            })
        }))
        .scaled(empty_frames as f64)
    };
    let e1 = empty(&jobs);
    let bump_reset = {
        // The peer's "retire": reset() of a Bump with one chunk, after one small allocation.
        let v = warm_then_time(runs, || {
            timed(|| {
                for i in 0..empty_frames {
                    black_box(bump.alloc(i));
                    bump.reset();
                }
            })
        });
        Sample::of(&v).scaled(empty_frames as f64)
    };
    b.rows.push(Row {
        workload: "arena: empty frame, ctx.frame(|_| ()) open + retire, 1 worker, ns".into(),
        jobsys: cell(e1, 1),
        peer: format!("bumpalo alloc + reset() {}", cell(bump_reset, 1)),
        ratio: Some(e1.median / bump_reset.median),
        target: "reported".into(),
        met: "—".into(),
    });
    if t > 1 {
        let et = empty(&arena_pool(t, 2));
        b.rows.push(Row {
            workload: format!(
                "arena: empty frame, ctx.frame(|_| ()) open + retire, {t} workers, ns"
            ),
            jobsys: cell(et, 1),
            peer: "—".into(),
            ratio: None,
            target: "reported".into(),
            met: "—".into(),
        });
    }

    // Vectors: 1,000 pushes of u32 into an empty vector, 100 vectors per frame.
    progress("arena: vector pushes");
    let ours = jobs.run(|ctx| {
        warm_then_time(runs, || {
            let mut total = Duration::ZERO;
            for _ in 0..vec_frames {
                ctx.frame(|f| {
                    let a = f.arena(ctx);
                    total += timed(|| {
                        for _ in 0..VECS {
                            let mut v = a.vec::<u32>();
                            for i in 0..VEC_LEN as u32 {
                                v.push(black_box(i));
                            }
                            assert_eq!(v[VEC_LEN - 1], VEC_LEN as u32 - 1);
                            black_box(&v);
                        }
                    });
                });
            }
            total
        })
    });
    let bu = warm_then_time(runs, || {
        let mut total = Duration::ZERO;
        for _ in 0..vec_frames {
            total += timed(|| {
                for _ in 0..VECS {
                    let mut v = bumpalo::collections::Vec::new_in(&bump);
                    for i in 0..VEC_LEN as u32 {
                        v.push(black_box(i));
                    }
                    assert_eq!(v[VEC_LEN - 1], VEC_LEN as u32 - 1);
                    black_box(&v);
                }
            });
            bump.reset();
        }
        total
    });
    let bu_api2 = warm_then_time(runs, || {
        let mut total = Duration::ZERO;
        for _ in 0..vec_frames {
            total += timed(|| {
                for _ in 0..VECS {
                    let mut v = allocator_api2::vec::Vec::new_in(&bump);
                    for i in 0..VEC_LEN as u32 {
                        v.push(black_box(i));
                    }
                    assert_eq!(v[VEC_LEN - 1], VEC_LEN as u32 - 1);
                    black_box(&v);
                }
            });
            bump.reset();
        }
        total
    });
    let gl = warm_then_time(runs, || {
        let mut total = Duration::ZERO;
        for _ in 0..vec_frames {
            total += timed(|| {
                for _ in 0..VECS {
                    let mut v = Vec::new();
                    for i in 0..VEC_LEN as u32 {
                        v.push(black_box(i));
                    }
                    assert_eq!(v[VEC_LEN - 1], VEC_LEN as u32 - 1);
                    black_box(&v);
                }
            });
        }
        total
    });
    push_row(
        b,
        "arena: push 1,000 u32 into an empty vector, ns per push (ours: f.arena(ctx).vec(), allocator_api2; bumpalo: bumpalo::collections::Vec; global: std Vec)".into(),
        Sample::of(&ours).scaled(pushes),
        Sample::of(&bu).scaled(pushes),
        Sample::of(&gl).scaled(pushes),
    );
    let api2 = Sample::of(&bu_api2).scaled(pushes);
    b.notes.push(format!(
        "arena: 1 worker; {ALLOCS} allocations per frame, {frames} frames per timed run ({vec_frames} frames of {VECS} vectors for the pushes). Ours: a pool with `frame_arena({ARENA_BYTES}, {ARENA_BYTES})` (strict: never grows); bumpalo 3: `Bump::with_capacity({ARENA_BYTES})`, reset after each frame (untimed in the per-call and push rows, timed in the per-frame row); per-call and push rows time only the allocating loop (not the frame's open/retire). Pushes into allocator_api2's Vec in `&Bump` (the same Vec code as ours, bumpalo's allocator): {}. Every result goes through `std::hint::black_box`.",
        cell(api2, 2)
    ));
}
