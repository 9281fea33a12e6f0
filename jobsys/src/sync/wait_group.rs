//! `WaitGroup`: add / done / wait, on the park table.

use super::{Blocker, key_of, park_with_bit};
use crate::shim::{AtomicU64, Ordering};
use std::time::Duration;

/// High bit: some waiter may be parked. Low 32 bits: the count.
const WAITERS: u64 = 1 << 32;
const COUNT: u64 = WAITERS - 1;

/// Counts outstanding work that is not a job: `add` before starting it, `done` when it
/// finishes (from any job or thread), `wait` until the count is zero.
///
/// ```
/// use jobsys::sync::WaitGroup;
///
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let uploads = WaitGroup::new();
/// uploads.add(3);
/// jobs.run(|ctx| {
///     ctx.scope(|s| {
///         for _ in 0..3 {
///             s.spawn(|_| uploads.done());
///         }
///         uploads.wait(s); // parks this fiber until all three are done
///         assert_eq!(uploads.count(), 0);
///     });
/// });
/// # Ok::<(), jobsys::BuildError>(())
/// ```
pub struct WaitGroup {
    state: AtomicU64,
}

impl core::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitGroup {
    /// A wait group at zero.
    pub fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
        }
    }

    /// Adds `n` outstanding items.
    ///
    /// # Panics
    /// If the count would pass 2³² − 1.
    pub fn add(&self, n: u32) {
        let old = self.state.fetch_add(u64::from(n), Ordering::Relaxed);
        if (old & COUNT) + u64::from(n) > COUNT {
            self.state.fetch_sub(u64::from(n), Ordering::Relaxed);
            panic!("WaitGroup::add: more than 2^32 - 1 outstanding items");
        }
    }

    /// Marks one item done, waking the waiters if it was the last.
    ///
    /// # Panics
    /// If the count is already zero (more `done`s than `add`s).
    pub fn done(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            assert!(
                s & COUNT != 0,
                "WaitGroup::done called more often than WaitGroup::add"
            );
            match self
                .state
                .compare_exchange_weak(s, s - 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s & COUNT == 1 && s & WAITERS != 0 {
            crate::park::unpark_all(key_of(&self.state), 0, |_| {
                self.state.fetch_and(!WAITERS, Ordering::Relaxed);
            });
        }
    }

    /// Outstanding items right now (a snapshot).
    pub fn count(&self) -> u32 {
        (self.state.load(Ordering::Acquire) & COUNT) as u32
    }

    /// Waits until the count is zero.
    pub fn wait<B: Blocker + ?Sized>(&self, blocker: &B) {
        self.wait_until(blocker, crate::deadline::NEVER);
    }

    /// [`wait`](Self::wait) for at most `timeout`: returns whether the count reached zero.
    pub fn wait_timeout<B: Blocker + ?Sized>(&self, blocker: &B, timeout: Duration) -> bool {
        self.wait_until(blocker, crate::deadline::after(timeout))
    }

    fn wait_until<B: Blocker + ?Sized>(&self, blocker: &B, deadline: u64) -> bool {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & COUNT == 0 {
                return true;
            }
            if crate::deadline::passed(deadline) {
                return false;
            }
            let _ = park_with_bit(blocker, &self.state, s, WAITERS, validate, deadline);
        }
    }
}

/// Park validation: items outstanding and the waiters bit set.
///
/// # Safety
/// `data` points at a live `AtomicU64`.
unsafe fn validate(data: *const ()) -> bool {
    // SAFETY: caller contract.
    let s = unsafe { &*data.cast::<AtomicU64>() }.load(Ordering::Relaxed);
    s & COUNT != 0 && s & WAITERS != 0
}
