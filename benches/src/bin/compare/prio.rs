//! The `prio` section: priority latency. Low work keeps every worker busy (a flood of Low jobs
//! of about 30 µs each that respawn themselves, `LOW_PER_WORKER` per worker in flight, so that
//! at least four per worker are queued at all times), and a prober job, between sleeps, submits
//! a High job from inside the pool. Value: the time from the submission (an `Instant` taken
//! just before the submit call, moved into the job) to the High job's first instruction
//! (`Instant::now()`), p50, p99 and max over the probes.
//!
//! - **jobsys**: the flood and the prober are jobs of one scope; the prober loops
//!   `ctx.sleep(PROBE_GAP)`, then `s.spawn_with(job_meta!(.., priority(High)), ..)` (the guide's
//!   way: `Hint::Lifo`, the prober's own worker's High ring) and sleeps again — its fiber parks,
//!   and the worker picks its next job.
//! - **jobsys, `Hint::Fifo`** (reported): the same, with the High job sent to the shared High
//!   injector (where a submission from outside the pool goes too).
//! - **rayon**: the flood is `rayon::spawn` (each Low job respawns itself on its worker's
//!   deque); the prober is a chain of rayon jobs: each blocks its worker in
//!   `std::thread::sleep(PROBE_GAP)` (rayon has no sleep that frees the worker), then
//!   `rayon::spawn`s the next prober and then the High job and returns, so that the worker's
//!   LIFO pop takes the High job next.
//!
//! Both report the sleep's overshoot too (wake-up time past the deadline), p50 and p99: it is
//! not part of the submit → start latency, but it is the cost of the wait between probes.

use crate::session::{LOST_WAKEUPS, Row, Session, progress, yes_no};
use jobsys::{Hint, JobSystem, Priority, Scope, job_meta};
use jobsys_benches::{nearest_rank, spin};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Low jobs in flight per worker: one running, the rest queued (≥ 4 queued per worker).
const LOW_PER_WORKER: usize = 8;
/// A Low job's spin, in units of the session's K (spin(K) ≈ 5 µs): ≈ 30 µs.
const LOW_SPIN_UNITS: u64 = 6;
/// The prober's sleep between probes.
const PROBE_GAP: Duration = Duration::from_micros(100);

/// What one round (one fresh pool, one system) shares between its jobs.
struct State {
    /// spin iterations of one Low job.
    low_iters: u64,
    /// Set when the last probe was submitted: Low jobs stop respawning.
    stop: AtomicBool,
    /// Low jobs submitted and not yet started.
    queued: AtomicUsize,
    /// The fewest queued Low jobs seen at a probe's submission.
    min_queued: AtomicUsize,
    /// Per probe: submit → first instruction of the High job, ns (0: not run yet).
    latency_ns: Vec<AtomicU64>,
    /// Per probe: the sleep before it ended this many ns past its deadline.
    overshoot_ns: Vec<AtomicU64>,
    /// rayon: the first prober's end of the channel the round waits on; the first Low job to
    /// start takes it and spawns the prober chain from inside the pool.
    rayon_done: Mutex<Option<mpsc::Sender<()>>>,
}

impl State {
    fn new(low_iters: u64, probes: usize) -> Self {
        Self {
            low_iters,
            stop: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            min_queued: AtomicUsize::new(usize::MAX),
            latency_ns: (0..probes).map(|_| AtomicU64::new(0)).collect(),
            overshoot_ns: (0..probes).map(|_| AtomicU64::new(0)).collect(),
            rayon_done: Mutex::new(None),
        }
    }

    /// A Low job's body, before the respawn (done by the caller).
    fn low_started(&self) -> bool {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        !self.stop.load(Ordering::Relaxed)
    }

    fn low_work(&self) {
        black_box(spin(black_box(self.low_iters), 7));
    }

    /// Records probe `i`'s sleep (that was to end at `deadline`), just before its submission.
    fn before_submit(&self, i: usize, deadline: Instant) {
        let late = Instant::now().saturating_duration_since(deadline);
        self.overshoot_ns[i].store(late.as_nanos() as u64, Ordering::Relaxed);
        self.min_queued
            .fetch_min(self.queued.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The High job's record: `started` was read as its first instruction.
    fn high_ran(&self, i: usize, submitted: Instant, started: Instant) {
        let ns = started.saturating_duration_since(submitted).as_nanos() as u64;
        self.latency_ns[i].store(ns.max(1), Ordering::Relaxed);
    }

    /// The round's figures, without the first `warm` probes.
    fn figures(&self, warm: usize, t: usize) -> Round {
        let us = |v: &[AtomicU64]| {
            let mut x: Vec<f64> = v[warm..]
                .iter()
                .map(|a| a.load(Ordering::Relaxed) as f64 / 1e3)
                .collect();
            x.sort_by(f64::total_cmp);
            x
        };
        let lat = us(&self.latency_ns);
        assert!(lat[0] > 0.0, "prio: a High job never ran");
        let over = us(&self.overshoot_ns);
        Round {
            p50: nearest_rank(&lat, 0.50),
            p99: nearest_rank(&lat, 0.99),
            max: lat[lat.len() - 1],
            sleep_p50: nearest_rank(&over, 0.50),
            sleep_p99: nearest_rank(&over, 0.99),
            min_queued_per_worker: self.min_queued.load(Ordering::Relaxed) as f64 / t as f64,
        }
    }
}

/// One round's figures, µs.
#[derive(Clone, Copy)]
struct Round {
    p50: f64,
    p99: f64,
    max: f64,
    sleep_p50: f64,
    sleep_p99: f64,
    min_queued_per_worker: f64,
}

fn low_meta() -> &'static jobsys::JobMeta {
    job_meta!("prio-low", priority(Priority::Low))
}

/// A jobsys Low job: respawns itself (first, so the queue keeps its length) and spins.
fn jobsys_low<'scope, 'env: 'scope>(s: &Scope<'scope, 'env>, st: &'env State) {
    if st.low_started() {
        st.queued.fetch_add(1, Ordering::Relaxed);
        s.spawn_with(low_meta(), move |s| jobsys_low(s, st));
    }
    st.low_work();
}

fn jobsys_round(t: usize, low_iters: u64, probes: usize, warm: usize, hint: Hint) -> Round {
    let jobs = JobSystem::builder()
        .workers(t)
        .build()
        .expect("building the jobsys pool");
    let st = State::new(low_iters, probes);
    jobs.run(|ctx| {
        ctx.scope(|s| {
            let st = &st;
            for _ in 0..LOW_PER_WORKER * t {
                st.queued.fetch_add(1, Ordering::Relaxed);
                s.spawn_with(low_meta(), move |s| jobsys_low(s, st));
            }
            s.spawn(move |s| {
                for i in 0..probes {
                    let deadline = Instant::now() + PROBE_GAP;
                    s.sleep(PROBE_GAP);
                    st.before_submit(i, deadline);
                    let submitted = Instant::now();
                    let high = job_meta!("prio-high", priority(Priority::High));
                    s.spawn_hinted(hint, high, move |_| {
                        let started = Instant::now();
                        st.high_ran(i, submitted, started);
                    });
                }
                st.stop.store(true, Ordering::Relaxed);
            });
        });
    });
    LOST_WAKEUPS.fetch_add(jobs.lost_wakeups(), Ordering::Relaxed);
    st.figures(warm, t)
}

/// A rayon Low job: respawns itself on this worker's deque (first, as on jobsys) and spins.
/// The first one to start also spawns the first prober (from inside the pool: a job
/// injected from outside would wait until some worker's deque is empty, which the flood
/// never lets happen).
fn rayon_low(st: Arc<State>) {
    if st.low_started() {
        st.queued.fetch_add(1, Ordering::Relaxed);
        let next = st.clone();
        rayon::spawn(move || rayon_low(next));
    }
    // After the respawn: newer, so this worker's LIFO pop takes the prober next (below the
    // flood's newest job it would never run on one worker).
    let done = st.rayon_done.lock().unwrap().take();
    if let Some(done) = done {
        let first = st.clone();
        rayon::spawn(move || rayon_probe(first, 0, done));
    }
    st.low_work();
}

/// The rayon prober, probe `i`: blocks its worker in a sleep, then spawns the next prober and
/// the High job (newest, so this worker's LIFO pop takes it first) and returns.
fn rayon_probe(st: Arc<State>, i: usize, done: mpsc::Sender<()>) {
    let deadline = Instant::now() + PROBE_GAP;
    std::thread::sleep(PROBE_GAP);
    st.before_submit(i, deadline);
    if i + 1 < st.latency_ns.len() {
        let (next, done) = (st.clone(), done.clone());
        rayon::spawn(move || rayon_probe(next, i + 1, done));
    } else {
        st.stop.store(true, Ordering::Relaxed);
    }
    let high = st.clone();
    let submitted = Instant::now();
    rayon::spawn(move || {
        let started = Instant::now();
        high.high_ran(i, submitted, started);
        drop(done);
    });
}

fn rayon_round(t: usize, low_iters: u64, probes: usize, warm: usize) -> Round {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build()
        .expect("building the rayon pool");
    let st = Arc::new(State::new(low_iters, probes));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    *st.rayon_done.lock().unwrap() = Some(done_tx);
    for _ in 0..LOW_PER_WORKER * t {
        st.queued.fetch_add(1, Ordering::Relaxed);
        let low = st.clone();
        pool.spawn(move || rayon_low(low));
    }
    // Every sender (one per prober and High job) is gone once the last High job ran.
    while done_rx.recv().is_ok() {}
    // Dropping the pool waits for nothing: wait for the flood to drain (it stopped respawning).
    while st.queued.load(Ordering::Relaxed) > 0 {
        std::thread::yield_now();
    }
    drop(pool);
    st.figures(warm, t)
}

/// Median and range of one figure over the rounds.
fn spread(v: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    (jobsys_benches::median_of_sorted(&v), v[0], v[v.len() - 1])
}

fn cell((median, min, max): (f64, f64, f64)) -> String {
    format!("{median:.2} [{min:.2}–{max:.2}]")
}

/// `prio`: `--runs` rounds, each a fresh pool per system, jobsys then rayon (so slow phases of
/// a busy machine hit both); the ratio is the median of the per-round ratios.
pub(crate) fn prio(b: &mut Session) {
    if !b.args.wants("prio") {
        return;
    }
    let (t, runs) = (b.args.workers, b.args.runs);
    let (probes, warm) = if b.args.quick {
        (300, 50)
    } else {
        (3_000, 200)
    };
    let low_iters = b.spin_k() * LOW_SPIN_UNITS;
    let (mut js, mut jf, mut ry) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..runs {
        progress(&format!("prio round {} of {runs}: jobsys", round + 1));
        js.push(jobsys_round(t, low_iters, probes + warm, warm, Hint::Lifo));
        progress(&format!(
            "prio round {} of {runs}: jobsys, Hint::Fifo",
            round + 1
        ));
        jf.push(jobsys_round(t, low_iters, probes + warm, warm, Hint::Fifo));
        progress(&format!("prio round {} of {runs}: rayon", round + 1));
        ry.push(rayon_round(t, low_iters, probes + warm, warm));
    }
    type Figure = fn(&Round) -> f64;
    let figures: [(&str, Figure, bool); 5] = [
        ("prio submit→start p50 µs", |r| r.p50, true),
        ("prio submit→start p99 µs", |r| r.p99, true),
        ("prio submit→start max µs", |r| r.max, false),
        ("prio sleep overshoot p50 µs", |r| r.sleep_p50, false),
        ("prio sleep overshoot p99 µs", |r| r.sleep_p99, false),
    ];
    for (what, figure, targeted) in figures {
        let ratios = spread(js.iter().zip(&ry).map(|(j, r)| figure(j) / figure(r)));
        b.rows.push(Row {
            workload: what.into(),
            jobsys: cell(spread(js.iter().map(figure))),
            peer: format!("rayon {}", cell(spread(ry.iter().map(figure)))),
            ratio: Some(ratios.0),
            target: if targeted {
                format!(
                    "≤ 1× rayon spawn (per-round ratios {:.2}–{:.2})",
                    ratios.1, ratios.2
                )
            } else {
                format!(
                    "reported (per-round ratios {:.2}–{:.2})",
                    ratios.1, ratios.2
                )
            },
            met: if targeted {
                yes_no(ratios.0 <= 1.0)
            } else {
                "—".into()
            },
        });
    }
    // The same probe with the High job sent to the High injector (`Hint::Fifo`, as a foreign
    // submission goes): reported against the same rayon rounds.
    for (what, figure) in [
        ("prio Hint::Fifo submit→start p50 µs", (|r| r.p50) as Figure),
        ("prio Hint::Fifo submit→start p99 µs", |r| r.p99),
    ] {
        let ratios = spread(jf.iter().zip(&ry).map(|(j, r)| figure(j) / figure(r)));
        b.rows.push(Row {
            workload: what.into(),
            jobsys: cell(spread(jf.iter().map(figure))),
            peer: format!("rayon {}", cell(spread(ry.iter().map(figure)))),
            ratio: Some(ratios.0),
            target: format!(
                "reported (per-round ratios {:.2}–{:.2})",
                ratios.1, ratios.2
            ),
            met: "—".into(),
        });
    }
    let min_q = |v: &[Round]| {
        v.iter()
            .map(|r| r.min_queued_per_worker)
            .fold(f64::INFINITY, f64::min)
    };
    b.notes.push(format!(
        "prio: {LOW_PER_WORKER} Low jobs per worker in flight (spin ≈ {} µs each, respawning \
         themselves), fewest queued per worker seen at a submission: jobsys {:.1}, rayon {:.1}; \
         {probes} probes per round after {warm} warm-up, {PROBE_GAP:?} sleep between probes, \
         {runs} rounds (median [min–max] of the rounds' figures; the ratio is the median of the \
         per-round ratios). jobsys: the prober sleeps with `ctx.sleep` and submits with \
         `spawn_with(priority(High))` (its worker's High ring); rayon: the prober blocks its \
         worker in `std::thread::sleep`, then `rayon::spawn`s the High job last, so the worker's \
         LIFO pop takes it when the prober returns. The `Hint::Fifo` rows: the same probe on \
         jobsys with the High job sent to the High injector.",
        LOW_SPIN_UNITS * 5,
        min_q(&js),
        min_q(&ry),
    ));
}
