//! The background lane: Low work gets a share even when a frame loop never parks.
//!
//! A worker picks Low work at its global picks (one pick in `GLOBAL_PICK_PERIOD`), but a frame
//! loop whose body never parks never returns to the worker's loop, so with one worker nothing
//! else would run. So each outermost frame opening ([`Frames::frame`], [`Ctx::frame`]) first
//! lets one queued Low job start: it takes one from this worker's Low rings, else from the
//! shared Low injector, moves it to this worker's inbox (the first place the worker looks) and
//! yields. The worker starts the job on a fiber of its own and resumes the loop as soon as
//! that job finished or parked: a background job that waits never holds up the frame loop.
//!
//! [`Frames::frame`]: crate::Frames::frame

use crate::fiber::Ctx;
use crate::job::{Affinity, Priority, StackClass};

impl Ctx {
    /// Lets one queued Low job run on this worker before continuing, if one is queued here or
    /// in the Low injector.
    pub(crate) fn yield_to_background(&self) {
        if std::thread::panicking() {
            return; // `yield_now` would return at once: leave the job where it is
        }
        let worker = self.worker();
        let job = [StackClass::Small, StackClass::Large]
            .into_iter()
            .find_map(|class| worker.ring(Priority::Low, class).pop())
            .or_else(|| {
                self.shared()
                    .injector
                    .at(Priority::Low)
                    .pop_first(|j| j.meta().affinity == Affinity::Any)
            });
        if let Some(job) = job {
            // The inbox comes first in a worker's order (after High work elsewhere at a global
            // pick), and is never stolen: the yield below runs this job, or the next pick does.
            self.shared().push_pinned(self.worker_index(), job);
            self.yield_now();
        }
    }
}
