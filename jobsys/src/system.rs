//! `JobSystem` (owned by the thread that built it) and `Handle` (for every other thread).

use crate::Builder;
use crate::counter::Counter;
use crate::fiber::Ctx;
use crate::job::{JobDecl, JobMeta, StackClass};
use crate::scope::StackJob;
use crate::shim::Ordering;
use crate::shim::thread::JoinHandle;
use crate::worker::{LoopMode, Shared, WorkerCore, main_loop};
use core::fmt;
use core::marker::PhantomData;
use std::panic::resume_unwind;
use std::sync::Arc;
use std::time::Duration;

/// A fixed pool of workers and pre-allocated fibers.
///
/// The thread that builds it is worker 0: it joins the pool inside [`run`](Self::run). The
/// system is therefore neither `Send` nor `Sync` — it stays on that thread, and jobs cannot own
/// or drop it (a job dropping its own system is a compile error). Other threads submit and wait
/// through a [`Handle`].
///
/// ```compile_fail
/// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
/// std::thread::spawn(move || drop(jobs)); // JobSystem is !Send
/// ```
///
/// Dropping it drains all queued work, waits for every parked fiber to finish, joins the
/// worker threads and ends the fibers (their stacks are unmapped once the last [`Handle`] is
/// gone too). If fibers are parked and nothing is left that could
/// wake them, it aborts with a report of what each fiber waits on rather than hang.
pub struct JobSystem {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle>,
    pinned_cores: Vec<Option<usize>>,
    /// Worker 0's owner-only state: this thread runs worker 0's loop (in `run` and the drop's
    /// drain), so it owns its core, kept across runs.
    core0: WorkerCore,
    _owner_thread: PhantomData<*mut ()>,
}

impl JobSystem {
    /// A [`Builder`] with the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(
        shared: Arc<Shared>,
        threads: Vec<JoinHandle>,
        pinned_cores: Vec<Option<usize>>,
    ) -> Self {
        Self {
            shared,
            threads,
            pinned_cores,
            core0: WorkerCore::new(0),
            _owner_thread: PhantomData,
        }
    }

    /// Number of workers, the calling thread included.
    pub fn worker_count(&self) -> usize {
        self.shared.workers.len()
    }

    /// Total fibers in the pool (both classes).
    pub fn fiber_count(&self) -> usize {
        self.shared.fibers.len()
    }

    /// How many workers are asleep right now (a diagnostic: it may change as soon as it is
    /// read). Between frames idle workers sleep; while a [`Ctx::frame`] is open none does.
    pub fn sleeping_workers(&self) -> usize {
        self.shared.sleeping_workers()
    }

    /// How many times a sleeping worker's watchdog found work that nobody had woken it for
    /// (a diagnostic). The sleep/wake protocol is designed, argued and model-checked so that
    /// this never happens; a non-zero value is a jobsys bug — a lost wake-up that the watchdog
    /// turned into a delay of up to ~40 ms instead of a hang. Please report it.
    pub fn lost_wakeups(&self) -> usize {
        self.shared.dorm.rescues.load(Ordering::Relaxed)
    }

    /// Copies the stats of the most recently completed frame into `out`; false if no frame
    /// completed yet (see [`Ctx::frame_stats`](crate::Ctx::frame_stats)).
    pub fn frame_stats(&self, out: &mut crate::FrameStats) -> bool {
        self.shared.frames.book.lock().latest(out)
    }

    /// For each worker, the core it was pinned to, or `None` if pinning was off or failed.
    pub fn pinned_cores(&self) -> &[Option<usize>] {
        &self.pinned_cores
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Makes the calling thread worker 0 and runs `f` as a job on it, returning its result.
    ///
    /// `f` runs on a fiber of worker 0 (it never moves to another thread, so it needs no
    /// `Send`), and may submit, wait, join and open scopes through its [`Ctx`]. Meanwhile the
    /// calling thread also runs other jobs. `run` returns once `f` has returned and worker 0
    /// has no queued, pinned or parked work left. A panic in `f` is re-raised here.
    ///
    /// # Panics
    /// If called from inside `run` (it is not reentrant: use the `Ctx` you already have).
    pub fn run<F, R>(&self, f: F) -> R
    where
        F: FnOnce(&Ctx) -> R,
    {
        let shared = &*self.shared;
        assert!(
            !shared.in_run.swap(true, Ordering::AcqRel),
            "JobSystem::run was called from inside run; use the Ctx you were given instead"
        );
        // The caller's no-suspend regions (a lock guard it holds around `run`) are its own,
        // not the root job's: set aside while this thread runs jobs, given back on the way out.
        struct Leave<'a>(&'a Shared, crate::fiber::SetAside);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                crate::fiber::restore_regions(self.1);
                self.0.in_run.store(false, Ordering::Release);
            }
        }
        let _leave = Leave(shared, crate::fiber::set_aside_regions());
        let root = StackJob::new(&JobMeta::ROOT, f);
        // SAFETY: `root` stays in this frame until its counter is zero (the loop below runs
        // until then); it is pinned to worker 0, which is this thread, so `F` needs no `Send`.
        shared.workers[0].pinned.push(unsafe { root.job_ref() });
        main_loop(shared, 0, &self.core0, LoopMode::Sleep, &|| {
            root.done().is_done(0) && shared.workers[0].is_quiet()
        });
        match root.take_result() {
            Ok(r) => r,
            Err(payload) => resume_unwind(payload),
        }
    }

    /// Running totals of worker `worker` since the system was built: jobs run, waits that
    /// parked, steals, time idle and asleep (see [`WorkerStats`](crate::WorkerStats) for what
    /// each counts). Cheap, always on, readable at any time; take two and subtract them for
    /// what happened in between.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// jobs.run(|ctx| {
    ///     ctx.scope(|s| {
    ///         for _ in 0..10 {
    ///             s.spawn(|_| ());
    ///         }
    ///     })
    /// });
    /// // The root job of `run` and the ten spawns, on whichever worker ran each.
    /// let total: u64 = (0..jobs.worker_count()).map(|w| jobs.worker_stats(w).jobs_run).sum();
    /// assert_eq!(total, 11);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// If `worker` is not below [`worker_count`](Self::worker_count).
    #[track_caller]
    pub fn worker_stats(&self, worker: usize) -> crate::WorkerStats {
        self.shared.worker_stats(worker)
    }

    /// Fibers out of the pool right now: running a job, parked in a wait, or ready to resume
    /// (a diagnostic: it may change as soon as it is read). At most
    /// [`fiber_count`](Self::fiber_count).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// assert_eq!(jobs.fibers_in_use(), 0);
    /// let inside = jobs.run(|ctx| ctx.handle().worker_count()); // runs on a fiber
    /// assert_eq!(inside, 1);
    /// assert_eq!(jobs.fibers_in_use(), 0); // back in the pool once `run` returns
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn fibers_in_use(&self) -> usize {
        self.shared.fibers_in_use()
    }
}

impl Drop for JobSystem {
    fn drop(&mut self) {
        let shared = &*self.shared;
        // Safe code cannot get here (the system is !Send and `run` borrows it), but unsafe code
        // can: draining from inside a job would run worker 0's loop on a fiber.
        if shared.in_run.load(Ordering::Acquire) {
            crate::panic::fatal(
                "a JobSystem was dropped inside one of its own jobs (JobSystem::run is still on the stack); drop it after run returns",
            );
        }
        if shared.workers[0]
            .thread
            .get()
            .is_some_and(|t| t.id() != std::thread::current().id())
        {
            crate::panic::fatal(
                "a JobSystem was dropped on a thread other than the one that built it (worker 0); drop it where it was built",
            );
        }
        shared.shutdown.store(true, Ordering::SeqCst);
        while shared.foreign_submitters.load(Ordering::SeqCst) != 0 {
            crate::shim::thread::yield_now();
        }
        // Worker 0 helps drain until nothing can happen any more, as a worker: a handle refuses
        // to block it meanwhile.
        shared.in_run.store(true, Ordering::Release);
        main_loop(shared, 0, &self.core0, LoopMode::NoSleep, &|| {
            shared.drained()
        });
        shared.in_run.store(false, Ordering::Release);
        shared.hooks.stopped(0, self.pinned_cores[0]);
        shared.exit.store(true, Ordering::SeqCst);
        shared.wake_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Drained: no blocking call is in flight, and no job is left to make one.
        shared.lane.shutdown();
        shared.fibers.shutdown();
    }
}

impl Shared {
    /// Shutdown's test on worker 0: true when no job is queued anywhere, every other worker
    /// sleeps after finding nothing, and no fiber is parked. Parked fibers with nothing left to
    /// wake them are a deadlock: report and abort.
    fn drained(&self) -> bool {
        // Each worker is read at a different moment; a worker seen asleep stays asleep unless
        // woken, and every wake bumps the epoch first. An unchanged epoch across the scan means
        // all of them were asleep together at its end.
        let epoch = self.dorm.epoch.load(Ordering::SeqCst);
        // Nothing any worker could run: no ready or yielded fiber, and no queued job that a
        // free fiber could host. Jobs may remain queued whose class has no free fiber (every
        // such fiber parked on work that cannot run): checked below.
        let idle = !self.has_work(0)
            && self.workers[1..].iter().all(|w| {
                w.bed.sleeping.load(Ordering::SeqCst)
                    && w.bed.settled.load(Ordering::SeqCst)
                    && !self.has_work(w.index)
            });
        // A blocking-lane call in flight will wake its fiber: not drained yet.
        if !idle
            || self.timers.armed()
            || self.lane.busy()
            || self.dorm.epoch.load(Ordering::SeqCst) != epoch
        {
            return false;
        }
        // One load per worker reads its parked fibers and the wakers in flight toward it
        // together. A waker in flight may have pushed a fiber that already ran and still count
        // it as parked (it un-counts it next): not a deadlock, and not drained either — the
        // waker still touches this system, which must not be freed before its last touch. So
        // the drain goes on until no waker is in flight; none can start after that, because
        // nothing is parked and nothing runs that could park.
        let mut parked = 0;
        for w in self.workers.iter() {
            let (here, in_flight) = w.parked_and_in_flight();
            if in_flight != 0 {
                return false;
            }
            parked += here;
        }
        let stuck = [StackClass::Small, StackClass::Large]
            .into_iter()
            .find(|&class| (0..self.workers.len()).any(|i| self.queued_for(i, class)));
        match (parked, stuck) {
            (0, None) => true,
            (_, None) => self.deadlock(
                "the system is dropping, no job is left to run, and fibers are still parked",
            ),
            // Queued jobs that no free fiber can host, and nothing running or able to wake
            // (new submissions are refused during the drop): they can never run.
            (_, Some(class)) => self.deadlock(&format!(
                "the system is dropping and {class:?} jobs are still queued, but every fiber \
                 that could run them is parked on work that cannot run"
            )),
        }
    }
}

impl fmt::Debug for JobSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSystem")
            .field("workers", &self.worker_count())
            .field("fibers", &self.fiber_count())
            .finish()
    }
}

/// Submit and wait from threads that are not workers (IO threads, tools, tests).
///
/// Cheap to clone; `Send + Sync`. Waiting through a handle blocks the calling OS thread, so
/// jobs must wait through their [`Ctx`] instead (a handle refuses to block a worker).
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// How many workers are asleep right now (a diagnostic; see
    /// [`JobSystem::sleeping_workers`]).
    pub fn sleeping_workers(&self) -> usize {
        self.shared.sleeping_workers()
    }

    /// Number of workers in the system.
    pub fn worker_count(&self) -> usize {
        self.shared.workers.len()
    }

    /// Submits a batch of raw declarations counted on `counter`, from any thread.
    ///
    /// # Safety
    /// As [`Ctx::run_jobs`].
    ///
    /// # Panics
    /// If the system is shutting down (its `JobSystem` is being dropped), or a declaration is
    /// pinned to a worker that does not exist.
    pub unsafe fn run_jobs(&self, decls: &[JobDecl], counter: &Counter) {
        if decls.is_empty() {
            return; // nothing to submit: not even a system shutting down refuses it
        }
        let shared = &*self.shared;
        let _submitting = ForeignSubmit::enter(shared);
        let check = |meta: &_| shared.check_job(meta);
        // SAFETY: forwarded caller contract.
        if let Some(job) = unsafe { crate::job::prepare_batch(decls, counter.core(), check) } {
            shared.submit_foreign(job);
        }
    }

    /// Blocks the calling thread until `counter` is at or below `target`.
    ///
    /// # Panics
    /// If called on a worker thread of any jobsys system (it would block the worker and
    /// every fiber on it): jobs wait with [`Ctx::wait_for_counter`].
    pub fn wait_for_counter(&self, counter: &Counter, target: u32) {
        self.block_on_counter(counter, target, crate::deadline::NEVER, "wait_for_counter");
    }

    /// [`wait_for_counter`](Self::wait_for_counter) for at most `timeout`: returns whether the
    /// count reached `target` (false: the deadline passed first; the jobs still run).
    ///
    /// # Panics
    /// As [`wait_for_counter`](Self::wait_for_counter).
    pub fn wait_for_counter_timeout(
        &self,
        counter: &Counter,
        target: u32,
        timeout: Duration,
    ) -> bool {
        self.block_on_counter(
            counter,
            target,
            crate::deadline::after(timeout),
            "wait_for_counter_timeout",
        )
    }

    /// Running totals of worker `worker` (see [`JobSystem::worker_stats`]).
    ///
    /// # Panics
    /// If `worker` is not below [`worker_count`](Self::worker_count).
    #[track_caller]
    pub fn worker_stats(&self, worker: usize) -> crate::WorkerStats {
        self.shared.worker_stats(worker)
    }

    fn block_on_counter(&self, counter: &Counter, target: u32, deadline: u64, what: &str) -> bool {
        if counter.is_done(target) {
            return true;
        }
        if crate::worker::on_worker_thread() {
            crate::worker::refuse_blocking_on_worker(
                &format!("Handle::{what}"),
                &format!("Ctx::{what}"),
            );
        }
        crate::counter::block_thread_until(counter.core(), target, deadline)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.worker_count())
            .finish()
    }
}

/// A submission from outside the pool in progress: counts this thread as a foreign submitter
/// until dropped (the system's drop waits for it to leave).
struct ForeignSubmit<'a>(&'a Shared);

impl<'a> ForeignSubmit<'a> {
    /// Enters, refusing (with a panic) a system that is shutting down.
    fn enter(shared: &'a Shared) -> Self {
        shared.foreign_submitters.fetch_add(1, Ordering::SeqCst);
        let entered = Self(shared);
        assert!(
            !shared.shutdown.load(Ordering::SeqCst),
            "jobs were submitted through a Handle after the JobSystem started shutting down; submit before dropping it"
        );
        entered
    }
}

impl Drop for ForeignSubmit<'_> {
    fn drop(&mut self) {
        self.0.foreign_submitters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handle {
    /// The prologue of a submission from outside the pool: counts this thread as a foreign
    /// submitter (the drop waits for it), refuses a system that is shutting down, checks
    /// `meta`, then calls `submit`.
    pub(crate) fn submit_foreign_with(&self, meta: &JobMeta, submit: impl FnOnce(&Shared)) {
        let shared = &*self.shared;
        let _submitting = ForeignSubmit::enter(shared);
        shared.check_job(meta);
        submit(shared);
    }
}
