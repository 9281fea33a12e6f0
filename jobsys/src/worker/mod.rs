//! ③ WORKER — the threads that drive everything.
//!
//! Receives jobs from the queue stage and ready fibers from the wake stage; runs each job on a
//! pooled fiber (the fiber stage) and handles the fiber's reason for coming back. Worker 0 is the
//! thread that built the system, active inside `JobSystem::run` and while the system drops;
//! workers 1.. are OS threads spawned at build, optionally pinned one per core.

mod debt;
mod hooks;
mod inline;
mod main_loop;
mod owner;
mod shared;
mod stall;
mod start;
mod stats;
mod submit;
mod switch;

pub(crate) use hooks::WorkerHooks;
pub use hooks::WorkerInfo;
pub(crate) use inline::run_own_children;
pub(crate) use main_loop::{Host, LoopMode, main_loop};
pub(crate) use owner::WorkerCore;
pub(crate) use shared::{Injector, Shared, Worker};
pub(crate) use stall::StallWatch;
/// For the debug build's lost wake-up message (`wake/mod.rs`).
#[cfg(debug_assertions)]
pub(crate) use stall::StderrWriter;
pub(crate) use start::{FpState, start_worker};
pub(crate) use stats::IdleRounds;
pub use stats::WorkerStats;
pub(crate) use submit::submit;
pub(crate) use switch::switch_into;

use std::cell::Cell;

std::thread_local! {
    /// Whether this OS thread is running a jobsys worker loop (of any system) right now.
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is a worker of some jobsys system at this moment: workers
/// 1.. for their whole life, worker 0 while it is inside `JobSystem::run` or drains during
/// the system's drop. Blocking calls that would stall the thread (`ThisThread`, `Handle`
/// waits) refuse to run here.
pub(crate) fn on_worker_thread() -> bool {
    ON_WORKER.with(Cell::get)
}

/// Marks the calling thread as a worker until dropped (restores what it was: loops nest when
/// a job of one system drives another system's `run`).
pub(crate) struct WorkerThread(bool);

impl WorkerThread {
    pub(crate) fn enter() -> Self {
        Self(ON_WORKER.with(|w| w.replace(true)))
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        let was = self.0;
        ON_WORKER.with(|w| w.set(was));
    }
}

/// Panics with the refusal of a blocking wait on a worker thread (`what`: the call, `instead`:
/// what a job uses).
#[cold]
#[track_caller]
pub(crate) fn refuse_blocking_on_worker(what: &str, instead: &str) -> ! {
    panic!(
        "{what} would block a worker thread (a jobsys worker runs this thread, and every fiber on it would stall); inside a job use the Ctx: {instead}"
    )
}
