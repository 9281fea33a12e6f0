//! The deterministic simulation (`--features simulation`): whole job systems run under a
//! seeded scheduler, one thread at a time, so a seed replays a run step for step.
//!
//! Replay a failure:
//! `JOBSYS_SIM_SEED=<seed> cargo test -p jobsys-fiber --features simulation --test sim`.
//! More seeds: `JOBSYS_SIM_SEEDS=<n>` (default 24 per test).
#![cfg(feature = "simulation")]

#[path = "common/dag.rs"]
mod dag;

use jobsys::sim::{Failure, Run, Sim};
use jobsys::sync::{Channel, Event, EventKind, Mutex, WaitGroup};
use jobsys::{Affinity, Counter, Ctx, JobDecl, JobSystem, job_meta};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn seeds() -> Vec<u64> {
    dag::seeds("JOBSYS_SIM_SEED", "JOBSYS_SIM_SEEDS", 24)
}

fn system(workers: usize) -> JobSystem {
    JobSystem::builder()
        .workers(workers)
        .small_fibers(32, 64 * 1024)
        .large_fibers(0, 64 * 1024)
        .build()
        .expect("build")
}

/// Runs `f` under `seed`, failing the test with the simulation's report (which says how to
/// replay) if the run does not finish.
fn sim<T: Send + 'static>(seed: u64, f: impl FnOnce() -> T + Send + 'static) -> Run<T> {
    Sim::new(seed)
        .run(f)
        .unwrap_or_else(|failure| panic!("{failure}"))
}

fn bump(_: &Ctx, data: *mut ()) {
    // SAFETY: points at the submitter's `AtomicU64`, alive until its wait returns.
    unsafe { &*(data as *const AtomicU64) }.fetch_add(250, Ordering::Relaxed);
}

/// A frame's worth of everything: a join, a scope, a raw batch on a counter, a channel
/// pipeline under a mutex and a wait group, a timed wait that times out, and a submission
/// from a plain thread of the simulation.
fn frame(workers: usize) -> u64 {
    let jobs = system(workers);
    let handle = jobs.handle();
    let outside = jobsys::sim::spawn("submitter", move || {
        let hits = AtomicU64::new(0);
        let decls: Vec<JobDecl> = (0..4)
            .map(|_| JobDecl::new(job_meta!("foreign"), bump, &hits as *const _ as *mut ()))
            .collect();
        let counter = Counter::new();
        // SAFETY: `hits`, `decls` and `counter` outlive the wait below.
        unsafe { handle.run_jobs(&decls, &counter) };
        handle.wait_for_counter(&counter, 0);
        hits.load(Ordering::Relaxed)
    })
    .expect("spawn");
    let inside = jobs.run(|ctx| {
        let (a, b) = ctx.join(|_| 1u64, |_| 2u64);
        let chan = Channel::new(2);
        let total = Mutex::new(0u64);
        let producers = WaitGroup::new();
        producers.add(2);
        let never = Event::new(EventKind::Manual);
        ctx.scope(|sc| {
            for half in 0..2u64 {
                let (chan, producers) = (&chan, &producers);
                sc.spawn(move |sc| {
                    for i in (half..10).step_by(2) {
                        chan.send(sc, i).expect("open");
                    }
                    producers.done();
                });
            }
            for _ in 0..10 {
                let v = chan.recv(sc).expect("open");
                *total.lock(sc) += v;
            }
            producers.wait(sc);
            assert!(!never.wait_timeout(sc, Duration::from_millis(5)));
        });
        a + b + total.into_inner()
    });
    drop(jobs);
    inside + outside.join().expect("submitter")
}

#[test]
fn a_frame_gives_its_result_under_every_seed() {
    for seed in seeds() {
        let workers = 1 + (seed % 4) as usize;
        let run = sim(seed, move || frame(workers));
        assert_eq!(run.value, 1 + 2 + 45 + 1000, "seed {seed}");
        // The timed wait that nobody ends took 5 ms of virtual time.
        assert!(run.elapsed >= Duration::from_millis(5), "seed {seed}");
    }
}

#[test]
fn a_seed_replays_step_for_step_and_seeds_differ() {
    let mut schedules = std::collections::HashSet::new();
    for seed in seeds().into_iter().take(8) {
        let a = sim(seed, || frame(3));
        let b = sim(seed, || frame(3));
        assert_eq!(
            (a.steps, a.switches, a.schedule, a.elapsed),
            (b.steps, b.switches, b.schedule, b.elapsed),
            "seed {seed} did not replay exactly"
        );
        schedules.insert(a.schedule);
    }
    if seeds().len() > 1 {
        assert!(
            schedules.len() > 1,
            "every seed gave the same interleaving: the scheduler is not exploring"
        );
    }
}

#[test]
fn random_dags_produce_their_reference_sums_under_simulation() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<dag::StressPanic>().is_none() {
            default_hook(info);
        }
    }));
    for seed in seeds() {
        let workers = 1 + (seed % 4) as usize;
        let root = dag::mix(seed, 0x51A);
        let expected = dag::reference(root, 0);
        let run = sim(seed, move || {
            let jobs = system(workers);
            jobs.run(|ctx| dag::run(ctx, root, 0))
        });
        assert_eq!(run.value, expected, "seed {seed}, {workers} workers");
    }
}

#[test]
fn migration_mode_survives_forced_migrations() {
    for seed in seeds() {
        let run = sim(seed, || {
            // SAFETY: the jobs below hold nothing thread-bound across their waits.
            let jobs = unsafe {
                JobSystem::builder()
                    .workers(3)
                    .small_fibers(16, 64 * 1024)
                    .large_fibers(0, 64 * 1024)
                    .allow_migration()
            }
            .build()
            .expect("build");
            jobs.run(|ctx| {
                let wg = WaitGroup::new();
                wg.add(4);
                let sum = AtomicU64::new(0);
                ctx.scope(|sc| {
                    for i in 0..4u64 {
                        let (wg, sum) = (&wg, &sum);
                        sc.spawn(move |sc| {
                            let (a, b) = sc.join(|_| i, |_| 10 * i);
                            sum.fetch_add(a + b, Ordering::Relaxed);
                            wg.done();
                            wg.wait(sc);
                        });
                    }
                });
                sum.into_inner()
            })
        });
        assert_eq!(run.value, 11 * 6, "seed {seed}");
    }
}

/// Every report names the seed and how to replay it.
fn expect_deadlock(failure: Failure) -> String {
    let text = failure.to_string();
    assert!(text.contains("replay"), "{text}");
    match failure {
        Failure::Deadlock { report, .. } => report,
        other => panic!("expected a deadlock, got: {other}"),
    }
}

#[test]
fn a_fiber_waiting_on_an_event_nobody_sets_is_reported_with_the_wait_graph() {
    let failure = Sim::new(3)
        .run(|| {
            let jobs = system(2);
            let never = Box::leak(Box::new(Event::new(EventKind::Manual)));
            let addr = never as *const Event as usize;
            jobs.run(|ctx| never.wait(ctx));
            addr
        })
        .expect_err("nothing sets the event");
    let report = expect_deadlock(failure);
    // The waiting fiber, where it waits, and what the workers do.
    assert!(
        report.contains("parked on a jobsys::sync primitive at"),
        "{report}"
    );
    assert!(report.contains("worker 1 asleep: no work"), "{report}");
    assert!(report.contains("1 fibers parked"), "{report}");
}

fn wait_on_own_counter(ctx: &Ctx, data: *mut ()) {
    // SAFETY: a leaked `Counter`.
    let counter = unsafe { &*(data as *const Counter) };
    // It counts this job itself: it can never reach zero while the job waits.
    ctx.wait_for_counter(counter, 0);
}

#[test]
fn a_thread_waiting_on_a_counter_nobody_ends_is_reported_with_its_count() {
    let failure = Sim::new(5)
        .run(|| {
            let jobs = system(2);
            // A job that waits on a counter nobody ends (its own), and a plain thread waiting
            // for that job.
            let counter: &'static Counter = Box::leak(Box::new(Counter::new()));
            let decl = [JobDecl::new(
                job_meta!("stuck"),
                wait_on_own_counter,
                counter as *const Counter as *mut (),
            )];
            // SAFETY: everything is leaked, so alive for good.
            unsafe { jobs.handle().run_jobs(&decl, counter) };
            jobs.handle().wait_for_counter(counter, 0);
        })
        .expect_err("the counter never reaches zero");
    let report = expect_deadlock(failure);
    assert!(
        report.contains("a plain thread waits on counter") && report.contains("for <= 0 (now 1)"),
        "{report}"
    );
    assert!(report.contains("waits on counter"), "{report}");
}

#[test]
fn timeouts_pass_in_virtual_time() {
    let run = sim(11, || {
        let jobs = system(2);
        let e = Event::new(EventKind::Manual);
        jobs.run(|ctx| !e.wait_timeout(ctx, Duration::from_secs(3600)))
    });
    // An hour of virtual time passed (the test would not end if it were real time).
    assert!(run.value, "the wait timed out");
    assert!(run.elapsed >= Duration::from_secs(3600));
}

fn lock_it(_: &Ctx, data: *mut ()) {
    // SAFETY: a leaked `SpinLock<u32>`.
    let spin = unsafe { &*(data as *const jobsys::sync::SpinLock<u32>) };
    *spin.lock() += 1;
}

#[test]
fn a_spin_that_never_ends_is_reported_as_a_livelock() {
    let failure = Sim::new(9)
        .max_steps(200_000)
        .run(|| {
            let jobs = system(2);
            let spin: &'static jobsys::sync::SpinLock<u32> =
                Box::leak(Box::new(jobsys::sync::SpinLock::new(0)));
            let counter: &'static Counter = Box::leak(Box::new(Counter::new()));
            // This thread holds the lock while it waits for a job that takes it.
            let held = spin.lock();
            let decl = [JobDecl::new(
                job_meta!("spinner"),
                lock_it,
                spin as *const _ as *mut (),
            )];
            // SAFETY: `decl` lives on this stack, which never returns (the run ends first).
            unsafe { jobs.handle().run_jobs(&decl, counter) };
            jobs.handle().wait_for_counter(counter, 0);
            drop(held);
        })
        .expect_err("the job spins for good");
    match failure {
        Failure::Livelock { steps, report, .. } => {
            assert!(steps > 200_000);
            assert!(
                report.contains("(jobsys-worker-1): runnable")
                    && report.contains("a plain thread waits on counter"),
                "{report}"
            );
        }
        other => panic!("expected a livelock, got: {other}"),
    }
}

/// Rounds of `run` per seed in the preemption test: each is a wake of the `run` closure's
/// fiber by worker 1.
const WAKE_ROUNDS: u64 = 20;
/// How often a step preempts its thread in the preemption test (see `Sim::preempt_one_in`).
const PREEMPT_ONE_IN: u64 = 4;

/// A waker descheduled between its wake and its last touch of the system must not leave
/// worker 0 asleep with `run`'s work done: the `run` closure waits for a job pinned to worker
/// 1, whose completion wakes the closure's fiber; with preemption the waker may lose its core
/// anywhere in that wake while worker 0 resumes the fiber, finishes and looks at whether `run`
/// is done. There is no watchdog under simulation, so a lost wake-up ends the run as a
/// deadlock (every thread blocked), and a drop that sees the fiber still counted as parked
/// after it ran reports a false deadlock. Every seed must finish.
#[test]
fn a_preempted_waker_loses_no_wake_up() {
    let mut failed = Vec::new();
    let mut preemptions = 0;
    let seeds = seeds();
    for &seed in &seeds {
        let result = Sim::new(seed).preempt_one_in(PREEMPT_ONE_IN).run(|| {
            let jobs = system(2);
            let hits = AtomicU64::new(0);
            for _ in 0..WAKE_ROUNDS {
                jobs.run(|ctx| {
                    ctx.scope(|sc| {
                        let hits = &hits;
                        sc.spawn_with(
                            job_meta!("on worker 1", affinity(Affinity::Worker(1))),
                            move |_| {
                                hits.fetch_add(1, Ordering::Relaxed);
                            },
                        );
                    });
                });
            }
            drop(jobs);
            hits.into_inner()
        });
        match result {
            Ok(run) => {
                assert_eq!(run.value, WAKE_ROUNDS, "seed {seed}");
                preemptions += run.preemptions;
            }
            Err(failure) => failed.push(failure),
        }
    }
    assert!(
        seeds.len() < 4 || preemptions > 0,
        "no thread was ever preempted: the test explores nothing"
    );
    if let Some(first) = failed.first() {
        panic!(
            "{} of {} seeds failed (seeds {:?}); the first:\n{first}",
            failed.len(),
            seeds.len(),
            failed.iter().map(Failure::seed).collect::<Vec<_>>()
        );
    }
}
