//! # game-frame — an engine frame loop on jobsys
//!
//! Every frame of a game engine is a chain of dependent stages, each of which is wide enough
//! to split into many jobs. This sample runs such a chain over a few thousand entities:
//!
//! ```text
//!  input ──► physics ──► animation ─┬─► culling ──► render build ──► present
//!  (main     (raw batch,  AI ────────┘   (scope)      (scope)          (main
//!   thread)   counter)   (join of two scopes)                           thread)
//! ```
//!
//! - **input** and **present** are pinned to worker 0, the thread that called
//!   `JobSystem::run` — where window, input and GPU-device calls must happen.
//! - **physics** uses the raw, Naughty-Dog-style layer: an array of `JobDecl`s (entry function
//!   plus data pointer), submitted in one call and waited on through a `Counter`.
//! - **animation** and **AI** only read physics' output, so they run side by side with
//!   `Ctx::join`; each half fans out over chunks of its own data with a scope.
//! - **culling** and **render build** use scopes whose jobs borrow the frame's data mutably,
//!   one disjoint chunk per job.
//!
//! Waiting never blocks a thread: a stage that waits parks its *fiber*, and the worker runs
//! the stage's jobs meanwhile.
//!
//! The simulation is deterministic, so the sample checks itself: after the last frame it runs
//! the same frames again on one thread with plain loops and compares checksums of the whole
//! world and of every draw command presented. A job that ran twice, never ran, or ran before
//! its inputs were ready would change the checksum. Exit status 1 means they differed.
//!
//! ```text
//! cargo run --release -p jobsys-samples --bin game-frame -- --frames 300 --workers 4
//! ```

use jobsys::{Affinity, Counter, Ctx, JobDecl, JobSystem, job_meta};
use std::process::ExitCode;
use std::time::{Duration, Instant};

// ── The world ────────────────────────────────────────────────────────────────────────────────

/// Entities in the world; each has a rigid body, an animated pose and an AI agent.
const ENTITIES: usize = 8192;
/// Rigid bodies per physics job (raw batch of `ENTITIES / PHYSICS_CHUNK` declarations).
const PHYSICS_CHUNK: usize = 256;
/// Poses per animation job.
const ANIMATION_CHUNK: usize = 512;
/// Agents per AI job.
const AI_CHUNK: usize = 512;
/// Entities per culling job; each culling chunk also becomes one render-build job.
const CULL_CHUNK: usize = 512;
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
struct Body {
    pos: Vec3,
    vel: Vec3,
}

#[derive(Clone, Copy, Debug, Default)]
struct Pose {
    phase: f32,
    bones: [f32; BONES],
}

#[derive(Clone, Copy, Debug, Default)]
struct Agent {
    /// The waypoint this agent walks to.
    target: Vec3,
    /// Steering acceleration computed by AI this frame, applied by physics next frame.
    steer: Vec3,
}

/// What the player did this frame.
#[derive(Clone, Copy, Debug, Default)]
struct Input {
    wind: Vec3,
    jump: bool,
}

#[derive(Clone, Copy, Debug)]
struct Camera {
    eye: Vec3,
    forward: Vec3,
    cos_half_fov: f32,
    far: f32,
}

/// One draw call for the GPU: a sort key, which entity, and its transform.
#[derive(Clone, Copy, Debug, Default)]
struct DrawCmd {
    key: u64,
    entity: u32,
    transform: [f32; 4],
}

/// Everything a frame reads and writes. Entity `i` owns `bodies[i]`, `poses[i]`, `agents[i]`
/// and `visible[i]`; structure-of-arrays, so each stage borrows only the arrays it needs.
struct World {
    bodies: Vec<Body>,
    poses: Vec<Pose>,
    agents: Vec<Agent>,
    /// Written by culling: is entity `i` in view this frame?
    visible: Vec<bool>,
    /// Written by culling: how many entities of each culling chunk are in view.
    visible_counts: Vec<usize>,
    /// Written by render build, read by present.
    commands: Vec<DrawCmd>,
    /// Running hash of every draw command presented so far (what reached "the GPU").
    presented: u64,
}

impl World {
    /// A deterministic starting world: bodies scattered in the air, agents with a waypoint.
    fn new(entities: usize) -> Self {
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
    fn checksum(&self) -> u64 {
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
fn read_input(frame: u64) -> Input {
    let angle = frame as f32 * 0.02;
    Input {
        wind: [angle.cos() * 1.5, 0.0, angle.sin() * 1.5],
        jump: frame % 120 == 60,
    }
}

/// Physics: integrate velocities and positions; bounce off the ground plane.
fn integrate(bodies: &mut [Body], agents: &[Agent], input: &Input) {
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
fn animate(poses: &mut [Pose], bodies: &[Body]) {
    for (p, b) in poses.iter_mut().zip(bodies) {
        p.phase = (p.phase + (0.5 + length(b.vel)) * DT * 4.0) % std::f32::consts::TAU;
        for (k, bone) in p.bones.iter_mut().enumerate() {
            *bone = (p.phase + k as f32 * 0.7).sin() * (0.2 + 0.05 * k as f32);
        }
    }
}

/// AI: steer toward the waypoint; pick the next one when close.
fn think(agents: &mut [Agent], bodies: &[Body]) {
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
fn camera(frame: u64) -> Camera {
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
fn cull(visible: &mut [bool], bodies: &[Body], cam: &Camera) -> usize {
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
fn build_commands(
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
fn present(commands: &[DrawCmd], presented: &mut u64) {
    let mut h = *presented;
    for c in commands {
        h = fnv(h, c.key);
        h = fnv(h, u64::from(c.entity));
        h = fnv_floats(h, &c.transform);
    }
    *presented = fnv(h, commands.len() as u64);
}

// ── One frame on the job system ──────────────────────────────────────────────────────────────

/// Pinned to worker 0, the main thread: where an engine talks to the OS and the GPU.
const MAIN_THREAD: Affinity = Affinity::Worker(0);

/// Runs one frame as jobs and returns how many jobs it submitted.
///
/// Each stage waits for the previous one. The waits park this fiber; the worker thread that
/// ran it helps with the stage's jobs meanwhile.
fn run_frame(ctx: &Ctx, world: &mut World, physics: &mut PhysicsBatch, frame: u64) -> usize {
    let mut jobs = 0;

    // 1. Input, on the main thread. A scope job may write to the stack of the code that
    //    opened the scope: the scope returns only after its jobs finished.
    let mut input = Input::default();
    ctx.scope(|s| {
        let input = &mut input;
        s.spawn_with(job_meta!("input", affinity(MAIN_THREAD)), move |s| {
            assert_eq!(
                s.worker_index(),
                0,
                "a job pinned to the main thread ran elsewhere"
            );
            *input = read_input(frame);
        });
    });
    jobs += 1;

    // 2. Physics, with the raw layer (see `PhysicsBatch`). While the batch runs, this fiber
    //    prepares the camera for culling: in the raw layer, the submitter keeps working until
    //    it chooses to wait.
    let (batch, cam) = physics.run(ctx, &mut world.bodies, &world.agents, &input, || {
        camera(frame)
    });
    jobs += batch;

    // 3. Animation and AI both read the bodies physics just moved, and write disjoint arrays,
    //    so they run in parallel: `join` runs the first closure here and publishes the second as
    //    a job that an idle worker steals. Each side fans out over chunks with its own scope.
    let (bodies, poses, agents) = (&world.bodies, &mut world.poses, &mut world.agents);
    let (animation_jobs, ai_jobs) = ctx.join(
        |ctx| {
            ctx.scope(|s| {
                for (poses, bodies) in poses
                    .chunks_mut(ANIMATION_CHUNK)
                    .zip(bodies.chunks(ANIMATION_CHUNK))
                {
                    s.spawn_with(job_meta!("animation"), move |_| animate(poses, bodies));
                }
            });
            poses.len().div_ceil(ANIMATION_CHUNK)
        },
        |ctx| {
            ctx.scope(|s| {
                for (agents, bodies) in agents.chunks_mut(AI_CHUNK).zip(bodies.chunks(AI_CHUNK)) {
                    s.spawn_with(job_meta!("ai"), move |_| think(agents, bodies));
                }
            });
            agents.len().div_ceil(AI_CHUNK)
        },
    );
    jobs += 1 + animation_jobs + ai_jobs; // + 1: join's second half is a job of its own

    // 4. Culling: each job flags its chunk's visible entities and counts them.
    let cam = &cam;
    ctx.scope(|s| {
        let chunks = world
            .visible
            .chunks_mut(CULL_CHUNK)
            .zip(world.bodies.chunks(CULL_CHUNK));
        for ((visible, bodies), count) in chunks.zip(&mut world.visible_counts) {
            s.spawn_with(job_meta!("cull"), move |_| {
                *count = cull(visible, bodies, cam)
            });
        }
    });
    jobs += world.visible_counts.len();

    // 5. Render build: the counts say where each chunk's commands go, so every job writes
    //    straight into its own slice of one command buffer, and the buffer comes out in entity
    //    order however the jobs were scheduled.
    let total = world.visible_counts.iter().sum();
    world.commands.resize(total, DrawCmd::default());
    ctx.scope(|s| {
        let mut rest = world.commands.as_mut_slice();
        let chunks = world
            .visible
            .chunks(CULL_CHUNK)
            .zip(world.bodies.chunks(CULL_CHUNK))
            .zip(world.poses.chunks(CULL_CHUNK));
        for (i, (((visible, bodies), poses), &count)) in
            chunks.zip(&world.visible_counts).enumerate()
        {
            let (out, tail) = rest.split_at_mut(count);
            rest = tail;
            s.spawn_with(job_meta!("render"), move |_| {
                build_commands(out, visible, bodies, poses, i * CULL_CHUNK, cam)
            });
        }
    });
    jobs += world.visible_counts.len();

    // 6. Present, on the main thread again.
    ctx.scope(|s| {
        let (commands, presented) = (&world.commands, &mut world.presented);
        s.spawn_with(job_meta!("present", affinity(MAIN_THREAD)), move |s| {
            assert_eq!(
                s.worker_index(),
                0,
                "a job pinned to the main thread ran elsewhere"
            );
            present(commands, presented);
        });
    });
    jobs + 1
}

/// The physics stage in the raw layer: one `JobDecl` per chunk of bodies, each pointing at a
/// `PhysicsTask` that says which bodies it integrates. Both arrays are kept across frames, so
/// after the first frame submitting physics allocates nothing.
struct PhysicsBatch {
    tasks: Vec<PhysicsTask>,
    decls: Vec<JobDecl>,
}

/// What one physics job works on. The raw layer hands jobs a `*mut ()`, so the chunks travel
/// as raw pointers; `PhysicsBatch::run` keeps what they point to alive and unaliased.
struct PhysicsTask {
    bodies: *mut Body,
    agents: *const Agent,
    len: usize,
    input: Input,
}

impl PhysicsBatch {
    fn new() -> Self {
        let chunks = ENTITIES.div_ceil(PHYSICS_CHUNK);
        Self {
            tasks: Vec::with_capacity(chunks),
            decls: Vec::with_capacity(chunks),
        }
    }

    /// Integrates `bodies` as a batch of jobs, runs `meanwhile` on this fiber while they run,
    /// and returns the number of jobs with what `meanwhile` returned.
    fn run<R>(
        &mut self,
        ctx: &Ctx,
        bodies: &mut [Body],
        agents: &[Agent],
        input: &Input,
        meanwhile: impl FnOnce() -> R,
    ) -> (usize, R) {
        self.decls.clear();
        self.tasks.clear();
        for (bodies, agents) in bodies
            .chunks_mut(PHYSICS_CHUNK)
            .zip(agents.chunks(PHYSICS_CHUNK))
        {
            self.tasks.push(PhysicsTask {
                bodies: bodies.as_mut_ptr(),
                agents: agents.as_ptr(),
                len: bodies.len(),
                input: *input,
            });
        }
        // `tasks` is complete and will not reallocate: pointers into it stay valid.
        for task in &self.tasks {
            let data = std::ptr::from_ref(task).cast_mut().cast::<()>();
            self.decls
                .push(JobDecl::new(job_meta!("physics"), physics_job, data));
        }

        let done = Counter::new();
        // A panic here would leave the batch running with its borrows gone, so catch one in
        // `meanwhile` and re-raise it after the wait.
        let result = {
            // SAFETY: the declarations, their tasks, the bodies and agents they point to, and
            // `done` all outlive the wait for zero below, which runs on every path (the only
            // code in between is `meanwhile`, whose panic is caught). Each task covers its own
            // chunk of `bodies`, which this function borrows mutably, and no task is in another
            // batch. `physics_job` is sound on any worker for such a task.
            unsafe { ctx.run_jobs(&self.decls, &done) };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(meanwhile));
            ctx.wait_for_counter(&done, 0);
            result
        };
        assert!(!done.is_poisoned(), "a physics job panicked");
        match result {
            Ok(r) => (self.decls.len(), r),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}

/// Entry point of a physics job.
///
/// # Safety
/// `data` points to a `PhysicsTask` that stays alive while the job runs, whose `bodies` range
/// no one else accesses and whose `agents` range no one writes meanwhile.
unsafe fn physics_job(_ctx: &Ctx, data: *mut ()) {
    // SAFETY: caller contract; `PhysicsBatch::run` waits for the batch before it touches the
    // tasks or the world again.
    let task = unsafe { &*data.cast::<PhysicsTask>() };
    // SAFETY: both ranges are chunks of live slices (caller contract), the bodies exclusively
    // this job's.
    let (bodies, agents) = unsafe {
        (
            std::slice::from_raw_parts_mut(task.bodies, task.len),
            std::slice::from_raw_parts(task.agents, task.len),
        )
    };
    integrate(bodies, agents, &task.input);
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

/// What a run on the job system produced.
struct Run {
    world: World,
    frame_times: Vec<Duration>,
    /// Jobs submitted, all frames together.
    jobs: usize,
    /// Draw commands presented, all frames together.
    draws: usize,
}

/// Simulates `frames` frames on `jobs`, timing each.
fn simulate(jobs: &JobSystem, frames: usize) -> Run {
    let mut world = World::new(ENTITIES);
    let mut physics = PhysicsBatch::new();
    let mut frame_times = Vec::with_capacity(frames);
    let (mut job_count, mut draws) = (0, 0);
    // The frame loop itself is a job, on the main thread (worker 0).
    jobs.run(|ctx| {
        for frame in 0..frames as u64 {
            let start = Instant::now();
            // A frame is open while its jobs run: idle workers spin instead of sleeping.
            job_count += ctx.frame(|ctx| run_frame(ctx, &mut world, &mut physics, frame));
            frame_times.push(start.elapsed());
            draws += world.commands.len();
        }
    });
    Run {
        world,
        frame_times,
        jobs: job_count,
        draws,
    }
}

fn simulate_sequential(frames: usize) -> World {
    let mut world = World::new(ENTITIES);
    for frame in 0..frames as u64 {
        run_frame_sequential(&mut world, frame);
    }
    world
}

// ── main: run, time, check, report ──────────────────────────────────────────────────────────

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(help) if help == "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("game-frame: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = JobSystem::builder();
    if let Some(workers) = args.workers {
        builder = builder.workers(workers);
    }
    let jobs = match builder.build() {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("game-frame: cannot start the job system: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "game-frame: {ENTITIES} entities, {} workers, {} frames",
        jobs.worker_count(),
        args.frames
    );

    let run = simulate(&jobs, args.frames);
    drop(jobs);

    // The reference: the same frames on this thread, with plain loops.
    let start = Instant::now();
    let reference = simulate_sequential(args.frames);
    let sequential = start.elapsed();

    let frames = args.frames.max(1);
    let stats = FrameStats::new(&run.frame_times);
    println!("frames: {}", args.frames);
    println!(
        "frame time (ms): mean {:.3}  p50 {:.3}  p99 {:.3}  max {:.3}",
        ms(stats.mean),
        ms(stats.p50),
        ms(stats.p99),
        ms(stats.max)
    );
    println!(
        "sequential reference (ms/frame): mean {:.3}",
        ms(sequential) / frames as f64
    );
    println!("jobs: {} per frame, {} total", run.jobs / frames, run.jobs);
    println!("draw commands: {} per frame on average", run.draws / frames);

    let (got, want) = (run.world.checksum(), reference.checksum());
    if got == want {
        println!("checksum OK: {got:#018x} (job system == sequential reference)");
        ExitCode::SUCCESS
    } else {
        eprintln!("checksum MISMATCH: job system {got:#018x}, sequential reference {want:#018x}");
        ExitCode::FAILURE
    }
}

const USAGE: &str = "usage: game-frame [--frames N] [--workers T]
  --frames N   frames to simulate (default 300)
  --workers T  worker threads, the main thread included (default: one per physical core)";

struct Args {
    frames: usize,
    workers: Option<usize>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Args {
            frames: 300,
            workers: None,
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> Result<usize, String> {
                let v = args.next().ok_or(format!("{name} needs a value"))?;
                v.parse()
                    .map_err(|_| format!("{name}: '{v}' is not a non-negative integer"))
            };
            match arg.as_str() {
                "--frames" => parsed.frames = value("--frames")?,
                "--workers" => parsed.workers = Some(value("--workers")?),
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        Ok(parsed)
    }
}

struct FrameStats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl FrameStats {
    fn new(times: &[Duration]) -> Self {
        let mut times = times.to_vec();
        if times.is_empty() {
            return Self {
                mean: Duration::ZERO,
                p50: Duration::ZERO,
                p99: Duration::ZERO,
                max: Duration::ZERO,
            };
        }
        times.sort_unstable();
        // Nearest-rank percentile: the smallest time that at least `p` of the frames beat.
        let rank =
            |p: f64| times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
        Self {
            mean: times.iter().sum::<Duration>() / times.len() as u32,
            p50: rank(0.50),
            p99: rank(0.99),
            max: times[times.len() - 1],
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_on_jobs_match_the_sequential_reference() {
        let reference = simulate_sequential(12).checksum();
        for workers in [1, 2, 3] {
            let jobs = JobSystem::builder()
                .workers(workers)
                .build()
                .expect("job system");
            let run = simulate(&jobs, 12);
            assert_eq!(run.world.checksum(), reference, "{workers} workers");
            // input + physics + join's half + animation + AI + culling + render + present
            let per_frame = 1
                + ENTITIES.div_ceil(PHYSICS_CHUNK)
                + 1
                + ENTITIES.div_ceil(ANIMATION_CHUNK)
                + ENTITIES.div_ceil(AI_CHUNK)
                + 2 * ENTITIES.div_ceil(CULL_CHUNK)
                + 1;
            assert_eq!(run.jobs, 12 * per_frame);
            assert!(run.draws > 0, "the camera sees nothing");
        }
    }
}
