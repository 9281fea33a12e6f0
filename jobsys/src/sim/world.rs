//! The scheduler world: the simulated threads, the baton they pass, the virtual clock and the
//! seeded generator that decides who runs after each step, and the wait graph a failed run
//! reports.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;

use super::api::{Failure, Sim};

pub(super) const TICK_NS: u64 = 100;
pub(super) const NEVER: u64 = u64::MAX;

/// A thread of the simulation, as the scheduler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
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

pub(super) struct SimThread {
    pub(super) name: String,
    pub(super) os: Option<ThreadId>,
    pub(super) status: Status,
    /// `unpark` before `park` (std's token).
    pub(super) token: bool,
    /// What the thread said it blocks on, for the wait graph.
    pub(super) waits_on: Option<String>,
}

pub(super) type Reporter = Box<dyn Fn() -> String + Send>;

pub(super) struct State {
    pub(super) seed: u64,
    pub(super) rng: u64,
    /// The thread holding the baton.
    pub(super) current: usize,
    pub(super) threads: Vec<SimThread>,
    pub(super) clock: u64,
    pub(super) steps: u64,
    pub(super) max_steps: u64,
    pub(super) switches: u64,
    pub(super) preemptions: u64,
    pub(super) hash: u64,
    /// At an ordinary step the baton moves with probability 1 / this.
    pub(super) switch_one_in: u64,
    /// At an ordinary step the thread is preempted with probability 1 / this (0: never).
    pub(super) preempt_one_in: u64,
    pub(super) failure: Option<Failure>,
    pub(super) reporters: Vec<Reporter>,
}

pub(super) struct World {
    pub(super) state: Mutex<State>,
    pub(super) cv: Condvar,
    /// The wait-list bucket this simulation's keys all share (see [`super::hooks::bucket`]).
    pub(super) bucket: usize,
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

pub(super) fn give_bucket(b: usize) {
    *BUCKETS_HELD.lock().unwrap_or_else(|e| e.into_inner()) &= !(1 << b);
    BUCKET_FREED.notify_one();
}

thread_local! {
    /// The simulation this thread belongs to, and its index there.
    pub(super) static ME: RefCell<Option<(Arc<World>, usize)>> = const { RefCell::new(None) };
    /// Set while this thread writes a failure's report: its reads of the runtime's atomics
    /// are then not steps.
    pub(super) static REPORTING: Cell<bool> = const { Cell::new(false) };
}

pub(super) fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl World {
    pub(super) fn new(sim: Sim) -> Self {
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

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn wait<'a>(&'a self, s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
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
    pub(super) fn count<'a>(
        &'a self,
        mut s: MutexGuard<'a, State>,
        me: usize,
    ) -> MutexGuard<'a, State> {
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
    pub(super) fn pass<'a>(
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
    pub(super) fn maybe_switch(&self, mut s: MutexGuard<'_, State>, me: usize) {
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
pub(super) fn enter(world: &Arc<World>, me: usize) {
    ME.with(|m| *m.borrow_mut() = Some((world.clone(), me)));
    let mut s = world.lock();
    s.threads[me].os = Some(std::thread::current().id());
    drop(world.wait_turn(s, me));
}

/// Leaves the simulation when the thread's body ends (returning or unwinding): wakes its
/// joiners and hands the baton on.
pub(super) struct Exit;

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
pub(super) fn with_me<R>(f: impl FnOnce(&World, usize) -> R) -> Option<R> {
    if REPORTING.with(Cell::get) {
        return None;
    }
    ME.with(|m| m.borrow().as_ref().map(|(w, me)| f(w, *me)))
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("World")
    }
}
