//! Per-worker statistics (`WorkerStats`): what each total counts, built so that each event
//! happens (or does not) by construction, never by timing.

mod common;

use common::each_worker_count;
use jobsys::sync::{Event, EventKind};
use jobsys::{Builder, Counter, Ctx, JobDecl, JobSystem, WorkerStats, job_meta};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Every worker's totals, summed.
fn total(jobs: &JobSystem) -> WorkerStats {
    (0..jobs.worker_count())
        .map(|w| jobs.worker_stats(w))
        .fold(WorkerStats::default(), |a, s| WorkerStats {
            jobs_run: a.jobs_run + s.jobs_run,
            parked_waits: a.parked_waits + s.parked_waits,
            steals: a.steals + s.steals,
            overflowed: a.overflowed + s.overflowed,
            idle_ns: a.idle_ns + s.idle_ns,
            asleep_ns: a.asleep_ns + s.asleep_ns,
        })
}

fn bump(_: &Ctx, data: *mut ()) {
    // SAFETY: every declaration points at the test's live `AtomicU64`.
    unsafe { &*(data as *const AtomicU64) }.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn jobs_run_sums_to_the_jobs_run_across_workers() {
    const BATCH: usize = 1_000;
    const SPAWNS: usize = 300;
    let ran = AtomicU64::new(0);
    let decls: Vec<JobDecl> = (0..BATCH)
        .map(|_| JobDecl::new(job_meta!("bump"), bump, &ran as *const AtomicU64 as *mut ()))
        .collect();
    each_worker_count(|jobs, n| {
        ran.store(0, Ordering::Relaxed);
        let before = total(jobs);
        jobs.run(|ctx| {
            let counter = Counter::new();
            // SAFETY: `decls`, `ran` and `counter` outlive the wait below.
            unsafe { ctx.run_jobs(&decls, &counter) };
            ctx.wait_for_counter(&counter, 0);
            ctx.scope(|s| {
                for _ in 0..SPAWNS {
                    s.spawn(|_| {
                        ran.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
            // One job: the second closure (the first is part of this job).
            ctx.join(|_| (), |_| ran.fetch_add(1, Ordering::Relaxed));
        });
        let ran = ran.load(Ordering::Relaxed);
        assert_eq!(ran, (BATCH + SPAWNS + 1) as u64, "{n} workers");
        let d = total(jobs) - before;
        // Plus the root job of `run`.
        assert_eq!(
            d.jobs_run,
            ran + 1,
            "{n} workers: jobs_run summed over workers"
        );
        // Every job finished, but a worker other than the caller may still be handing back the
        // fiber of the job it finished last (released after its switch back, which `run` does
        // not wait for): at most one fiber per other worker.
        assert!(
            jobs.fibers_in_use() < n,
            "{n} workers: {} fibers left out after run",
            jobs.fibers_in_use()
        );
    });
}

/// Whether a wait that is over at once counts: it must not.
fn waits_over_at_once(ctx: &Ctx) {
    let parked = ctx.worker_stats(ctx.worker_index()).parked_waits;
    ctx.wait_for_counter(&Counter::new(), 0);
    let set = Event::new(EventKind::Manual);
    set.set();
    set.wait(ctx);
    assert_eq!(
        ctx.worker_stats(ctx.worker_index()).parked_waits,
        parked,
        "a wait that was over at once counted as parked"
    );
}

#[test]
fn a_worker_sitting_idle_for_a_foreign_event_counts_the_park_and_its_idle_and_sleep() {
    // One worker: the root job waits for an event that a foreign thread sets once the worker
    // is asleep, which it can only be once the root's fiber has parked (nothing else runs).
    let jobs = common::system(1);
    let before = jobs.worker_stats(0);
    let event = Event::new(EventKind::Manual);
    let handle = jobs.handle();
    std::thread::scope(|s| {
        s.spawn(|| {
            while handle.sleeping_workers() == 0 {
                std::thread::yield_now();
            }
            event.set();
        });
        jobs.run(|ctx| {
            waits_over_at_once(ctx);
            event.wait(ctx);
        });
    });
    let d = jobs.worker_stats(0) - before;
    assert_eq!(d.parked_waits, 1, "{d:?}");
    assert_eq!(d.jobs_run, 1, "{d:?}");
    assert!(
        d.idle_ns > 0,
        "no idle time counted before the sleep: {d:?}"
    );
    assert!(d.asleep_ns > 0, "no sleep counted: {d:?}");
    assert_eq!(d.steals, 0, "{d:?}");
    assert_eq!(jobs.handle().worker_stats(0), jobs.worker_stats(0));
}

#[test]
fn a_thief_counts_its_steal_and_a_wait_on_its_job_parks() {
    // Two workers. The root job (worker 0) queues a job on its own ring and stays busy until
    // that job has started: only worker 1 can have started it, by stealing it. Then the root
    // waits for it, which must park (the job is running elsewhere); the job finishes only
    // once worker 0 is asleep, which it can only be once the root's fiber has parked.
    let jobs = common::system(2);
    let before = [jobs.worker_stats(0), jobs.worker_stats(1)];
    let started = AtomicBool::new(false);
    fn thief_job(ctx: &Ctx, data: *mut ()) {
        // SAFETY: `data` points at the test's `started`, alive until the root's wait ends.
        unsafe { &*(data as *const AtomicBool) }.store(true, Ordering::Release);
        assert_eq!(ctx.worker_index(), 1, "the job ran on the thief");
        while ctx.sleeping_workers() == 0 {
            std::hint::spin_loop();
        }
    }
    let decl = [JobDecl::new(
        job_meta!("stolen"),
        thief_job,
        &started as *const AtomicBool as *mut (),
    )];
    jobs.run(|ctx| {
        waits_over_at_once(ctx);
        let counter = Counter::new();
        // SAFETY: `decl`, `started` and `counter` outlive the wait below.
        unsafe { ctx.run_jobs(&decl, &counter) };
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        ctx.wait_for_counter(&counter, 0);
    });
    let d = [
        jobs.worker_stats(0) - before[0],
        jobs.worker_stats(1) - before[1],
    ];
    assert!(d[1].steals >= 1, "the thief counted no steal: {d:?}");
    assert_eq!(d[0].steals, 0, "{d:?}");
    assert_eq!(d[0].parked_waits, 1, "the root's wait parked once: {d:?}");
    assert_eq!(d[1].parked_waits, 0, "{d:?}");
    assert_eq!((d[0].jobs_run, d[1].jobs_run), (1, 1), "{d:?}");
}

#[test]
fn totals_only_grow_and_subtract_saturating() {
    each_worker_count(|jobs, n| {
        let a = total(jobs);
        jobs.run(|ctx| ctx.join(|_| (), |_| ()));
        let b = total(jobs);
        assert!(b.jobs_run >= a.jobs_run + 2, "{n} workers: {a:?} -> {b:?}");
        assert!(b.idle_ns >= a.idle_ns && b.asleep_ns >= a.asleep_ns);
        assert_eq!(
            a - b,
            WorkerStats::default(),
            "earlier minus later saturates to zero"
        );
    });
}

#[test]
#[should_panic(expected = "worker_stats: worker 2 does not exist (the system has 2 workers")]
fn a_bad_worker_index_panics_with_a_clear_message() {
    let jobs = common::system(2);
    let _ = jobs.worker_stats(2);
}

/// One worker spawning more jobs than its ring's first capacity: the ring grows and nothing
/// overflows to the injector; with growth off (`queue_growth_limit` at the capacity) the same
/// scope overflows, and the worker counts it.
#[test]
fn a_full_ring_grows_instead_of_overflowing_unless_growth_is_off() {
    for growth_limit in [Builder::MAX_QUEUE_CAPACITY, 4] {
        let jobs = JobSystem::builder()
            .workers(1)
            .queue_capacity(4)
            .queue_growth_limit(growth_limit)
            .build()
            .unwrap();
        let ran = AtomicU64::new(0);
        let before = jobs.worker_stats(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..1000 {
                    s.spawn(|_| {
                        ran.fetch_add(1, Ordering::Relaxed);
                    });
                }
            })
        });
        let d = jobs.worker_stats(0) - before;
        assert_eq!(ran.load(Ordering::Relaxed), 1000);
        if growth_limit == 4 {
            // At least every push past the four slots while the scope spawned.
            assert!(d.overflowed >= 996, "growth off, yet few overflowed: {d:?}");
        } else {
            assert_eq!(
                d.overflowed, 0,
                "the ring overflowed instead of growing: {d:?}"
            );
        }
    }
}
