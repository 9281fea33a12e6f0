//! The loom backend (`--cfg loom`): loom's model-checked atomics, threads and parking, so the
//! wait-list, ring and sleep protocols can be explored exhaustively. A spin is a loom yield
//! (loom must see a busy-wait give way, or it explores it forever). The scheduler itself does
//! not run under loom: worker threads stay std threads.

pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    fence,
};

/// Spin hint used by every busy-wait in the crate: a loom yield.
#[inline]
pub(crate) fn spin_loop() {
    loom::thread::yield_now();
}

/// loom's threads, parking and yielding (see `shim::thread`).
pub(crate) mod thread {
    pub(crate) use loom::thread::{Thread, current};
    use std::time::Duration;

    /// Parks until unparked (spuriously too: callers loop).
    #[inline]
    pub(crate) fn park() {
        loom::thread::park();
    }

    /// A plain park: loom has no time, and every caller loops.
    #[inline]
    pub(crate) fn park_timeout(timeout: Duration) {
        let _ = timeout;
        loom::thread::park();
    }

    /// A sleeping worker's park: a plain park (see [`park_timeout`]).
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

    /// [`unpark`] for a worker's thread, always a std thread (the scheduler does not run
    /// under loom).
    #[inline]
    pub(crate) fn unpark_worker(thread: &std::thread::Thread) {
        thread.unpark();
    }

    /// Lets other threads run.
    #[inline]
    pub(crate) fn yield_now() {
        loom::thread::yield_now();
    }

    /// Spawns a (std) thread.
    pub(crate) fn spawn<F: FnOnce() + Send + 'static>(
        builder: std::thread::Builder,
        f: F,
    ) -> std::io::Result<JoinHandle> {
        builder.spawn(f)
    }

    /// A spawned thread's handle.
    pub(crate) type JoinHandle = std::thread::JoinHandle<()>;
}
