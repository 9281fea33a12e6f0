//! The counter word, and the table of wait lists it hashes into.

use super::WaitNode;
use crate::panic::fatal;
use crate::shim::{AtomicBool, AtomicU64, Ordering};
use core::fmt;
use crossbeam_utils::CachePadded;

const VALUE_MASK: u64 = 0xFFFF_FFFF;

#[inline]
fn value_of(word: u64) -> u32 {
    word as u32
}

/// High half of the word: one more than the largest target among this counter's waiters, or
/// 0 when nobody waits. It may be stale-high (see the wait table below); never stale-low.
#[inline]
fn trigger_of(word: u64) -> u32 {
    (word >> 32) as u32
}

#[inline]
fn with_trigger(word: u64, trigger: u32) -> u64 {
    (u64::from(trigger) << 32) | (word & VALUE_MASK)
}

// The wait lists of every counter in the process, hashed by counter address.
//
// Process-wide rather than per system, so a counter may be waited on through one system's
// handle while another system's jobs count it down.
//
// Why not a list inside each counter: the decrement that takes the slow path would touch the
// counter after its `fetch_sub`, and by then a waiter that saw the count reach its target may
// have returned and freed the counter (a second decrementer that read a stale trigger is
// enough). Here the slow path touches only this table and the nodes of still-parked waiters;
// a trigger that stays high after its waiters left costs a spurious slow path, nothing more,
// and the next publisher on that counter recomputes it exactly.
crate::waitlist::static_buckets!(fn waits() -> WaitNode);

/// The shared part of every counter: one packed word and a poison flag.
///
/// Word layout: low 32 bits the count, high 32 bits the trigger (see [`trigger_of`]). Packing
/// them makes the common decrement one RMW that also says whether anyone may need waking; a
/// waiter publishes by checking the count and raising the trigger in the same word, so the
/// decrement that reaches its target and its publication are totally ordered.
pub(crate) struct CounterCore {
    word: AtomicU64,
    poisoned: AtomicBool,
}

impl CounterCore {
    crate::shim::loom_const! {
        pub(crate) fn new(value: u32) -> Self {
            Self {
                word: AtomicU64::new(value as u64),
                poisoned: AtomicBool::new(false),
            }
        }
    }

    /// The current count. Acquire: a waiter that sees its target also sees the finished jobs'
    /// writes (they released with their decrement).
    #[inline]
    pub(crate) fn value(&self) -> u32 {
        value_of(self.word.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn is_done(&self, target: u32) -> bool {
        self.value() <= target
    }

    /// Whether subtracting `n` now would reach a published waiter's target. A relaxed look
    /// for the batched-decrement path (`Ctx::complete`): a stale answer only makes a batch be
    /// paid a little earlier or at its next payment point, never loses a decrement.
    #[inline]
    pub(crate) fn would_wake(&self, n: u32) -> bool {
        let word = self.word.load(Ordering::Relaxed);
        value_of(word).saturating_sub(n) < trigger_of(word)
    }

    /// Adds `n` outstanding jobs. Relaxed is enough: the jobs are published after this (a queue
    /// push with Release) and their decrements are RMWs on the same word, so coherence orders
    /// them after the add.
    #[inline]
    pub(crate) fn add(&self, n: u32) {
        let old = self.word.fetch_add(u64::from(n), Ordering::Relaxed);
        if value_of(old).checked_add(n).is_none() {
            fatal("a counter overflowed 2^32 - 1 outstanding jobs");
        }
    }

    /// Removes `n` finished jobs and wakes every waiter whose target was reached.
    ///
    /// Release publishes the finished jobs' writes to waiters. After the `fetch_sub` this
    /// function never touches `self` again: the counter may already be freed.
    #[inline]
    pub(crate) fn sub(&self, n: u32) {
        crate::fault::inject(crate::fault::Site::CounterDecrement);
        let this: *const CounterCore = self;
        let old = self.word.fetch_sub(u64::from(n), Ordering::AcqRel);
        let Some(new) = value_of(old).checked_sub(n) else {
            fatal("a counter was decremented below zero (a job finished twice?)");
        };
        if new < trigger_of(old) {
            wake_cold(this, new);
        }
    }

    /// Publishes `node` as a waiter on this counter. Returns `false` if the target is already
    /// reached (the node was not linked and the caller must not wait).
    ///
    /// Called by the scheduler after the waiting fiber has switched out (post-switch
    /// publication), or by a blocking thread before it parks.
    ///
    /// # Safety
    /// `node` stays alive and untouched by its owner until the wake protocol hands it back, and
    /// this counter outlives the wait.
    pub(crate) unsafe fn publish(&self, node: *mut WaitNode) -> bool {
        crate::fault::inject(crate::fault::Site::WaitPublish);
        let this: *const CounterCore = self;
        // SAFETY: caller contract.
        let target = unsafe { (*node).target };
        let mut list = waits().lock(this as usize);
        // The exact trigger: our target and every other waiter of this counter in the bucket.
        let max = list
            .iter()
            .filter(|n| n.counter == this)
            .fold(target, |max, n| max.max(n.target));
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if value_of(w) <= target {
                return false;
            }
            match self.word.compare_exchange_weak(
                w,
                with_trigger(w, max + 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(x) => w = x,
            }
        }
        // SAFETY: caller contract: the node is ours, not linked, and stays put until it is
        // woken; linked, it is read only under the bucket lock.
        unsafe {
            (*node).counter = this;
            list.append(node);
        }
        true
    }

    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn clear_poison(&self) -> bool {
        self.poisoned.swap(false, Ordering::AcqRel)
    }
}

/// The slow path of a decrement that reached `reached`: wake this counter's waiters whose
/// target is at or above it. Touches only the bucket and the woken nodes, never the counter.
#[cold]
fn wake_cold(counter: *const CounterCore, reached: u32) {
    let woken = waits()
        .lock(counter as usize)
        .drain(|n| n.counter == counter && n.target >= reached);
    for node in woken {
        // SAFETY: unlinked by us under the lock: the wake is ours, and the chain read the
        // node's `next` before yielding it (after the wake the waiter may reuse its stack).
        unsafe { WaitNode::wake(node) };
    }
}

/// Takes a timed wait's `node` (of park `stamp`) off `counter`'s list if it is still there
/// and wakes its waiter; false if a decrement took it first (and owns the wake) or the wait is
/// over. The race is settled by who unlinks the node under the bucket lock, as for parks (see
/// "Timeouts" in `park/mod.rs`); the node is dereferenced only while linked. The counter's
/// trigger may stay high: that costs a spurious slow path, as for any waiter that left.
pub(crate) fn cancel(counter: *const CounterCore, node: *mut WaitNode, stamp: u64) -> bool {
    let mut list = waits().lock(counter as usize);
    let taken = list
        .take_first(|n| core::ptr::eq(n, node) && n.counter == counter && n.timing.stamp == stamp);
    drop(list);
    if taken.is_some() {
        // SAFETY: unlinked by us under the lock: the wake is ours.
        unsafe { WaitNode::wake(node) };
    }
    taken.is_some()
}

/// An atomic count of unfinished jobs that code can wait on: the raw synchronisation primitive
/// of the Naughty-Dog model.
///
/// [`Ctx::run_jobs`](crate::Ctx::run_jobs) adds the batch size, every job that finishes
/// subtracts one (a worker subtracts a run of finished jobs of one counter together, before
/// it starts other work or parks, and at once when that reaches a parked waiter's target), and
/// [`Ctx::wait_for_counter`](crate::Ctx::wait_for_counter) parks the calling
/// *fiber* (never the worker thread) until the count is at or below a target. Waiting for a
/// non-zero target is allowed: the decrement that reaches it wakes the waiter.
///
/// A job that panics marks its counter *poisoned*; the payload itself is reported by the panic
/// hook only. Use [`Ctx::scope`](crate::Ctx::scope) or [`Ctx::join`](crate::Ctx::join) to have
/// panics re-raised in the waiter. A counter must outlive every job counted on it and every
/// wait on it; the `unsafe` submit functions state that contract.
///
/// Counters are 32-bit: at most 2³² − 1 jobs may be outstanding on one counter.
pub struct Counter {
    core: CachePadded<CounterCore>,
}

impl Counter {
    crate::shim::loom_const! {
        /// A counter at zero.
        pub fn new() -> Self {
            Self {
                core: CachePadded::new(CounterCore::new(0)),
            }
        }
    }

    /// The count right now: the unfinished jobs, plus finished ones a worker has not
    /// subtracted yet (see the type docs). To wait for a value, use
    /// [`Ctx::wait_for_counter`](crate::Ctx::wait_for_counter), which sees every decrement.
    pub fn value(&self) -> u32 {
        self.core.value()
    }

    /// Whether the count is at or below `target`.
    pub fn is_done(&self, target: u32) -> bool {
        self.core.is_done(target)
    }

    /// Whether a job counted here panicked since the last [`clear_poison`](Self::clear_poison).
    pub fn is_poisoned(&self) -> bool {
        self.core.is_poisoned()
    }

    /// Clears the poison flag; returns whether it was set.
    pub fn clear_poison(&self) -> bool {
        self.core.clear_poison()
    }

    pub(crate) fn core(&self) -> &CounterCore {
        &self.core
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.value())
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}
