//! Red-team attacks on cancellation with the tree-wide "anything cancelled" flag: a cancel in a
//! sibling subtree cancels nothing here, a cancel reaches scopes nested in jobs, a started job
//! runs to its end, and a cancel racing spawns leaves every handle either run or cancelled.

use jobsys::{Cancelled, JobSystem, Scope};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

/// A cancel in one subtree raises the root's flag, which sends every check in the tree down
/// the walk: the jobs of a sibling subtree must still run, at every depth.
#[test]
fn a_cancel_in_a_sibling_subtree_cancels_nothing_else() {
    for workers in [1, 2, 4] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let ran = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|root| {
                root.spawn(|s| s.scope(|a| a.cancel()));
                root.spawn(|s| {
                    s.scope(|b| {
                        for _ in 0..50 {
                            let h = b.spawn(|s| {
                                s.scope(|c| {
                                    let h = c.spawn(|_| ran.fetch_add(1, SeqCst));
                                    assert!(h.try_join(c).is_ok());
                                })
                            });
                            assert_eq!(h.try_join(b), Ok(()));
                        }
                    })
                });
            })
        });
        assert_eq!(ran.load(SeqCst), 50, "{workers} workers");
    }
}

/// A cancel of an outer scope reaches a scope opened later inside one of its jobs: that
/// scope's spawns never run, while the job that opened it (started) runs to its end.
#[test]
fn a_cancel_reaches_scopes_nested_in_started_jobs() {
    for workers in [1, 2, 4] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let ran = AtomicUsize::new(0);
        let ended = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|outer| {
                let started = outer.spawn(|s| {
                    s.cancel();
                    s.scope(|inner| {
                        assert!(inner.is_cancelled());
                        for _ in 0..10 {
                            let h = inner.spawn(|_| ran.fetch_add(1, SeqCst));
                            assert_eq!(h.try_join(inner), Err(Cancelled));
                        }
                    });
                    ended.fetch_add(1, SeqCst);
                });
                assert_eq!(started.try_join(outer), Ok(()));
            })
        });
        assert_eq!(ran.load(SeqCst), 0, "{workers} workers");
        assert_eq!(ended.load(SeqCst), 1, "{workers} workers");
    }
}

/// Spawned, ran and cancelled-before-start counts of a racing tree.
#[derive(Default)]
struct Tally {
    spawned: AtomicUsize,
    ran: AtomicUsize,
    cancelled: AtomicUsize,
}

fn spawn_tree<'s>(s: &Scope<'s, '_>, depth: u32, t: &'s Tally) {
    if depth == 0 {
        return;
    }
    let hs: Vec<_> = (0..3)
        .map(|_| {
            t.spawned.fetch_add(1, SeqCst);
            s.spawn(move |s| {
                t.ran.fetch_add(1, SeqCst);
                s.scope(|inner| spawn_tree(inner, depth - 1, t));
            })
        })
        .collect();
    for h in hs {
        if h.try_join(s) == Err(Cancelled) {
            t.cancelled.fetch_add(1, SeqCst);
        }
    }
}

/// A cancel racing a tree of spawns on other workers: every spawned job either ran or was
/// cancelled before it started (its handle says which); none is both, none is lost.
#[test]
fn a_cancel_racing_spawns_leaves_each_job_run_or_cancelled() {
    for workers in [2, 4] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        for round in 0..20 {
            let t = Tally::default();
            let t = &t;
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    s.spawn(move |s| s.scope(|inner| spawn_tree(inner, 4, t)));
                    // Cancel after a varying amount of the tree was spawned.
                    s.spawn(move |s| {
                        for _ in 0..round * 50 {
                            std::hint::spin_loop();
                        }
                        s.cancel();
                    });
                })
            });
            let (n, r, c) = (
                t.spawned.load(SeqCst),
                t.ran.load(SeqCst),
                t.cancelled.load(SeqCst),
            );
            assert_eq!(
                n,
                r + c,
                "{workers} workers: spawned {n}, ran {r}, cancelled {c}"
            );
            assert!(n <= 120);
        }
    }
}
