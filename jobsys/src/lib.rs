//! # jobsys — a Naughty-Dog-style fiber job system
//!
//! A fixed pool of worker threads runs jobs on a pre-allocated pool of fibers. Code waits on
//! atomic [`Counter`]s, and a wait parks the *fiber*, never the worker thread: the worker runs
//! other jobs meanwhile and resumes the waiter — on the same thread — when the counter reaches
//! its target.
//!
//! ```text
//!  submit ──► queue ──► worker ──► fiber ──► counter ──► wake ──► (back to worker)
//!  job/       queue/    worker/    fiber/    counter/    wake/
//! ```
//!
//! A job is a small record in the submitter's storage ([`JobDecl`] slices, scope arenas, the
//! joiner's stack); queues carry pointers to it; a worker runs it on a pooled fiber; the fiber
//! parks on a counter; the decrement that reaches the target makes it ready again.
//!
//! ## The house
//! The six stages above hand work to each other (and `worker/` and `fiber/` switch into each
//! other), so they may import one another. Beside them, each module has one role and a short
//! list of what it may import; everything may import `shim`, and nothing imports the crate's
//! atomics, cells, parks or spins any other way.
//!
//! | module | role | may import |
//! |---|---|---|
//! | `job/` ① | job records ([`JobDecl`], [`JobMeta`]), the batch prologue | `counter`, `fiber` (the [`Ctx`] a job gets), `panic` |
//! | `queue/` ② | per-worker rings and the shared injector | `job`, `fiber` ([`Ctx`]) |
//! | `worker/` ③ | the threads: main loop, the switch into a fiber and back, submit, inline children, batched decrements, owner-only state, stall watch | every stage, `sched`, `scope`, `park`, `timer`, `deadline`, `fault`, `profile`, `panic` |
//! | `fiber/` ④ | where jobs run: [`Ctx`], the coroutine (`coro.rs`, the only file that knows corosensei), pool, stacks | `worker`, `counter`, `job`, `sched`, `park`, `waitlist`, `deadline`, `system` ([`Handle`]), `error`, `profile`, `panic` |
//! | `counter/` ⑤ | [`Counter`]: completion, dependencies and their waits | `waitlist`, `deadline`, `fault`, `panic` |
//! | `wake/` ⑥ | ready fibers back to their worker; the sleep protocol | `worker`, `job`, `fault`, `profile`, `sim` |
//! | `waitlist/` | the one wait-list layer: locked buckets of intrusive lists, `Waiter`, the thread-blocking path | `worker` (the system a fiber waiter wakes through), `deadline`, `sim` |
//! | `park/` | address-keyed parking for the `sync` primitives | `waitlist`, `deadline`, `fault` |
//! | `timer/` | armed timers the workers fire for timed waits | `park`, `counter`, `worker`, `deadline`, `fault` |
//! | `deadline` | the deadline clock and value type (a leaf: `park/` and `timer/` share it) | `sim` (virtual clock) |
//! | `sched/` | the scheduling policy: where a job goes, which source next | `job` |
//! | `scope/` | scoped jobs and fork-join over counters ([`Scope`], [`ScopedJobHandle`]) | `counter`, `fiber`, `job`, `sched`, `task` (value slots, [`JobOptions`]), `panic` |
//! | `task/` | job handles' value slots, detached jobs ([`JobHandle`]), [`JobOptions`], the background lane at frame openings | `counter`, `fiber`, `job`, `sched`, `system` ([`Handle`]), `worker`, `deadline`, `panic` |
//! | `sync/` | fiber-aware primitives ([`sync::Mutex`], channels, select, …) | `park`, `waitlist`, `deadline`, `fiber`, `scope` (a [`Scope`] as a blocker), `worker`, `fault`, `sim` |
//! | `builder`, `system` | [`Builder`], [`JobSystem`], [`Handle`]: assemble and own a system | any module |
//! | `error`, `panic` | [`BuildError`]; catching a job's panic and re-raising it in its owner | `job` (`error`); `shim` (`panic`) |
//! | `shim/` | the one door to atomics, cells, parks and spins; its backend (std, loom, stepped simulation) is picked by one `cfg` chain | `sim` (the stepped backend only) |
//! | `sim/` | deterministic simulation: the public `jobsys::sim` (feature `simulation`), its scheduler, its threads, and the hooks the runtime calls (empty without the feature) | std only |
//! | [`fault`] | fault-injection sites (empty without the feature) | `sim` |
//! | [`profile`] | profiler hooks (empty without the feature) | `job` ([`JobMeta`]), `panic` |
//! | `blocking` | the blocking lane: threads outside the workers that run [`Ctx::blocking`] calls | `fiber` ([`Ctx`]), `counter` |
//! | `bridge/` | the async bridge: [`Ctx::block_on`] and its fiber waker; futures over counters, [`JobHandle`]s and `sync` events | `counter`, `park`, `waitlist`, `fiber` ([`Ctx`]), `task`, `worker` (the system a waker keeps alive), `sync` |
//! | `local` | [`WorkerLocal`]: one value per worker, reached through a [`Ctx`] | `fiber` ([`Ctx`]) |
//! | `cancel` | [`Cancelled`], [`CancelToken`], and the cancellation nodes of scopes (a leaf: `fiber/` keeps the node current on a fiber, `scope/` owns one per scope) | nothing but `shim` and `panic` |
//! | [`promise`] | [`Deferred`](promise::Deferred) values (lazy work, eager handles) and their combinators | `fiber` ([`Ctx`]), `scope`, `task` ([`JobHandle`]), `cancel` |
//!
//! ```
//! use jobsys::JobSystem;
//!
//! let jobs = JobSystem::builder().workers(2).build()?;
//! let mut positions = vec![0.0f32; 4096];
//! let sum = jobs.run(|ctx| {
//!     // Jobs in a scope may borrow the stack; the scope waits for all of them.
//!     ctx.scope(|s| {
//!         for chunk in positions.chunks_mut(512) {
//!             s.spawn(move |_| chunk.iter_mut().for_each(|p| *p += 1.0));
//!         }
//!     });
//!     let (a, b) = ctx.join(|_| positions[..2048].iter().sum::<f32>(), |_| positions[2048..].iter().sum::<f32>());
//!     a + b
//! });
//! assert_eq!(sum, 4096.0);
//! # Ok::<(), jobsys::BuildError>(())
//! ```
//!
//! Layers: the safe layer ([`Ctx::scope`], [`Ctx::join`], pinned jobs through [`JobMeta`]) and
//! the raw Naughty-Dog layer ([`JobDecl`], [`Ctx::run_jobs`], [`Ctx::wait_for_counter`]).
//! Threads outside the pool submit and wait through a [`Handle`].
//!
//! The package is `jobsys-fiber` on crates.io (the name `jobsys` there belongs to an unrelated
//! crate); the library keeps the crate name `jobsys`: `cargo add jobsys-fiber`, then
//! `use jobsys::...`.
//!
//! ## Features
//! - `profile`: turns the scheduler's profiler call sites into calls to the hooks installed
//!   with [`profile::add_hooks`] (see the `jobsys-profiling` crate for Tracy and Chrome trace).
//! - `fault-injection`: seeded fault injection at the scheduler's racy points (spins, yields,
//!   short sleeps, spurious CAS failures), seeded from `JOBSYS_FAULT_SEED`. For tests only.
//! - `simulation`: deterministic simulation (`jobsys::sim`): every atomic operation, fault site, spin
//!   and park becomes a step of a seeded scheduler that runs one thread at a time. For tests
//!   only.
//! - `sanitizer`: announces every fiber switch to AddressSanitizer (corosensei's `sanitizer`
//!   feature), so ASan follows the stack a fiber runs on. Only for builds with
//!   `-Zsanitizer=address`: it links against the ASan runtime. The source repository's
//!   `docs/testing.md` gives the command.
//!
//! ## What not to hold across a wait
//! A job may continue on another fiber's schedule after any wait, so std mutex guards,
//! `thread_local!` borrows and Tracy spans must not be alive across one. With
//! `panic = "abort"` a job panic aborts the process instead of reaching its owner. The rules in
//! full, migration mode included, are in the source repository's `docs/safety.md`.

mod blocking;
mod bridge;
mod builder;
mod cancel;
mod counter;
mod deadline;
mod error;
pub mod fault;
mod fiber;
mod frame;
mod job;
mod local;
mod memory;
mod panic;
mod park;
pub mod profile;
pub mod promise;
mod queue;
mod sched;
mod scope;
mod shim;
#[cfg(feature = "simulation")]
pub mod sim;
#[cfg(not(feature = "simulation"))]
mod sim;
pub mod sync;
mod system;
mod task;
mod timer;
mod waitlist;
mod wake;
mod worker;

pub use bridge::{CounterWait, JobHandleFuture};
pub use builder::Builder;
pub use cancel::{CancelToken, Cancelled};
pub use counter::Counter;
pub use error::{BuildError, BuildErrorKind};
pub use fiber::{Ctx, NoSuspend};
pub use frame::{ArenaFull, Frame, FrameArena, FrameStats, Frames, WorkerFrameStats};
pub use job::{Affinity, JobDecl, JobMeta, Priority, StackClass};
pub use local::WorkerLocal;
pub use memory::{Memory, MemoryRegion, MemoryRequirements};
pub use sched::{GLOBAL_PICK_PERIOD, Hint};
pub use scope::Scope;
pub use scope::ScopedJobHandle;
pub use system::{Handle, JobSystem};
pub use task::{JobHandle, JobOptions};
pub use worker::WorkerInfo;
pub use worker::WorkerStats;

// The package README's examples compile and pass as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
