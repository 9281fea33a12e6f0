//! `SpinLock<T>`: for very short critical sections; never parks. The runtime's own spin lock
//! (`shim/spin.rs`) with a no-suspend region in its guard.

use crate::fiber::NoSuspend;
use crate::shim::SpinGuard;
use core::fmt;
use core::ops::{Deref, DerefMut};

/// A test-and-test-and-set spin lock for sections of tens of nanoseconds (a counter bump, a
/// list splice). It never parks: waiters spin, yielding the thread now and then. Never wait
/// (on a counter, a channel, another lock) while holding the guard — every contender would spin
/// until the holder's fiber came back. For anything longer, use [`Mutex`](super::Mutex).
///
/// ```
/// let hits = jobsys::sync::SpinLock::new(0u32);
/// *hits.lock() += 1;
/// assert_eq!(hits.into_inner(), 1);
/// ```
pub struct SpinLock<T: ?Sized> {
    inner: crate::shim::SpinLock<T>,
}

/// Proof of holding a [`SpinLock`]; unlocks on drop. `!Send`.
pub struct SpinLockGuard<'a, T: ?Sized> {
    guard: SpinGuard<'a, T>,
    /// Debug builds: a fiber that waits while holding the lock panics instead of making every
    /// other worker spin until it comes back. Also makes the guard `!Send`.
    _region: NoSuspend,
}

// SAFETY: a shared guard only gives `&T`; `NoSuspend` is `!Sync` only to be `!Send`.
unsafe impl<T: ?Sized + Sync> Sync for SpinLockGuard<'_, T> {}

impl<T> SpinLock<T> {
    crate::shim::loom_const! {
        /// An unlocked spin lock holding `value`.
        pub fn new(value: T) -> Self {
            Self {
                inner: crate::shim::SpinLock::new(value),
            }
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Locks, spinning (and now and then yielding the thread) while another holder has it.
    #[track_caller]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        SpinLockGuard {
            guard: self.inner.lock(),
            _region: NoSuspend::open(),
        }
    }

    /// Locks if free, without spinning.
    #[track_caller]
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        // Not in a closure: `#[track_caller]` does not reach into one, and the region must
        // name the caller's line.
        let guard = self.inner.try_lock()?;
        Some(SpinLockGuard {
            guard,
            _region: NoSuspend::open(),
        })
    }

    /// The value through `&mut self`.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T: ?Sized> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("SpinLock").field("data", &&*g).finish(),
            None => f
                .debug_struct("SpinLock")
                .field("data", &"<locked>")
                .finish(),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for SpinLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
