//! The Tracy back-end runs jobs without a profiler connected (on-demand mode: nothing is
//! kept) and without disturbing them. Only built with `--features tracy`.
#![cfg(feature = "tracy-backend")]

use jobsys::{Affinity, JobSystem, job_meta};
use jobsys_profiling::Tracy;

static TRACY: Tracy = Tracy::new();

fn fib(ctx: &jobsys::Ctx, n: u32) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    let (a, b) = ctx.join(|c| fib(c, n - 1), |c| fib(c, n - 2));
    a + b
}

#[test]
fn jobs_run_under_tracy_hooks() {
    assert!(
        TRACY.install(),
        "hooks were already installed in this process"
    );
    let jobs = JobSystem::builder().workers(2).build().expect("job system");
    let mut data = vec![1u32; 4096];
    let f = jobs.run(|ctx| {
        ctx.scope(|s| {
            for chunk in data.chunks_mut(256) {
                s.spawn_with(job_meta!("double"), move |_| {
                    chunk.iter_mut().for_each(|x| *x *= 2)
                });
            }
            // Pinned to this worker: the scope's wait parks, so zones are split and reopened.
            s.spawn_with(job_meta!("pinned", affinity(Affinity::Worker(0))), |_| {});
        });
        fib(ctx, 18)
    });
    drop(jobs);
    assert_eq!(f, 2584);
    assert!(data.iter().all(|&x| x == 2));
}
