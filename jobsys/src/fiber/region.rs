//! No-suspend regions: a debug guard against suspending a fiber while it holds something
//! that must not cross a wait (a `std::sync::MutexGuard`, a `RefCell` borrow, a thread-local's
//! value, a [`SpinLockGuard`](crate::sync::SpinLockGuard)). Another job would run on this
//! thread meanwhile, and in migration mode the fiber may come back on another thread.
//!
//! The depth lives in a thread-local. That is sound here, unlike runtime state: a region
//! begins and ends on one thread with no suspension in between — the very thing it checks.
//! Release builds compile the guard to nothing.
//!
//! The depth is per thread, and a fiber's regions are its own: jobs run inline on the same
//! fiber (a waiter's own children, `Hint::Inline`) inherit the regions of the job that runs
//! them — rightly, since a child that suspends suspends its parent's stack too — but when a
//! fiber suspends anyway (a counter wait, which never unwinds before its target is reached,
//! see `Ctx::wait_core`), its open regions are set aside and restored when it resumes, so
//! other fibers on the thread do not inherit them ([`set_aside`]). A guard leaked with
//! `mem::forget` would leave the thread's depth raised for good; the fiber loop closes what a
//! finished job left open ([`close_leaked`]).

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

/// Every access to [`OPEN`] goes through this one non-inlined function. A fiber may switch
/// threads inside the functions that call these accessors (the fiber loop, a wait in migration
/// mode), and the compiler may keep a thread-local's address from before a switch within one
/// function; a call that is never inlined computes it afresh on the thread that runs it.
#[cfg(debug_assertions)]
#[inline(never)]
fn with_open<R>(f: impl FnOnce(&Cell<(u32, Option<&'static Location<'static>>)>) -> R) -> R {
    OPEN.with(f)
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
    /// Whether regions are checked: true when jobsys itself was built with debug assertions
    /// (what decides, not the profile of the crate that uses it). When false, the guard is
    /// zero-sized and a wait inside a region goes unreported.
    pub const CHECKED: bool = cfg!(debug_assertions);

    /// Opens a region on this thread.
    #[track_caller]
    #[inline]
    pub(crate) fn open() -> Self {
        #[cfg(debug_assertions)]
        {
            let at = Location::caller();
            with_open(|o| o.set((o.get().0 + 1, Some(at))));
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
        with_open(|o| {
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

/// The regions a fiber had open when it suspended anyway (see [`set_aside`]).
#[derive(Clone, Copy)]
pub(crate) struct SetAside {
    #[cfg(debug_assertions)]
    open: (u32, Option<&'static Location<'static>>),
}

/// Takes this thread's open regions off it while the calling fiber is suspended; give them
/// back with [`restore`] when it resumes (on the same thread, or another in migration mode —
/// the regions belong to the fiber).
#[inline]
pub(crate) fn set_aside() -> SetAside {
    SetAside {
        #[cfg(debug_assertions)]
        open: with_open(|o| o.replace((0, None))),
    }
}

/// Gives a resumed fiber back the regions [`set_aside`] took.
#[inline]
pub(crate) fn restore(saved: SetAside) {
    #[cfg(debug_assertions)]
    with_open(|o| o.set(saved.open));
    #[cfg(not(debug_assertions))]
    let _ = saved;
}

/// Called by the fiber loop after each top-level job: closes regions the job left open (a
/// guard leaked with `mem::forget`), so they do not leak into unrelated jobs on this thread.
#[inline]
pub(crate) fn close_leaked() {
    #[cfg(debug_assertions)]
    with_open(|o| o.set((0, None)));
}

/// Panics (debug builds) if a no-suspend region is open on this thread: `what` is about to
/// suspend the fiber (or, for a counter wait, just did — see `Ctx::wait_core`).
#[inline]
#[track_caller]
pub(crate) fn check(what: &str) {
    #[cfg(debug_assertions)]
    if let (depth @ 1.., Some(at)) = with_open(Cell::get) {
        panic!(
            "{what} inside a no-suspend region (opened at {at}, {depth} open): a fiber must not \
             suspend while it holds a lock guard, a RefCell borrow or a thread-local's value; \
             drop the guard (end the region) before waiting"
        );
    }
    #[cfg(not(debug_assertions))]
    let _ = what;
}
