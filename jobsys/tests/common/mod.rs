//! Helpers shared by the integration tests.
#![allow(dead_code)]

use jobsys::JobSystem;

/// The worker counts every behavioural test runs at.
pub(crate) const WORKER_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// A system with `n` workers, no pinning (tests share 2 cores with other processes).
pub(crate) fn system(n: usize) -> JobSystem {
    JobSystem::builder().workers(n).build().expect("build")
}

/// Runs `f` once per worker count with a fresh system. With fault injection on, prints the
/// seed first, so a failing test's output says how to replay it.
pub(crate) fn each_worker_count(mut f: impl FnMut(&JobSystem, usize)) {
    #[cfg(feature = "fault-injection")]
    eprintln!(
        "fault injection: replay with JOBSYS_FAULT_SEED={}",
        jobsys::fault::seed()
    );
    for n in WORKER_COUNTS {
        let jobs = system(n);
        f(&jobs, n);
        assert_eq!(
            jobs.lost_wakeups(),
            0,
            "{n} workers: the sleep watchdog caught a lost wake-up (a jobsys bug)"
        );
    }
}
