//! `Event`: manual- or auto-reset signal.

use super::{Blocker, HANDOFF, ParkWord, Woken, key_of, park_with_bit};
use crate::bridge::ParkAwait;
use crate::shim::{AtomicU8, Ordering};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::time::Duration;

const SET: u8 = 1;
const PARKED: u8 = 2;

/// How an [`Event`] resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Stays set until [`Event::reset`]: a `set` releases every waiter, present and future.
    Manual,
    /// A `set` releases exactly one waiter (the longest waiting) and the event is reset again;
    /// with nobody waiting, the next `wait` consumes it.
    Auto,
}

/// A signal that jobs and threads wait for: a frame's GPU fence, an asset loaded, a phase
/// reached.
///
/// ```
/// use jobsys::sync::{Event, EventKind};
///
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let loaded = Event::new(EventKind::Manual);
/// jobs.run(|ctx| {
///     ctx.scope(|s| {
///         s.spawn(|s| loaded.wait(s)); // parks its fiber until `set`
///         s.spawn(|_| loaded.set());
///     });
/// });
/// assert!(loaded.is_set());
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Debug)]
pub struct Event {
    state: AtomicU8,
    kind: EventKind,
}

impl Event {
    /// An event that is not set.
    pub fn new(kind: EventKind) -> Self {
        Self {
            state: AtomicU8::new(0),
            kind,
        }
    }

    /// Whether the event is set (a snapshot).
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Waits until the event is set (for an auto-reset event: consumes the signal).
    pub fn wait<B: Blocker + ?Sized>(&self, blocker: &B) {
        self.wait_until(blocker, crate::deadline::NEVER);
    }

    /// [`wait`](Self::wait) for at most `timeout` (a GPU fence, an IO completion with a
    /// deadline): returns whether the event was set (for an auto-reset event: whether this
    /// waiter consumed a signal). A `set` racing the timeout is never lost: either this wait
    /// takes the signal and returns true, or it stays for the next waiter.
    ///
    /// A waiting fiber is timed out by the workers at their next scheduling point after the
    /// deadline (see [`Ctx::wait_for_counter_timeout`](crate::Ctx::wait_for_counter_timeout)).
    pub fn wait_timeout<B: Blocker + ?Sized>(&self, blocker: &B, timeout: Duration) -> bool {
        self.wait_until(blocker, crate::deadline::after(timeout))
    }

    fn wait_until<B: Blocker + ?Sized>(&self, blocker: &B, deadline: u64) -> bool {
        let mut expired = false;
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & SET != 0 {
                match self.kind {
                    EventKind::Manual => return true,
                    EventKind::Auto => {
                        if self
                            .state
                            .compare_exchange_weak(
                                s,
                                s & !SET,
                                Ordering::Acquire,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                        {
                            return true;
                        }
                        continue;
                    }
                }
            }
            if expired || crate::deadline::passed(deadline) {
                return false;
            }
            // Released by a `set` (HANDOFF): an auto-reset event's setter handed the signal to
            // us (without setting the event); a manual one released everyone parked, even if
            // it was reset before we ran. Timed out: look once more, then give up.
            match park_with_bit(
                blocker,
                &self.state,
                s.into(),
                PARKED.into(),
                validate,
                deadline,
            ) {
                Woken::Handoff => return true,
                Woken::TimedOut => expired = true,
                Woken::Retry | Woken::Raced => {}
            }
        }
    }

    /// A future that is ready once the event is set (for an auto-reset event: once this
    /// waiter consumed a signal): wait for the event from async code running anywhere.
    ///
    /// The future parks its waker on the event like a parked fiber (no allocation) and
    /// re-checks the event under the same lock as [`set`](Self::set), so a `set` racing the
    /// registration is never lost. Dropping it withdraws the wait; an auto-reset signal that
    /// was already handed to it then goes to the next waiter (or stays set).
    ///
    /// ```
    /// use jobsys::sync::{Event, EventKind};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let ready = Event::new(EventKind::Manual);
    /// let v = jobs.run(|ctx| {
    ///     ctx.join(
    ///         |c| c.block_on(async { ready.wait_async().await; 1 }),
    ///         |_| { ready.set(); 2 },
    ///     )
    /// });
    /// assert_eq!(v, (1, 2));
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn wait_async(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            park: ParkAwait::new(
                key_of(&self.state),
                validate,
                (&self.state as *const AtomicU8).cast(),
            ),
        }
    }

    /// Sets the event: a manual-reset event releases every waiter; an auto-reset event releases
    /// the longest waiter, or stays set for the next `wait` if nobody waits.
    pub fn set(&self) {
        match self.kind {
            EventKind::Manual => {
                let old = self.state.fetch_or(SET, Ordering::Release);
                if old & PARKED != 0 {
                    crate::park::unpark_all(key_of(&self.state), HANDOFF, |_| {
                        self.state.fetch_and(!PARKED, Ordering::Relaxed);
                    });
                }
            }
            EventKind::Auto => loop {
                let s = self.state.load(Ordering::Relaxed);
                if s & SET != 0 {
                    return;
                }
                if s & PARKED == 0 {
                    if self
                        .state
                        .compare_exchange_weak(s, SET, Ordering::Release, Ordering::Relaxed)
                        .is_ok()
                    {
                        return;
                    }
                    continue;
                }
                crate::park::unpark_one(key_of(&self.state), |found| {
                    if found.woken == 0 {
                        self.state.store(SET, Ordering::Release);
                        0
                    } else {
                        let s = if found.more { PARKED } else { 0 };
                        self.state.store(s, Ordering::Release);
                        HANDOFF
                    }
                });
                return;
            },
        }
    }

    /// Clears the event (manual-reset events; a no-op on a cleared one). A `set` racing with
    /// `reset` may still release a waiter that parked just before the `reset` returned: the
    /// `set` hands every waiter parked at that moment its release.
    pub fn reset(&self) {
        self.state.fetch_and(!SET, Ordering::Release);
    }
}

/// Park validation: not set, parked bit set.
///
/// # Safety
/// `data` points at a live `AtomicU8`.
unsafe fn validate(data: *const ()) -> bool {
    // SAFETY: caller contract.
    unsafe { &*data.cast::<AtomicU8>() }.load(Ordering::Relaxed) == PARKED
}

/// A future that is ready once an [`Event`] is set (see [`Event::wait_async`]).
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    park: ParkAwait,
}

impl core::fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventWait")
            .field("event", &self.event)
            .finish()
    }
}

// SAFETY: the node's raw pointers are dereferenced only under the park table's protocol (the
// bucket lock, or after `done`); the event is `Sync`.
unsafe impl Send for EventWait<'_> {}
// SAFETY: `&EventWait` reaches only `Debug` (an atomic load).
unsafe impl Sync for EventWait<'_> {}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: we never move the node out of the pinned future.
        let this = unsafe { self.get_unchecked_mut() };
        let state = &this.event.state;
        loop {
            if this.park.linked() {
                match this.park.poll_linked(cx) {
                    None => return Poll::Pending,
                    Some(HANDOFF) => {
                        // The setter's writes before `set` are visible to the awaiter.
                        crate::shim::fence(Ordering::Acquire);
                        return Poll::Ready(());
                    }
                    Some(_) => {}
                }
            }
            let s = state.load(Ordering::Acquire);
            if s & SET != 0 {
                match this.event.kind {
                    EventKind::Manual => return Poll::Ready(()),
                    EventKind::Auto => {
                        if state
                            .compare_exchange_weak(
                                s,
                                s & !SET,
                                Ordering::Acquire,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                        {
                            return Poll::Ready(());
                        }
                        continue;
                    }
                }
            }
            if !state.try_set(s.into(), PARKED.into()) {
                continue;
            }
            // SAFETY: pinned; the validator reads the event's state, borrowed for the
            // future's life (the node is withdrawn in `Drop` at the latest).
            if unsafe { this.park.publish(cx) } {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        // A signal handed to a waiter that will never see it: pass it on.
        if self.park.cancel() == Some(HANDOFF) && self.event.kind == EventKind::Auto {
            self.event.set();
        }
    }
}
