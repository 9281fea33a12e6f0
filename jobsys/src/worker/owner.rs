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
}

impl WorkerCore {
    /// The core of worker `index` (its random stream is seeded by the index).
    pub(crate) fn new(index: usize) -> Self {
        Self {
            tick: Cell::new(1),
            rng: Cell::new(0x9E37_79B9 ^ (index as u32).wrapping_mul(0x85EB_CA6B) | 1),
            debt: Debt::new(),
        }
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
