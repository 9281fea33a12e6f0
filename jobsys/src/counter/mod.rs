//! ⑤ COUNTER — completion and dependencies.
//!
//! Receives decrements from jobs as they finish (from the job stage) and wait nodes from fibers
//! and threads that want a value; when a decrement reaches a waiter's target it hands the waiter
//! to the wake stage. The wait nodes live on the waiters' own stacks: no slots, no allocation.
//! The publication protocol is argued in `counter/README.md`.

mod buckets;
mod core;
#[cfg(all(test, loom))]
mod loom_tests;
mod wait;

pub use self::core::Counter;
pub(crate) use self::core::CounterCore;
pub(crate) use buckets::{Buckets, static_buckets};
pub(crate) use core::cancel;
pub(crate) use wait::{WaitNode, Waiter, block_thread_until};
