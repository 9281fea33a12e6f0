//! A/B of `jobsys::sync::Mutex` fairness under contention that really crosses workers: two
//! jobs on 2 workers (each spins until both run, so they sit on different workers) share
//! 200k lock+increment+unlock, with the default barging unlock and with `Fairness::Fifo`, and
//! `std::sync::Mutex` on two OS threads; 15 runs each, interleaved, median and range.
//! (`compare`'s contended-lock row lets the scheduler place both jobs, which on a busy 2-core
//! machine often means one worker and no contention.)
//!
//! `cargo run --release -p jobsys-benches --example mutex_fairness`

use jobsys::sync::{Fairness, Mutex};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// ns per lock+unlock of 2 jobs contending on one worker each.
fn run(jobs: &jobsys::JobSystem, fairness: Fairness, ops: usize) -> f64 {
    let m = Mutex::new(0usize).with_fairness(fairness);
    let started = AtomicUsize::new(0);
    let mut ns = 0.0;
    jobs.run(|ctx| {
        let t = Instant::now();
        ctx.scope(|s| {
            for _ in 0..2 {
                let (m, started) = (&m, &started);
                s.spawn(move |s| {
                    started.fetch_add(1, Ordering::SeqCst);
                    // Both running at once: on different workers.
                    while started.load(Ordering::SeqCst) < 2 {
                        std::hint::spin_loop();
                    }
                    for _ in 0..ops / 2 {
                        *m.lock(s) += 1;
                    }
                });
            }
        });
        ns = t.elapsed().as_nanos() as f64 / ops as f64;
    });
    assert_eq!(m.into_inner(), ops / 2 * 2);
    ns
}

/// ns per lock+unlock of 2 OS threads contending on a `std::sync::Mutex`.
fn std_run(ops: usize) -> f64 {
    let m = std::sync::Mutex::new(0usize);
    let started = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                started.fetch_add(1, Ordering::SeqCst);
                while started.load(Ordering::SeqCst) < 2 {
                    std::hint::spin_loop();
                }
                for _ in 0..ops / 2 {
                    *m.lock().unwrap() += 1;
                }
            });
        }
    });
    t.elapsed().as_nanos() as f64 / ops as f64
}

fn main() {
    let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    let ops = 200_000;
    let (mut b, mut f, mut s) = (vec![], vec![], vec![]);
    for _ in 0..15 {
        b.push(run(&jobs, Fairness::Barging, ops));
        f.push(run(&jobs, Fairness::Fifo, ops));
        s.push(std_run(ops));
    }
    for (name, mut v) in [("barging", b), ("fifo", f), ("std", s)] {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{name}: median {:.1} ns/op, range {:.1}-{:.1}",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1]
        );
    }
}
