//! What every section shares: the parsed arguments, the table and notes being built, the
//! calibrated K, the fresh pools, and the cell formatting.

use crate::Args;
use jobsys::{Ctx, JobSystem};
use jobsys_benches::{Sample, calibrate_k};
use std::cell::OnceCell;
use std::time::Duration;

/// The state one `compare` run builds up, section by section.
pub(crate) struct Session {
    /// The parsed command line.
    pub(crate) args: Args,
    /// The result table, in the order the sections ran.
    pub(crate) rows: Vec<Row>,
    /// The notes printed under the table.
    pub(crate) notes: Vec<String>,
    /// K for spin(K) ≈ 5 µs, calibrated once and shared by W5 and idle.
    k_cell: OnceCell<u64>,
}

impl Session {
    /// An empty table for `args`.
    pub(crate) fn new(args: Args) -> Self {
        Self {
            args,
            rows: Vec::new(),
            notes: Vec::new(),
            k_cell: OnceCell::new(),
        }
    }

    /// K for spin(K) ≈ 5 µs, calibrated on first use.
    pub(crate) fn spin_k(&self) -> u64 {
        *self.k_cell.get_or_init(|| {
            progress("calibrating K (spin(K) ≈ 5 µs)");
            calibrate_k(Duration::from_micros(5))
        })
    }
}

/// One line of the result table.
pub(crate) struct Row {
    pub(crate) workload: String,
    pub(crate) jobsys: String,
    pub(crate) peer: String,
    pub(crate) ratio: Option<f64>,
    pub(crate) target: String,
    pub(crate) met: String,
}

pub(crate) fn cell(s: Sample, digits: usize) -> String {
    format!("{:.*} (min {:.*})", digits, s.median, digits, s.min)
}

pub(crate) fn yes_no(ok: bool) -> String {
    if ok { "yes".into() } else { "**no**".into() }
}

/// Builds a fresh jobsys pool of `t` workers and runs `f` as its root job.
pub(crate) fn on_jobsys_pool<R>(t: usize, f: impl FnOnce(&Ctx) -> R) -> R {
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
pub(crate) static LOST_WAKEUPS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Builds a fresh rayon pool of `t` threads and runs `f` inside `install`.
pub(crate) fn on_rayon_pool<R: Send>(t: usize, f: impl FnOnce() -> R + Send) -> R {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build()
        .expect("building the rayon pool");
    pool.install(f)
}

pub(crate) fn progress(what: &str) {
    eprintln!("[compare] {what}");
}
