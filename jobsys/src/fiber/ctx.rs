//! `Ctx`: what a job holds while it runs — the door to submitting and waiting.

use super::{Resume, Suspend, WorkerRef};
use crate::counter::{Counter, CounterCore, WaitNode};
use crate::job::{Affinity, JobDecl, JobRef, StackClass};
use crate::panic::{AbortIfPanic, fatal};
use crate::sched::{Hint, Place};
use crate::timer::Target;
use crate::waitlist::Waiter;
use crate::worker::{Host, Shared, Worker};
use crate::{Handle, fault, profile};
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use corosensei::{CoroutineResult, Yielder};

/// The running job's view of the job system: submit, wait, fork, scope.
///
/// Every job receives a `&Ctx`. It belongs to the fiber the job runs on: it is neither `Send`
/// nor `Sync`, so it cannot be smuggled into another job. Waiting through it parks the fiber,
/// never the worker thread; the worker runs other jobs meanwhile.
///
/// A thread outside the pool cannot wait as a fiber (it waits through a
/// [`Handle`](crate::Handle), which blocks the thread):
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
    yielder: NonNull<Yielder<Resume, Suspend>>,
    at: Cell<WorkerRef>,
    fiber: u32,
    class: StackClass,
    /// This fiber's stack (for the headroom check of inline execution).
    stack: super::pool::StackBounds,
    _not_send_sync: PhantomData<*mut ()>,
}

impl Ctx {
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

    /// How many workers the system has, the calling thread of `run` included.
    pub fn worker_count(&self) -> usize {
        self.shared().workers.len()
    }

    /// Runs `f` with a frame open: until it returns, idle workers spin instead of sleeping,
    /// so each fan-out of the frame finds them awake; between frames they sleep. Opening the
    /// first frame wakes every sleeping worker. Frames may nest (and may be opened from
    /// several jobs); workers sleep again once none is open.
    ///
    /// Keep a frame around the job work of a frame, not around the wait for vsync or the
    /// GPU: while it is open, idle workers burn their cores.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let mut state = vec![0u32; 256];
    /// for _frame in 0..3 {
    ///     jobs.run(|ctx| {
    ///         ctx.frame(|ctx| {
    ///             ctx.scope(|s| {
    ///                 for chunk in state.chunks_mut(64) {
    ///                     s.spawn(move |_| chunk.iter_mut().for_each(|x| *x += 1));
    ///                 }
    ///             });
    ///         })
    ///     });
    ///     // Between frames (here) idle workers go to sleep.
    /// }
    /// assert!(state.iter().all(|&x| x == 3));
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn frame<R>(&self, f: impl FnOnce(&Ctx) -> R) -> R {
        struct Close<'a>(&'a Shared);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0
                    .frames_open
                    .fetch_sub(1, crate::shim::Ordering::SeqCst);
            }
        }
        let shared = self.shared();
        let _close = Close(shared);
        // Counted as a waker on its way from the opening to the wakes, so that a sleeper whose
        // watchdog sees the frame open before our wake reaches it counts no lost wake-up.
        shared
            .dorm
            .waking
            .fetch_add(1, crate::shim::Ordering::SeqCst);
        if shared
            .frames_open
            .fetch_add(1, crate::shim::Ordering::SeqCst)
            == 0
        {
            // Pairs with the sleeper's fence: either it sees the frame and stays up, or we see
            // its announcement and wake it.
            shared.wake_all();
        }
        shared
            .dorm
            .waking
            .fetch_sub(1, crate::shim::Ordering::SeqCst);
        f(self)
    }

    /// How many workers are asleep right now (a diagnostic; see
    /// [`JobSystem::sleeping_workers`](crate::JobSystem::sleeping_workers)).
    pub fn sleeping_workers(&self) -> usize {
        self.shared().sleeping_workers()
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

    /// The counter wait behind every safe wait (scope, join, `run`'s root): it never unwinds
    /// before `counter` reaches `target`, because the jobs it waits for may borrow the
    /// caller's frame. In debug builds, a wait inside a no-suspend region panics — after the
    /// wait, when nothing borrows the frame any more. (Scopes and joins also check at entry,
    /// before they spawn anything, so the usual mistake panics early.)
    #[inline]
    #[track_caller]
    pub(crate) fn wait_core(&self, counter: &CounterCore, target: u32) {
        if !counter.is_done(target) {
            self.wait_cold(counter, target, crate::deadline::NEVER);
        }
        super::check_no_suspend("a counter wait");
    }

    /// The slow path of a wait until `deadline` (`deadline::NEVER`: none); returns whether the
    /// target was reached.
    #[cold]
    fn wait_cold(&self, counter: &CounterCore, target: u32, deadline: u64) -> bool {
        // Our own batched decrements may be what the waited-for counter lacks.
        self.flush_decrements();
        if counter.is_done(target) {
            return true;
        }
        if std::thread::panicking() {
            fatal(
                "a job waited on a counter while its thread was panicking (wait in a Drop during unwinding?); waits are refused there",
            );
        }
        self.run_own_children(counter, target);
        if counter.is_done(target) {
            return true;
        }
        profile::wait_begin(self.worker_index());
        // A wake may be spurious: a decrement whose slow path ran late can wake a waiter that
        // has since waited again on the same counter (see counter/README.md). So re-check and
        // park again until the target is really reached (or the deadline passed).
        let mut reached = true;
        while !counter.is_done(target) {
            if crate::deadline::passed(deadline) {
                reached = false;
                break;
            }
            let mut node = WaitNode::new(target, self.waiter_on(counter, target));
            node.timing = crate::deadline::Timing::until(deadline);
            self.suspend(Suspend::Wait(
                NonNull::from(&mut node),
                NonNull::from(counter),
            ));
            self.disarm(node.timing.stamp);
        }
        profile::wait_end(self.worker_index());
        reached
    }

    /// After a timed park: takes this fiber's timer out of the table if it did not fire.
    #[inline]
    fn disarm(&self, stamp: u64) {
        if stamp != 0 {
            self.shared().timers.disarm(self.fiber, stamp);
        }
    }

    /// The inline-children policy: pop from the LIFO end of each ring whose class fits this
    /// fiber while the job there belongs to `counter` — never unrelated jobs — in the
    /// policy's priority order for the pick. Each child counts as a pick of this worker; at a
    /// global pick with urgent work pending (see `sched/`) the pass stops without using the
    /// pick, so the caller parks and the worker's next pick — that global one — takes that
    /// work.
    fn run_own_children(&self, counter: &CounterCore, target: u32) {
        let classes: &[StackClass] = match self.class {
            StackClass::Large => &[StackClass::Large, StackClass::Small],
            StackClass::Small => &[StackClass::Small],
        };
        let policy = &self.shared().policy;
        'pick: loop {
            let tick = self.worker().peek_tick();
            if policy.global_pick(tick) && self.shared().urgent_work(self.worker_index()) {
                break;
            }
            for &priority in policy.child_order(tick) {
                for &class in classes {
                    // Too little stack left for a child here: leave it for a fiber of its own
                    // (the caller parks and the worker starts it).
                    if !self.has_headroom(class) {
                        continue;
                    }
                    let ring = self.worker().ring(priority, class);
                    let Some(job) = ring.pop() else { continue };
                    if !core::ptr::eq(job.owner(), counter) {
                        if ring.push(job).is_err() {
                            fatal("ring overflow re-pushing a just-popped job");
                        }
                        continue;
                    }
                    self.worker().next_tick();
                    self.run(job);
                    if self.done_counting_debt(counter, target) {
                        break 'pick;
                    }
                    continue 'pick;
                }
            }
            break;
        }
        // The children's decrements are batched: pay them, so the caller's check (and the
        // counter's other waiters) see them.
        self.flush_decrements();
    }

    /// Whether this fiber has enough stack left to run a job of `class` inline, on top of
    /// what is already on it (see `Builder::inline_headroom`).
    #[inline]
    pub(crate) fn has_headroom(&self, class: StackClass) -> bool {
        let left = super::stack::stack_pointer().saturating_sub(self.stack.low);
        left >= self.shared().fibers.inline_headroom(class)
    }

    /// Whether `counter` is at or below `target` once this worker's batched decrements are
    /// paid (without paying them).
    #[inline]
    fn done_counting_debt(&self, counter: &CounterCore, target: u32) -> bool {
        // SAFETY: as in `complete`; a read of two plain fields.
        let owed = self.worker().pending.with(|p| unsafe {
            if core::ptr::eq((*p).counter, counter) {
                (*p).n
            } else {
                0
            }
        });
        counter.value().saturating_sub(owed) <= target
    }

    /// Parks this fiber on `key` while `validate(data)` holds (checked by the worker after the
    /// switch, under the wait list's lock); returns the unparker's token, or
    /// `park::TOKEN_INVALID` if it did not park. See `park/`.
    ///
    /// # Safety
    /// `validate(data)` is sound to call on any thread until this returns.
    pub(crate) unsafe fn park(
        &self,
        key: usize,
        validate: unsafe fn(*const ()) -> bool,
        data: *const (),
        deadline: u64,
    ) -> usize {
        super::check_no_suspend("a wait on a jobsys::sync primitive");
        self.refuse_park_while_panicking();
        let waiter = self.waiter_on(key as *const CounterCore, super::pool::SYNC_WAIT);
        let mut node = crate::park::ParkNode::new(key, validate, data, waiter);
        node.set_deadline(deadline);
        self.suspend(Suspend::Park(NonNull::from(&mut node)));
        self.disarm(node.timing.stamp);
        // What the primitive said about this wait (for stall reports) held for this park only.
        self.shared().fibers.slot(self.fiber).describe_wait(None);
        node.token()
    }

    /// Parks this fiber on every node of `group` (a select; see `park/`) until one arm's
    /// unparker or the deadline in `nodes[0]` claims it. The caller unlinks the nodes after.
    ///
    /// # Safety
    /// As [`park`](Self::park), for every node; `group`'s waiter is [`Ctx::group_waiter`]'s.
    pub(crate) unsafe fn park_group(
        &self,
        group: &crate::park::Group,
        nodes: &mut [crate::park::ParkNode],
    ) {
        super::check_no_suspend("a wait on a jobsys::sync primitive");
        self.refuse_park_while_panicking();
        let stamp = nodes[0].timing.stamp;
        self.suspend(Suspend::ParkGroup(
            NonNull::from(group),
            NonNull::from(&mut nodes[0]),
            nodes.len(),
        ));
        self.disarm(stamp);
    }

    /// Says what this fiber's next park waits for, for stall reports (cleared after it).
    pub(crate) fn describe_wait(&self, what: super::WaitWhat) {
        self.shared()
            .fibers
            .slot(self.fiber)
            .describe_wait(Some(what));
    }

    /// This fiber as the waiter of a select's group, parked on the primitive at `key`.
    pub(crate) fn group_waiter(&self, key: usize) -> Waiter {
        self.waiter_on(key as *const CounterCore, super::pool::SYNC_WAIT)
    }

    fn refuse_park_while_panicking(&self) {
        if std::thread::panicking() {
            fatal(
                "a job blocked on a jobsys::sync primitive while its thread was panicking (in a Drop during unwinding?); that is refused",
            );
        }
    }

    /// This fiber as a waiter, recorded in the pool's deadlock report as waiting on `on` for
    /// `target` (`SYNC_WAIT`: `on` is a primitive's address, not a counter).
    fn waiter_on(&self, on: *const CounterCore, target: u32) -> Waiter {
        self.shared()
            .fibers
            .slot(self.fiber)
            .set_waiting(on, target);
        Waiter::Fiber {
            shared: self.shared(),
            fiber: self.fiber,
        }
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
    /// - each `entry(ctx, data)` is sound to call on any worker its affinity allows, once.
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

    /// Places `job` where the policy says for `hint` (see `sched/`): run here now, this
    /// worker's ring, the injector, or a pinned inbox; wakes a sleeper for published work.
    #[inline]
    pub(crate) fn submit(&self, job: JobRef, hint: Hint) {
        let shared = self.shared();
        let meta = job.meta();
        let inline_ok = hint == Hint::Inline
            && self.class.fits(meta.stack)
            && self.has_headroom(meta.stack)
            && match meta.affinity {
                Affinity::Any => true,
                Affinity::Worker(k) => k == self.worker_index(),
            };
        match shared.policy.place(meta, hint, inline_ok) {
            Place::Inline => {
                self.run(job);
                // The submitter goes on with its own job: pay the inline job's decrement now
                // rather than when that job ends.
                self.flush_decrements();
            }
            Place::Own(priority) => {
                fault::inject(fault::Site::Push);
                let ring = self.worker().ring(priority, meta.stack);
                if let Err(job) = ring.push(job) {
                    shared.overflow(ring, job);
                }
                shared.notify_local();
            }
            Place::Injector(priority) => {
                fault::inject(fault::Site::Push);
                shared.injector.at(priority).push(job);
                shared.notify_local();
            }
            Place::Pinned(k) => shared.push_pinned(k, job),
        }
    }

    /// Records that a job of `counter` finished. Consecutive completions of one counter on
    /// one worker are subtracted together — one RMW on the counter's line per run of jobs
    /// instead of one per job — and the debt is paid before this worker starts a job of
    /// another counter, before any fiber on it waits, yields or goes idle (so before the
    /// worker can sleep), when the run of the same counter reaches 2^16 jobs, and at once when
    /// paying would reach the target of a fiber or thread already parked on it. A counter
    /// owed a decrement cannot reach zero, so its owner cannot free it while we hold the
    /// pointer.
    #[inline]
    pub(crate) fn complete(&self, counter: &CounterCore) {
        let (owed, now) = self.worker().pending.with_mut(|p| {
            // SAFETY: owner-thread-only field: this fiber runs on the worker's thread, and no
            // reference to it outlives this closure.
            let p = unsafe { &mut *p };
            if core::ptr::eq(p.counter, counter) && p.n < PENDING_MAX {
                p.n += 1;
                return (None, p.n);
            }
            let owed = (p.counter, p.n);
            p.counter = counter;
            p.n = 1;
            (Some(owed), 1)
        });
        if let Some((old, n)) = owed
            && n > 0
        {
            // SAFETY: `old` is owed `n` decrements, so it has not reached zero and is alive.
            unsafe { (*old).sub(n) };
        }
        // A parked waiter whose target this batch reaches is woken now, not at the next
        // payment point (a join whose `b` was stolen, a wait on the last job of a batch).
        if counter.would_wake(now) {
            self.flush_decrements();
        }
    }

    /// Pays this worker's batched decrements (see [`complete`](Self::complete)).
    #[inline]
    pub(crate) fn flush_decrements(&self) {
        let owed = self.worker().pending.with_mut(|p| {
            // SAFETY: as in `complete`.
            let p = unsafe { &mut *p };
            let owed = (p.counter, p.n);
            p.counter = core::ptr::null();
            p.n = 0;
            owed
        });
        if owed.1 > 0 {
            // SAFETY: as in `complete`.
            unsafe { (*owed.0).sub(owed.1) };
        }
    }

    /// Pays batched decrements, then returns this fiber to the scheduler as idle; returns
    /// what it is resumed with.
    fn go_idle(&self, y: &Yielder<Resume, Suspend>) -> Resume {
        self.flush_decrements();
        y.suspend(Suspend::Idle)
    }

    /// Runs `job` on this fiber now.
    #[inline]
    pub(crate) fn run(&self, job: JobRef) {
        // Pay what we owe another counter before a job that may take long: its waiter must not
        // wait for this one.
        let owner = job.owner();
        let owes_other = self.worker().pending.with(|p| {
            // SAFETY: as in `complete`; a read of two plain fields.
            unsafe { !core::ptr::eq((*p).counter, owner) && (*p).n > 0 }
        });
        if owes_other {
            self.flush_decrements();
        }
        let meta = job.meta();
        let slot = self.shared().fibers.slot(self.fiber);
        let outer = slot.set_job(meta);
        let pinned = meta.affinity != Affinity::Any;
        if pinned {
            slot.add_pinned(1);
        }
        profile::job_begin(self.worker_index(), meta);
        // SAFETY: popped refs are executed once; the fiber fits (callers check) and the worker is
        // allowed (pinned jobs only ever sit in their worker's inbox).
        unsafe { job.execute(self) };
        profile::job_end(self.worker_index(), meta);
        if pinned {
            slot.add_pinned(-1);
        }
        slot.set_job(outer);
    }

    /// Switches to the worker with `why`. Never unwinds: callers check no-suspend regions
    /// first (yields, parks) or after the wait (counter waits, see `wait_core`); a region
    /// still open here is set aside while this fiber is away, so other fibers on the thread
    /// do not inherit it.
    fn suspend(&self, why: Suspend) {
        self.flush_decrements();
        let regions = super::region::set_aside();
        // SAFETY: the yielder lives in this fiber's root frame, which outlives every `Ctx` use.
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

    #[inline]
    pub(crate) fn worker(&self) -> &Worker {
        // SAFETY: points into `Shared::workers`, which lives as long as the system (see
        // `shared`).
        unsafe { self.at.get().worker.as_ref() }
    }
}

/// Most completions of one counter a worker batches before paying them.
const PENDING_MAX: u32 = 1 << 16;

/// The body of every pooled fiber: run jobs until the worker's queues are empty, then go idle.
pub(crate) fn fiber_main(
    y: &Yielder<Resume, Suspend>,
    first: Resume,
    fiber: u32,
    class: StackClass,
    stack: super::pool::StackBounds,
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
    let ctx = Ctx {
        yielder: NonNull::from(y),
        at: Cell::new(at),
        fiber,
        class,
        stack,
        _not_send_sync: PhantomData,
    };
    loop {
        ctx.run(job);
        super::region::close_leaked();
        let shared = ctx.shared();
        let worker = ctx.worker();
        let next = if worker.no_ready() && worker.yielded.is_empty() {
            shared.find_job(ctx.worker_index(), Host::Fiber(class))
        } else {
            None
        };
        match next {
            // `find_job` only hands a fiber jobs whose stack class fits it.
            Some(j) => job = j,
            None => match ctx.go_idle(y) {
                Resume::Run(j, at) => {
                    ctx.at.set(at);
                    job = j;
                }
                Resume::Exit => break,
                Resume::Continue(_) => fatal("an idle fiber was resumed with Continue"),
            },
        }
    }
    core::mem::forget(guard);
}

/// Switches the worker `index` into `fiber` and handles why it came back (post-switch
/// publication: the fiber's stack is quiescent for everything below).
pub(crate) fn switch_into(shared: &Shared, index: usize, fiber: u32, input: Resume) {
    use super::FiberState::*;
    let slot = shared.fibers.slot(fiber);
    let prev = slot.state();
    debug_assert!(
        matches!(prev, Pooled | Ready),
        "switching into a {prev:?} fiber"
    );
    slot.transition(prev, Running);
    slot.home.store(index, crate::shim::Ordering::Relaxed);
    fault::inject(fault::Site::Switch);
    profile::fiber_enter(index, fiber);
    // SAFETY: the caller took `fiber` from the free list or a ready queue, which hand each fiber
    // to one worker at a time.
    let result = unsafe { slot.resume(input) };
    profile::fiber_leave(index, fiber);
    let worker = &shared.workers[index];
    match result {
        CoroutineResult::Yield(Suspend::Idle) => {
            slot.transition(Running, Pooled);
            if shared.fibers.release(fiber) {
                // Workers went to sleep with jobs queued that only a fiber like this one could
                // run (possibly pinned to them): get them up.
                shared.wake_all();
            }
        }
        CoroutineResult::Yield(Suspend::Wait(node, counter)) => {
            // Copied before the publication: once published, the node may be woken and gone.
            // SAFETY: the node is on the parked fiber's stack, untouched until it is woken.
            let timing = unsafe { (*node.as_ptr()).timing };
            // SAFETY: the node is on the parked fiber's stack, which stays untouched until the
            // wake protocol pushes the fiber to a ready queue; the counter outlives the wait
            // (the waiter borrows it). A timed wait counts as one that wakes by itself.
            let parked = publish_wait(shared, worker, fiber, timing.stamp != 0, || unsafe {
                counter.as_ref().publish(node.as_ptr())
            });
            let target = Target::Counter {
                counter: counter.as_ptr(),
                node: node.as_ptr(),
            };
            shared.arm_timer(parked, fiber, timing, target);
        }
        CoroutineResult::Yield(Suspend::Park(node)) => {
            // SAFETY: as for `Wait`: copied before the publication.
            let (key, timing) = unsafe { ((*node.as_ptr()).key(), (*node.as_ptr()).timing) };
            // SAFETY: the node and its validator's data are on the parked fiber's stack, which
            // stays untouched until the unpark protocol pushes the fiber to a ready queue.
            let parked = publish_wait(shared, worker, fiber, true, || unsafe {
                crate::park::publish(node.as_ptr())
            });
            let node = node.as_ptr();
            shared.arm_timer(parked, fiber, timing, Target::Park { key, node });
        }
        CoroutineResult::Yield(Suspend::ParkGroup(group, nodes, n)) => {
            // SAFETY: as for `Park`; the timer of a group is on its first node.
            let (key, timing) = unsafe { ((*nodes.as_ptr()).key(), (*nodes.as_ptr()).timing) };
            // SAFETY: the group and its nodes are on the parked fiber's stack (as for `Park`).
            let parked = publish_wait(shared, worker, fiber, true, || unsafe {
                crate::park::publish_group(group.as_ptr(), nodes.as_ptr(), n)
            });
            let node = nodes.as_ptr();
            shared.arm_timer(parked, fiber, timing, Target::Park { key, node });
        }
        CoroutineResult::Yield(Suspend::Yield) => {
            slot.transition(Running, Ready);
            if worker.yielded.push(fiber).is_err() {
                fatal("yield queue overflow");
            }
        }
        CoroutineResult::Return(()) => fatal("a fiber returned while the system runs"),
    }
}

/// Post-switch publication of a wait (a counter's or a primitive's, `on_sync`): counts the fiber
/// parked here, then `publish`es; if the wait is already over, the fiber goes straight back to
/// this worker's ready queue. Returns whether it parked.
fn publish_wait(
    shared: &Shared,
    worker: &Worker,
    fiber: u32,
    on_sync: bool,
    publish: impl FnOnce() -> bool,
) -> bool {
    use super::FiberState::*;
    let slot = shared.fibers.slot(fiber);
    slot.transition(Running, Waiting);
    worker
        .parked_here
        .fetch_add(1, crate::shim::Ordering::SeqCst);
    if publish() {
        // The window in which a waker may un-count the fiber before it is counted.
        fault::inject(fault::Site::AfterPublish);
        shared.fiber_parked(on_sync);
        true
    } else {
        slot.transition(Waiting, Ready);
        worker.push_ready(fiber);
        worker
            .parked_here
            .fetch_sub(1, crate::shim::Ordering::SeqCst);
        false
    }
}
