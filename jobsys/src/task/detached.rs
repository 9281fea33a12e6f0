//! Detached `'static` jobs and their owned [`JobHandle`].

use super::JobOptions;
use super::slot::{Slot, dispose, orphan_panic};
use crate::fiber::Ctx;
use crate::job::{JobHeader, JobMeta, JobRef};
use crate::panic::catch;
use crate::sched::Hint;
use crate::system::Handle;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use std::panic::resume_unwind;

/// A detached job's record: one heap allocation, freed by whichever of the job and its handle
/// is done with it last (see [`Slot`]).
#[repr(C)]
struct Detached<F, T> {
    header: JobHeader,
    slot: Slot<T>,
    f: ManuallyDrop<F>,
}

/// The owned handle of a detached job (see [`Ctx::spawn_detached`]): join it for the job's
/// value, ask whether it finished, or drop it to let the job run on its own.
///
/// `Send` (when `T` is): join it from another job or from a thread outside the pool.
///
/// # Memory
/// Each detached job's record (its closure, this handle's value slot and its bookkeeping) is
/// one heap allocation, made at spawn and freed when the job has finished *and* its handle
/// is gone (joined or dropped): memory is bounded by the jobs in flight plus the finished
/// jobs whose handles are still held. For allocation-free fan-out use [`Scope::spawn`],
/// whose handles live in the scope's pooled records.
///
/// # Panics in the job
/// [`join`](Self::join) re-raises the job's panic. If the handle was dropped without joining,
/// the panic is reported by the panic hook when the job panics (the default hook prints it to
/// stderr) and is otherwise dropped, as for a `std::thread` whose `JoinHandle` was dropped.
///
/// [`Scope::spawn`]: crate::Scope::spawn
pub struct JobHandle<T> {
    slot: NonNull<Slot<T>>,
    record: NonNull<JobHeader>,
    /// Frees the record (of its concrete closure type).
    free: unsafe fn(NonNull<JobHeader>),
    _owns: PhantomData<T>,
}

// SAFETY: the handle owns the job's result (a `T`) once it is produced; the slot's handshake
// makes every access to it exclusive, whichever thread the handle is on.
unsafe impl<T: Send> Send for JobHandle<T> {}
// SAFETY: through `&JobHandle` only `is_finished` (an atomic load) is reachable.
unsafe impl<T: Send> Sync for JobHandle<T> {}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JobHandle<T> {
    fn slot(&self) -> &Slot<T> {
        // SAFETY: the record lives until the handle frees it (it holds the handle's share).
        unsafe { self.slot.as_ref() }
    }

    /// Whether the job has finished (its value or panic is waiting for [`join`](Self::join)).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// jobs.run(|ctx| {
    ///     let h = ctx.spawn_detached(|_| 1);
    ///     while !h.is_finished() {
    ///         ctx.yield_now(); // lets this worker run it
    ///     }
    ///     assert_eq!(h.join(ctx), 1);
    /// });
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.slot().is_finished()
    }

    /// Parks this fiber until the job finished and returns its value, or re-raises its panic.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let sum = jobs.run(|ctx| {
    ///     let h = ctx.spawn_detached(|_| (1..=10u32).sum::<u32>());
    ///     h.join(ctx)
    /// });
    /// assert_eq!(sum, 55);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn join(self, ctx: &Ctx) -> T {
        ctx.wait_core(self.slot().done(), 0);
        self.take()
    }

    /// Blocks the calling thread (one outside the pool) until the job finished and returns its
    /// value, or re-raises its panic.
    ///
    /// The thread that built the system is worker 0's thread, and worker 0 runs jobs only
    /// inside [`JobSystem::run`](crate::JobSystem::run): called there outside `run`, this
    /// waits forever if only worker 0 can run the job (a one-worker system, or a job pinned to
    /// `Affinity::Worker(0)`). There, join inside `run` instead:
    /// `jobs.run(|ctx| handle.join(ctx))`.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let handle = jobs.handle();
    /// let v = std::thread::spawn(move || handle.spawn_detached(|_| 7).join_blocking())
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(v, 7);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// On a worker thread of any jobsys system (it would block the worker): jobs use
    /// [`join`](Self::join).
    pub fn join_blocking(self) -> T {
        if !self.slot().is_finished() {
            if crate::worker::on_worker_thread() {
                crate::worker::refuse_blocking_on_worker(
                    "JobHandle::join_blocking",
                    "JobHandle::join",
                );
            }
            crate::counter::block_thread_until(self.slot().done(), 0, crate::deadline::NEVER);
        }
        self.take()
    }

    /// The counter the job brings to zero as its last touch (the async bridge awaits it).
    pub(crate) fn done_core(&self) -> &crate::counter::CounterCore {
        self.slot().done()
    }

    /// The result, once [`done_core`](Self::done_core) was seen at zero (the async bridge);
    /// re-raises the job's panic.
    pub(crate) fn take_finished(self) -> T {
        self.take()
    }

    /// The result once `done` is zero; frees the record.
    fn take(self) -> T {
        let this = ManuallyDrop::new(self);
        // SAFETY: `done` is zero (both joins waited for it): the job no longer touches the
        // record, which is the handle's alone; taken once (the handle is consumed).
        let result = unsafe { this.slot().take() };
        // SAFETY: as above; the record is not touched after this.
        unsafe { (this.free)(this.record) };
        match result {
            Ok(v) => v,
            Err(payload) => resume_unwind(payload),
        }
    }
}

impl<T> Drop for JobHandle<T> {
    fn drop(&mut self) {
        // SAFETY: once, here (joins consume the handle without dropping it).
        if let Some(result) = unsafe { self.slot().abandon() } {
            // The job finished; it may still be about to signal `done`, its last touch.
            while !self.slot().is_finished() {
                crate::shim::spin_loop();
            }
            dispose(result, orphan_panic);
            // SAFETY: the job is done with the record and the handle is going.
            unsafe { (self.free)(self.record) };
        }
    }
}

/// # Safety
/// `record` heads a `Detached<F, T>` from `Box::into_raw`, nobody touches it afterwards, and
/// its closure was taken.
unsafe fn free_detached<F, T>(record: NonNull<JobHeader>) {
    // SAFETY: caller contract; `f` is `ManuallyDrop` (already taken), the slot's result was
    // taken, so dropping the box drops nothing of the user's twice.
    drop(unsafe { Box::from_raw(record.cast::<Detached<F, T>>().as_ptr()) });
}

/// # Safety
/// `header` heads a `Detached<F, T>` that has not run.
unsafe fn execute_detached<F, T>(header: NonNull<JobHeader>, ctx: &Ctx)
where
    F: FnOnce(&Ctx) -> T + Send + 'static,
    T: Send + 'static,
{
    let record = header.cast::<Detached<F, T>>().as_ptr();
    // SAFETY: the record is alive (its handle's share or ours keeps it) and runs once: `f` is
    // taken exactly once, here.
    let f = unsafe { ManuallyDrop::take(&mut (*record).f) };
    let result = catch(|| f(ctx));
    // SAFETY: the job's side of the slot, once.
    match unsafe { (*record).slot.finish(result) } {
        // SAFETY: the handle is alive and frees the record after `signal`, our last touch.
        None => unsafe { (*record).slot.signal() },
        Some(result) => {
            dispose(result, orphan_panic);
            // SAFETY: the handle is gone: the record is ours, and nothing touches it after.
            unsafe { free_detached::<F, T>(header) };
        }
    }
}

/// Allocates a detached record for `f` and returns its unpublished ref and its handle.
fn detach<F, T>(meta: &'static JobMeta, f: F) -> (JobRef, JobHandle<T>)
where
    F: FnOnce(&Ctx) -> T + Send + 'static,
    T: Send + 'static,
{
    let record = Box::into_raw(Box::new(Detached {
        header: JobHeader::new(execute_detached::<F, T>, core::ptr::null(), meta),
        slot: Slot::new(),
        f: ManuallyDrop::new(f),
    }));
    // SAFETY: `Box::into_raw` is non-null; the header is the first field of a `#[repr(C)]`
    // record that stays alive until both the job and the handle are done with it.
    let (header, slot) = unsafe {
        (
            NonNull::new_unchecked(record.cast::<JobHeader>()),
            NonNull::new_unchecked(&raw mut (*record).slot),
        )
    };
    let handle = JobHandle {
        slot,
        record: header,
        free: free_detached::<F, T>,
        _owns: PhantomData,
    };
    // SAFETY: as above; the job runs once wherever it is published (`F: Send`).
    (unsafe { JobRef::new(header) }, handle)
}

impl Ctx {
    /// Spawns `f` as a detached job: it owns what it captures (`'static`), outlives the
    /// calling job, and returns a [`JobHandle`] to join for its value (or to drop).
    ///
    /// Detached jobs are the tool for work that spans frames (streaming, compression) without
    /// wrapping the whole game loop in one scope. Each costs one heap allocation, freed when
    /// it finished and its handle is gone (see [`JobHandle`]). Shutdown loses none: dropping
    /// the [`JobSystem`](crate::JobSystem) runs every queued job, detached ones included,
    /// before it returns. Submit Low-priority background work with
    /// [`spawn_detached_opts`](Self::spawn_detached_opts): it gets a guaranteed share at
    /// frame openings (see [`Priority::Low`](crate::Priority::Low)).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let done = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    /// jobs.run(|ctx| {
    ///     for _ in 0..4 {
    ///         let done = done.clone();
    ///         // Handle dropped: the job runs on its own.
    ///         ctx.spawn_detached(move |_| done.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    ///     }
    /// });
    /// drop(jobs); // runs whatever is still queued
    /// assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 4);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn spawn_detached<F, T>(&self, f: F) -> JobHandle<T>
    where
        F: FnOnce(&Ctx) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_detached_meta(&JobMeta::DEFAULT, Hint::Lifo, f)
    }

    /// [`spawn_detached`](Self::spawn_detached) with options chosen at run time: priority,
    /// stack class, affinity, hint and name (see [`JobOptions`]).
    ///
    /// ```
    /// use jobsys::{JobOptions, Priority};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let v = jobs.run(|ctx| {
    ///     ctx.spawn_detached_opts(JobOptions::new("bake").priority(Priority::Low), |_| 3).join(ctx)
    /// });
    /// assert_eq!(v, 3);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// If the options pin the job to a worker that does not exist.
    #[track_caller]
    pub fn spawn_detached_opts<F, T>(&self, opts: JobOptions, f: F) -> JobHandle<T>
    where
        F: FnOnce(&Ctx) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_detached_meta(opts.meta(), opts.hint, f)
    }

    /// [`spawn_detached`](Self::spawn_detached) with static metadata (see
    /// [`job_meta!`](crate::job_meta)) and a placement [`Hint`].
    ///
    /// ```
    /// use jobsys::{Hint, Priority, job_meta};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let meta = job_meta!("compress", priority(Priority::Low));
    /// let n = jobs.run(|ctx| ctx.spawn_detached_meta(meta, Hint::Fifo, |_| 10).join(ctx));
    /// assert_eq!(n, 10);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// If `meta` pins the job to a worker that does not exist.
    pub fn spawn_detached_meta<F, T>(
        &self,
        meta: &'static JobMeta,
        hint: Hint,
        f: F,
    ) -> JobHandle<T>
    where
        F: FnOnce(&Ctx) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared().check_job(meta);
        let (job, handle) = detach(meta, f);
        self.submit(job, hint);
        handle
    }
}

impl Handle {
    /// Spawns `f` as a detached job from any thread (see [`Ctx::spawn_detached`]); it goes to
    /// the shared injector of its priority (or its worker's inbox, if pinned).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let h = jobs.handle().spawn_detached(|ctx| ctx.worker_count());
    /// assert_eq!(jobs.run(|ctx| h.join(ctx)), 2);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// If the system is shutting down (its `JobSystem` is being dropped).
    pub fn spawn_detached<F, T>(&self, f: F) -> JobHandle<T>
    where
        F: FnOnce(&Ctx) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_detached_meta(&JobMeta::DEFAULT, f)
    }

    /// [`spawn_detached`](Self::spawn_detached) with options chosen at run time (see
    /// [`JobOptions`]; the hint is ignored: a foreign submission always goes to the injector).
    ///
    /// ```
    /// use jobsys::{JobOptions, Priority};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let h = jobs.handle().spawn_detached_opts(JobOptions::from(Priority::Low), |_| "read");
    /// assert_eq!(h.join_blocking(), "read"); // worker 1 runs it
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// As [`spawn_detached`](Self::spawn_detached); also if the options pin the job to a
    /// worker that does not exist.
    #[track_caller]
    pub fn spawn_detached_opts<F, T>(&self, opts: JobOptions, f: F) -> JobHandle<T>
    where
        F: FnOnce(&Ctx) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_detached_meta(opts.meta(), f)
    }

    /// [`spawn_detached`](Self::spawn_detached) with static metadata.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let h = jobs.handle().spawn_detached_meta(jobsys::job_meta!("decode"), |_| 5);
    /// assert_eq!(h.join_blocking(), 5);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// As [`spawn_detached_opts`](Self::spawn_detached_opts).
    pub fn spawn_detached_meta<F, T>(&self, meta: &'static JobMeta, f: F) -> JobHandle<T>
    where
        F: FnOnce(&Ctx) -> T + Send + 'static,
        T: Send + 'static,
    {
        let mut handle = None;
        self.submit_foreign_with(meta, |shared| {
            let (job, h) = detach(meta, f);
            shared.submit_foreign(job);
            handle = Some(h);
        });
        handle.expect("submitted")
    }
}
