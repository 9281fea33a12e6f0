//! Scoped (structured) jobs and fork-join: the safe layer over counters.
//!
//! A scope's jobs may borrow the caller's stack because the function that creates the scope
//! owns the wait, on every path: it catches the body's panic, waits for every spawned job, and
//! only then re-raises (the shape of `std::thread::scope`). The records live in blocks recycled
//! through the system's [`BlockPool`], so a warmed-up scope allocates nothing.

mod arena;
mod join;
mod par;
mod scoped;

pub(crate) use arena::BlockPool;
pub(crate) use join::StackJob;
pub use scoped::Scope;
pub use scoped::ScopedJobHandle;
