//! `Ctx`: what a job holds while it runs — the door to submitting and waiting.

use super::coro::FiberYielder;
use super::{Resume, Suspend, WorkerRef};
use crate::Handle;
use crate::counter::{Counter, CounterCore};
use crate::job::{JobDecl, JobRef, StackClass};
use crate::panic::fatal;
use crate::sched::Hint;
use crate::worker::{Shared, Worker, WorkerCore};
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// The running job's view of the job system: submit, wait, fork, scope.
///
/// Every job receives a `&Ctx`. It belongs to the fiber the job runs on: it is neither `Send`
/// nor `Sync`, so it cannot be smuggled into another job. Waiting through it parks the fiber,
/// never the worker thread; the worker runs other jobs meanwhile.
///
/// A thread outside the pool cannot wait as a fiber (it waits through a
/// [`Handle`], which blocks the thread):
///
/// ```compile_fail
/// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
/// let counter = jobsys::Counter::new();
/// jobs.run(|ctx| {
///     std::thread::scope(|s| {
///         s.spawn(|| ctx.wait_for_counter(&counter, 0)); // Ctx is !Sync
///     });
/// });
/// ```
pub struct Ctx {
    yielder: NonNull<FiberYielder>,
    at: Cell<WorkerRef>,
    pub(super) fiber: u32,
    class: StackClass,
    /// This fiber's stack (for the headroom check of inline execution).
    stack: super::pool::StackBounds,
    /// Frame bodies running on this fiber (nested `Frames::frame` calls; see `frame/`).
    pub(crate) frame_depth: Cell<u32>,
    _not_send_sync: PhantomData<*mut ()>,
    /// Frame slots held by the frame bodies running on this fiber (bit `s`: slot `s`), so a
    /// frame that would wait for one of them — its own caller — is refused (see `frame/`).
    pub(crate) frame_slots: Cell<u32>,
    /// The cancellation node of the scope whose body or job runs on this fiber now (null
    /// outside any scope); set and restored by `Ctx::scope` and by each scoped job.
    pub(crate) cancel: Cell<*const crate::cancel::CancelNode>,
}

impl Ctx {
    /// The `Ctx` of a pooled fiber, built by its body (`fiber_main`) in the fiber's root frame,
    /// where `yielder` lives for the fiber's whole life.
    pub(super) fn new(
        yielder: &FiberYielder,
        at: WorkerRef,
        fiber: u32,
        class: StackClass,
        stack: super::pool::StackBounds,
    ) -> Self {
        Self {
            yielder: NonNull::from(yielder),
            at: Cell::new(at),
            fiber,
            class,
            stack,
            frame_depth: Cell::new(0),
            _not_send_sync: PhantomData,
            frame_slots: Cell::new(0),
            cancel: Cell::new(core::ptr::null()),
        }
    }

    /// The stack class of this fiber.
    #[inline]
    pub(crate) fn class(&self) -> StackClass {
        self.class
    }

    /// Where this fiber runs from now on (the resume value of the switch that just landed).
    #[inline]
    pub(super) fn set_at(&self, at: WorkerRef) {
        self.at.set(at);
    }

    /// Opens a no-suspend region until the guard drops: in debug builds, a wait, park or
    /// yield of this fiber inside it panics and names this call's location. Wrap code that
    /// holds a `std::sync::MutexGuard`, a `RefCell` borrow or a thread-local's value, which
    /// must not cross a wait (docs/safety.md). Every
    /// [`SpinLockGuard`](crate::sync::SpinLockGuard) holds one.
    ///
    /// ```
    /// # let jobs = jobsys::JobSystem::builder().workers(1).build().unwrap();
    /// let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     jobs.run(|ctx| {
    ///         let _region = ctx.no_suspend();
    ///         ctx.yield_now(); // debug builds: "Ctx::yield_now inside a no-suspend region"
    ///     })
    /// }));
    /// // Whether jobsys itself was built with debug assertions, not the calling crate.
    /// assert_eq!(r.is_err(), jobsys::NoSuspend::CHECKED);
    /// ```
    #[track_caller]
    pub fn no_suspend(&self) -> super::NoSuspend {
        super::NoSuspend::open()
    }

    /// The index of the worker this job runs on (0 is the thread that called
    /// [`JobSystem::run`](crate::JobSystem::run)).
    pub fn worker_index(&self) -> usize {
        self.at.get().index
    }

    /// The pool index of the fiber this job runs on (the `fiber` of the profile hooks).
    #[inline]
    pub(crate) fn fiber_index(&self) -> u32 {
        self.fiber
    }

    /// Opens a profiler zone named `name` until the guard drops: the
    /// [`ProfileHooks`](crate::profile::ProfileHooks) `zone_begin` / `zone_end` hooks of every
    /// installed hook set. Without the `profile` feature it does nothing and costs nothing.
    ///
    /// Unlike a thread-bound profiler span, a zone may stay open across waits (`join`, `scope`,
    /// `wait_for_counter`, a contended lock): both hooks name the fiber, so a back-end keys the
    /// zone by fiber while other jobs run on the worker. With the default (non-migrating) mode
    /// the zone begins and ends on the same worker.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// jobs.run(|ctx| {
    ///     let _zone = ctx.zone("physics");
    ///     let (a, b) = ctx.join(|_| 1, |_| 2); // may park: the zone stays open
    ///     assert_eq!(a + b, 3);
    /// });
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    #[inline(always)]
    pub fn zone(&self, name: &'static str) -> crate::profile::Zone<'_> {
        crate::profile::Zone::open(self, name)
    }

    /// How many workers the system has, the calling thread of `run` included.
    pub fn worker_count(&self) -> usize {
        self.shared().workers.len()
    }

    /// How many workers are asleep right now (a diagnostic; see
    /// [`JobSystem::sleeping_workers`](crate::JobSystem::sleeping_workers)).
    pub fn sleeping_workers(&self) -> usize {
        self.shared().sleeping_workers()
    }

    /// Running totals of worker `worker` (see
    /// [`JobSystem::worker_stats`](crate::JobSystem::worker_stats)).
    ///
    /// # Panics
    /// If `worker` is not below [`worker_count`](Self::worker_count).
    #[track_caller]
    pub fn worker_stats(&self, worker: usize) -> crate::WorkerStats {
        self.shared().worker_stats(worker)
    }

    /// A handle for submitting from other threads; cheap to clone, `Send + Sync`.
    pub fn handle(&self) -> Handle {
        Handle::from_shared(self.shared_arc())
    }

    /// Parks this fiber until `counter` is at or below `target`.
    ///
    /// Returns at once (one atomic load) if it already is. Otherwise it first runs, on this
    /// fiber, its own not-yet-started children: jobs of `counter` at the LIFO end of this
    /// worker's queue whose stack class fits this fiber — never unrelated jobs. Then it parks;
    /// the decrement that reaches `target` wakes it on this same worker.
    ///
    /// # Panics
    /// Aborts the process with a message if called while this thread is panicking (from a
    /// `Drop` during unwinding): the panic count is per thread and cannot follow a parked fiber.
    /// In debug builds, panics if a no-suspend region is open on this fiber — after the wait,
    /// once the count reached `target`, so the jobs it guards have finished.
    #[inline]
    pub fn wait_for_counter(&self, counter: &Counter, target: u32) {
        self.wait_core(counter.core(), target);
    }

    /// [`wait_for_counter`](Self::wait_for_counter) for at most `timeout`; returns whether the
    /// count reached `target` (false: the deadline passed first — the jobs still run, and the
    /// counter must still outlive them).
    ///
    /// The fiber parks with a timer that the workers fire at their first scheduling point
    /// after the deadline, so the wait can last longer than `timeout` while every worker is
    /// busy in a long job, and the inline pass over this fiber's own children (see
    /// [`wait_for_counter`](Self::wait_for_counter)) runs to its end. A decrement racing the
    /// timer is never lost: if it reaches the target first, this returns true.
    ///
    /// # Panics
    /// As [`wait_for_counter`](Self::wait_for_counter). After a timed-out wait the no-suspend
    /// report (debug builds) unwinds while the counter's jobs still run: data they use must
    /// outlive the counter reaching its target, not this call — as on the `false` return.
    pub fn wait_for_counter_timeout(
        &self,
        counter: &Counter,
        target: u32,
        timeout: std::time::Duration,
    ) -> bool {
        let reached = counter.is_done(target)
            || self.wait_cold(counter.core(), target, crate::deadline::after(timeout));
        // As in `wait_core`: a region is reported after the wait, never before it.
        super::check_no_suspend("a counter wait");
        reached
    }

    /// Whether this fiber has enough stack left to run a job of `class` inline, on top of
    /// what is already on it (see `Builder::inline_headroom`).
    #[inline]
    pub(crate) fn has_headroom(&self, class: StackClass) -> bool {
        let left = super::stack::stack_pointer().saturating_sub(self.stack.low);
        left >= self.shared().fibers.inline_headroom(class)
    }

    /// Lets other work run on this worker first — its woken fibers and one queued job — then
    /// continues on the same worker. With nothing else to do it returns almost at once.
    ///
    /// While the thread is panicking (a `Drop` running during unwinding) it returns at once:
    /// other jobs must not run on top of an unwinding fiber, which would see the panic count.
    pub fn yield_now(&self) {
        super::check_no_suspend("Ctx::yield_now");
        if !std::thread::panicking() {
            self.suspend(Suspend::Yield);
        }
    }

    /// Submits a batch of raw declarations counted on `counter` (which gains `decls.len()`)
    /// and returns at once. O(1): the batch is published as one range that workers split
    /// lazily. Wait with [`wait_for_counter`](Self::wait_for_counter).
    ///
    /// # Safety
    /// - `decls` and `counter` stay alive and unmoved until `counter` has dropped back by
    ///   `decls.len()` (wait for it before they go out of scope, and do not leak the wait);
    /// - the declarations are in no other batch in flight;
    /// - each `entry(ctx, data)` is sound to call on any worker its affinity allows, once;
    /// - until then, nothing lowers `counter` with [`Counter::sub`] by more than it raised it
    ///   with [`Counter::add`] (a hold): a wait that relies on the count must not return
    ///   while the batch's jobs still run.
    ///
    /// # Panics
    /// If a declaration is pinned to a worker index that does not exist (every declaration is
    /// checked before anything is queued).
    pub unsafe fn run_jobs(&self, decls: &[JobDecl], counter: &Counter) {
        // SAFETY: forwarded caller contract.
        unsafe { self.run_jobs_hinted(decls, counter, Hint::Lifo) }
    }

    /// [`run_jobs`](Self::run_jobs) with a placement [`Hint`] for the batch: `Lifo` (what
    /// `run_jobs` does) publishes it on this worker's ring, `Fifo` queues it behind the work
    /// already in the shared injector, `Inline` starts it on this fiber before returning — the
    /// batch splits as it runs, so other workers take the other halves while this fiber runs
    /// the first declaration.
    ///
    /// # Safety
    /// As for [`run_jobs`](Self::run_jobs).
    ///
    /// # Panics
    /// As for [`run_jobs`](Self::run_jobs).
    pub unsafe fn run_jobs_hinted(&self, decls: &[JobDecl], counter: &Counter, hint: Hint) {
        let check = |meta: &_| self.shared().check_job(meta);
        // SAFETY: forwarded caller contract.
        if let Some(job) = unsafe { crate::job::prepare_batch(decls, counter.core(), check) } {
            self.submit(job, hint);
        }
    }

    /// Publishes a job on this worker (or on the worker it is pinned to) and wakes a sleeper.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.submit(job, Hint::Lifo);
    }

    /// Places `job` where the policy says for `hint` (see `worker/submit.rs`).
    #[inline]
    pub(crate) fn submit(&self, job: JobRef, hint: Hint) {
        crate::worker::submit(self, job, hint);
    }

    /// Records that a job of `counter` finished: a batched decrement (see `worker/debt.rs`).
    #[inline]
    pub(crate) fn complete(&self, counter: &CounterCore) {
        let core = self.core();
        core.debt.complete(counter, core);
    }

    /// Pays this worker's batched decrements (see `worker/debt.rs`).
    #[inline]
    pub(crate) fn flush_decrements(&self) {
        let core = self.core();
        core.debt.flush(core);
    }

    /// Switches to the worker with `why`. Never unwinds: callers check no-suspend regions
    /// first (yields, parks) or after the wait (counter waits, see `wait_core`); a region
    /// still open here is set aside while this fiber is away, so other fibers on the thread
    /// do not inherit it.
    pub(super) fn suspend(&self, why: Suspend) {
        self.flush_decrements();
        let regions = super::region::set_aside();
        // SAFETY: `fiber_main` built this `Ctx` (`Ctx::new`) in the fiber's root frame from the
        // yielder the coroutine passed it, which lives as long as that frame: every `Ctx` use.
        let input = unsafe { self.yielder.as_ref() }.suspend(why);
        super::region::restore(regions);
        match input {
            Resume::Continue(at) => self.at.set(at),
            _ => fatal("a parked fiber was resumed with something other than Continue"),
        }
    }

    #[inline]
    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: the system outlives every fiber body (shutdown ends fibers before freeing).
        unsafe { self.at.get().shared.as_ref() }
    }

    fn shared_arc(&self) -> std::sync::Arc<Shared> {
        let ptr = self.at.get().shared.as_ptr().cast_const();
        // SAFETY: `Shared` lives in an `Arc` for the whole life of the system and fibers run only
        // while it lives; bump the strong count before materialising a second owner.
        unsafe {
            std::sync::Arc::increment_strong_count(ptr);
            std::sync::Arc::from_raw(ptr)
        }
    }

    /// The owner-only state of the worker this fiber runs on now. Never keep the reference
    /// across a suspension (a wait, park or yield, or a job run inline, which may wait): in
    /// migration mode the fiber may resume on another worker, whose thread owns another core.
    #[inline]
    pub(crate) fn core(&self) -> &WorkerCore {
        // `at` is the resume value of the switch that last landed in this fiber (set on every
        // resume: `fiber_main`, `suspend`).
        // SAFETY: `main_loop` points `core` at the `WorkerCore` its caller owns and keeps alive
        // for the loop's whole run; this fiber runs only inside that loop, on the owner thread.
        unsafe { self.at.get().core.as_ref() }
    }

    #[inline]
    pub(crate) fn worker(&self) -> &Worker {
        // SAFETY: points into `Shared::workers`, which lives as long as the system (see
        // `shared`).
        unsafe { self.at.get().worker.as_ref() }
    }
}

impl Ctx {
    /// Whether the scope this code runs in — the scope whose job or body is running on this
    /// fiber — or any scope enclosing it was cancelled (see
    /// [`Scope::cancel`](crate::Scope::cancel)). Long-running jobs poll it to stop early;
    /// `false` outside any scope.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// jobs.run(|ctx| {
    ///     assert!(!ctx.is_cancelled());
    ///     ctx.scope(|outer| {
    ///         outer.cancel();
    ///         // A nested scope sees its enclosing scope's cancellation.
    ///         ctx.scope(|_| assert!(ctx.is_cancelled()));
    ///     });
    /// });
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        let node = self.cancel.get();
        // SAFETY: a non-null node belongs to a scope whose body or job is running on this
        // fiber, so it is alive (set and restored around them by `scope/`).
        !node.is_null() && unsafe { &*node }.is_cancelled()
    }
}
