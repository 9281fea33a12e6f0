//! The background lane: Low work gets a share even when a frame loop never parks.
//!
//! A worker picks Low work at its global picks (one pick in `GLOBAL_PICK_PERIOD`), but a frame
//! loop whose body never parks never returns to the worker's loop, so with one worker nothing
//! else would run. So each outermost frame opening ([`Frames::frame`], [`Ctx::frame`]) first
//! runs one queued Low job on the opening fiber: from this worker's Low rings, else from the
//! shared Low injector.
//!
//! [`Frames::frame`]: crate::Frames::frame

use crate::fiber::Ctx;
use crate::job::{Affinity, Priority, StackClass};

impl Ctx {
    /// Runs one queued Low job here, if one fits this fiber; returns whether it did.
    pub(crate) fn run_one_background(&self) -> bool {
        if std::thread::panicking() {
            return false;
        }
        let fits = |class: StackClass| self.class().fits(class) && self.has_headroom(class);
        for class in [StackClass::Small, StackClass::Large] {
            if fits(class)
                && let Some(job) = self.worker().ring(Priority::Low, class).pop()
            {
                self.run(job);
                self.flush_decrements();
                return true;
            }
        }
        let job = self
            .shared()
            .injector
            .at(Priority::Low)
            .pop_first(|j| j.meta().affinity == Affinity::Any && fits(j.meta().stack));
        match job {
            Some(job) => {
                self.run(job);
                self.flush_decrements();
                true
            }
            None => false,
        }
    }
}
