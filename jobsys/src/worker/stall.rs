//! Stall reports: fibers parked on `jobsys::sync` primitives that nothing releases.
//!
//! The deadlock abort (`Shared::fiber_parked`) cannot fire while a fiber is parked on a
//! primitive: a plain thread may still release it. But a `Barrier` waited on by fewer
//! participants than it was built for, or an `Event` nobody sets, stalls the system all the
//! same. So when every worker has been asleep with such fibers parked, no timer armed and no
//! wake-up in between for [`STALL_AFTER`], the first worker whose sleep watchdog notices
//! prints, once per stall, which jobs wait and on what. It never aborts: the stall may still
//! end (a thread may set the event).
//!
//! The same holds for a class of fibers run dry: jobs of one stack class queued while every
//! fiber that could run them is parked (a chain of nested `Large` waits deeper than the large
//! fibers, with small fibers free). Small jobs, or a job a foreign thread submits, could still
//! wake one, so this is no deadlock abort either; it is reported the same way.
//!
//! Cost: a few atomic loads at each watchdog wake of a sleeping worker (every 20 ms while
//! asleep); nothing on the hot paths, no extra thread.

use super::Shared;
use crate::job::StackClass;
use crate::shim::{AtomicBool, AtomicU64, Ordering};

/// How long the system must be stalled before the report is printed.
const STALL_AFTER: u64 = 1_000_000_000;

/// The current quiet spell, as the watchdogs saw it.
pub(crate) struct StallWatch {
    /// The wake epoch when the spell began; any wake since ends the spell.
    epoch: AtomicU64,
    /// When the spell began (`deadline::now`), or `NEVER` outside one.
    since: AtomicU64,
    /// The spell was reported (reset when it ends).
    reported: AtomicBool,
}

impl StallWatch {
    pub(crate) fn new() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            since: AtomicU64::new(crate::deadline::NEVER),
            reported: AtomicBool::new(false),
        }
    }
}

impl Shared {
    /// Called by a sleeping worker each time its park returns: starts, continues or ends the
    /// quiet spell, and reports it once when it has lasted [`STALL_AFTER`]. Approximate by
    /// design (its reads are not one snapshot): it only decides whether to print.
    pub(crate) fn check_stall(&self) {
        let watch = &self.stall;
        let on_sync = self.parked.load(Ordering::Relaxed) >> 32;
        let all_asleep = self.workers.iter().enumerate().all(|(i, w)| {
            w.bed.sleeping.load(Ordering::Relaxed)
                // Worker 0 outside `run` is no worker: it runs nothing, so it is not missing.
                || (i == 0 && !self.in_run.load(Ordering::Relaxed))
        });
        if (on_sync == 0 && self.starved_class().is_none()) || !all_asleep || self.timers.armed() {
            if watch.since.load(Ordering::Relaxed) != crate::deadline::NEVER {
                watch.since.store(crate::deadline::NEVER, Ordering::Relaxed);
                watch.reported.store(false, Ordering::Relaxed);
            }
            return;
        }
        let epoch = self.dorm.epoch.load(Ordering::SeqCst) as u64;
        let now = crate::deadline::now();
        let since = watch.since.load(Ordering::Relaxed);
        if since == crate::deadline::NEVER || watch.epoch.swap(epoch, Ordering::Relaxed) != epoch {
            // A new spell (or a wake ended the last one).
            watch.since.store(now, Ordering::Relaxed);
            watch.reported.store(false, Ordering::Relaxed);
            return;
        }
        if now.saturating_sub(since) >= STALL_AFTER && !watch.reported.swap(true, Ordering::Relaxed)
        {
            self.report_stall(now - since);
        }
    }

    /// A stack class with jobs queued on some worker's rings and no free fiber to run them.
    fn starved_class(&self) -> Option<StackClass> {
        [StackClass::Large, StackClass::Small]
            .into_iter()
            .find(|&class| {
                !self.fibers.has_free(class)
                    && (0..self.workers.len()).any(|i| self.queued_for(i, class))
            })
    }

    #[cold]
    fn report_stall(&self, quiet_ns: u64) {
        if let Some(class) = self.starved_class() {
            let (small, small_size, large, large_size) = self.fibers.shape();
            eprintln!(
                "jobsys: stall: no progress for {} ms: every worker is asleep and {class:?} jobs \
                 are queued, but no fiber that can run them is free ({small} small of \
                 {small_size} bytes, {large} large of {large_size} bytes). Fibers out of the \
                 pool:\n{}A chain of nested waits of {class:?} jobs deeper than those fibers can \
                 host looks like this: raise the fiber count of that class \
                 (Builder::small_fibers / large_fibers), or lower \
                 Builder::large_inline_headroom / inline_headroom so that more levels run \
                 inline. (Small jobs or a foreign thread could still end the stall, so the \
                 system goes on waiting.)",
                quiet_ns / 1_000_000,
                self.fibers.report(true),
            );
        }
        let (n, list) = self.fibers.sync_waits();
        if n == 0 {
            return;
        }
        eprintln!(
            "jobsys: stall: no progress for {} ms: every worker is asleep and {n} fiber(s) are \
             parked on jobsys::sync primitives that nothing has released (a plain thread still \
             could, so this is no deadlock abort; the system goes on waiting):\n{list}\
             Check that every Barrier has as many participants as it was built for, and that \
             whatever sets, releases or sends to these primitives runs.",
            quiet_ns / 1_000_000
        );
    }
}
