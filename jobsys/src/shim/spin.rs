//! A test-and-test-and-set spin lock for the few short critical sections in the runtime
//! (a counter wait bucket, the injector list, a scope's arena). Held for tens of nanoseconds and
//! never across a fiber switch: a guard alive across a wait would make every other worker spin
//! until the holder's fiber came back.
//!
//! Under loom the lock is modelled as loom's `Mutex`: the same mutual exclusion without the busy
//! loop, which would blow up the models' state space. The protocols built on the lock are what
//! the models check.

#[cfg(not(loom))]
pub(crate) use spinning::{SpinGuard, SpinLock};

#[cfg(loom)]
pub(crate) use modelled::{SpinGuard, SpinLock};

#[cfg(loom)]
mod modelled {
    /// loom's `MutexGuard` under the spin lock guard's name.
    pub(crate) type SpinGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    /// loom's `Mutex` under the spin lock's name and API.
    #[derive(Debug)]
    pub(crate) struct SpinLock<T>(loom::sync::Mutex<T>);

    impl<T> SpinLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap()
        }
    }
}

#[cfg(not(loom))]
mod spinning {
    use crate::shim::{AtomicBool, Ordering, UnsafeCell, spin_loop};
    use core::ops::{Deref, DerefMut};

    /// Spin iterations between `yield_now` calls when the lock stays contended; picked, tune with data.
    const SPINS_BEFORE_YIELD: u32 = 64;

    /// Mutual exclusion by spinning. `T` is only reachable through a [`SpinGuard`].
    #[derive(Debug)]
    pub(crate) struct SpinLock<T> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: the lock hands out `&mut T` to one thread at a time (acquire/release on `locked`),
    // so sharing the lock is as safe as sending the `T` between threads.
    unsafe impl<T: Send> Sync for SpinLock<T> {}
    // SAFETY: owning the lock owns the `T`.
    unsafe impl<T: Send> Send for SpinLock<T> {}

    impl<T> SpinLock<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }

        #[inline]
        pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_contended();
            }
            SpinGuard { lock: self }
        }

        #[cold]
        fn lock_contended(&self) {
            let mut spins = 0u32;
            loop {
                while self.locked.load(Ordering::Relaxed) {
                    spins += 1;
                    if spins.is_multiple_of(SPINS_BEFORE_YIELD) {
                        crate::shim::thread::yield_now();
                    }
                    spin_loop();
                }
                if self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
    }

    /// Proof that the lock is held; releases it on drop.
    pub(crate) struct SpinGuard<'a, T> {
        lock: &'a SpinLock<T>,
    }

    impl<T> Deref for SpinGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard exists only while `locked` is held by this thread, so no `&mut T`
            // exists elsewhere.
            self.lock.value.with(|p| unsafe { &*p })
        }
    }

    impl<T> DerefMut for SpinGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: as in `deref`, and `&mut self` makes this the only borrow through the guard.
            self.lock.value.with_mut(|p| unsafe { &mut *p })
        }
    }

    impl<T> Drop for SpinGuard<'_, T> {
        fn drop(&mut self) {
            self.lock.locked.store(false, Ordering::Release);
        }
    }
}
