//! Owner-only worker state: what only the thread running a worker's loop touches (and the
//! fibers it runs, on the same thread). Split from the shared [`Worker`](super::Worker) the
//! way tokio splits a worker's `Core` from its shared `Remote`: plain `Cell`s, so the type is
//! neither `Send` nor `Sync` and no other thread can reach it.
//!
//! The thread that runs a worker's loop owns its `WorkerCore` (a worker thread on its stack,
//! worker 0 in its `JobSystem`) and lends it to `main_loop`, which hands a pointer to it to
//! every fiber it switches into, in the resume value (`fiber::WorkerRef`). A fiber reads it
//! from there after every switch, never across one: in migration mode it may resume on
//! another worker, with another core.

use super::Shared;
use super::debt::Debt;
use core::cell::Cell;

/// The state of one worker that only its own thread touches.
pub(crate) struct WorkerCore {
    /// Picks made by this worker (the policy's tick).
    tick: Cell<u32>,
    /// xorshift state for victim choice.
    rng: Cell<u32>,
    /// Finished jobs of one counter not yet subtracted from it (see `debt.rs`).
    pub(crate) debt: Debt,
    /// This worker's index in its system.
    pub(crate) index: usize,
    /// The system whose loop last ran on this core (set by `main_loop`): a waker running here
    /// hands a fiber straight over only when the fiber is of this system and its home is
    /// `index` (see `Shared::make_ready_from`).
    shared: Cell<*const Shared>,
    /// The hand-off slot: a fiber of this worker made ready by a waker running on this worker
    /// (same thread), resumed by the loop before anything else. Owner-only: no other thread
    /// can see it, so it needs no wake and no ready-queue round trip.
    next: Cell<Option<u32>>,
    /// Fibers parked on counters (untimed waits) here that are not yet added to
    /// `Shared::parked` (see `Shared::fiber_parked`): added when this worker runs out of work,
    /// or taken back by a waker on this worker (see counter/README.md, "Accounting").
    pending_parked: Cell<u32>,
}

impl WorkerCore {
    /// The core of worker `index` (its random stream is seeded by the index).
    pub(crate) fn new(index: usize) -> Self {
        Self {
            tick: Cell::new(1),
            rng: Cell::new(0x9E37_79B9 ^ (index as u32).wrapping_mul(0x85EB_CA6B) | 1),
            debt: Debt::new(),
            index,
            shared: Cell::new(core::ptr::null()),
            next: Cell::new(None),
            pending_parked: Cell::new(0),
        }
    }

    /// Records that worker `index` of `shared` runs on this core (`main_loop`, at entry).
    #[inline]
    pub(crate) fn bind(&self, shared: &Shared) {
        self.shared.set(shared);
    }

    /// Whether this core is worker `index` of `shared`.
    #[inline]
    pub(crate) fn is(&self, shared: *const Shared, index: usize) -> bool {
        self.index == index && core::ptr::eq(self.shared.get(), shared)
    }

    /// Puts `fiber` in the hand-off slot; false (nothing changed) when it is taken.
    #[inline]
    pub(crate) fn hand_off(&self, fiber: u32) -> bool {
        if self.next.get().is_some() {
            return false;
        }
        self.next.set(Some(fiber));
        true
    }

    /// Takes the fiber in the hand-off slot.
    #[inline]
    pub(crate) fn take_handed_off(&self) -> Option<u32> {
        self.next.take()
    }

    /// Whether a fiber waits in the hand-off slot.
    #[inline]
    pub(crate) fn has_handed_off(&self) -> bool {
        self.next.get().is_some()
    }

    /// Counts a fiber parked here on a counter, to be added to `Shared::parked` later.
    #[inline]
    pub(crate) fn pend_parked(&self) {
        self.pending_parked.set(self.pending_parked.get() + 1);
    }

    /// Takes back one pending parked count for a fiber woken here; false when none is
    /// pending (the waker then un-counts it from `Shared::parked`).
    #[inline]
    pub(crate) fn unpend_parked(&self) -> bool {
        let n = self.pending_parked.get();
        if n == 0 {
            return false;
        }
        self.pending_parked.set(n - 1);
        true
    }

    /// Takes every pending parked count (to add them to `Shared::parked`).
    #[inline]
    pub(crate) fn take_pending_parked(&self) -> u32 {
        self.pending_parked.replace(0)
    }

    /// Next pseudo-random number.
    pub(crate) fn next_random(&self) -> u32 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.set(x);
        x
    }

    /// The tick the next pick will have, without using it.
    #[inline]
    pub(crate) fn peek_tick(&self) -> u32 {
        self.tick.get().wrapping_add(1)
    }

    /// Uses up and returns the next pick's tick (see `sched::Policy::order`).
    #[inline]
    pub(crate) fn next_tick(&self) -> u32 {
        let t = self.tick.get().wrapping_add(1);
        self.tick.set(t);
        t
    }
}
