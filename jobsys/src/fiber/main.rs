//! `fiber_main`: the body of every pooled fiber — run a job, look for the next one on the
//! same worker without switching, and go idle when there is none — and `Ctx::run`, which runs
//! one job on the fiber (its body's loop, the inline-children pass, an inline submission).

use super::coro::FiberYielder;
use super::{Ctx, Resume, Suspend, pool::StackBounds};
use crate::job::{Affinity, JobMeta, JobRef, StackClass};
use crate::panic::{AbortIfPanic, fatal};
use crate::profile;
use crate::worker::Host;

/// The body of every pooled fiber: run jobs until the worker's queues are empty, then go idle.
pub(crate) fn fiber_main(
    y: &FiberYielder,
    first: Resume,
    fiber: u32,
    class: StackClass,
    stack: StackBounds,
) {
    let guard = AbortIfPanic("a panic escaped the fiber loop (a jobsys bug)");
    let (mut job, at) = match first {
        Resume::Run(job, at) => (job, at),
        Resume::Exit => {
            core::mem::forget(guard);
            return;
        }
        Resume::Continue(_) => fatal("a pooled fiber was resumed with Continue"),
    };
    let ctx = Ctx::new(y, at, fiber, class, stack);
    loop {
        ctx.run(job);
        super::region::close_leaked();
        let shared = ctx.shared();
        let worker = ctx.worker();
        // Timers first: a fiber whose timed wait (a `sleep`, a timeout) just fell due becomes
        // ready now and goes before the next job, instead of waiting for one more job to end.
        shared.timers.poll();
        let next = if worker.no_ready() && worker.yielded.is_empty() && !ctx.core().has_handed_off()
        {
            shared.find_job(ctx.worker_index(), ctx.core(), Host::Fiber(class))
        } else {
            None
        };
        match next {
            // `find_job` only hands a fiber jobs whose stack class fits it.
            Some(j) => job = j,
            None => match go_idle(&ctx, y) {
                Resume::Run(j, at) => {
                    ctx.set_at(at);
                    job = j;
                }
                Resume::Exit => break,
                Resume::Continue(_) => fatal("an idle fiber was resumed with Continue"),
            },
        }
    }
    core::mem::forget(guard);
}

/// Pays batched decrements, then returns this fiber to the scheduler as idle; returns
/// what it is resumed with.
fn go_idle(ctx: &Ctx, y: &FiberYielder) -> Resume {
    ctx.flush_decrements();
    y.suspend(Suspend::Idle)
}

/// A job running on this fiber, from its start until this drops: counted in the worker's
/// stats (`jobs_run`) when it starts, and reported to the profile hooks, `job_begin` at the
/// start and `job_end` at the drop (also when the job unwinds). Every path that runs a job
/// starts it through [`Ctx::start_job`] — `Ctx::run`, and `Ctx::join` calling its second half
/// itself — so the stats and the hooks count the same jobs, each hook pair once per job.
/// Without the `profile` feature it only counts: an empty type with no `Drop`.
#[must_use = "the job ends (job_end) when this drops"]
pub(crate) struct RunningJob<'a> {
    #[cfg(feature = "profile")]
    ctx: &'a Ctx,
    #[cfg(feature = "profile")]
    meta: &'static JobMeta,
    _job: core::marker::PhantomData<&'a Ctx>,
}

#[cfg(feature = "profile")]
impl Drop for RunningJob<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // Read afresh: in migration mode the job may end on another worker than it began on.
        profile::job_end(self.ctx.worker_index(), self.meta);
    }
}

impl Ctx {
    /// Counts the job `meta` as started on this worker and reports its `job_begin`; its
    /// `job_end` follows when the returned guard drops.
    #[inline(always)]
    pub(crate) fn start_job(&self, meta: &'static JobMeta) -> RunningJob<'_> {
        self.worker().count_job();
        profile::job_begin(self.worker_index(), meta);
        RunningJob {
            #[cfg(feature = "profile")]
            ctx: self,
            #[cfg(feature = "profile")]
            meta,
            _job: core::marker::PhantomData,
        }
    }

    /// Runs `job` on this fiber now.
    #[inline]
    pub(crate) fn run(&self, job: JobRef) {
        // Pay what we owe another counter before a job that may take long: its waiter must not
        // wait for this one.
        let owner = job.owner();
        if self.core().debt.owes_other(owner) {
            self.flush_decrements();
        }
        let meta = job.meta();
        let slot = self.shared().fibers.slot(self.fiber);
        let outer = slot.set_job(meta);
        let pinned = meta.affinity != Affinity::Any;
        if pinned {
            slot.add_pinned(1);
        }
        let running = self.start_job(meta);
        // SAFETY: popped refs are executed once; the fiber fits (callers check) and the worker is
        // allowed (pinned jobs only ever sit in their worker's inbox).
        unsafe { job.execute(self) };
        drop(running);
        if pinned {
            slot.add_pinned(-1);
        }
        slot.set_job(outer);
    }
}
