//! Lazy and eager deferred values (`jobsys::promise`), their combinators, and cancellation of
//! scopes and lazy values. Every behavioural test runs at 1, 2 and 4 workers.

mod common;

use common::system;
use jobsys::promise::{Deferred, all, both, first, join_all, lazy, ready};
use jobsys::{CancelToken, Cancelled, Ctx, JobSystem};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const WORKERS: [usize; 3] = [1, 2, 4];

fn each(mut f: impl FnMut(&JobSystem, usize)) {
    for n in WORKERS {
        let jobs = system(n);
        f(&jobs, n);
        assert_eq!(jobs.lost_wakeups(), 0, "{n} workers: lost wake-up");
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|m| m.to_string()))
        .unwrap_or_default()
}

/// Counts what happens to one job's closure: started (ran), or dropped without running; and
/// how many times it was dropped at all.
#[derive(Default)]
struct Tally {
    spawned: AtomicUsize,
    started: AtomicUsize,
    unrun: AtomicUsize,
    drops: AtomicUsize,
}

/// Captured by a job's closure: its drop tells whether the closure ran.
struct Probe<'a> {
    tally: &'a Tally,
    ran: bool,
}

impl<'a> Probe<'a> {
    fn new(tally: &'a Tally) -> Self {
        tally.spawned.fetch_add(1, Ordering::Relaxed);
        Self { tally, ran: false }
    }
    fn start(&mut self) {
        self.ran = true;
        self.tally.started.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.tally.drops.fetch_add(1, Ordering::Relaxed);
        if !self.ran {
            self.tally.unrun.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A cancelled scope never drops a started job and never runs a cancelled one: each round
/// spawns 64 jobs, a job cancels the scope part-way (racing with the other workers), then
/// the body spawns 16 more, which must all be dropped unrun. Counted: started + dropped-unrun
/// == spawned, each closure dropped exactly once, `try_join` agrees with what happened.
#[test]
fn cancel_counts_add_up() {
    each(|jobs, n| {
        let mut cancelled_total = 0;
        for round in 0..300usize {
            let tally = Tally::default();
            let late = Tally::default();
            let (ok, err) = jobs.run(|ctx| {
                ctx.scope(|s| {
                    let mut handles = Vec::with_capacity(80);
                    for i in 0..64usize {
                        let mut probe = Probe::new(&tally);
                        let cancel_here = i == round % 64;
                        handles.push(s.spawn(move |s| {
                            probe.start();
                            if cancel_here {
                                s.cancel();
                            }
                            i
                        }));
                    }
                    // Wait for the cancel (the job that cancels may still be queued).
                    while !s.is_cancelled() {
                        s.yield_now();
                    }
                    for _ in 0..16 {
                        let mut probe = Probe::new(&late);
                        handles.push(s.spawn(move |_| {
                            probe.start();
                            usize::MAX
                        }));
                    }
                    let (mut ok, mut err) = (0, 0);
                    for h in handles {
                        match h.try_join(s) {
                            Ok(_) => ok += 1,
                            Err(Cancelled) => err += 1,
                        }
                    }
                    (ok, err)
                })
            });
            let started = tally.started.load(Ordering::Relaxed);
            let unrun = tally.unrun.load(Ordering::Relaxed);
            assert_eq!(started + unrun, 64, "{n} workers, round {round}");
            assert_eq!(
                tally.drops.load(Ordering::Relaxed),
                64,
                "dropped exactly once"
            );
            assert!(started >= 1, "the cancelling job ran");
            assert_eq!(
                late.started.load(Ordering::Relaxed),
                0,
                "{n} workers: ran after cancel"
            );
            assert_eq!(late.unrun.load(Ordering::Relaxed), 16);
            assert_eq!(late.drops.load(Ordering::Relaxed), 16);
            assert_eq!(
                (ok, err),
                (started, unrun + 16),
                "{n} workers, round {round}"
            );
            cancelled_total += unrun;
        }
        eprintln!("{n} workers: {cancelled_total} of 19200 racing jobs dropped unrun");
    });
}

/// Handles dropped unjoined and jobs with no handle: cancelled ones are dropped unrun and
/// silently (the scope does not report a cancellation as a panic); counts add up.
#[test]
fn cancel_with_dropped_handles_is_quiet() {
    each(|jobs, n| {
        for round in 0..100usize {
            let tally = Tally::default();
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    for i in 0..32usize {
                        let mut probe = Probe::new(&tally);
                        s.spawn(move |s| {
                            probe.start();
                            if i == round % 32 {
                                s.cancel();
                            }
                        });
                    }
                })
            });
            let started = tally.started.load(Ordering::Relaxed);
            let unrun = tally.unrun.load(Ordering::Relaxed);
            assert_eq!(started + unrun, 32, "{n} workers, round {round}");
            assert_eq!(tally.drops.load(Ordering::Relaxed), 32);
        }
    });
}

/// Cancelling a scope cancels the scopes nested in its jobs and body: their unstarted jobs
/// are dropped unrun, and running code sees `is_cancelled`.
#[test]
fn cancel_reaches_nested_scopes() {
    each(|jobs, n| {
        let inner = Tally::default();
        let saw = AtomicUsize::new(0);
        let gate = AtomicBool::new(false);
        let entered = AtomicBool::new(false);
        jobs.run(|ctx| {
            ctx.scope(|outer| {
                outer.spawn(|s| {
                    entered.store(true, Ordering::Release);
                    s.scope(|nested| {
                        // Wait until the outer scope is cancelled, then spawn: none may run.
                        while !gate.load(Ordering::Acquire) {
                            nested.yield_now();
                        }
                        assert!(nested.is_cancelled(), "nested scope sees the outer cancel");
                        if s.is_cancelled() {
                            saw.fetch_add(1, Ordering::Relaxed);
                        }
                        for _ in 0..8 {
                            let mut probe = Probe::new(&inner);
                            nested.spawn(move |_| probe.start());
                        }
                    });
                });
                // Cancel once the job runs (a job not started yet would be dropped unrun).
                while !entered.load(Ordering::Acquire) {
                    outer.yield_now();
                }
                outer.cancel();
                gate.store(true, Ordering::Release);
            });
        });
        assert_eq!(saw.load(Ordering::Relaxed), 1, "{n} workers");
        assert_eq!(inner.started.load(Ordering::Relaxed), 0, "{n} workers");
        assert_eq!(inner.unrun.load(Ordering::Relaxed), 8);
        // Outside any scope again.
        assert!(!jobs.run(|ctx| ctx.is_cancelled()));
    });
}

/// `join` of a cancelled job panics with a message naming `try_join`.
#[test]
fn join_of_cancelled_job_panics_clearly() {
    let jobs = system(1);
    let msg = jobs.run(|ctx| {
        ctx.scope(|s| {
            s.cancel();
            let h = s.spawn(|_| 1);
            panic_message(catch_unwind(AssertUnwindSafe(|| h.join(s))).unwrap_err())
        })
    });
    assert!(
        msg.contains("cancelled") && msg.contains("try_join"),
        "{msg}"
    );
}

/// A lazy value can be cancelled before it starts: through a token, and by spawning it
/// into a scope that gets cancelled. Its closure is dropped once, unrun.
#[test]
fn lazy_cancelled_before_start() {
    each(|jobs, n| {
        let tally = Tally::default();
        let token = CancelToken::new();
        let mut probe = Probe::new(&tally);
        let work = lazy(move |_: &Ctx| {
            probe.start();
            7
        })
        .cancellable(&token);
        token.cancel();
        assert_eq!(jobs.run(|ctx| work.get(ctx)), Err(Cancelled), "{n} workers");
        let mut probe = Probe::new(&tally);
        let r = jobs.run(|ctx| {
            ctx.scope(|s| {
                s.cancel();
                lazy(move |_: &Ctx| probe.start()).spawn(s).try_join(s)
            })
        });
        assert_eq!(r, Err(Cancelled));
        assert_eq!(tally.started.load(Ordering::Relaxed), 0);
        assert_eq!(tally.unrun.load(Ordering::Relaxed), 2);
        assert_eq!(tally.drops.load(Ordering::Relaxed), 2);
        // Not cancelled: it runs.
        let token = CancelToken::new();
        assert_eq!(
            jobs.run(|ctx| lazy(|_| 3).cancellable(&token).get(ctx)),
            Ok(3)
        );
    });
}

/// A lazy value runs nothing until it is got, and then once.
#[test]
fn lazy_runs_when_got() {
    each(|jobs, n| {
        let runs = AtomicUsize::new(0);
        let work = lazy(|_: &Ctx| runs.fetch_add(1, Ordering::Relaxed) + 10).map(|v| v * 2);
        assert_eq!(runs.load(Ordering::Relaxed), 0);
        assert_eq!(jobs.run(|ctx| work.get(ctx)), 20, "{n} workers");
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    });
}

/// A panic inside a lazy value reaches whoever gets it: directly, through a map, as a
/// spawned job, as a part of `all`, `both`, `join_all` and `first`, and detached.
#[test]
fn panic_in_lazy_reaches_the_getter() {
    each(|jobs, n| {
        let msgs: Vec<String> = jobs.run(|ctx| {
            let catch =
                |f: &dyn Fn()| panic_message(catch_unwind(AssertUnwindSafe(f)).unwrap_err());
            let boom = || lazy(|_: &Ctx| -> u32 { panic!("boom") });
            vec![
                catch(&|| {
                    boom().get(ctx);
                }),
                catch(&|| {
                    boom().map(|v| v + 1).get(ctx);
                }),
                catch(&|| {
                    ready(1).and_then(|_| boom()).get(ctx);
                }),
                catch(&|| {
                    ctx.scope(|s| boom().spawn(s).get(s));
                }),
                catch(&|| {
                    all([lazy(|_: &Ctx| 1).boxed(), boom().boxed(), ready(3).boxed()]).get(ctx);
                }),
                catch(&|| {
                    both(ready(1), boom()).get(ctx);
                }),
                catch(&|| {
                    join_all(
                        (0..5)
                            .map(|i| lazy(move |_: &Ctx| if i == 3 { panic!("boom") } else { i })),
                    )
                    .get(ctx);
                }),
                catch(&|| {
                    first([boom()]).get(ctx);
                }),
                catch(&|| {
                    boom().spawn_detached(ctx).get(ctx);
                }),
            ]
        });
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m, "boom", "{n} workers, case {i}");
        }
    });
}

/// Combinators give their parts' values in order, whatever order the parts finish in.
#[test]
fn combinators_results_and_order() {
    each(|jobs, n| {
        for round in 0..50u64 {
            let out = jobs.run(|ctx| {
                // Parts that yield a varying number of times finish in varying orders.
                let part = |i: u64| {
                    lazy(move |ctx: &Ctx| {
                        for _ in 0..(i * 7 + round) % 5 {
                            ctx.yield_now();
                        }
                        i * 10
                    })
                };
                let a: [u64; 8] = all(core::array::from_fn(|i| part(i as u64))).get(ctx);
                let v = join_all((0..20).map(part)).get(ctx);
                let (x, y) = both(part(1), part(2)).get(ctx);
                let chained = part(3)
                    .map(|v| v + 1)
                    .and_then(|v| lazy(move |_: &Ctx| v * 2))
                    .get(ctx);
                let eager = ctx.scope(|s| {
                    let h = part(4).spawn(s);
                    let d = part(5).spawn_detached(s);
                    (h.map(|v| v + 1).get(s), d.get(s))
                });
                (a, v, (x, y), chained, eager)
            });
            assert_eq!(
                out.0,
                core::array::from_fn(|i| i as u64 * 10),
                "{n} workers"
            );
            assert_eq!(out.1, (0..20).map(|i| i * 10).collect::<Vec<_>>());
            assert_eq!(out.2, (10, 20));
            assert_eq!(out.3, 62);
            assert_eq!(out.4, (41, 50));
        }
    });
}

/// `first` returns the part that finished first; the others are cancelled: unstarted ones
/// dropped unrun, running ones see `is_cancelled` and stop; all end before `get` returns.
#[test]
fn first_returns_the_winner_and_cancels_the_rest() {
    each(|jobs, n| {
        for _ in 0..50 {
            let tally = Tally::default();
            let ended = AtomicUsize::new(0);
            let v = jobs.run(|ctx| {
                let slow = |i: usize| {
                    let mut probe = Probe::new(&tally);
                    let ended = &ended;
                    lazy(move |ctx: &Ctx| {
                        probe.start();
                        // Only a cancel ends this part: it never wins.
                        while !ctx.is_cancelled() {
                            ctx.yield_now();
                        }
                        ended.fetch_add(1, Ordering::Relaxed);
                        i
                    })
                    .boxed()
                };
                let fast = lazy(|_: &Ctx| 99).boxed();
                first([slow(0), slow(1), fast, slow(2), slow(3)]).get(ctx)
            });
            assert_eq!(v, 99, "{n} workers");
            let started = tally.started.load(Ordering::Relaxed);
            assert_eq!(started + tally.unrun.load(Ordering::Relaxed), 4);
            assert_eq!(tally.drops.load(Ordering::Relaxed), 4);
            assert_eq!(
                ended.load(Ordering::Relaxed),
                started,
                "running losers ended first"
            );
        }
        // One part: it wins. No parts: a clear panic.
        assert_eq!(jobs.run(|ctx| first([ready(5)]).get(ctx)), 5);
        let msg = jobs.run(|ctx| {
            panic_message(
                catch_unwind(AssertUnwindSafe(|| {
                    first(Vec::<jobsys::promise::Ready<u8>>::new()).get(ctx)
                }))
                .unwrap_err(),
            )
        });
        assert!(msg.contains("no part finished"), "{msg}");
    });
}

/// The second half of a `Ctx::join` made in a cancelled scope sees the cancellation when it
/// runs on a fiber of its own (here it always does: the first half yields until it started).
#[test]
fn cancel_reaches_a_stolen_join_half() {
    each(|jobs, n| {
        let seen = jobs.run(|ctx| {
            ctx.scope(|s| {
                s.cancel();
                let started = AtomicBool::new(false);
                let ((), b) = s.join(
                    |c| {
                        while !started.load(Ordering::Acquire) {
                            c.yield_now();
                        }
                    },
                    |c| {
                        started.store(true, Ordering::Release);
                        c.is_cancelled()
                    },
                );
                b
            })
        });
        assert!(
            seen,
            "{n} workers: a stolen join half missed its scope's cancel"
        );
    });
}

/// A panicking part of `first` cancels the others (which would otherwise wait forever) and
/// its panic reaches the getter.
#[test]
fn first_with_a_panicking_part_ends_and_reraises() {
    each(|jobs, n| {
        let msg = jobs.run(|ctx| {
            let wait_for_cancel = lazy(|ctx: &Ctx| -> u32 {
                while !ctx.is_cancelled() {
                    ctx.yield_now();
                }
                0
            });
            let boom = lazy(|_: &Ctx| -> u32 { panic!("boom") });
            let r = catch_unwind(AssertUnwindSafe(|| {
                first([wait_for_cancel.boxed(), boom.boxed()]).get(ctx)
            }));
            panic_message(r.unwrap_err())
        });
        assert_eq!(msg, "boom", "{n} workers");
    });
}
