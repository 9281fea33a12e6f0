//! Profiler call sites: job begin/end, fiber switch, wait, wake, steal, sleep, frames, lock
//! contention and user zones.
//!
//! With the `profile` feature off (the default) every hook is an empty `#[inline(always)]`
//! function and the scheduler carries no instrumentation cost. With it on, each call site
//! forwards to every hook set installed with [`add_hooks`] (up to [`MAX_HOOK_SETS`]), in
//! installation order (the `jobsys-profiling` crate provides Tracy and Chrome-trace
//! implementations).

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
    /// A [`sync::Mutex`](crate::sync::Mutex) or [`sync::RwLock`](crate::sync::RwLock) named
    /// `name` at address `addr` was held by someone else: the caller on `worker` is about to
    /// spin and park for it. Reported only on contention: an acquisition that gets the lock at
    /// once reports no lock event at all. `worker` is [`NO_WORKER`] for a plain thread
    /// ([`ThisThread`](crate::sync::ThisThread)).
    fn lock_wait_begin(&self, worker: usize, name: &'static str, addr: usize) {
        let _ = (worker, name, addr);
    }
    /// The waiter of the last `lock_wait_begin` on this fiber (or thread) got the lock.
    /// Follows every `lock_wait_begin`, and only those.
    fn lock_obtained(&self, worker: usize, name: &'static str, addr: usize) {
        let _ = (worker, name, addr);
    }
    /// A guard whose acquisition was reported (`lock_wait_begin`, `lock_obtained`) dropped:
    /// the lock is released. Guards of uncontended acquisitions report nothing. `worker` is the
    /// worker that obtained the guard (the same one that releases it, unless the system opted
    /// into migration).
    fn lock_released(&self, worker: usize, name: &'static str, addr: usize) {
        let _ = (worker, name, addr);
    }
    /// A user zone ([`Ctx::zone`](crate::Ctx::zone)) named `name` opened on `fiber`, running
    /// on `worker`.
    ///
    /// A zone may span waits: the fiber may be switched out (`fiber_leave`) while the zone is
    /// open, and the worker runs other jobs, and other zones, meanwhile. Back-ends must key
    /// open zones by `fiber`, not by thread. With the default (non-migrating) mode the zone
    /// begins and ends on the same worker.
    fn zone_begin(&self, worker: usize, fiber: u32, name: &'static str) {
        let _ = (worker, fiber, name);
    }
    /// The zone named `name` that opened last on `fiber` and is still open, closed (zones of
    /// a fiber nest).
    fn zone_end(&self, worker: usize, fiber: u32, name: &'static str) {
        let _ = (worker, fiber, name);
    }
}

/// How many hook sets [`add_hooks`] accepts per process.
pub const MAX_HOOK_SETS: usize = 8;

/// The `worker` of a lock hook reported by a plain thread (a
/// [`ThisThread`](crate::sync::ThisThread) blocker), not a jobsys worker.
pub const NO_WORKER: usize = usize::MAX;

/// The installed hook sets, filled in claim order; a call site stops at the first empty slot.
#[cfg(feature = "profile")]
static HOOKS: [std::sync::OnceLock<&'static dyn ProfileHooks>; MAX_HOOK_SETS] =
    [const { std::sync::OnceLock::new() }; MAX_HOOK_SETS];

/// Slots claimed by [`add_hooks`] so far (may exceed [`MAX_HOOK_SETS`]: refused claims).
#[cfg(feature = "profile")]
static CLAIMED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Adds a process-wide hook set; returns whether it was installed.
///
/// Up to [`MAX_HOOK_SETS`] sets may be installed; later calls return `false`, and so does
/// adding a set that is already installed (the same object: a back-end's second `install`
/// does not double its events; not checked against a concurrent add of it). Every event goes
/// to every installed set, in installation order. Sets cannot be removed. Install before
/// building the `JobSystem` (or `worker_start` events are missed); a set added while events
/// are being reported receives them from some point on. Without the `profile` feature the
/// hooks are never called and this returns `false`.
///
/// The call path stays allocation-free and lock-free: each event reads the installed slots
/// (one atomic load per set, plus one for the first empty slot).
pub fn add_hooks(hooks: &'static dyn ProfileHooks) -> bool {
    #[cfg(feature = "profile")]
    {
        use std::sync::atomic::Ordering;
        let mut installed = false;
        for_each(|h| installed |= core::ptr::addr_eq(h, hooks));
        if installed {
            return false;
        }
        let slot = CLAIMED.fetch_add(1, Ordering::Relaxed);
        // Each slot is claimed by exactly one call, so `set` cannot find it full.
        slot < MAX_HOOK_SETS && HOOKS[slot].set(hooks).is_ok()
    }
    #[cfg(not(feature = "profile"))]
    {
        let _ = hooks;
        false
    }
}

/// The same as [`add_hooks`] (kept for back-ends written when one set was the limit): it adds
/// `hooks` next to any set already installed, and returns `false` only when it is installed
/// already, [`MAX_HOOK_SETS`] are installed or the `profile` feature is off.
pub fn set_hooks(hooks: &'static dyn ProfileHooks) -> bool {
    add_hooks(hooks)
}

/// Calls `f` on every installed hook set, in installation order.
#[cfg(feature = "profile")]
#[inline(always)]
fn for_each(mut f: impl FnMut(&'static dyn ProfileHooks)) {
    for slot in &HOOKS {
        match slot.get() {
            Some(h) => f(*h),
            // Slots fill in claim order; a gap is an install still in progress.
            None => break,
        }
    }
}

macro_rules! hooks {
    ($( $(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*); )*) => {$(
        $(#[$m])*
        #[inline(always)]
        // Without the feature, call sites that only the feature reaches (the lock hooks) are
        // compiled out.
        #[cfg_attr(not(feature = "profile"), allow(dead_code))]
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(feature = "profile")]
            if HOOKS[0].get().is_some() {
                // Hooks run inside scheduler code and inside waits that guard borrowed data:
                // a panic must not unwind out of them.
                let guard = crate::panic::AbortIfPanic(concat!(
                    "a ProfileHooks::", stringify!($name), " hook panicked; hooks must not panic"
                ));
                for_each(|h| h.$name($($arg),*));
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
    fn lock_wait_begin(worker: usize, name: &'static str, addr: usize);
    fn lock_obtained(worker: usize, name: &'static str, addr: usize);
    fn lock_released(worker: usize, name: &'static str, addr: usize);
    fn zone_begin(worker: usize, fiber: u32, name: &'static str);
    fn zone_end(worker: usize, fiber: u32, name: &'static str);
}

/// Whether any hook set is installed (always `false` without the `profile` feature): lets a
/// call site skip the work of preparing a hook's arguments.
#[inline(always)]
#[cfg_attr(not(feature = "profile"), allow(dead_code))]
pub(crate) fn active() -> bool {
    #[cfg(feature = "profile")]
    {
        HOOKS[0].get().is_some()
    }
    #[cfg(not(feature = "profile"))]
    {
        false
    }
}

/// A user zone, open until dropped; see [`Ctx::zone`](crate::Ctx::zone). `!Send`: it belongs to
/// the job (fiber) that opened it. Without the `profile` feature it is an empty type with no
/// `Drop`.
#[must_use = "the zone closes when this guard drops"]
pub struct Zone<'a> {
    #[cfg(feature = "profile")]
    ctx: &'a crate::Ctx,
    #[cfg(feature = "profile")]
    name: &'static str,
    _not_send: core::marker::PhantomData<&'a crate::Ctx>,
}

impl<'a> Zone<'a> {
    /// Opens the zone `name` on `ctx`'s fiber.
    #[inline(always)]
    pub(crate) fn open(ctx: &'a crate::Ctx, name: &'static str) -> Self {
        zone_begin(ctx.worker_index(), ctx.fiber_index(), name);
        Self {
            #[cfg(feature = "profile")]
            ctx,
            #[cfg(feature = "profile")]
            name,
            _not_send: core::marker::PhantomData,
        }
    }
}

#[cfg(feature = "profile")]
impl Drop for Zone<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        zone_end(self.ctx.worker_index(), self.ctx.fiber_index(), self.name);
    }
}

impl core::fmt::Debug for Zone<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Zone").finish_non_exhaustive()
    }
}

// Without the `profile` feature every hook call site compiles to nothing: each hook above is an
// empty `#[inline(always)]` function (its arguments, a worker or fiber index read from the
// `Ctx`, are discarded), there is no hook table, and the guards that end a zone or a job
// (`Zone`, `fiber::RunningJob`) are empty types without drop glue. The build checks the
// guards here.
#[cfg(not(feature = "profile"))]
const _: () = {
    assert!(size_of::<Zone<'static>>() == 0);
    assert!(!core::mem::needs_drop::<Zone<'static>>());
    assert!(size_of::<crate::fiber::RunningJob<'static>>() == 0);
    assert!(!core::mem::needs_drop::<crate::fiber::RunningJob<'static>>());
};

#[cfg(all(test, not(feature = "profile")))]
mod off {
    /// Without the feature no hook set can be installed and nothing reports itself active.
    #[test]
    fn without_the_feature_nothing_installs_and_nothing_is_active() {
        struct Nothing;
        impl super::ProfileHooks for Nothing {}
        static NOTHING: Nothing = Nothing;
        assert!(!super::add_hooks(&NOTHING));
        assert!(!super::set_hooks(&NOTHING));
        assert!(!super::active());
    }
}
