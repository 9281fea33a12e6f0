//! Wait nodes: who is waiting, for what value, and how to wake them.

use crate::shim::thread::{self, Thread};
use crate::shim::{AtomicBool, Ordering};
use crate::worker::Shared;

/// A waiter, linked into a counter's list. Lives on the waiter's stack for the whole wait.
pub(crate) struct WaitNode {
    pub(crate) next: *mut WaitNode,
    /// The counter waited on (set at publication; identifies the node in its bucket).
    pub(crate) counter: *const crate::counter::CounterCore,
    /// Woken when the count is at or below this.
    pub(crate) target: u32,
    pub(crate) waiter: Waiter,
}

/// How to resume a waiter.
pub(crate) enum Waiter {
    /// A parked fiber of the system at `shared`: pushed to its home worker's ready queue.
    Fiber { shared: *const Shared, fiber: u32 },
    /// A blocked OS thread (off the worker pool): `done` then unpark.
    Thread { thread: Thread, done: AtomicBool },
}

impl WaitNode {
    pub(crate) fn new(target: u32, waiter: Waiter) -> Self {
        Self {
            next: core::ptr::null_mut(),
            counter: core::ptr::null(),
            target,
            waiter,
        }
    }

    /// Blocks the calling thread until a waker sets `done`. Spurious unparks loop.
    pub(crate) fn block_thread(&self) {
        let Waiter::Thread { done, .. } = &self.waiter else {
            unreachable!("not a thread waiter")
        };
        // Acquire pairs with the waker's Release: the woken thread sees the jobs' writes.
        while !done.load(Ordering::Acquire) {
            thread::park();
        }
    }
}

impl Waiter {
    /// Makes the waiter of `node` runnable.
    ///
    /// # Safety
    /// `node` was unlinked by the caller, who owns it until this call; after this call nobody
    /// may touch it (the waiter may already have resumed and reused its stack).
    pub(crate) unsafe fn wake(node: *mut WaitNode) {
        // SAFETY: caller contract — the node is alive and ours.
        match unsafe { &(*node).waiter } {
            // SAFETY: a parked fiber's system is alive: shutdown waits for parked fibers.
            Waiter::Fiber { shared, fiber } => unsafe { (**shared).make_ready(*fiber) },
            Waiter::Thread { thread, done } => {
                // Clone before `done`: after the store the waiter may free the node.
                let thread = thread.clone();
                done.store(true, Ordering::Release);
                thread.unpark();
            }
        }
    }
}

/// Blocks the calling OS thread until `counter` is at or below `target`: publish a node on this
/// stack, park, and re-check — a wake may be spurious (counter/README.md).
///
pub(crate) fn block_thread_until(counter: &crate::counter::CounterCore, target: u32) {
    while !counter.is_done(target) {
        let mut node = WaitNode::new(
            target,
            Waiter::Thread {
                thread: thread::current(),
                done: AtomicBool::new(false),
            },
        );
        // SAFETY: `node` lives on this stack until `block_thread` returns, which is after the
        // waker set `done` (its last touch); `counter` is borrowed for the whole wait.
        if unsafe { counter.publish(&mut node) } {
            node.block_thread();
        }
    }
}
