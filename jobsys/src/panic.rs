//! Panics: caught at the job boundary, owned by the scope / batch / handle that owns the job,
//! re-raised in its owner after the wait. A panic inside the scheduler aborts.

use crate::shim::SpinLock;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A panic payload carried from a job to its owner.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Runs `f`, turning a panic into `Err(payload)`.
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Payload> {
    catch_unwind(AssertUnwindSafe(f))
}

/// Drops a panic payload that nobody will re-raise, without ever unwinding.
///
/// A payload is a user value whose `Drop` may itself panic, with a second payload whose `Drop`
/// may panic again. Job boundaries and scheduler code must not unwind (an unwind there skips the
/// completion that a waiter's borrowed data depends on), so a payload whose drop panics has its
/// second payload leaked: a rare leak is the price of never unwinding here.
pub(crate) fn drop_payload(payload: Payload) {
    if let Err(second) = catch(move || drop(payload)) {
        std::mem::forget(second);
    }
}

/// The first panic of a group of jobs; later ones are dropped (as in `rayon::scope`).
pub(crate) struct PanicSlot(SpinLock<Option<Payload>>);

impl PanicSlot {
    crate::shim::loom_const! {
        pub(crate) fn new() -> Self {
            Self(SpinLock::new(None))
        }
    }

    pub(crate) fn record(&self, payload: Payload) {
        let mut slot = self.0.lock();
        if slot.is_none() {
            *slot = Some(payload);
            return;
        }
        drop(slot);
        drop_payload(payload);
    }

    pub(crate) fn take(&self) -> Option<Payload> {
        self.0.lock().take()
    }
}

/// Aborts the process if dropped during unwinding: guards scheduler code, which must never
/// unwind (rayon's `AbortIfPanic`).
pub(crate) struct AbortIfPanic(pub(crate) &'static str);

impl Drop for AbortIfPanic {
    fn drop(&mut self) {
        fatal(self.0);
    }
}

/// Prints `msg` and aborts. Used for broken internal invariants and for misuse that cannot be
/// reported by unwinding (a wait while panicking, a dropped parked fiber).
#[cold]
pub(crate) fn fatal(msg: &str) -> ! {
    eprintln!("jobsys: fatal: {msg}");
    std::process::abort()
}
