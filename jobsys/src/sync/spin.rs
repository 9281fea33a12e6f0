//! `SpinLock<T>`: for very short critical sections; never parks.

use crate::shim::{AtomicBool, Ordering};
use core::cell::UnsafeCell;
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
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: one holder at a time gets `&mut T`; `T: Send` lets it be used from that thread.
unsafe impl<T: ?Sized + Send> Send for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for SpinLock<T> {}

/// Proof of holding a [`SpinLock`]; unlocks on drop. `!Send`.
pub struct SpinLockGuard<'a, T: ?Sized> {
    lock: &'a SpinLock<T>,
    /// Debug builds: a fiber that waits while holding the lock panics instead of making every
    /// other worker spin until it comes back. Also makes the guard `!Send`.
    _region: crate::fiber::NoSuspend,
}

// SAFETY: a shared guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for SpinLockGuard<'_, T> {}

/// Spins between thread yields while the lock stays taken; picked.
const SPINS_BEFORE_YIELD: u32 = 64;

impl<T> SpinLock<T> {
    crate::shim::loom_const! {
        /// An unlocked spin lock holding `value`.
        pub fn new(value: T) -> Self {
            Self {
                locked: AtomicBool::new(false),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Locks, spinning (and now and then yielding the thread) while another holder has it.
    #[track_caller]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        let mut spins = 0;
        loop {
            if !self.locked.load(Ordering::Relaxed)
                && self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return SpinLockGuard {
                    lock: self,
                    _region: crate::fiber::NoSuspend::open(),
                };
            }
            spins += 1;
            if spins % SPINS_BEFORE_YIELD == 0 {
                crate::shim::thread::yield_now();
            } else {
                crate::shim::spin_loop();
            }
        }
    }

    /// Locks if free, without spinning.
    #[track_caller]
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| SpinLockGuard {
                lock: self,
                _region: crate::fiber::NoSuspend::open(),
            })
    }

    /// The value through `&mut self`.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: ?Sized> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold the lock.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
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
