//! The per-fiber waker state of `Ctx::block_on` (see `bridge/mod.rs`).
//!
//! `state = generation << 2 | phase`. The fiber owns the transitions out of `IDLE`, `PARKED`
//! and `NOTIFIED`; a waker only ever turns `POLLING` or `PARKED` of *its* generation into
//! `NOTIFIED`, and after turning `PARKED` into `NOTIFIED` it unparks the fiber on
//! [`key`](WakeCell::key) in the park table (`park/`).
//!
//! ```text
//!  IDLE ──begin──► POLLING ──prepare_park──► PARKED ──(park, woken or not)──resume──► POLLING
//!                    │  ▲                      │
//!              wake  ▼  │ prepare_park fails   │ wake: NOTIFIED, then unpark_one(key)
//!                  NOTIFIED ◄──────────────────┘
//!  POLLING ──end──► IDLE (same generation: a late waker of it finds IDLE and does nothing)
//! ```
//!
//! A `block_on` may start inside another one's poll on the same fiber (a job run inline
//! there): it takes the next generation and, when it ends, gives the outer one back its
//! generation as `NOTIFIED` (see [`WakeCell::begin`]).
//!
//! - **No lost wake-up.** A wake while `POLLING` leaves `NOTIFIED`, and `prepare_park` fails on
//!   it (the fiber polls again). A wake while `PARKED` leaves `NOTIFIED` and then unparks: the
//!   park's validation runs under the bucket lock and parks only while the state is `PARKED`,
//!   so either it sees `NOTIFIED` and does not park, or the fiber's node is linked when the
//!   unpark looks.
//! - **Two wakers.** A waker that finds `NOTIFIED` (another waker got there first) still
//!   writes the state (a compare-exchange to the same value), so the fiber's next swap to
//!   `POLLING` acquires what this waker wrote before it woke; a plain load would let that write
//!   and the swap pass each other, and the fiber could poll, miss it, and park for good.
//! - **Stale wakers.** A waker carries its generation (modulo [`GENS`]); one of a finished
//!   `block_on` finds another generation or `IDLE` and changes nothing. Its unpark may still
//!   be on its way and land on a later park of the same fiber on the same key: that park wakes,
//!   finds its state not `NOTIFIED`, and merely polls its future once more (a spurious poll is
//!   allowed by the `Future` contract). A generation that wrapped around (`GENS` `block_on`s
//!   later, with the stale waker still unwoken) can at worst do the same. Nothing else parks
//!   on the key (it is the cell's own address), so no other wait is ever woken.

use crate::shim::{AtomicPtr, AtomicU64, Ordering};
use crate::worker::Shared;

pub(crate) const IDLE: u64 = 0;
pub(crate) const POLLING: u64 = 1;
pub(crate) const PARKED: u64 = 2;
pub(crate) const NOTIFIED: u64 = 3;
const PHASE: u64 = 3;

/// Generations a waker tells apart (they travel in the low bits of its data pointer, which
/// the cell's alignment leaves free).
pub(crate) const GENS: u64 = 64;

/// One fiber's `block_on` state. Aligned to [`GENS`] so that a pointer to it has room for a
/// generation in its low bits.
#[repr(align(64))]
pub(crate) struct WakeCell {
    state: AtomicU64,
    /// The system the fiber belongs to: a cloned waker keeps it alive (an `Arc` count), so a
    /// waker that outlives the system never touches freed memory. Written by the fiber before
    /// it makes its first waker.
    pub(crate) shared: AtomicPtr<Shared>,
}

impl WakeCell {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU64::new(IDLE),
            shared: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// The park table key the fiber parks on: the cell's own address.
    pub(crate) fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// The fiber starts a `block_on`: a new generation, `POLLING`. Returns the generation and
    /// the state it replaced, which [`end`](Self::end) restores.
    ///
    /// The state replaced is `IDLE`, or — a `block_on` nested in another one's poll on this
    /// fiber (a job run inline there, or the future itself calling `block_on`) — the outer
    /// one's `POLLING` or `NOTIFIED`. Wakes of the outer generation meanwhile find another
    /// generation and do nothing, so `end` hands the outer one back `NOTIFIED`: it polls once
    /// more instead of parking (a spurious poll at worst, never a lost wake-up). A compare-
    /// exchange, as the outer one's wakers may write the state concurrently.
    pub(crate) fn begin(&self) -> (u64, u64) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let generation = (s >> 2).wrapping_add(1);
            match self.state.compare_exchange_weak(
                s,
                generation << 2 | POLLING,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (generation, s),
                Err(x) => s = x,
            }
        }
    }

    /// After a `Pending` poll: `POLLING` → `PARKED`, true if the fiber may park now; false
    /// if a wake came since the poll began (`NOTIFIED`, now `POLLING` again: poll once more).
    pub(crate) fn prepare_park(&self, generation: u64) -> bool {
        let polling = generation << 2 | POLLING;
        match self.state.compare_exchange(
            polling,
            generation << 2 | PARKED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(s) => {
                debug_assert_eq!(s, generation << 2 | NOTIFIED);
                // Acquire: the waker's writes before its wake are visible to the next poll.
                self.state.swap(polling, Ordering::AcqRel);
                false
            }
        }
    }

    /// After the park ended (woken, or its validation saw `NOTIFIED`, or a stale waker's
    /// unpark): `POLLING` again.
    pub(crate) fn resume(&self, generation: u64) {
        // Acquire pairs with the waker's CAS: the next poll sees what it wrote before.
        self.state.swap(generation << 2 | POLLING, Ordering::AcqRel);
    }

    /// The `block_on` is over (its future is ready, or its poll panicked): `IDLE`, same
    /// generation, so its late wakers find nothing to do; or, for a nested one (`outer`, from
    /// [`begin`](Self::begin), not `IDLE`), the enclosing one's generation, `NOTIFIED`.
    pub(crate) fn end(&self, generation: u64, outer: u64) {
        let next = if outer & PHASE == IDLE {
            generation << 2 | IDLE
        } else {
            (outer & !PHASE) | NOTIFIED
        };
        self.state.swap(next, Ordering::AcqRel);
    }

    /// The park validation (run under the bucket lock): still `PARKED`.
    ///
    /// # Safety
    /// `data` points at a live `WakeCell`.
    pub(crate) unsafe fn validate(data: *const ()) -> bool {
        // SAFETY: caller contract.
        let cell = unsafe { &*data.cast::<WakeCell>() };
        cell.state.load(Ordering::Acquire) & PHASE == PARKED
    }

    /// A waker of generation `tag` (the generation modulo [`GENS`]) wakes: `NOTIFIED` if the
    /// fiber is polling or parked in that generation, then unparks it if it was parked.
    /// Returns whether it notified.
    pub(crate) fn wake(&self, tag: u64) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let phase = s & PHASE;
            if phase == IDLE {
                return false; // not started, or over
            }
            let other = (s >> 2) % GENS != tag;
            if other || phase == NOTIFIED {
                // Already notified, but not by us: publish our writes with an RMW all the same.
                // A plain load would let the fiber's `resume` (its swap to POLLING) and our
                // writes before this wake pass each other (store buffering): the fiber would
                // poll without seeing them and park, and we would not wake it — a lost wake-up
                // that the loom model `loom_two_wakers_one_park` found. The RMW sits in the
                // state's modification order before that swap, which then acquires it.
                //
                // Another generation that runs gets the same RMW: it may be a `block_on`
                // nested in ours, whose `end` hands ours back `NOTIFIED` in place of this wake;
                // the poll after it must see our writes, so the RMW sits before that `end`'s
                // swap (a plain load lost the wake-up in the loom model
                // `loom_a_wake_of_the_outer_block_on_during_a_nested_one_is_not_lost`). For a
                // stale waker it changes nothing (every write of the state is an RMW).
                match self
                    .state
                    .compare_exchange_weak(s, s, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return false,
                    Err(x) => {
                        s = x;
                        continue;
                    }
                }
            }
            match self.state.compare_exchange_weak(
                s,
                (s & !PHASE) | NOTIFIED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if phase == PARKED {
                        crate::park::unpark_one(self.key(), |_| 0);
                    }
                    return true;
                }
                Err(x) => s = x,
            }
        }
    }

    /// The phase now (loom tests).
    #[cfg(all(test, loom))]
    pub(crate) fn phase(&self) -> u64 {
        self.state.load(Ordering::Acquire) & PHASE
    }
}
