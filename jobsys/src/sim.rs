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

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

/// Virtual time one step takes.
pub const TICK: Duration = Duration::from_nanos(100);
const TICK_NS: u64 = 100;
const NEVER: u64 = u64::MAX;

/// A simulation's configuration: its seed, its step budget and how often a thread is
/// preempted.
#[derive(Clone, Copy, Debug)]
pub struct Sim {
    seed: u64,
    max_steps: u64,
    preempt_one_in: u64,
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

/// A thread of the simulation, as the scheduler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Runnable,
    /// Parked until unparked, or until `deadline` ([`NEVER`]: none).
    Blocked {
        deadline: u64,
    },
    /// Runnable, but descheduled until `until` (see [`Sim::preempt_one_in`]); an unpark
    /// does not end it.
    Preempted {
        until: u64,
    },
    /// Waiting for thread `.0` to finish.
    Joining(usize),
    Finished,
}

struct SimThread {
    name: String,
    os: Option<ThreadId>,
    status: Status,
    /// `unpark` before `park` (std's token).
    token: bool,
    /// What the thread said it blocks on, for the wait graph.
    waits_on: Option<String>,
}

type Reporter = Box<dyn Fn() -> String + Send>;

struct State {
    seed: u64,
    rng: u64,
    /// The thread holding the baton.
    current: usize,
    threads: Vec<SimThread>,
    clock: u64,
    steps: u64,
    max_steps: u64,
    switches: u64,
    preemptions: u64,
    hash: u64,
    /// At an ordinary step the baton moves with probability 1 / this.
    switch_one_in: u64,
    /// At an ordinary step the thread is preempted with probability 1 / this (0: never).
    preempt_one_in: u64,
    failure: Option<Failure>,
    reporters: Vec<Reporter>,
}

struct World {
    state: Mutex<State>,
    cv: Condvar,
    /// The wait-list bucket this simulation's keys all share (see [`bucket`]).
    bucket: usize,
}

/// Which of the 64 wait-list buckets running simulations hold (a bit each).
static BUCKETS_HELD: Mutex<u64> = Mutex::new(0);
static BUCKET_FREED: Condvar = Condvar::new();

/// Takes a bucket no running simulation holds (waits for one if all 64 are).
fn take_bucket() -> usize {
    let mut held = BUCKETS_HELD.lock().unwrap_or_else(|e| e.into_inner());
    while *held == u64::MAX {
        held = BUCKET_FREED.wait(held).unwrap_or_else(|e| e.into_inner());
    }
    let b = held.trailing_ones() as usize;
    *held |= 1 << b;
    b
}

fn give_bucket(b: usize) {
    *BUCKETS_HELD.lock().unwrap_or_else(|e| e.into_inner()) &= !(1 << b);
    BUCKET_FREED.notify_one();
}

thread_local! {
    /// The simulation this thread belongs to, and its index there.
    static ME: RefCell<Option<(Arc<World>, usize)>> = const { RefCell::new(None) };
    /// Set while this thread writes a failure's report: its reads of the runtime's atomics
    /// are then not steps.
    static REPORTING: Cell<bool> = const { Cell::new(false) };
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl World {
    fn new(sim: Sim) -> Self {
        let mut rng = sim.seed;
        // Some seeds switch at almost every step, some run long stretches: both find bugs.
        let switch_one_in = [2, 4, 16, 64][(splitmix(&mut rng) % 4) as usize];
        Self {
            state: Mutex::new(State {
                seed: sim.seed,
                rng,
                current: 0,
                threads: vec![SimThread {
                    name: "sim-main".into(),
                    os: None,
                    status: Status::Runnable,
                    token: false,
                    waits_on: None,
                }],
                clock: 0,
                steps: 0,
                max_steps: sim.max_steps,
                switches: 0,
                preemptions: 0,
                hash: 0xCBF2_9CE4_8422_2325,
                switch_one_in,
                preempt_one_in: sim.preempt_one_in,
                failure: None,
                reporters: Vec::new(),
            }),
            cv: Condvar::new(),
            bucket: take_bucket(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&'a self, s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cv.wait(s).unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until `me` holds the baton. After a failure nobody does again: the threads
    /// stay here for good.
    fn wait_turn<'a>(&'a self, mut s: MutexGuard<'a, State>, me: usize) -> MutexGuard<'a, State> {
        while s.current != me || s.failure.is_some() {
            s = self.wait(s);
        }
        s
    }

    /// Counts a step of `me`; ends the run when the budget is spent.
    fn count<'a>(&'a self, mut s: MutexGuard<'a, State>, me: usize) -> MutexGuard<'a, State> {
        s.steps += 1;
        s.clock = s.clock.saturating_add(TICK_NS);
        s.hash = (s.hash ^ me as u64).wrapping_mul(0x0100_0000_01B3);
        if s.steps > s.max_steps {
            let report = self.report(&mut s);
            s.failure = Some(Failure::Livelock {
                seed: s.seed,
                steps: s.steps,
                report,
            });
            self.cv.notify_all();
            return self.wait_turn(s, me);
        }
        // Deadlines that passed while others ran.
        let clock = s.clock;
        for t in &mut s.threads {
            if matches!(t.status, Status::Blocked { deadline } | Status::Preempted { until: deadline } if deadline <= clock)
            {
                t.status = Status::Runnable;
            }
        }
        s
    }

    /// Moves the baton to a runnable thread the generator picks (`me` too, unless `other`
    /// asks for someone else while there is one), then waits for `me`'s next turn.
    fn pass<'a>(
        &'a self,
        mut s: MutexGuard<'a, State>,
        me: usize,
        other: bool,
    ) -> MutexGuard<'a, State> {
        let next = self.pick(&mut s, me, other);
        if next == Some(me) {
            return s;
        }
        self.hand_over(&mut s, next);
        self.wait_turn(s, me)
    }

    /// An ordinary step's draw: the baton moves with probability 1 / `switch_one_in`.
    fn maybe_switch(&self, mut s: MutexGuard<'_, State>, me: usize) {
        let r = splitmix(&mut s.rng);
        if r.is_multiple_of(s.switch_one_in) {
            drop(self.pass(s, me, false));
        }
    }

    /// Gives the baton to `next`, or, when nobody can have it, ends the run as a deadlock.
    fn hand_over(&self, s: &mut State, next: Option<usize>) {
        match next {
            Some(n) => {
                s.current = n;
                s.switches += 1;
                s.hash = (s.hash ^ (n as u64).rotate_left(32)).wrapping_mul(0x0100_0000_01B3);
            }
            None => {
                let report = self.report(s);
                s.failure = Some(Failure::Deadlock {
                    seed: s.seed,
                    steps: s.steps,
                    report,
                });
            }
        }
        self.cv.notify_all();
    }

    fn pick(&self, s: &mut State, me: usize, other: bool) -> Option<usize> {
        let runnable = |s: &State, skip_me: bool| -> Vec<usize> {
            (0..s.threads.len())
                .filter(|&i| s.threads[i].status == Status::Runnable && !(skip_me && i == me))
                .collect()
        };
        let mut choice = runnable(s, other);
        if choice.is_empty() {
            // Nobody (else) can run: let time pass to the earliest deadline (a preempted
            // thread's included: it gets its core back) — unless it is a preempted thread's
            // and this one can go on: a spinning thread keeps its core while another is
            // descheduled, and time passes by its steps.
            let me_runs = s.threads[me].status == Status::Runnable;
            let earliest = (0..s.threads.len())
                .filter_map(|i| match s.threads[i].status {
                    Status::Blocked { deadline } if deadline != NEVER => Some((deadline, i)),
                    Status::Preempted { until } => Some((until, i)),
                    _ => None,
                })
                .min();
            if let Some((deadline, i)) = earliest
                && !(me_runs && matches!(s.threads[i].status, Status::Preempted { .. }))
            {
                s.clock = s.clock.max(deadline);
                s.threads[i].status = Status::Runnable;
                return Some(i);
            }
            if me_runs {
                // Spinning alone: only the step budget ends it.
                return Some(me);
            }
            return None;
        }
        choice.sort_unstable();
        let r = splitmix(&mut s.rng);
        Some(choice[(r % choice.len() as u64) as usize])
    }

    /// The wait graph, read with every thread stopped. Reporters read the systems' atomics;
    /// this thread leaves the simulation while they do, so those reads are not steps.
    fn report(&self, s: &mut State) -> String {
        use std::fmt::Write as _;
        let mut out = String::from("Threads:\n");
        for (i, t) in s.threads.iter().enumerate() {
            let what = match t.status {
                Status::Runnable => "runnable".to_string(),
                Status::Blocked { deadline: NEVER } => "blocked".to_string(),
                Status::Blocked { deadline } => format!("blocked until t={deadline} ns"),
                Status::Preempted { until } => format!("preempted until t={until} ns"),
                Status::Joining(j) => format!("joining thread {j} ({})", s.threads[j].name),
                Status::Finished => "finished".to_string(),
            };
            let _ = write!(out, "  thread {i} ({}): {what}", t.name);
            if let Some(w) = &t.waits_on {
                let _ = write!(out, " — {w}");
            }
            out.push('\n');
        }
        REPORTING.with(|r| r.set(true));
        for r in &s.reporters {
            out.push_str(&r());
        }
        REPORTING.with(|r| r.set(false));
        out
    }
}

/// Joins `world` as thread `me` and waits for the first turn.
fn enter(world: &Arc<World>, me: usize) {
    ME.with(|m| *m.borrow_mut() = Some((world.clone(), me)));
    let mut s = world.lock();
    s.threads[me].os = Some(std::thread::current().id());
    drop(world.wait_turn(s, me));
}

/// Leaves the simulation when the thread's body ends (returning or unwinding): wakes its
/// joiners and hands the baton on.
struct Exit;

impl Drop for Exit {
    fn drop(&mut self) {
        let Some((world, me)) = ME.with(|m| m.borrow_mut().take()) else {
            return;
        };
        let mut s = world.lock();
        s.threads[me].status = Status::Finished;
        for t in &mut s.threads {
            if t.status == Status::Joining(me) {
                t.status = Status::Runnable;
            }
        }
        if s.failure.is_some() {
            return;
        }
        let next = world.pick(&mut s, me, true);
        if next.is_none() && s.threads[0].status == Status::Finished {
            // The run is over; whatever is left (threads nobody joined) blocks for good.
            world.cv.notify_all();
            return;
        }
        world.hand_over(&mut s, next);
    }
}

/// Runs `f` with this thread's simulation, if it belongs to one.
#[inline]
fn with_me<R>(f: impl FnOnce(&World, usize) -> R) -> Option<R> {
    if REPORTING.with(Cell::get) {
        return None;
    }
    ME.with(|m| m.borrow().as_ref().map(|(w, me)| f(w, *me)))
}

/// Whether the calling thread belongs to a simulation.
#[inline]
pub(crate) fn active() -> bool {
    !REPORTING.with(Cell::get) && ME.with(|m| m.borrow().is_some())
}

/// A step: the baton may move to another thread here.
#[inline]
pub(crate) fn step() {
    with_me(|w, me| {
        let s = w.count(w.lock(), me);
        w.maybe_switch(s, me);
    });
}

/// A fault-injection site (a racy point of a protocol, see `fault.rs`): a step where, with
/// [`Sim::preempt_one_in`], the thread may also be descheduled for a while.
pub(crate) fn site() {
    with_me(|w, me| {
        let mut s = w.count(w.lock(), me);
        // Drawn only when preemption is on, so that runs without it replay as before.
        if s.preempt_one_in != 0 && splitmix(&mut s.rng).is_multiple_of(s.preempt_one_in) {
            // Log-uniform from one tick to about 26 ms: short and very long deschedules are
            // both common. A long one outlasts another worker's way to sleep (its idle spins
            // and yields, thousands of steps).
            let span = TICK_NS << (splitmix(&mut s.rng) % 19);
            let until = s.clock.saturating_add(span);
            s.threads[me].status = Status::Preempted { until };
            s.preemptions += 1;
            drop(w.pass(s, me, true));
            return;
        }
        w.maybe_switch(s, me);
    });
}

/// A spin or yield: the baton moves to another runnable thread if there is one (or time
/// passes to the next deadline). Returns false outside a simulation.
pub(crate) fn spin() -> bool {
    with_me(|w, me| {
        let s = w.count(w.lock(), me);
        drop(w.pass(s, me, true));
    })
    .is_some()
}

/// A draw from the simulation's generator, `None` outside one.
pub(crate) fn random() -> Option<u64> {
    with_me(|w, me| {
        let mut s = w.count(w.lock(), me);
        splitmix(&mut s.rng)
    })
}

/// The wait-list bucket of the caller's simulation, `None` outside one. Replay must not
/// depend on where memory happens to be (addresses change from run to run), nor on what
/// other simulations running in the same process do: each simulation puts all of its keys in
/// a bucket of its own.
pub(crate) fn bucket() -> Option<usize> {
    with_me(|w, _| w.bucket)
}

/// The virtual clock in nanoseconds, `None` outside a simulation.
pub(crate) fn now() -> Option<u64> {
    with_me(|w, _| w.lock().clock)
}

/// Parks the calling thread until unparked or `timeout` (none: untimed) passes in virtual
/// time. Returns false outside a simulation.
pub(crate) fn park(timeout: Option<Duration>) -> bool {
    with_me(|w, me| {
        let mut s = w.count(w.lock(), me);
        let t = &mut s.threads[me];
        if std::mem::take(&mut t.token) {
            return;
        }
        let deadline = timeout.map_or(NEVER, |d| {
            s.clock
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(NEVER))
        });
        s.threads[me].status = Status::Blocked { deadline };
        drop(w.pass(s, me, false));
    })
    .is_some()
}

/// Unparks `thread` if it belongs to the caller's simulation. Returns false when the caller
/// is outside one (then use `Thread::unpark`).
pub(crate) fn unpark(thread: &std::thread::Thread) -> bool {
    with_me(|w, me| {
        let mut s = w.count(w.lock(), me);
        let id = thread.id();
        if let Some(t) = s.threads.iter_mut().find(|t| t.os == Some(id)) {
            if matches!(t.status, Status::Blocked { .. }) {
                t.status = Status::Runnable;
            } else {
                t.token = true;
            }
        } else {
            thread.unpark();
        }
    })
    .is_some()
}

/// Says what the calling thread is about to block on (for the wait graph), until
/// [`done_waiting`].
pub(crate) fn waits_on(what: impl FnOnce() -> String) {
    with_me(|w, me| w.lock().threads[me].waits_on = Some(what()));
}

/// Ends what [`waits_on`] said.
pub(crate) fn done_waiting() {
    with_me(|w, me| w.lock().threads[me].waits_on = None);
}

/// Adds to the wait graph of a failed run (a system registers its fiber report).
pub(crate) fn on_report(reporter: Box<dyn Fn() -> String + Send>) {
    with_me(|w, _| w.lock().reporters.push(reporter));
}

/// A thread of the simulation the caller belongs to (or a plain thread outside one): it
/// does not run until the scheduler hands it the baton. Join it through the handle, which
/// lets the others run meanwhile.
///
/// # Errors
/// As [`std::thread::Builder::spawn`].
pub fn spawn<T, F>(name: impl Into<String>, f: F) -> std::io::Result<JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    spawn_with(std::thread::Builder::new().name(name.into()), f)
}

/// [`spawn`] with a configured builder (name, stack size).
pub(crate) fn spawn_with<T, F>(
    builder: std::thread::Builder,
    f: F,
) -> std::io::Result<JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let joined = ME.with(|m| m.borrow().as_ref().map(|(w, me)| (w.clone(), *me)));
    let Some((world, me)) = joined else {
        return builder
            .spawn(f)
            .map(|inner| JoinHandle { inner, sim: None });
    };
    let id = {
        let mut s = world.count(world.lock(), me);
        s.threads.push(SimThread {
            name: builder_name(&builder),
            os: None,
            // The caller holds the baton until this returns, so nobody picks the new thread
            // before its OS thread exists.
            status: Status::Runnable,
            token: false,
            waits_on: None,
        });
        s.threads.len() - 1
    };
    let child = world.clone();
    let spawned = builder.spawn(move || {
        enter(&child, id);
        let _exit = Exit;
        f()
    });
    let mut s = world.lock();
    let inner = match spawned {
        Ok(inner) => inner,
        Err(e) => {
            s.threads[id].status = Status::Finished;
            return Err(e);
        }
    };
    s.threads[id].os = Some(inner.thread().id());
    drop(s);
    Ok(JoinHandle {
        inner,
        sim: Some((world.clone(), id)),
    })
}

fn builder_name(b: &std::thread::Builder) -> String {
    // `Builder` does not expose its name; the Debug output does.
    let d = format!("{b:?}");
    d.split("name: Some(\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("thread")
        .to_string()
}

/// A thread spawned with [`spawn`].
#[derive(Debug)]
pub struct JoinHandle<T> {
    inner: std::thread::JoinHandle<T>,
    sim: Option<(Arc<World>, usize)>,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("World")
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to finish (letting the simulation's other threads run) and
    /// returns its value, or its panic.
    ///
    /// # Errors
    /// The thread's panic payload, as [`std::thread::JoinHandle::join`].
    pub fn join(self) -> std::thread::Result<T> {
        if let Some((world, id)) = &self.sim {
            with_me(|w, me| {
                debug_assert!(std::ptr::eq(w, &**world), "joined from another simulation");
                let mut s = w.count(w.lock(), me);
                while s.threads[*id].status != Status::Finished {
                    s.threads[me].status = Status::Joining(*id);
                    s = w.pass(s, me, false);
                }
            });
        }
        self.inner.join()
    }

    /// The underlying thread.
    pub fn thread(&self) -> &std::thread::Thread {
        self.inner.thread()
    }
}
