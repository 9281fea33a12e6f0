//! Priorities and submit hints: order on one worker (where order is observable), the
//! anti-starvation bounds, and each hint's placement.

mod common;

use common::{each_worker_count, system};
use jobsys::{Counter, Ctx, GLOBAL_PICK_PERIOD, Hint, JobDecl, Priority, StackClass, job_meta};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Picks made before a marked job started, counted by the jobs that ran before it.
struct Race {
    ran: AtomicUsize,
    marked_at: AtomicUsize,
}

impl Race {
    fn new() -> Self {
        Self {
            ran: AtomicUsize::new(0),
            marked_at: AtomicUsize::new(usize::MAX),
        }
    }
    fn tick(&self) {
        self.ran.fetch_add(1, Ordering::Relaxed);
    }
    fn mark(&self) {
        self.marked_at
            .store(self.ran.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    /// The marked job started before `GLOBAL_PICK_PERIOD` of the counted (`others`) jobs.
    fn assert_marked_within_the_global_pick_period(&self, what: &str, others: &str) {
        let at = self.marked_at.load(Ordering::Relaxed);
        assert!(
            at < GLOBAL_PICK_PERIOD as usize,
            "{what} started after {at} {others} jobs; the bound is {}",
            GLOBAL_PICK_PERIOD - 1
        );
    }
}

fn mark_entry(_: &Ctx, data: *mut ()) {
    // SAFETY: the tests point `data` at a `Race` that outlives the wait for this job.
    unsafe { &*data.cast_const().cast::<Race>() }.mark();
}

#[test]
fn a_high_job_from_outside_starts_within_the_global_pick_period() {
    let jobs = system(1);
    let race = Race::new();
    jobs.run(|ctx| {
        let urgent = Counter::new();
        let decl = [JobDecl::new(
            job_meta!("urgent", priority(Priority::High)),
            mark_entry,
            (&race as *const Race).cast_mut().cast(),
        )];
        // SAFETY: `decl`, `race` and `urgent` outlive the wait below.
        unsafe { ctx.handle().run_jobs(&decl, &urgent) };
        // A long run of local Normal work that the waiting body would otherwise run inline.
        ctx.scope(|s| {
            for _ in 0..2_000 {
                s.spawn(|_| race.tick());
            }
        });
        ctx.wait_for_counter(&urgent, 0);
    });
    race.assert_marked_within_the_global_pick_period("the High job", "local");
}

#[test]
fn low_work_is_not_starved_by_a_stream_of_normal_work() {
    let jobs = system(1);
    let race = Race::new();
    jobs.run(|ctx| {
        ctx.scope(|s| {
            s.spawn_with(job_meta!("background", priority(Priority::Low)), |_| {
                race.mark()
            });
            for _ in 0..2_000 {
                s.spawn(|_| race.tick());
            }
        });
    });
    race.assert_marked_within_the_global_pick_period("the Low job", "Normal");
}

#[test]
fn high_jobs_run_before_the_rest_on_one_worker() {
    for hint in [Hint::Lifo, Hint::Fifo] {
        let jobs = system(1);
        let order = Mutex::new(Vec::new());
        jobs.run(|ctx| {
            ctx.scope(|s| {
                let log = |p: Priority| {
                    let order = &order;
                    move |_: &jobsys::Scope<'_, '_>| order.lock().unwrap().push(p)
                };
                s.spawn_hinted(
                    hint,
                    job_meta!("low", priority(Priority::Low)),
                    log(Priority::Low),
                );
                s.spawn_hinted(hint, job_meta!("normal"), log(Priority::Normal));
                s.spawn_hinted(
                    hint,
                    job_meta!("high", priority(Priority::High)),
                    log(Priority::High),
                );
                s.spawn_hinted(hint, job_meta!("normal"), log(Priority::Normal));
                s.spawn_hinted(
                    hint,
                    job_meta!("high", priority(Priority::High)),
                    log(Priority::High),
                );
            });
        });
        let order = order.into_inner().unwrap();
        assert_eq!(order.len(), 5, "{hint:?}");
        assert_eq!(
            order[..2],
            [Priority::High, Priority::High],
            "{hint:?}: {order:?}"
        );
    }
}

#[test]
fn fifo_runs_in_submission_order_and_lifo_newest_first_on_one_worker() {
    for (hint, expected) in [(Hint::Fifo, [0, 1, 2, 3]), (Hint::Lifo, [3, 2, 1, 0])] {
        let jobs = system(1);
        let order = Mutex::new(Vec::new());
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for i in 0..4 {
                    let order = &order;
                    s.spawn_hinted(hint, job_meta!("ordered"), move |_| {
                        order.lock().unwrap().push(i)
                    });
                }
            });
        });
        assert_eq!(order.into_inner().unwrap(), expected, "{hint:?}");
    }
}

#[test]
fn inline_runs_on_the_submitting_fiber_before_the_submit_returns() {
    each_worker_count(|jobs, n| {
        jobs.run(|ctx| {
            let here = std::thread::current().id();
            let worker = ctx.worker_index();
            let ran = AtomicBool::new(false);
            ctx.scope(|s| {
                s.spawn_hinted(Hint::Inline, job_meta!("inline"), |s| {
                    assert_eq!(std::thread::current().id(), here);
                    assert_eq!(s.worker_index(), worker);
                    ran.store(true, Ordering::Relaxed);
                });
                assert!(ran.load(Ordering::Relaxed), "{n} workers");
            });
        });
    });
}

/// What the inline-batch test's entries share.
struct Batch {
    ran: AtomicUsize,
    first_on: AtomicUsize,
}

fn batch_entry(_: &Ctx, data: *mut ()) {
    // SAFETY: the test points `data` at a `Batch` that outlives the wait for the batch.
    unsafe { &*data.cast_const().cast::<Batch>() }
        .ran
        .fetch_add(1, Ordering::Relaxed);
}

fn batch_first_entry(ctx: &Ctx, data: *mut ()) {
    // SAFETY: as in `batch_entry`.
    let batch = unsafe { &*data.cast_const().cast::<Batch>() };
    batch.first_on.store(ctx.worker_index(), Ordering::Relaxed);
    batch.ran.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn inline_batches_start_here_and_still_count_every_job() {
    each_worker_count(|jobs, n| {
        jobs.run(|ctx| {
            let batch = Batch {
                ran: AtomicUsize::new(0),
                first_on: AtomicUsize::new(usize::MAX),
            };
            let data = (&batch as *const Batch).cast_mut().cast();
            let decls: Vec<JobDecl> = (0..1_000)
                .map(|i| {
                    let entry = if i == 0 {
                        batch_first_entry
                    } else {
                        batch_entry
                    };
                    JobDecl::new(job_meta!("batch"), entry, data)
                })
                .collect();
            let counter = Counter::new();
            // SAFETY: `decls`, `batch` and `counter` outlive the wait below.
            unsafe { ctx.run_jobs_hinted(&decls, &counter, Hint::Inline) };
            assert_eq!(
                batch.first_on.load(Ordering::Relaxed),
                ctx.worker_index(),
                "{n} workers: the first declaration did not run here before the submit returned"
            );
            ctx.wait_for_counter(&counter, 0);
            assert_eq!(batch.ran.load(Ordering::Relaxed), 1_000);
        });
    });
}

#[test]
fn inline_that_cannot_run_here_is_queued_instead() {
    each_worker_count(|jobs, n| {
        jobs.run(|ctx| {
            let ran = AtomicUsize::new(0);
            ctx.scope(|s| {
                // The run closure is on a small fiber: a Large job cannot run inline on it.
                s.spawn_hinted(
                    Hint::Inline,
                    job_meta!("deep", stack(StackClass::Large)),
                    |_| {
                        ran.fetch_add(1, Ordering::Relaxed);
                    },
                );
                // Pinned to another worker: never inline here.
                if n > 1 {
                    s.spawn_hinted(
                        Hint::Inline,
                        job_meta!("elsewhere", affinity(jobsys::Affinity::Worker(1))),
                        |s| {
                            assert_eq!(s.worker_index(), 1);
                            ran.fetch_add(1, Ordering::Relaxed);
                        },
                    );
                }
            });
            assert_eq!(ran.load(Ordering::Relaxed), if n > 1 { 2 } else { 1 });
        });
    });
}

#[test]
fn a_panic_in_an_inline_job_reaches_its_scope() {
    let jobs = system(2);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_hinted(Hint::Inline, job_meta!("boom"), |_| panic!("inline boom"));
            })
        })
    }));
    let payload = caught.expect_err("the scope re-raises the inline job's panic");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inline boom"));
    // The system stays usable.
    assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
}

/// What the batched-decrement test's jobs share.
struct Debt {
    first: Counter,
    seen_by_second: AtomicUsize,
}

fn nop_entry(_: &Ctx, _: *mut ()) {}

fn check_first_entry(_: &Ctx, data: *mut ()) {
    // SAFETY: the test points `data` at a `Debt` that outlives the waits for both batches.
    let debt = unsafe { &*data.cast_const().cast::<Debt>() };
    debt.seen_by_second
        .store(debt.first.value() as usize, Ordering::Relaxed);
}

/// Decrements are batched per worker, but a worker pays what it owes a counter before it
/// starts a job of another counter: a job that runs after the whole first batch on the same
/// worker sees that batch's counter at zero.
#[test]
fn batched_decrements_are_paid_before_a_job_of_another_counter_starts() {
    let jobs = system(1);
    let debt = Debt {
        first: Counter::new(),
        seen_by_second: AtomicUsize::new(usize::MAX),
    };
    let data = (&debt as *const Debt).cast_mut().cast();
    let first: Vec<JobDecl> = (0..10)
        .map(|_| JobDecl::new(job_meta!("first"), nop_entry, data))
        .collect();
    let second = [JobDecl::new(job_meta!("second"), check_first_entry, data)];
    jobs.run(|ctx| {
        let second_done = Counter::new();
        // SAFETY: the declarations, `debt` and both counters outlive the waits below.
        unsafe {
            ctx.run_jobs(&first, &debt.first);
            // Behind the first batch: the one worker runs all of it, then this.
            ctx.run_jobs_hinted(&second, &second_done, Hint::Fifo);
        }
        ctx.wait_for_counter(&second_done, 0);
        ctx.wait_for_counter(&debt.first, 0);
    });
    assert_eq!(debt.seen_by_second.load(Ordering::Relaxed), 0);
}

/// High work in the injector (here `Hint::Fifo`) goes before the worker's own queued Low work
/// at its next pick, not only at the next global pick: on one worker, the High job starts
/// before any of the Low jobs queued on the worker's own ring ahead of it.
#[test]
fn a_high_job_in_the_injector_goes_before_own_low_work() {
    let jobs = system(1);
    let order = std::sync::Arc::new(Mutex::new(Vec::new()));
    jobs.run(|ctx| {
        let low = job_meta!("low", priority(Priority::Low));
        let lows: Vec<_> = (0..8)
            .map(|_| {
                let order = order.clone();
                ctx.spawn_detached_meta(low, Hint::Lifo, move |_| {
                    order.lock().unwrap().push(Priority::Low)
                })
            })
            .collect();
        let high = job_meta!("high", priority(Priority::High));
        let order_high = order.clone();
        let high = ctx.spawn_detached_meta(high, Hint::Fifo, move |_| {
            order_high.lock().unwrap().push(Priority::High)
        });
        // Not in this worker's rings: the join parks, and the worker's loop picks.
        high.join(ctx);
        for l in lows {
            l.join(ctx);
        }
    });
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), 9);
    assert_eq!(order[0], Priority::High, "{order:?}");
}
