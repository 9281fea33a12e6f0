//! The one door every atomic and shared cell goes through.
//!
//! Under `--cfg loom` these names resolve to loom's model-checked twins, so the wait-list,
//! ring and sleep protocols can be explored exhaustively; otherwise they are std's. Nothing in
//! the crate imports `std::sync::atomic` directly.

mod cell;
mod spin;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    fence,
};
#[cfg(all(not(loom), not(feature = "simulation")))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    fence,
};
#[cfg(all(not(loom), feature = "simulation"))]
mod stepped;
#[cfg(all(not(loom), feature = "simulation"))]
pub(crate) use std::sync::atomic::Ordering;
#[cfg(all(not(loom), feature = "simulation"))]
pub(crate) use stepped::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, fence,
};

pub(crate) use cell::UnsafeCell;

/// Thread handles, parking and yielding for blocking waiters and spinners (loom's under
/// `--cfg loom`; the simulation's, for its threads, under the `simulation` feature). Every
/// park, unpark and yield of the runtime goes through here.
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{Thread, current};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{Thread, current};
    use std::time::Duration;

    /// Parks until unparked (spuriously too: callers loop).
    #[inline]
    pub(crate) fn park() {
        #[cfg(feature = "simulation")]
        if crate::sim::park(None) {
            return;
        }
        #[cfg(loom)]
        loom::thread::park();
        #[cfg(not(loom))]
        std::thread::park();
    }

    /// Parks until unparked or `timeout` passes. Under loom a plain park (loom has no time;
    /// every caller loops).
    #[inline]
    pub(crate) fn park_timeout(timeout: Duration) {
        #[cfg(feature = "simulation")]
        if crate::sim::park(Some(timeout)) {
            return;
        }
        #[cfg(loom)]
        {
            let _ = timeout;
            loom::thread::park();
        }
        #[cfg(not(loom))]
        std::thread::park_timeout(timeout);
    }

    /// A sleeping worker's park: at most `timeout`, which is the watchdog unless `timer`
    /// (a timer is armed). A simulation has no watchdog, so a lost wake-up there is a
    /// deadlock it reports instead of a stall it hides.
    #[inline]
    pub(crate) fn park_sleeper(timeout: Duration, timer: bool) {
        #[cfg(feature = "simulation")]
        if crate::sim::park(timer.then_some(timeout)) {
            return;
        }
        let _ = timer;
        park_timeout(timeout);
    }

    /// Wakes `thread` if it is parked, or makes its next park return at once.
    #[inline]
    pub(crate) fn unpark(thread: &Thread) {
        #[cfg(feature = "simulation")]
        if crate::sim::unpark(thread) {
            return;
        }
        thread.unpark();
    }

    /// [`unpark`] for a worker's thread, always a std thread (the scheduler does not run
    /// under loom).
    #[inline]
    pub(crate) fn unpark_worker(thread: &std::thread::Thread) {
        #[cfg(feature = "simulation")]
        if crate::sim::unpark(thread) {
            return;
        }
        thread.unpark();
    }

    /// Lets other threads run (the simulation's scheduler picks one of its others).
    #[inline]
    pub(crate) fn yield_now() {
        #[cfg(feature = "simulation")]
        if crate::sim::spin() {
            return;
        }
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        std::thread::yield_now();
    }

    /// Spawns a thread (under simulation, one of the caller's simulation).
    pub(crate) fn spawn<F: FnOnce() + Send + 'static>(
        builder: std::thread::Builder,
        f: F,
    ) -> std::io::Result<JoinHandle> {
        #[cfg(feature = "simulation")]
        return crate::sim::spawn_with(builder, f);
        #[cfg(not(feature = "simulation"))]
        builder.spawn(f)
    }

    /// A spawned thread's handle.
    #[cfg(feature = "simulation")]
    pub(crate) type JoinHandle = crate::sim::JoinHandle<()>;
    /// A spawned thread's handle.
    #[cfg(not(feature = "simulation"))]
    pub(crate) type JoinHandle = std::thread::JoinHandle<()>;
}
pub(crate) use spin::{SpinGuard, SpinLock};

/// Defines a function that is `const` except under loom, whose atomics and cells have no
/// `const` constructors.
macro_rules! loom_const {
    ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => {
        $(#[$m])*
        #[cfg(not(loom))]
        $vis const fn $($rest)*
        $(#[$m])*
        #[cfg(loom)]
        $vis fn $($rest)*
    };
}
pub(crate) use loom_const;

/// Spin hint used by every busy-wait in the crate.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(feature = "simulation")]
    if crate::sim::spin() {
        return;
    }
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
