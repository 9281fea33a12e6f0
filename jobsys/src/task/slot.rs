//! The value slot shared by a job and its handle.

use crate::counter::CounterCore;
use crate::panic::{Payload, catch, drop_payload};
use crate::shim::{AtomicU8, Ordering};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

/// The handle is alive and nothing is stored yet.
const LIVE: u8 = 0;
/// The job stored its result (it may still be about to signal `done`).
const FINISHED: u8 = 1;
/// The handle was dropped without joining.
const DROPPED: u8 = 2;

/// A job's result and the handshake with its handle.
///
/// Protocol: the job writes `result`, then swaps `state` to `FINISHED`. If the handle was
/// already dropped, the job owns the result (and, for a detached record, the record); else it
/// subtracts `done` as its very last touch, and from then on the handle owns everything. A
/// handle dropped without joining swaps `state` to `DROPPED`; if the job had finished, the
/// handle owns the result. Whoever owns a result that nobody will read disposes of it (see
/// [`dispose`]).
///
/// `result` is initialised exactly while the protocol says a result is stored and not yet
/// taken: from the job's write in [`finish`](Self::finish) (made before its swap to
/// `FINISHED`) until one read by whoever owns it then — `finish` itself (handle dropped
/// meanwhile), [`abandon`](Self::abandon) (job finished first) or [`take`](Self::take). No
/// `Option` around it: that would cost a word in every spawn record (for `T = ()`, 24 bytes
/// instead of 16). A slot is never dropped with a result in it (every record's owner takes
/// it first), and `MaybeUninit` drops nothing anyway.
pub(crate) struct Slot<T> {
    result: UnsafeCell<MaybeUninit<Result<T, Payload>>>,
    done: CounterCore,
    state: AtomicU8,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        Self {
            result: UnsafeCell::new(MaybeUninit::uninit()),
            done: CounterCore::new(1),
            state: AtomicU8::new(LIVE),
        }
    }

    /// The job's side, once: stores `result`. `None`: the handle is alive and the caller must
    /// call [`signal`](Self::signal) as its last touch of the slot. `Some`: the handle is gone
    /// and the result is handed back to the caller, who owns the slot from now on.
    ///
    /// # Safety
    /// Called once, by the job that owns this slot's producing side.
    pub(crate) unsafe fn finish(&self, result: Result<T, Payload>) -> Option<Result<T, Payload>> {
        // `DROPPED` is final: a handle ignored at spawn (the common case) costs the job one
        // load, no store and no RMW. Acquire: the handle's drop happened before what follows.
        if self.state.load(Ordering::Acquire) == DROPPED {
            return Some(result);
        }
        // SAFETY: before the swap below nobody but the job touches `result` (the handle reads
        // it only after seeing `FINISHED` or `done` at zero).
        unsafe { (*self.result.get()).write(result) };
        if self.state.swap(FINISHED, Ordering::AcqRel) == DROPPED {
            // SAFETY: the handle is gone and never reads `result`: it is ours, initialised by
            // the write above, and read once, here.
            return Some(unsafe { (*self.result.get()).assume_init_read() });
        }
        None
    }

    /// Wakes the joiner: the job's last touch of a slot whose handle is alive.
    pub(crate) fn signal(&self) {
        // `sub` never touches the counter after its decrement: the handle may free it then.
        self.done.sub(1);
    }

    /// The handle's side when it is dropped without joining: `Some(result)` if the job had
    /// finished (the result is the handle's to dispose of), `None` if the job will do so.
    ///
    /// # Safety
    /// Called once, by the handle, and never after [`take`](Self::take).
    pub(crate) unsafe fn abandon(&self) -> Option<Result<T, Payload>> {
        if self.state.swap(DROPPED, Ordering::AcqRel) == FINISHED {
            // SAFETY: the job stored the result before its swap (Acquire above sees it) and
            // never reads it again; the handle reads it once, here (the caller's contract).
            return Some(unsafe { (*self.result.get()).assume_init_read() });
        }
        None
    }

    /// Whether the job signalled its result.
    pub(crate) fn is_finished(&self) -> bool {
        self.done.is_done(0)
    }

    /// The counter a joiner waits on (zero once the result is there).
    pub(crate) fn done(&self) -> &CounterCore {
        &self.done
    }

    /// The result, once [`done`](Self::done) is zero.
    ///
    /// # Safety
    /// Called once, by the handle, after `done` read zero.
    pub(crate) unsafe fn take(&self) -> Result<T, Payload> {
        debug_assert!(self.done.is_done(0));
        // SAFETY: `done` is zero: the job wrote the result (it signals only after its swap to
        // `FINISHED` saw the handle alive, so the result stayed there) and no longer touches
        // the slot; read once (the caller's contract).
        unsafe { (*self.result.get()).assume_init_read() }
    }
}

/// Disposes of a result nobody will read: drops a value (a panic in its `Drop` is dropped
/// too, never unwinding here), and hands a panic payload to `report`.
pub(crate) fn dispose<T>(result: Result<T, Payload>, report: impl FnOnce(Payload)) {
    match result {
        Ok(value) => {
            if let Err(payload) = catch(move || drop(value)) {
                report(payload);
            }
        }
        Err(payload) => report(payload),
    }
}

/// The report of a detached job's panic whose handle was dropped: the panic hook already
/// printed it when the job panicked (as for a `std::thread` whose `JoinHandle` was dropped);
/// the payload goes.
pub(crate) fn orphan_panic(payload: Payload) {
    drop_payload(payload);
}
