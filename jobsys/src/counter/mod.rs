//! ⑤ COUNTER — completion and dependencies.
//!
//! Receives decrements from jobs as they finish (from the job stage) and wait nodes from fibers
//! and threads that want a value; when a decrement reaches a waiter's target it hands the waiter
//! to the wake stage. The wait nodes live on the waiters' own stacks, in the lists of the
//! wait-list layer (`waitlist/`): no slots, no allocation. The publication protocol is argued in
//! `counter/README.md`.

#[cfg(all(test, loom))]
mod loom_tests;
mod wait;
mod word;

pub(crate) use wait::{WaitNode, block_thread_until};
pub use word::Counter;
pub(crate) use word::{CounterCore, cancel, with_linked};
