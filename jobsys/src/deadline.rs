//! Deadlines: the clock of timed waits (`wait_timeout`, `recv_timeout`, `select_timeout`, …)
//! and the [`Timing`] a wait node carries. A leaf: the wait lists (`counter/`, `park/`) and
//! the timers that fire them (`timer/`) both use it, and neither imports the other for it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// "No deadline".
pub(crate) const NEVER: u64 = u64::MAX;

/// Process-wide time origin of the deadlines.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the epoch.
pub(crate) fn now() -> u64 {
    if let Some(t) = crate::sim::now() {
        return t;
    }
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(NEVER - 1)
}

/// The deadline `timeout` from now (saturating at [`NEVER`]).
pub(crate) fn after(timeout: Duration) -> u64 {
    let ns = u64::try_from(timeout.as_nanos()).unwrap_or(NEVER);
    now().saturating_add(ns)
}

/// Time left until `deadline`: `None` for [`NEVER`], zero once passed.
pub(crate) fn remaining(deadline: u64) -> Option<Duration> {
    (deadline != NEVER).then(|| Duration::from_nanos(deadline.saturating_sub(now())))
}

/// Whether `deadline` has passed ([`NEVER`] never does).
pub(crate) fn passed(deadline: u64) -> bool {
    remaining(deadline).is_some_and(|left| left.is_zero())
}

/// The timing of one wait node: untimed, or a deadline with the stamp that identifies this
/// park to a late cancel (see "Timeouts" in `park/mod.rs`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    /// Non-zero for a timed wait.
    pub(crate) stamp: u64,
    /// [`NEVER`] for an untimed wait.
    pub(crate) deadline: u64,
}

impl Timing {
    /// An untimed wait.
    pub(crate) const NONE: Self = Self {
        stamp: 0,
        deadline: NEVER,
    };

    /// A wait until `deadline` (untimed for [`NEVER`]), with a fresh stamp.
    pub(crate) fn until(deadline: u64) -> Self {
        if deadline == NEVER {
            Self::NONE
        } else {
            Self {
                stamp: next_stamp(),
                deadline,
            }
        }
    }

    /// A wait that something outside the pool ends (a blocking-lane thread finishing the
    /// call): a fresh stamp but no deadline, so the wait is counted with those that end by
    /// themselves (never part of a deadlock, see `Shared::fiber_parked`), and no timer is
    /// armed for it (see `Shared::arm_timer`).
    pub(crate) fn external() -> Self {
        Self {
            stamp: next_stamp(),
            deadline: NEVER,
        }
    }

    /// Whether this is a timed wait (or an [`external`](Self::external) one).
    pub(crate) fn is_timed(&self) -> bool {
        self.stamp != 0
    }
}

/// A fresh, non-zero stamp identifying one timed park (process-wide, never reused in
/// practice: 2⁶⁴ parks). Not modelled under loom: uniqueness is all it gives.
fn next_stamp() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
