//! Pre-armed counters: `Counter::add` holds a counter so that waits on it do not return before
//! the hold is released with `Counter::sub`, whose decrement wakes waiters like a finishing
//! job's; a DAG of batches laid out before any of them is submitted.

mod common;

use common::each_worker_count;
use jobsys::{Counter, Ctx, JobDecl, job_meta};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};

/// Rounds per worker count: each round is a fresh race between waiters and the releases.
const ROUNDS: usize = 20;
/// Jobs per batch.
const JOBS: u32 = 8;

fn bump(_: &Ctx, data: *mut ()) {
    // SAFETY: every declaration points at a live `AtomicU32` of the test, which waits for the
    // batch before it goes away.
    unsafe { &*data.cast::<AtomicU32>() }.fetch_add(1, SeqCst);
}

fn batch(ran: &AtomicU32) -> Vec<JobDecl> {
    let data = std::ptr::from_ref(ran).cast_mut().cast();
    (0..JOBS)
        .map(|_| JobDecl::new(job_meta!("prearm-batch"), bump, data))
        .collect()
}

/// What a waiter saw when its wait returned.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Seen {
    ran: u32,
    released: bool,
    value: u32,
}

/// A fiber waiter: waits on `counter` for `target` and records what it saw on return.
struct FiberWaiter<'a> {
    counter: &'a Counter,
    target: u32,
    /// Set just before the wait starts.
    started: AtomicBool,
    /// The batch's jobs that ran, and whether the hold was released.
    ran: &'a AtomicU32,
    released: &'a AtomicBool,
    seen: std::sync::Mutex<Option<Seen>>,
}

impl<'a> FiberWaiter<'a> {
    fn new(
        counter: &'a Counter,
        target: u32,
        ran: &'a AtomicU32,
        released: &'a AtomicBool,
    ) -> Self {
        Self {
            counter,
            target,
            started: AtomicBool::new(false),
            ran,
            released,
            seen: std::sync::Mutex::new(None),
        }
    }

    fn decl(&self) -> JobDecl {
        JobDecl::new(
            job_meta!("prearm-waiter"),
            fiber_waiter,
            std::ptr::from_ref(self).cast_mut().cast(),
        )
    }

    fn seen(&self) -> Option<Seen> {
        *self.seen.lock().unwrap()
    }
}

fn fiber_waiter(ctx: &Ctx, data: *mut ()) {
    // SAFETY: `data` points at a `FiberWaiter` the test keeps alive until this job's counter
    // reached 0.
    let w = unsafe { &*data.cast::<FiberWaiter>() };
    w.started.store(true, SeqCst);
    ctx.wait_for_counter(w.counter, w.target);
    let seen = Seen {
        ran: w.ran.load(SeqCst),
        released: w.released.load(SeqCst),
        value: w.counter.value(),
    };
    *w.seen.lock().unwrap() = Some(seen);
}

#[test]
fn a_wait_on_a_held_counter_returns_only_after_the_batch_ran_and_the_hold_was_released() {
    each_worker_count(|jobs, n| {
        let handle = jobs.handle();
        for round in 0..ROUNDS {
            let b = Counter::new();
            b.add(1); // the hold: waits on `b` wait from now on, though nothing is submitted
            let (ran, released) = (AtomicU32::new(0), AtomicBool::new(false));
            let decls = batch(&ran);
            let fiber = FiberWaiter::new(&b, 0, &ran, &released);
            let thread_started = AtomicBool::new(false);
            let thread_seen = std::thread::scope(|t| {
                let thread = t.spawn(|| {
                    thread_started.store(true, SeqCst);
                    handle.wait_for_counter(&b, 0);
                    Seen {
                        ran: ran.load(SeqCst),
                        released: released.load(SeqCst),
                        value: b.value(),
                    }
                });
                jobs.run(|ctx| {
                    let waiter = [fiber.decl()];
                    let w = Counter::new();
                    // SAFETY: `waiter`, `fiber` and `w` outlive the wait for `w` below.
                    unsafe { ctx.run_jobs(&waiter, &w) };
                    // Both waiters have started before the batch is even submitted (with 1
                    // worker, the fiber waiter has parked or returned by then).
                    while !(fiber.started.load(SeqCst) && thread_started.load(SeqCst)) {
                        ctx.yield_now();
                        std::thread::yield_now();
                    }
                    // SAFETY: `decls`, `ran` and `b` outlive the wait for `b` below.
                    unsafe { ctx.run_jobs(&decls, &b) };
                    // The batch has run; only the hold keeps `b` up.
                    ctx.wait_for_counter(&b, 1);
                    assert_eq!(ran.load(SeqCst), JOBS, "{n} workers, round {round}");
                    assert!(fiber.seen().is_none(), "{n} workers, round {round}: the fiber waiter returned before the hold was released");
                    released.store(true, SeqCst);
                    b.sub(1);
                    ctx.wait_for_counter(&w, 0);
                });
                thread.join().unwrap()
            });
            let want = Seen {
                ran: JOBS,
                released: true,
                value: 0,
            };
            assert_eq!(
                fiber.seen(),
                Some(want),
                "{n} workers, round {round}: fiber waiter"
            );
            assert_eq!(
                thread_seen, want,
                "{n} workers, round {round}: thread waiter"
            );
        }
    });
}

#[test]
fn sub_reaching_a_non_zero_target_wakes_fiber_and_thread_waiters() {
    each_worker_count(|jobs, n| {
        let handle = jobs.handle();
        for round in 0..ROUNDS {
            let c = Counter::with_value(5);
            let (none, subbed) = (AtomicU32::new(0), AtomicBool::new(false));
            let fiber = FiberWaiter::new(&c, 2, &none, &subbed);
            let thread_started = AtomicBool::new(false);
            let thread_seen = std::thread::scope(|t| {
                let thread = t.spawn(|| {
                    thread_started.store(true, SeqCst);
                    handle.wait_for_counter(&c, 2);
                    (subbed.load(SeqCst), c.value())
                });
                jobs.run(|ctx| {
                    let waiter = [fiber.decl()];
                    let w = Counter::new();
                    // SAFETY: `waiter`, `fiber` and `w` outlive the wait for `w` below.
                    unsafe { ctx.run_jobs(&waiter, &w) };
                    while !(fiber.started.load(SeqCst) && thread_started.load(SeqCst)) {
                        ctx.yield_now();
                        std::thread::yield_now();
                    }
                    c.sub(2); // 3: above both targets
                    subbed.store(true, SeqCst);
                    c.sub(1); // 2: the decrement that reaches the target wakes them
                    ctx.wait_for_counter(&w, 0);
                });
                thread.join().unwrap()
            });
            let fiber_seen = fiber.seen().expect("the fiber waiter returned");
            assert_eq!(
                (fiber_seen.released, fiber_seen.value),
                (true, 2),
                "{n} workers, round {round}: fiber waiter"
            );
            assert_eq!(
                thread_seen,
                (true, 2),
                "{n} workers, round {round}: thread waiter"
            );
            c.sub(2);
            assert_eq!(c.value(), 0);
        }
    });
}

fn panic_message(r: std::thread::Result<()>) -> String {
    let payload = r.expect_err("the call must panic");
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast::<&str>().map(|s| s.to_string()).unwrap(),
    }
}

#[test]
fn add_past_the_32_bit_count_panics_and_leaves_the_counter_unchanged() {
    let c = Counter::with_value(u32::MAX - 1);
    let msg = panic_message(catch_unwind(AssertUnwindSafe(|| c.add(2))));
    assert!(
        msg.contains("Counter::add(2)") && msg.contains("overflow"),
        "{msg}"
    );
    assert_eq!(c.value(), u32::MAX - 1);
    c.add(1);
    assert_eq!(c.value(), u32::MAX);
    let msg = panic_message(catch_unwind(AssertUnwindSafe(|| c.add(1))));
    assert!(msg.contains("unchanged"), "{msg}");
    assert_eq!(c.value(), u32::MAX);
    c.sub(u32::MAX);
    assert_eq!(c.value(), 0);
}

#[test]
fn sub_below_zero_panics_and_leaves_the_counter_unchanged() {
    let c = Counter::with_value(2);
    let msg = panic_message(catch_unwind(AssertUnwindSafe(|| c.sub(3))));
    assert!(
        msg.contains("Counter::sub(3)") && msg.contains("below zero"),
        "{msg}"
    );
    assert_eq!(c.value(), 2);
    c.sub(2);
    assert_eq!(c.value(), 0);
    let _ = panic_message(catch_unwind(AssertUnwindSafe(|| c.sub(1))));
    assert_eq!(c.value(), 0);
}

/// One stage of the DAG: its batch, counted on its held counter.
struct Stage {
    counter: Counter,
    ran: AtomicU32,
    /// Jobs of this stage that found the stage before them unfinished.
    early: AtomicU32,
}

/// What a stage's job reads: its own stage and the one before it.
struct StageJob<'a> {
    stage: &'a Stage,
    before: Option<&'a Stage>,
}

fn stage_job(_: &Ctx, data: *mut ()) {
    // SAFETY: `data` points at a `StageJob` the test keeps alive until the DAG has run.
    let j = unsafe { &*data.cast::<StageJob>() };
    if j.before.is_some_and(|b| b.ran.load(SeqCst) != JOBS) {
        j.stage.early.fetch_add(1, SeqCst);
    }
    j.stage.ran.fetch_add(1, SeqCst);
}

/// When `after` reaches 0, kick `decls` on `stage`'s held counter, then release the hold.
struct Kick<'a> {
    after: &'a Counter,
    decls: &'a [JobDecl],
    stage: &'a Stage,
    /// Set just before the wait on `after` starts.
    started: AtomicBool,
}

fn kick(ctx: &Ctx, data: *mut ()) {
    // SAFETY: `data` points at a `Kick` the test keeps alive until the kickers' counter is 0.
    let k = unsafe { &*data.cast::<Kick>() };
    k.started.store(true, SeqCst);
    ctx.wait_for_counter(k.after, 0);
    // SAFETY: `decls` and the stage outlive the test's wait for the last stage, which cannot
    // reach 0 before this batch has run.
    unsafe { ctx.run_jobs(k.decls, &k.stage.counter) };
    k.stage.counter.sub(1);
}

/// A → B → C, laid out before anything runs: every stage held, both kickers and a thread
/// waiting on C submitted first, and C's kicker waiting on B before A is even submitted.
#[test]
fn a_three_stage_dag_of_held_counters_runs_in_order() {
    each_worker_count(|jobs, n| {
        let handle = jobs.handle();
        for round in 0..ROUNDS {
            let stages: [Stage; 3] = std::array::from_fn(|_| Stage {
                counter: Counter::with_value(1),
                ran: AtomicU32::new(0),
                early: AtomicU32::new(0),
            });
            let [a, b, c] = &stages;
            let job_data = [
                StageJob {
                    stage: a,
                    before: None,
                },
                StageJob {
                    stage: b,
                    before: Some(a),
                },
                StageJob {
                    stage: c,
                    before: Some(b),
                },
            ];
            let decls: Vec<Vec<JobDecl>> = job_data
                .iter()
                .map(|j| {
                    let data = std::ptr::from_ref(j).cast_mut().cast();
                    (0..JOBS)
                        .map(|_| JobDecl::new(job_meta!("prearm-stage"), stage_job, data))
                        .collect()
                })
                .collect();
            let kicks = [
                Kick {
                    after: &a.counter,
                    decls: &decls[1],
                    stage: b,
                    started: AtomicBool::new(false),
                },
                Kick {
                    after: &b.counter,
                    decls: &decls[2],
                    stage: c,
                    started: AtomicBool::new(false),
                },
            ];
            let kick_decls: Vec<JobDecl> = kicks
                .iter()
                .map(|k| {
                    JobDecl::new(
                        job_meta!("prearm-kick"),
                        kick,
                        std::ptr::from_ref(k).cast_mut().cast(),
                    )
                })
                .collect();
            let thread_started = AtomicBool::new(false);
            let thread_saw = std::thread::scope(|t| {
                let thread = t.spawn(|| {
                    thread_started.store(true, SeqCst);
                    handle.wait_for_counter(&c.counter, 0);
                    c.ran.load(SeqCst)
                });
                jobs.run(|ctx| {
                    let kicked = Counter::new();
                    // SAFETY: the stages, kicks and declarations live until both waits below
                    // have returned.
                    unsafe { ctx.run_jobs(&kick_decls, &kicked) };
                    while !(kicks[1].started.load(SeqCst) && thread_started.load(SeqCst)) {
                        ctx.yield_now();
                        std::thread::yield_now();
                    }
                    // C's kicker waits on B, which nothing has kicked yet: A is not submitted.
                    assert_eq!(b.ran.load(SeqCst), 0, "{n} workers, round {round}");
                    // SAFETY: as above.
                    unsafe { ctx.run_jobs(&decls[0], &a.counter) };
                    a.counter.sub(1);
                    ctx.wait_for_counter(&c.counter, 0);
                    assert_eq!(c.ran.load(SeqCst), JOBS, "{n} workers, round {round}");
                    ctx.wait_for_counter(&kicked, 0);
                });
                thread.join().unwrap()
            });
            assert_eq!(
                thread_saw, JOBS,
                "{n} workers, round {round}: thread waiter on C"
            );
            for (name, s) in ["A", "B", "C"].iter().zip(&stages) {
                assert_eq!(
                    (s.ran.load(SeqCst), s.early.load(SeqCst), s.counter.value()),
                    (JOBS, 0, 0),
                    "{n} workers, round {round}: stage {name} (ran, started early, count)"
                );
            }
        }
    });
}
