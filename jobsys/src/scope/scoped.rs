//! `Ctx::scope` and `Scope::spawn`.

use super::arena::{Arena, BlockPool};
use crate::cancel::{CancelNode, Cancelled, cancelled_payload, is_cancelled_payload};
use crate::counter::CounterCore;
use crate::fiber::Ctx;
use crate::job::{JobHeader, JobMeta, JobRef};
use crate::panic::{PanicSlot, catch, drop_payload};
use crate::sched::Hint;
use crate::shim::SpinLock;
use crate::task::Slot;
use crate::task::dispose;
use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;
use std::panic::resume_unwind;

/// What a scope's jobs share: its counter, its first panic, its record arena.
///
/// `#[repr(C)]` with `counter` first: a spawn record's header points at `counter` (its owner
/// counter), and `execute_spawn` finds the whole state from that pointer instead of keeping a
/// second pointer in every record.
#[repr(C)]
pub(crate) struct ScopeState {
    /// First field (see above).
    counter: CounterCore,
    panic: PanicSlot,
    arena: SpinLock<Arena>,
    /// Raised by `Scope::cancel`; links to the enclosing scope's node.
    cancel: CancelNode,
}

// `execute_spawn` casts a record's owner pointer to its `ScopeState`.
const _: () = assert!(core::mem::offset_of!(ScopeState, counter) == 0);

/// A scope of jobs that may borrow anything that outlives `'env`; handed by reference to the
/// scope's body and to each of its jobs.
///
/// Dereferences to the [`Ctx`] of the job (or body) that holds it, so `s.join(..)`,
/// `s.wait_for_counter(..)` and nested `s.scope(..)` work directly.
///
/// Borrows must outlive the scope:
///
/// ```compile_fail
/// # jobsys::JobSystem::builder().workers(1).build().unwrap().run(|ctx| {
/// ctx.scope(|s| {
///     let local = 5;
///     s.spawn(|_| println!("{local}")); // `local` dies before the scope's jobs are done
/// });
/// # });
/// ```
///
/// and whatever a job captures must be `Send`:
///
/// ```compile_fail
/// # jobsys::JobSystem::builder().workers(1).build().unwrap().run(|ctx| {
/// let rc = std::rc::Rc::new(1);
/// ctx.scope(|s| {
///     s.spawn(move |_| drop(rc));
/// });
/// # });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    state: &'scope ScopeState,
    /// The body's lock-free fast path (`None` in the scope's jobs, which share `state`).
    body: Option<&'scope BodyLocal>,
    ctx: NonNull<Ctx>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl Deref for Scope<'_, '_> {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        // SAFETY: a `Scope` value is only handed out by reference for the duration of the body
        // or job call that owns `ctx`.
        unsafe { self.ctx.as_ref() }
    }
}

/// Bytes of spawn records a scope body keeps on its own stack before it uses pooled blocks:
/// small scopes (a fork of a dozen jobs) touch no shared allocator. Picked; tune with data.
const INLINE_RECORDS: usize = 1024;

/// Counter units a scope body adds at once and hands to its spawns one by one.
const CREDIT_CHUNK: u32 = 64;

#[repr(C, align(64))]
struct InlineRecords([core::mem::MaybeUninit<u8>; INLINE_RECORDS]);

/// What only the scope's body uses — it runs on one fiber, and `Scope` is neither `Send` nor
/// `Sync`, so no other job can reach it: spawn records bump-allocated from the body's own
/// stack frame without the arena lock, and counter units added `CREDIT_CHUNK` at a time
/// instead of one RMW per spawn.
struct BodyLocal {
    records: core::cell::UnsafeCell<InlineRecords>,
    /// The region being bump-allocated: null for the inline buffer, else a chunk of
    /// `REFILL` bytes taken from the scope's arena.
    region: core::cell::Cell<*mut u8>,
    used: core::cell::Cell<usize>,
    /// Size of the current region.
    cap: core::cell::Cell<usize>,
    /// Units added to the counter and not yet handed to a spawn.
    credits: core::cell::Cell<u32>,
}

/// Bytes a scope body takes from its arena at once when its inline buffer is full: one arena
/// lock per chunk instead of one per spawn. Picked; records larger than a quarter of it go to
/// the arena directly.
const REFILL: usize = 8 * 1024;

impl BodyLocal {
    fn new() -> Self {
        Self {
            records: core::cell::UnsafeCell::new(InlineRecords(
                [core::mem::MaybeUninit::uninit(); INLINE_RECORDS],
            )),
            region: core::cell::Cell::new(core::ptr::null_mut()),
            used: core::cell::Cell::new(0),
            cap: core::cell::Cell::new(INLINE_RECORDS),
            credits: core::cell::Cell::new(0),
        }
    }

    /// Room for one record of `layout`: from the current region, else from a fresh chunk of
    /// the scope's arena (small records), else `None` (the caller asks the arena itself).
    #[inline]
    fn alloc(&self, layout: Layout, state: &ScopeState, pool: &BlockPool) -> Option<NonNull<u8>> {
        if layout.align() > 64 {
            return None;
        }
        if let Some(p) = self.bump(layout) {
            return Some(p);
        }
        if layout.size() > REFILL / 4 {
            return None;
        }
        let chunk = state.arena.lock().alloc(
            pool,
            Layout::from_size_align(REFILL, 64).expect("refill layout"),
        );
        self.region.set(chunk.as_ptr());
        self.used.set(0);
        self.cap.set(REFILL);
        self.bump(layout)
    }

    #[inline]
    fn bump(&self, layout: Layout) -> Option<NonNull<u8>> {
        let start = self.used.get().next_multiple_of(layout.align());
        let end = start.checked_add(layout.size())?;
        if end > self.cap.get() {
            return None;
        }
        self.used.set(end);
        let base = match self.region.get() {
            p if p.is_null() => self.records.get().cast::<u8>(),
            p => p,
        };
        // SAFETY: `start..end` is inside the current region (the inline buffer or an arena
        // chunk alive until the scope ends), handed out once; both are aligned to 64 >=
        // `layout.align()`.
        Some(unsafe { NonNull::new_unchecked(base.add(start)) })
    }

    /// Accounts one more job on `counter` (adding a chunk of units when none is left).
    #[inline]
    fn take_credit(&self, counter: &CounterCore) {
        let left = self.credits.get();
        if left == 0 {
            counter.add(CREDIT_CHUNK);
            self.credits.set(CREDIT_CHUNK - 1);
        } else {
            self.credits.set(left - 1);
        }
    }

    /// Gives back the units no spawn used, so the counter counts exactly the jobs in flight.
    fn return_credits(&self, counter: &CounterCore) {
        let left = self.credits.replace(0);
        if left > 0 {
            counter.sub(left);
        }
    }
}

/// A spawned job's record, allocated in the scope's arena, with its handle's value slot.
///
/// No pointer to the scope's state: the header's owner counter is the state's first field
/// (see [`ScopeState`]), so the record is one word smaller.
#[repr(C)]
struct SpawnJob<F, T> {
    header: JobHeader,
    slot: Slot<T>,
    f: ManuallyDrop<F>,
}

// A spawn of a one-word closure without a value (W2b's shape): header, value slot, closure.
#[cfg(not(loom))]
const _: () = assert!(size_of::<SpawnJob<usize, ()>>() == 80);

/// The handle of a job spawned in a scope (see [`Scope::spawn`]): [`join`](Self::join) it for
/// the job's value, or drop it — the scope waits for the job either way.
///
/// The value slot lives in the job's record in the scope's pooled arena, so a handle costs no
/// allocation; it cannot outlive the scope (`'scope`).
///
/// # Panics in the job
/// [`join`](Self::join) re-raises the job's panic, and then the scope does *not* re-raise it
/// again: the joiner received it. A panic whose handle was dropped without joining (before or
/// after the job finished) goes to the scope, which re-raises the first such panic once all
/// its jobs finished, as for a job spawned without a handle.
///
/// ```
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let data = [1u64, 2, 3, 4, 5, 6];
/// let total = jobs.run(|ctx| {
///     ctx.scope(|s| {
///         let (left, right) = data.split_at(3);
///         let a = s.spawn(move |_| left.iter().sum::<u64>());
///         let b = s.spawn(move |_| right.iter().sum::<u64>());
///         a.join(s) + b.join(s)
///     })
/// });
/// assert_eq!(total, 21);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
pub struct ScopedJobHandle<'scope, T> {
    slot: &'scope Slot<T>,
    state: &'scope ScopeState,
    /// The job's record (alive until the scope ends), for `join`'s run-it-here fast path.
    header: NonNull<JobHeader>,
}

// SAFETY: the handle owns the job's result (a `T`) once produced; the slot's handshake makes
// every access to it exclusive; `ScopeState` is shared by the scope's jobs on any worker.
unsafe impl<T: Send> Send for ScopedJobHandle<'_, T> {}
// SAFETY: through `&ScopedJobHandle` only `is_finished` (an atomic load) is reachable.
unsafe impl<T: Send> Sync for ScopedJobHandle<'_, T> {}

impl<T> core::fmt::Debug for ScopedJobHandle<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScopedJobHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> ScopedJobHandle<'_, T> {
    /// Whether the job has finished (its value or panic waits for [`join`](Self::join)).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// jobs.run(|ctx| {
    ///     ctx.scope(|s| {
    ///         let h = s.spawn(|_| 2);
    ///         while !h.is_finished() {
    ///             s.yield_now(); // lets this worker run it
    ///         }
    ///         assert_eq!(h.join(s), 2);
    ///     })
    /// });
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }

    /// Parks this fiber until the job finished and returns its value, or re-raises its panic
    /// (which the scope then does not re-raise). Any `Ctx` of the system will do: the scope
    /// itself (it dereferences to one) or a job's.
    ///
    /// If nobody started the job yet and it is still the newest job on this worker's ring (a
    /// spawn joined at once), it runs right here, on this fiber, without parking.
    ///
    /// # Panics
    /// If the job was cancelled before it started (its scope, or an enclosing one, was
    /// [cancelled](Scope::cancel)): its closure was dropped unrun and there is no value. Use
    /// [`try_join`](Self::try_join) where cancellation is expected.
    pub fn join(self, ctx: &Ctx) -> T {
        match self.try_join(ctx) {
            Ok(v) => v,
            Err(Cancelled) => panic!(
                "ScopedJobHandle::join: the job was cancelled before it started (its scope was \
                 cancelled), so it has no value; use try_join to handle cancellation"
            ),
        }
    }

    /// As [`join`](Self::join), but a job cancelled before it started (its closure dropped
    /// unrun, see [`Scope::cancel`]) gives `Err(Cancelled)` instead of a panic. A job that
    /// started always finishes: cancellation never interrupts it (it may poll
    /// [`Scope::is_cancelled`] and return early). The job's own panic is still re-raised.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// jobs.run(|ctx| {
    ///     ctx.scope(|s| {
    ///         let before = s.spawn(|_| 1);
    ///         assert_eq!(before.try_join(s), Ok(1)); // ran: joined before the cancel
    ///         let after = s.spawn(|_| 2);
    ///         s.cancel(); // `after` has not started (one worker, and we did not wait)
    ///         assert_eq!(after.try_join(s), Err(jobsys::Cancelled));
    ///     })
    /// });
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn try_join(self, ctx: &Ctx) -> Result<T, Cancelled> {
        if !self.slot.is_finished() {
            self.run_here_if_unstarted(ctx);
        }
        // A wait may unwind once the job finished (a no-suspend region left open, debug
        // builds): the handle is still owned then, and its drop disposes of the result.
        ctx.wait_core(self.slot.done(), 0);
        let this = ManuallyDrop::new(self);
        // SAFETY: `done` is zero; taken once (the handle is consumed, its drop skipped).
        match unsafe { this.slot.take() } {
            Ok(v) => Ok(v),
            Err(payload) if is_cancelled_payload(&payload) => Err(Cancelled),
            Err(payload) => resume_unwind(payload),
        }
    }
}

impl<T> ScopedJobHandle<'_, T> {
    /// Takes the job back from the top of this worker's ring and runs it here, if it is there
    /// and this fiber can host it (as `Ctx::join` does with its `b`).
    fn run_here_if_unstarted(&self, ctx: &Ctx) {
        // SAFETY: the record lives until the scope ends, after this handle; only its
        // never-written `meta` is read here, and it is executed only if popped below (by us,
        // once: a popped ref is exclusively ours).
        let job = unsafe { JobRef::new(self.header) };
        let meta = job.meta();
        if !ctx.class().fits(meta.stack) || !ctx.has_headroom(meta.stack) {
            return;
        }
        let ring = ctx.worker().ring(meta.priority, meta.stack);
        match ring.pop() {
            Some(top) if top == job => {
                ctx.run(job);
                ctx.flush_decrements();
            }
            Some(other) if ring.push(other).is_err() => {
                crate::panic::fatal("ring overflow re-pushing a just-popped job")
            }
            _ => {}
        }
    }
}

impl<T> Drop for ScopedJobHandle<'_, T> {
    fn drop(&mut self) {
        // SAFETY: once, here (`join` skips the drop). The record lives until the scope ends,
        // after this handle (`'scope`), so the job signalling `done` late touches live memory.
        if let Some(result) = unsafe { self.slot.abandon() } {
            dispose(result, |p| {
                if !is_cancelled_payload(&p) {
                    self.state.panic.record(p)
                }
            });
        }
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Cancels this scope and every scope nested in it (idempotent; any job of the scope, or
    /// its body, may call it).
    ///
    /// - A job of these scopes that has not started yet — spawned before or after the cancel
    ///   — never runs: when a worker takes it, its closure is dropped unrun, and its handle's
    ///   [`try_join`](ScopedJobHandle::try_join) gives `Err(Cancelled)` (while
    ///   [`join`](ScopedJobHandle::join) panics saying so).
    /// - A job that started runs to its end; it may poll [`is_cancelled`](Self::is_cancelled)
    ///   (or [`Ctx::is_cancelled`]) and return early.
    /// - The scope still waits for all its jobs, re-raises a job's panic, and returns its
    ///   body's value: cancellation is not an error of the scope.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// let ran = AtomicU32::new(0);
    /// jobs.run(|ctx| {
    ///     ctx.scope(|s| {
    ///         for _ in 0..10 {
    ///             s.spawn(|_| ran.fetch_add(1, Ordering::Relaxed));
    ///         }
    ///         s.cancel(); // one worker, and the body has not waited: none has started
    ///     })
    /// });
    /// assert_eq!(ran.load(Ordering::Relaxed), 0);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn cancel(&self) {
        self.state.cancel.cancel();
    }

    /// Whether this scope or one enclosing it was [cancelled](Self::cancel).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// jobs.run(|ctx| {
    ///     ctx.scope(|s| {
    ///         let worker = s.spawn(|s| {
    ///             let mut steps = 0u64;
    ///             while !s.is_cancelled() {
    ///                 steps += 1;
    ///                 s.yield_now();
    ///             }
    ///             steps
    ///         });
    ///         s.cancel();
    ///         assert!(s.is_cancelled());
    ///         // Either it never started (`Err(Cancelled)`) or it saw the flag and stopped.
    ///         let _steps: Result<u64, jobsys::Cancelled> = worker.try_join(s);
    ///     })
    /// });
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.state.cancel.is_cancelled()
    }

    /// Spawns `f` as a job of this scope. It may run on any worker, possibly before `spawn`
    /// returns; the scope waits for it. Returns a [`ScopedJobHandle`] for the job's value; it
    /// may simply be ignored (dropped), and then a panic of the job reaches the scope.
    pub fn spawn<F, T>(&self, f: F) -> ScopedJobHandle<'scope, T>
    where
        F: FnOnce(&Scope<'scope, 'env>) -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_with(&JobMeta::DEFAULT, f)
    }

    /// [`spawn`](Self::spawn) with options chosen at run time: priority, stack class,
    /// affinity, placement hint and name (see [`JobOptions`](crate::JobOptions)).
    ///
    /// ```
    /// use jobsys::{Affinity, JobOptions};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let main_thread = jobs.run(|ctx| {
    ///     ctx.scope(|s| {
    ///         let opts = JobOptions::new("present").affinity(Affinity::Worker(0));
    ///         s.spawn_opts(opts, |s| s.worker_index()).join(s)
    ///     })
    /// });
    /// assert_eq!(main_thread, 0);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// If the options pin the job to a worker that does not exist.
    #[track_caller]
    pub fn spawn_opts<F, T>(&self, opts: crate::JobOptions, f: F) -> ScopedJobHandle<'scope, T>
    where
        F: FnOnce(&Scope<'scope, 'env>) -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_hinted(opts.hint, opts.meta(), f)
    }

    /// Spawns `f` with metadata: a name for the profiler, a stack class, a priority, and an
    /// affinity — `Affinity::Worker(0)` runs it on the main thread only.
    ///
    /// # Panics
    /// If `meta` pins the job to a worker that does not exist.
    pub fn spawn_with<F, T>(&self, meta: &'static JobMeta, f: F) -> ScopedJobHandle<'scope, T>
    where
        F: FnOnce(&Scope<'scope, 'env>) -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_hinted(Hint::Lifo, meta, f)
    }

    /// Spawns `f` with metadata and a placement [`Hint`]: `Inline` runs it on this fiber
    /// before returning, `Lifo` (what [`spawn`](Self::spawn) does) pushes it on this worker's
    /// ring, `Fifo` queues it behind the work already in the shared injector. Whatever the
    /// hint, the job belongs to the scope: its panic reaches the scope, and the scope waits
    /// for it.
    ///
    /// # Panics
    /// If `meta` pins the job to a worker that does not exist.
    pub fn spawn_hinted<F, T>(
        &self,
        hint: Hint,
        meta: &'static JobMeta,
        f: F,
    ) -> ScopedJobHandle<'scope, T>
    where
        F: FnOnce(&Scope<'scope, 'env>) -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let shared = self.shared();
        shared.check_job(meta);
        let layout = Layout::new::<SpawnJob<F, T>>();
        let record = self
            .body
            .and_then(|b| b.alloc(layout, self.state, &shared.blocks))
            .unwrap_or_else(|| self.state.arena.lock().alloc(&shared.blocks, layout))
            .cast::<SpawnJob<F, T>>();
        // SAFETY: fresh, suitably aligned arena memory that lives until the scope ends, which is
        // after this job ran: `Ctx::scope` catches its body's panics and then waits for the
        // counter with `wait_core`, which never unwinds before the count is zero.
        unsafe {
            record.as_ptr().write(SpawnJob {
                header: JobHeader::new(execute_spawn::<F, T>, &self.state.counter, meta),
                slot: Slot::new(),
                f: ManuallyDrop::new(f),
            })
        };
        match self.body {
            Some(body) => body.take_credit(&self.state.counter),
            None => self.state.counter.add(1),
        }
        // SAFETY: the header is the first field of a `#[repr(C)]` record.
        let job = unsafe { JobRef::new(record.cast()) };
        // SAFETY: the record lives until the scope ends, which outlives `'scope`.
        let slot = unsafe { &(*record.as_ptr()).slot };
        let handle = ScopedJobHandle {
            slot,
            state: self.state,
            header: record.cast(),
        };
        self.submit(job, hint);
        handle
    }
}

/// # Safety
/// `header` heads a `SpawnJob<F, T>` that has not run.
unsafe fn execute_spawn<'scope, 'env: 'scope, F, T>(header: NonNull<JobHeader>, ctx: &Ctx)
where
    F: FnOnce(&Scope<'scope, 'env>) -> T + Send + 'scope,
{
    let record = header.cast::<SpawnJob<F, T>>().as_ptr();
    // SAFETY: `header` heads a live, unexecuted record (caller's contract).
    let owner = unsafe { JobRef::new(header) }.owner();
    // The record's owner is the `counter` of the `ScopeState` that spawned it (`spawn_hinted`
    // writes it, and nothing rewrites a spawn record's owner), the first field of that
    // `#[repr(C)]` state, so the pointer is the state's.
    // SAFETY: the record is alive and ours (runs once): `f` is taken exactly once, here; the
    // scope state (see above) outlives its jobs.
    let (f, state) = unsafe {
        (
            ManuallyDrop::take(&mut (*record).f),
            &*owner.cast::<ScopeState>(),
        )
    };
    let result = if state.cancel.is_cancelled() {
        // Cancelled before it started: the closure is dropped unrun (a panic in its drop goes
        // to the scope), and the handle learns it was cancelled.
        if let Err(payload) = catch(move || drop(f)) {
            state.panic.record(payload);
        }
        Err(cancelled_payload())
    } else {
        let scope = Scope {
            state,
            body: None,
            ctx: NonNull::from(ctx),
            _scope: PhantomData,
            _env: PhantomData,
        };
        // The job's code sees its scope's cancellation through `Ctx::is_cancelled`, and
        // scopes it opens link to this one.
        let outer = ctx.cancel.replace(&state.cancel);
        let result = catch(|| f(&scope));
        ctx.cancel.set(outer);
        result
    };
    // SAFETY: the job's side of its slot, once; the record lives until the scope ends.
    match unsafe { (*record).slot.finish(result) } {
        // The handle is alive: it owns the result (and its panic) from `signal` on.
        // SAFETY: as above.
        None => unsafe { (*record).slot.signal() },
        // Nobody will join: a panic goes to the scope, a value is dropped here.
        Some(result) => dispose(result, |p| {
            if !is_cancelled_payload(&p) {
                state.panic.record(p)
            }
        }),
    }
    ctx.complete(&state.counter);
}

/// Returns a scope's records to the block pool when dropped, after the scope's wait.
struct ReleaseArena<'a> {
    arena: &'a SpinLock<Arena>,
    pool: &'a BlockPool,
}

impl Drop for ReleaseArena<'_> {
    fn drop(&mut self) {
        self.arena.lock().release(self.pool);
    }
}

impl Ctx {
    /// Runs `f` with a [`Scope`] whose jobs may borrow from the enclosing stack frame, and
    /// returns once every job spawned in it has finished.
    ///
    /// The wait parks this fiber, never the worker. If the body or any job panicked, the first
    /// job panic (or else the body's) is re-raised here after all jobs finished.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// let mut data = vec![1u64; 1000];
    /// jobs.run(|ctx| {
    ///     ctx.scope(|s| {
    ///         for chunk in data.chunks_mut(100) {
    ///             s.spawn(move |_| chunk.iter_mut().for_each(|x| *x *= 2));
    ///         }
    ///     });
    /// });
    /// assert!(data.iter().all(|&x| x == 2));
    /// ```
    pub fn scope<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        // A scope's wait must not happen inside a no-suspend region: say so now, before the
        // body spawns anything (the wait itself never unwinds while jobs run; see `wait_core`).
        crate::fiber::check_no_suspend("Ctx::scope");
        let state = ScopeState {
            counter: CounterCore::new(0),
            panic: PanicSlot::new(),
            arena: SpinLock::new(Arena::new()),
            // The enclosing scope (if this fiber runs one's body or job) outlives this one.
            cancel: CancelNode::new(self.cancel.get()),
        };
        let body = BodyLocal::new();
        let scope = Scope {
            state: &state,
            body: Some(&body),
            ctx: NonNull::from(self),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let outer = self.cancel.replace(&state.cancel);
        let result = catch(|| f(&scope));
        self.cancel.set(outer);
        body.return_credits(&state.counter);
        // The records go back to the pool once every job is done — also when the wait raises
        // its after-the-wait report (a no-suspend region opened inside the body and left open).
        let release = ReleaseArena {
            arena: &state.arena,
            pool: &self.shared().blocks,
        };
        self.wait_core(&state.counter, 0);
        drop(release);
        if let Some(payload) = state.panic.take() {
            // A job's panic wins; the body's payload, if any, goes first (see `drop_payload`).
            if let Err(body) = result {
                drop_payload(body);
            }
            resume_unwind(payload);
        }
        match result {
            Ok(r) => r,
            Err(payload) => resume_unwind(payload),
        }
    }
}
