//! Jobs queued while no fiber of their class is free: workers sleep instead of spinning on them,
//! the release of such a fiber wakes the sleepers (no lost wake-up), and a class run dry for
//! good is reported. Each test forces its schedule as its comment says.

mod common;

use jobsys::{Affinity, Counter, Ctx, JobDecl, JobMeta, JobSystem, StackClass};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The only large fiber's holder: pinned to worker 0, so worker 1 never runs it.
static HOLDER: JobMeta = JobMeta::new("holder", file!(), line!())
    .stack(StackClass::Large)
    .affinity(Affinity::Worker(0));
/// A `Large` job submitted from outside while the holder has the only large fiber.
static LATE_LARGE: JobMeta = JobMeta::new("late-large", file!(), line!()).stack(StackClass::Large);

static LATE_RAN: AtomicUsize = AtomicUsize::new(0);

fn late_large(_: &Ctx, _: *mut ()) {
    LATE_RAN.fetch_add(1, Ordering::SeqCst);
}

/// A sleeping worker counts a queued `Large` job as work only while a large fiber is free; when
/// it sleeps without one it marks the class wanted, and the release of a large fiber wakes it.
/// Worker 0 leaving `run` frees the large fiber and then stops looking (its `done()` looks at
/// worker 0 alone), while the job sits on worker 1's ring and worker 1 sleeps: without that
/// wake, only the 20 ms sleep watchdog would find the job, counted as a lost wake-up.
///
/// Schedule: 2 workers, 1 large fiber. The root opens a scope with a `Large` job pinned to
/// worker 0 (it takes the large fiber). That job submits another `Large` job through a
/// `Handle` (the injector); worker 1 is woken, moves it to its own ring, cannot start it (no
/// large fiber free) and goes back to sleep. The holder then returns: the root becomes ready,
/// so the holder's fiber goes idle (released) without looking for jobs, worker 0 resumes the
/// root, the root returns, and `run` returns with the large job still queued on worker 1.
#[test]
fn a_large_fiber_freed_as_run_returns_strands_a_queued_large_job() {
    const ROUNDS: usize = 3;
    let mut rescues = 0;
    for _ in 0..ROUNDS {
        let jobs = JobSystem::builder()
            .workers(2)
            .large_fibers(1, 256 * 1024)
            .build()
            .unwrap();
        let handle = jobs.handle();
        let counter = Counter::new();
        let decls = [JobDecl::new(
            &LATE_LARGE,
            late_large as fn(&Ctx, *mut ()),
            core::ptr::null_mut(),
        )];
        let before = LATE_RAN.load(Ordering::SeqCst);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_with(&HOLDER, |_| {
                    // SAFETY: `decls` and `counter` live in the test's frame until
                    // `handle.wait_for_counter(&counter, 0)` below returns, after the job ran.
                    unsafe { handle.run_jobs(&decls, &counter) };
                    // Worker 1 takes the job, cannot start it and sleeps again. (Hang guard,
                    // not a timing assertion.)
                    let guard = Instant::now();
                    while handle.sleeping_workers() != 1 {
                        assert!(
                            guard.elapsed() < Duration::from_secs(60),
                            "worker 1 never went to sleep"
                        );
                        std::thread::yield_now();
                    }
                    for _ in 0..100 {
                        std::thread::yield_now();
                    }
                });
            });
        });
        // The large fiber is free again and the job is queued: it runs, but who woke worker 1?
        handle.wait_for_counter(&counter, 0);
        assert_eq!(LATE_RAN.load(Ordering::SeqCst), before + 1);
        rescues += jobs.lost_wakeups();
    }
    assert_eq!(
        rescues, 0,
        "the sleep watchdog rescued a worker that nobody woke for a queued Large job \
         ({rescues} of {ROUNDS} rounds)"
    );
}

/// A level of a chain of `Large` jobs pinned to worker 0.
static PINNED_LARGE: JobMeta = JobMeta::new("pinned-large-level", file!(), line!())
    .stack(StackClass::Large)
    .affinity(Affinity::Worker(0));

/// The same stall as `deep_waits::a_large_chain_deeper_than_the_large_fibers_is_reported_not_hung`,
/// with the chain's jobs pinned to worker 0: a pinned job, too, counts as work only while a fiber
/// of its class is free, so worker 0 sleeps and the stall report (which needs every worker
/// asleep) comes; were pinned jobs counted whatever their class, worker 0 would spin forever
/// without a word. Child process; the child's hang guard ends it after 300 s.
#[test]
fn a_pinned_large_chain_deeper_than_the_large_fibers_is_reported_not_hung() {
    if std::env::var_os("JOBSYS_PINNED_LARGE_CHAIN").is_some() {
        common::hang_guard(300, "no stall report");
        let jobs = common::two_large_fibers();
        jobs.run(|ctx| common::chain(ctx, &PINNED_LARGE, 5));
        println!("unreachable: the chain completed");
        return;
    }
    let report = common::child_stderr(
        "a_pinned_large_chain_deeper_than_the_large_fibers_is_reported_not_hung",
        "JOBSYS_PINNED_LARGE_CHAIN",
        "so that more levels run inline",
    );
    assert!(
        report.contains("jobsys: stall: no progress for")
            && report.contains("Large jobs are queued, but no fiber that can run them is free")
            && report.matches("in job 'pinned-large-level'").count() == 2,
        "no stall report:\n{report}"
    );
}
