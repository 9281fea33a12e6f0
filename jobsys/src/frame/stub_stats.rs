//! TEMPORARY stand-in for worker/stats.rs (being written on another branch).
#![allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub jobs_run: u64,
    pub parked_waits: u64,
    pub steals: u64,
    pub idle_ns: u64,
    pub asleep_ns: u64,
}
impl core::ops::Sub for WorkerStats {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            jobs_run: self.jobs_run.saturating_sub(o.jobs_run),
            parked_waits: self.parked_waits.saturating_sub(o.parked_waits),
            steals: self.steals.saturating_sub(o.steals),
            idle_ns: self.idle_ns.saturating_sub(o.idle_ns),
            asleep_ns: self.asleep_ns.saturating_sub(o.asleep_ns),
        }
    }
}
impl crate::worker::Shared {
    pub(crate) fn worker_stats(&self, _i: usize) -> WorkerStats {
        WorkerStats::default()
    }
    pub(crate) fn take_fiber_high_water(&self) -> usize {
        0
    }
}
