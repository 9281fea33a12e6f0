//! `Semaphore`: counted permits, FIFO hand-off to waiters.

use super::{Blocker, HANDOFF, SPINS, Woken, key_of, park_with_bit};
use crate::shim::{AtomicUsize, Ordering};
use std::time::Duration;

/// Low bit of the state: some waiter may be parked. The permits are the state shifted right.
const PARKED: usize = 1;
const ONE: usize = 2;

/// A counting semaphore: at most `permits` holders at once (IO slots, streaming bandwidth,
/// GPU upload buffers). `release` hands a permit straight to the longest waiter.
///
/// ```
/// use jobsys::sync::Semaphore;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let jobs = jobsys::JobSystem::builder().workers(4).build()?;
/// let io_slots = Semaphore::new(2);
/// let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
/// jobs.run(|ctx| {
///     ctx.scope(|s| {
///         for _ in 0..16 {
///             s.spawn(|s| {
///                 io_slots.acquire(s);
///                 let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
///                 most.fetch_max(now, Ordering::SeqCst);
///                 inside.fetch_sub(1, Ordering::SeqCst);
///                 io_slots.release();
///             });
///         }
///     });
/// });
/// assert!(most.into_inner() <= 2);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Debug)]
pub struct Semaphore {
    state: AtomicUsize,
}

impl Semaphore {
    /// A semaphore with `permits` permits available.
    ///
    /// # Panics
    /// If `permits` exceeds `usize::MAX / 2`.
    pub fn new(permits: usize) -> Self {
        assert!(permits <= usize::MAX / 2, "too many permits");
        Self {
            state: AtomicUsize::new(permits * ONE),
        }
    }

    /// Permits available right now (a snapshot).
    pub fn available(&self) -> usize {
        self.state.load(Ordering::Relaxed) / ONE
    }

    /// Takes a permit if one is free, without blocking.
    pub fn try_acquire(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s >= ONE {
            match self
                .state
                .compare_exchange_weak(s, s - ONE, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Takes a permit, parking `blocker` until one is released to it.
    pub fn acquire<B: Blocker + ?Sized>(&self, blocker: &B) {
        self.acquire_until(blocker, crate::deadline::NEVER);
    }

    /// [`acquire`](Self::acquire) for at most `timeout`: returns whether a permit was taken.
    /// A release racing the timeout is never lost: its permit goes to this waiter (which then
    /// returns true) or to the next one, or back to the pool.
    pub fn acquire_timeout<B: Blocker + ?Sized>(&self, blocker: &B, timeout: Duration) -> bool {
        self.acquire_until(blocker, crate::deadline::after(timeout))
    }

    fn acquire_until<B: Blocker + ?Sized>(&self, blocker: &B, deadline: u64) -> bool {
        let mut spins = 0;
        let mut expired = false;
        loop {
            if self.try_acquire() {
                return true;
            }
            let s = self.state.load(Ordering::Relaxed);
            if s >= ONE {
                continue;
            }
            if s & PARKED == 0 && spins < SPINS {
                spins += 1;
                crate::shim::spin_loop();
                continue;
            }
            if expired || crate::deadline::passed(deadline) {
                return false;
            }
            match park_with_bit(
                blocker,
                &self.state,
                s as u64,
                PARKED as u64,
                validate,
                deadline,
            ) {
                // The releaser handed its permit to us.
                Woken::Handoff => return true,
                // One more try (a permit may have come back to the pool), then give up.
                Woken::TimedOut => expired = true,
                Woken::Retry => spins = 0,
                Woken::Raced => {}
            }
        }
    }

    /// Returns a permit: to the longest waiter if one is parked, else to the pool.
    ///
    /// # Panics
    /// If the semaphore would hold more than `usize::MAX / 2` permits.
    pub fn release(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & PARKED != 0 {
                break;
            }
            let Some(next) = s.checked_add(ONE) else {
                panic!("Semaphore::release: more than usize::MAX / 2 permits")
            };
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => s = now,
            }
        }
        crate::park::unpark_one(key_of(&self.state), |found| {
            if found.woken == 0 {
                // Stale parked bit: clear it and add the permit.
                let _ = self
                    .state
                    .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                        Some((s & !PARKED) + ONE)
                    });
                0
            } else {
                if !found.more {
                    self.state.fetch_and(!PARKED, Ordering::Release);
                }
                HANDOFF
            }
        });
    }
}

/// Park validation: no permit, parked bit set.
///
/// # Safety
/// `data` points at a live `AtomicUsize`.
unsafe fn validate(data: *const ()) -> bool {
    // SAFETY: caller contract.
    unsafe { &*data.cast::<AtomicUsize>() }.load(Ordering::Relaxed) == PARKED
}
