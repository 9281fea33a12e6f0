//! `Mutex<T>`: a short spin, then the waiter parks. An unlock frees the lock and wakes one
//! waiter, who competes for it again (the releaser may barge back in first); a waiter barged
//! past [`MAX_BARGES`] times gets the lock by FIFO hand-off. [`Fairness::Fifo`] always hands
//! off.

use super::{Blocker, Contention, HANDOFF, SPINS, Woken, key_of, park_with_bit};
use crate::shim::{AtomicU32, Ordering};
use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

const LOCKED: u32 = 1;
/// Some waiter may be parked on this mutex (set by a parker with a CAS before it parks, checked
/// by its validation, cleared by the unlocker that takes the last waiter).
const PARKED: u32 = 2;
/// One starving waiter: the bits above [`PARKED`] count the waiters barged past
/// [`MAX_BARGES`] times that do not hold the lock yet. While the count is not zero, every unlock
/// with a parked waiter hands the lock over (FIFO). A waiter adds itself once it has been
/// barged past the bound (before it parks again) and takes itself off once it holds the lock
/// ([`Starving`]). A count, not a bit: with one bit, the first of two starving waiters to get
/// the lock cleared it while the second still waited, and the next unlock let a locker barge
/// past the second.
const STARVER: u32 = 4;
/// The starving-waiter count.
const STARVING: u32 = !(LOCKED | PARKED);

/// How many times a waiter may be woken and lose the lock to a barging locker before it asks
/// for hand-off ([`STARVING`]). Under loom, 1: the models reach the forced hand-off.
#[cfg(not(loom))]
pub(crate) const MAX_BARGES: u32 = 16;
/// Under loom, 1: the models reach the forced hand-off.
#[cfg(loom)]
pub(crate) const MAX_BARGES: u32 = 1;

/// The token an unfair unlock hands the waiter it wakes: the lock is free, compete for it.
const COMPETE: usize = 0;

/// How a [`Mutex`] unlock treats a parked waiter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fairness {
    /// The default (as `parking_lot`'s mutex): an unlock frees the lock and wakes the longest
    /// waiter, who then competes for it; a running locker (the releaser itself, typically)
    /// may take it first, and the woken waiter that loses parks again. Under contention this
    /// keeps the lock with whoever is running instead of paying a park/unpark per unlock.
    /// Unfairness is bounded: a waiter barged past a fixed number of times (16) counts itself
    /// starving, and from then on unlocks hand the lock over in arrival order until every
    /// starving waiter has had it.
    #[default]
    Barging,
    /// Every unlock with a parked waiter hands the lock directly to the longest waiter (FIFO):
    /// the lock stays held across the hand-off, so nobody can barge in. No waiter is ever
    /// overtaken, at the price of a park/unpark per contended unlock.
    Fifo,
}

/// A mutual-exclusion lock whose waiters park their fiber (or block their thread) instead of
/// blocking the worker.
///
/// `lock` spins briefly, then parks. By default ([`Fairness::Barging`]) an unlock (dropping
/// the guard) frees the lock and wakes the longest waiter, who competes for it with whoever
/// else locks meanwhile; a waiter that loses more than a bounded number of times gets the lock
/// by hand-off, so no waiter starves. [`Mutex::fair`] (or [`MutexGuard::unlock_fair`] for one
/// unlock) hands the lock to the longest waiter directly (FIFO). The guard is `!Send`: it stays on the
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
    state: AtomicU32,
    /// Whether every unlock hands off ([`Fairness::Fifo`]).
    fifo: bool,
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
            state: AtomicU32::new(0),
            fifo: false,
            #[cfg(feature = "profile")]
            name,
            data: UnsafeCell::new(value),
        }
    }

    /// An unlocked mutex holding `value` that hands the lock to the longest waiter on every
    /// contended unlock ([`Fairness::Fifo`]).
    pub fn fair(value: T) -> Self {
        Self::new(value).with_fairness(Fairness::Fifo)
    }

    /// This mutex with its unlocks following `fairness` (combine with [`named`](Self::named):
    /// `Mutex::named(v, "assets").with_fairness(Fairness::Fifo)`).
    pub fn with_fairness(mut self, fairness: Fairness) -> Self {
        self.fifo = fairness == Fairness::Fifo;
        self
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

    /// Locks if nobody holds the lock, without blocking. (A lock freed by a barging unlock
    /// while its woken waiter has not taken it yet is free: `try_lock` takes it.)
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(MutexGuard {
                        mutex: self,
                        contention: Contention::NONE,
                        _not_send: PhantomData,
                    });
                }
                Err(now) => s = now,
            }
        }
        None
    }

    /// The state word (loom models: no bit left behind).
    #[cfg(all(test, loom))]
    pub(crate) fn state_bits(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }

    /// How this mutex's unlocks treat a parked waiter.
    pub fn fairness(&self) -> Fairness {
        if self.fifo {
            Fairness::Fifo
        } else {
            Fairness::Barging
        }
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
        // Times this waiter was woken (or its park refused) and found the lock taken again.
        let mut barged = 0u32;
        // Counted in STARVING once barged past the bound, until this waiter holds the lock.
        let mut starving = Starving(None);
        loop {
            let s = self.state.load(Ordering::Relaxed);
            // Free: take it, whether or not others are parked (barging; an unlock only frees
            // the lock while no waiter is starving, or when nobody is parked).
            if s & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    break;
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
                Woken::Handoff => break,
                Woken::Retry | Woken::TimedOut => {
                    spins = 0;
                    barged = barged.saturating_add(1);
                    if barged >= MAX_BARGES && starving.0.is_none() {
                        // From now on every unlock that finds us parked hands over.
                        self.state.fetch_add(STARVER, Ordering::Relaxed);
                        starving.0 = Some(&self.state);
                    }
                }
                Woken::Raced => {}
            }
        }
        // We hold the lock: if we were starving, `starving` drops here and unlocks may barge
        // again (unless another waiter is still counted).
    }

    /// Unlocks: frees the lock and wakes a waiter to compete for it, or (`fair`, or a
    /// starving waiter) hands it to the first waiter.
    #[inline]
    fn unlock(&self, fair: bool) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.unlock_slow(fair || self.fifo);
    }

    #[cold]
    fn unlock_slow(&self, fair: bool) {
        self.unlock_slow_then(fair, || {});
    }

    /// [`unlock_slow`](Self::unlock_slow), running `then` once the state word is updated but
    /// before the waiter is woken (tests: a barging relock that deterministically beats the
    /// woken waiter).
    #[inline(always)]
    fn unlock_slow_then(&self, fair: bool, then: impl FnOnce()) {
        crate::park::unpark_one(key_of(&self.state), |found| {
            // Under the wait list's lock: no waiter can publish or validate meanwhile, but a
            // parker may still be setting bits (PARKED, STARVING) with its CAS, so update by CAS.
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                // The starving count is the waiters' own: kept as it is.
                let starving = s & STARVING;
                let parked = if found.more { PARKED } else { 0 };
                let (next, token) = if found.woken == 0 {
                    // The parked bit was stale (a parker validated out, or woke and won the
                    // lock): plain unlock. A starving waiter that is not parked takes the free
                    // lock, or parks and is handed it.
                    (starving, COMPETE)
                } else if fair || starving != 0 {
                    // Keep LOCKED: the woken waiter owns the lock now (FIFO hand-off).
                    (LOCKED | parked | starving, HANDOFF)
                } else {
                    // Free the lock; the woken waiter competes for it (and parks again, setting
                    // PARKED, if someone took it first).
                    (parked, COMPETE)
                };
                match self.state.compare_exchange_weak(
                    s,
                    next,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        then();
                        return token;
                    }
                    Err(now) => s = now,
                }
            }
        });
    }
}

/// Park validation: still locked with the parked bit set (checked under the wait-list lock,
/// where the unlocker's hand-off or wake also runs).
///
/// # Safety
/// `data` points at a live `AtomicU32`.
unsafe fn validate(data: *const ()) -> bool {
    // SAFETY: caller contract.
    let s = unsafe { &*data.cast::<AtomicU32>() }.load(Ordering::Relaxed);
    s & (LOCKED | PARKED) == LOCKED | PARKED
}

/// A waiter's place in the starving count ([`STARVING`]), taken off when it drops: once the
/// waiter holds the lock, or if its wait unwinds.
struct Starving<'a>(Option<&'a AtomicU32>);

impl Drop for Starving<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.0 {
            state.fetch_sub(STARVER, Ordering::Relaxed);
        }
    }
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

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Unlocks, handing the lock to the longest waiter if one is parked (FIFO), whatever the
    /// mutex's [`Fairness`]: for a release after which a waiter must not be overtaken.
    pub fn unlock_fair(guard: Self) {
        let guard = core::mem::ManuallyDrop::new(guard);
        guard.release(true);
    }

    /// The unlock of `drop` and `unlock_fair`, with its profile report.
    #[inline(always)]
    fn release(&self, fair: bool) {
        let (name, addr) = self.mutex.profile_id();
        self.mutex.unlock(fair);
        self.contention.released(name, addr);
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.release(false);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::ThisThread;
    use std::sync::atomic::{AtomicBool, Ordering as O};

    /// Yields until `m`'s one waiter is parked on it (true) or has finished (false).
    fn waiter_parked(m: &Mutex<u32>, done: &AtomicBool) -> bool {
        loop {
            if done.load(O::SeqCst) {
                return false;
            }
            if crate::park::waiters_on(key_of(&m.state)) == 1 {
                return true;
            }
            std::thread::yield_now();
        }
    }

    /// The holder unlocks and takes the lock straight back while its parked waiter is being
    /// woken (in the unlock, after the word is updated and before the wake: the barge always
    /// comes first), each time the waiter is parked again. The first `MAX_BARGES` unlocks let
    /// the holder barge; the waiter, barged that many times, parks starving, and the next
    /// unlock hands it the lock: the holder's relock fails.
    #[test]
    fn a_waiter_barged_past_the_bound_gets_the_lock_by_hand_off() {
        let m = Mutex::new(0u32);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            core::mem::forget(m.lock(&ThisThread));
            s.spawn(|| {
                *m.lock(&ThisThread) += 1;
                done.store(true, O::SeqCst);
            });
            let mut barges = 0;
            // Bounded, so a failure ends the test (after handing the lock over) instead of
            // barging forever.
            while barges <= MAX_BARGES {
                assert!(
                    waiter_parked(&m, &done),
                    "the waiter cannot finish: we hold the lock"
                );
                let mut relocked = false;
                // We hold the lock (its guard was forgotten): unlock it by hand.
                m.unlock_slow_then(false, || {
                    relocked = m.try_lock().map(core::mem::forget).is_some()
                });
                if !relocked {
                    break;
                }
                barges += 1;
            }
            if barges > MAX_BARGES {
                m.unlock(true); // let the waiter finish, then fail
            }
            assert_eq!(
                barges, MAX_BARGES,
                "the releaser barged this many times before the waiter got the lock"
            );
            // The waiter has the lock: wait for it like any locker.
            assert_eq!(*m.lock(&ThisThread), 1);
        });
        assert!(done.load(O::SeqCst));
        assert_eq!(
            m.state.load(Ordering::Relaxed),
            0,
            "no bit or count left behind"
        );
    }

    /// Two waiters barged past the bound at once: the lock must be handed over until *both*
    /// have had it. One worker, so the schedule is deterministic: the holder (the root job)
    /// wakes both parked waiters per round with barging unlocks and relocks each time, so each
    /// waiter is woken, loses, and parks again; after `MAX_BARGES` rounds both park starving.
    /// The holder's next unlock hands the lock to the first; when that one unlocks, the second
    /// is still waiting (starving), so the releaser's immediate relock must fail. (It used to
    /// succeed: the first waiter cleared the one starving bit both had set, and its unlock
    /// freed the lock for anyone to barge past the second.)
    #[test]
    fn a_starving_waiter_is_not_barged_past_when_another_starving_waiter_gets_the_lock() {
        let jobs = crate::JobSystem::builder().workers(1).build().unwrap();
        let m = Mutex::new(0u32);
        let done = [AtomicBool::new(false), AtomicBool::new(false)];
        // Relocks that succeeded while the other waiter still waited.
        let barged_past_starving = std::sync::atomic::AtomicU32::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                core::mem::forget(m.lock(s));
                let parked = |n| {
                    while crate::park::waiters_on(key_of(&m.state)) != n {
                        s.yield_now();
                    }
                };
                for i in 0..2 {
                    let (m, done, barged) = (&m, &done, &barged_past_starving);
                    s.spawn(move |s| {
                        *m.lock(s) += 1;
                        // The releaser barges straight back in, if it can.
                        if let Some(g) = m.try_lock() {
                            if !done[1 - i].load(O::SeqCst) {
                                barged.fetch_add(1, O::SeqCst);
                            }
                            drop(g);
                        }
                        done[i].store(true, O::SeqCst);
                    });
                    parked(i + 1);
                }
                for _ in 0..MAX_BARGES {
                    // Wake both (each unlock wakes the longest waiter), barging each time.
                    for _ in 0..2 {
                        let mut relocked = false;
                        m.unlock_slow_then(false, || {
                            relocked = m.try_lock().map(core::mem::forget).is_some()
                        });
                        assert!(relocked, "nobody is starving yet: the holder barges");
                    }
                    parked(2);
                }
                // Both are starving: this unlock hands over, and so must the next.
                m.unlock(false);
            });
        });
        assert!(done.iter().all(|d| d.load(O::SeqCst)));
        assert_eq!(m.into_inner(), 2);
        assert_eq!(
            barged_past_starving.load(O::SeqCst),
            0,
            "a starving waiter was barged past"
        );
    }

    /// Plain threads and fibers (on 1, 2 and 4 workers) hammer one mutex, mixing barging
    /// drops and `unlock_fair`, some fibers holding the guard across a yield. The count is
    /// exact, and once everyone is done the state word is clear: no parked bit or starving
    /// count is left behind by the last waiter (a stale count would make every later unlock
    /// take the slow path and hand over).
    #[test]
    fn threads_and_fibers_mixing_fair_and_barging_unlocks_leave_no_bit_behind() {
        const THREADS: usize = 2;
        const JOBS: usize = 24;
        const EACH: usize = 200;
        for fairness in [Fairness::Barging, Fairness::Fifo] {
            for workers in [1, 2, 4] {
                let jobs = crate::JobSystem::builder()
                    .workers(workers)
                    .build()
                    .unwrap();
                let m = Mutex::new(0usize).with_fairness(fairness);
                std::thread::scope(|t| {
                    for _ in 0..THREADS {
                        t.spawn(|| {
                            for i in 0..EACH {
                                let mut g = m.lock(&ThisThread);
                                *g += 1;
                                if i % 4 == 0 {
                                    MutexGuard::unlock_fair(g);
                                }
                            }
                        });
                    }
                    jobs.run(|ctx| {
                        ctx.scope(|s| {
                            for _ in 0..JOBS {
                                s.spawn(|s| {
                                    for i in 0..EACH {
                                        let mut g = m.lock(s);
                                        let v = *g;
                                        if i % 16 == 0 {
                                            s.yield_now(); // held across a switch
                                        }
                                        *g = v + 1;
                                        if i % 3 == 0 {
                                            MutexGuard::unlock_fair(g);
                                        }
                                    }
                                });
                            }
                        });
                    });
                });
                assert_eq!(jobs.lost_wakeups(), 0);
                assert_eq!(
                    m.state.load(Ordering::Relaxed),
                    0,
                    "{fairness:?}, {workers} workers"
                );
                assert_eq!(
                    m.into_inner(),
                    (THREADS + JOBS) * EACH,
                    "{fairness:?}, {workers} workers"
                );
            }
        }
    }

    /// A holder that panics unlocks as its guard drops (no poisoning): its parked waiter gets
    /// the lock, and the state word ends clear.
    #[test]
    fn a_panicking_holder_unlocks_for_its_parked_waiter() {
        let m = Mutex::new(0u32);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let guard = m.lock(&ThisThread);
            let waiter = s.spawn(|| {
                *m.lock(&ThisThread) += 1;
                done.store(true, O::SeqCst);
            });
            assert!(waiter_parked(&m, &done));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _held = guard;
                panic!("holder panics");
            }));
            assert!(r.is_err());
            waiter.join().unwrap();
            assert_eq!(*m.lock(&ThisThread), 1, "the waiter got the lock");
        });
        assert!(done.load(O::SeqCst));
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
    }

    /// `unlock_fair` with nobody parked (and with a stale parked bit, as a waiter that left
    /// leaves it) frees the lock like a drop.
    #[test]
    fn unlock_fair_without_waiters_frees_the_lock() {
        let m = Mutex::new(0u32);
        MutexGuard::unlock_fair(m.lock(&ThisThread));
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
        let g = m.lock(&ThisThread);
        m.state.fetch_or(PARKED, Ordering::Relaxed); // a parker that validated out
        MutexGuard::unlock_fair(g);
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
        assert!(m.try_lock().is_some());
    }

    /// A FIFO unlock with a parked waiter hands the lock over: a relock by the releaser right
    /// after it comes second (it sees the waiter's write), every time.
    /// `unlock_fair`: unlock through [`MutexGuard::unlock_fair`], else by dropping the guard.
    fn fifo_unlock_hands_over(m: &Mutex<u32>, unlock_fair: bool) {
        for round in 1..=8 {
            let done = AtomicBool::new(false);
            std::thread::scope(|s| {
                let guard = m.lock(&ThisThread);
                s.spawn(|| {
                    *m.lock(&ThisThread) += 1;
                    done.store(true, O::SeqCst);
                });
                assert!(waiter_parked(m, &done));
                if unlock_fair {
                    MutexGuard::unlock_fair(guard);
                } else {
                    drop(guard);
                }
                assert_eq!(*m.lock(&ThisThread), round, "the waiter had the lock first");
            });
        }
    }

    #[test]
    fn a_fair_mutex_hands_the_lock_to_its_parked_waiter() {
        let m = Mutex::fair(0u32);
        assert_eq!(m.fairness(), Fairness::Fifo);
        fifo_unlock_hands_over(&m, false);
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn unlock_fair_hands_the_lock_to_the_parked_waiter() {
        let m = Mutex::new(0u32);
        assert_eq!(m.fairness(), Fairness::Barging);
        fifo_unlock_hands_over(&m, true);
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
    }
}
