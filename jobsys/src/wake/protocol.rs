//! The sleep/wake handshake on its own, so that the scheduler and the loom models
//! (`wake/loom_tests.rs`) run the same code. The argument is in `wake/README.md`.

use crate::shim::{AtomicBool, AtomicUsize, Ordering, fence};
use crossbeam_utils::CachePadded;

/// One worker's sleep state.
pub(crate) struct Bed {
    /// True from the moment the worker commits to sleeping until a waker (or the worker
    /// itself) clears it; whoever flips it to false owns the `sleepers` decrement.
    pub(crate) sleeping: CachePadded<AtomicBool>,
    /// True while the worker is parked after having found no work (shutdown's quiescence
    /// proof reads it).
    pub(crate) settled: AtomicBool,
}

impl Bed {
    pub(crate) fn new() -> Self {
        Self {
            sleeping: CachePadded::new(AtomicBool::new(false)),
            settled: AtomicBool::new(false),
        }
    }
}

/// How a [`Dorm::sleep`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slept {
    /// The look after the announcement found work: it did not park.
    No,
    /// It parked, and got up because a waker claimed it, or by itself for a due timer.
    Woken,
    /// The watchdog got it up: twice in a row it found work (`stranded`) while still flagged
    /// asleep. A lost wake-up, unless a waker was still on its way (the caller decides).
    Rescued,
}

/// What all the beds of one system share.
pub(crate) struct Dorm {
    /// Workers with `sleeping` set.
    pub(crate) sleepers: CachePadded<AtomicUsize>,
    /// Bumped before every wake of a sleeping worker (see `Shared::drained`).
    pub(crate) epoch: CachePadded<AtomicUsize>,
    /// Sleeps the watchdog ended because work was waiting that nobody woke the sleeper for
    /// (lost wake-ups: always 0 unless the protocol has a bug). Counted by `Shared::sleep`.
    pub(crate) rescues: AtomicUsize,
    /// Wakers between their publication and their claim on the cold paths (`Shared::wake_any`,
    /// a frame's opening): a sleeper that finds work while one is in there may just be about
    /// to be claimed (a waker descheduled between its fence and its claim for two watchdog
    /// periods, which an oversubscribed machine can do), so its rescue is not counted as a
    /// lost wake-up. (Wakers of fibers and pinned jobs count themselves per worker, in
    /// `Worker::parked_here`.)
    pub(crate) waking: AtomicUsize,
}

impl Dorm {
    pub(crate) fn new() -> Self {
        Self {
            sleepers: CachePadded::new(AtomicUsize::new(0)),
            epoch: CachePadded::new(AtomicUsize::new(0)),
            rescues: AtomicUsize::new(0),
            waking: AtomicUsize::new(0),
        }
    }

    /// The sleeper's side: announce, fence, `look` for work (read-only; true means found),
    /// and either cancel or `park` until a waker clears `bed.sleeping` (`park` may return
    /// spuriously; it returns true when the sleeper must get up by itself — a timer of a
    /// timed wait is due). `stranded` is the watchdog's look: work that a waker owed this
    /// sleeper a wake for (`look` without what the sleeper gets up for by itself, such as due
    /// timers).
    pub(crate) fn sleep(
        &self,
        bed: &Bed,
        look: impl Fn() -> bool,
        stranded: impl Fn() -> bool,
        mut park: impl FnMut() -> bool,
    ) -> Slept {
        // Count first, flag second: a waker can only claim a flag that is already counted, so
        // `sleepers` never reads below the number of claimable sleepers. (Flag first let a
        // waker claim a half-announced worker and decrement before its increment; another
        // waker then read 0 with a third worker fully asleep: a lost wake-up that the loom
        // model `loom_two_jobs_wake_two_sleepers` found.)
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // A swap rather than a store: the same `xchg` on x86 as a SeqCst store, and loom 0.7.3
        // mis-orders a plain store racing an RMW on the same atomic (tokio-rs/loom#254), which
        // the wakers' `swap(false)` is.
        bed.sleeping.swap(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        crate::fault::inject(crate::fault::Site::BeforeSleep);
        if look() {
            if bed.sleeping.swap(false, Ordering::AcqRel) {
                self.sleepers.fetch_sub(1, Ordering::AcqRel);
            }
            return Slept::No;
        }
        bed.settled.store(true, Ordering::SeqCst);
        // Watchdog: `park` may return without a wake (the scheduler's parks time out). A
        // sleeper that twice in a row finds work while still flagged asleep was not woken for
        // it — a lost wake-up, which the protocol above rules out — so it counts a rescue and
        // gets up. Once is not enough: a waker may be between its fence and its claim.
        let mut saw_work = false;
        let mut slept = Slept::Woken;
        while bed.sleeping.load(Ordering::Acquire) {
            if park() {
                // An alarm, not a wake: get up (unless a waker claimed us meanwhile).
                if bed.sleeping.swap(false, Ordering::AcqRel) {
                    self.sleepers.fetch_sub(1, Ordering::AcqRel);
                }
                break;
            }
            if !bed.sleeping.load(Ordering::Acquire) {
                break;
            }
            if !stranded() {
                saw_work = false;
            } else if !saw_work {
                saw_work = true;
            } else {
                if bed.sleeping.swap(false, Ordering::AcqRel) {
                    self.sleepers.fetch_sub(1, Ordering::AcqRel);
                    slept = Slept::Rescued;
                }
                break;
            }
        }
        bed.settled.store(false, Ordering::SeqCst);
        slept
    }

    /// The waker's side, after publishing work: whether some worker may be asleep. The SeqCst
    /// fence pairs with the one in [`sleep`](Self::sleep): either this load sees the sleeper's
    /// announcement, or the sleeper's look sees the published work.
    #[inline]
    pub(crate) fn anyone_asleep(&self) -> bool {
        fence(Ordering::SeqCst);
        self.sleepers.load(Ordering::Relaxed) != 0
    }

    /// [`anyone_asleep`](Self::anyone_asleep) without the fence: may miss a worker announcing
    /// its sleep right now (see `Shared::notify_local` for when that is acceptable).
    #[inline]
    pub(crate) fn anyone_asleep_unfenced(&self) -> bool {
        self.sleepers.load(Ordering::Relaxed) != 0
    }

    /// After [`anyone_asleep`](Self::anyone_asleep) (or a fence of the caller's): takes the
    /// right to wake `bed` if it sleeps. At most one waker wins per sleep; the winner must
    /// unpark the bed's thread. Bumps the epoch first, so shutdown's quiescence scan notices
    /// any wake that overlaps it. A plain load first skips beds that are visibly awake
    /// without writing their line.
    #[inline]
    pub(crate) fn claim(&self, bed: &Bed) -> bool {
        if !bed.sleeping.load(Ordering::Relaxed) {
            return false;
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if bed.sleeping.swap(false, Ordering::AcqRel) {
            self.sleepers.fetch_sub(1, Ordering::AcqRel);
            true
        } else {
            false
        }
    }
}
