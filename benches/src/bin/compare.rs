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
//!   `W4`, `W5`, `W6`, and the "Beyond throughput" figures `idle` and `wake`); `W1b` also runs
//!   `W1`, which it is compared with. Without it every workload runs, `idle` and `wake` last;
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
//! - `--quick`: fewer iterations, for smoke tests (the problem sizes stay the same, so every
//!   result check still runs on the real workload).
//!
//! Every workload gets a fresh pool per system. A wrong result panics.

use jobsys::{Builder, Ctx, JobSystem};
use jobsys_benches::{
    EMPTY_JOBS, Flags, FrameStats, FrameWork, IDLE_JOBS, IDLE_PERIOD, IdleStats, IdleWork,
    PARFOR_LEN, Parfor, SKYNET_LEAVES, Sample, calibrate_k, fib_jobs, fib_n_for, median_p99_us,
    on_corosensei, on_jobsys, on_rayon, run_frames, run_idle_frames, skynet_jobs, timed,
    warm_then_time,
};
use std::cell::OnceCell;
use std::time::Duration;

/// How long the wake-latency signalling job runs before it signals when the waiter's worker
/// should be asleep: far beyond the idle loop's spin and yield rounds.
const WAKE_ASLEEP_DELAY: Duration = Duration::from_millis(5);
/// The same, when the waiter's worker should still be spinning.
const WAKE_SPINNING_DELAY: Duration = Duration::from_micros(20);
/// Idle spin rounds of the pool for the `spinning` wake case: with the default
/// ([`Builder::DEFAULT_IDLE_SPINS`]) an idle worker has usually left its spin rounds within
/// [`WAKE_SPINNING_DELAY`]; 2^24 rounds last far longer (seconds), and stay far from `u32`
/// overflow.
const WAKE_SPINNING_IDLE_SPINS: u32 = 1 << 24;

/// Parsed command line.
struct Args {
    workers: usize,
    only: Option<Vec<String>>,
    runs: usize,
    quick: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("compare: {msg}");
    eprintln!(
        "usage: compare [--workers T] [--only W1,W1b,W2,W2a,W2b,W3,W4,W5,W6,idle,wake,sync] [--runs N] [--quick]"
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
                for w in &list {
                    if ![
                        "w1", "w1b", "w2", "w2a", "w2b", "w3", "w4", "w5", "w6", "idle", "wake",
                        "sync",
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
    fn wants(&self, id: &str) -> bool {
        match &self.only {
            None => true,
            Some(list) => list
                .iter()
                .any(|t| id.starts_with(t.as_str()) || t.starts_with(id)),
        }
    }
}

/// One line of the result table.
struct Row {
    workload: String,
    jobsys: String,
    peer: String,
    ratio: Option<f64>,
    target: String,
    met: String,
}

fn cell(s: Sample, digits: usize) -> String {
    format!("{:.*} (min {:.*})", digits, s.median, digits, s.min)
}

fn yes_no(ok: bool) -> String {
    if ok { "yes".into() } else { "**no**".into() }
}

/// Builds a fresh jobsys pool of `t` workers and runs `f` as its root job.
fn on_jobsys_pool<R>(t: usize, f: impl FnOnce(&Ctx) -> R) -> R {
    let jobs = JobSystem::builder()
        .workers(t)
        .build()
        .expect("building the jobsys pool");
    let r = jobs.run(f);
    LOST_WAKEUPS.fetch_add(jobs.lost_wakeups(), std::sync::atomic::Ordering::Relaxed);
    r
}

/// Lost wake-ups the jobsys pools' sleep watchdogs caught (`JobSystem::lost_wakeups`), summed
/// over the run; printed at the end, must be 0.
static LOST_WAKEUPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Builds a fresh rayon pool of `t` threads and runs `f` inside `install`.
fn on_rayon_pool<R: Send>(t: usize, f: impl FnOnce() -> R + Send) -> R {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build()
        .expect("building the rayon pool");
    pool.install(f)
}

fn progress(what: &str) {
    eprintln!("[compare] {what}");
}

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

    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    // K for spin(K) ≈ 5 µs, calibrated once and shared by W5 and idle.
    let k_cell = OnceCell::new();
    let spin_k = || {
        *k_cell.get_or_init(|| {
            progress("calibrating K (spin(K) ≈ 5 µs)");
            calibrate_k(Duration::from_micros(5))
        })
    };

    // ---- W1 / W1b --------------------------------------------------------------------------
    if args.wants("w1") {
        progress("W1 corosensei switch");
        let per_sample: u64 = if quick { 100_000 } else { 1_000_000 };
        let mut sw = on_corosensei::Switcher::new();
        sw.round_trips(100_000);
        let samples: Vec<f64> = (0..runs)
            .map(|_| sw.round_trips(per_sample).as_nanos() as f64 / per_sample as f64)
            .collect();
        let w1 = Sample::of(&samples);
        rows.push(Row {
            workload: "W1 switch: resume+suspend round trip, ns".into(),
            jobsys: "—".into(),
            peer: format!("corosensei {}", cell(w1, 2)),
            ratio: None,
            target: "reference for W1b".into(),
            met: "—".into(),
        });

        if args.wants("w1b") {
            progress("W1b jobsys park/unpark");
            let per_sample: u64 = if quick { 20_000 } else { 200_000 };
            let (samples, inline_runs) = on_jobsys_pool(1, |ctx| {
                on_jobsys::park_unpark(ctx, 10_000);
                let mut inline = 0;
                let samples: Vec<f64> = (0..runs)
                    .map(|_| {
                        let s = on_jobsys::park_unpark(ctx, per_sample);
                        inline += s.inline_runs;
                        s.elapsed.as_nanos() as f64 / per_sample as f64
                    })
                    .collect();
                (samples, inline)
            });
            let w1b = Sample::of(&samples);
            let ratio = w1b.median / w1.median;
            let met = if inline_runs > 0 {
                format!("**invalid**: {inline_runs} waits did not park")
            } else {
                yes_no(ratio <= 12.0)
            };
            rows.push(Row {
                workload: "W1b park/unpark through the scheduler (1 worker), ns per wait".into(),
                jobsys: cell(w1b, 1),
                peer: format!("W1 corosensei {:.2}", w1.median),
                ratio: Some(ratio),
                target: "≤ 12× W1".into(),
                met,
            });
            notes.push(
                "W1b: one pinned signalling job per wait (submit, park, run on another fiber, signal, unpark: 4 fiber switches); see `on_jobsys::park_unpark`.".into(),
            );
        }
    }

    // ---- W2a / W2b -------------------------------------------------------------------------
    let mut rayon_w2: Option<Sample> = None;
    let mut rayon_w2_per_job = |args: &Args| -> Sample {
        if let Some(s) = rayon_w2 {
            return s;
        }
        progress("W2 rayon scope+spawn");
        let flags = Flags::new(EMPTY_JOBS);
        let samples = on_rayon_pool(args.workers, || {
            warm_then_time(args.runs, || {
                flags.clear();
                let d = on_rayon::empty_spawns(flags.as_slice());
                flags.check_all_set("rayon W2 (scope+spawn)");
                d
            })
        });
        let s = Sample::of(&samples).scaled(EMPTY_JOBS as f64);
        rayon_w2 = Some(s);
        s
    };
    if args.wants("w2a") {
        progress("W2a jobsys decl batch");
        let flags = Flags::new(EMPTY_JOBS);
        let batch = on_jobsys::EmptyBatch::new(&flags);
        let samples = on_jobsys_pool(t, |ctx| warm_then_time(runs, || batch.run(ctx)));
        let js = Sample::of(&samples).scaled(EMPTY_JOBS as f64);
        let ry = rayon_w2_per_job(&args);
        rows.push(Row {
            workload: "W2a 1M JobDecls in one batch, ns/job (vs rayon scope+spawn)".into(),
            jobsys: cell(js, 1),
            peer: format!("rayon {}", cell(ry, 1)),
            ratio: Some(js.median / ry.median),
            target: "reported (no target)".into(),
            met: "—".into(),
        });
    }
    if args.wants("w2b") {
        progress("W2b jobsys scope+spawn");
        let flags = Flags::new(EMPTY_JOBS);
        let samples = on_jobsys_pool(t, |ctx| {
            warm_then_time(runs, || {
                flags.clear();
                let d = on_jobsys::empty_spawns(ctx, flags.as_slice());
                flags.check_all_set("jobsys W2b (scope+spawn)");
                d
            })
        });
        let js = Sample::of(&samples).scaled(EMPTY_JOBS as f64);
        let ry = rayon_w2_per_job(&args);
        let ratio = js.median / ry.median;
        rows.push(Row {
            workload: "W2b 1M spawns in one scope, ns/job".into(),
            jobsys: cell(js, 1),
            peer: format!("rayon {}", cell(ry, 1)),
            ratio: Some(ratio),
            target: "≤ 0.5×".into(),
            met: yes_no(ratio <= 0.5),
        });
    }

    // ---- W3 --------------------------------------------------------------------------------
    if args.wants("w3") {
        let n = fib_n_for(t);
        progress(&format!("W3 fib({n}) jobsys"));
        let js = Sample::of(&on_jobsys_pool(t, |ctx| {
            warm_then_time(runs, || on_jobsys::fib_timed(ctx, n))
        }))
        .scaled(1e6);
        progress(&format!("W3 fib({n}) rayon"));
        let ry = Sample::of(&on_rayon_pool(t, || {
            warm_then_time(runs, || on_rayon::fib_timed(n))
        }))
        .scaled(1e6);
        let ratio = js.median / ry.median;
        let has_target = t <= 2 || t >= 8;
        rows.push(Row {
            workload: format!("W3 fib({n}) join, ms"),
            jobsys: cell(js, 2),
            peer: format!("rayon::join {}", cell(ry, 2)),
            ratio: Some(ratio),
            target: if has_target {
                "≤ 1.5×".into()
            } else {
                "none at T = 3..7".into()
            },
            met: if has_target {
                yes_no(ratio <= 1.5)
            } else {
                "—".into()
            },
        });
        let jobs = fib_jobs(n) as f64;
        notes.push(format!(
            "W3: {} jobs; jobsys {:.1} ns/job, rayon {:.1} ns/job (median).",
            fib_jobs(n),
            js.median * 1e6 / jobs,
            ry.median * 1e6 / jobs
        ));
    }

    // ---- W4 --------------------------------------------------------------------------------
    if args.wants("w4") {
        let passes = if quick { 3 } else { 10 };
        progress("W4 parfor: sequential baseline");
        let mut data = Parfor::new(PARFOR_LEN);
        let seq = parfor_passes(&mut data, passes, "sequential W4", |d| d.sequential_pass());
        progress("W4 parfor jobsys (scope spawn)");
        let js = on_jobsys_pool(t, |ctx| {
            parfor_passes(&mut data, passes, "jobsys W4 spawn", |d| {
                on_jobsys::parfor(ctx, d)
            })
        });
        let grain = on_jobsys::parfor_chunks_per_job(t);
        let decl_batch = |data: &mut Parfor, chunks_per_job: usize, label: &str| {
            progress(&format!("W4 parfor jobsys ({label})"));
            on_jobsys_pool(t, |ctx| {
                let mut scratch = on_jobsys::ParforDecls::new();
                parfor_passes(data, passes, &format!("jobsys W4 {label}"), |d| {
                    on_jobsys::parfor_decls(ctx, d, &mut scratch, chunks_per_job)
                })
            })
        };
        let jd = decl_batch(&mut data, 1, "decl batch");
        let jg = decl_batch(&mut data, grain, "grained decl batch");
        progress("W4 parfor rayon");
        let ry = on_rayon_pool(t, || {
            parfor_passes(&mut data, passes, "rayon W4", on_rayon::parfor)
        });
        let grained = format!("decl batch, {grain} chunks per job");
        for (how, s) in [
            ("scope spawn per chunk", js),
            ("one decl batch", jd),
            (grained.as_str(), jg),
        ] {
            let ratio = s.median / ry.median;
            rows.push(Row {
                workload: format!(
                    "W4 parfor 16M f32, {how}, ms ({passes} passes; sequential {:.2})",
                    seq.median
                ),
                jobsys: format!("{} = {:.2}× seq", cell(s, 2), seq.median / s.median),
                peer: format!(
                    "rayon par_chunks_mut {} = {:.2}× seq",
                    cell(ry, 2),
                    seq.median / ry.median
                ),
                ratio: Some(ratio),
                target: "≤ 1.05×".into(),
                met: yes_no(ratio <= 1.05),
            });
        }
        notes.push(
            "W4: scope = one `spawn` per chunk and decls = one batch of 4,096 `JobDecl`s, both 4,096 jobs per pass; grained = one batch of `JobDecl`s of several whole chunks each (16 jobs per worker, as the workload allows), each chunk through the same kernel. Declarations are filled inside the pass. `× seq` = speedup, sequential / parallel median.".into(),
        );
    }

    // ---- W5 --------------------------------------------------------------------------------
    if args.wants("w5") {
        let (warmup, frames) = if quick { (20, 200) } else { (100, 2000) };
        let k = spin_k();
        let work = FrameWork::new(k);
        let single = {
            let d = (0..15)
                .map(|i| timed(|| work.job(i % 8, i)).as_nanos())
                .min()
                .unwrap_or(0);
            d as f64 / 1e3
        };
        progress("W5 frame jobsys");
        let js = on_jobsys_pool(t, |ctx| {
            run_frames(&work, t, warmup, frames, "jobsys W5", || {
                on_jobsys::frame(ctx, &work)
            })
        });
        progress("W5 frame rayon");
        let ry = on_rayon_pool(t, || {
            run_frames(&work, t, warmup, frames, "rayon W5", || {
                on_rayon::frame(&work)
            })
        });
        let mb = js.mean_over_bound();
        rows.push(Row {
            workload: "W5 frame: mean / work bound".into(),
            jobsys: format!("{mb:.3} (mean {:.0} µs, bound {:.0} µs)", js.mean, js.bound),
            peer: format!(
                "rayon {:.3} (mean {:.0} µs, bound {:.0} µs)",
                ry.mean_over_bound(),
                ry.mean,
                ry.bound
            ),
            ratio: Some(js.mean / ry.mean),
            target: "mean ≤ 1.15× bound".into(),
            met: yes_no(mb <= 1.15),
        });
        let p99_ratio = js.p99 / ry.p99;
        rows.push(Row {
            workload: "W5 frame: p99 µs".into(),
            jobsys: format!("{:.0} ({:.3}× bound)", js.p99, js.p99_over_bound()),
            peer: format!("rayon {:.0} ({:.3}× bound)", ry.p99, ry.p99_over_bound()),
            ratio: Some(p99_ratio),
            target: "p99 ≤ rayon's".into(),
            met: yes_no(p99_ratio <= 1.0),
        });
        notes.push(format!(
            "W5: K = {k} (spin(K) ≈ {single:.2} µs single-threaded, min of 15); {warmup} warm-up + {frames} timed frames of 512 jobs."
        ));
        notes.push(frame_details("jobsys", &js));
        notes.push(frame_details("rayon", &ry));
    }

    // ---- W6 --------------------------------------------------------------------------------
    if args.wants("w6") {
        progress("W6 skynet jobsys");
        let js = Sample::of(&on_jobsys_pool(t, |ctx| {
            warm_then_time(runs, || on_jobsys::skynet_timed(ctx, SKYNET_LEAVES))
        }))
        .scaled(1e6);
        progress("W6 skynet rayon");
        let ry = Sample::of(&on_rayon_pool(t, || {
            warm_then_time(runs, || on_rayon::skynet_timed(SKYNET_LEAVES))
        }))
        .scaled(1e6);
        let ratio = js.median / ry.median;
        rows.push(Row {
            workload: format!(
                "W6 skynet 1M leaves ({} jobs), ms",
                skynet_jobs(SKYNET_LEAVES)
            ),
            jobsys: cell(js, 2),
            peer: format!("rayon scope {}", cell(ry, 2)),
            ratio: Some(ratio),
            target: "≤ 0.5×".into(),
            met: yes_no(ratio <= 0.5),
        });
    }

    // ---- sync primitives -----------------------------------------------------------------------
    if args.wants("sync") {
        let (ops, rounds) = if quick {
            (20_000, 2_000)
        } else {
            (200_000, 20_000)
        };
        let parties = t.max(2);
        // One sync row: time `ours` on a jobsys pool and `std_peer` on OS threads, per `per`
        // operations, and report them side by side (the row says "reported": no pass/fail).
        let mut sync_row = |workload: String,
                            per: usize,
                            peer: &str,
                            ours: &dyn Fn(&Ctx) -> Duration,
                            std_peer: &dyn Fn() -> Duration| {
            progress(&format!("{workload}: jobsys"));
            let js = Sample::of(&on_jobsys_pool(t, |ctx| warm_then_time(runs, || ours(ctx))))
                .scaled(per as f64);
            progress(&format!("{workload}: {peer}"));
            let st = Sample::of(&warm_then_time(runs, std_peer)).scaled(per as f64);
            rows.push(Row {
                workload,
                jobsys: cell(js, 1),
                peer: format!("{peer} {}", cell(st, 1)),
                ratio: Some(js.median / st.median),
                target: "reported".into(),
                met: "—".into(),
            });
        };
        sync_row(
            format!("sync: contended lock, {parties} contenders, ns per lock+unlock"),
            ops,
            &format!("std::sync::Mutex, {parties} threads"),
            &|ctx| on_jobsys::contended_lock(ctx, parties, ops),
            &|| jobsys_benches::std_contended_lock(parties, ops),
        );
        sync_row(
            format!("sync: barrier round trip, {parties} parties, ns per round"),
            rounds,
            &format!("std::sync::Barrier, {parties} threads"),
            &|ctx| on_jobsys::barrier_rounds(ctx, parties, rounds),
            &|| jobsys_benches::std_barrier_rounds(parties, rounds),
        );
        let (pings, msgs, cap) = if quick {
            (2_000, 100_000, 1024)
        } else {
            (20_000, 1_000_000, 1024)
        };
        sync_row(
            "sync: channel ping-pong, ns per round trip".into(),
            pings,
            "std sync_channel, 2 threads",
            &|ctx| on_jobsys::channel_ping_pong(ctx, pings),
            &|| jobsys_benches::std_ping_pong(pings),
        );
        sync_row(
            "sync: select ping-pong (responder selects over 2 channels), ns per round trip".into(),
            pings,
            "std sync_channel ping-pong (no select), 2 threads",
            &|ctx| on_jobsys::select_ping_pong(ctx, pings),
            &|| jobsys_benches::std_ping_pong(pings),
        );
        sync_row(
            format!("sync: channel throughput (capacity {cap}), ns per message"),
            msgs,
            "std sync_channel, 2 threads",
            &|ctx| on_jobsys::channel_throughput(ctx, msgs, cap),
            &|| jobsys_benches::std_channel_throughput(msgs, cap),
        );
        notes.push(format!(
            "sync: jobsys = jobs on {t} workers (a contended wait parks the fiber); std = OS threads. Lock: {parties} contenders share {ops} lock+increment+unlock. Barrier: {parties} parties, {rounds} rounds. Channels: {pings} ping-pong round trips over two capacity-1 (jobsys: 2) channels; {msgs} messages one producer → one consumer. The peer is std's `sync_channel`: crossbeam-channel is not available offline here."
        ));
    }

    // ---- idle CPU ----------------------------------------------------------------------------
    if args.wants("idle") {
        let duration = if quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        let k = spin_k();
        let work = IdleWork::new(k);
        progress("idle jobsys");
        let js = on_jobsys_pool(t, |ctx| {
            run_idle_frames(&work, duration, "jobsys idle", || {
                on_jobsys::idle_frame(ctx, &work)
            })
        });
        progress("idle rayon");
        let ry = on_rayon_pool(t, || {
            run_idle_frames(&work, duration, "rayon idle", || {
                on_rayon::idle_frame(&work)
            })
        });
        let (jr, rr) = (js.ratio(), ry.ratio());
        rows.push(Row {
            workload: format!(
                "idle: process CPU / job CPU, {IDLE_JOBS} jobs every {} ms for {:.1} s",
                IDLE_PERIOD.as_millis(),
                duration.as_secs_f64()
            ),
            jobsys: format!("{jr:.2}"),
            peer: format!("rayon {rr:.2}"),
            ratio: Some(jr / rr),
            target: "≤ 1.2".into(),
            met: yes_no(jr <= 1.2),
        });
        notes.push(format!(
            "idle: K = {k}; all {t} workers; per frame one scope (jobsys) / `rayon::scope` of {IDLE_JOBS} spawns, waited for, then the submitting thread (worker 0 / a rayon worker) sleeps until the next {} ms tick; process CPU from `getrusage(RUSAGE_SELF)` over the timed window, job CPU = each job's `CLOCK_THREAD_CPUTIME_ID` time measured inside it.",
            IDLE_PERIOD.as_millis()
        ));
        notes.push(idle_details("jobsys", &js));
        notes.push(idle_details("rayon", &ry));
    }

    // ---- wake latency ----------------------------------------------------------------------
    if args.wants("wake") {
        if t < 2 {
            progress("wake: skipped (needs T ≥ 2)");
            notes.push(
                "wake: skipped at T = 1: the signalling job must run on a second worker (pinned to worker 1) while the waiter's worker 0 idles; run with --workers 2 or more.".into(),
            );
        } else {
            let (n_asleep, n_spinning) = if quick { (200, 200) } else { (400, 2000) };
            // (row label, pool's idle spin rounds, signal delay, warm-up rounds, samples)
            let cases = [
                (
                    "asleep",
                    Builder::DEFAULT_IDLE_SPINS,
                    WAKE_ASLEEP_DELAY,
                    5,
                    n_asleep,
                ),
                (
                    "spinning",
                    WAKE_SPINNING_IDLE_SPINS,
                    WAKE_SPINNING_DELAY,
                    50,
                    n_spinning,
                ),
                (
                    "in its default idle loop",
                    Builder::DEFAULT_IDLE_SPINS,
                    WAKE_SPINNING_DELAY,
                    50,
                    n_spinning,
                ),
            ];
            for (name, spins, delay, warmup, n) in cases {
                progress(&format!(
                    "wake latency jobsys (waiter {name}, signal after {delay:?})"
                ));
                let jobs = JobSystem::builder()
                    .workers(t)
                    .idle_spins(spins)
                    .build()
                    .expect("building the jobsys pool");
                let samples = jobs.run(|ctx| on_jobsys::wake_latency(ctx, delay, warmup, n));
                LOST_WAKEUPS.fetch_add(jobs.lost_wakeups(), std::sync::atomic::Ordering::Relaxed);
                let (p50, p99) = median_p99_us(&samples);
                rows.push(Row {
                    workload: format!(
                        "wake latency, waiter's worker {name} (signal after {delay:?}, idle spins {spins}; {n} samples), µs"
                    ),
                    jobsys: format!("median {p50:.2}, p99 {p99:.2}"),
                    peer: "—".into(),
                    ratio: None,
                    target: "reported (no target)".into(),
                    met: "—".into(),
                });
            }
            notes.push(
                "wake: the waiter (worker 0) submits one job pinned to worker 1 and waits on its counter; the job busy-waits for the delay, stores the time as its last action and returns (its completion is the last decrement); latency = waiter's clock right after `wait_for_counter` returns − that store. See `on_jobsys::wake_latency`.".into(),
            );
            let default_spins = Builder::DEFAULT_IDLE_SPINS;
            notes.push(format!(
                "wake: `asleep` uses the default pool and a {WAKE_ASLEEP_DELAY:?} delay, far past the idle loop's spin and yield rounds; `spinning` raises the pool's idle spin rounds to {WAKE_SPINNING_IDLE_SPINS} so worker 0 is certainly still spinning after {WAKE_SPINNING_DELAY:?} (with the default {default_spins} it has usually left the spin rounds by then: the third row shows what the default idle loop gives after that gap)."
            ));
        }
    }

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

/// Resets `y`, runs one warm-up pass and verifies it element-wise, then times `passes`
/// passes; returns their median/min in ms.
fn parfor_passes(
    data: &mut Parfor,
    passes: usize,
    what: &str,
    mut pass: impl FnMut(&mut Parfor),
) -> Sample {
    data.reset();
    pass(data);
    data.verify_one_pass(what);
    let times: Vec<f64> = (0..passes)
        .map(|_| timed(|| pass(data)).as_nanos() as f64)
        .collect();
    Sample::of(&times).scaled(1e6)
}

fn frame_details(name: &str, s: &FrameStats) -> String {
    format!(
        "W5 {name}: mean {:.0} µs, p50 {:.0}, p99 {:.0}, max {:.0}; bound {:.0} µs; mean/bound {:.3}, p99/bound {:.3}.",
        s.mean,
        s.p50,
        s.p99,
        s.max,
        s.bound,
        s.mean_over_bound(),
        s.p99_over_bound()
    )
}

fn idle_details(name: &str, s: &IdleStats) -> String {
    let jobs = (s.frames * IDLE_JOBS) as f64;
    format!(
        "idle {name}: {} frames in {:.0} ms; process CPU {:.1} ms (user {:.1}, sys {:.1}: a tick-sampled split) / job CPU {:.1} ms ({:.2} µs per job, its two thread-clock reads included) = {:.2}; frame submit→wait {:.0} µs mean, {:.0} max; {} frames overran the period.",
        s.frames,
        s.wall_ns as f64 / 1e6,
        (s.user_ns + s.sys_ns) as f64 / 1e6,
        s.user_ns as f64 / 1e6,
        s.sys_ns as f64 / 1e6,
        s.job_ns as f64 / 1e6,
        s.job_ns as f64 / 1e3 / jobs,
        s.ratio(),
        s.frame_mean_us,
        s.frame_max_us,
        s.overruns
    )
}
