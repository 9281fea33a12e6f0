//! Profiler call sites: job begin/end, fiber switch, wait, wake, steal, sleep.
//!
//! With the `profile` feature off (the default) every hook is an empty `#[inline(always)]`
//! function and the scheduler carries no instrumentation cost. With it on, each call site
//! forwards to the [`ProfileHooks`] installed with [`set_hooks`] (the `jobsys-profiling` crate
//! provides Tracy and Chrome-trace implementations).

use crate::JobMeta;

/// Receives scheduler events. Every method has an empty default; implement what you need.
///
/// Hooks run on the hot path, on the thread that produced the event — for `wake`, that is the
/// waker's thread, not the woken worker's — and may be called from several threads at once:
/// keep them short, allocation-free, non-blocking and thread-safe. A hook must not panic: hooks
/// run inside the scheduler and inside waits whose jobs borrow the waiter's stack, so a panic
/// in a hook aborts the process with a message naming the hook. Hooks may still run on worker
/// threads after `run` returns; read collected data after the `JobSystem` is dropped. `worker` is the worker index (0 is the thread that
/// calls [`JobSystem::run`](crate::JobSystem::run)); `fiber` the pool index of a fiber.
pub trait ProfileHooks: Sync + 'static {
    /// A worker thread started (called on that thread).
    fn worker_start(&self, worker: usize) {
        let _ = worker;
    }
    /// A job starts running on `worker`.
    fn job_begin(&self, worker: usize, meta: &'static JobMeta) {
        let _ = (worker, meta);
    }
    /// The job that began last on this fiber finished.
    fn job_end(&self, worker: usize, meta: &'static JobMeta) {
        let _ = (worker, meta);
    }
    /// `worker` switches into `fiber`.
    fn fiber_enter(&self, worker: usize, fiber: u32) {
        let _ = (worker, fiber);
    }
    /// `fiber` switched back to `worker` (idle, waiting or yielding).
    fn fiber_leave(&self, worker: usize, fiber: u32) {
        let _ = (worker, fiber);
    }
    /// A job on `worker` is about to park its fiber on a counter.
    fn wait_begin(&self, worker: usize) {
        let _ = worker;
    }
    /// The parked job resumed.
    fn wait_end(&self, worker: usize) {
        let _ = worker;
    }
    /// A fiber became ready on `worker`, or `worker` was woken from sleep (called by the waker).
    fn wake(&self, worker: usize) {
        let _ = worker;
    }
    /// `thief` stole `count` jobs from `victim`.
    fn steal(&self, thief: usize, victim: usize, count: usize) {
        let _ = (thief, victim, count);
    }
    /// `worker` goes to sleep.
    fn sleep_begin(&self, worker: usize) {
        let _ = worker;
    }
    /// `worker` woke up.
    fn sleep_end(&self, worker: usize) {
        let _ = worker;
    }
    /// Frame `index` opened (called on the opening thread).
    fn frame_begin(&self, index: u64) {
        let _ = index;
    }
    /// Frame `index` retired: its body and later jobs finished (called on the thread that
    /// finished last).
    fn frame_retired(&self, index: u64) {
        let _ = index;
    }
    /// A frame's stats are complete (called with the stats lock held: copy what you need).
    fn frame_stats(&self, stats: &crate::FrameStats) {
        let _ = stats;
    }
}

#[cfg(feature = "profile")]
static HOOKS: std::sync::OnceLock<&'static dyn ProfileHooks> = std::sync::OnceLock::new();

/// Installs the process-wide hooks. Only the first call wins; returns whether this one did.
/// Without the `profile` feature the hooks are never called and this returns `false`.
pub fn set_hooks(hooks: &'static dyn ProfileHooks) -> bool {
    #[cfg(feature = "profile")]
    {
        HOOKS.set(hooks).is_ok()
    }
    #[cfg(not(feature = "profile"))]
    {
        let _ = hooks;
        false
    }
}

macro_rules! hooks {
    ($( $(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*); )*) => {$(
        $(#[$m])*
        #[inline(always)]
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(feature = "profile")]
            if let Some(h) = HOOKS.get() {
                // Hooks run inside scheduler code and inside waits that guard borrowed data:
                // a panic must not unwind out of them.
                let guard = crate::panic::AbortIfPanic(concat!(
                    "a ProfileHooks::", stringify!($name), " hook panicked; hooks must not panic"
                ));
                h.$name($($arg),*);
                core::mem::forget(guard);
            }
            #[cfg(not(feature = "profile"))]
            let _ = ($($arg,)*);
        }
    )*};
}

hooks! {
    fn worker_start(worker: usize);
    fn job_begin(worker: usize, meta: &'static JobMeta);
    fn job_end(worker: usize, meta: &'static JobMeta);
    fn fiber_enter(worker: usize, fiber: u32);
    fn fiber_leave(worker: usize, fiber: u32);
    fn wait_begin(worker: usize);
    fn wait_end(worker: usize);
    fn wake(worker: usize);
    fn steal(thief: usize, victim: usize, count: usize);
    fn sleep_begin(worker: usize);
    fn sleep_end(worker: usize);
    fn frame_begin(index: u64);
    fn frame_retired(index: u64);
    fn frame_stats(stats: &crate::FrameStats);
}
