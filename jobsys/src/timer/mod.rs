//! The per-system table of armed timers that the workers fire, for timed waits (`wait_timeout`,
//! `recv_timeout`, `select_timeout`, …; their deadlines are `deadline.rs`'s).
//!
//! A plain thread times its own park out (`park_timeout`, then a cancel). A parked *fiber*
//! cannot: its worker arms a timer for it right after publishing the wait (post-switch, with
//! the deadline and stamp copied out of the node *before* the publication, after which the
//! node may already be woken and gone), and whichever worker next looks for work after the
//! deadline fires it — each worker polls the table before it looks at its ready queue and for
//! its next job (`main_loop`, `fiber_main`), and a sleeping worker sleeps no longer
//! than the earliest deadline. Firing is a cancel of the wait (`park::cancel`,
//! `counter::cancel`): the race between a timeout and a wake of the same node is settled
//! there, under the wait list's lock (see "Timeouts" in `park/mod.rs`). A timed-out fiber is
//! then made ready on its home worker like any woken one.
//!
//! The table has one entry per fiber (a fiber waits on one thing at a time), allocated at
//! build; arming, disarming and firing take one spin lock. An entry is only *replaced* by a
//! later stamp, so an arm that comes late (in migration mode the fiber can be woken and
//! resumed elsewhere before its old worker arms) cannot overwrite a newer park's timer; a
//! stale entry is harmless — its cancel matches no linked node.
//!
//! Timeouts are lower bounds: a timer fires at the first scheduling point of any worker after
//! its deadline (one that runs a long job does not look), and a fired fiber resumes when its
//! home worker gets to it.

use crate::counter::{CounterCore, WaitNode};
use crate::deadline::{NEVER, Timing, now, remaining};
use crate::park::ParkNode;
use crate::shim::{AtomicU64, AtomicUsize, Ordering, SpinLock};
use std::time::Duration;

/// The wait a timer cancels.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    /// A park (`jobsys::sync`) on `key`, or the first node of a select's group.
    Park { key: usize, node: *mut ParkNode },
    /// A counter wait.
    Counter {
        counter: *const CounterCore,
        node: *mut WaitNode,
    },
}

#[derive(Clone, Copy)]
struct Entry {
    /// [`NEVER`] when unarmed.
    deadline: u64,
    stamp: u64,
    target: Target,
}

/// Entries fired per pass of the lock (the rest wait for the next pass).
const FIRE_BATCH: usize = 16;

/// The armed timers of one system's fibers.
pub(crate) struct Timers {
    /// How many entries are armed: the fast "nothing to do" check.
    armed: AtomicUsize,
    /// The earliest armed deadline (may be stale-low after a disarm: costs one empty pass).
    next: AtomicU64,
    entries: SpinLock<Box<[Entry]>>,
}

// SAFETY: the node pointers in the entries are only compared, and dereferenced by the cancel
// functions under the wait lists' locks while linked (see `park/mod.rs`).
unsafe impl Send for Timers {}
// SAFETY: as above.
unsafe impl Sync for Timers {}

impl Timers {
    /// A table for `fibers` fibers (the only allocation).
    pub(crate) fn new(fibers: usize) -> Self {
        let unarmed = Entry {
            deadline: NEVER,
            stamp: 0,
            target: Target::Park {
                key: 0,
                node: core::ptr::null_mut(),
            },
        };
        Self {
            armed: AtomicUsize::new(0),
            next: AtomicU64::new(NEVER),
            entries: SpinLock::new(vec![unarmed; fibers].into_boxed_slice()),
        }
    }

    /// Arms `fiber`'s timer for the park `stamp` (unless a later park's timer is already
    /// there). Returns whether it is now the earliest deadline: sleeping workers, which
    /// computed their sleep before it, must then be told (see `Shared::arm_timer`).
    pub(crate) fn arm(&self, fiber: u32, deadline: u64, stamp: u64, target: Target) -> bool {
        let mut entries = self.entries.lock();
        let e = &mut entries[fiber as usize];
        if e.stamp >= stamp {
            return false;
        }
        if e.deadline == NEVER {
            self.armed.fetch_add(1, Ordering::SeqCst);
        }
        *e = Entry {
            deadline,
            stamp,
            target,
        };
        self.next.fetch_min(deadline, Ordering::SeqCst) > deadline
    }

    /// Disarms `fiber`'s timer if it is still the one of park `stamp` (the fiber resumed).
    pub(crate) fn disarm(&self, fiber: u32, stamp: u64) {
        // No timer armed at all (the usual case after a timer fired, or with one sleeper): ours
        // is not, so there is nothing to take out and no lock to take. `armed` is changed
        // under the lock together with the entries, so each value in its modification order
        // is the number of armed entries at that point; our park's arm, if it happened at all
        // before this call, happened before it (the arming worker switched into us after it,
        // or pushed us to a ready queue after it), so this load reads a value at or after that
        // increment, and 0 there means our entry was disarmed or fired since. An arm that
        // comes later still (migration mode: an old worker arming late) is a stale entry the
        // lock would not have prevented either (see the module docs).
        if self.armed.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut entries = self.entries.lock();
        let e = &mut entries[fiber as usize];
        if e.stamp == stamp && e.deadline != NEVER {
            e.deadline = NEVER;
            self.armed.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether an armed timer is due.
    #[inline]
    pub(crate) fn due(&self) -> bool {
        self.armed.load(Ordering::Relaxed) != 0 && self.next.load(Ordering::Relaxed) <= now()
    }

    /// Fires the due timers, if any (called by workers looking for work).
    #[inline]
    pub(crate) fn poll(&self) {
        if self.armed.load(Ordering::Relaxed) != 0 {
            self.poll_cold();
        }
    }

    #[cold]
    fn poll_cold(&self) {
        let now = now();
        if self.next.load(Ordering::Relaxed) > now {
            return;
        }
        loop {
            let mut batch = [None::<(Target, u64)>; FIRE_BATCH];
            let mut n = 0;
            {
                let mut entries = self.entries.lock();
                let mut next = NEVER;
                for e in entries.iter_mut().filter(|e| e.deadline != NEVER) {
                    if e.deadline <= now && n < FIRE_BATCH {
                        batch[n] = Some((e.target, e.stamp));
                        n += 1;
                        e.deadline = NEVER;
                        self.armed.fetch_sub(1, Ordering::SeqCst);
                    } else {
                        next = next.min(e.deadline);
                    }
                }
                self.next.store(next, Ordering::SeqCst);
            }
            // Outside the timer lock: a cancel takes a wait list's lock (no lock nesting). The
            // waits may be woken meanwhile: the cancels then match nothing (stamps).
            crate::fault::inject(crate::fault::Site::TimerFire);
            for (target, stamp) in batch.iter().flatten() {
                match *target {
                    Target::Park { key, node } => {
                        crate::park::cancel(key, node, *stamp);
                    }
                    Target::Counter { counter, node } => {
                        crate::counter::cancel(counter, node, *stamp);
                    }
                }
            }
            if n < FIRE_BATCH {
                return;
            }
        }
    }

    /// Whether any timer is armed.
    pub(crate) fn armed(&self) -> bool {
        self.armed.load(Ordering::SeqCst) != 0
    }

    /// How long a sleeping worker may sleep at most, given the armed timers: `cap`, or less
    /// if a deadline comes first.
    pub(crate) fn sleep_for(&self, cap: Duration) -> Duration {
        if self.armed.load(Ordering::SeqCst) == 0 {
            return cap;
        }
        remaining(self.next.load(Ordering::SeqCst)).map_or(cap, |left| left.min(cap))
    }
}

impl crate::worker::Shared {
    /// Arms `fiber`'s timer if its wait is timed and `parked` (it was published); an external
    /// wait (`Timing::external`, no deadline) arms nothing. A new
    /// earliest deadline wakes a sleeping worker, which goes back to sleep no longer than that:
    /// the worker that armed it may run a long job next and not look at the timers until it
    /// ends.
    pub(crate) fn arm_timer(&self, parked: bool, fiber: u32, timing: Timing, target: Target) {
        if parked
            && timing.is_timed()
            && timing.deadline != NEVER
            && self
                .timers
                .arm(fiber, timing.deadline, timing.stamp, target)
        {
            self.notify_one();
        }
    }
}
