//! Statistics cells: always std's atomics, whatever the backend. Statistics are not part of any
//! synchronisation protocol — nothing reads them to decide anything — so they are neither
//! model-checked under loom nor steps of the simulation (a step would change the schedules
//! that seeds replay). Every access is `Relaxed`: a reader on another thread sees each cell's
//! value as of a moment, not a consistent snapshot of several.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A monotonic count (from zero: `default()`) written by one thread, its owner, and read by any.
///
/// The owner adds with a load and a store, not a locked read-modify-write: no other thread
/// writes the cell, so no increment can be lost, and the hot path pays a plain store.
#[derive(Debug, Default)]
pub(crate) struct StatCounter(AtomicU64);

impl StatCounter {
    /// Adds `n`. Only the cell's owner thread may call it (two writers would lose counts).
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// The count now (any thread).
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A high-water mark that any thread may raise.
#[derive(Debug, Default)]
pub(crate) struct StatMax(AtomicUsize);

impl StatMax {
    /// A mark at zero.
    pub(crate) const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    /// Raises the mark to `n` if it is lower: one load when it is not (the common case), a
    /// read-modify-write only when it is.
    #[inline]
    pub(crate) fn raise(&self, n: usize) {
        if n > self.0.load(Ordering::Relaxed) {
            self.0.fetch_max(n, Ordering::Relaxed);
        }
    }

    /// The mark, replaced by `now` (the level at the moment of the call, the start of the
    /// next period).
    pub(crate) fn take(&self, now: usize) -> usize {
        self.0.swap(now, Ordering::Relaxed).max(now)
    }
}
