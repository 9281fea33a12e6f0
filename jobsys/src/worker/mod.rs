//! ③ WORKER — the threads that drive everything.
//!
//! Receives jobs from the queue stage and ready fibers from the wake stage; runs each job on a
//! pooled fiber (the fiber stage) and handles the fiber's reason for coming back. Worker 0 is the
//! thread that built the system, active inside `JobSystem::run` and while the system drops;
//! workers 1.. are OS threads spawned at build, optionally pinned one per core.

mod main_loop;
mod shared;
mod start;

pub(crate) use main_loop::{Host, LoopMode, main_loop};
pub(crate) use shared::{Injector, Shared, Worker};
pub(crate) use start::{FpState, start_worker};
