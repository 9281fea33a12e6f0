//! The switch and the wake: a worker switches into a fiber and handles why it came back
//! (post-switch publication of a wait, the parked accounting, the fiber's state changes), and a
//! waker makes a parked fiber runnable again. Both sides of a park read in this one file; the
//! protocol's argument is in `wake/README.md` ("The waker's order").

use super::shared::PARKED_HERE;
use super::{Shared, Worker, WorkerCore};
use crate::fiber::{FiberState, Resume, Suspend, Switched};
use crate::panic::fatal;
use crate::shim::Ordering;
use crate::timer::Target;
use crate::{fault, profile};

/// One parked fiber in the low half of `Shared::parked`.
const PARKED_ALL: u64 = (1 << 32) - 1;
/// One fiber parked on a primitive, in the high half of `Shared::parked`.
const PARKED_ON_SYNC: u64 = 1 << 32;

/// Switches the worker `index` (whose owner-only state is `core`) into `fiber` and handles why
/// it came back (post-switch publication: the fiber's stack is quiescent for everything below).
pub(crate) fn switch_into(
    shared: &Shared,
    index: usize,
    core: &WorkerCore,
    fiber: u32,
    input: Resume,
) {
    use FiberState::*;
    let slot = shared.fibers.slot(fiber);
    let prev = slot.state();
    debug_assert!(
        matches!(prev, Pooled | Ready),
        "switching into a {prev:?} fiber"
    );
    slot.transition(prev, Running);
    slot.home.store(index, Ordering::Relaxed);
    fault::inject(fault::Site::Switch);
    profile::fiber_enter(index, fiber);
    // SAFETY: the caller (`main_loop`) took `fiber` from the free list or a ready queue, which
    // hand each fiber to one worker at a time.
    let result = unsafe { slot.resume(input) };
    profile::fiber_leave(index, fiber);
    let worker = &shared.workers[index];
    match result {
        Switched::Suspended(Suspend::Idle) => {
            slot.transition(Running, Pooled);
            if shared.fibers.release(fiber) {
                // Workers went to sleep with jobs queued that only a fiber like this one could
                // run (possibly pinned to them): get them up.
                shared.wake_all();
            }
        }
        Switched::Suspended(Suspend::Wait(node, counter)) => {
            // Copied before the publication: once published, the node may be woken and gone.
            // SAFETY: the node is on the parked fiber's stack, untouched until it is woken.
            let timing = unsafe { (*node.as_ptr()).timing };
            // SAFETY: the node is on the parked fiber's stack, which stays untouched until the
            // wake protocol pushes the fiber to a ready queue; the counter outlives the wait
            // (the waiter borrows it). A timed wait counts as one that wakes by itself.
            let parked = publish_wait(shared, worker, core, fiber, timing.stamp != 0, || unsafe {
                counter.as_ref().publish(node.as_ptr())
            });
            let target = Target::Counter {
                counter: counter.as_ptr(),
                node: node.as_ptr(),
            };
            shared.arm_timer(parked, fiber, timing, target);
        }
        Switched::Suspended(Suspend::Park(node)) => {
            // SAFETY: as for `Wait`: copied before the publication.
            let (key, timing) = unsafe { ((*node.as_ptr()).key(), (*node.as_ptr()).timing) };
            // SAFETY: the node and its validator's data are on the parked fiber's stack, which
            // stays untouched until the unpark protocol pushes the fiber to a ready queue.
            let parked = publish_wait(shared, worker, core, fiber, true, || unsafe {
                crate::park::publish(node.as_ptr())
            });
            let node = node.as_ptr();
            shared.arm_timer(parked, fiber, timing, Target::Park { key, node });
        }
        Switched::Suspended(Suspend::ParkGroup(group, nodes, n)) => {
            // SAFETY: as for `Park`; the timer of a group is on its first node.
            let (key, timing) = unsafe { ((*nodes.as_ptr()).key(), (*nodes.as_ptr()).timing) };
            // SAFETY: the group and its nodes are on the parked fiber's stack (as for `Park`).
            let parked = publish_wait(shared, worker, core, fiber, true, || unsafe {
                crate::park::publish_group(group.as_ptr(), nodes.as_ptr(), n)
            });
            let node = nodes.as_ptr();
            shared.arm_timer(parked, fiber, timing, Target::Park { key, node });
        }
        Switched::Suspended(Suspend::Yield) => {
            slot.transition(Running, Ready);
            if worker.yielded.push(fiber).is_err() {
                fatal("yield queue overflow");
            }
        }
        Switched::Returned => fatal("a fiber returned while the system runs"),
    }
}

/// Post-switch publication of a wait (a counter's or a primitive's, `on_sync`): counts the fiber
/// parked here, then `publish`es; if the wait is already over, the fiber goes straight back to
/// this worker (its hand-off slot, or its ready queue). Returns whether it parked.
///
/// A published untimed counter wait is added to `Shared::parked` later, when this worker runs
/// out of work (`WorkerCore::pend_parked`, see `Shared::flush_parked`); a primitive's park or a
/// timed wait at once (the stall check reads those).
fn publish_wait(
    shared: &Shared,
    worker: &Worker,
    core: &WorkerCore,
    fiber: u32,
    on_sync: bool,
    publish: impl FnOnce() -> bool,
) -> bool {
    use FiberState::*;
    let slot = shared.fibers.slot(fiber);
    slot.transition(Running, Waiting);
    worker.parked_here.fetch_add(1, Ordering::SeqCst);
    if publish() {
        worker.stats.parked_waits.add(1);
        // The window in which a waker may un-count the fiber before it is counted.
        fault::inject(fault::Site::AfterPublish);
        if on_sync {
            shared.fiber_parked(PARKED_ON_SYNC + 1);
        } else {
            core.pend_parked();
        }
        true
    } else {
        slot.transition(Waiting, Ready);
        // Owner-only: the loop resumes it next, before it could look for work or sleep.
        if !core.hand_off(fiber) {
            worker.push_ready(fiber);
        }
        worker.parked_here.fetch_sub(1, Ordering::SeqCst);
        false
    }
}

impl Shared {
    /// Adds the fibers worker `core` parked on counters and has not counted yet (see
    /// `publish_wait`) to `parked`, and reports a deadlock if every fiber is now parked. Called
    /// by the worker's loop when it runs out of work and when it leaves: a worker whose fibers
    /// are all stuck runs out of work, so a deadlock is still reported, by the last worker to
    /// get there.
    #[inline]
    pub(crate) fn flush_parked(&self, core: &WorkerCore) {
        let n = core.take_pending_parked();
        if n != 0 {
            self.fiber_parked(u64::from(n));
        }
    }

    /// Adds `delta` (fibers in the low half, those parked on a primitive or in a timed wait in
    /// the high half) to `parked`; reports a deadlock if every fiber is now parked.
    ///
    /// A fiber is counted after its publication (at once, or later from its worker's pending
    /// count) and un-counted by its waker — from `parked`, or from the pending count of the
    /// worker the waker runs on when that is its home — so `parked` plus every worker's
    /// pending count never exceeds the number of fibers really parked (the pending counts are
    /// never negative): when `parked` equals the pool size, no fiber runs a job, and only jobs
    /// decrement counters: nothing can ever wake them. (A waker may take a pending count that
    /// was another fiber's; the sum, the only thing the argument uses, is the same.)
    #[cold]
    pub(crate) fn fiber_parked(&self, delta: u64) {
        // Wrapping: a waker may un-count fibers before they are counted (a preempted publisher,
        // or a count still pending on its worker), so the word can be up to the pool size
        // below zero for that moment. The check below then sees a value that cannot equal the
        // pool size: no false report, and no deadlock is missed — a fiber being woken is not
        // stuck.
        let word = self
            .parked
            .fetch_add(delta, Ordering::AcqRel)
            .wrapping_add(delta);
        // A fiber parked on a `jobsys::sync` primitive may be released by a plain thread, so
        // the pool is only provably stuck when none is. One RMW reads both counts together: a
        // wake between two separate reads could make a stale pair look like a deadlock.
        if (word & PARKED_ALL) as usize == self.fibers.len() && word >> 32 == 0 {
            self.deadlock("every fiber in the pool is parked and no job can run to wake one");
        }
    }

    /// Makes a parked fiber runnable on its home worker (the wake stage). `from_sync`: it was
    /// counted as parked on a `jobsys::sync` primitive or in a timed wait (un-counted from
    /// both halves of `parked` in one RMW).
    ///
    /// The order (argued in `wake/README.md`, "The waker's order"):
    /// 1. count this waker in flight toward the home worker — first, so that from now until
    ///    step 5 the system cannot finish dropping, and a drain that still sees the fiber
    ///    counted as parked after it ran sees the waker too (no false deadlock report);
    /// 2. un-count `parked`, push the fiber to a ready queue;
    /// 3. un-count it from `parked_here` (which may make worker 0's `run` done);
    /// 4. wake the worker the fiber went to — after step 3, so that a worker that decided to
    ///    sleep because `run` was not done yet is woken for the change (the SeqCst decrement
    ///    and the wake's fence pair with the sleeper's announcement and fence);
    /// 5. un-count the waker: the last touch of this system (the waker may be a job of
    ///    another system or a plain thread; the system may be freed right after).
    ///
    /// `local` is the owner-only state of the worker the waker runs on, when it runs on one
    /// (a job's decrement, paid from that worker's debt). When that worker is the fiber's home
    /// (and fibers do not migrate), the waker is that worker's own thread: it hands the fiber
    /// over in the worker's slot (`WorkerCore::hand_off`), which the loop resumes before it
    /// looks for anything else — no ready queue, no wake (the worker is awake: it is us), no
    /// in-flight count (the system cannot drop while one of its fibers runs), and an
    /// untimed wait's count taken back from the worker's pending count when it has one (see
    /// `wake/README.md`, "The same-thread hand-off").
    pub(crate) fn make_ready_from(&self, fiber: u32, from_sync: bool, local: Option<&WorkerCore>) {
        let slot = self.fibers.slot(fiber);
        let home = slot.home.load(Ordering::Relaxed);
        let w = &self.workers[home];
        if let Some(core) = local
            && !self.migration
            && core.is(self, home)
        {
            slot.transition(FiberState::Waiting, FiberState::Ready);
            if from_sync || !core.unpend_parked() {
                let delta = 1 + if from_sync { PARKED_ON_SYNC } else { 0 };
                self.parked.fetch_sub(delta, Ordering::AcqRel);
            }
            if !core.hand_off(fiber) {
                w.push_ready(fiber);
            }
            // Only this thread reads the slot, and its loop takes the slot before it asks
            // whether `run` is done or goes to sleep.
            w.parked_here.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        w.waker_in_flight();
        let delta = 1 + if from_sync { PARKED_ON_SYNC } else { 0 };
        self.parked.fetch_sub(delta, Ordering::AcqRel);
        slot.transition(FiberState::Waiting, FiberState::Ready);
        let anywhere = self.migration && !slot.has_pinned();
        let mut to = home;
        if anywhere {
            // Fault injection: make the fiber resume on another worker, as migration allows.
            to = crate::fault::migrate(home, self.workers.len()).unwrap_or(home);
            if self.workers[to].ready_any.push(fiber).is_err() {
                fatal("ready queue overflow (more ready fibers than the pool holds)");
            }
        } else {
            w.push_ready(fiber);
        }
        crate::fault::inject(crate::fault::Site::Readied);
        // After the push: `parked_here + ready` never reads zero while the fiber is on its
        // way back, so `run` cannot return before its closure's fiber has finished.
        let was = w.parked_here.fetch_sub(1, Ordering::SeqCst) & PARKED_HERE;
        self.wake_worker(to);
        if anywhere {
            self.notify_one();
            if to != home && was == 1 {
                // The fiber went elsewhere, but its home may be worker 0 asleep in `run`,
                // which this decrement may have made done.
                self.wake_worker(home);
            }
        }
        crate::fault::inject(crate::fault::Site::AfterWake);
        w.waker_landed();
    }
}
