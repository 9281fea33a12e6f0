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
        self.sub_on(n, None);
    }

    /// [`sub`](Self::sub) by a job of the worker whose owner-only state is `local`: a waiter
    /// whose home is that worker is handed straight to it (see `Shared::make_ready_from`).
    #[inline]
    pub(crate) fn sub_on(&self, n: u32, local: Option<&crate::worker::WorkerCore>) {
        crate::fault::inject(crate::fault::Site::CounterDecrement);
        let this: *const CounterCore = self;
        let old = self.word.fetch_sub(u64::from(n), Ordering::AcqRel);
        let Some(new) = value_of(old).checked_sub(n) else {
            fatal("a counter was decremented below zero (a job finished twice?)");
        };
        if new < trigger_of(old) {
            wake_cold(this, new, local);
        }
    }

    /// Adds `n` unless the count would pass 2³² − 1; on overflow the word is left as it was
    /// and the count found is returned. Never wakes anyone (the count only rises). A CAS loop
    /// rather than a `fetch_add`: an overflowing add must not carry into the trigger.
    /// Relaxed, as [`add`](Self::add): later decrements are RMWs on the same word.
    pub(crate) fn checked_add(&self, n: u32) -> Result<(), u32> {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if value_of(w).checked_add(n).is_none() {
                return Err(value_of(w));
            }
            match self.word.compare_exchange_weak(
                w,
                w + u64::from(n),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(x) => w = x,
            }
        }
    }

    /// Subtracts `n` unless the count is below `n` (then the word is left as it was and the
    /// count found is returned), and wakes every waiter whose target the new count reached —
    /// the same wake rule as [`sub`](Self::sub), whose `fetch_sub` this CAS stands for: both
    /// are RMWs on the word, so a waiter's publication is ordered before or after it (see
    /// `counter/README.md`). After a successful CAS this function never touches `self` again:
    /// the counter may already be freed.
    pub(crate) fn checked_sub(&self, n: u32) -> Result<(), u32> {
        crate::fault::inject(crate::fault::Site::CounterDecrement);
        let this: *const CounterCore = self;
        let mut w = self.word.load(Ordering::Relaxed);
        let (old, new) = loop {
            let Some(new) = value_of(w).checked_sub(n) else {
                return Err(value_of(w));
            };
            match self.word.compare_exchange_weak(
                w,
                w - u64::from(n),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(old) => break (old, new),
                Err(x) => w = x,
            }
        };
        if new < trigger_of(old) {
            wake_cold(this, new, None);
        }
        Ok(())
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
fn wake_cold(counter: *const CounterCore, reached: u32, local: Option<&crate::worker::WorkerCore>) {
    let woken = waits()
        .lock(counter as usize)
        .drain(|n| n.counter == counter && n.target >= reached);
    for node in woken {
        // SAFETY: unlinked by us under the lock: the wake is ours, and the chain read the
        // node's `next` before yielding it (after the wake the waiter may reuse its stack).
        unsafe { WaitNode::wake(node, local) };
    }
}

/// Runs `f` on `node` under its bucket lock if it is still linked on `counter`'s list (an async
/// waiter updating its `Waker`, or `unlink`ing itself when its future is dropped) and returns
/// true; false when a decrement unlinked it first (that decrement owns the wake, and the
/// waiter's `done` says when it is over). The node is dereferenced only while linked.
pub(crate) fn with_linked(
    counter: *const CounterCore,
    node: *mut WaitNode,
    f: impl FnOnce(&mut crate::waitlist::Locked<'_, WaitNode>, *mut WaitNode),
) -> bool {
    let mut list = waits().lock(counter as usize);
    if list
        .find(|n| core::ptr::eq(n, node) && n.counter == counter)
        .is_none()
    {
        return false;
    }
    f(&mut list, node);
    true
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
        unsafe { WaitNode::wake(node, None) };
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
///
/// # Pre-armed counters
///
/// [`add`](Self::add) raises the count without submitting anything and
/// [`sub`](Self::sub) lowers it, waking the waiters whose target it reaches exactly as a
/// finishing job does. Together they *hold* a counter: a counter created with
/// [`with_value(1)`](Self::with_value) (or raised with `add(1)`) reads 1 until the hold is
/// released, so code can already wait on a batch that has not been submitted yet. That is how
/// a frame lays out a DAG of systems up front ("kick batch B when counter A reaches 0"): a job
/// waits on A, kicks B's batch on the held counter with [`Ctx::run_jobs`](crate::Ctx::run_jobs)
/// (which adds the batch size), then releases the hold with `sub(1)`. Whoever waits on B —
/// the next stage's kicker, a thread — may have started waiting long before; it returns only
/// once the batch has run and the hold is gone.
///
/// ```
/// use jobsys::{Counter, Ctx, JobDecl, JobSystem, job_meta};
/// use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
///
/// const JOBS: u32 = 4;
/// /// Jobs of each stage that ran, and jobs that found the stage before them unfinished.
/// static RAN: [AtomicU32; 3] = [const { AtomicU32::new(0) }; 3];
/// static EARLY: AtomicU32 = AtomicU32::new(0);
///
/// /// A job of stage `data` (0, 1, 2 for A, B, C).
/// fn work(_: &Ctx, data: *mut ()) {
///     let stage = data.addr();
///     if stage > 0 && RAN[stage - 1].load(SeqCst) != JOBS {
///         EARLY.fetch_add(1, SeqCst);
///     }
///     RAN[stage].fetch_add(1, SeqCst);
/// }
///
/// /// When `after` reaches 0, kick `decls` on the held `counter`, then release the hold.
/// struct Kick<'a> {
///     after: &'a Counter,
///     decls: &'a [JobDecl],
///     counter: &'a Counter,
/// }
///
/// /// # Safety
/// /// `data` points at a `Kick` whose fields outlive its `counter` reaching 0.
/// unsafe fn kick(ctx: &Ctx, data: *mut ()) {
///     // SAFETY: caller contract.
///     let k = unsafe { &*data.cast::<Kick>() };
///     ctx.wait_for_counter(k.after, 0);
///     // SAFETY: `decls` and `counter` outlive the counter reaching 0 (caller contract),
///     // which it cannot do before this batch has run: `work` is sound anywhere.
///     unsafe { ctx.run_jobs(k.decls, k.counter) }; // the counter: 1 + JOBS
///     k.counter.sub(1); // release the hold: now only the batch keeps it up
/// }
///
/// let jobs = JobSystem::builder().workers(2).build().unwrap();
/// jobs.run(|ctx| {
///     let stage = |i: usize| -> Vec<JobDecl> {
///         let data = std::ptr::without_provenance_mut(i);
///         (0..JOBS).map(|_| JobDecl::new(job_meta!("work"), work, data)).collect()
///     };
///     let (decls_a, decls_b, decls_c) = (stage(0), stage(1), stage(2));
///     // Held: each reads 1 until its batch is kicked and the hold released, so the
///     // kickers may wait on A and B before anything is submitted.
///     let (a, b, c) = (Counter::with_value(1), Counter::with_value(1), Counter::with_value(1));
///     let kicks = [
///         Kick { after: &a, decls: &decls_b, counter: &b },
///         Kick { after: &b, decls: &decls_c, counter: &c },
///     ];
///     let kick_decls: Vec<JobDecl> = kicks
///         .iter()
///         .map(|k| JobDecl::new(job_meta!("kick"), kick, std::ptr::from_ref(k).cast_mut().cast()))
///         .collect();
///     let kicked = Counter::new();
///     // SAFETY: everything lives in this frame until both waits below have returned.
///     unsafe { ctx.run_jobs(&kick_decls, &kicked) };
///     // SAFETY: as above; `work` is sound on any worker.
///     unsafe { ctx.run_jobs(&decls_a, &a) };
///     a.sub(1); // A is kicked: release its hold
///     ctx.wait_for_counter(&c, 0); // the whole DAG: A, then B, then C
///     assert_eq!(RAN[2].load(SeqCst), JOBS);
///     ctx.wait_for_counter(&kicked, 0);
/// });
/// assert_eq!(EARLY.load(SeqCst), 0);
/// ```
///
/// Subtract only what you added: a `sub` that takes off a batch's jobs lets a wait for that
/// batch return while its jobs still run, which breaks the contract of its `run_jobs`.
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

    crate::shim::loom_const! {
        /// A counter at `value`: a counter held (pre-armed) `value` times, which waits on it
        /// see as unfinished until [`sub`](Self::sub) takes the holds off (see the type docs).
        pub fn with_value(value: u32) -> Self {
            Self {
                core: CachePadded::new(CounterCore::new(value)),
            }
        }
    }

    /// Raises the count by `n` without submitting anything: *holds* the counter, so waits on
    /// it do not return until a matching [`sub`](Self::sub) (see "Pre-armed counters" in the
    /// type docs). Never wakes anyone.
    ///
    /// # Panics
    /// If the count would pass 2³² − 1; the counter is left unchanged.
    #[track_caller]
    pub fn add(&self, n: u32) {
        if let Err(value) = self.core.checked_add(n) {
            panic!(
                "Counter::add({n}) on a counter at {value} would overflow its 32-bit count (at most 2^32 - 1); the counter is unchanged"
            );
        }
    }

    /// Lowers the count by `n`, waking every fiber and thread waiting for a target the new
    /// count reaches — exactly as finishing jobs do. Releases holds taken with
    /// [`add`](Self::add) or [`with_value`](Self::with_value); take off only what you added
    /// (see the type docs). Once the call has subtracted, it does not touch the counter again,
    /// so a waiter it wakes may free the counter at once.
    ///
    /// # Panics
    /// If the count is below `n`; the counter is left unchanged.
    #[track_caller]
    pub fn sub(&self, n: u32) {
        if let Err(value) = self.core.checked_sub(n) {
            panic!(
                "Counter::sub({n}) on a counter at {value} would take it below zero (more subtracted than added?); the counter is unchanged"
            );
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
