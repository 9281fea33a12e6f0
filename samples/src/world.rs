//! The world of the game-frame sample: its data (entities as structure-of-arrays), the
//! stages' kernels (plain functions over slices, shared by both runs), and the sequential
//! reference that the job-system run is checked against.
//!
//! Nothing here knows the job system: `main.rs` drives these kernels as jobs.

// ── The world ────────────────────────────────────────────────────────────────────────────────

/// Entities in the world; each has a rigid body, an animated pose and an AI agent.
pub(crate) const ENTITIES: usize = 8192;
/// Rigid bodies per physics job (raw batch of `ENTITIES / PHYSICS_CHUNK` declarations).
pub(crate) const PHYSICS_CHUNK: usize = 256;
/// Poses per animation job.
pub(crate) const ANIMATION_CHUNK: usize = 512;
/// Agents per AI job.
pub(crate) const AI_CHUNK: usize = 512;
/// Entities per culling job; each culling chunk also becomes one render-build job.
pub(crate) const CULL_CHUNK: usize = 512;
/// Bones per animated pose.
const BONES: usize = 8;

/// Fixed time step: every frame simulates 1/60 s, however long it took to compute.
const DT: f32 = 1.0 / 60.0;
const GRAVITY: Vec3 = [0.0, -9.81, 0.0];
/// Velocity kept per step (air drag).
const DAMPING: f32 = 0.995;
/// Fraction of vertical speed kept when a body bounces off the ground.
const RESTITUTION: f32 = 0.8;
/// Strongest steering acceleration an agent applies to its body.
const MAX_STEER: f32 = 6.0;

type Vec3 = [f32; 3];

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Body {
    pos: Vec3,
    vel: Vec3,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pose {
    phase: f32,
    bones: [f32; BONES],
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Agent {
    /// The waypoint this agent walks to.
    target: Vec3,
    /// Steering acceleration computed by AI this frame, applied by physics next frame.
    steer: Vec3,
}

/// What the player did this frame.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Input {
    wind: Vec3,
    jump: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Camera {
    eye: Vec3,
    forward: Vec3,
    cos_half_fov: f32,
    far: f32,
}

/// One draw call for the GPU: a sort key, which entity, and its transform.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DrawCmd {
    key: u64,
    entity: u32,
    transform: [f32; 4],
}

/// Everything a frame reads and writes. Entity `i` owns `bodies[i]`, `poses[i]`, `agents[i]`
/// and `visible[i]`; structure-of-arrays, so each stage borrows only the arrays it needs.
pub(crate) struct World {
    pub(crate) bodies: Vec<Body>,
    pub(crate) poses: Vec<Pose>,
    pub(crate) agents: Vec<Agent>,
    /// Written by culling: is entity `i` in view this frame?
    pub(crate) visible: Vec<bool>,
    /// Written by culling: how many entities of each culling chunk are in view.
    pub(crate) visible_counts: Vec<usize>,
    /// Written by render build, read by present.
    pub(crate) commands: Vec<DrawCmd>,
    /// Running hash of every draw command presented so far (what reached "the GPU").
    pub(crate) presented: u64,
}

impl World {
    /// A deterministic starting world: bodies scattered in the air, agents with a waypoint.
    pub(crate) fn new(entities: usize) -> Self {
        let bodies = (0..entities as u64)
            .map(|i| Body {
                pos: [
                    unit(i, 0) * 40.0,
                    1.0 + (unit(i, 1) + 1.0) * 10.0,
                    unit(i, 2) * 40.0,
                ],
                vel: [unit(i, 3), 0.0, unit(i, 4)],
            })
            .collect();
        let poses = (0..entities as u64)
            .map(|i| Pose {
                phase: unit(i, 5) * 3.0,
                bones: [0.0; BONES],
            })
            .collect();
        let agents = (0..entities as u64)
            .map(|i| Agent {
                target: [unit(i, 6) * 40.0, 0.0, unit(i, 7) * 40.0],
                steer: [0.0; 3],
            })
            .collect();
        Self {
            bodies,
            poses,
            agents,
            visible: vec![false; entities],
            visible_counts: vec![0; entities.div_ceil(CULL_CHUNK)],
            commands: Vec::with_capacity(entities),
            presented: FNV_OFFSET,
        }
    }

    /// A hash of the whole simulation state and of everything presented so far.
    pub(crate) fn checksum(&self) -> u64 {
        let mut h = self.presented;
        for b in &self.bodies {
            h = fnv_floats(h, &b.pos);
            h = fnv_floats(h, &b.vel);
        }
        for p in &self.poses {
            h = fnv_floats(h, &[p.phase]);
            h = fnv_floats(h, &p.bones);
        }
        for a in &self.agents {
            h = fnv_floats(h, &a.target);
            h = fnv_floats(h, &a.steer);
        }
        h
    }
}

// ── The stages' work, as plain functions over slices ─────────────────────────────────────────
//
// Each kernel works on one chunk and touches nothing outside its arguments, so the frame can
// run it on any worker, and the sequential reference can run the very same code in one call.
// Each entity's result depends only on that entity's data: chunking cannot change the result.

/// Input: the "player" blows wind that turns slowly and jumps every two seconds.
pub(crate) fn read_input(frame: u64) -> Input {
    let angle = frame as f32 * 0.02;
    Input {
        wind: [angle.cos() * 1.5, 0.0, angle.sin() * 1.5],
        jump: frame % 120 == 60,
    }
}

/// Physics: integrate velocities and positions; bounce off the ground plane.
pub(crate) fn integrate(bodies: &mut [Body], agents: &[Agent], input: &Input) {
    for (b, a) in bodies.iter_mut().zip(agents) {
        let acc = add(add(GRAVITY, input.wind), a.steer);
        b.vel = scale(add(b.vel, scale(acc, DT)), DAMPING);
        if input.jump && b.pos[1] < 0.5 {
            b.vel[1] += 6.0;
        }
        b.pos = add(b.pos, scale(b.vel, DT));
        if b.pos[1] < 0.0 {
            b.pos[1] = -b.pos[1];
            b.vel[1] = -b.vel[1] * RESTITUTION;
        }
    }
}

/// Animation: advance each walk cycle by the body's speed and pose the bones.
pub(crate) fn animate(poses: &mut [Pose], bodies: &[Body]) {
    for (p, b) in poses.iter_mut().zip(bodies) {
        p.phase = (p.phase + (0.5 + length(b.vel)) * DT * 4.0) % std::f32::consts::TAU;
        for (k, bone) in p.bones.iter_mut().enumerate() {
            *bone = (p.phase + k as f32 * 0.7).sin() * (0.2 + 0.05 * k as f32);
        }
    }
}

/// AI: steer toward the waypoint; pick the next one when close.
pub(crate) fn think(agents: &mut [Agent], bodies: &[Body]) {
    for (a, b) in agents.iter_mut().zip(bodies) {
        let to = sub(a.target, b.pos);
        let flat = [to[0], 0.0, to[2]];
        let dist = length(flat);
        if dist < 2.0 {
            a.target = next_waypoint(a.target);
        }
        a.steer = if dist > 1e-3 {
            scale(flat, MAX_STEER / dist)
        } else {
            [0.0; 3]
        };
    }
}

/// The camera orbits the arena, looking at its centre.
pub(crate) fn camera(frame: u64) -> Camera {
    let angle = frame as f32 * 0.01;
    let eye = [angle.cos() * 60.0, 15.0, angle.sin() * 60.0];
    let forward = scale(sub([0.0; 3], eye), 1.0 / length(eye));
    Camera {
        eye,
        forward,
        cos_half_fov: 0.92,
        far: 110.0,
    }
}

/// Culling: which bodies are inside the view cone? Returns how many are.
pub(crate) fn cull(visible: &mut [bool], bodies: &[Body], cam: &Camera) -> usize {
    let mut count = 0;
    for (v, b) in visible.iter_mut().zip(bodies) {
        let d = sub(b.pos, cam.eye);
        let along = dot(d, cam.forward);
        let dist2 = dot(d, d);
        *v = along > 0.1
            && dist2 < cam.far * cam.far
            && along * along >= cam.cos_half_fov * cam.cos_half_fov * dist2;
        count += usize::from(*v);
    }
    count
}

/// Render build: one draw command per visible entity, in entity order. `first` is the index
/// of the chunk's first entity; `out` has exactly one slot per visible entity of the chunk.
pub(crate) fn build_commands(
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
        let entity = (first + i) as u32;
        let depth = dot(sub(b.pos, cam.eye), cam.forward);
        let material = u64::from(entity % 7);
        *slot = DrawCmd {
            key: (material << 32) | u64::from((depth * 256.0) as u32),
            entity,
            transform: [b.pos[0], b.pos[1], b.pos[2], p.bones[0]],
        };
        written += 1;
    }
    debug_assert_eq!(
        written,
        out.len(),
        "culling counted a different number of visible entities"
    );
}

/// Present: "submit" the frame's commands to the GPU — here, fold them into a running hash.
pub(crate) fn present(commands: &[DrawCmd], presented: &mut u64) {
    let mut h = *presented;
    for c in commands {
        h = fnv(h, c.key);
        h = fnv(h, u64::from(c.entity));
        h = fnv_floats(h, &c.transform);
    }
    *presented = fnv(h, commands.len() as u64);
}

// ── The same frame without the job system: the reference ────────────────────────────────────

fn run_frame_sequential(world: &mut World, frame: u64) {
    let input = read_input(frame);
    integrate(&mut world.bodies, &world.agents, &input);
    animate(&mut world.poses, &world.bodies);
    think(&mut world.agents, &world.bodies);
    let cam = camera(frame);
    let visible = cull(&mut world.visible, &world.bodies, &cam);
    world.commands.resize(visible, DrawCmd::default());
    build_commands(
        &mut world.commands,
        &world.visible,
        &world.bodies,
        &world.poses,
        0,
        &cam,
    );
    present(&world.commands, &mut world.presented);
}

pub(crate) fn simulate_sequential(frames: usize) -> World {
    let mut world = World::new(ENTITIES);
    for frame in 0..frames as u64 {
        run_frame_sequential(&mut world, frame);
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

fn length(a: Vec3) -> f32 {
    dot(a, a).sqrt()
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
fn next_waypoint(current: Vec3) -> Vec3 {
    let seed = u64::from(current[0].to_bits()) << 32 | u64::from(current[2].to_bits());
    [unit(seed, 0) * 40.0, 0.0, unit(seed, 1) * 40.0]
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
