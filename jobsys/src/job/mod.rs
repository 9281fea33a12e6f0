//! ① SUBMIT — what a job is.
//!
//! Receives work from the user (a [`JobDecl`] slice, a scoped closure, a `join` half) and hands
//! the queue stage a [`JobRef`]: one pointer to a [`JobHeader`] that lives in the submitter's
//! storage. Nothing here allocates; the header is the whole record the scheduler needs.

mod decl;
mod meta;
mod record;

pub use decl::JobDecl;
pub(crate) use decl::prepare_batch;
pub use meta::{Affinity, JobMeta, Priority, StackClass};
pub(crate) use record::{JobHeader, JobRef};
