//! The batched-decrement debt: finished jobs a worker has not yet subtracted from their
//! counter.
//!
//! Consecutive completions of one counter on one worker are subtracted together — one RMW on
//! the counter's line per run of jobs instead of one per job — and the debt is paid before
//! this worker starts a job of another counter, before any fiber on it waits, yields or goes
//! idle (so before the worker can sleep, and before any switch: a fiber never carries debt to
//! another worker), when the run of the same counter reaches 2^16 jobs, and at once when
//! paying would reach the target of a fiber or thread already parked on it. A counter owed a
//! decrement cannot reach zero, so its owner cannot free it while we hold the pointer.

use super::WorkerCore;
use crate::counter::CounterCore;
use core::cell::Cell;

/// Most completions of one counter a worker batches before paying them.
const PENDING_MAX: u32 = 1 << 16;

/// Decrements a worker owes one counter: `n` finished jobs of `counter`. Part of the
/// owner-only [`WorkerCore`](super::WorkerCore).
pub(crate) struct Debt {
    /// The counter owed (null when `n` is 0).
    counter: Cell<*const CounterCore>,
    /// Jobs finished and not yet subtracted.
    n: Cell<u32>,
}

impl Debt {
    pub(crate) const fn new() -> Self {
        Self {
            counter: Cell::new(core::ptr::null()),
            n: Cell::new(0),
        }
    }

    /// Records that a job of `counter` finished (see the module docs for when the debt is
    /// paid). `core` is the worker state this debt is part of: its payments hand the waiters
    /// they wake on this worker straight to it (see `CounterCore::sub_on`).
    #[inline]
    pub(crate) fn complete(&self, counter: &CounterCore, core: &WorkerCore) {
        let n = self.n.get();
        let (owed, now) = if core::ptr::eq(self.counter.get(), counter) && n < PENDING_MAX {
            self.n.set(n + 1);
            (None, n + 1)
        } else {
            let owed = (self.counter.get(), n);
            self.counter.set(counter);
            self.n.set(1);
            (Some(owed), 1)
        };
        if let Some((old, n)) = owed
            && n > 0
        {
            // SAFETY: `old` is owed `n` decrements (recorded by `complete` for jobs whose
            // decrement it took over), so it has not reached zero and its owner has not freed it.
            unsafe { (*old).sub_on(n, Some(core)) };
        }
        // A parked waiter whose target this batch reaches is woken now, not at the next
        // payment point (a join whose `b` was stolen, a wait on the last job of a batch).
        if counter.would_wake(now) {
            self.flush(core);
        }
    }

    /// Pays the debt (`core`: as for [`complete`](Self::complete)).
    #[inline]
    pub(crate) fn flush(&self, core: &WorkerCore) {
        let n = self.n.replace(0);
        let counter = self.counter.replace(core::ptr::null());
        if n > 0 {
            // SAFETY: as in `complete`: a counter owed decrements has not reached zero.
            unsafe { (*counter).sub_on(n, Some(core)) };
        }
    }

    /// Whether `counter` is at or below `target` once this debt is paid (without paying it).
    #[inline]
    pub(crate) fn done_counting_debt(&self, counter: &CounterCore, target: u32) -> bool {
        let owed = if core::ptr::eq(self.counter.get(), counter) {
            self.n.get()
        } else {
            0
        };
        counter.value().saturating_sub(owed) <= target
    }

    /// Whether something is owed to a counter other than `owner`.
    #[inline]
    pub(crate) fn owes_other(&self, owner: *const CounterCore) -> bool {
        !core::ptr::eq(self.counter.get(), owner) && self.n.get() > 0
    }
}
