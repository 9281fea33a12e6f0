//! Deterministic simulation (cargo feature `simulation`): the whole runtime — worker loops,
//! fibers, rings, the injector, counters, parks, timers, sleeps and wakes — runs under a
//! seeded scheduler that lets exactly **one thread of the simulation run at a time**, and
//! switches between them only at *steps*: every atomic operation and fence of the crate (they
//! all go through `shim`), every fault-injection site, every spin or yield, every park and
//! unpark. Which thread runs after each step is drawn from a generator seeded by the run's
//! seed, so a seed fixes the interleaving: the same seed replays the same run step for step,
//! and [`Run::schedule`] (a hash of every step's thread) proves it.
//!
//! Each simulated thread is a real OS thread (a worker keeps its own stack, thread-locals and
//! fiber switches, so the code under test is the shipping code), but they pass one baton:
//! a thread waits on a condition variable until the scheduler hands the baton to it. Time is
//! virtual: each step advances the clock by [`TICK`]; when every thread is blocked, the clock
//! jumps to the earliest deadline (a timed wait, a sleeping worker's next timer). When every
//! thread is blocked and none has a deadline, nothing can ever run again: that is a deadlock
//! (or a lost wake-up), and the run ends with [`Failure::Deadlock`] carrying the wait graph —
//! every simulated thread and what it blocks on, and every fiber of every system built in
//! the simulation and the counter or primitive it is parked on. A sleeping worker has no
//! watchdog under simulation, so a lost wake-up shows as a deadlock instead of a 20 ms stall.
//!
//! What a simulation does not explore: weak-memory reorderings (the baton orders everything;
//! that is loom's job) and code outside the crate's steps (the standard library, crossbeam's
//! internals run as one step).
//!
//! ```no_run
//! # #[cfg(feature = "simulation")] {
//! let run = jobsys::sim::Sim::new(7)
//!     .run(|| {
//!         let jobs = jobsys::JobSystem::builder().workers(3).build().unwrap();
//!         jobs.run(|ctx| ctx.join(|_| 1, |_| 2))
//!     })
//!     .unwrap_or_else(|failure| panic!("{failure}"));
//! assert_eq!(run.value, (1, 2));
//! # }
//! ```
//!
//! Every thread that touches a simulated system must belong to the simulation: the closure
//! given to [`Sim::run`] runs on the first one; the system's workers join it when it spawns
//! them; other threads come from [`spawn`].
//!
//! Layout: `api.rs` (the public [`Sim`], [`Run`], [`Failure`]), `world.rs` (the scheduler:
//! threads, baton, clock, generator, wait graph), `thread.rs` ([`spawn`], [`JoinHandle`]),
//! `hooks.rs` (what the runtime calls at its steps). Without the feature only `off.rs` is
//! built: the hooks called outside `shim/` as empty `#[inline(always)]` functions, so their
//! call sites need no `cfg`.

#[cfg(feature = "simulation")]
mod api;
#[cfg(feature = "simulation")]
mod hooks;
#[cfg(feature = "simulation")]
mod thread;
#[cfg(feature = "simulation")]
mod world;

#[cfg(not(feature = "simulation"))]
#[path = "off.rs"]
mod hooks;

#[cfg(feature = "simulation")]
pub use api::{Failure, Run, Sim, TICK};
#[cfg(feature = "simulation")]
pub use thread::{JoinHandle, spawn};

#[cfg(feature = "simulation")]
pub(crate) use hooks::{park, spin, step, unpark};
#[cfg(feature = "simulation")]
pub(crate) use thread::spawn_with;

pub(crate) use hooks::{active, bucket, done_waiting, now, on_report, random, site, waits_on};
