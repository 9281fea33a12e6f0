//! Job handles, detached `'static` work, the background lane and run-time job options.
//!
//! - [`Slot`]: the value slot a handle and its job share, with the handshake that decides who
//!   owns the result (the handle's `join`, the dropping handle, or the job itself).
//! - [`JobHandle`]: a detached job's owned handle; its record is one heap allocation per job,
//!   freed once the job finished and its handle is gone.
//! - [`JobOptions`]: priority, stack class, affinity, hint and name chosen at run time.
//! - The background lane: one Low job started at each outermost frame opening.

mod background;
mod detached;
mod options;
mod slot;

pub use detached::JobHandle;
pub use options::JobOptions;
pub(crate) use slot::{Slot, dispose};
