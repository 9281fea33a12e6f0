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
    /// A timed wait's stamp identifies it to a late [`cancel`](super::cancel) and counts the
    /// fiber as one that will wake by itself (never part of a deadlock).
    pub(crate) timing: crate::timer::Timing,
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
            timing: crate::timer::Timing::NONE,
        }
    }
}

impl Waiter {
    /// Blocks the calling thread (whose `Thread` waiter this is) until woken, or until
    /// `deadline` passes and `cancel()` takes the wait back before any waker (then returns
    /// true: timed out). When the cancel loses, the waker owns the wake and it comes soon.
    pub(crate) fn block_until(&self, deadline: u64, cancel: impl FnOnce() -> bool) -> bool {
        let Waiter::Thread { done, .. } = self else {
            unreachable!("not a thread waiter")
        };
        let mut cancel = Some(cancel);
        // Acquire pairs with the waker's Release: the woken thread sees what the waker wrote.
        while !done.load(Ordering::Acquire) {
            match crate::timer::remaining(deadline) {
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

    /// Makes the waiter of `node` runnable.
    ///
    /// # Safety
    /// `node` was unlinked by the caller, who owns it until this call; after this call nobody
    /// may touch it (the waiter may already have resumed and reused its stack).
    pub(crate) unsafe fn wake(node: *mut WaitNode) {
        // SAFETY: caller contract — the node is alive and ours.
        let timed = unsafe { (*node).timing.stamp } != 0;
        // SAFETY: as above.
        match unsafe { &(*node).waiter } {
            // SAFETY: a parked fiber's system is alive: shutdown waits for parked fibers, and
            // `make_ready_from` counts itself in flight before it un-counts the fiber, so the
            // system stays alive until its last touch. A timed wait was counted with the
            // primitive waits (`publish_wait`).
            Waiter::Fiber { shared, fiber } => unsafe { (**shared).make_ready_from(*fiber, timed) },
            Waiter::Thread { thread, done } => {
                // Clone before `done`: after the store the waiter may free the node.
                let thread = thread.clone();
                done.store(true, Ordering::Release);
                thread::unpark(&thread);
            }
        }
    }
}

/// Blocks the calling OS thread until `counter` is at or below `target` or `deadline`
/// (`timer::NEVER` for none) passes: publish a node on this stack, park, and re-check — a wake
/// may be spurious (counter/README.md). Returns whether the target was reached.
pub(crate) fn block_thread_until(
    counter: &crate::counter::CounterCore,
    target: u32,
    deadline: u64,
) -> bool {
    while !counter.is_done(target) {
        if crate::timer::passed(deadline) {
            return false;
        }
        let mut node = WaitNode::new(
            target,
            Waiter::Thread {
                thread: thread::current(),
                done: AtomicBool::new(false),
            },
        );
        node.timing = crate::timer::Timing::until(deadline);
        let (ptr, stamp) = (&mut node as *mut WaitNode, node.timing.stamp);
        // SAFETY: `node` lives on this stack until the wait ends, which is after the waker set
        // `done` (its last touch) or our cancel took it back; `counter` is borrowed for the
        // whole wait.
        if unsafe { counter.publish(ptr) } {
            #[cfg(feature = "simulation")]
            crate::sim::waits_on(|| {
                format!(
                    "a plain thread waits on counter {:p} for <= {target} (now {})",
                    counter,
                    counter.value()
                )
            });
            node.waiter
                .block_until(deadline, || super::cancel(counter, ptr, stamp));
            #[cfg(feature = "simulation")]
            crate::sim::done_waiting();
        }
    }
    true
}
