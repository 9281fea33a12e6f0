//! Per-frame statistics: what the workers did while a frame was the newest one open, and
//! what its arenas used.

use super::arena::WorkerArena;
use crate::WorkerStats;

/// One worker's share of a frame's [`FrameStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerFrameStats {
    /// Jobs this worker started.
    pub jobs_run: u64,
    /// Waits by jobs on this worker that parked their fiber.
    pub parked_waits: u64,
    /// Jobs this worker stole from other workers.
    pub steals: u64,
    /// Nanoseconds spent looking for work without finding it (sleep excluded).
    pub idle_ns: u64,
    /// Nanoseconds spent asleep.
    pub asleep_ns: u64,
    /// Bytes this worker's arena handed out for the frame (padding included).
    pub arena_used: usize,
    /// Most bytes this worker's arenas handed out in any one frame so far.
    pub arena_high_water: usize,
    /// Heap bytes this worker's arena grew by during the frame (zero once warm: growth is
    /// kept for later frames).
    pub arena_grown: usize,
}

/// What one frame cost: read it each frame with [`Ctx::frame_stats`](crate::Ctx::frame_stats)
/// (or [`JobSystem::frame_stats`](crate::JobSystem::frame_stats)), feed it to an overlay or a
/// profiler.
///
/// The scheduler counts (jobs, waits, steals, idle and sleep time, fibers, lost wake-ups)
/// cover the frame's *period*: from its opening until the next frame opens or it retires,
/// whichever comes first — so with frames overlapping, each moment is counted once, in the
/// newest frame open at that moment. The arena figures cover exactly the frame's own
/// allocations, wherever they happened.
///
/// Filling one allocates only the first time (its per-worker list); keep one and refill it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// The frame's index.
    pub index: u64,
    /// Jobs run, all workers.
    pub jobs_run: u64,
    /// Waits that parked a fiber, all workers.
    pub parked_waits: u64,
    /// Jobs stolen, all workers.
    pub steals: u64,
    /// Most fibers in use at once.
    pub fibers_high_water: usize,
    /// Wake-ups the sleep watchdog had to rescue (should stay 0; see
    /// [`JobSystem::lost_wakeups`](crate::JobSystem::lost_wakeups)).
    pub lost_wakeups: u64,
    /// Arena bytes the frame used, all workers.
    pub arena_used: usize,
    /// Heap bytes the frame's arenas grew by, all workers.
    pub arena_grown: usize,
    pub(crate) workers: Vec<WorkerFrameStats>,
}

impl FrameStats {
    /// Empty stats, to be filled by [`Ctx::frame_stats`](crate::Ctx::frame_stats).
    pub fn new() -> Self {
        Self::default()
    }

    /// Each worker's share, indexed by worker.
    pub fn workers(&self) -> &[WorkerFrameStats] {
        &self.workers
    }

    fn fill_from(&mut self, other: &FrameStats) {
        let mut workers = core::mem::take(&mut self.workers);
        workers.clear();
        workers.extend_from_slice(&other.workers);
        *self = FrameStats {
            index: other.index,
            jobs_run: other.jobs_run,
            parked_waits: other.parked_waits,
            steals: other.steals,
            fibers_high_water: other.fibers_high_water,
            lost_wakeups: other.lost_wakeups,
            arena_used: other.arena_used,
            arena_grown: other.arena_grown,
            workers,
        };
    }
}

/// A pending frame's record: its period closes at the next opening (or its retirement), its
/// arena figures at its retirement; it is complete when both are in.
#[derive(Default)]
struct Pending {
    stats: FrameStats,
    live: bool,
    period_done: bool,
    arena_done: bool,
}

/// Every frame's stats in the making, and the latest complete one. Behind a spin lock taken
/// only at frame boundaries (openings and retirements), each time for O(workers) work.
pub(crate) struct StatsBook {
    /// Snapshot of the worker totals when the newest frame opened, and its index.
    begin: Vec<WorkerStats>,
    begin_lost: u64,
    newest: Option<u64>,
    /// Per frame slot.
    pending: Vec<Pending>,
    latest: FrameStats,
    has_latest: bool,
}

impl StatsBook {
    pub(crate) fn new(slots: usize, workers: usize) -> Self {
        let blank = || FrameStats {
            workers: vec![WorkerFrameStats::default(); workers],
            ..FrameStats::default()
        };
        Self {
            begin: vec![WorkerStats::default(); workers],
            begin_lost: 0,
            newest: None,
            pending: (0..slots)
                .map(|_| Pending {
                    stats: blank(),
                    ..Pending::default()
                })
                .collect(),
            latest: blank(),
            has_latest: false,
        }
    }

    /// Frame `index` opened in slot `slot`: closes the period of the newest frame before it,
    /// and starts this one's.
    pub(crate) fn opened(&mut self, index: u64, slot: usize, now: &Sample<'_>) {
        if let Some(prev) = self.newest {
            self.close_period(prev, now);
        }
        let k = self.pending.len();
        let p = &mut self.pending[slot % k];
        if p.live {
            // Its period never closed (frames opened out of order from several threads):
            // publish what it has.
            p.period_done = true;
            p.arena_done = true;
            self.complete(slot % k);
        }
        let p = &mut self.pending[slot % k];
        p.live = true;
        p.period_done = false;
        p.arena_done = false;
        p.stats.index = index;
        self.newest = Some(index);
        now.read_into(&mut self.begin, &mut self.begin_lost);
    }

    /// Frame `index` (slot `slot`) retired: its arena figures are final.
    pub(crate) fn retired(&mut self, index: u64, slot: usize, arenas: &[WorkerArena], now: &Sample<'_>) {
        if self.newest == Some(index) {
            self.close_period(index, now);
            self.newest = None;
        }
        let k = self.pending.len();
        let p = &mut self.pending[slot % k];
        if !p.live || p.stats.index != index {
            return;
        }
        let (mut used, mut grown) = (0, 0);
        for (w, a) in p.stats.workers.iter_mut().zip(arenas) {
            w.arena_used = a.used();
            w.arena_high_water = a.high_water();
            w.arena_grown = a.take_grown();
            used += w.arena_used;
            grown += w.arena_grown;
        }
        p.stats.arena_used = used;
        p.stats.arena_grown = grown;
        p.arena_done = true;
        if p.period_done {
            self.complete(slot % k);
        }
    }

    fn close_period(&mut self, index: u64, now: &Sample<'_>) {
        let k = self.pending.len();
        let slot = (index % k as u64) as usize;
        let p = &mut self.pending[slot];
        if !p.live || p.stats.index != index || p.period_done {
            return;
        }
        let s = &mut p.stats;
        (s.jobs_run, s.parked_waits, s.steals) = (0, 0, 0);
        for (i, (w, begin)) in s.workers.iter_mut().zip(&self.begin).enumerate() {
            let d = now.worker(i) - *begin;
            w.jobs_run = d.jobs_run;
            w.parked_waits = d.parked_waits;
            w.steals = d.steals;
            w.idle_ns = d.idle_ns;
            w.asleep_ns = d.asleep_ns;
            s.jobs_run += d.jobs_run;
            s.parked_waits += d.parked_waits;
            s.steals += d.steals;
        }
        s.fibers_high_water = now.fibers_high_water();
        s.lost_wakeups = now.lost_wakeups().saturating_sub(self.begin_lost);
        p.period_done = true;
        if p.arena_done {
            self.complete(slot);
        }
    }

    fn complete(&mut self, slot: usize) {
        let p = &mut self.pending[slot];
        p.live = false;
        self.latest.fill_from(&p.stats);
        self.has_latest = true;
        crate::profile::frame_stats(&self.latest);
    }

    /// Copies the latest complete frame's stats into `out`; false if no frame completed yet.
    pub(crate) fn latest(&self, out: &mut FrameStats) -> bool {
        if self.has_latest {
            out.fill_from(&self.latest);
        }
        self.has_latest
    }
}

/// Reads the system's running totals at one moment (lazily, under the book's lock).
pub(crate) struct Sample<'a> {
    pub(crate) shared: &'a crate::worker::Shared,
}

impl Sample<'_> {
    fn worker(&self, i: usize) -> WorkerStats {
        self.shared.worker_stats(i)
    }

    fn fibers_high_water(&self) -> usize {
        self.shared.take_fiber_high_water()
    }

    fn lost_wakeups(&self) -> u64 {
        self.shared.dorm.rescues.load(crate::shim::Ordering::Relaxed) as u64
    }

    fn read_into(&self, begin: &mut [WorkerStats], lost: &mut u64) {
        for (i, b) in begin.iter_mut().enumerate() {
            *b = self.worker(i);
        }
        *lost = self.lost_wakeups();
        // The next period's fiber mark starts from what is in use now.
        let _ = self.fibers_high_water();
    }
}
