//! Randomized job DAGs: joins, scopes, raw batches with counter waits, channel pipelines under a
//! mutex and a wait group, and panicking children, nested up to six levels, across worker
//! counts. The shape of every DAG comes from a seed and the path to each node (never from the
//! execution order), so a sequential reference evaluation of the same seed gives the exact sum
//! every run must produce. Bounded: `STRESS_SEEDS` seeds (default 200) per worker count; a
//! failure names its seed (replay: `STRESS_SEED=<seed> cargo test -p jobsys-fiber --test stress`).

mod common;
#[path = "common/dag.rs"]
mod dag;

use common::WORKER_COUNTS;
use dag::{StressPanic, mix, nodes, reference, run};
use jobsys::JobSystem;

fn seeds() -> Vec<u64> {
    dag::seeds("STRESS_SEED", "STRESS_SEEDS", 200)
}

#[test]
fn random_dags_produce_their_reference_sums() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<StressPanic>().is_none() {
            default_hook(info);
        }
    }));
    for n in WORKER_COUNTS {
        let jobs = JobSystem::builder().workers(n).build().expect("build");
        for seed in seeds() {
            let root = mix(seed, 0xDA6);
            let expected = reference(root, 0);
            let got = jobs.run(|ctx| run(ctx, root, 0));
            if std::env::var("STRESS_VERBOSE").is_ok() {
                eprintln!("seed {seed}: {} nodes, sum {expected}", nodes(root, 0));
            }
            assert_eq!(
                got, expected,
                "{n} workers, seed {seed}: replay with STRESS_SEED={seed} cargo test -p jobsys-fiber --test stress"
            );
        }
        assert_eq!(jobs.lost_wakeups(), 0, "{n} workers");
    }
}
