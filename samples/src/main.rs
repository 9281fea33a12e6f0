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
//! The world itself (data, the stages' kernels, the sequential reference) is in `world.rs`;
//! this file is the job-system driver: the frame as jobs, the timing and the self-check.
//!
//! ```text
//! cargo run --release -p jobsys-samples --bin game-frame -- --frames 300 --workers 4
//! ```

use jobsys::{Affinity, Counter, Ctx, JobDecl, JobSystem, job_meta};
use jobsys_profiling::ChromeTrace;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod world;

use world::{
    AI_CHUNK, ANIMATION_CHUNK, Agent, Body, CULL_CHUNK, DrawCmd, ENTITIES, Input, PHYSICS_CHUNK,
    World, animate, build_commands, camera, cull, integrate, present, read_input,
    simulate_sequential, think,
};

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
            job_count += ctx.frame(|_f| run_frame(ctx, &mut world, &mut physics, frame));
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
    // `--features tracy`: the Tracy back-end, installed before the workers start (so they are
    // named); it runs beside `--trace` (every hook set gets every event).
    #[cfg(any(feature = "tracy", feature = "tracy-network"))]
    if !start_tracy(args.wait_for_profiler) {
        return ExitCode::FAILURE;
    }
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
    // `--trace` / `--svg`: record every scheduler event (fixed buffers, nothing allocated
    // while recording), written out after the run.
    let trace: Option<&'static ChromeTrace> =
        (args.trace.is_some() || args.svg.is_some()).then(|| {
            let trace = Box::leak(Box::new(ChromeTrace::new(
                jobs.worker_count(),
                args.frames * 1024 + 4096,
            )));
            if !trace.install() {
                eprintln!(
                    "game-frame: profile hooks were already installed; the trace stays empty"
                );
            }
            &*trace
        });

    let run = simulate(&jobs, args.frames);
    drop(jobs);
    if let Some(trace) = trace
        && let Err(e) = write_trace(trace, &args)
    {
        eprintln!("game-frame: {e}");
        return ExitCode::FAILURE;
    }

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

/// The Tracy back-end of `--features tracy`, in a static as the hooks need.
#[cfg(any(feature = "tracy", feature = "tracy-network"))]
static TRACY: jobsys_profiling::Tracy = jobsys_profiling::Tracy::new();

/// Installs the Tracy back-end, says so, and with `--wait-for-profiler` waits for the profiler
/// to connect. `false` if the back-end could not be installed.
#[cfg(any(feature = "tracy", feature = "tracy-network"))]
fn start_tracy(wait: Option<Duration>) -> bool {
    if !TRACY.install() {
        eprintln!("game-frame: the Tracy back-end could not be installed");
        return false;
    }
    let fibers = if cfg!(feature = "tracy-fibers") {
        ", a track per fiber"
    } else {
        ""
    };
    println!("tracy: Tracy back-end installed (on demand{fibers}): connect the Tracy profiler");
    if let Some(wait) = wait {
        println!(
            "tracy: waiting up to {:.1} s for the profiler",
            wait.as_secs_f64()
        );
        if jobsys_profiling::Tracy::wait_for_connection(wait) {
            println!("tracy: profiler connected");
        } else {
            println!("tracy: no profiler connected; running anyway");
        }
    }
    true
}

/// Writes the `--trace` JSON and the `--svg` timeline of the last frame.
fn write_trace(trace: &ChromeTrace, args: &Args) -> std::io::Result<()> {
    if let Some(path) = &args.trace {
        trace.write_json(std::fs::File::create(path)?)?;
        println!("trace: {path} (open in https://ui.perfetto.dev or chrome://tracing)");
    }
    if let Some(path) = &args.svg {
        let last = args.frames.max(1) as u64 - 1;
        trace.write_svg(std::fs::File::create(path)?, Some(last))?;
        println!("svg: {path} (frame {last}: workers x time, one bar per job)");
    }
    if trace.dropped() > 0 {
        eprintln!(
            "game-frame: {} trace events did not fit and were dropped",
            trace.dropped()
        );
    }
    Ok(())
}

const USAGE: &str = "usage: game-frame [--frames N] [--workers T] [--trace FILE] [--svg FILE]
                  [--wait-for-profiler[=SECS]]
  --frames N    frames to simulate (default 300)
  --workers T   worker threads, the main thread included (default: one per physical core)
  --trace FILE  write a Chrome/Perfetto trace (JSON) of the whole run
  --svg FILE    write an SVG timeline of the last frame
  --wait-for-profiler[=SECS]
                built with --features tracy: before the first frame, wait up to SECS
                (default 30) for the Tracy profiler to connect";

/// How long `--wait-for-profiler` without a value waits.
const DEFAULT_PROFILER_WAIT: Duration = Duration::from_secs(30);

struct Args {
    frames: usize,
    workers: Option<usize>,
    trace: Option<String>,
    svg: Option<String>,
    /// `--wait-for-profiler[=SECS]` (only accepted with the `tracy` feature).
    wait_for_profiler: Option<Duration>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Args {
            frames: 300,
            workers: None,
            trace: None,
            svg: None,
            wait_for_profiler: None,
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
                "--trace" => parsed.trace = Some(args.next().ok_or("--trace needs a file")?),
                "--svg" => parsed.svg = Some(args.next().ok_or("--svg needs a file")?),
                "-h" | "--help" => return Err("help".into()),
                wait if wait == "--wait-for-profiler"
                    || wait.starts_with("--wait-for-profiler=") =>
                {
                    parsed.wait_for_profiler = Some(profiler_wait(wait)?);
                }
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        Ok(parsed)
    }
}

/// The wait of `--wait-for-profiler[=SECS]`.
fn profiler_wait(arg: &str) -> Result<Duration, String> {
    if !cfg!(any(feature = "tracy", feature = "tracy-network")) {
        return Err("--wait-for-profiler needs the sample built with --features tracy".into());
    }
    match arg.strip_prefix("--wait-for-profiler=") {
        None => Ok(DEFAULT_PROFILER_WAIT),
        Some(secs) => secs
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or(format!(
                "--wait-for-profiler: '{secs}' is not a non-negative number of seconds"
            )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_profiler_takes_an_optional_number_of_seconds() {
        let parse = |args: &[&str]| Args::parse(args.iter().map(|a| a.to_string()));
        let wait = |args: &[&str]| parse(args).map(|a| a.wait_for_profiler);
        assert_eq!(wait(&[]), Ok(None));
        if cfg!(any(feature = "tracy", feature = "tracy-network")) {
            assert_eq!(
                wait(&["--wait-for-profiler"]),
                Ok(Some(DEFAULT_PROFILER_WAIT))
            );
            assert_eq!(
                wait(&["--wait-for-profiler=2.5"]),
                Ok(Some(Duration::from_millis(2500)))
            );
            assert!(wait(&["--wait-for-profiler=-1"]).is_err());
            assert!(wait(&["--wait-for-profiler=soon"]).is_err());
        } else {
            assert!(wait(&["--wait-for-profiler"]).is_err(), "needs the feature");
        }
        assert!(parse(&["--wait-for-profilers"]).is_err());
    }

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
