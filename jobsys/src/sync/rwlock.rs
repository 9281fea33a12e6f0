//! `RwLock<T>`: many readers or one writer, admitted strictly in arrival order (tickets);
//! consecutive readers share the lock.

use super::{Blocker, Contention, key_of};
use crate::shim::{AtomicU32, Ordering, SpinLock};
use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

/// The lock's bookkeeping, under a short spin lock.
struct State {
    /// Next ticket to hand out.
    next: u64,
    /// The ticket admitted next.
    serving: u64,
    /// Readers inside.
    readers: u32,
    /// A writer is inside.
    writer: bool,
}

/// A reader-writer lock whose waiters park their fiber (or block their thread).
///
/// Fairness rule: every `read` and `write` takes a ticket and is admitted in ticket order, so
/// no waiter starves and a writer is never overtaken by later readers; a run of consecutive
/// readers is admitted together and shares the lock. A release wakes every waiter of the lock
/// to re-check its turn (fine for the handful of waiters a frame has; each re-parks at once if
/// it is not its turn). Guards are `!Send`.
///
/// ```
/// use jobsys::sync::RwLock;
///
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let config = RwLock::new(16u32);
/// jobs.run(|ctx| {
///     ctx.scope(|s| {
///         s.spawn(|s| assert!(*config.read(s) >= 16));
///         s.spawn(|s| *config.write(s) = 32);
///     });
/// });
/// assert_eq!(config.into_inner(), 32);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
///
/// With the `profile` feature, a `read` or `write` that cannot enter at once reports
/// `lock_wait_begin`, `lock_obtained` and (when its guard drops) `lock_released` to the
/// [`ProfileHooks`](crate::profile::ProfileHooks), under the name given to
/// [`named`](Self::named) (`"RwLock"` by default) and the lock's address. Acquisitions that
/// enter at once report nothing.
pub struct RwLock<T: ?Sized> {
    state: SpinLock<State>,
    /// Waiters parked or about to park (a release skips the wake-up when zero).
    waiters: AtomicU32,
    /// The name the lock profile hooks report.
    #[cfg(feature = "profile")]
    name: &'static str,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` (`T: Sync`), a writer gets `&mut T` alone (`T: Send`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]; `!Send`.
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    /// Whether this acquisition waited (and was reported): its release is reported too.
    contention: Contention,
    _not_send: PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]; `!Send`.
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    /// Whether this acquisition waited (and was reported): its release is reported too.
    contention: Contention,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: shared guards only give `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

/// What a parked reader or writer re-checks under the wait list's lock.
struct Turn<'a> {
    state: &'a SpinLock<State>,
    ticket: u64,
    write: bool,
}

impl Turn<'_> {
    /// Whether this ticket may enter now; enters (updates the state) if so.
    fn try_enter(&self) -> bool {
        let mut s = self.state.lock();
        let free = if self.write {
            !s.writer && s.readers == 0
        } else {
            !s.writer
        };
        if s.serving == self.ticket && free {
            s.serving += 1;
            if self.write {
                s.writer = true;
            } else {
                s.readers += 1;
            }
            true
        } else {
            false
        }
    }

    fn may_enter(&self) -> bool {
        let s = self.state.lock();
        s.serving == self.ticket && !s.writer && (!self.write || s.readers == 0)
    }
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub fn new(value: T) -> Self {
        Self::named(value, "RwLock")
    }

    /// An unlocked lock holding `value`, reported to the lock profile hooks as `name`.
    /// Without the `profile` feature the name is not stored.
    pub fn named(value: T, name: &'static str) -> Self {
        #[cfg(not(feature = "profile"))]
        let _ = name;
        Self {
            state: SpinLock::new(State {
                next: 0,
                serving: 0,
                readers: 0,
                writer: false,
            }),
            waiters: AtomicU32::new(0),
            #[cfg(feature = "profile")]
            name,
            data: UnsafeCell::new(value),
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// The value through `&mut self`.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Shared access, parking `blocker` until every earlier ticket is served and no writer is
    /// inside.
    pub fn read<B: Blocker + ?Sized>(&self, blocker: &B) -> RwLockReadGuard<'_, T> {
        let contention = self.enter(blocker, false);
        // A reader admitted may let the next ticket in too, if it is a reader.
        self.wake_all();
        RwLockReadGuard {
            lock: self,
            contention,
            _not_send: PhantomData,
        }
    }

    /// Exclusive access, parking `blocker` until every earlier ticket is served and the lock
    /// is free.
    pub fn write<B: Blocker + ?Sized>(&self, blocker: &B) -> RwLockWriteGuard<'_, T> {
        let contention = self.enter(blocker, true);
        RwLockWriteGuard {
            lock: self,
            contention,
            _not_send: PhantomData,
        }
    }

    /// The name and address the lock profile hooks report.
    #[inline(always)]
    fn profile_id(&self) -> (&'static str, usize) {
        #[cfg(feature = "profile")]
        let name = self.name;
        #[cfg(not(feature = "profile"))]
        let name = "RwLock";
        (name, (self as *const Self).cast::<()>() as usize)
    }

    /// Takes a ticket and enters on its turn; reports the wait if it had one.
    fn enter<B: Blocker + ?Sized>(&self, blocker: &B, write: bool) -> Contention {
        let ticket = {
            let mut s = self.state.lock();
            let t = s.next;
            s.next += 1;
            t
        };
        let turn = Turn {
            state: &self.state,
            ticket,
            write,
        };
        if turn.try_enter() {
            return Contention::NONE;
        }
        let (name, addr) = self.profile_id();
        let contention = Contention::begin(blocker, name, addr);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        loop {
            // SAFETY: `validate` reads `turn`, on this stack for the whole park.
            unsafe {
                blocker.park(
                    key_of(&self.waiters),
                    validate,
                    (&turn as *const Turn<'_>).cast(),
                    crate::deadline::NEVER,
                )
            };
            if turn.try_enter() {
                break;
            }
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        contention.obtained(blocker, name, addr)
    }

    /// Wakes every waiter to re-check its turn, if any waits.
    fn wake_all(&self) {
        if self.waiters.load(Ordering::SeqCst) != 0 {
            crate::park::unpark_all(key_of(&self.waiters), 0, |_| {});
        }
    }

    fn read_unlock(&self) {
        let last = {
            let mut s = self.state.lock();
            s.readers -= 1;
            s.readers == 0
        };
        if last {
            self.wake_all();
        }
    }

    fn write_unlock(&self) {
        self.state.lock().writer = false;
        self.wake_all();
    }
}

/// Park validation: not this ticket's turn yet (checked under the wait list's lock, which
/// every release's wake-up also takes, after changing the state).
///
/// # Safety
/// `data` points at a live `Turn`.
unsafe fn validate(data: *const ()) -> bool {
    // SAFETY: caller contract.
    !unsafe { &*data.cast::<Turn<'_>>() }.may_enter()
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold a read lock: no writer has `&mut T`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        let (name, addr) = self.lock.profile_id();
        self.lock.read_unlock();
        self.contention.released(name, addr);
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the write lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold the write lock.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        let (name, addr) = self.lock.profile_id();
        self.lock.write_unlock();
        self.contention.released(name, addr);
    }
}

impl<T: ?Sized> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Copy out first: never call user formatting code under the state lock, which parked
        // waiters' validation takes.
        let (readers, writer) = {
            let s = self.state.lock();
            (s.readers, s.writer)
        };
        f.debug_struct("RwLock")
            .field("readers", &readers)
            .field("writer", &writer)
            .finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}
