//! `WaitGroup`: add / done / wait, on a counter.

use super::Blocker;
use crate::counter::CounterCore;

/// Counts outstanding work that is not a job: `add` before starting it, `done` when it
/// finishes (from any job or thread), `wait` until the count is zero. A thin layer over the
/// counter machinery (`Counter` is the same thing for jobs).
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
    core: CounterCore,
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
            core: CounterCore::new(0),
        }
    }

    /// Adds `n` outstanding items.
    ///
    /// # Panics
    /// Aborts the process if the count would pass 2³² − 1.
    pub fn add(&self, n: u32) {
        self.core.add(n);
    }

    /// Marks one item done, waking the waiters if it was the last.
    ///
    /// # Panics
    /// Aborts the process if the count is already zero (more `done`s than `add`s).
    pub fn done(&self) {
        self.core.sub(1);
    }

    /// Outstanding items right now (a snapshot).
    pub fn count(&self) -> u32 {
        self.core.value()
    }

    /// Waits until the count is zero.
    pub fn wait<B: Blocker + ?Sized>(&self, blocker: &B) {
        blocker.wait_counter(&self.core);
    }
}
