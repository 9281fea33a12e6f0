//! The one door every atomic and shared cell goes through.
//!
//! Under `--cfg loom` these names resolve to loom's model-checked twins, so the wait-list,
//! ring and sleep protocols can be explored exhaustively; otherwise they are std's. Nothing in
//! the crate imports `std::sync::atomic` directly.

mod cell;
mod spin;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    fence,
};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    fence,
};

pub(crate) use cell::UnsafeCell;

/// Thread handles and parking for blocking waiters (loom's under `--cfg loom`).
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{Thread, current, park};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{Thread, current, park, park_timeout};

    /// Under loom a timed park is a plain park (loom has no time; every caller loops).
    #[cfg(loom)]
    pub(crate) fn park_timeout(_: std::time::Duration) {
        park();
    }
}
pub(crate) use spin::SpinLock;

/// Defines a function that is `const` except under loom, whose atomics and cells have no
/// `const` constructors.
macro_rules! loom_const {
    ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => {
        $(#[$m])*
        #[cfg(not(loom))]
        $vis const fn $($rest)*
        $(#[$m])*
        #[cfg(loom)]
        $vis fn $($rest)*
    };
}
pub(crate) use loom_const;

/// Spin hint used by every busy-wait in the crate.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
