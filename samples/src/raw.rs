//! A safe, typed front for jobsys's raw layer (`JobDecl`, `Ctx::run_jobs`, `Counter`).
//!
//! The raw layer is how a Naughty-Dog-style engine submits work: an array of declarations
//! (entry function + data pointer), one submit call, one counter to wait on. It is `unsafe`
//! because jobsys cannot see what the data pointers point to. [`run_batch`] closes that gap
//! for the common case — one job per element of a slice of task values — with the one
//! `unsafe` call the sample needs, argued once here.

use jobsys::{Counter, Ctx, FrameArena, JobDecl, JobMeta};

/// A task of a raw batch: one job runs `run` on one value.
///
/// A task runs on any worker, so it must be `Send`: one that shares a `!Sync` value is refused.
///
/// ```compile_fail
/// use jobsys::Ctx;
/// use jobsys_samples::raw::RawTask;
/// struct Shared<'a>(&'a std::cell::Cell<u32>);
/// impl RawTask for Shared<'_> {
///     fn run(&mut self, _ctx: &Ctx) {
///         self.0.set(self.0.get() + 1);
///     }
/// }
/// ```
pub trait RawTask: Send {
    /// The job's work. `ctx` is the context of the fiber the job runs on.
    fn run(&mut self, ctx: &Ctx);
}

/// Runs `task.run(ctx)` for every task as one raw batch of `JobDecl`s — one declaration per
/// task, built in `arena` (no heap) — and parks until all ran.
///
/// # Panics
/// If a task panicked (the raw layer poisons the counter; the payload is reported by the
/// panic hook).
pub fn run_batch<T: RawTask>(
    ctx: &Ctx,
    arena: FrameArena<'_>,
    meta: &'static JobMeta,
    tasks: &mut [T],
) {
    let mut decls = arena.vec_with_capacity::<JobDecl>(tasks.len());
    for task in tasks.iter_mut() {
        decls.push(JobDecl::new(
            meta,
            entry::<T>,
            std::ptr::from_mut(task).cast(),
        ));
    }
    let done = Counter::new();
    // The caller contract of `run_jobs`, established here: every declaration points to its own
    // element of `tasks`, which this function borrows mutably, so no two jobs and no other code
    // touch the same task; `T: Send` lets the task run on any worker; `entry::<T>` is called
    // with exactly such a pointer.
    // SAFETY: as above; `decls`, `tasks` and `done` outlive the batch: the wait below runs right
    // after the submit (nothing in between can panic or return) and returns once every job ran.
    unsafe { ctx.run_jobs(&decls, &done) };
    ctx.wait_for_counter(&done, 0);
    assert!(
        !done.is_poisoned(),
        "a job of the raw batch '{}' panicked",
        meta.name
    );
}

/// Entry point of a job of `run_batch`.
///
/// # Safety
/// `data` points to a `T` that no one else accesses while the job runs (`run_batch`
/// establishes this).
unsafe fn entry<T: RawTask>(ctx: &Ctx, data: *mut ()) {
    // SAFETY: caller contract: an exclusive, live `T`.
    let task = unsafe { &mut *data.cast::<T>() };
    task.run(ctx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobsys::{JobSystem, job_meta};
    use std::panic::{AssertUnwindSafe, catch_unwind};

    /// Adds its index to its slot; panics if it is the chosen one.
    struct Task {
        index: usize,
        runs: u32,
        panic_at: Option<usize>,
    }

    impl RawTask for Task {
        fn run(&mut self, _ctx: &Ctx) {
            self.runs += 1;
            if self.panic_at == Some(self.index) {
                panic!("task {} fails", self.index);
            }
        }
    }

    fn tasks(n: usize, panic_at: Option<usize>) -> Vec<Task> {
        (0..n)
            .map(|index| Task {
                index,
                runs: 0,
                panic_at,
            })
            .collect()
    }

    #[test]
    fn every_task_runs_once_and_a_panic_reaches_the_caller_after_all_ran() {
        let jobs = JobSystem::builder().workers(2).build().expect("job system");
        jobs.run(|ctx| {
            ctx.frame(|f| {
                let mut ok = tasks(300, None);
                run_batch(ctx, f.arena(ctx), job_meta!("raw test"), &mut ok);
                assert!(ok.iter().all(|t| t.runs == 1), "each task exactly once");
                run_batch::<Task>(ctx, f.arena(ctx), job_meta!("raw test"), &mut []);

                let mut failing = tasks(300, Some(17));
                let r = catch_unwind(AssertUnwindSafe(|| {
                    run_batch(ctx, f.arena(ctx), job_meta!("raw test"), &mut failing)
                }));
                let payload = r.expect_err("the task's panic is reported");
                let message = payload.downcast_ref::<String>().expect("a message");
                assert!(message.contains("panicked"), "{message}");
                // `run_batch` returned only after every job ran: no job still holds a task.
                assert!(failing.iter().all(|t| t.runs == 1));
            });
        });
    }
}
