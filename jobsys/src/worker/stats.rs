//! Per-worker statistics: running totals that the worker's own thread keeps and any thread
//! reads (frame stats are deltas of two snapshots), and the fiber pool's high-water mark.
//!
//! Cheap enough to stay on: each count is a plain load and store of a cell that only the
//! worker's thread writes (`shim::StatCounter`), in one cache-padded block per worker, so no
//! other core's line is touched and no locked instruction runs. The clock is read only when a
//! worker's idle state changes (it starts looking without finding work, finds some, falls
//! asleep, wakes), never per job. Statistics are no part of the scheduler's protocols: nothing
//! reads them to decide anything, and they are neither loom-modelled nor simulation steps.

use super::{Shared, Worker};
use crate::shim::{AtomicBool, Ordering, StatCounter};

/// Running totals of one worker since the system was built.
///
/// The totals only grow. They are read with relaxed loads, one field at a time, so a snapshot
/// taken while jobs run is approximate by a few events; subtract two snapshots (`-`, which
/// saturates field by field) for what happened in between, such as one frame.
///
/// What counts:
/// - `jobs_run`: jobs this worker started: each declaration of a batch, each scope spawn,
///   the root job of each [`JobSystem::run`](crate::JobSystem::run), each job run inline
///   (a waiting fiber's own children, [`Hint::Inline`](crate::Hint::Inline) submissions),
///   and one per [`Ctx::join`](crate::Ctx::join) — its second closure, wherever it runs (the
///   first is part of the job that called `join`);
/// - `parked_waits`: waits by jobs on this worker that parked their fiber — on a counter or
///   a `jobsys::sync` primitive; a wait that is over at once, or whose condition is met
///   before the fiber is parked, does not count;
/// - `steals`: jobs this worker took from other workers' queues as a thief (one steal may
///   take several; a batch's range counts as one job however many declarations it holds);
/// - `overflowed`: jobs this worker moved from its own rings to the shared injector because a
///   ring was full and could not grow (see
///   [`Builder::queue_growth_limit`](crate::Builder::queue_growth_limit));
/// - `idle_ns`: time spent looking for work without finding it (spinning, yielding), sleep
///   excluded; measured with the clock of timed waits (virtual under the `simulation`
///   feature);
/// - `asleep_ns`: time spent asleep, on the same clock.
///
/// ```
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let before = jobs.worker_stats(0);
/// jobs.run(|ctx| ctx.join(|_| 1, |_| 2));
/// let frame = jobs.worker_stats(0) - before;
/// // The root job ran on worker 0; the join's second half ran there too, or was stolen.
/// assert!(frame.jobs_run >= 1);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Jobs this worker started.
    pub jobs_run: u64,
    /// Waits by jobs on this worker that parked their fiber.
    pub parked_waits: u64,
    /// Jobs this worker took from other workers' queues, as a thief.
    pub steals: u64,
    /// Jobs this worker moved from its full rings to the shared injector.
    pub overflowed: u64,
    /// Nanoseconds spent looking for work without finding it, sleep excluded.
    pub idle_ns: u64,
    /// Nanoseconds spent asleep.
    pub asleep_ns: u64,
}

impl core::ops::Sub for WorkerStats {
    type Output = Self;

    /// Field-wise difference, saturating at zero: relaxed reads promise no order between
    /// snapshots taken on different threads, so a field of the later one may read lower.
    fn sub(self, earlier: Self) -> Self {
        Self {
            jobs_run: self.jobs_run.saturating_sub(earlier.jobs_run),
            parked_waits: self.parked_waits.saturating_sub(earlier.parked_waits),
            steals: self.steals.saturating_sub(earlier.steals),
            overflowed: self.overflowed.saturating_sub(earlier.overflowed),
            idle_ns: self.idle_ns.saturating_sub(earlier.idle_ns),
            asleep_ns: self.asleep_ns.saturating_sub(earlier.asleep_ns),
        }
    }
}

/// The cells behind one worker's [`WorkerStats`]. Written only by the thread running that
/// worker's loop (and the fibers it runs, on the same thread); read by any.
#[derive(Debug, Default)]
pub(crate) struct StatCells {
    pub(crate) jobs_run: StatCounter,
    pub(crate) parked_waits: StatCounter,
    pub(crate) steals: StatCounter,
    pub(crate) overflowed: StatCounter,
    pub(crate) idle_ns: StatCounter,
    pub(crate) asleep_ns: StatCounter,
}

impl StatCells {
    fn read(&self) -> WorkerStats {
        WorkerStats {
            jobs_run: self.jobs_run.get(),
            parked_waits: self.parked_waits.get(),
            steals: self.steals.get(),
            overflowed: self.overflowed.get(),
            idle_ns: self.idle_ns.get(),
            asleep_ns: self.asleep_ns.get(),
        }
    }
}

impl Worker {
    /// Counts a job started on this worker. Its thread only.
    #[inline]
    pub(crate) fn count_job(&self) {
        self.stats.jobs_run.add(1);
    }
}

/// A worker loop's idle state: rounds in a row without work, and since when (the clock is
/// read at the first such round and when the run ends, not at every round).
pub(crate) struct IdleRounds<'a> {
    rounds: u32,
    /// When the current run of idle rounds began (valid while `rounds != 0`).
    since: u64,
    cells: &'a StatCells,
    /// This worker's `Worker::frame_idle`, and whether this run set it (so that ending a run
    /// that never spun in a frame touches nothing shared).
    frame_idle: &'a AtomicBool,
    flagged: bool,
}

impl<'a> IdleRounds<'a> {
    pub(crate) fn new(worker: &'a Worker) -> Self {
        Self {
            rounds: 0,
            since: 0,
            cells: &worker.stats,
            frame_idle: &worker.frame_idle,
            flagged: false,
        }
    }

    /// One more round without work; returns how many in a row.
    #[inline]
    pub(crate) fn next(&mut self) -> u32 {
        if self.rounds == 0 {
            self.since = crate::deadline::now();
        } else if self.rounds >= 1 << 31 {
            // Minutes of spinning in one open frame (a stalled one never closes): step back
            // by 2^30 rather than overflow. The count stays far past the spin and yield
            // thresholds, keeps its place in the in-frame yield period (a power of two below
            // 2^30), and the run goes on (`since` kept).
            self.rounds -= 1 << 30;
        }
        self.rounds += 1;
        self.rounds
    }

    /// The worker found work (or leaves its loop): ends the idle run, if one is going.
    #[inline]
    pub(crate) fn busy(&mut self) {
        if self.rounds != 0 {
            self.end_run(crate::deadline::now());
        }
    }

    #[cold]
    fn end_run(&mut self, now: u64) {
        self.cells.idle_ns.add(now.saturating_sub(self.since));
        self.rounds = 0;
        if self.flagged {
            self.flagged = false;
            self.frame_idle.store(false, Ordering::Relaxed);
        }
    }

    /// This idle run is spinning inside a frame: from now until it ends, the stall check
    /// counts the worker idle (see `Worker::frame_idle`). Called at the in-frame branch's
    /// periodic yield; stores only once per run.
    #[inline]
    pub(crate) fn spinning_in_frame(&mut self) {
        if !self.flagged {
            self.flagged = true;
            self.frame_idle.store(true, Ordering::Relaxed);
        }
    }

    /// Runs `sleep` (the worker's sleep) as the end of the idle run, counting its time as
    /// asleep. The next round without work starts a new run.
    pub(crate) fn sleep(&mut self, sleep: impl FnOnce()) {
        let start = crate::deadline::now();
        if self.rounds != 0 {
            self.end_run(start);
        }
        sleep();
        let end = crate::deadline::now();
        self.cells.asleep_ns.add(end.saturating_sub(start));
    }
}

impl Shared {
    /// Worker `worker`'s totals (relaxed reads).
    ///
    /// # Panics
    /// If `worker` is not a worker index of this system.
    #[track_caller]
    pub(crate) fn worker_stats(&self, worker: usize) -> WorkerStats {
        let n = self.workers.len();
        let Some(w) = self.workers.get(worker) else {
            panic!(
                "worker_stats: worker {worker} does not exist (the system has {n} workers: 0..{n})"
            )
        };
        w.stats.read()
    }

    /// Fibers out of the pool now: running a job, parked, or ready to resume.
    pub(crate) fn fibers_in_use(&self) -> usize {
        self.fibers.in_use()
    }

    /// Most fibers in use at once since the last call (or since build); resets the mark to
    /// the current in-use count.
    #[allow(dead_code, reason = "for the frame stats")]
    pub(crate) fn take_fiber_high_water(&self) -> usize {
        self.fibers.take_high_water()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::sync::{Event, EventKind};

    /// Fibers parked at once, each in a wait of its own, hold as many fibers out of the pool
    /// (a fiber parks on one thing at a time): the mark must cover them.
    #[test]
    fn the_fiber_high_water_mark_covers_every_fiber_parked_at_once() {
        const PARKED: usize = 6;
        // One worker: it sleeps only once every spawn has started and parked on the event,
        // and the foreign thread sets the event only then.
        let jobs = crate::JobSystem::builder().workers(1).build().unwrap();
        let event = Event::new(EventKind::Manual);
        let handle = jobs.handle();
        std::thread::scope(|s| {
            s.spawn(|| {
                while handle.sleeping_workers() == 0 {
                    std::thread::yield_now();
                }
                event.set();
            });
            jobs.run(|ctx| {
                // Since build: the root's fiber only; the mark restarts there.
                assert_eq!(ctx.shared().take_fiber_high_water(), 1);
                ctx.scope(|s| {
                    for _ in 0..PARKED {
                        s.spawn(|c| event.wait(c));
                    }
                });
                let mark = ctx.shared().take_fiber_high_water();
                assert!(
                    mark >= PARKED,
                    "high water {mark}, {PARKED} fibers were parked"
                );
                // Restarted at the fibers out now: the root's (the spawns' went back to the
                // pool before the root could resume, on this one worker).
                assert_eq!(ctx.shared().take_fiber_high_water(), 1);
                assert_eq!(ctx.shared().fibers_in_use(), 1);
            });
        });
        assert_eq!(jobs.fibers_in_use(), 0);
    }

    /// An idle run counts its rounds in a `u32`, and inside a frame an idle worker spins for
    /// as long as the frame stays open (a stall inside a frame never ends by itself): past
    /// 2^32 rounds — minutes of spinning — the count must neither overflow (a panic in debug
    /// builds, which aborts the scheduler loop) nor wrap to 0 (which would drop the worker
    /// back to the short spin and skew its idle time), and it must keep hitting the in-frame
    /// yield period (every 1,024 rounds), where the stall check runs.
    #[test]
    fn an_idle_run_of_more_than_2_to_the_32_rounds_keeps_counting() {
        let cells = super::StatCells::default();
        let flag = crate::shim::AtomicBool::new(false);
        let mut idle = super::IdleRounds {
            rounds: u32::MAX - 2047,
            since: 1,
            cells: &cells,
            frame_idle: &flag,
            flagged: false,
        };
        let mut yields = 0;
        for _ in 0..4096 {
            let r = idle.next();
            assert!(r > 1 << 29, "the idle run dropped back to {r} rounds");
            if r.is_multiple_of(1024) {
                yields += 1;
            }
        }
        assert_eq!(yields, 4, "the in-frame yield period was lost");
        assert_eq!(idle.since, 1, "the idle run restarted");
    }
}
