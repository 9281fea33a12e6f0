//! Who a wait node wakes, the one way to wake it, and the one way a plain OS thread blocks.

use crate::shim::thread::{self, Thread};
use crate::shim::{AtomicBool, Ordering, UnsafeCell};
use crate::worker::Shared;

/// How to resume a waiter.
pub(crate) enum Waiter {
    /// A parked fiber of the system at `shared`: pushed to its home worker's ready queue.
    Fiber { shared: *const Shared, fiber: u32 },
    /// A blocked OS thread (off the worker pool): `done` then unpark.
    Thread { thread: Thread, done: AtomicBool },
    /// An async task (a future awaiting a counter or a primitive, see `bridge/`): take its
    /// `Waker`, store `done`, then wake it. The future writes `waker` only while it owns the
    /// node (before publishing it, or under the bucket lock while the node is linked), and
    /// frees the node only after `done` (see `bridge::Await`).
    Task {
        waker: UnsafeCell<Option<core::task::Waker>>,
        done: AtomicBool,
    },
}

impl Waiter {
    /// An async task's waiter, with no waker yet (the future sets it before each publication).
    pub(crate) fn task() -> Self {
        Waiter::Task {
            waker: UnsafeCell::new(None),
            done: AtomicBool::new(false),
        }
    }

    /// The calling OS thread, as a waiter.
    pub(crate) fn thread() -> Self {
        Waiter::Thread {
            thread: thread::current(),
            done: AtomicBool::new(false),
        }
    }

    /// Makes the waiter at `this` runnable. `on_sync`: a fiber was counted with the waits
    /// that end by themselves (a primitive's park, or any timed wait; see `publish_wait`),
    /// and is un-counted the same way. `local`: the owner-only state of the worker the caller
    /// runs on, if it runs on one (see `Shared::make_ready_from`).
    ///
    /// # Safety
    /// The caller owns this wake (it unlinked the waiter's node, or claimed its group, under
    /// the bucket lock) and never touches the waiter again: after this call the waiter may
    /// have resumed and reused its stack.
    pub(crate) unsafe fn wake(
        this: *const Waiter,
        on_sync: bool,
        local: Option<&crate::worker::WorkerCore>,
    ) {
        // SAFETY: caller contract — alive and ours until the hand-over below.
        match unsafe { &*this } {
            &Waiter::Fiber { shared, fiber } => {
                // SAFETY: a parked fiber's system is alive: shutdown waits for parked fibers,
                // and `make_ready_from` counts itself in flight before it un-counts the
                // fiber, so the system stays alive until its last touch.
                unsafe { (*shared).make_ready_from(fiber, on_sync, local) }
            }
            Waiter::Thread { thread, done } => {
                // Clone before `done`: after the store the waiter may free the node.
                let thread = thread.clone();
                // Release pairs with the blocked thread's Acquire: it sees what we wrote.
                done.store(true, Ordering::Release);
                thread::unpark(&thread);
            }
            Waiter::Task { waker, done } => {
                // SAFETY: the caller owns the node (it unlinked it): the future does not touch
                // `waker` until it sees `done`.
                let waker = waker.with_mut(|w| unsafe { (*w).take() });
                // Release pairs with the future's Acquire: after this store the future may
                // free the node, so nothing below touches it.
                done.store(true, Ordering::Release);
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
    }

    /// Blocks the calling thread (whose `Thread` waiter this is) until woken, or until
    /// `deadline` passes and `cancel()` takes the wait back before any waker (then returns
    /// true: timed out). When the cancel loses, the waker owns the wake and it comes soon.
    fn block_until(&self, deadline: u64, cancel: impl FnOnce() -> bool) -> bool {
        let Waiter::Thread { done, .. } = self else {
            unreachable!("not a thread waiter")
        };
        let mut cancel = Some(cancel);
        // Acquire pairs with the waker's Release: the woken thread sees what the waker wrote.
        while !done.load(Ordering::Acquire) {
            match crate::deadline::remaining(deadline) {
                None => thread::park(),
                Some(left) if !left.is_zero() => thread::park_timeout(left),
                Some(_) => match cancel.take() {
                    // Took the wait back before any waker: timed out.
                    Some(c) => {
                        if c() {
                            return true;
                        }
                    }
                    // A waker owns the node: its wake comes soon.
                    None => thread::park(),
                },
            }
        }
        false
    }
}

/// The one path that blocks a plain OS thread (not a worker) whose node is published: park
/// until its waker's [`Waiter::wake`], or until `deadline` (`deadline::NEVER`: none) passes and
/// `cancel()` takes the node back (returns true: timed out). `what` describes the wait for a
/// simulation's report of a failed run.
///
/// `waiter` is a `Thread` waiter of the calling thread, in a node (or group) that stays alive
/// until this returns.
pub(crate) fn block_thread(
    waiter: &Waiter,
    deadline: u64,
    cancel: impl FnOnce() -> bool,
    what: impl FnOnce() -> String,
) -> bool {
    crate::sim::waits_on(what);
    let timed_out = waiter.block_until(deadline, cancel);
    crate::sim::done_waiting();
    timed_out
}
