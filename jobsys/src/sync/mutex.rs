//! `Mutex<T>`: a short spin, then the waiter parks; FIFO hand-off on unlock.

use super::{Blocker, Contention, HANDOFF, SPINS, Woken, key_of, park_with_bit};
use crate::shim::{AtomicU8, Ordering};
use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

const LOCKED: u8 = 1;
/// Some waiter may be parked on this mutex (set by a parker with a CAS before it parks, checked
/// by its validation, cleared by the unlocker that takes the last waiter).
const PARKED: u8 = 2;

/// A mutual-exclusion lock whose waiters park their fiber (or block their thread) instead of
/// blocking the worker.
///
/// `lock` spins briefly, then parks; `unlock` (dropping the guard) hands the lock to the
/// longest waiter directly (FIFO), so no waiter starves. The guard is `!Send`: it stays on the
/// fiber that locked — it may be held across a wait (the fiber keeps the lock while parked and
/// resumes on the same worker, unless the system opted into migration), unlike a
/// `std::sync::MutexGuard`.
///
/// No poisoning: a job that panics while holding the guard unlocks it as the guard drops.
///
/// With the `profile` feature, a `lock` that finds the mutex held reports `lock_wait_begin`,
/// `lock_obtained` and (when its guard drops) `lock_released` to the
/// [`ProfileHooks`](crate::profile::ProfileHooks), under the name given to
/// [`named`](Self::named) (`"Mutex"` by default) and the mutex's address. Uncontended locks
/// report nothing.
pub struct Mutex<T: ?Sized> {
    state: AtomicU8,
    /// The name the lock profile hooks report.
    #[cfg(feature = "profile")]
    name: &'static str,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives one holder at a time `&mut T`; `T: Send` lets the value be used from
// whichever thread holds it.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above; sharing the mutex only shares access through the lock.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Proof of holding a [`Mutex`]; unlocks on drop. `!Send`.
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Whether this acquisition waited (and was reported): its release is reported too.
    contention: Contention,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, which is fine to share if `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Self::named(value, "Mutex")
    }

    /// An unlocked mutex holding `value`, reported to the lock profile hooks as `name`.
    /// Without the `profile` feature the name is not stored.
    pub fn named(value: T, name: &'static str) -> Self {
        #[cfg(not(feature = "profile"))]
        let _ = name;
        Self {
            state: AtomicU8::new(0),
            #[cfg(feature = "profile")]
            name,
            data: UnsafeCell::new(value),
        }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking `blocker` (a job's `Ctx`/`Scope`, or [`ThisThread`](super::ThisThread))
    /// while another holder has it.
    pub fn lock<B: Blocker + ?Sized>(&self, blocker: &B) -> MutexGuard<'_, T> {
        let contention = if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(blocker)
        } else {
            Contention::NONE
        };
        MutexGuard {
            mutex: self,
            contention,
            _not_send: PhantomData,
        }
    }

    /// Locks if nobody holds the lock (and nobody waits for it), without blocking.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| MutexGuard {
                mutex: self,
                contention: Contention::NONE,
                _not_send: PhantomData,
            })
    }

    /// The value through `&mut self`: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The name and address the lock profile hooks report.
    #[inline(always)]
    fn profile_id(&self) -> (&'static str, usize) {
        #[cfg(feature = "profile")]
        let name = self.name;
        #[cfg(not(feature = "profile"))]
        let name = "Mutex";
        (name, (self as *const Self).cast::<()>() as usize)
    }

    #[cold]
    fn lock_slow<B: Blocker + ?Sized>(&self, blocker: &B) -> Contention {
        let (name, addr) = self.profile_id();
        let contention = Contention::begin(blocker, name, addr);
        self.wait_for_lock(blocker);
        contention.obtained(blocker, name, addr)
    }

    fn wait_for_lock<B: Blocker + ?Sized>(&self, blocker: &B) {
        let mut spins = 0;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            // Free and nobody queued: take it (waiters, if any, are served by hand-off).
            if s & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if s & PARKED == 0 && spins < SPINS {
                spins += 1;
                crate::shim::spin_loop();
                continue;
            }
            match park_with_bit(
                blocker,
                &self.state,
                s.into(),
                PARKED.into(),
                validate,
                crate::deadline::NEVER,
            ) {
                // The unlocker left the lock held for us.
                Woken::Handoff => return,
                Woken::Retry | Woken::TimedOut => spins = 0,
                Woken::Raced => {}
            }
        }
    }

    /// Unlocks: hands the lock to the first waiter if there is one.
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.unlock_slow();
    }

    #[cold]
    fn unlock_slow(&self) {
        crate::park::unpark_one(key_of(&self.state), |found| {
            if found.woken == 0 {
                // The parked bit was stale (a parker validated out): plain unlock.
                self.state.store(0, Ordering::Release);
                0
            } else {
                // Keep LOCKED: the woken waiter owns the lock now (FIFO hand-off).
                let s = if found.more { LOCKED | PARKED } else { LOCKED };
                self.state.store(s, Ordering::Release);
                HANDOFF
            }
        });
    }
}

/// Park validation: still locked with the parked bit set (checked under the wait-list lock,
/// where the unlocker's hand-off also runs).
///
/// # Safety
/// `data` points at a live `AtomicU8`.
unsafe fn validate(data: *const ()) -> bool {
    // SAFETY: caller contract.
    unsafe { &*data.cast::<AtomicU8>() }.load(Ordering::Relaxed) == LOCKED | PARKED
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold the lock.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        let (name, addr) = self.mutex.profile_id();
        self.mutex.unlock();
        self.contention.released(name, addr);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("data", &&*g).finish(),
            None => f.debug_struct("Mutex").field("data", &"<locked>").finish(),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}
