//! The frame on jobsys: the world's systems as jobs, two frames in flight.
//!
//! One frame, in the order its body runs (`run_frame`):
//!
//! 1. **input**, a job pinned to worker 0 — the main thread, where an engine talks to the OS;
//! 2. **snapshot and grid**: last frame's bodies copied into the frame arena, their cell keys
//!    (`par_chunks_mut`), a parallel sort (`par_sort_unstable`), the cells' starts, the
//!    bodies gathered in cell order;
//! 3. **AI**: 32 path plans of very different lengths (the long tails) and crowd steering over
//!    the grid's neighbours, one scope of jobs;
//! 4. **physics**: contacts and integration as a raw `JobDecl` batch, through the safe typed
//!    helper `raw::run_batch`;
//! 5. the **asset** requested 4 frames ago arrives from the stream (see below);
//! 6. **animation** (pose blending) and **frustum culling** side by side (`Ctx::join`), each a
//!    scope of chunk jobs;
//! 7. the **draw list**, one job per culling chunk writing its own slice;
//! 8. **render**, a later stage (`Frame::later`) that runs beside the next frame's body: a
//!    parallel sort of the draw list by material and depth, encoding jobs, and **present**
//!    pinned to the main thread, in frame order.
//!
//! All of a frame's scratch — snapshot, keys, cell starts, plans, physics tasks and their
//! declarations, culling flags, the draw list, the encoded chunks — lives in the frame's
//! arenas, reclaimed in bulk when the frame retires: after warm-up a frame allocates nothing
//! on the heap. The asset stream is one background job (detached, `Priority::Low`) that reads
//! each asset on the blocking lane (`Ctx::blocking`) and decompresses it on a worker; frames
//! talk to it through two `jobsys::sync::Channel`s.

use crate::raw::{RawTask, run_batch};
use crate::world::{
    Agent, Body, Clip, DrawCmd, ENCODE_CHUNK, Grid, Input, PLANS_PER_FRAME, STREAM_LATENCY, World,
    animate, apply_plans, build_draws, camera, cell_keys, cell_starts, cull, decompress,
    draw_order, encode, gather_bodies, install_clip, integrate, load_asset, plan_agent, plan_path,
    present, read_input, steer,
};
use jobsys::sync::Channel;
use jobsys::{
    Affinity, BuildError, Ctx, Frame, FrameStats, JobOptions, JobSystem, Priority, job_meta,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Pinned to worker 0, the main thread: where an engine talks to the OS and the GPU.
const MAIN_THREAD: Affinity = Affinity::Worker(0);

// Chunk sizes: picked so that a job is tens of microseconds of work and a 100k-entity frame
// has over 1,000 jobs; tune with `--svg`.
/// Bodies per cell-key grain.
const KEY_GRAIN: usize = 4096;
/// Elements below which the parallel sorts sort sequentially.
const SORT_GRAIN: usize = 4096;
/// Cells per cell-start grain.
const START_GRAIN: usize = 4096;
/// Agents per steering job.
pub const STEER_CHUNK: usize = 128;
/// Bodies per physics job (declaration of the raw batch).
pub const PHYSICS_CHUNK: usize = 512;
/// Poses per animation job.
pub const ANIMATION_CHUNK: usize = 512;
/// Entities per culling job; each culling chunk also becomes one draw-list job.
pub const CULL_CHUNK: usize = 1024;

/// Each worker's frame arena reserved at build, per frame in flight. The frame body's big
/// arrays (about 70 bytes per entity) grow worker 0's arena once, in the first frames.
const ARENA_CAPACITY: usize = 512 * 1024;

/// A job system set up for the frame: `workers` (default: one per physical core), two
/// frames in flight, arenas that may grow to what a world of `entities` needs.
pub fn build_system(workers: Option<usize>, entities: usize) -> Result<JobSystem, BuildError> {
    let limit = (entities * 128).max(16 * ARENA_CAPACITY);
    let mut builder = JobSystem::builder()
        .frames_in_flight(2)
        .frame_arena(ARENA_CAPACITY, limit);
    if let Some(workers) = workers {
        builder = builder.workers(workers);
    }
    builder.build()
}

/// What a run of frames measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Wall time of each frame: its opening (which waits for frame N − 2 to retire) and its
    /// body; the last one also holds the wait for the final frames' later stages.
    pub frame_times: Vec<Duration>,
    /// Heap allocations (the counter passed to [`simulate`]) during each frame.
    pub allocations: Vec<u64>,
    /// Frames whose stats are summed below (after warm-up).
    pub stat_frames: u64,
    /// Jobs run, summed.
    pub jobs: u64,
    /// Parked waits, summed.
    pub parked_waits: u64,
    /// Steals, summed.
    pub steals: u64,
    /// Most fibers in use at once.
    pub fibers_high_water: usize,
    /// Most arena bytes one frame used, all workers together.
    pub arena_bytes: usize,
    /// Arena bytes taken from the heap as growth chunks, all frames (warm-up included).
    pub arena_grown: usize,
    /// Each worker's idle time, summed (nanoseconds).
    pub idle_ns: Vec<u64>,
}

/// The frames' side of the asset stream.
struct Stream {
    /// Asset ids to load, in order.
    requests: Channel<u64>,
    /// Loaded clips, in request order.
    results: Channel<(u64, Clip)>,
}

/// Runs `frames` frames of `world` on `jobs`, two in flight. `warmup` frames are left out
/// of the summed stats; `allocations` reads a heap-allocation counter (the sample's counting
/// allocator; `|| 0` without one).
pub fn simulate(
    jobs: &JobSystem,
    world: &mut World,
    frames: u64,
    warmup: u64,
    allocations: fn() -> u64,
) -> Report {
    let mut report = Report {
        frame_times: Vec::with_capacity(frames as usize),
        allocations: Vec::with_capacity(frames as usize),
        idle_ns: vec![0; jobs.worker_count()],
        ..Report::default()
    };
    let mut stats = FrameStats::new();
    let stream = Arc::new(Stream {
        requests: Channel::new(STREAM_LATENCY as usize + 1),
        results: Channel::new(STREAM_LATENCY as usize + 1),
    });
    let presented = AtomicU64::new(world.presented);
    jobs.run(|ctx| {
        prewarm_scope_pool(ctx, world.len());
        let streamer = {
            let stream = Arc::clone(&stream);
            let opts = JobOptions::new("asset stream").priority(Priority::Low);
            ctx.spawn_detached_opts(opts, move |ctx| stream_assets(ctx, &stream))
        };
        // If a frame panics, the panic unwinds out of this closure past the `close` below, and
        // the stream's job would stay parked on its channel forever — `run` would never return
        // (it waits for the main thread's parked fibers). Closing on the way out ends it.
        let _close = CloseOnDrop(&stream);
        let mut last_stats = None;
        let mut mark = (Instant::now(), allocations());
        ctx.frames(|loop_| {
            for n in 0..frames {
                loop_.frame(|f| run_frame(ctx, f, world, &stream, &presented, n, frames));
                let now = (Instant::now(), allocations());
                report.frame_times.push(now.0 - mark.0);
                report.allocations.push(now.1 - mark.1);
                mark = now;
                if ctx.frame_stats(&mut stats) && last_stats != Some(stats.index) {
                    last_stats = Some(stats.index);
                    if n >= warmup {
                        report.add(&stats);
                    }
                }
            }
        });
        // The wait for the last frames' render stages belongs to the last frame.
        if let Some(last) = report.frame_times.last_mut() {
            *last += mark.0.elapsed();
        }
        stream.requests.close();
        streamer.join(ctx);
    });
    world.presented = presented.into_inner();
    report
}

/// Closes both channels of the asset stream when dropped — also while unwinding — so that its
/// job, parked on either, returns.
struct CloseOnDrop<'a>(&'a Stream);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.requests.close();
        self.0.results.close();
    }
}

/// Fills jobsys's pool of scope record blocks before the first frame.
///
/// A scope body keeps its first spawns' records on its own stack and the rest in 64 KiB blocks
/// from a system-wide pool, which allocates a block only when more are in use at once than
/// ever before. How many the frames hold at once depends on how their scopes happen to
/// overlap (render of frame N beside frame N + 1's body), so without this a frame long after
/// warm-up could still allocate one. At most three of the frames' scopes are open at once
/// (animation beside culling, and the previous frame's render), none with more records than
/// steering's. Four nested scopes, each with twice steering's records, each record bigger
/// than any of the frame's, hold more blocks at once than that; the pool keeps them.
fn prewarm_scope_pool(ctx: &Ctx, entities: usize) {
    fn level(ctx: &Ctx, depth: usize, records: usize) {
        if depth == 0 {
            return;
        }
        ctx.scope(|s| {
            for i in 0..records {
                // 256 bytes of captures: more than any frame job's closure.
                let payload = [i as u64; 32];
                s.spawn(move |_| {
                    std::hint::black_box(payload);
                });
            }
            level(s, depth - 1, records);
        });
    }
    level(
        ctx,
        4,
        2 * (entities.div_ceil(STEER_CHUNK) + PLANS_PER_FRAME),
    );
}

impl Report {
    fn add(&mut self, s: &FrameStats) {
        self.stat_frames += 1;
        self.jobs += s.jobs_run;
        self.parked_waits += s.parked_waits;
        self.steals += s.steals;
        self.fibers_high_water = self.fibers_high_water.max(s.fibers_high_water);
        self.arena_bytes = self.arena_bytes.max(s.arena_used);
        self.arena_grown += s.arena_grown;
        for (sum, w) in self.idle_ns.iter_mut().zip(s.workers()) {
            *sum += w.idle_ns;
        }
    }
}

/// The asset stream: one background job for the whole run. Each request is read on the
/// blocking lane (the worker runs other jobs meanwhile), decompressed here on a worker, and
/// handed back in request order. Ends when the request channel closes.
fn stream_assets(ctx: &Ctx, stream: &Stream) {
    while let Ok(id) = stream.requests.recv(ctx) {
        let raw = ctx.blocking(move || {
            // A stand-in for the disk's latency; the fiber is parked, the worker is not.
            std::thread::sleep(Duration::from_micros(200));
            load_asset(id)
        });
        let clip = decompress(&raw);
        if stream.results.send(ctx, (id, clip)).is_err() {
            return;
        }
    }
}

/// A physics job's task: one chunk of bodies (with their agents) and what it reads.
struct PhysicsTask<'a> {
    bodies: &'a mut [Body],
    first: usize,
    agents: &'a [Agent],
    prev: &'a [Body],
    grid: Grid<'a>,
    input: Input,
}

impl RawTask for PhysicsTask<'_> {
    fn run(&mut self, _ctx: &Ctx) {
        integrate(
            self.bodies,
            self.first,
            self.agents,
            self.prev,
            &self.grid,
            &self.input,
        );
    }
}

/// Frame `n` of `frames` (see the module docs for the stages).
fn run_frame<'f>(
    ctx: &Ctx,
    f: Frame<'f, '_>,
    world: &mut World,
    stream: &Stream,
    presented: &'f AtomicU64,
    n: u64,
    frames: u64,
) {
    let arena = f.arena(ctx);
    let (len, g) = (world.len(), world.geometry);

    // Ask for the clip that animation needs STREAM_LATENCY frames from now.
    if n + STREAM_LATENCY < frames {
        stream
            .requests
            .send(ctx, n)
            .expect("the asset stream is open");
    }

    // 1. Input, on the main thread.
    let input = ctx.scope(|s| {
        let input = s.spawn_with(job_meta!("input", affinity(MAIN_THREAD)), move |s| {
            assert_eq!(s.worker_index(), 0, "input ran off the main thread");
            read_input(n)
        });
        input.join(s)
    });

    // 2. The broad phase's uniform grid over a snapshot of last frame's bodies.
    let prev: &'f [Body] = arena.alloc_slice_copy(&world.bodies);
    let keys = arena.alloc_slice_fill_copy(len, 0u64);
    ctx.par_chunks_mut(keys, KEY_GRAIN, |_, off, chunk| {
        cell_keys(chunk, off, &prev[off..off + chunk.len()], g);
    });
    ctx.par_sort_unstable(keys, SORT_GRAIN);
    let keys: &'f [u64] = keys;
    let starts = arena.alloc_slice_fill_copy(g.cells() + 1, 0u32);
    ctx.par_chunks_mut(starts, START_GRAIN, |_, off, chunk| {
        cell_starts(chunk, off, keys);
    });
    let sorted = arena.alloc_slice_fill_default::<Body>(len);
    ctx.par_chunks_mut(sorted, KEY_GRAIN, |_, off, chunk| {
        gather_bodies(chunk, &keys[off..off + chunk.len()], prev);
    });
    let grid = Grid {
        keys,
        bodies: sorted,
        starts,
        geometry: g,
    };

    // 3. AI: path plans (one job each, long ones first) and crowd steering.
    let plans = arena.alloc_slice_fill_copy(PLANS_PER_FRAME, [0.0f32; 3]);
    ctx.scope(|s| {
        for (k, plan) in plans.iter_mut().enumerate() {
            s.spawn_with(job_meta!("plan path"), move |_| {
                let agent = plan_agent(n, k, len);
                *plan = plan_path(agent, n, prev[agent].pos, g);
            });
        }
        for (i, agents) in world.agents.chunks_mut(STEER_CHUNK).enumerate() {
            s.spawn_with(job_meta!("steer"), move |_| {
                steer(agents, i * STEER_CHUNK, prev, &grid);
            });
        }
    });
    apply_plans(&mut world.agents, n, plans);

    // 4. Physics, as a raw batch: one declaration per chunk, one counter.
    let mut tasks = arena.vec_with_capacity(len.div_ceil(PHYSICS_CHUNK));
    let chunks = world
        .bodies
        .chunks_mut(PHYSICS_CHUNK)
        .zip(world.agents.chunks(PHYSICS_CHUNK));
    for (i, (bodies, agents)) in chunks.enumerate() {
        tasks.push(PhysicsTask {
            bodies,
            first: i * PHYSICS_CHUNK,
            agents,
            prev,
            grid,
            input,
        });
    }
    run_batch(ctx, arena, job_meta!("physics"), &mut tasks);
    drop(tasks);

    // 5. The asset requested STREAM_LATENCY frames ago; parks if it is late.
    if n >= STREAM_LATENCY {
        let (id, clip) = stream
            .results
            .recv(ctx)
            .expect("the stream answers every request");
        assert_eq!(id, n - STREAM_LATENCY, "assets arrive in request order");
        install_clip(&mut world.clips, id, clip);
    }

    // 6. Animation and culling both read the moved bodies and write disjoint data: side by side.
    let cam = camera(n, g);
    let visible = arena.alloc_slice_fill_copy(len, false);
    let counts = arena.alloc_slice_fill_copy(len.div_ceil(CULL_CHUNK), 0u32);
    let (bodies, poses, clips) = (&world.bodies, &mut world.poses, &world.clips);
    ctx.join(
        |ctx| {
            ctx.scope(|s| {
                let chunks = poses
                    .chunks_mut(ANIMATION_CHUNK)
                    .zip(bodies.chunks(ANIMATION_CHUNK));
                for (i, (poses, bodies)) in chunks.enumerate() {
                    s.spawn_with(job_meta!("animate"), move |_| {
                        animate(poses, i * ANIMATION_CHUNK, bodies, clips);
                    });
                }
            });
        },
        |ctx| {
            ctx.scope(|s| {
                let chunks = visible
                    .chunks_mut(CULL_CHUNK)
                    .zip(bodies.chunks(CULL_CHUNK))
                    .zip(counts.iter_mut());
                for ((visible, bodies), count) in chunks {
                    s.spawn_with(job_meta!("cull"), move |_| {
                        *count = cull(visible, bodies, &cam);
                    });
                }
            });
        },
    );

    // 7. The draw list: the counts say where each chunk's commands go, so each job writes its
    //    own slice. Its room is reserved for every entity, so the arena use is the same every
    //    frame (no growth after warm-up however many are in view).
    let total = counts.iter().map(|&c| c as usize).sum();
    let mut draws = arena.vec_with_capacity::<DrawCmd>(len);
    draws.resize(total, DrawCmd::default());
    let draws: &'f mut [DrawCmd] = draws.leak();
    ctx.scope(|s| {
        let mut rest = &mut *draws;
        let chunks = visible
            .chunks(CULL_CHUNK)
            .zip(world.bodies.chunks(CULL_CHUNK))
            .zip(world.poses.chunks(CULL_CHUNK))
            .zip(counts.iter());
        for (i, (((visible, bodies), poses), &count)) in chunks.enumerate() {
            let (out, tail) = rest.split_at_mut(count as usize);
            rest = tail;
            s.spawn_with(job_meta!("draw list"), move |_| {
                build_draws(out, visible, bodies, poses, i * CULL_CHUNK, &cam);
            });
        }
    });

    // 8. Render, a later stage: it runs beside frame n + 1's body and borrows only this
    //    frame's arena data.
    //    Its output goes to room taken here, on worker 0, sized for every entity in view: the
    //    render job allocates nothing, so arena use is the same every frame.
    let encoded = arena.alloc_slice_fill_copy(len.div_ceil(ENCODE_CHUNK), 0u64);
    f.later_with(ctx, job_meta!("render"), move |ctx| {
        ctx.par_sort_unstable_by(draws, SORT_GRAIN, draw_order);
        let draws: &[DrawCmd] = draws;
        let encoded = &mut encoded[..draws.len().div_ceil(ENCODE_CHUNK)];
        ctx.scope(|s| {
            for (e, chunk) in encoded.iter_mut().zip(draws.chunks(ENCODE_CHUNK)) {
                s.spawn_with(job_meta!("encode"), move |_| *e = encode(chunk));
            }
        });
        let encoded: &[u64] = encoded;
        // Frames present in order: frame n - 1's present is its last stage.
        if n > 0 {
            f.wait_retired(ctx, f.index() - 1);
        }
        ctx.scope(|s| {
            s.spawn_with(job_meta!("present", affinity(MAIN_THREAD)), move |s| {
                assert_eq!(s.worker_index(), 0, "present ran off the main thread");
                // Ordered by the retirement wait above: no other present runs meanwhile.
                let h = present(encoded, draws.len(), presented.load(Ordering::Relaxed));
                presented.store(h, Ordering::Relaxed);
            });
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::simulate_sequential;

    /// A small world: several grid cells, chunks and culling chunks, quick in debug builds.
    const ENTITIES: usize = 3000;
    const FRAMES: u64 = 10;

    #[test]
    fn frames_on_jobs_match_the_sequential_reference() {
        let reference = simulate_sequential(ENTITIES, FRAMES);
        assert_ne!(
            reference.checksum(),
            World::new(ENTITIES).checksum(),
            "the frames change the world"
        );
        for workers in [1, 2, 3] {
            let jobs = build_system(Some(workers), ENTITIES).expect("job system");
            let mut world = World::new(ENTITIES);
            let report = simulate(&jobs, &mut world, FRAMES, 2, || 0);
            assert_eq!(report.frame_times.len(), FRAMES as usize);
            assert!(report.jobs > 0, "{workers} workers: no stats");
            assert_eq!(world.checksum(), reference.checksum(), "{workers} workers");
            assert_eq!(world, reference, "{workers} workers");
        }
    }

    #[test]
    fn the_checksum_sees_one_frame_more() {
        let a = simulate_sequential(500, 3).checksum();
        let b = simulate_sequential(500, 4).checksum();
        assert_ne!(a, b);
    }
}
