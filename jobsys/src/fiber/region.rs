//! No-suspend regions: a debug guard against suspending a fiber while it holds something
//! that must not cross a wait (a `std::sync::MutexGuard`, a `RefCell` borrow, a thread-local's
//! value, a [`SpinLockGuard`](crate::sync::SpinLockGuard)). Another job would run on this
//! thread meanwhile, and in migration mode the fiber may come back on another thread.
//!
//! The depth lives in a thread-local. That is sound here, unlike runtime state: a region
//! begins and ends on one thread with no suspension in between — the very thing it checks.
//! Release builds compile the guard to nothing.

use core::marker::PhantomData;
#[cfg(debug_assertions)]
use core::panic::Location;
#[cfg(debug_assertions)]
use std::cell::Cell;

#[cfg(debug_assertions)]
thread_local! {
    /// Open regions on this thread, and where the innermost was opened.
    static OPEN: Cell<(u32, Option<&'static Location<'static>>)> = const { Cell::new((0, None)) };
}

/// A no-suspend region, open until this guard drops; from
/// [`Ctx::no_suspend`](crate::Ctx::no_suspend), and held inside every
/// [`SpinLockGuard`](crate::sync::SpinLockGuard). In debug builds a fiber that waits,
/// parks or yields while one is open on its thread panics, naming where the region was
/// opened; in release builds it is zero-sized and checks nothing. `!Send`.
#[must_use = "the region ends when the guard drops"]
pub struct NoSuspend {
    _not_send: PhantomData<*const ()>,
}

impl NoSuspend {
    /// Opens a region on this thread.
    #[track_caller]
    #[inline]
    pub(crate) fn open() -> Self {
        #[cfg(debug_assertions)]
        {
            let at = Location::caller();
            OPEN.with(|o| o.set((o.get().0 + 1, Some(at))));
        }
        Self {
            _not_send: PhantomData,
        }
    }
}

impl Drop for NoSuspend {
    #[inline]
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        OPEN.with(|o| {
            let (depth, at) = o.get();
            let depth = depth.saturating_sub(1);
            o.set((depth, at.filter(|_| depth > 0)));
        });
    }
}

impl core::fmt::Debug for NoSuspend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NoSuspend")
    }
}

/// Panics (debug builds) if a no-suspend region is open on this thread: `what` is about to
/// suspend the fiber.
#[inline]
#[track_caller]
pub(crate) fn check(what: &str) {
    #[cfg(debug_assertions)]
    if let (depth @ 1.., Some(at)) = OPEN.with(Cell::get) {
        panic!(
            "{what} inside a no-suspend region (opened at {at}, {depth} open): a fiber must not \
             suspend while it holds a lock guard, a RefCell borrow or a thread-local's value; \
             drop the guard (end the region) before waiting"
        );
    }
    #[cfg(not(debug_assertions))]
    let _ = what;
}
