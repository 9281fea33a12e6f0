//! Wait nodes: who is waiting on which counter, for what value.

use crate::deadline::Timing;
use crate::waitlist::{Waiter, block_thread};

/// A waiter, linked into a counter's list. Lives on the waiter's stack for the whole wait.
pub(crate) struct WaitNode {
    next: *mut WaitNode,
    /// The counter waited on (set at publication; identifies the node in its bucket).
    pub(crate) counter: *const crate::counter::CounterCore,
    /// Woken when the count is at or below this.
    pub(crate) target: u32,
    pub(crate) waiter: Waiter,
    /// A timed wait's stamp identifies it to a late [`cancel`](super::cancel) and counts the
    /// fiber as one that will wake by itself (never part of a deadlock).
    pub(crate) timing: Timing,
}

crate::waitlist::impl_node!(WaitNode);

impl WaitNode {
    pub(crate) fn new(target: u32, waiter: Waiter) -> Self {
        Self {
            next: core::ptr::null_mut(),
            counter: core::ptr::null(),
            target,
            waiter,
            timing: Timing::NONE,
        }
    }

    /// Makes the waiter of `node` runnable. A timed wait was counted with the waits that end
    /// by themselves (`publish_wait`) and is un-counted the same way. `local`: the owner-only
    /// state of the worker the caller runs on, if any (see `Waiter::wake`).
    ///
    /// # Safety
    /// `node` was unlinked by the caller, who owns it until this call; after this call nobody
    /// may touch it (the waiter may already have resumed and reused its stack).
    pub(crate) unsafe fn wake(node: *mut WaitNode, local: Option<&crate::worker::WorkerCore>) {
        // SAFETY: caller contract — the node is alive and ours.
        let (waiter, timed) = unsafe { (&raw const (*node).waiter, (*node).timing.is_timed()) };
        // SAFETY: forwarded.
        unsafe { Waiter::wake(waiter, timed, local) };
    }
}

/// Blocks the calling OS thread until `counter` is at or below `target` or `deadline`
/// (`deadline::NEVER` for none) passes: publish a node on this stack, park, and re-check — a
/// wake may be spurious (counter/README.md). Returns whether the target was reached.
pub(crate) fn block_thread_until(
    counter: &crate::counter::CounterCore,
    target: u32,
    deadline: u64,
) -> bool {
    while !counter.is_done(target) {
        if crate::deadline::passed(deadline) {
            return false;
        }
        let mut node = WaitNode::new(target, Waiter::thread());
        node.timing = Timing::until(deadline);
        let (ptr, stamp) = (&mut node as *mut WaitNode, node.timing.stamp);
        // SAFETY: `node` lives on this stack until the wait ends, which is after the waker set
        // `done` (its last touch) or our cancel took it back; `counter` is borrowed for the
        // whole wait.
        if unsafe { counter.publish(ptr) } {
            block_thread(
                &node.waiter,
                deadline,
                || super::cancel(counter, ptr, stamp),
                || {
                    format!(
                        "a plain thread waits on counter {:p} for <= {target} (now {})",
                        counter,
                        counter.value()
                    )
                },
            );
        }
    }
    true
}
