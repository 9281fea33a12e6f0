//! The crate's one spin lock: a test-and-test-and-set lock for the few short critical sections
//! in the runtime (a wait-list bucket, the injector list, a scope's arena, a timer table), and
//! the body of the public [`jobsys::sync::SpinLock`](crate::sync::SpinLock), which wraps it.
//! Held for tens of nanoseconds and never across a fiber switch: a guard alive across a wait
//! would make every other worker spin until the holder's fiber came back.
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
    pub(crate) struct SpinLock<T: ?Sized>(loom::sync::Mutex<T>);

    impl<T> SpinLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap()
        }
    }

    impl<T: ?Sized> SpinLock<T> {
        pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
            self.0.lock().unwrap()
        }

        pub(crate) fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
            self.0.try_lock().ok()
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap()
        }
    }
}

#[cfg(not(loom))]
mod spinning {
    use crate::shim::{AtomicBool, Ordering, spin_loop};
    use core::cell::UnsafeCell;
    use core::marker::PhantomData;
    use core::ops::{Deref, DerefMut};

    /// Spin iterations between `yield_now` calls when the lock stays contended; picked, tune with data.
    const SPINS_BEFORE_YIELD: u32 = 64;

    /// Mutual exclusion by spinning. `T` is only reachable through a [`SpinGuard`] (or
    /// `&mut self`).
    pub(crate) struct SpinLock<T: ?Sized> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: the lock hands out `&mut T` to one thread at a time (acquire/release on `locked`),
    // so sharing the lock is as safe as sending the `T` between threads.
    unsafe impl<T: ?Sized + Send> Sync for SpinLock<T> {}
    // SAFETY: owning the lock owns the `T`.
    unsafe impl<T: ?Sized + Send> Send for SpinLock<T> {}

    impl<T> SpinLock<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }

        pub(crate) fn into_inner(self) -> T {
            self.value.into_inner()
        }
    }

    impl<T: ?Sized> SpinLock<T> {
        #[inline]
        pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_contended();
            }
            SpinGuard::new(self)
        }

        /// Locks if free, without spinning.
        #[inline]
        pub(crate) fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
            self.locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .ok()
                .map(|_| SpinGuard::new(self))
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.value.get_mut()
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

    impl<T: ?Sized> core::fmt::Debug for SpinLock<T> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("SpinLock").finish_non_exhaustive()
        }
    }

    /// Proof that the lock is held; releases it on drop.
    pub(crate) struct SpinGuard<'a, T: ?Sized> {
        lock: &'a SpinLock<T>,
        /// Shared guards on several threads give `&T` on each: `Sync` only for `T: Sync` (as
        /// `&mut T` is).
        _marker: PhantomData<&'a mut T>,
    }

    impl<'a, T: ?Sized> SpinGuard<'a, T> {
        /// # Invariant
        /// Only made by `lock` / `try_lock`, right after they set `locked`.
        fn new(lock: &'a SpinLock<T>) -> Self {
            Self {
                lock,
                _marker: PhantomData,
            }
        }
    }

    impl<T: ?Sized> Deref for SpinGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard exists only while `locked` is held through it (`new`'s
            // invariant), so no `&mut T` exists elsewhere.
            unsafe { &*self.lock.value.get() }
        }
    }

    impl<T: ?Sized> DerefMut for SpinGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: as in `deref`, and `&mut self` makes this the only borrow through the guard.
            unsafe { &mut *self.lock.value.get() }
        }
    }

    impl<T: ?Sized> Drop for SpinGuard<'_, T> {
        fn drop(&mut self) {
            self.lock.locked.store(false, Ordering::Release);
        }
    }
}
