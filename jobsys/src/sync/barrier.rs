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
/// barrier waited on by fewer fibers than it needs, with no thread to complete it, hangs: the
/// pool's deadlock report does not cover waits a plain thread could end. Exactly `n`
/// participants per generation: an `n + 1`th caller would mix generations.
#[derive(Debug)]
pub struct Barrier {
    /// High 32 bits: generation; low 32 bits: arrivals in this generation.
    state: AtomicU64,
    n: u32,
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
        }
    }

    /// Arrives and waits until all `n` participants of this generation have arrived.
    pub fn wait<B: Blocker + ?Sized>(&self, blocker: &B) -> BarrierWaitResult {
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
                    crate::timer::NEVER,
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
