//! [`WorkerLocal`]: one value per worker, reached through the running job's [`Ctx`].

use crate::fiber::Ctx;
use crate::shim::{AtomicBool, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;

/// One value per worker — per-worker scratch buffers, counters, stats — reached from a job
/// through its [`Ctx`]'s worker index, never through a thread-local, so it stays right across
/// waits and in migration mode.
///
/// [`with`](Self::with) lends the current worker's value for the length of a closure that
/// does not wait. Each value sits on its own cache line; a call costs one uncontended atomic
/// swap and store on that line (the guard that makes a misuse a panic instead of an aliased
/// `&mut`). After the jobs, [`iter_mut`](Self::iter_mut) or
/// [`into_inner`](Self::into_inner) collect the values (merge per-worker stats).
///
/// ```
/// use jobsys::{JobSystem, WorkerLocal};
/// let jobs = JobSystem::builder().workers(4).build()?;
/// // A scratch buffer and a tally per worker.
/// let mut scratch = WorkerLocal::new(jobs.worker_count(), |_| (Vec::<u32>::with_capacity(64), 0u64));
/// jobs.run(|ctx| {
///     ctx.scope(|s| {
///         for i in 0..100u32 {
///             let scratch = &scratch;
///             s.spawn(move |ctx| {
///                 scratch.with(ctx, |(buf, tally)| {
///                     buf.clear();
///                     buf.extend(0..i);
///                     *tally += buf.iter().map(|&x| u64::from(x)).sum::<u64>();
///                 })
///             });
///         }
///     })
/// });
/// let total: u64 = scratch.iter_mut().map(|(_, tally)| *tally).sum();
/// assert_eq!(total, (0..100u64).map(|i| i * i.saturating_sub(1) / 2).sum());
/// # Ok::<(), jobsys::BuildError>(())
/// ```
///
/// Why no `get(&self, ctx) -> &T`: a shared reference to a worker's value could be held
/// across a wait while `with` lends the same value mutably to another job of that worker.
/// For values meant to be shared (atomics), use a plain slice indexed by
/// [`Ctx::worker_index`].
pub struct WorkerLocal<T> {
    slots: Box<[CachePadded<Slot<T>>]>,
}

struct Slot<T> {
    /// Set while the value is lent out by `with`.
    lent: AtomicBool,
    value: UnsafeCell<T>,
}

// `iter_mut` and `into_inner` take the whole `WorkerLocal` by `&mut` or by value.
// SAFETY: shared, a value is only reached through `with`, which lends it to one closure at a
// time (the `lent` flag, an atomic swap), on whichever thread runs that job: `T: Send` suffices.
unsafe impl<T: Send> Sync for WorkerLocal<T> {}

impl<T> WorkerLocal<T> {
    /// One value per worker for a system of `workers` workers
    /// ([`JobSystem::worker_count`](crate::JobSystem::worker_count)), `init(i)` for worker
    /// `i`.
    pub fn new(workers: usize, mut init: impl FnMut(usize) -> T) -> Self {
        Self {
            slots: (0..workers)
                .map(|i| {
                    CachePadded::new(Slot {
                        lent: AtomicBool::new(false),
                        value: UnsafeCell::new(init(i)),
                    })
                })
                .collect(),
        }
    }

    /// How many values (workers) there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are none (built for zero workers).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Calls `f` with the value of the worker that runs this job, and returns what it returns.
    ///
    /// `f` gets no [`Ctx`]: it must not wait, yield, or run jobs through a `Ctx` it captured
    /// (the job would lend the value across a switch, and another job of the same worker
    /// could then ask for it). That misuse, and a `with` nested in another on the same
    /// worker, panic instead of aliasing the value.
    ///
    /// # Panics
    /// If the worker's value is already lent out (see above), or if this `WorkerLocal` has no
    /// value for this worker (it was built for fewer workers than the system has). A panic
    /// in `f` propagates; the value is lent again to the next call.
    #[track_caller]
    pub fn with<R>(&self, ctx: &Ctx, f: impl FnOnce(&mut T) -> R) -> R {
        let index = ctx.worker_index();
        let Some(slot) = self.slots.get(index) else {
            panic!(
                "WorkerLocal::with on worker {index}, but it holds values for {} workers; build it with the system's worker_count()",
                self.slots.len()
            );
        };
        if slot.lent.swap(true, Ordering::Acquire) {
            panic!(
                "WorkerLocal::with: worker {index}'s value is already lent (a nested with, or one whose closure waited through a captured Ctx)"
            );
        }
        struct Return<'a>(&'a AtomicBool);
        impl Drop for Return<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _return = Return(&slot.lent);
        // SAFETY: the swap above lent the value to this call alone until `_return` drops (an
        // Acquire swap, paired with the Release store of the previous lender); `T: Send` (for
        // `Sync`) lets the value be used on this thread.
        slot.value.with_mut(|v| f(unsafe { &mut *v }))
    }

    /// Every worker's value, worker 0 first (after the jobs: to merge per-worker stats,
    /// clear scratch buffers).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().map(|s| {
            // SAFETY: `&mut self`: no `with` is running, nothing else reaches the value.
            s.value.with_mut(|v| unsafe { &mut *v })
        })
    }

    /// The values, worker 0 first.
    pub fn into_inner(self) -> Vec<T> {
        self.slots
            .into_vec()
            .into_iter()
            .map(|s| CachePadded::into_inner(s).value.into_inner())
            .collect()
    }
}

impl<T> core::fmt::Debug for WorkerLocal<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkerLocal")
            .field("workers", &self.slots.len())
            .finish_non_exhaustive()
    }
}
