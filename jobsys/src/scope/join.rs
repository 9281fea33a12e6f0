//! Jobs whose record lives on the waiting fiber's stack: `Ctx::join` and `JobSystem::run`.

use crate::counter::CounterCore;
use crate::fiber::Ctx;
use crate::job::{JobHeader, JobMeta, JobRef};
use crate::panic::{Payload, catch, drop_payload};
use crate::shim::UnsafeCell;
use core::ptr::NonNull;
use std::panic::resume_unwind;

/// A one-shot job and its result slot, on the stack of whoever waits for it.
///
/// Invariant: once published, it stays in place until `done` reads zero.
#[repr(C)]
pub(crate) struct StackJob<F, R> {
    header: JobHeader,
    f: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<Result<R, Payload>>>,
    done: CounterCore,
    /// The cancellation node current where the job was made (see `in_cancel_scope`): set on
    /// whichever fiber runs it, so a stolen `b` of `Ctx::join` sees its scope's cancellation.
    cancel: *const crate::cancel::CancelNode,
}

impl<F: FnOnce(&Ctx) -> R, R> StackJob<F, R> {
    pub(crate) fn new(meta: &'static JobMeta, f: F) -> Self {
        Self {
            header: JobHeader::new(execute_stack::<F, R>, core::ptr::null(), meta),
            f: UnsafeCell::new(Some(f)),
            result: UnsafeCell::new(None),
            done: CounterCore::new(1),
            cancel: core::ptr::null(),
        }
    }

    /// This job, run under the cancellation node current on `ctx` (the scope whose body or
    /// job makes it). The node outlives the job: the maker waits for it before its scope
    /// ends.
    pub(crate) fn in_cancel_scope(mut self, ctx: &Ctx) -> Self {
        self.cancel = ctx.cancel.get();
        self
    }

    /// The ref to publish.
    ///
    /// # Safety
    /// `self` must not move until [`done`](Self::done) reads zero, and the job must be allowed
    /// to run where it is published (it must be `Send` unless it is pinned to this thread).
    pub(crate) unsafe fn job_ref(&self) -> JobRef {
        // SAFETY: `header` is the first field of this `#[repr(C)]` record.
        let r = unsafe { JobRef::new(NonNull::from(&self.header)) };
        r.set_owner(&self.done);
        r
    }

    pub(crate) fn done(&self) -> &CounterCore {
        &self.done
    }

    /// The closure of a job that was published and then taken back before anyone ran it.
    pub(crate) fn take_unrun(&self) -> F {
        // SAFETY: the caller popped the only ref to this job, so nobody else can run it: the
        // closure is ours to take.
        self.f
            .with_mut(|p| unsafe { (*p).take() })
            .expect("a stack job taken back twice")
    }

    /// The job's result once `done` is zero.
    pub(crate) fn take_result(&self) -> Result<R, Payload> {
        debug_assert!(self.done.is_done(0));
        // SAFETY: `done` is zero: the job finished writing `result` and nobody else reads it.
        self.result
            .with_mut(|p| unsafe { (*p).take() })
            .expect("a stack job produced no result")
    }
}

/// # Safety
/// `header` heads a live `StackJob<F, R>` that has not run.
unsafe fn execute_stack<F: FnOnce(&Ctx) -> R, R>(header: NonNull<JobHeader>, ctx: &Ctx) {
    let job = header.cast::<StackJob<F, R>>().as_ptr().cast_const();
    // SAFETY: the record lives until `done` reaches zero (type invariant); the closure is taken
    // once, here; the waiter reads `result` only after `done`.
    unsafe {
        let f = (*job)
            .f
            .with_mut(|p| (*p).take())
            .expect("a stack job ran twice");
        let outer = ctx.cancel.replace((*job).cancel);
        let r = catch(|| f(ctx));
        ctx.cancel.set(outer);
        (*job).result.with_mut(|p| *p = Some(r));
        ctx.complete(&(*job).done);
    }
}

impl Ctx {
    /// Runs `a` and `b`, potentially in parallel, and returns both results.
    ///
    /// `a` runs here at once; `b` is published as a job that another worker may steal. If
    /// nobody took `b` by the time `a` returns, it runs here too (no park); otherwise this
    /// fiber parks until `b` finishes. A panic in either is re-raised after both finished.
    ///
    /// ```
    /// fn fib(ctx: &jobsys::Ctx, n: u64) -> u64 {
    ///     if n < 2 { return n; }
    ///     let (a, b) = ctx.join(|c| fib(c, n - 1), |c| fib(c, n - 2));
    ///     a + b
    /// }
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// assert_eq!(jobs.run(|ctx| fib(ctx, 20)), 6765);
    /// ```
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&Ctx) -> RA,
        B: FnOnce(&Ctx) -> RB + Send,
        RB: Send,
    {
        // As in `scope`: refuse a join inside a no-suspend region before publishing `b`.
        crate::fiber::check_no_suspend("Ctx::join");
        let job = StackJob::new(&JobMeta::JOIN, b).in_cancel_scope(self);
        // We wait below on every path but the take-back, panics in `a` included (`a` runs under
        // `catch`), and that wait (`wait_core`) never unwinds before `done` is zero.
        // SAFETY: so `job` stays in this frame until `done` is zero or it was taken back unrun;
        // `B: Send` lets it run on any worker.
        let r = unsafe { job.job_ref() };
        self.push(r);
        let ra = catch(|| a(self));
        if let Ok(ra) = ra {
            // Fast path: nobody took `b`; it is still at the LIFO end of our ring. Take it back
            // and call it here: no counter decrement, no result slot, and a panic in `b` may
            // simply propagate, since `a` is done and nothing else borrows this frame. Not
            // with too little stack left: then `b` starts on a fiber of its own while we park.
            let ring = self
                .worker()
                .ring(JobMeta::JOIN.priority, JobMeta::JOIN.stack);
            let top = if self.has_headroom(JobMeta::JOIN.stack) {
                ring.pop()
            } else {
                None
            };
            match top {
                Some(top) if top == r => {
                    // Still a job of this worker's, run without its record: a job all the
                    // same, counted and reported (`job_begin`/`job_end`, the end also if `b`
                    // unwinds) like one run from a queue.
                    let running = self.start_job(&JobMeta::JOIN);
                    let rb = job.take_unrun()(self);
                    drop(running);
                    return (ra, rb);
                }
                Some(other) if ring.push(other).is_err() => {
                    crate::panic::fatal("ring overflow re-pushing a just-popped job")
                }
                _ => {}
            }
            self.wait_core(job.done(), 0);
            return match job.take_result() {
                Ok(rb) => (ra, rb),
                Err(p) => resume_unwind(p),
            };
        }
        self.wait_core(job.done(), 0);
        match (ra, job.take_result()) {
            (Ok(ra), Ok(rb)) => (ra, rb),
            (Err(p), Ok(_)) | (Ok(_), Err(p)) => resume_unwind(p),
            (Err(pa), Err(pb)) => {
                // `a`'s panic is re-raised; `b`'s payload goes first, so a payload whose drop
                // panics cannot panic during that unwind (which would abort).
                drop_payload(pb);
                resume_unwind(pa)
            }
        }
    }
}
