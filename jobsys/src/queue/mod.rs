//! ② QUEUE — where runnable work waits.
//!
//! Receives [`JobRef`](crate::job::JobRef)s from the submit stage and hands them to workers.
//! Per worker: a fixed [`Ring`] (owner pushes and pops at the bottom, LIFO; thieves take from the
//! top, FIFO, half at a time). When a ring is full the job goes to the shared injector, an
//! intrusive [`JobList`] threaded through the job headers, so a submission never fails and never
//! allocates. Pinned jobs wait in their worker's own `JobList`.

mod list;
#[cfg(all(test, loom))]
mod loom_tests;
mod ring;

pub(crate) use list::JobList;
pub(crate) use ring::{Ring, Steal};
