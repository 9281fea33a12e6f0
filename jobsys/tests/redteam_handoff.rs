//! Red-team attacks on the same-thread hand-off, the lazily counted parks, the timer polls and
//! the inline-children pass: lost wake-ups and fibers that never resume while their worker is
//! kept busy by an endless stream of short jobs.

use jobsys::sync::{Event, EventKind};
use jobsys::{JobSystem, Scope};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// After the event that should end it, a chain runs at most this many more links; a fiber that
/// became ready (a due timer, a wake from a plain thread) must have run long before.
const LINKS_AFTER: u64 = 200_000;

/// A chain of scoped jobs, each spawning the next in the same scope (so a waiter on the scope
/// runs them one after another in its inline-children pass), until `stop` is raised or
/// `LINKS_AFTER` links ran after `started()` said the event that should raise it happened.
struct Chain<'a> {
    stop: &'a AtomicBool,
    /// Whether the event that must end the chain happened (a deadline passed, an event set).
    started: &'a (dyn Fn() -> bool + Sync),
    /// Links run after `started()` was first true.
    after: AtomicU64,
}

fn link<'scope>(s: &Scope<'scope, '_>, c: &'scope Chain<'scope>) {
    if c.stop.load(SeqCst) {
        return;
    }
    if (c.started)() && c.after.fetch_add(1, SeqCst) + 1 >= LINKS_AFTER {
        return;
    }
    s.spawn(move |s| link(s, c));
}

/// A sleeping fiber must wake at its deadline on one worker even while the only other fiber
/// runs an endless chain of its own children inline: the chain must see the sleeper's flag.
#[test]
fn a_sleep_fires_while_a_waiter_runs_an_endless_chain_of_children_inline() {
    for _ in 0..3 {
        let jobs = JobSystem::builder().workers(1).build().unwrap();
        let stop = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_millis(2);
        let started = move || Instant::now() >= deadline;
        let chain = Chain {
            stop: &stop,
            started: &started,
            after: AtomicU64::new(0),
        };
        jobs.run(|ctx| {
            ctx.join(
                |c| {
                    c.sleep_until(deadline);
                    stop.store(true, SeqCst);
                },
                |c| c.scope(|s| link(s, &chain)),
            );
        });
        let after = chain.after.load(SeqCst);
        assert!(
            after < LINKS_AFTER,
            "the sleeper never woke: the chain ran {after} links past its deadline"
        );
    }
}

/// The same with a fiber woken by a plain thread (an event set from outside the pool): the
/// woken fiber must resume while the other fiber's inline pass keeps finding children.
#[test]
fn a_fiber_woken_by_a_thread_resumes_while_a_waiter_runs_an_endless_chain_inline() {
    for _ in 0..3 {
        let jobs = JobSystem::builder().workers(1).build().unwrap();
        let stop = AtomicBool::new(false);
        let event = Event::new(EventKind::Manual);
        let set = AtomicBool::new(false);
        let started = || set.load(SeqCst);
        let chain = Chain {
            stop: &stop,
            started: &started,
            after: AtomicU64::new(0),
        };
        std::thread::scope(|t| {
            jobs.run(|ctx| {
                ctx.join(
                    |c| {
                        t.spawn(|| {
                            event.set();
                            set.store(true, SeqCst);
                        });
                        event.wait(c);
                        stop.store(true, SeqCst);
                    },
                    |c| c.scope(|s| link(s, &chain)),
                );
            });
        });
        let after = chain.after.load(SeqCst);
        assert!(
            after < LINKS_AFTER,
            "the woken fiber never resumed: the chain ran {after} links past the wake"
        );
    }
}

/// A tree of scopes and joins in each of many detached jobs, then the system is dropped at
/// once: the drain runs the jobs whose waits end in same-thread hand-offs (every wait of a
/// one-worker system) and returns only when every job ran; nothing is lost or run twice.
#[test]
fn dropping_a_system_drains_detached_trees_of_waits() {
    static RAN: AtomicU64 = AtomicU64::new(0);
    fn tree(ctx: &jobsys::Ctx, depth: u32) {
        RAN.fetch_add(1, SeqCst);
        if depth == 0 {
            return;
        }
        ctx.join(
            |c| tree(c, depth - 1),
            |c| c.scope(|s| drop(s.spawn(move |s| tree(s, depth - 1)))),
        );
    }
    // Nodes of a tree of `depth`: 1 + 2 * nodes(depth - 1).
    let nodes = |depth: u32| (1u64 << (depth + 1)) - 1;
    for workers in [1, 2, 4] {
        RAN.store(0, SeqCst);
        for _ in 0..5 {
            let jobs = JobSystem::builder().workers(workers).build().unwrap();
            let handle = jobs.handle();
            for _ in 0..20 {
                drop(handle.spawn_detached(|ctx| tree(ctx, 6)));
            }
            drop(jobs);
        }
        assert_eq!(RAN.load(SeqCst), 5 * 20 * nodes(6), "{workers} workers");
    }
}

/// Migration mode (no same-thread hand-off; parks still counted lazily on the worker they
/// parked on, and woken from `parked` wherever they resume): trees of waits on 2 and 4
/// workers complete, with no false deadlock report.
#[test]
fn migration_with_lazily_counted_parks_completes_trees_of_waits() {
    fn tree(ctx: &jobsys::Ctx, depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let (a, b) = ctx.join(
            |c| tree(c, depth - 1),
            |c| c.scope(|s| s.spawn(move |s| tree(s, depth - 1)).join(s)),
        );
        a + b + 1
    }
    for workers in [2, 4] {
        // SAFETY: the jobs below keep no thread-affine state across their waits.
        let jobs = unsafe {
            JobSystem::builder()
                .workers(workers)
                .small_fibers(16, 64 * 1024)
                .allow_migration()
        }
        .build()
        .unwrap();
        for _ in 0..20 {
            assert_eq!(jobs.run(|ctx| tree(ctx, 8)), (1 << 9) - 1);
        }
    }
}

/// Every fiber parked on one held counter but one, which is in a timed wait on it and releases
/// the hold when its wait times out: not a deadlock (the timed wait ends by itself), at 1, 2
/// and 4 workers, with the untimed parks counted lazily — the run must complete.
#[test]
fn every_fiber_parked_but_one_in_a_timed_wait_is_no_deadlock() {
    for workers in [1, 2, 4] {
        let fibers = 2 * workers;
        let jobs = JobSystem::builder()
            .workers(workers)
            .small_fibers(fibers, 64 * 1024)
            .large_fibers(0, 0)
            .build()
            .unwrap();
        let woke = AtomicU64::new(0);
        for _ in 0..3 {
            let held = jobsys::Counter::with_value(1);
            let (held, woke) = (&held, &woke);
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    // The body's fiber, `fibers - 2` waiters and the timed waiter fill the pool.
                    for _ in 0..fibers - 2 {
                        s.spawn(move |s| {
                            s.wait_for_counter(held, 0);
                            woke.fetch_add(1, SeqCst);
                        });
                    }
                    s.spawn(move |s| {
                        if !s.wait_for_counter_timeout(held, 0, Duration::from_millis(20)) {
                            held.sub(1);
                        }
                    });
                })
            });
        }
        assert_eq!(
            woke.load(SeqCst),
            3 * (fibers as u64 - 2),
            "{workers} workers"
        );
    }
}
