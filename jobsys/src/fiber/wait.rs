//! How a fiber waits: the counter wait (its own children inline first, then park until the
//! target — see `counter/README.md`) and the parks of the `jobsys::sync` primitives (see
//! `park/`). Each ends in `Ctx::suspend`; the worker publishes the wait after the switch has
//! landed (`worker/switch.rs`).

use super::{Ctx, Suspend};
use crate::counter::{CounterCore, WaitNode};
use crate::panic::fatal;
use crate::profile;
use crate::waitlist::Waiter;
use core::ptr::NonNull;

impl Ctx {
    /// The counter wait behind every safe wait (scope, join, `run`'s root): it never unwinds
    /// before `counter` reaches `target`, because the jobs it waits for may borrow the
    /// caller's frame. In debug builds, a wait inside a no-suspend region panics — after the
    /// wait, when nothing borrows the frame any more. (Scopes and joins also check at entry,
    /// before they spawn anything, so the usual mistake panics early.)
    #[inline]
    #[track_caller]
    pub(crate) fn wait_core(&self, counter: &CounterCore, target: u32) {
        if !counter.is_done(target) {
            self.wait_cold(counter, target, crate::deadline::NEVER);
        }
        super::check_no_suspend("a counter wait");
    }

    /// The slow path of a wait until `deadline` (`timer::NEVER`: none); returns whether the
    /// target was reached.
    #[cold]
    pub(super) fn wait_cold(&self, counter: &CounterCore, target: u32, deadline: u64) -> bool {
        // Our own batched decrements may be what the waited-for counter lacks.
        self.flush_decrements();
        if counter.is_done(target) {
            return true;
        }
        if std::thread::panicking() {
            fatal(
                "a job waited on a counter while its thread was panicking (wait in a Drop during unwinding?); waits are refused there",
            );
        }
        crate::worker::run_own_children(self, counter, target);
        if counter.is_done(target) {
            return true;
        }
        self.park_until_done(counter, target, deadline, false)
    }

    /// The parks of a wait on `counter` until `target` or `deadline` (`timer::NEVER`: none);
    /// returns whether the target was reached. `fresh`: the caller has just seen that
    /// `deadline` has not passed, so the first round parks without reading the clock again (a
    /// deadline that passes meanwhile is the timer's to fire: the wait then ends at the
    /// worker's next scheduling point, as any timed wait whose deadline passes while parked).
    fn park_until_done(
        &self,
        counter: &CounterCore,
        target: u32,
        deadline: u64,
        mut fresh: bool,
    ) -> bool {
        profile::wait_begin(self.worker_index());
        // A wake may be spurious: a decrement whose slow path ran late can wake a waiter that
        // has since waited again on the same counter (see counter/README.md). So re-check and
        // park again until the target is really reached (or the deadline passed).
        let mut reached = true;
        while !counter.is_done(target) {
            if !core::mem::take(&mut fresh) && crate::deadline::passed(deadline) {
                reached = false;
                break;
            }
            let mut node = WaitNode::new(target, self.waiter_on(counter, target));
            node.timing = crate::deadline::Timing::until(deadline);
            self.suspend(Suspend::Wait(
                NonNull::from(&mut node),
                NonNull::from(counter),
            ));
            self.disarm(node.timing.stamp);
        }
        profile::wait_end(self.worker_index());
        reached
    }

    /// Parks this fiber until `counter` is at or below `target`, where the decrement comes
    /// from outside the pool (a blocking-lane thread): the wait is counted as one that ends by
    /// itself (`Timing::external`), so it is never reported as a deadlock, and it runs none of
    /// the counter's jobs inline (it has none). Never unwinds: the caller's frame may be
    /// borrowed by whoever decrements.
    pub(crate) fn wait_external(&self, counter: &CounterCore, target: u32) {
        self.flush_decrements();
        if counter.is_done(target) {
            return;
        }
        if std::thread::panicking() {
            fatal(
                "a job made a blocking call while its thread was panicking (in a Drop during unwinding?); that is refused",
            );
        }
        profile::wait_begin(self.worker_index());
        // A wake may be spurious (see `wait_cold`): park again until the target is reached.
        while !counter.is_done(target) {
            let mut node = WaitNode::new(target, self.waiter_on(counter, target));
            node.timing = crate::deadline::Timing::external();
            self.suspend(Suspend::Wait(
                NonNull::from(&mut node),
                NonNull::from(counter),
            ));
        }
        profile::wait_end(self.worker_index());
    }

    /// Parks this fiber for at least `duration`; other jobs run on its worker meanwhile.
    ///
    /// The fiber parks with a timer that the workers fire at their first scheduling point
    /// after the deadline (as for
    /// [`wait_for_counter_timeout`](Self::wait_for_counter_timeout)), so the sleep lasts at
    /// least `duration` and may last longer while every worker is busy in a long job. A zero
    /// duration returns at once without parking (use [`yield_now`](Self::yield_now) to let
    /// other work run).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// let (slept, other) = jobs.run(|ctx| {
    ///     let start = Instant::now();
    ///     // One worker: the other half of the join runs while this fiber sleeps.
    ///     ctx.join(|c| { c.sleep(Duration::from_millis(5)); start.elapsed() }, |_| 42)
    /// });
    /// assert!(slept >= Duration::from_millis(5));
    /// assert_eq!(other, 42);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// In debug builds, if a no-suspend region is open on this fiber (before it parks).
    /// Aborts the process if called while this thread is panicking, as the counter waits do.
    pub fn sleep(&self, duration: std::time::Duration) {
        super::check_no_suspend("Ctx::sleep");
        if duration.is_zero() {
            return;
        }
        // A non-zero duration from now has not passed yet: no second clock read to ask.
        self.sleep_parked(crate::deadline::after(duration));
    }

    /// Parks this fiber until `deadline` has passed (at once if it already has); see
    /// [`sleep`](Self::sleep).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let deadline = Instant::now() + Duration::from_millis(2);
    /// jobs.run(|ctx| ctx.sleep_until(deadline));
    /// assert!(Instant::now() >= deadline);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// As [`sleep`](Self::sleep).
    pub fn sleep_until(&self, deadline: std::time::Instant) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        self.sleep(left);
    }

    /// Parks until the deadline clock passes `deadline`, which the caller has just seen not
    /// passed: a timed wait on a counter nothing decrements, so only the timer ends it
    /// (`park_until_done` returns only once it passed). The counter is this call's own: no
    /// job counts on it, so there are no children to run inline and no decrements of ours it
    /// could lack — the wait parks straight away (`Ctx::suspend` pays our batched decrements,
    /// which other waiters may lack, before the switch).
    fn sleep_parked(&self, deadline: u64) {
        if std::thread::panicking() {
            fatal(
                "a job waited on a counter while its thread was panicking (wait in a Drop during unwinding?); waits are refused there",
            );
        }
        let never = crate::Counter::with_value(1);
        // Always a timed wait, even for a sleep past the clock's range: one that ends by itself
        // (so never part of a deadlock report), however far away.
        let deadline = deadline.min(crate::deadline::NEVER - 1);
        let reached = self.park_until_done(never.core(), 0, deadline, true);
        debug_assert!(!reached, "nothing decrements a sleep's counter");
    }

    /// After a timed park: takes this fiber's timer out of the table if it did not fire.
    #[inline]
    fn disarm(&self, stamp: u64) {
        if stamp != 0 {
            self.shared().timers.disarm(self.fiber, stamp);
        }
    }

    /// Parks this fiber on `key` while `validate(data)` holds (checked by the worker after the
    /// switch, under the wait list's lock); returns the unparker's token, or
    /// `park::TOKEN_INVALID` if it did not park. See `park/`.
    ///
    /// # Safety
    /// `validate(data)` is sound to call on any thread until this returns.
    pub(crate) unsafe fn park(
        &self,
        key: usize,
        validate: unsafe fn(*const ()) -> bool,
        data: *const (),
        deadline: u64,
    ) -> usize {
        super::check_no_suspend("a wait on a jobsys::sync primitive");
        self.refuse_park_while_panicking();
        let waiter = self.waiter_on(key as *const CounterCore, super::pool::SYNC_WAIT);
        let mut node = crate::park::ParkNode::new(key, validate, data, waiter);
        node.set_deadline(deadline);
        self.suspend(Suspend::Park(NonNull::from(&mut node)));
        self.disarm(node.timing.stamp);
        // What the primitive said about this wait (for stall reports) held for this park only.
        self.shared().fibers.slot(self.fiber).describe_wait(None);
        node.token()
    }

    /// Parks this fiber on every node of `group` (a select; see `park/`) until one arm's
    /// unparker or the deadline in `nodes[0]` claims it. The caller unlinks the nodes after.
    ///
    /// # Safety
    /// As [`park`](Self::park), for every node; `group`'s waiter is [`Ctx::group_waiter`]'s.
    pub(crate) unsafe fn park_group(
        &self,
        group: &crate::park::Group,
        nodes: &mut [crate::park::ParkNode],
    ) {
        super::check_no_suspend("a wait on a jobsys::sync primitive");
        self.refuse_park_while_panicking();
        let stamp = nodes[0].timing.stamp;
        self.suspend(Suspend::ParkGroup(
            NonNull::from(group),
            NonNull::from(&mut nodes[0]),
            nodes.len(),
        ));
        self.disarm(stamp);
    }

    /// Says what this fiber's next park waits for, for stall reports (cleared after it).
    pub(crate) fn describe_wait(&self, what: super::WaitWhat) {
        self.shared()
            .fibers
            .slot(self.fiber)
            .describe_wait(Some(what));
    }

    /// This fiber as the waiter of a select's group, parked on the primitive at `key`.
    pub(crate) fn group_waiter(&self, key: usize) -> Waiter {
        self.waiter_on(key as *const CounterCore, super::pool::SYNC_WAIT)
    }

    fn refuse_park_while_panicking(&self) {
        if std::thread::panicking() {
            fatal(
                "a job blocked on a jobsys::sync primitive while its thread was panicking (in a Drop during unwinding?); that is refused",
            );
        }
    }

    /// This fiber's `block_on` state (see `bridge/`).
    pub(crate) fn wake_cell(&self) -> &crate::bridge::WakeCell {
        &self.shared().fibers.slot(self.fiber).wake
    }

    /// This fiber as a waiter, recorded in the pool's deadlock report as waiting on `on` for
    /// `target` (`SYNC_WAIT`: `on` is a primitive's address, not a counter).
    fn waiter_on(&self, on: *const CounterCore, target: u32) -> Waiter {
        self.shared()
            .fibers
            .slot(self.fiber)
            .set_waiting(on, target);
        Waiter::Fiber {
            shared: self.shared(),
            fiber: self.fiber,
        }
    }
}
