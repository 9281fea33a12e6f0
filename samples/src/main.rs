//! # game-frame — an engine frame loop on jobsys
//!
//! A game's frame over 100,000 entities (`--entities`): input on the main thread, a uniform
//! grid for the broad phase (keys, parallel sort, cell starts), path plans with long tails and
//! crowd steering that reads each agent's neighbours, physics with contacts (a raw `JobDecl`
//! batch behind a safe typed helper), pose blending beside frustum culling, a draw list, and a
//! render stage — sort by material and depth, encode, present on the main thread — that runs
//! beside the next frame's logic. An asset stream reads on the blocking lane and finishes each
//! asset four frames later, in a background job. Two frames in flight; all scratch in the
//! frames' arenas; over 1,000 jobs a frame. The stages are in `frame.rs`, the world and its
//! kernels in `world.rs` (the library `jobsys_samples`, which `compare` in `jobsys-benches`
//! also runs on rayon and bevy_tasks).
//!
//! The simulation is deterministic, so the sample checks itself: after the timed frames it
//! runs the same frames again on one thread with plain loops, times them, and compares the
//! checksums of the whole world and of every draw command presented. Exit status 1 means they
//! differed (or, with `--check-allocations`, that a frame after warm-up allocated).
//!
//! A counting global allocator (below) counts every heap allocation of the process, so the
//! report can say what a frame allocates after warm-up: nothing.
//!
//! ```text
//! cargo run --release -p jobsys-samples --bin game-frame -- --frames 120 --workers 4
//! ```

use jobsys_profiling::ChromeTrace;
use jobsys_samples::frame::{Report, build_system, simulate};
use jobsys_samples::world::{DEFAULT_ENTITIES, SequentialScratch, World, run_frame_sequential};
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// ── Counting every heap allocation ──────────────────────────────────────────────────────────

/// The system allocator, counting allocations (and reallocations) in [`ALLOCATIONS`].
struct Counting;

/// Heap allocations and reallocations of the whole process so far.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are this allocator's; the counter is a relaxed atomic add, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` (`ptr` came from this allocator, which
        // is `System`'s), passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// The frame budget of a 60 Hz game.
const BUDGET: Duration = Duration::from_micros(16_667);

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
    match &args.sweep {
        Some(counts) => sweep(&args, counts),
        None => run(&args),
    }
}

/// One run at `--workers`, with the full report.
fn run(args: &Args) -> ExitCode {
    let jobs = match build_system(args.workers, args.entities) {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("game-frame: cannot start the job system: {e}");
            return ExitCode::FAILURE;
        }
    };
    let workers = jobs.worker_count();
    println!(
        "game-frame: {} entities, {workers} workers, {} frames ({} warm-up), 2 in flight",
        args.entities, args.frames, args.warmup
    );
    // `--trace` / `--svg`: record every scheduler event (fixed buffers, nothing allocated
    // while recording), written out after the run.
    let trace: Option<&'static ChromeTrace> =
        (args.trace.is_some() || args.svg.is_some()).then(|| {
            // A job costs two events, a parked wait four: room for every job of a frame on
            // one worker, three times over.
            // At most TRACE_BYTES of buffers in all (32 bytes an event): past that, events are
            // dropped and counted, not an allocation the machine cannot make.
            let per_frame = 3 * (args.entities / 100 + 200);
            let wanted = (args.frames as usize)
                .saturating_mul(per_frame)
                .saturating_add(4096);
            let trace = Box::leak(Box::new(ChromeTrace::new(
                workers,
                wanted.min(TRACE_BYTES / 32 / workers),
            )));
            if !trace.install() {
                eprintln!(
                    "game-frame: profile hooks were already installed; the trace stays empty"
                );
            }
            &*trace
        });

    let mut world = World::new(args.entities);
    let report = simulate(&jobs, &mut world, args.frames, args.warmup, allocations);
    let lost_wakeups = jobs.lost_wakeups();
    drop(jobs);
    if let Some(trace) = trace
        && let Err(e) = write_trace(trace, args)
    {
        eprintln!("game-frame: {e}");
        return ExitCode::FAILURE;
    }

    // The reference: the same frames on this thread, with plain loops, timed the same way.
    let (reference, sequential_times) = sequential(args.entities, args.frames);

    let warm = args.warmup as usize;
    let par = Stats::of(&report.frame_times[warm..]);
    let seq = Stats::of(&sequential_times[warm..]);
    let measured = (args.frames - args.warmup).max(1);
    println!(
        "frame time (ms):  mean {:6.2}  p50 {:6.2}  p99 {:6.2}  max {:6.2}   budget {:.1}: {} of {measured} frames over",
        ms(par.mean),
        ms(par.p50),
        ms(par.p99),
        ms(par.max),
        ms(BUDGET),
        report.frame_times[warm..]
            .iter()
            .filter(|&&t| t > BUDGET)
            .count(),
    );
    println!(
        "sequential (ms):  mean {:6.2}  p50 {:6.2}  p99 {:6.2}  max {:6.2}   (same frames, one thread, no job system)",
        ms(seq.mean),
        ms(seq.p50),
        ms(seq.p99),
        ms(seq.max)
    );
    println!(
        "speedup:          {:.2}x  (sequential mean / jobsys mean, {workers} workers)",
        seq.mean.as_secs_f64() / par.mean.as_secs_f64().max(1e-12)
    );
    print_counters(&report, workers);
    let allocs: u64 = report.allocations[warm..].iter().sum();
    let max_allocs = report.allocations[warm..]
        .iter()
        .max()
        .copied()
        .unwrap_or(0);
    println!(
        "heap allocations per frame: {} after warm-up ({allocs} in {measured} frames, at most {max_allocs} in one; {} during {} warm-up frames)",
        allocs / measured,
        report.allocations[..warm].iter().sum::<u64>(),
        args.warmup,
    );
    if lost_wakeups > 0 {
        println!("jobsys: {lost_wakeups} lost wake-ups caught — a jobsys bug, please report");
    }

    let (got, want) = (world.checksum(), reference.checksum());
    if got != want {
        eprintln!("checksum MISMATCH: job system {got:#018x}, sequential reference {want:#018x}");
        return ExitCode::FAILURE;
    }
    println!("checksum OK: {got:#018x} (job system == sequential reference)");
    if args.check_allocations && allocs > 0 {
        eprintln!("game-frame: {allocs} heap allocations after warm-up (--check-allocations)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_counters(r: &Report, workers: usize) {
    let frames = r.stat_frames.max(1);
    println!(
        "per frame:        {} jobs, {} parked waits, {} steals; fibers high-water {}; arena {:.1} MiB",
        r.jobs / frames,
        r.parked_waits / frames,
        r.steals / frames,
        r.fibers_high_water,
        r.arena_bytes as f64 / (1 << 20) as f64,
    );
    let idle: Vec<String> = r
        .idle_ns
        .iter()
        .enumerate()
        .map(|(i, &ns)| format!("w{i} {:.2}", ns as f64 / frames as f64 / 1e6))
        .collect();
    println!(
        "idle per frame (ms, of {workers} workers): {}",
        idle.join("  ")
    );
}

/// `--sweep 1,2,4`: the same frames at each worker count, one table.
fn sweep(args: &Args, counts: &[usize]) -> ExitCode {
    println!(
        "game-frame sweep: {} entities, {} frames ({} warm-up) per worker count",
        args.entities, args.frames, args.warmup
    );
    let (reference, sequential_times) = sequential(args.entities, args.frames);
    let warm = args.warmup as usize;
    let seq = Stats::of(&sequential_times[warm..]);
    println!();
    println!(
        "| workers | mean ms | p50 ms | p99 ms | max ms | speedup | jobs/frame | steals/frame | checksum |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| sequential | {:.2} | {:.2} | {:.2} | {:.2} | 1.00x | — | — | reference |",
        ms(seq.mean),
        ms(seq.p50),
        ms(seq.p99),
        ms(seq.max)
    );
    let mut ok = true;
    for &t in counts {
        let jobs = match build_system(Some(t), args.entities) {
            Ok(jobs) => jobs,
            Err(e) => {
                eprintln!("game-frame: cannot start {t} workers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut world = World::new(args.entities);
        let r = simulate(&jobs, &mut world, args.frames, args.warmup, allocations);
        drop(jobs);
        let s = Stats::of(&r.frame_times[warm..]);
        let same = world.checksum() == reference.checksum();
        ok &= same;
        let frames = r.stat_frames.max(1);
        println!(
            "| {t} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {} | {} | {} |",
            ms(s.mean),
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            seq.mean.as_secs_f64() / s.mean.as_secs_f64().max(1e-12),
            r.jobs / frames,
            r.steals / frames,
            if same { "OK" } else { "MISMATCH" }
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("checksum MISMATCH at some worker count");
        ExitCode::FAILURE
    }
}

/// The sequential reference: the world after `frames` frames and each frame's time.
fn sequential(entities: usize, frames: u64) -> (World, Vec<Duration>) {
    let mut world = World::new(entities);
    let mut scratch = SequentialScratch::default();
    let mut times = Vec::with_capacity(frames as usize);
    for n in 0..frames {
        let start = Instant::now();
        run_frame_sequential(&mut world, n, &mut scratch);
        times.push(start.elapsed());
    }
    (world, times)
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
        let last = args.frames.max(1) - 1;
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

const USAGE: &str = "usage: game-frame [--entities N] [--frames N] [--warmup N] [--workers T]
                  [--sweep T1,T2,..] [--check-allocations] [--trace FILE] [--svg FILE]
                  [--wait-for-profiler[=SECS]]
  --entities N  entities in the world (default 100000)
  --frames N    frames to simulate (default 120)
  --warmup N    first frames left out of the figures (default 10, at most frames - 1)
  --workers T   worker threads, the main thread included (default: one per physical core)
  --sweep LIST  run at each worker count of LIST (e.g. 1,2,4) and print a scaling table
                (alias: --workers-sweep)
  --check-allocations
                exit 1 if a frame after warm-up allocated on the heap
  --trace FILE  write a Chrome/Perfetto trace (JSON) of the whole run
  --svg FILE    write an SVG timeline of the last frame
  --wait-for-profiler[=SECS]
                built with --features tracy: before the first frame, wait up to SECS
                (default 30) for the Tracy profiler to connect";

/// Most frames a run may ask for (`--frames`): about 4.6 hours at 60 Hz. Every frame takes a
/// slot in the report's vectors and, with `--trace`, room in the trace's buffers.
const MAX_FRAMES: u64 = 1_000_000;

/// Most bytes of trace buffers `--trace`/`--svg` reserve, all workers together; a longer run
/// drops (and counts) the events that do not fit.
const TRACE_BYTES: usize = 1 << 30;

/// How long `--wait-for-profiler` without a value waits.
const DEFAULT_PROFILER_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Args {
    entities: usize,
    frames: u64,
    warmup: u64,
    workers: Option<usize>,
    sweep: Option<Vec<usize>>,
    check_allocations: bool,
    trace: Option<String>,
    svg: Option<String>,
    /// `--wait-for-profiler[=SECS]` (only accepted with the `tracy` feature).
    wait_for_profiler: Option<Duration>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Args {
            entities: DEFAULT_ENTITIES,
            frames: 120,
            warmup: 10,
            workers: None,
            sweep: None,
            check_allocations: false,
            trace: None,
            svg: None,
            wait_for_profiler: None,
        };
        // Options seen so far: one given twice is an error, not a silent override.
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(arg) = args.next() {
            let name = canonical(&arg);
            if let Some(name) = name {
                if seen.contains(&name) {
                    return Err(format!("{name} given more than once"));
                }
                seen.push(name);
            }
            let mut value = |name: &str| -> Result<usize, String> {
                let v = args.next().ok_or(format!("{name} needs a value"))?;
                v.parse()
                    .map_err(|_| format!("{name}: '{v}' is not a non-negative integer"))
            };
            match arg.as_str() {
                "--entities" => parsed.entities = value("--entities")?,
                "--frames" => parsed.frames = value("--frames")? as u64,
                "--warmup" => parsed.warmup = value("--warmup")? as u64,
                "--workers" => parsed.workers = Some(value("--workers")?),
                "--sweep" | "--workers-sweep" => {
                    let list = args.next().ok_or("--sweep needs a list, e.g. 1,2,4")?;
                    let counts: Result<Vec<usize>, _> =
                        list.split(',').map(|t| t.trim().parse()).collect();
                    match counts {
                        Ok(c) if !c.is_empty() && c.iter().all(|&t| valid_workers(t)) => {
                            parsed.sweep = Some(c)
                        }
                        _ => {
                            return Err(format!(
                                "--sweep: '{list}' is not a list like 1,2,4 of worker counts \
                                 from 1 to {}",
                                jobsys::Builder::MAX_WORKERS
                            ));
                        }
                    }
                }
                "--check-allocations" => parsed.check_allocations = true,
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
        if parsed.entities == 0 || parsed.entities >= 1 << 24 {
            return Err("--entities: 1 to 16777215".into());
        }
        if parsed.frames == 0 || parsed.frames > MAX_FRAMES {
            return Err(format!("--frames: 1 to {MAX_FRAMES}"));
        }
        if parsed.workers.is_some() && parsed.sweep.is_some() {
            return Err(
                "--workers and --sweep: one or the other (a sweep sets the workers)".into(),
            );
        }
        if let Some(t) = parsed.workers
            && !valid_workers(t)
        {
            return Err(format!(
                "--workers: 1 to {} (the main thread included)",
                jobsys::Builder::MAX_WORKERS
            ));
        }
        parsed.warmup = parsed.warmup.min(parsed.frames - 1);
        Ok(parsed)
    }
}

/// The option `arg` names, spelled one way (aliases and `=VALUE` forms folded); `None` for
/// what is not an option (its value is checked where it is parsed).
fn canonical(arg: &str) -> Option<&'static str> {
    Some(match arg {
        "--entities" => "--entities",
        "--frames" => "--frames",
        "--warmup" => "--warmup",
        "--workers" => "--workers",
        "--sweep" | "--workers-sweep" => "--sweep",
        "--check-allocations" => "--check-allocations",
        "--trace" => "--trace",
        "--svg" => "--svg",
        a if a == "--wait-for-profiler" || a.starts_with("--wait-for-profiler=") => {
            "--wait-for-profiler"
        }
        _ => return None,
    })
}

/// Whether the job system can start with `t` workers.
fn valid_workers(t: usize) -> bool {
    (1..=jobsys::Builder::MAX_WORKERS).contains(&t)
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

/// Mean and nearest-rank percentiles of frame times.
struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(times: &[Duration]) -> Self {
        let mut times = times.to_vec();
        if times.is_empty() {
            times.push(Duration::ZERO);
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

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn wait_for_profiler_takes_an_optional_number_of_seconds() {
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
    fn sweep_and_sizes_parse() {
        let a = parse(&["--sweep", "1,2,4", "--entities", "5000", "--frames", "3"]).unwrap();
        assert_eq!(a.sweep, Some(vec![1, 2, 4]));
        assert_eq!((a.entities, a.frames, a.warmup), (5000, 3, 2));
        assert!(parse(&["--sweep", "1,0"]).is_err());
        assert!(parse(&["--entities", "0"]).is_err());
        assert_eq!(parse(&[]).unwrap().entities, DEFAULT_ENTITIES);
    }

    #[test]
    fn an_option_given_twice_is_an_error() {
        for args in [
            &["--entities", "1000", "--entities", "2000"][..],
            &["--frames", "3", "--frames", "4"],
            &["--warmup", "1", "--warmup", "2"],
            &["--workers", "1", "--workers", "2"],
            &["--sweep", "1,2", "--workers-sweep", "3"],
            &["--trace", "a.json", "--trace", "b.json"],
            &["--svg", "a.svg", "--svg", "b.svg"],
            &["--check-allocations", "--check-allocations"],
        ] {
            let e = parse(args).expect_err(&format!("{args:?} is accepted"));
            assert!(e.contains("more than once"), "{args:?}: {e}");
        }
        // A sweep sets the worker count itself: `--workers` beside it would be ignored.
        assert!(parse(&["--workers", "2", "--sweep", "1,2"]).is_err());
    }

    #[test]
    fn sizes_the_run_cannot_hold_are_errors_not_panics() {
        // Frames: each is a slot of the report's vectors (and of the trace's buffers).
        assert!(parse(&["--frames", &u64::MAX.to_string()]).is_err());
        assert!(parse(&["--frames", &(MAX_FRAMES + 1).to_string()]).is_err());
        assert!(parse(&["--frames", &MAX_FRAMES.to_string()]).is_ok());
        // Worker counts past the job system's maximum: refused before any run starts (a sweep
        // would otherwise print half a table first).
        let too_many = (jobsys::Builder::MAX_WORKERS + 1).to_string();
        assert!(parse(&["--workers", &too_many]).is_err());
        assert!(parse(&["--sweep", &format!("1,{too_many}")]).is_err());
        assert!(parse(&["--workers", "0"]).is_err());
    }

    #[test]
    fn the_counting_allocator_counts() {
        let before = allocations();
        let v = std::hint::black_box(vec![1u8; 100]);
        assert!(allocations() > before);
        drop(v);
    }
}
