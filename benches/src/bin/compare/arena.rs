//! The `arena` section: the frame arenas (`FrameArena`) against a plain `bumpalo::Bump` and
//! the global allocator, per allocation, per frame, and for a vector's pushes.
//!
//! Everything runs on one worker (the root job of a 1-worker pool, or the calling thread for
//! the peers); only the empty-frame row is repeated on the `--workers` pool, whose frame
//! open and retire touch every worker's arena.

use crate::session::{Row, Session, cell, progress};
use bumpalo::Bump;
use jobsys::JobSystem;
use jobsys_benches::{Sample, timed};
use std::hint::black_box;
use std::time::Duration;

/// Allocations per frame in the 16-byte per-call row and the per-frame row.
const ALLOCS: usize = 10_000;
/// Slice copies per frame in the slice per-call row: 256 KB, so that the row measures the
/// allocator and the copy, not the memory bandwidth past the caches.
const SLICE_CALLS: usize = 1_000;
/// Empty frames (and Bump resets) per timed block: one block is timed, not each frame.
const EMPTY_BATCH: usize = 100;
/// Elements pushed into each vector in the vector rows.
const VEC_LEN: usize = 1_000;
/// Vectors filled per frame in the vector rows.
const VECS: usize = 100;
/// Bytes each arena (ours: per worker per frame in flight, strict; bumpalo: its first chunk)
/// reserves: room for the largest frame here (100 vectors grown by doubling to 4 KB each:
/// at most 800 KB where growth copies), so nothing grows.
const ARENA_BYTES: usize = 2 << 20;

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
    Array(#[allow(dead_code)] Box<[f32; 8]>),
    Slice(#[allow(dead_code)] Vec<f32>),
}

/// Bytes one mixed frame asks for (8 + 16 + 32 + 64 per 4 allocations, all 8- or 4-aligned
/// and laid back to back, so no padding): 300 KB, within one core's L2 cache here.
const MIXED_BYTES: usize = ALLOCS / 4 * (8 + 16 + 32 + 64);

/// One call of allocation `i` of the mixed frame on `$alloc` (the value) / `$slice` (a copy
/// of the 16-element slice `$src`), each result kept observable.
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
                black_box($alloc([$i as f32; 8]));
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

/// Runs `frame` `frames` times per timed run, after one untimed warm-up run; `frame` adds
/// the time of each of the `N` systems it runs to its slot. The systems take turns frame by
/// frame, so that on a shared machine each sees the same load. Returns each system's timed
/// runs in ns.
fn interleaved<const N: usize>(
    runs: usize,
    frames: usize,
    mut frame: impl FnMut(&mut [Duration; N]),
) -> [Vec<f64>; N] {
    let mut out: [Vec<f64>; N] = core::array::from_fn(|_| Vec::with_capacity(runs));
    for run in 0..=runs {
        let mut acc = [Duration::ZERO; N];
        for _ in 0..frames {
            frame(&mut acc);
        }
        if run > 0 {
            for (o, d) in out.iter_mut().zip(acc) {
                o.push(d.as_nanos() as f64);
            }
        }
    }
    out
}

/// The per-call rows: `calls` calls of `ours(arena, i)` in a frame (the timed part excludes
/// opening and retiring it; the arena's use is checked), of `on_bump(&bump, i)` (the Bump is
/// reset after them, untimed) and of `global(i)`, frame after frame. Returns each system's
/// ns per call.
fn per_call(
    jobs: &JobSystem,
    bump: &mut Bump,
    runs: usize,
    frames: usize,
    calls: usize,
    bytes_per_call: usize,
    (ours, on_bump, global): (
        impl for<'f> Fn(jobsys::FrameArena<'f>, usize),
        impl Fn(&Bump, usize),
        impl Fn(usize),
    ),
) -> [Sample; 3] {
    let ns = jobs.run(|ctx| {
        interleaved(runs, frames, |acc: &mut [Duration; 3]| {
            ctx.frame(|f| {
                let a = f.arena(ctx);
                acc[0] += timed(|| {
                    for i in 0..calls {
                        ours(a, i);
                    }
                });
                assert_eq!(a.used(), calls * bytes_per_call, "frame arena use");
            });
            acc[1] += timed(|| {
                for i in 0..calls {
                    on_bump(bump, i);
                }
            });
            assert_eq!(bump.iter_allocated_chunks().count(), 1, "the Bump grew");
            bump.reset();
            acc[2] += timed(|| {
                for i in 0..calls {
                    global(i);
                }
            });
        })
    });
    ns.map(|v| Sample::of(&v).scaled((frames * calls) as f64))
}

/// A row of three: ours, bumpalo, global; ratio ours / bumpalo, and ours / global in the
/// target column.
fn push_row(b: &mut Session, workload: String, [ours, bump, global]: [Sample; 3]) {
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
    let src16 = &src[..16];
    let pushes = (vec_frames * VECS * VEC_LEN) as f64;

    // The per-call and push rows use one frame in flight: one arena, reused by every frame,
    // the same memory footprint as the Bump's one chunk, so that they compare the allocators
    // and not the caches. The mixed-frame row uses the default 2, and also 1 (in a note).
    let jobs = arena_pool(1, 1);
    let mut bump = Bump::with_capacity(ARENA_BYTES);

    // Per call: a 16-byte value.
    progress("arena: per call, 16-byte value");
    let s3 = per_call(
        &jobs,
        &mut bump,
        runs,
        frames,
        ALLOCS,
        16,
        (
            |a, i| {
                black_box(a.alloc(Small::new(i)));
            },
            |bump, i| {
                black_box(bump.alloc(Small::new(i)));
            },
            |i| {
                black_box(Box::new(Small::new(i)));
            },
        ),
    );
    push_row(
        b,
        "arena: alloc a 16-byte value, ns per call (ours: FrameArena::alloc; bumpalo: Bump::alloc; global: Box::new + drop)".into(),
        s3,
    );

    // Per call: a copy of a 64-element f32 slice.
    progress("arena: per call, 64 × f32 slice copy");
    let s3 = per_call(
        &jobs,
        &mut bump,
        runs,
        frames * ALLOCS / SLICE_CALLS,
        SLICE_CALLS,
        256,
        (
            |a, _| {
                black_box(a.alloc_slice_copy(src));
            },
            |bump, _| {
                black_box(bump.alloc_slice_copy(src));
            },
            |_| {
                black_box(src.to_vec());
            },
        ),
    );
    push_row(
        b,
        "arena: copy a 64 × f32 slice, ns per call (alloc_slice_copy; global: Vec from slice + drop)".into(),
        s3,
    );

    // Per frame: 10,000 mixed allocations, then the bulk reset, on a pool with `in_flight`
    // frames in flight: ours, bumpalo, global.
    progress("arena: per frame, 10,000 mixed allocations + reset");
    let mut held: Vec<Held> = Vec::with_capacity(ALLOCS);
    let mut mixed = |in_flight: usize| {
        let ns = arena_pool(1, in_flight).run(|ctx| {
            interleaved(runs, frames, |acc: &mut [Duration; 3]| {
                acc[0] += timed(|| {
                    ctx.frame(|f| {
                        let a = f.arena(ctx);
                        for i in 0..ALLOCS {
                            mixed_alloc!(i, src16, |v| a.alloc(v), |s| a.alloc_slice_copy(s));
                        }
                        assert_eq!(a.used(), MIXED_BYTES, "frame arena use");
                    });
                });
                acc[1] += timed(|| {
                    for i in 0..ALLOCS {
                        mixed_alloc!(i, src16, |v| bump.alloc(v), |s| bump.alloc_slice_copy(s));
                    }
                    assert_eq!(bump.iter_allocated_chunks().count(), 1, "the Bump grew");
                    bump.reset();
                });
                acc[2] += timed(|| {
                    for i in 0..ALLOCS {
                        match i % 4 {
                            0 => held.push(Held::U64(Box::new(black_box(i as u64)))),
                            1 => held.push(Held::Small(Box::new(black_box(Small::new(i))))),
                            2 => held.push(Held::Array(Box::new(black_box([i as f32; 8])))),
                            _ => held.push(Held::Slice(black_box(src16.to_vec()))),
                        }
                    }
                    assert_eq!(held.len(), ALLOCS);
                    held.clear();
                });
            })
        });
        ns.map(|v| Sample::of(&v).scaled(frames as f64 * 1e3))
    };
    let k2 = mixed(2);
    let k1 = mixed(1);
    push_row(
        b,
        "arena: one frame of 10,000 mixed allocations (8/16/32/64 B) + bulk reset, µs per frame (ours: ctx.frame open + allocs + retire; bumpalo: allocs + reset(); global: Boxes kept in a Vec, then dropped)".into(),
        k2,
    );
    b.notes.push(format!(
        "arena: the mixed frame with `frames_in_flight(1)` (one arena per worker, reused by every frame, as bumpalo's one chunk is; the default 2 alternates two arenas, twice the memory touched): ours {} µs per frame, bumpalo {} in the same run ({:.2}× bumpalo).",
        cell(k1[0], 2),
        cell(k1[1], 2),
        k1[0].median / k1[1].median
    ));

    // An empty frame: open + retire alone, against a Bump's reset after one allocation.
    progress("arena: empty frame");
    let empty = |jobs: &JobSystem, bump: &mut Bump| {
        let ns = jobs.run(|ctx| {
            interleaved(
                runs,
                empty_frames / EMPTY_BATCH,
                |acc: &mut [Duration; 2]| {
                    acc[0] += timed(|| {
                        for _ in 0..EMPTY_BATCH {
                            ctx.frame(|f| {
                                black_box(f.index());
                            });
                        }
                    });
                    acc[1] += timed(|| {
                        for i in 0..EMPTY_BATCH {
                            black_box(bump.alloc(i));
                            bump.reset();
                        }
                    });
                },
            )
        });
        ns.map(|v| Sample::of(&v).scaled(empty_frames as f64))
    };
    let [e1, bump_reset] = empty(&arena_pool(1, 2), &mut bump);
    b.rows.push(Row {
        workload:
            "arena: empty frame (`ctx.frame` with an empty body): open + retire, 1 worker, ns"
                .into(),
        jobsys: cell(e1, 1),
        peer: format!("bumpalo alloc + reset() {}", cell(bump_reset, 1)),
        ratio: Some(e1.median / bump_reset.median),
        target: "reported".into(),
        met: "—".into(),
    });
    if t > 1 {
        let [et, _] = empty(&arena_pool(t, 2), &mut bump);
        b.rows.push(Row {
            workload: format!(
                "arena: empty frame (`ctx.frame` with an empty body): open + retire, {t} workers, ns"
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
    macro_rules! fill {
        ($new:expr) => {
            timed(|| {
                for _ in 0..VECS {
                    let mut v = $new;
                    for i in 0..VEC_LEN as u32 {
                        v.push(black_box(i));
                    }
                    assert_eq!(v[VEC_LEN - 1], VEC_LEN as u32 - 1);
                    black_box(&v);
                }
            })
        };
    }
    let ns = jobs.run(|ctx| {
        interleaved(runs, vec_frames, |acc: &mut [Duration; 4]| {
            ctx.frame(|f| {
                let a = f.arena(ctx);
                acc[0] += fill!(a.vec::<u32>());
            });
            acc[1] += fill!(bumpalo::collections::Vec::new_in(&bump));
            bump.reset();
            acc[3] += fill!(allocator_api2::vec::Vec::new_in(&bump));
            bump.reset();
            acc[2] += fill!(Vec::new());
        })
    });
    let [ours, bu, gl, api2] = ns.map(|v| Sample::of(&v).scaled(pushes));
    push_row(
        b,
        "arena: push 1,000 u32 into an empty vector, ns per push (ours: f.arena(ctx).vec(), allocator_api2; bumpalo: bumpalo::collections::Vec; global: std Vec)".into(),
        [ours, bu, gl],
    );
    b.notes.push(format!(
        "arena: 1 worker; per-call and push rows with `frames_in_flight(1)` (one arena, reused by every frame: the same memory footprint as the Bump's one chunk), the rest with the default 2; {ALLOCS} allocations per frame ({SLICE_CALLS} for the slice copies), {frames} frames per timed run (the same bytes for the slice copies; {vec_frames} frames of {VECS} vectors for the pushes); the systems take turns frame by frame. Ours: a pool with `frame_arena({ARENA_BYTES}, {ARENA_BYTES})` (strict: never grows); bumpalo 3: `Bump::with_capacity({ARENA_BYTES})`, reset after each frame (untimed in the per-call and push rows, timed in the per-frame row); per-call and push rows time only the allocating loop (not the frame's open/retire). Pushes into allocator_api2's Vec in `&Bump` (the same Vec code as ours, bumpalo's allocator): {}. Every result goes through `std::hint::black_box`.",
        cell(api2, 2)
    ));
}
