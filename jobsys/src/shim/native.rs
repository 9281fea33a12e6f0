//! The std backend (neither `--cfg loom` nor the `simulation` feature): std's atomics, std's
//! threads and parking, the CPU's spin hint. What ships.

pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    fence,
};

/// Spin hint used by every busy-wait in the crate.
#[inline]
pub(crate) fn spin_loop() {
    std::hint::spin_loop();
}

/// std's threads, parking and yielding (see `shim::thread`).
pub(crate) mod thread {
    pub(crate) use std::thread::{Thread, current};
    use std::time::Duration;

    /// Parks until unparked (spuriously too: callers loop).
    #[inline]
    pub(crate) fn park() {
        std::thread::park();
    }

    /// Parks until unparked or `timeout` passes.
    #[inline]
    pub(crate) fn park_timeout(timeout: Duration) {
        std::thread::park_timeout(timeout);
    }

    /// A sleeping worker's park: at most `timeout` (the watchdog, or the earliest timer).
    #[inline]
    pub(crate) fn park_sleeper(timeout: Duration, timer: bool) {
        let _ = timer;
        park_timeout(timeout);
    }

    /// Wakes `thread` if it is parked, or makes its next park return at once.
    #[inline]
    pub(crate) fn unpark(thread: &Thread) {
        thread.unpark();
    }

    /// [`unpark`] for a worker's thread.
    #[inline]
    pub(crate) fn unpark_worker(thread: &std::thread::Thread) {
        thread.unpark();
    }

    /// Lets other threads run.
    #[inline]
    pub(crate) fn yield_now() {
        std::thread::yield_now();
    }

    /// Spawns a thread.
    pub(crate) fn spawn<F: FnOnce() + Send + 'static>(
        builder: std::thread::Builder,
        f: F,
    ) -> std::io::Result<JoinHandle> {
        builder.spawn(f)
    }

    /// A spawned thread's handle.
    pub(crate) type JoinHandle = std::thread::JoinHandle<()>;
}
