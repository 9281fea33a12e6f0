//! ④ FIBER — where job code runs and can suspend.
//!
//! Receives a job and a worker from the scheduler loop (as the coroutine's resume value; `coro.rs` is the only file that knows corosensei) and runs
//! it; runs further jobs from the same worker's queues without switching; hands control back
//! to the worker only with a reason ([`Suspend`]): idle, waiting on a counter, or yielding.
//! The worker publishes a wait only after the switch has landed (post-switch publication).

mod coro;
mod ctx;
mod main;
pub(crate) mod overflow;
mod pool;
mod region;
mod stack;
mod wait;

pub(crate) use coro::Switched;
pub use ctx::Ctx;
// For the build check in `profile.rs` that it is empty without the feature.
#[cfg(not(feature = "profile"))]
pub(crate) use main::RunningJob;
pub(crate) use main::fiber_main;
pub(crate) use pool::{FiberPool, FiberState, WaitWhat};
pub use region::NoSuspend;
pub(crate) use region::check as check_no_suspend;
pub(crate) use region::{SetAside, restore as restore_regions, set_aside as set_aside_regions};
pub(crate) use stack::StackBlock;

use crate::counter::{CounterCore, WaitNode};
use crate::job::JobRef;
use crate::worker::Shared;
use core::ptr::NonNull;

/// Where a fiber is running: the resume value of every switch into a fiber.
///
/// Runtime state reaches a fiber only this way, never through a thread-local, so it is right
/// after any switch even if the fiber resumed on another thread (migration mode).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerRef {
    pub(crate) shared: NonNull<Shared>,
    pub(crate) index: usize,
    /// `&shared.workers[index]`, cached so the hot path never reads `Shared` to find it.
    pub(crate) worker: NonNull<crate::worker::Worker>,
    /// The owner-only state of that worker (`worker/owner.rs`), which only the thread running
    /// its loop touches: re-read from here after every switch, never kept across one.
    pub(crate) core: NonNull<crate::worker::WorkerCore>,
}

/// What the scheduler loop tells a fiber when it switches into it.
pub(crate) enum Resume {
    /// Start running this job (the fiber was pooled).
    Run(JobRef, WorkerRef),
    /// The wait or yield is over; continue.
    Continue(WorkerRef),
    /// Shutdown: return from the fiber's body.
    Exit,
}

/// Why a fiber switched back to its worker.
pub(crate) enum Suspend {
    /// Out of work; pool me. Carries a job the fiber found but whose stack class it cannot
    /// host, for the worker to start on a larger fiber.
    Idle,
    /// Publish `node` on `counter`, then park me until it is woken.
    Wait(NonNull<WaitNode>, NonNull<CounterCore>),
    /// Put me at the back of the ready queue.
    Yield,
    /// Validate and link `node` on its address (`park/`), then park me until it is woken.
    Park(NonNull<crate::park::ParkNode>),
    /// Validate and link every node of a select's group (`park/`: group, first node, count),
    /// then park me until one arm or the deadline claims the group.
    ParkGroup(
        NonNull<crate::park::Group>,
        NonNull<crate::park::ParkNode>,
        usize,
    ),
}
