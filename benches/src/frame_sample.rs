//! The game-frame sample's frame on rayon and on bevy_tasks: the same world, the same
//! kernels and chunk sizes (`jobsys_samples::world`, `jobsys_samples::frame`), driven the way
//! each library is meant to be used. The jobsys side is the sample's own driver,
//! `jobsys_samples::frame::simulate`.
//!
//! What the peers do differently, because they have no such feature:
//!
//! - **No frames in flight.** The render stage (sort, encode, present) runs at the end of its
//!   own frame; on jobsys it runs beside the next frame's logic.
//! - **No background lane or blocking lane.** The asset a frame needs is read and
//!   decompressed inline where it is needed (as in the sequential reference), without the
//!   stand-in disk latency that the jobsys driver sleeps on its blocking lane.
//! - **Scratch in `Vec`s kept across frames** instead of frame arenas.
//! - **bevy_tasks has no parallel sort**: its frame sorts the keys and the draw list on the
//!   scope's thread, with `sort_unstable`.
//!
//! Every run returns its world, which the caller checks against the sequential reference.

use jobsys_samples::frame::{ANIMATION_CHUNK, CULL_CHUNK, PHYSICS_CHUNK, STEER_CHUNK};
use jobsys_samples::world::{
    Body, DrawCmd, ENCODE_CHUNK, Grid, PLANS_PER_FRAME, STREAM_LATENCY, Vec3, World, animate,
    apply_plans, build_draws, camera, cell_keys, cell_starts, cull, decompress, draw_order, encode,
    gather_bodies, install_clip, integrate, load_asset, plan_agent, plan_path, present, read_input,
    steer,
};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// Bodies per grid grain (cell keys, gather), as in the jobsys driver.
const GRAIN: usize = 4096;

/// A frame's scratch, kept across frames.
#[derive(Debug, Default)]
struct Scratch {
    prev: Vec<Body>,
    keys: Vec<u64>,
    starts: Vec<u32>,
    sorted: Vec<Body>,
    plans: Vec<Vec3>,
    visible: Vec<bool>,
    counts: Vec<u32>,
    draws: Vec<DrawCmd>,
    encoded: Vec<u64>,
}

impl Scratch {
    fn sized(&mut self, world: &World) {
        let n = world.len();
        self.prev.clear();
        self.prev.extend_from_slice(&world.bodies);
        self.keys.resize(n, 0);
        self.starts.resize(world.geometry.cells() + 1, 0);
        self.sorted.resize(n, Body::default());
        self.plans.resize(PLANS_PER_FRAME, [0.0; 3]);
        self.visible.resize(n, false);
        self.counts.resize(n.div_ceil(CULL_CHUNK), 0);
    }
}

/// Runs `frames` frames of `world` with rayon (call it inside the pool's `install`) and
/// returns each frame's time.
pub fn rayon_frames(world: &mut World, frames: u64) -> Vec<Duration> {
    let mut s = Scratch::default();
    (0..frames)
        .map(|n| {
            let t = Instant::now();
            rayon_frame(world, n, &mut s);
            t.elapsed()
        })
        .collect()
}

fn rayon_frame(world: &mut World, n: u64, s: &mut Scratch) {
    let (len, g) = (world.len(), world.geometry);
    let input = read_input(n);
    s.sized(world);
    let prev = &s.prev[..];
    s.keys
        .par_chunks_mut(GRAIN)
        .enumerate()
        .for_each(|(i, c)| cell_keys(c, i * GRAIN, &prev[i * GRAIN..][..c.len()], g));
    s.keys.par_sort_unstable();
    let keys = &s.keys[..];
    s.starts
        .par_chunks_mut(GRAIN)
        .enumerate()
        .for_each(|(i, c)| cell_starts(c, i * GRAIN, keys));
    s.sorted
        .par_chunks_mut(GRAIN)
        .enumerate()
        .for_each(|(i, c)| gather_bodies(c, &keys[i * GRAIN..][..c.len()], prev));
    let grid = Grid {
        keys,
        bodies: &s.sorted,
        starts: &s.starts,
        geometry: g,
    };
    let (plans, agents) = (&mut s.plans, &mut world.agents);
    rayon::join(
        || {
            plans.par_iter_mut().enumerate().for_each(|(k, p)| {
                let a = plan_agent(n, k, len);
                *p = plan_path(a, n, prev[a].pos, g);
            });
        },
        || {
            agents
                .par_chunks_mut(STEER_CHUNK)
                .enumerate()
                .for_each(|(i, c)| steer(c, i * STEER_CHUNK, prev, &grid));
        },
    );
    apply_plans(&mut world.agents, n, &s.plans);
    let agents = &world.agents;
    world
        .bodies
        .par_chunks_mut(PHYSICS_CHUNK)
        .enumerate()
        .for_each(|(i, c)| {
            let first = i * PHYSICS_CHUNK;
            integrate(c, first, &agents[first..][..c.len()], prev, &grid, &input);
        });
    if n >= STREAM_LATENCY {
        let id = n - STREAM_LATENCY;
        install_clip(&mut world.clips, id, decompress(&load_asset(id)));
    }
    let cam = camera(n, g);
    let (bodies, poses, clips) = (&world.bodies, &mut world.poses, &world.clips);
    let (visible, counts) = (&mut s.visible, &mut s.counts);
    rayon::join(
        || {
            poses
                .par_chunks_mut(ANIMATION_CHUNK)
                .enumerate()
                .for_each(|(i, c)| {
                    let first = i * ANIMATION_CHUNK;
                    animate(c, first, &bodies[first..][..c.len()], clips);
                });
        },
        || {
            visible
                .par_chunks_mut(CULL_CHUNK)
                .zip(counts.par_iter_mut())
                .enumerate()
                .for_each(|(i, (v, count))| {
                    *count = cull(v, &bodies[i * CULL_CHUNK..][..v.len()], &cam);
                });
        },
    );
    let total = s.counts.iter().map(|&c| c as usize).sum();
    s.draws.resize(total, DrawCmd::default());
    let (visible, poses) = (&s.visible, &world.poses);
    rayon::scope(|sc| {
        let mut rest = &mut s.draws[..];
        for (i, &count) in s.counts.iter().enumerate() {
            let (out, tail) = rest.split_at_mut(count as usize);
            rest = tail;
            let first = i * CULL_CHUNK;
            let end = (first + CULL_CHUNK).min(len);
            sc.spawn(move |_| {
                build_draws(
                    out,
                    &visible[first..end],
                    &bodies[first..end],
                    &poses[first..end],
                    first,
                    &cam,
                );
            });
        }
    });
    s.draws.par_sort_unstable_by(draw_order);
    s.encoded.clear();
    s.draws
        .par_chunks(ENCODE_CHUNK)
        .map(encode)
        .collect_into_vec(&mut s.encoded);
    world.presented = present(&s.encoded, s.draws.len(), world.presented);
}

/// A bevy_tasks pool of `workers` threads in all: the thread that opens a scope runs its
/// tasks too, so the pool gets `workers - 1` threads of its own.
pub fn bevy_pool(workers: usize) -> bevy_tasks::TaskPool {
    bevy_tasks::TaskPoolBuilder::new()
        .num_threads(workers.saturating_sub(1))
        .build()
}

/// Runs `frames` frames of `world` on `pool` and returns each frame's time.
pub fn bevy_frames(pool: &bevy_tasks::TaskPool, world: &mut World, frames: u64) -> Vec<Duration> {
    let mut s = Scratch::default();
    (0..frames)
        .map(|n| {
            let t = Instant::now();
            bevy_frame(pool, world, n, &mut s);
            t.elapsed()
        })
        .collect()
}

fn bevy_frame(pool: &bevy_tasks::TaskPool, world: &mut World, n: u64, s: &mut Scratch) {
    let (len, g) = (world.len(), world.geometry);
    let input = read_input(n);
    s.sized(world);
    let prev = &s.prev[..];
    pool.scope(|sc| {
        for (i, c) in s.keys.chunks_mut(GRAIN).enumerate() {
            sc.spawn(async move { cell_keys(c, i * GRAIN, &prev[i * GRAIN..][..c.len()], g) });
        }
    });
    s.keys.sort_unstable();
    let keys = &s.keys[..];
    pool.scope(|sc| {
        for (i, c) in s.starts.chunks_mut(GRAIN).enumerate() {
            sc.spawn(async move { cell_starts(c, i * GRAIN, keys) });
        }
        for (i, c) in s.sorted.chunks_mut(GRAIN).enumerate() {
            sc.spawn(async move { gather_bodies(c, &keys[i * GRAIN..][..c.len()], prev) });
        }
    });
    let grid = Grid {
        keys,
        bodies: &s.sorted,
        starts: &s.starts,
        geometry: g,
    };
    pool.scope(|sc| {
        for (k, p) in s.plans.iter_mut().enumerate() {
            sc.spawn(async move {
                let a = plan_agent(n, k, len);
                *p = plan_path(a, n, prev[a].pos, g);
            });
        }
        for (i, c) in world.agents.chunks_mut(STEER_CHUNK).enumerate() {
            let grid = &grid;
            sc.spawn(async move { steer(c, i * STEER_CHUNK, prev, grid) });
        }
    });
    apply_plans(&mut world.agents, n, &s.plans);
    let agents = &world.agents;
    pool.scope(|sc| {
        for (i, c) in world.bodies.chunks_mut(PHYSICS_CHUNK).enumerate() {
            let (grid, input) = (&grid, &input);
            sc.spawn(async move {
                let first = i * PHYSICS_CHUNK;
                integrate(c, first, &agents[first..][..c.len()], prev, grid, input);
            });
        }
    });
    if n >= STREAM_LATENCY {
        let id = n - STREAM_LATENCY;
        install_clip(&mut world.clips, id, decompress(&load_asset(id)));
    }
    let cam = camera(n, g);
    let (bodies, clips) = (&world.bodies, &world.clips);
    pool.scope(|sc| {
        for (i, c) in world.poses.chunks_mut(ANIMATION_CHUNK).enumerate() {
            sc.spawn(async move {
                let first = i * ANIMATION_CHUNK;
                animate(c, first, &bodies[first..][..c.len()], clips);
            });
        }
        let chunks = s.visible.chunks_mut(CULL_CHUNK).zip(s.counts.iter_mut());
        for (i, (v, count)) in chunks.enumerate() {
            sc.spawn(async move {
                *count = cull(v, &bodies[i * CULL_CHUNK..][..v.len()], &cam);
            });
        }
    });
    let total = s.counts.iter().map(|&c| c as usize).sum();
    s.draws.resize(total, DrawCmd::default());
    let (visible, poses) = (&s.visible, &world.poses);
    pool.scope(|sc| {
        let mut rest = &mut s.draws[..];
        for (i, &count) in s.counts.iter().enumerate() {
            let (out, tail) = rest.split_at_mut(count as usize);
            rest = tail;
            let first = i * CULL_CHUNK;
            let end = (first + CULL_CHUNK).min(len);
            sc.spawn(async move {
                build_draws(
                    out,
                    &visible[first..end],
                    &bodies[first..end],
                    &poses[first..end],
                    first,
                    &cam,
                );
            });
        }
    });
    s.draws.sort_unstable_by(draw_order);
    s.encoded.resize(s.draws.len().div_ceil(ENCODE_CHUNK), 0);
    pool.scope(|sc| {
        for (e, c) in s.encoded.iter_mut().zip(s.draws.chunks(ENCODE_CHUNK)) {
            sc.spawn(async move { *e = encode(c) });
        }
    });
    world.presented = present(&s.encoded, s.draws.len(), world.presented);
}
