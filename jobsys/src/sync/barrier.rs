//! `Barrier`: N participants, reusable, one leader per generation.

use super::{Blocker, key_of};
use crate::shim::{AtomicU64, Ordering};

/// What [`Barrier::wait`] tells each participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one participant per generation: the last to arrive.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

/// A reusable barrier for `n` participants (jobs or threads): each `wait` returns once all `n`
/// have arrived, and the barrier is ready for the next generation (next frame) at once.
///
/// ```
/// use jobsys::sync::Barrier;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let jobs = jobsys::JobSystem::builder().workers(4).build()?;
/// let phase = Barrier::new(4);
/// let leaders = AtomicUsize::new(0);
/// jobs.run(|ctx| {
///     ctx.scope(|s| {
///         for _ in 0..4 {
///             s.spawn(|s| {
///                 if phase.wait(s).is_leader() {
///                     leaders.fetch_add(1, Ordering::Relaxed);
///                 }
///             });
///         }
///     });
/// });
/// assert_eq!(leaders.into_inner(), 1);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
///
/// All `n` participants must be able to run at once: with jobs, that needs `n` fibers. A
/// barrier waited on by fewer fibers than it needs, with no thread to complete it, stalls:
/// the pool's deadlock abort does not cover waits a plain thread could end, but after about a
/// second with every worker asleep the system prints a stall report naming the waiting jobs
/// and how many participants arrived. Exactly `n` participants per generation: an `n + 1`th
/// caller would mix generations; debug builds panic when more than `n` wait at once.
#[derive(Debug)]
pub struct Barrier {
    /// High 32 bits: generation; low 32 bits: arrivals in this generation.
    state: AtomicU64,
    n: u32,
    /// Debug builds: callers inside `wait` right now. With `n` participants it never exceeds
    /// `n` (each is in at most one wait at a time), so more means more participants than the
    /// barrier was built for.
    #[cfg(debug_assertions)]
    inside: crate::shim::AtomicU32,
}

/// Counts a caller inside [`Barrier::wait`] until dropped (debug builds).
#[cfg(debug_assertions)]
struct Inside<'a>(&'a crate::shim::AtomicU32);

#[cfg(debug_assertions)]
impl<'a> Inside<'a> {
    #[track_caller]
    fn enter(inside: &'a crate::shim::AtomicU32, n: u32) -> Self {
        let now = inside.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = Self(inside);
        if now > n {
            drop(guard);
            panic!(
                "{now} waits at once on a Barrier built for {n} participants: more participants \
                 than it was built for would mix generations (each generation takes exactly {n}); \
                 build it for the number of jobs and threads that wait on it"
            );
        }
        guard
    }
}

#[cfg(debug_assertions)]
impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Barrier {
    /// A barrier for `n` participants.
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn new(n: u32) -> Self {
        assert!(n > 0, "a barrier needs at least one participant");
        Self {
            state: AtomicU64::new(0),
            n,
            #[cfg(debug_assertions)]
            inside: crate::shim::AtomicU32::new(0),
        }
    }

    /// Arrives and waits until all `n` participants of this generation have arrived.
    ///
    /// # Panics
    /// In debug builds, when more than `n` callers are inside `wait` at once (more
    /// participants than the barrier was built for), before this caller arrives. Fewer than
    /// `n` participants stall instead; the stall report names the barrier and its arrivals.
    #[track_caller]
    pub fn wait<B: Blocker + ?Sized>(&self, blocker: &B) -> BarrierWaitResult {
        #[cfg(debug_assertions)]
        let _inside = Inside::enter(&self.inside, self.n);
        // AcqRel: the leader sees every participant's writes before the barrier, and the
        // followers see them through the leader's release below.
        let old = self.state.fetch_add(1, Ordering::AcqRel);
        let generation = old >> 32;
        if (old as u32) + 1 == self.n {
            // Last to arrive: open the next generation (nobody of the next one can have
            // arrived: all `n` are here), then release this one.
            self.state.store((generation + 1) << 32, Ordering::Release);
            crate::park::unpark_all(key_of(&self.state), 0, |_| {});
            return BarrierWaitResult(true);
        }
        let data = Gen {
            state: &self.state,
            generation,
        };
        while self.state.load(Ordering::Acquire) >> 32 == generation {
            // For a stall report, should this generation never fill.
            blocker.describe_wait(crate::fiber::WaitWhat::Barrier {
                n: self.n,
                arrived: old as u32 + 1,
            });
            // SAFETY: `validate` reads `data`, on this stack for the whole park.
            unsafe {
                blocker.park(
                    key_of(&self.state),
                    validate,
                    (&data as *const Gen<'_>).cast(),
                    crate::deadline::NEVER,
                )
            };
        }
        BarrierWaitResult(false)
    }
}

struct Gen<'a> {
    state: &'a AtomicU64,
    generation: u64,
}

/// Park validation: still the same generation.
///
/// # Safety
/// `data` points at a live `Gen`.
unsafe fn validate(data: *const ()) -> bool {
    // SAFETY: caller contract.
    let g = unsafe { &*data.cast::<Gen<'_>>() };
    g.state.load(Ordering::Relaxed) >> 32 == g.generation
}
