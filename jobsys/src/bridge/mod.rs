//! The async bridge, both ways.
//!
//! - **Futures inside a job** ([`Ctx::block_on`](crate::Ctx::block_on), `block_on.rs`): the
//!   fiber polls a `Future`; between polls it parks (the worker runs other jobs). Its `Waker`
//!   is allocation-free: a pointer to the fiber's [`WakeCell`] (in its pool slot) with the
//!   `block_on`'s generation in the pointer's low bits. The state machine is `cell.rs`; its
//!   loom model `loom_tests.rs`.
//! - **Jobs inside async code** (`awaits.rs`): a [`Counter`](crate::Counter) reaching a
//!   target, a [`JobHandle`](crate::JobHandle) and a [`sync::Event`](crate::sync::Event) can
//!   be awaited from any executor. Each future holds a wait node (pinned inside it) whose
//!   waiter is a `Waiter::Task`: the counter's decrement or the event's `set` unlinks it under
//!   the bucket lock, takes its `Waker`, stores `done` (its last touch) and wakes the task.
//!
//! # The async waiter's protocol (`Await`)
//! Register, then recheck: the future publishes its node with the same validation as a fiber
//! (under the bucket lock: the counter's target not reached yet, the event not set), so the
//! decrement or `set` either sees the node or the future sees the new state — no lost wake-up.
//! The node's `waker` is written by the future only while it owns the node: before the
//! publication, or under the bucket lock while the node is still linked (a re-poll with a new
//! waker). Whoever unlinks a node owns its wake; the future then waits for `done` (a few
//! instructions away) before it reuses or frees the node. A future dropped while linked
//! unlinks its node under the lock and nobody wakes it.

mod awaits;
mod block_on;
mod cell;
#[cfg(all(test, loom))]
mod loom_tests;

pub(crate) use awaits::ParkAwait;
pub use awaits::{CounterWait, JobHandleFuture};
pub(crate) use cell::WakeCell;

use crate::shim::{AtomicBool, Ordering, UnsafeCell};
use crate::waitlist::Waiter;
use core::task::Waker;

/// The two fields of a `Waiter::Task`.
fn task_parts(w: &Waiter) -> (&UnsafeCell<Option<Waker>>, &AtomicBool) {
    match w {
        Waiter::Task { waker, done } => (waker, done),
        _ => unreachable!("not a task waiter"),
    }
}

/// Stores `new` as the waiter's waker unless the one there already wakes the same task.
///
/// # Safety
/// The caller owns the node: it is not linked (a linked node's waker changes through
/// [`replace_waker`], whose caller drops the old one after the lock).
unsafe fn set_waker(w: &Waiter, new: &Waker) {
    let (waker, _) = task_parts(w);
    waker.with_mut(|p| {
        // SAFETY: caller contract: nobody else reads or writes the waker now.
        let cur = unsafe { &mut *p };
        if !cur.as_ref().is_some_and(|c| c.will_wake(new)) {
            *cur = Some(new.clone());
        }
    });
}

/// While the node is linked: replaces its waker by `new` (cloned by the caller *before* it
/// took the bucket lock) unless the one there already wakes the same task. Returns the waker
/// that is no longer needed — the old one, or `new` — for the caller to drop *after* it
/// released the lock: a waker's clone and drop may run arbitrary code (the last drop of an
/// `Arc<impl Wake>` runs its `Drop`, which may set an event or decrement a counter whose list
/// lies in the same bucket), and that code must not run under the bucket lock, where it would
/// deadlock on that lock.
///
/// # Safety
/// The caller holds the bucket lock of the linked node.
unsafe fn replace_waker(w: &Waiter, new: Waker) -> Waker {
    let (waker, _) = task_parts(w);
    waker.with_mut(|p| {
        // SAFETY: caller contract: nobody else reads or writes the waker now.
        let cur = unsafe { &mut *p };
        match cur {
            Some(c) if c.will_wake(&new) => new,
            _ => cur
                .replace(new)
                .expect("a published task waiter has a waker"),
        }
    })
}

/// Prepares an unlinked node's waiter for a publication: its waker, and `done` cleared.
///
/// # Safety
/// As [`set_waker`]; the node is not linked.
unsafe fn arm(w: &Waiter, new: &Waker) {
    // SAFETY: forwarded.
    unsafe { set_waker(w, new) };
    task_parts(w).1.store(false, Ordering::Relaxed);
}

/// After the node was found unlinked by someone else: waits for that waker's last touch
/// (`done`), which follows its unlink by a few instructions.
fn settle(w: &Waiter) {
    let done = task_parts(w).1;
    // Acquire pairs with the waker's Release: what it wrote before (the token) is visible.
    // The waker finishes within a few instructions of unlinking the node, unless its thread
    // was descheduled in between: spin briefly, then yield the core to it.
    let mut spins = 0u32;
    while !done.load(Ordering::Acquire) {
        if spins < 64 {
            spins += 1;
            crate::shim::spin_loop();
        } else {
            crate::shim::thread::yield_now();
        }
    }
}
