//! ⑥ WAKE — the way back from waiting to running, and from sleeping to working.
//!
//! Receives fibers whose counter reached their target (from the counter stage) and pushes them
//! on their home worker's ready queue; receives "work was published" notes from submitters and
//! wakes a sleeping worker. The sleep protocol and its lost-wakeup argument are in
//! `wake/README.md`.

#[cfg(all(test, loom))]
mod loom_tests;
mod protocol;

pub(crate) use protocol::{Bed, Dorm, Slept};

use crate::job::StackClass;
use crate::shim::{Ordering, fence};
use crate::worker::Shared;

/// How long a sleeping worker parks before its watchdog look (see `Dorm::sleep`): a lost
/// wake-up would cost two of these instead of a hang. Long enough that a worker asleep
/// between 16 ms frames gets up at most once per frame for nothing.
const SLEEP_WATCHDOG: std::time::Duration = std::time::Duration::from_millis(20);

impl Shared {
    /// Called after publishing work that no awake worker is sure to run (a foreign
    /// submission, work left in the injector or in a victim's ring): wakes one sleeping
    /// worker, if any sleeps. Fenced (see [`Dorm::anyone_asleep`]).
    #[inline]
    pub(crate) fn notify_one(&self) {
        if self.dorm.anyone_asleep() {
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
    /// nobody else does; and its next publication, or a steal that leaves work behind, sees
    /// the sleeper and wakes it. Submissions that no awake worker will run — from foreign
    /// threads, to a pinned inbox, or a woken fiber — use the fenced
    /// [`notify_one`](Self::notify_one) or [`wake_worker`](Self::wake_worker).
    #[inline]
    pub(crate) fn notify_local(&self) {
        if self.dorm.anyone_asleep_unfenced() {
            self.wake_any();
        }
    }

    #[cold]
    fn wake_any(&self) {
        // Counted while claiming, for the watchdog (see `Dorm::waking`).
        self.dorm.waking.fetch_add(1, Ordering::SeqCst);
        let claimed = self.workers.iter().find(|w| self.dorm.claim(&w.bed));
        self.dorm.waking.fetch_sub(1, Ordering::SeqCst);
        if let Some(w) = claimed {
            self.unpark(w.index);
        }
    }

    /// Wakes worker `index` if it sleeps (work or a ready fiber was published for it alone).
    #[inline]
    pub(crate) fn wake_worker(&self, index: usize) {
        fence(Ordering::SeqCst);
        if self.dorm.claim(&self.workers[index].bed) {
            self.unpark(index);
        }
    }

    fn unpark(&self, index: usize) {
        crate::profile::wake(index);
        if let Some(t) = self.workers[index].thread.get() {
            crate::shim::thread::unpark_worker(t);
        }
    }

    /// A frame opened (`Ctx::frame`, `Frames::frame`; closed by [`close_frame`] when it
    /// retires): idle workers spin instead of sleeping while one is open, and opening the
    /// first wakes every sleeper.
    ///
    /// [`close_frame`]: Self::close_frame
    pub(crate) fn open_frame_counted(&self) {
        // Counted as a waker on its way from the opening to the wakes, so that a sleeper whose
        // watchdog sees the frame open before our wake reaches it counts no lost wake-up.
        self.dorm.waking.fetch_add(1, Ordering::SeqCst);
        if self.frames_open.fetch_add(1, Ordering::SeqCst) == 0 {
            // Pairs with the sleeper's fence: either it sees the frame and stays up, or we see
            // its announcement and wake it.
            self.wake_all();
        }
        self.dorm.waking.fetch_sub(1, Ordering::SeqCst);
    }

    /// A frame retired (see [`open_frame_counted`](Self::open_frame_counted)).
    pub(crate) fn close_frame(&self) {
        self.frames_open.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes every worker (shutdown).
    pub(crate) fn wake_all(&self) {
        for i in 0..self.workers.len() {
            self.wake_worker(i);
        }
    }

    /// Whether worker `index` could find something to do (a read-only look, no popping).
    ///
    /// Queued jobs count only where a fiber of their class is free: a worker cannot start a
    /// `Large` job while every large fiber is out of the pool, so it sleeps instead of spinning
    /// on it — after marking the class wanted, so that the release of such a fiber wakes the
    /// sleepers (see `FiberPool::want`). A stall of such jobs is reported (`worker/stall.rs`).
    pub(crate) fn has_work(&self, index: usize) -> bool {
        let me = &self.workers[index];
        !me.no_ready()
            || !me.yielded.is_empty()
            || self.workers.iter().any(|w| !w.ready_any.is_empty())
            || [StackClass::Small, StackClass::Large]
                .into_iter()
                .any(|class| self.queued_for(index, class) && self.fibers.want(class))
    }

    /// Whether jobs of `class` are queued where worker `index` may take them: its pinned
    /// inbox, any worker's rings, or the injector.
    pub(crate) fn queued_for(&self, index: usize, class: StackClass) -> bool {
        self.workers[index].pinned.any(|j| j.meta().stack == class)
            || self.workers.iter().any(|w| !w.class_rings_empty(class))
            || self.injector.any(|j| j.meta().stack == class)
    }

    /// Puts worker `index` to sleep until a waker clears its `sleeping` flag (the handshake
    /// is [`Dorm::sleep`]): first it looks for work, `done()` and `exit` once more after
    /// announcing itself.
    pub(crate) fn sleep(&self, index: usize, done: &dyn Fn() -> bool) {
        // What a waker owes this sleeper a wake for. An open frame counts as work: a worker
        // that decided to sleep just before a frame opened sees it here (the opener fences
        // before waking sleepers) and stays up.
        let stranded = || {
            self.has_work(index) || self.in_frame() || done() || self.exit.load(Ordering::SeqCst)
        };
        // Before sleeping it also looks at the timers; the watchdog does not: a due timer is
        // not owed a wake (the sleeper's park is no longer than the earliest deadline, and it
        // gets up by itself for it), so a sleeper that finds one is not a lost wake-up.
        let look = || stranded() || self.timers.due();
        let park = || {
            crate::profile::sleep_begin(index);
            // No longer than the earliest armed timer: no worker may sleep through a timeout.
            crate::sim::waits_on(|| format!("worker {index} asleep: no work"));
            crate::shim::thread::park_sleeper(
                self.timers.sleep_for(SLEEP_WATCHDOG),
                self.timers.armed(),
            );
            crate::sim::done_waiting();
            crate::profile::sleep_end(index);
            // Woken or not, this is where a stalled system is noticed (see `worker/stall.rs`).
            self.check_stall();
            self.timers.due()
        };
        if self
            .dorm
            .sleep(&self.workers[index].bed, look, stranded, park)
            == Slept::Rescued
            && !self.waker_on_its_way()
        {
            self.dorm.rescues.fetch_add(1, Ordering::Relaxed);
            // Loud where it can be afforded: a lost wake-up is a jobsys bug. Written straight
            // to stderr, allocating nothing (a false rescue under load must not break a
            // program's zero-allocation frames).
            #[cfg(debug_assertions)]
            {
                use core::fmt::Write as _;
                let mut err = crate::worker::StderrWriter::lock();
                let _ = write!(
                    err,
                    "jobsys: LOST WAKE-UP: the sleep watchdog got worker {index} up: "
                )
                .and_then(|()| self.write_stranded(&mut err, index, done))
                .and_then(|()| {
                    writeln!(
                        err,
                        " (nobody woke it; counted in JobSystem::lost_wakeups; please report)"
                    )
                });
            }
        }
    }

    /// Whether a waker is between its publication and its last touch (a fiber's or pinned
    /// job's waker, counted per worker, or one of the cold paths counted in `Dorm::waking`):
    /// a sleeper that sees its work before its wake was not forgotten.
    fn waker_on_its_way(&self) -> bool {
        self.dorm.waking.load(Ordering::SeqCst) != 0
            || self.workers.iter().any(|w| w.parked_and_in_flight().1 != 0)
    }

    /// Writes what the watchdog found for worker `index` (for the lost wake-up's message).
    #[cfg(debug_assertions)]
    fn write_stranded(
        &self,
        out: &mut impl core::fmt::Write,
        index: usize,
        done: &dyn Fn() -> bool,
    ) -> core::fmt::Result {
        let me = &self.workers[index];
        let own_rings: usize = me.rings.iter().flatten().map(|r| r.len()).sum();
        let other_rings: usize = self
            .workers
            .iter()
            .filter(|w| w.index != index)
            .flat_map(|w| w.rings.iter().flatten())
            .map(|r| r.len())
            .sum();
        let ready_any: usize = self.workers.iter().map(|w| w.ready_any.len()).sum();
        write!(
            out,
            "ready fibers {}, ready-anywhere fibers {ready_any} (all workers), yielded {}, \
             pinned jobs {}, own ring jobs {own_rings}, other workers' ring jobs {other_rings}, \
             injector jobs {}, frame open {}, done {}, exit {}, fibers parked here {}, timer due {}",
            me.ready.len(),
            me.yielded.len(),
            me.pinned.len(),
            self.injector.len(),
            self.in_frame(),
            done(),
            self.exit.load(Ordering::SeqCst),
            me.parked_here(),
            self.timers.due(),
        )
    }
}
