//! The one door every atomic, shared cell, park and spin goes through.
//!
//! One of three backends stands behind it, picked by one `cfg` chain:
//!
//! | cfg                         | backend        | atomics, threads, parks, spins                         |
//! |-----------------------------|----------------|--------------------------------------------------------|
//! | neither                     | `native.rs`    | std's (what ships)                                     |
//! | `--cfg loom`                | `modelled.rs`  | loom's model-checked twins                             |
//! | feature `simulation`        | `stepped.rs`   | std's, each operation a step of `crate::sim`'s scheduler |
//! | both                        | —              | `compile_error!`: a simulation cannot run under loom   |
//!
//! Nothing in the crate imports `std::sync::atomic` or parks a thread directly; `cell.rs` and
//! `spin.rs` (the cell and the spin lock, whose loom twins loom provides) only tell loom from
//! not-loom. `stat.rs` (statistics cells) is std's under every backend: statistics are no part
//! of any protocol, so they are neither modelled nor simulation steps.

mod cell;
mod spin;
mod stat;

#[cfg(all(not(loom), not(feature = "simulation")))]
mod native;
#[cfg(all(not(loom), not(feature = "simulation")))]
use native as backend;

#[cfg(loom)]
mod modelled;
#[cfg(all(loom, not(feature = "simulation")))]
use modelled as backend;

#[cfg(all(not(loom), feature = "simulation"))]
mod stepped;
#[cfg(all(not(loom), feature = "simulation"))]
use stepped as backend;

#[cfg(all(loom, feature = "simulation"))]
compile_error!("the `simulation` feature and `--cfg loom` exclude each other");
// (The loom backend stands in, so that the error above is the only one.)
#[cfg(all(loom, feature = "simulation"))]
use modelled as backend;

/// Thread handles, parking and yielding for blocking waiters and spinners, and the spawn of
/// worker threads: every park, unpark, yield and spawn of the runtime goes through here.
pub(crate) use backend::thread;
pub(crate) use backend::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    fence, spin_loop,
};
pub(crate) use cell::UnsafeCell;
pub(crate) use spin::{SpinGuard, SpinLock};
pub(crate) use stat::{StatCounter, StatMax};

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
