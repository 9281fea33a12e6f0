//! ⑥ WAKE — the way back from waiting to running, and from sleeping to working.
//!
//! Receives fibers whose counter reached their target (from the counter stage) and pushes them
//! on their home worker's ready queue; receives "work was published" notes from submitters and
//! wakes a sleeping worker. The sleep protocol and its lost-wakeup argument are in
//! `wake/README.md`.

use crate::sync::{Ordering, fence};
use crate::worker::Shared;

impl Shared {
    /// Called after publishing work anyone may run: wakes one sleeping worker, if any sleeps.
    ///
    /// The SeqCst fence pairs with the one in [`sleep`](Self::sleep): either this load sees the
    /// sleeper's increment, or the sleeper's re-check sees our work.
    #[inline]
    pub(crate) fn notify_one(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_any();
        }
    }

    /// Called by a worker after publishing work on its own ring or in the injector: wakes one
    /// sleeping worker if one is seen asleep, without the SeqCst fence.
    ///
    /// Skipping the fence can miss a worker that is announcing its sleep at this very moment
    /// (both sides' loads may miss the other's store). That costs parallelism, never progress:
    /// the publishing worker is awake, never sleeps while its own rings or the injector hold
    /// work (its own sleep re-checks them after its fence), and so runs the work itself if
    /// nobody else does; and its next publication or steal with work left sees the sleeper
    /// and wakes it. Submissions that no awake worker will run — from foreign threads, to a
    /// pinned inbox, or a woken fiber — use the fenced [`notify_one`](Self::notify_one) or
    /// [`wake_worker`](Self::wake_worker).
    #[inline]
    pub(crate) fn notify_local(&self) {
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_any();
        }
    }

    #[cold]
    fn wake_any(&self) {
        for w in self.workers.iter() {
            if w.sleeping.load(Ordering::Relaxed) && self.claim_sleeper(w) {
                self.sleepers.fetch_sub(1, Ordering::AcqRel);
                crate::profile::wake(w.index);
                if let Some(t) = w.thread.get() {
                    t.unpark();
                }
                return;
            }
        }
    }

    /// Wakes worker `index` if it sleeps (work or a ready fiber was published for it alone).
    #[inline]
    pub(crate) fn wake_worker(&self, index: usize) {
        fence(Ordering::SeqCst);
        let w = &self.workers[index];
        if w.sleeping.load(Ordering::Relaxed) && self.claim_sleeper(w) {
            self.sleepers.fetch_sub(1, Ordering::AcqRel);
            crate::profile::wake(index);
            if let Some(t) = w.thread.get() {
                t.unpark();
            }
        }
    }

    /// Takes the right to wake `w` (one waker wins per sleep). Bumps the wake epoch first, so
    /// shutdown's quiescence scan notices any wake that overlaps it.
    #[inline]
    fn claim_sleeper(&self, w: &crate::worker::Worker) -> bool {
        self.wake_epoch.fetch_add(1, Ordering::SeqCst);
        w.sleeping.swap(false, Ordering::AcqRel)
    }

    /// Wakes every worker (shutdown).
    pub(crate) fn wake_all(&self) {
        for i in 0..self.workers.len() {
            self.wake_worker(i);
        }
    }

    /// Whether worker `index` could find something to do (a read-only look, no popping).
    pub(crate) fn has_work(&self, index: usize) -> bool {
        let me = &self.workers[index];
        !me.no_ready()
            || !me.yielded.is_empty()
            || !me.pinned.is_empty()
            || !me.rings_empty()
            || !self.injector.is_empty()
            || self
                .workers
                .iter()
                .any(|w| !w.rings_empty() || !w.ready_any.is_empty())
    }

    /// Puts worker `index` to sleep until a waker clears its `sleeping` flag.
    ///
    /// Announce (`sleeping = true`, `sleepers += 1`), SeqCst fence, look for work and for
    /// `done()` (found: un-announce and return), then park until `sleeping` is false. A
    /// submitter publishes, fences, then reads `sleepers` (see [`notify_one`](Self::notify_one)).
    pub(crate) fn sleep(&self, index: usize, done: &dyn Fn() -> bool) {
        let w = &self.workers[index];
        w.sleeping.store(true, Ordering::SeqCst);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        crate::fault::inject(crate::fault::Site::BeforeSleep);
        if self.has_work(index) || done() || self.exit.load(Ordering::SeqCst) {
            if w.sleeping.swap(false, Ordering::AcqRel) {
                self.sleepers.fetch_sub(1, Ordering::AcqRel);
            }
            return;
        }
        w.settled.store(true, Ordering::SeqCst);
        crate::profile::sleep_begin(index);
        while w.sleeping.load(Ordering::Acquire) {
            std::thread::park();
        }
        crate::profile::sleep_end(index);
        w.settled.store(false, Ordering::SeqCst);
    }
}
