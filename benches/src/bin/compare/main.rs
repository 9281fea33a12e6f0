//! `compare`: runs the workloads of `docs/benchmarks.md` on jobsys and its Rust peers
//! (rayon, raw corosensei) in one process and prints a markdown table of the ratios against the
//! targets.
//!
//! ```text
//! compare [--workers T] [--only W1,W3,idle,...] [--runs N] [--quick]
//! ```
//!
//! - `--workers T`: threads that run jobs, the submitting one included (default: all cores);
//! - `--only`: a comma-separated list of workloads (`W1`, `W1b`, `W2`, `W2a`, `W2b`, `W3`,
//!   `W4` (or `parfor`), `W5`, `W6`, the "Beyond throughput" figures `sync`, `idle` and `wake`, `arena`, and `prio`);
//!   `W1b` also runs `W1`, which it is compared with; `async`: the async bridge
//!   (`Ctx::block_on` of a ready future, a ping-pong between an async task and a job) against
//!   `pollster::block_on` on plain threads (see `asyncs.rs`). Without it every workload runs, `idle`
//!   and `wake` last;
//! - built with `--features tracy`, the Tracy back-end is installed for every jobsys pool
//!   (on demand, no profiler connected): `cargo build --release -p jobsys-benches --features
//!   tracy --bin compare`, then e.g. `compare --only idle` gives the idle figure with Tracy on;
//! - `--runs N`: timed runs per value, after one untimed warm-up; the median is reported (and
//!   the min). Default 5 (3 with `--quick`). W4 always makes 10 timed passes (3 with `--quick`)
//!   and W5 100 warm-up and 2,000 timed frames (20 and 200 with `--quick`), as defined;
//! - `idle`: every 16 ms one frame of 200 `spin(K)` jobs (K as in W5, ≈ 1 ms of CPU per
//!   frame) is submitted and waited for, for 5 s (0.5 s with `--quick`), then the submitting
//!   thread sleeps until the next tick; value: process CPU (`getrusage`, user + sys) / summed
//!   job CPU (each job's `CLOCK_THREAD_CPUTIME_ID` time), for jobsys and rayon;
//! - `wake` (jobsys only, T >= 2): time from a counter's last decrement to the waiting fiber
//!   running again, median and p99, with the waiter's worker asleep (400 samples, the
//!   signalling job finishes 5 ms after the wait began) and spinning (2,000 samples, 20 µs,
//!   in a pool whose idle spin rounds are raised so that the worker is still spinning then),
//!   plus the default idle loop after the same 20 µs (2,000 samples); 200 samples each with
//!   `--quick`;
//! - `arena`: frame arenas (`FrameArena`) against a plain `bumpalo::Bump` and the global
//!   allocator on one worker: ns per allocation (a 16-byte value, a 64 × f32 slice copy), µs
//!   per frame of 10,000 mixed allocations plus the bulk reset, ns per empty frame (open +
//!   retire), and ns per push into a vector in the arena;
//! - `prio`: priority latency: while self-respawning Low jobs (≈ 30 µs each, 8 per worker in
//!   flight) keep every worker busy, a prober job sleeps 100 µs and submits a High job from
//!   inside the pool, 3,000 times per run (300 with `--quick`); value: submit → the High job's
//!   first instruction, p50, p99 and max, against rayon `spawn` (LIFO) on the same flood, plus
//!   the sleep's overshoot (see `prio.rs`);
//! - `frame-sample`: the game-frame sample's frame (100,000 entities; 20,000 with `--quick`)
//!   on jobsys, rayon and bevy_tasks, mean and p99 frame time (see `frame.rs`);
//! - `--quick`: fewer iterations, for smoke tests (the problem sizes stay the same, so every
//!   result check still runs on the real workload).
//!
//! Every workload gets a fresh pool per system. A wrong result panics.
//!
//! Layout: this file parses the command line and prints the table; `throughput.rs` holds
//! one function per section W1–W6, `beyond.rs` the sync, idle and wake sections, `arena.rs`
//! the arena section, `frame.rs` the frame-sample section, `prio.rs` the priority-latency section, and `session.rs` what they share (the rows and notes being built, the pools, the cell format).

mod arena;
mod asyncs;
mod beyond;
mod frame;
mod prio;
mod session;
mod throughput;

use session::{LOST_WAKEUPS, Session};

/// Parsed command line.
pub(crate) struct Args {
    pub(crate) workers: usize,
    pub(crate) only: Option<Vec<String>>,
    pub(crate) runs: usize,
    pub(crate) quick: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("compare: {msg}");
    eprintln!(
        "usage: compare [--workers T] [--only W1,W1b,W2,W2a,W2b,W3,W4|parfor,W5,W6,idle,wake,sync,arena,async,frame-sample,prio] [--runs N] [--quick]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut only = None;
    let mut runs = None;
    let mut quick = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match key.as_str() {
            "--workers" | "-t" => {
                workers = value("--workers")
                    .parse()
                    .unwrap_or_else(|_| usage("--workers takes a positive integer"));
                if workers == 0 {
                    usage("--workers must be at least 1");
                }
            }
            "--only" => {
                let list: Vec<String> = value("--only")
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect();
                // `parfor` names W4 (the workload's name in docs/benchmarks.md).
                let list: Vec<String> = list
                    .into_iter()
                    .map(|w| if w == "parfor" { "w4".into() } else { w })
                    .collect();
                for w in &list {
                    if ![
                        "w1",
                        "w1b",
                        "w2",
                        "w2a",
                        "w2b",
                        "w3",
                        "w4",
                        "w5",
                        "w6",
                        "idle",
                        "wake",
                        "sync",
                        "arena",
                        "async",
                        "frame-sample",
                        "prio",
                    ]
                    .contains(&w.as_str())
                    {
                        usage(&format!("unknown workload '{w}'"));
                    }
                }
                only = Some(list);
            }
            "--runs" => {
                let n: usize = value("--runs")
                    .parse()
                    .unwrap_or_else(|_| usage("--runs takes a positive integer"));
                if n == 0 {
                    usage("--runs must be at least 1");
                }
                runs = Some(n);
            }
            "--quick" => quick = true,
            "--help" | "-h" => usage("help"),
            other => usage(&format!("unknown argument '{other}'")),
        }
    }
    Args {
        workers,
        only,
        runs: runs.unwrap_or(if quick { 3 } else { 5 }),
        quick,
    }
}

impl Args {
    /// Whether workload `id` (e.g. "w2a") is selected: "w2" selects "w2a" and "w2b"; "w1b"
    /// also selects "w1" (its reference).
    pub(crate) fn wants(&self, id: &str) -> bool {
        match &self.only {
            None => true,
            Some(list) => list
                .iter()
                .any(|t| id.starts_with(t.as_str()) || t.starts_with(id)),
        }
    }
}

/// The Tracy back-end of `--features tracy`, in a static as the hooks need.
#[cfg(feature = "tracy")]
static TRACY: jobsys_profiling::Tracy = jobsys_profiling::Tracy::new();

fn main() {
    let args = parse_args();
    let t = args.workers;
    let runs = args.runs;
    let quick = args.quick;
    let cmdline = std::env::args().collect::<Vec<_>>().join(" ");

    println!("# jobsys vs peers (docs/benchmarks.md)");
    println!();
    println!("command: `{cmdline}`");
    println!();
    println!(
        "T = {t} worker threads (submitter included), {} cores available, runs = {runs} timed after 1 warm-up (median, min){}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if quick { ", --quick" } else { "" }
    );
    println!();
    #[cfg(feature = "tracy")]
    {
        assert!(
            TRACY.install(),
            "compare: the Tracy back-end could not be installed"
        );
        println!(
            "Built with `--features tracy`: the Tracy back-end is installed for every jobsys pool (on demand, no profiler connected)."
        );
        println!();
    }

    let mut b = Session::new(args);
    // Each section checks `--only` itself; they run (and their rows print) in this order.
    throughput::w1(&mut b);
    throughput::w2(&mut b);
    throughput::w3(&mut b);
    throughput::w4(&mut b);
    throughput::w5(&mut b);
    throughput::w6(&mut b);
    beyond::sync(&mut b);
    arena::arena(&mut b);
    asyncs::asyncs(&mut b);
    frame::frame_sample(&mut b);
    prio::prio(&mut b);
    beyond::idle(&mut b);
    beyond::wake(&mut b);
    let Session { rows, notes, .. } = b;

    println!("| workload | jobsys | rayon (or corosensei) | ratio jobsys/peer | target | met? |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let ratio = r.ratio.map_or("—".to_string(), |x| format!("{x:.2}×"));
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.workload, r.jobsys, r.peer, ratio, r.target, r.met
        );
    }
    if !notes.is_empty() {
        println!();
        for n in &notes {
            println!("- {n}");
        }
    }
    println!();
    let lost = LOST_WAKEUPS.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "jobsys sleep watchdog: {lost} lost wake-up(s) caught{}",
        if lost == 0 {
            ""
        } else {
            " — a jobsys bug, please report"
        }
    );
    println!("All result checks passed.");
}
