//! The public face of a simulation: its configuration ([`Sim`]), a finished run ([`Run`]) and
//! why a run did not finish ([`Failure`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::world::{Exit, Status, World, enter, give_bucket};

/// Virtual time one step takes.
pub const TICK: Duration = Duration::from_nanos(100);

/// A simulation's configuration: its seed, its step budget and how often a thread is
/// preempted.
#[derive(Clone, Copy, Debug)]
pub struct Sim {
    pub(super) seed: u64,
    pub(super) max_steps: u64,
    pub(super) preempt_one_in: u64,
}

/// A simulation that finished: what its closure returned, and the run's figures.
#[derive(Debug)]
pub struct Run<T> {
    /// The closure's value.
    pub value: T,
    /// The seed that produced this run.
    pub seed: u64,
    /// Steps taken (atomic operations, fault sites, spins, parks).
    pub steps: u64,
    /// How many times the baton moved to another thread.
    pub switches: u64,
    /// How many times a thread was preempted (see [`Sim::preempt_one_in`]).
    pub preemptions: u64,
    /// A hash of which thread ran every step: equal for two runs of one seed.
    pub schedule: u64,
    /// Virtual time at the end.
    pub elapsed: Duration,
}

/// Why a simulation did not finish.
#[derive(Debug)]
pub enum Failure {
    /// Every thread blocked with no deadline: nothing could run again.
    Deadlock {
        /// The seed to replay it with.
        seed: u64,
        /// Steps taken before it.
        steps: u64,
        /// The wait graph: each thread and fiber and what it waits on.
        report: String,
    },
    /// The step budget ran out (something spins on a condition no thread will make true).
    Livelock {
        /// The seed to replay it with.
        seed: u64,
        /// Steps taken (the budget).
        steps: u64,
        /// The state of every thread and fiber when the budget ran out.
        report: String,
    },
    /// The closure panicked.
    Panicked {
        /// The seed to replay it with.
        seed: u64,
        /// Steps taken before the panic ended the closure.
        steps: u64,
        /// The panic's message.
        message: String,
    },
}

impl Failure {
    /// The seed of the failed run.
    pub fn seed(&self) -> u64 {
        match self {
            Failure::Deadlock { seed, .. }
            | Failure::Livelock { seed, .. }
            | Failure::Panicked { seed, .. } => *seed,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Deadlock {
                seed,
                steps,
                report,
            } => write!(
                f,
                "simulation seed {seed}: deadlock after {steps} steps — every thread is blocked \
                 and none has a deadline.\n{report}"
            )?,
            Failure::Livelock {
                seed,
                steps,
                report,
            } => write!(
                f,
                "simulation seed {seed}: no end after {steps} steps (raise Sim::max_steps if \
                 the work is that long).\n{report}"
            )?,
            Failure::Panicked {
                seed,
                steps,
                message,
            } => write!(
                f,
                "simulation seed {seed}: panicked after {steps} steps: {message}"
            )?,
        }
        write!(
            f,
            "\nreplay: Sim::new({}).run(…) replays this run step for step (the tests take \
             JOBSYS_SIM_SEED={}).",
            self.seed(),
            self.seed()
        )
    }
}

impl std::error::Error for Failure {}

impl Sim {
    /// A simulation driven by `seed`, with a budget of 50 million steps and no preemption.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            max_steps: 50_000_000,
            preempt_one_in: 0,
        }
    }

    /// Preempts the running thread at about one fault-injection site in `n` (the racy points
    /// of the scheduler's protocols: a push, a steal, a counter decrement, a wait's
    /// publication, the steps of a wake; 0: never, the default): it is *descheduled* — it
    /// cannot have the baton — for a span of virtual time drawn log-uniformly between one
    /// [`TICK`] and about 26 ms, as a thread of an oversubscribed
    /// machine loses its core. The others run meanwhile (spins and yields included, which
    /// otherwise hand the baton straight back to a runnable thread such as that one); it
    /// runs again when the span has passed (virtual time jumps to its end when no other
    /// thread can run before it).
    ///
    /// Without it, a thread is never kept from running while it is runnable: a window
    /// between two steps of one thread is only ever seen by others for a few steps, never
    /// for as long as it takes another worker to find nothing, spin and go to sleep.
    /// Preemption explores those long windows (a waker descheduled between its wake and
    /// its last touch of the system). The schedule remains a function of the seed.
    pub fn preempt_one_in(mut self, n: u64) -> Self {
        self.preempt_one_in = n;
        self
    }

    /// Ends the run as a [`Failure::Livelock`] after `steps` steps.
    pub fn max_steps(mut self, steps: u64) -> Self {
        self.max_steps = steps;
        self
    }

    /// Runs `f` as the simulation's first thread and returns its value, or why the run did
    /// not finish. On a deadlock or livelock the simulation's threads stay blocked forever
    /// (they and what they hold are leaked): there is no safe way to unwind a parked fiber.
    pub fn run<T, F>(self, f: F) -> Result<Run<T>, Failure>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let world = Arc::new(World::new(self));
        let root = {
            let world = world.clone();
            std::thread::Builder::new()
                .name("sim-main".into())
                .spawn(move || {
                    enter(&world, 0);
                    let _exit = Exit;
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                })
                .expect("the simulation could not spawn its first thread")
        };
        let mut s = world.lock();
        while s.threads[0].status != Status::Finished && s.failure.is_none() {
            s = world.wait(s);
        }
        // A thread left over after the first one finished (one nobody joined) may block for
        // good: that is not the run's failure.
        if s.threads[0].status != Status::Finished
            && let Some(failure) = s.failure.take()
        {
            return Err(failure);
        }
        let (steps, switches, preemptions, schedule, clock) =
            (s.steps, s.switches, s.preemptions, s.hash, s.clock);
        drop(s);
        // A failed run keeps its bucket for good: its blocked threads' nodes stay linked.
        give_bucket(world.bucket);
        match root.join() {
            Ok(Ok(value)) => Ok(Run {
                value,
                seed: self.seed,
                steps,
                switches,
                preemptions,
                schedule,
                elapsed: Duration::from_nanos(clock),
            }),
            Ok(Err(payload)) => Err(Failure::Panicked {
                seed: self.seed,
                steps,
                message: payload
                    .downcast_ref::<&str>()
                    .map(|m| (*m).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(a non-string payload)".into()),
            }),
            Err(_) => unreachable!("the first thread catches its closure's panic"),
        }
    }
}
