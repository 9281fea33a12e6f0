//! The game world of the frame sample: its data, the systems' kernels, and the sequential
//! reference frame that every scheduler's run is checked against.
//!
//! Nothing here knows a job system. Each kernel works on a range of entities and writes only
//! what its arguments hand it mutably, so a driver may cut the work into any chunks and run
//! them on any threads: every entity's result depends only on the frame's inputs (the
//! snapshot of last frame's bodies, the grid, the clips), never on the order chunks run in.
//! That is what makes the frame deterministic, and the checksum comparable across drivers.
//!
//! ```text
//!  input ─► snapshot ─► grid (cell keys, sort, cell starts) ─► AI: path plans (long tails)
//!  (main)                                                      ║   + crowd steering (neighbours)
//!                                                              ▼
//!                        asset stream ──(4 frames later)──► physics (contacts via the grid)
//!                        (blocking lane + background)          │
//!                                                  ┌───────────┴───────────┐
//!                                                  ▼                       ▼
//!                                       animation (pose blend)    frustum culling
//!                                                  └───────────┬───────────┘
//!                                                              ▼
//!                                 draw list ─► [later: sort ─► encode ─► present (main)]
//! ```

use std::f32::consts::TAU;

// ── Tuning ──────────────────────────────────────────────────────────────────────────────────

/// Entities in the default world (`--entities`).
pub const DEFAULT_ENTITIES: usize = 100_000;
/// Entities per square metre of ground: the world's side grows with the entity count, so a
/// neighbour query costs the same in a small world as in a big one. Picked: about 2 entities
/// per grid cell.
const DENSITY: f32 = 0.5;
/// Side of a grid cell, in metres: the neighbour radius, so a 3 × 3 block of cells holds every
/// neighbour.
pub const CELL: f32 = 2.0;
/// Distance below which two bodies push each other apart.
const CONTACT_RADIUS: f32 = 0.6;
/// Neighbours a crowd agent looks at, at most (the nearest cells first).
const MAX_NEIGHBOURS: usize = 24;
/// Bones per pose.
pub const BONES: usize = 16;
/// Key frames per animation clip.
pub const KEYS: usize = 8;
/// Animation clips resident at once; the asset stream replaces one every frame.
pub const CLIPS: usize = 8;
/// Frames between an asset's request and the frame whose animation needs it.
pub const STREAM_LATENCY: u64 = 4;
/// Path plans per frame: single jobs of very different lengths (the frame's long tails).
pub const PLANS_PER_FRAME: usize = 32;
/// Draw commands per encoding job; the presented hash is defined over these chunks.
pub const ENCODE_CHUNK: usize = 2048;

/// Fixed time step: every frame simulates 1/60 s, however long it took to compute.
const DT: f32 = 1.0 / 60.0;
const GRAVITY: Vec3 = [0.0, -9.81, 0.0];
/// Velocity kept per step (air drag).
const DAMPING: f32 = 0.995;
/// Fraction of vertical speed kept when a body bounces off the ground.
const RESTITUTION: f32 = 0.6;
/// Strongest steering acceleration an agent applies to its body.
const MAX_STEER: f32 = 8.0;
/// Speed at which animation is fully the run clip.
const RUN_SPEED: f32 = 6.0;

/// A 3-vector: x, y (up), z.
pub type Vec3 = [f32; 3];

// ── Data ─────────────────────────────────────────────────────────────────────────────────────

/// A rigid body: where an entity is and how it moves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Body {
    /// Position, metres.
    pub pos: Vec3,
    /// Velocity, metres per second.
    pub vel: Vec3,
}

/// A crowd agent: where it walks and how it steers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Agent {
    /// The waypoint this agent walks to.
    pub target: Vec3,
    /// Steering acceleration computed by AI this frame, applied by physics.
    pub steer: Vec3,
}

/// An animated pose: the walk/run cycle's phase, the blend weight and the bones.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pose {
    /// Phase of the cycle, radians.
    pub phase: f32,
    /// 0 = the walk clip, 1 = the run clip.
    pub blend: f32,
    /// Bone angles.
    pub bones: [f32; BONES],
}

/// An animation clip: `KEYS` key frames of every bone.
pub type Clip = [[f32; BONES]; KEYS];

/// An asset as it comes off the disk: a quantised clip.
pub type RawAsset = [u16; KEYS * BONES];

/// What the player did this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Input {
    /// Wind the player blows, an acceleration.
    pub wind: Vec3,
    /// Whether everyone on the ground jumps.
    pub jump: bool,
}

/// The camera's frustum: six planes `(normal, offset)`, normals pointing inside.
#[derive(Clone, Copy, Debug)]
pub struct Camera {
    /// Eye position.
    pub eye: Vec3,
    /// View direction (unit).
    pub forward: Vec3,
    planes: [[f32; 4]; 6],
}

/// One draw call for the GPU: a sort key (material, depth, entity: unique), the LOD, the
/// transform.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DrawCmd {
    /// Material in bits 48.., quantised depth in 24..48, entity in 0..24.
    pub key: u64,
    /// Level of detail: 0 near, 2 far.
    pub lod: u32,
    /// Position and the first bone (a stand-in for the skinning data).
    pub transform: [f32; 4],
}

/// The world's size and its grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    /// Half the side of the square ground, metres; the ground is `[-half, half]²`.
    pub half: f32,
    /// Cells per side of the grid.
    pub side: usize,
}

impl Geometry {
    /// The geometry of a world of `entities` entities at the sample's density.
    pub fn for_entities(entities: usize) -> Self {
        let half = ((entities.max(1) as f32) / DENSITY).sqrt() / 2.0;
        Self {
            half,
            side: ((2.0 * half / CELL).ceil() as usize).max(1),
        }
    }

    /// Cells in the grid.
    pub fn cells(&self) -> usize {
        self.side * self.side
    }

    /// The cell `(x, z)` that position `p` falls in (clamped to the grid).
    fn cell_xz(&self, p: Vec3) -> (usize, usize) {
        let max = (self.side - 1) as f32;
        let cx = ((p[0] + self.half) / CELL).floor().clamp(0.0, max);
        let cz = ((p[2] + self.half) / CELL).floor().clamp(0.0, max);
        (cx as usize, cz as usize)
    }
}

/// Everything that lives across frames. Entity `i` owns `bodies[i]`, `agents[i]`, `poses[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    /// Size and grid.
    pub geometry: Geometry,
    /// Rigid bodies.
    pub bodies: Vec<Body>,
    /// Crowd agents.
    pub agents: Vec<Agent>,
    /// Animated poses.
    pub poses: Vec<Pose>,
    /// Resident animation clips, replaced by the asset stream.
    pub clips: Vec<Clip>,
    /// Running hash of every frame presented so far (what reached "the GPU").
    pub presented: u64,
}

impl World {
    /// A deterministic starting world of `entities` entities (at most 2^24: the draw key holds
    /// the entity in 24 bits).
    pub fn new(entities: usize) -> Self {
        assert!(entities > 0 && entities < 1 << 24, "1 to 2^24 - 1 entities");
        let geometry = Geometry::for_entities(entities);
        let h = geometry.half * 0.95;
        let bodies = (0..entities as u64)
            .map(|i| Body {
                pos: [
                    unit(i, 0) * h,
                    1.0 + (unit(i, 1) + 1.0) * 5.0,
                    unit(i, 2) * h,
                ],
                vel: [unit(i, 3), 0.0, unit(i, 4)],
            })
            .collect();
        let agents = (0..entities as u64)
            .map(|i| Agent {
                target: [unit(i, 6) * h, 0.0, unit(i, 7) * h],
                steer: [0.0; 3],
            })
            .collect();
        let poses = (0..entities as u64)
            .map(|i| Pose {
                phase: (unit(i, 5) + 1.0) * 3.0,
                ..Pose::default()
            })
            .collect();
        let clips = (0..CLIPS as u64)
            .map(|c| decompress(&load_asset(u64::MAX - c)))
            .collect();
        Self {
            geometry,
            bodies,
            agents,
            poses,
            clips,
            presented: FNV_OFFSET,
        }
    }

    /// Entities in the world.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// Whether the world is empty (never: `new` needs one entity).
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// A hash of the whole simulation state and of everything presented so far.
    pub fn checksum(&self) -> u64 {
        let mut h = self.presented;
        for b in &self.bodies {
            h = fnv_floats(h, &b.pos);
            h = fnv_floats(h, &b.vel);
        }
        for a in &self.agents {
            h = fnv_floats(h, &a.target);
            h = fnv_floats(h, &a.steer);
        }
        for p in &self.poses {
            h = fnv_floats(h, &[p.phase, p.blend]);
            h = fnv_floats(h, &p.bones);
        }
        for c in &self.clips {
            for key in c {
                h = fnv_floats(h, key);
            }
        }
        h
    }
}

/// The uniform grid of one frame, over the snapshot of last frame's bodies: `keys` sorted
/// (`cell << 32 | entity`), `bodies` the snapshot's bodies in that order (so a cell's
/// neighbours are adjacent in memory), and `starts[c]..starts[c + 1]` the range of cell `c`.
#[derive(Clone, Copy, Debug)]
pub struct Grid<'a> {
    /// Sorted `cell << 32 | entity` keys, one per entity.
    pub keys: &'a [u64],
    /// `bodies[k]` is the body of entity `keys[k] & 0xFFFF_FFFF` (see [`gather_bodies`]).
    pub bodies: &'a [Body],
    /// Where each cell's keys start; `cells + 1` entries.
    pub starts: &'a [u32],
    /// Size of the world and grid.
    pub geometry: Geometry,
}

impl Grid<'_> {
    /// Calls `f(j, body)` for each entity `j` in the 3 × 3 cells around `p`, cells row by row,
    /// entities in index order within a cell: a fixed order, so float sums over neighbours are
    /// the same in every run.
    #[inline]
    fn for_near(&self, p: Vec3, mut f: impl FnMut(usize, &Body)) {
        let g = self.geometry;
        let (cx, cz) = g.cell_xz(p);
        for z in cz.saturating_sub(1)..=(cz + 1).min(g.side - 1) {
            let row = z * g.side;
            let (x0, x1) = (cx.saturating_sub(1), (cx + 1).min(g.side - 1));
            // The cells of a row are adjacent in the key order: one range for the row.
            let range = self.starts[row + x0] as usize..self.starts[row + x1 + 1] as usize;
            for (&key, body) in self.keys[range.clone()].iter().zip(&self.bodies[range]) {
                f((key & 0xFFFF_FFFF) as usize, body);
            }
        }
    }
}

// ── Kernels ──────────────────────────────────────────────────────────────────────────────────

/// Input: the "player" blows wind that turns slowly and jumps every two seconds.
pub fn read_input(frame: u64) -> Input {
    let angle = frame as f32 * 0.02;
    Input {
        wind: [angle.cos() * 1.5, 0.0, angle.sin() * 1.5],
        jump: frame % 120 == 60,
    }
}

/// Grid, step 1: the key `cell << 32 | entity` of each body; `first` is the index of
/// `bodies[0]`.
pub fn cell_keys(out: &mut [u64], first: usize, bodies: &[Body], g: Geometry) {
    for (i, (k, b)) in out.iter_mut().zip(bodies).enumerate() {
        let (cx, cz) = g.cell_xz(b.pos);
        *k = ((cz * g.side + cx) as u64) << 32 | (first + i) as u64;
    }
}

/// Grid, step 3 (after sorting the keys): `out[j]` = where cell `first + j`'s keys start.
pub fn cell_starts(out: &mut [u32], first: usize, keys: &[u64]) {
    for (j, s) in out.iter_mut().enumerate() {
        let cell = (first + j) as u64;
        *s = keys.partition_point(|&k| k >> 32 < cell) as u32;
    }
}

/// Grid, step 4: the snapshot's bodies in key order; `keys` is the part of the sorted keys
/// that `out` covers.
pub fn gather_bodies(out: &mut [Body], keys: &[u64], prev: &[Body]) {
    for (b, &key) in out.iter_mut().zip(keys) {
        *b = prev[(key & 0xFFFF_FFFF) as usize];
    }
}

/// The agent whose path plan `k` of frame `frame` recomputes.
pub fn plan_agent(frame: u64, k: usize, entities: usize) -> usize {
    (mix(frame.wrapping_mul(PLANS_PER_FRAME as u64) + k as u64) % entities as u64) as usize
}

/// Path planning (a stand-in for a search over a cost field): a seeded walk over the terrain
/// cost that keeps the cheapest point seen. Its length varies widely by agent and frame,
/// from 200 to 25,000 steps (cubic in a uniform draw): a few plans are the frame's long tails.
pub fn plan_path(agent: usize, frame: u64, from: Vec3, g: Geometry) -> Vec3 {
    let seed = mix(agent as u64 ^ frame.rotate_left(32));
    let x = seed % 100;
    let steps = 200 + x * x * x / 40;
    let (mut s, mut p, mut best, mut best_cost) = (seed, from, from, terrain_cost(from));
    let h = g.half * 0.95;
    for _ in 0..steps {
        s = s
            .wrapping_mul(0x5851_F42D_4C95_7F2D)
            .wrapping_add(0x1405_7B7E_F767_814F);
        let dx = ((s >> 40) & 0xFF) as f32 / 128.0 - 1.0;
        let dz = ((s >> 48) & 0xFF) as f32 / 128.0 - 1.0;
        p[0] = (p[0] + dx * 1.5).clamp(-h, h);
        p[2] = (p[2] + dz * 1.5).clamp(-h, h);
        let c = terrain_cost(p);
        if c < best_cost {
            (best, best_cost) = (p, c);
        }
    }
    [best[0], 0.0, best[2]]
}

/// The terrain's walking cost: ridges every 20 m in x and 14 m in z, rising away from the
/// centre.
fn terrain_cost(p: Vec3) -> f32 {
    let (x, z) = (p[0] * 0.05, p[2] * 0.07);
    (x - x.round()).abs() + (z - z.round()).abs() + 0.0004 * (p[0] * p[0] + p[2] * p[2])
}

/// Crowd steering (boids): each agent steers toward its waypoint, away from close neighbours,
/// with its neighbours' heading and toward their centre. Reads last frame's bodies (`prev`)
/// through the grid; `first` is the index of `agents[0]`.
pub fn steer(agents: &mut [Agent], first: usize, prev: &[Body], grid: &Grid<'_>) {
    for (i, a) in agents.iter_mut().enumerate() {
        let me = first + i;
        let b = prev[me];
        let (mut sep, mut ali, mut coh, mut count) = ([0.0f32; 3], [0.0f32; 3], [0.0f32; 3], 0);
        grid.for_near(b.pos, |j, o| {
            if j == me || count == MAX_NEIGHBOURS {
                return;
            }
            let d = [o.pos[0] - b.pos[0], 0.0, o.pos[2] - b.pos[2]];
            let d2 = dot(d, d);
            if d2 < CELL * CELL {
                count += 1;
                sep = sub(sep, scale(d, 1.0 / (d2 + 0.05)));
                ali = add(ali, o.vel);
                coh = add(coh, d);
            }
        });
        let to = sub(a.target, b.pos);
        let flat = [to[0], 0.0, to[2]];
        let dist = length(flat);
        if dist < 2.0 {
            a.target = next_waypoint(a.target, grid.geometry);
        }
        let mut s = if dist > 1e-3 {
            scale(flat, 4.0 / dist)
        } else {
            [0.0; 3]
        };
        if count > 0 {
            let n = 1.0 / count as f32;
            s = add(s, scale(sep, 1.5));
            s = add(s, scale(sub(scale(ali, n), b.vel), 0.5));
            s = add(s, scale(coh, 0.3 * n));
        }
        s[1] = 0.0;
        let len = length(s);
        a.steer = if len > MAX_STEER {
            scale(s, MAX_STEER / len)
        } else {
            s
        };
    }
}

/// Physics: contacts against neighbours (through the grid, from last frame's bodies), then
/// gravity, wind and steering, integration, the ground and the walls. `first` is the index
/// of `bodies[0]`; `agents` are the same entities' agents.
pub fn integrate(
    bodies: &mut [Body],
    first: usize,
    agents: &[Agent],
    prev: &[Body],
    grid: &Grid<'_>,
    input: &Input,
) {
    let h = grid.geometry.half;
    for (i, (b, a)) in bodies.iter_mut().zip(agents).enumerate() {
        let me = first + i;
        let mut push = [0.0f32; 3];
        let p = prev[me].pos;
        grid.for_near(p, |j, o| {
            if j == me {
                return;
            }
            let d = sub(p, o.pos);
            let d2 = dot(d, d);
            if d2 < CONTACT_RADIUS * CONTACT_RADIUS && d2 > 1e-8 {
                let dist = d2.sqrt();
                push = add(push, scale(d, (CONTACT_RADIUS - dist) * 40.0 / dist));
            }
        });
        let acc = add(add(add(GRAVITY, input.wind), a.steer), push);
        b.vel = scale(add(b.vel, scale(acc, DT)), DAMPING);
        if input.jump && b.pos[1] < 0.5 {
            b.vel[1] += 5.0;
        }
        b.pos = add(b.pos, scale(b.vel, DT));
        if b.pos[1] < 0.0 {
            b.pos[1] = -b.pos[1];
            b.vel[1] = -b.vel[1] * RESTITUTION;
        }
        for axis in [0, 2] {
            if b.pos[axis].abs() > h {
                b.pos[axis] = b.pos[axis].clamp(-h, h);
                b.vel[axis] = -b.vel[axis];
            }
        }
    }
}

/// Animation: advance each cycle by the body's speed and blend the walk and run clips (two
/// key frames each) into the bones. `first` is the index of `poses[0]`.
pub fn animate(poses: &mut [Pose], first: usize, bodies: &[Body], clips: &[Clip]) {
    for (i, (p, b)) in poses.iter_mut().zip(bodies).enumerate() {
        let e = first + i;
        let (walk, run) = (&clips[e % CLIPS], &clips[(e + 3) % CLIPS]);
        let speed = length([b.vel[0], 0.0, b.vel[2]]);
        p.phase = (p.phase + (0.5 + speed) * DT * 2.0) % TAU;
        let target = (speed / RUN_SPEED).min(1.0);
        p.blend += (target - p.blend) * 0.1;
        let at = p.phase / TAU * KEYS as f32;
        let k0 = (at as usize).min(KEYS - 1);
        let (k1, t) = ((k0 + 1) % KEYS, at - k0 as f32);
        for (bone, out) in p.bones.iter_mut().enumerate() {
            let w = walk[k0][bone] + (walk[k1][bone] - walk[k0][bone]) * t;
            let r = run[k0][bone] + (run[k1][bone] - run[k0][bone]) * t;
            *out = w + (r - w) * p.blend;
        }
    }
}

/// The camera orbits the ground's centre, looking across it.
pub fn camera(frame: u64, g: Geometry) -> Camera {
    let angle = frame as f32 * 0.01;
    let r = g.half * 0.9;
    let eye = [angle.cos() * r, 12.0, angle.sin() * r];
    let look = [0.0, 0.0, 0.0];
    let forward = normalize(sub(look, eye));
    let right = normalize(cross(forward, [0.0, 1.0, 0.0]));
    let up = cross(right, forward);
    let (near, far) = (0.5, g.half * 1.6);
    let (tan_h, tan_v) = (0.9f32, 0.5f32); // about 84° by 53°
    let plane = |n: Vec3, through: Vec3| {
        let n = normalize(n);
        [n[0], n[1], n[2], -dot(n, through)]
    };
    let planes = [
        plane(forward, add(eye, scale(forward, near))),
        plane(scale(forward, -1.0), add(eye, scale(forward, far))),
        plane(sub(forward, scale(right, 1.0 / tan_h)), eye), // right side, normal inward
        plane(add(forward, scale(right, 1.0 / tan_h)), eye),
        plane(sub(forward, scale(up, 1.0 / tan_v)), eye),
        plane(add(forward, scale(up, 1.0 / tan_v)), eye),
    ];
    Camera {
        eye,
        forward,
        planes,
    }
}

/// Frustum culling: flags each body whose bounding sphere touches the frustum and returns how
/// many are.
pub fn cull(visible: &mut [bool], bodies: &[Body], cam: &Camera) -> u32 {
    const RADIUS: f32 = 1.0;
    let mut count = 0;
    for (v, b) in visible.iter_mut().zip(bodies) {
        *v = cam
            .planes
            .iter()
            .all(|p| p[0] * b.pos[0] + p[1] * b.pos[1] + p[2] * b.pos[2] + p[3] > -RADIUS);
        count += u32::from(*v);
    }
    count
}

/// Draw list: one command per visible entity, in entity order. `first` is the index of the
/// chunk's first entity; `out` has exactly one slot per visible entity of the chunk.
pub fn build_draws(
    out: &mut [DrawCmd],
    visible: &[bool],
    bodies: &[Body],
    poses: &[Pose],
    first: usize,
    cam: &Camera,
) {
    let in_view = visible
        .iter()
        .zip(bodies.iter().zip(poses))
        .enumerate()
        .filter(|(_, (v, _))| **v);
    let mut written = 0;
    for (slot, (i, (_, (b, p)))) in out.iter_mut().zip(in_view) {
        let entity = (first + i) as u64;
        let depth = dot(sub(b.pos, cam.eye), cam.forward).max(0.0);
        let lod = if depth < 30.0 {
            0
        } else if depth < 120.0 {
            1
        } else {
            2
        };
        let material = entity % 7;
        let depth_q = ((depth * 64.0) as u64).min((1 << 24) - 1);
        *slot = DrawCmd {
            key: material << 48 | depth_q << 24 | entity,
            lod,
            transform: [b.pos[0], b.pos[1], b.pos[2], p.bones[0]],
        };
        written += 1;
    }
    assert_eq!(
        written,
        out.len(),
        "culling counted a different number of visible entities"
    );
}

/// The submission order: by key (material, then front to back). Keys are unique, so an
/// unstable sort gives one order.
pub fn draw_order(a: &DrawCmd, b: &DrawCmd) -> std::cmp::Ordering {
    a.key.cmp(&b.key)
}

/// Encoding: one chunk of sorted commands into "GPU commands" — here, a hash of them.
pub fn encode(chunk: &[DrawCmd]) -> u64 {
    let mut h = FNV_OFFSET;
    for c in chunk {
        h = fnv(h, c.key);
        h = fnv(h, u64::from(c.lod));
        h = fnv_floats(h, &c.transform);
    }
    h
}

/// Present: "submit" the frame's encoded chunks — fold them into the running hash.
pub fn present(encoded: &[u64], draws: usize, presented: u64) -> u64 {
    fnv(
        encoded.iter().fold(presented, |h, &e| fnv(h, e)),
        draws as u64,
    )
}

/// The asset stream's "file read" for asset `id`: the quantised clip as stored.
pub fn load_asset(id: u64) -> RawAsset {
    let mut raw = [0u16; KEYS * BONES];
    for (k, v) in raw.iter_mut().enumerate() {
        *v = (mix(id.wrapping_mul(1 << 12).wrapping_add(k as u64)) >> 48) as u16;
    }
    raw
}

/// The asset stream's "decompression": a raw asset into a clip, smoothed over key frames.
pub fn decompress(raw: &RawAsset) -> Clip {
    let mut clip = [[0.0f32; BONES]; KEYS];
    for (k, key) in clip.iter_mut().enumerate() {
        for (bone, v) in key.iter_mut().enumerate() {
            let q = |k: usize| f32::from(raw[(k % KEYS) * BONES + bone]) / 65535.0 - 0.5;
            *v = (q(k) * 2.0 + q(k + 1) + q(k + KEYS - 1)) * 0.25 * (1.0 + bone as f32 * 0.05);
        }
    }
    clip
}

/// Where the clip that asset `id` holds goes: it replaces resident clip `id % CLIPS`.
pub fn install_clip(clips: &mut [Clip], id: u64, clip: Clip) {
    clips[(id % CLIPS as u64) as usize] = clip;
}

// ── The same frame without a job system: the reference ─────────────────────────────────────

/// Scratch of the sequential frame, kept across frames.
#[derive(Debug, Default)]
pub struct SequentialScratch {
    prev: Vec<Body>,
    keys: Vec<u64>,
    starts: Vec<u32>,
    sorted: Vec<Body>,
    visible: Vec<bool>,
    draws: Vec<DrawCmd>,
    encoded: Vec<u64>,
}

/// Frame `frame` on this thread with plain loops over the whole world: the reference every
/// parallel driver must match bit for bit.
pub fn run_frame_sequential(world: &mut World, frame: u64, s: &mut SequentialScratch) {
    let n = world.len();
    let g = world.geometry;
    let input = read_input(frame);
    s.prev.clear();
    s.prev.extend_from_slice(&world.bodies);
    s.keys.resize(n, 0);
    cell_keys(&mut s.keys, 0, &s.prev, g);
    s.keys.sort_unstable();
    s.starts.resize(g.cells() + 1, 0);
    cell_starts(&mut s.starts, 0, &s.keys);
    s.sorted.resize(n, Body::default());
    gather_bodies(&mut s.sorted, &s.keys, &s.prev);
    let grid = Grid {
        keys: &s.keys,
        bodies: &s.sorted,
        starts: &s.starts,
        geometry: g,
    };
    let plans: [Vec3; PLANS_PER_FRAME] = std::array::from_fn(|k| {
        let a = plan_agent(frame, k, n);
        plan_path(a, frame, s.prev[a].pos, g)
    });
    steer(&mut world.agents, 0, &s.prev, &grid);
    apply_plans(&mut world.agents, frame, &plans);
    integrate(&mut world.bodies, 0, &world.agents, &s.prev, &grid, &input);
    if frame >= STREAM_LATENCY {
        let id = frame - STREAM_LATENCY;
        install_clip(&mut world.clips, id, decompress(&load_asset(id)));
    }
    animate(&mut world.poses, 0, &world.bodies, &world.clips);
    let cam = camera(frame, g);
    s.visible.resize(n, false);
    let count = cull(&mut s.visible, &world.bodies, &cam);
    s.draws.resize(count as usize, DrawCmd::default());
    build_draws(
        &mut s.draws,
        &s.visible,
        &world.bodies,
        &world.poses,
        0,
        &cam,
    );
    s.draws.sort_unstable_by(draw_order);
    s.encoded.clear();
    s.encoded.extend(s.draws.chunks(ENCODE_CHUNK).map(encode));
    world.presented = present(&s.encoded, s.draws.len(), world.presented);
}

/// Applies the frame's path plans, in plan order: plan `k` gives agent
/// `plan_agent(frame, k, n)` a new waypoint.
pub fn apply_plans(agents: &mut [Agent], frame: u64, plans: &[Vec3]) {
    let n = agents.len();
    for (k, &target) in plans.iter().enumerate() {
        agents[plan_agent(frame, k, n)].target = target;
    }
}

/// `frames` frames of a fresh world of `entities` on this thread.
pub fn simulate_sequential(entities: usize, frames: u64) -> World {
    let mut world = World::new(entities);
    let mut scratch = SequentialScratch::default();
    for frame in 0..frames {
        run_frame_sequential(&mut world, frame, &mut scratch);
    }
    world
}

// ── Small helpers: vector maths, deterministic "randomness", hashing ────────────────────────

fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn scale(a: Vec3, s: f32) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

fn dot(a: Vec3, b: Vec3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn length(a: Vec3) -> f32 {
    dot(a, a).sqrt()
}

fn normalize(a: Vec3) -> Vec3 {
    scale(a, 1.0 / length(a))
}

/// SplitMix64: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic value in [-1, 1) for entity `i`, stream `k`.
fn unit(i: u64, k: u64) -> f32 {
    (mix(i.wrapping_mul(16).wrapping_add(k)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// The waypoint after `current`, derived from it (no shared random state to race on).
fn next_waypoint(current: Vec3, g: Geometry) -> Vec3 {
    let seed = u64::from(current[0].to_bits()) << 32 | u64::from(current[2].to_bits());
    let h = g.half * 0.9;
    [unit(seed, 0) * h, 0.0, unit(seed, 1) * h]
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

/// FNV-1a over the eight bytes of `v`.
fn fnv(mut h: u64, v: u64) -> u64 {
    for byte in v.to_le_bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

fn fnv_floats(h: u64, values: &[f32]) -> u64 {
    values.iter().fold(h, |h, v| fnv(h, u64::from(v.to_bits())))
}
