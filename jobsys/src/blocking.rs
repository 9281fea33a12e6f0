//! The blocking lane: a few threads outside the workers that run blocking calls (a file read,
//! an OS wait) for fibers, so that no worker thread ever blocks in one.
//!
//! [`Ctx::blocking`] puts a request record on the calling fiber's stack — the closure, a slot
//! for its result and a [`Counter`] held once — links it into the lane's queue and parks the
//! fiber on the counter. A lane thread takes the record, runs the closure (catching a panic),
//! stores the outcome and subtracts the hold, which wakes the fiber like any finished job; the
//! fiber then returns the value or re-raises the panic. The fiber waits until the subtraction,
//! so the closure may borrow its stack, and the queue is intrusive: it allocates nothing per
//! call and holds at most one record per fiber (a fiber waits on one call at a time).
//!
//! The wait is counted with those that end by themselves (`Timing::external`): a pool whose
//! every fiber waits on the lane is not deadlocked. While a call is in flight the system is
//! not drained (`JobSystem` drop waits for it) and no stall is reported. The threads are
//! spawned at build, which returns once they all run, and joined when the system drops.

use crate::Counter;
use crate::fiber::Ctx;
use crate::shim::thread::{JoinHandle, Thread};
use crate::shim::{AtomicUsize, Ordering, SpinLock, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

/// The type-erased head of a request: the queue link and the function that runs it.
#[repr(C)]
struct Request {
    next: UnsafeCell<*const Request>,
    /// Runs the call whose head this is, stores its outcome and releases the waiter.
    run: unsafe fn(*const Request),
}

/// One call: the head first (`repr(C)`), so a pointer to the head is a pointer to the call.
#[repr(C)]
struct Call<F, R> {
    head: Request,
    /// Held once until the call has finished and stored its outcome.
    done: Counter,
    f: UnsafeCell<Option<F>>,
    out: UnsafeCell<Option<std::thread::Result<R>>>,
}

/// Runs the call behind `head` on a lane thread.
///
/// # Safety
/// `head` is the head of a live `Call<F, R>` whose fiber waits on its `done` counter; this is
/// the only run of it.
unsafe fn run_call<F: FnOnce() -> R, R>(head: *const Request) {
    let call = head.cast::<Call<F, R>>();
    // SAFETY: the caller's contract: the call is alive (its fiber waits on `done`, which is
    // still held) and nobody else touches `f` or `out` until `done` is released below.
    let f = unsafe { (*call).f.with_mut(|f| (*f).take()) };
    let out = catch_unwind(AssertUnwindSafe(f.expect("a blocking call ran twice")));
    // SAFETY: as above; the fiber reads `out` only after the release below.
    unsafe { (*call).out.with_mut(|o| *o = Some(out)) };
    // SAFETY: as above. Releasing the hold is the last touch of the call: `Counter::sub` does
    // not touch the counter after subtracting, and the fiber may free the call at once.
    unsafe { (*call).done.sub(1) };
}

/// The lane's queue and idle threads, under one lock.
struct Queue {
    head: *const Request,
    tail: *const Request,
    /// Each lane thread's handle while it sleeps waiting for work (`None`: running, or
    /// already claimed by a submitter).
    idle: Box<[Option<Thread>]>,
    /// Set at shutdown: threads leave once the queue is empty.
    exit: bool,
}

/// What the lane threads share with the system.
struct LaneState {
    queue: SpinLock<Queue>,
    /// Calls submitted and not finished: the system is not drained while any is.
    in_flight: AtomicUsize,
    /// Lane threads that have started (entered [`serve`]).
    started: AtomicUsize,
}

// SAFETY: the request pointers in the queue point at calls whose fibers wait for them; they are
// only followed by the lane thread that takes them (see `run_call`), and `F: Send, R: Send`
// (checked by `Ctx::blocking`) makes running and returning across threads sound.
unsafe impl Send for LaneState {}
// SAFETY: as above; the queue is only touched under its lock.
unsafe impl Sync for LaneState {}

/// The blocking lane of one system (see the module docs).
pub(crate) struct Lane {
    state: Arc<LaneState>,
    threads: usize,
    handles: SpinLock<Vec<JoinHandle>>,
}

impl Lane {
    /// Spawns `threads` lane threads (none: calls run inline on the worker).
    pub(crate) fn new(threads: usize) -> Result<Self, (usize, std::io::Error)> {
        let state = Arc::new(LaneState {
            queue: SpinLock::new(Queue {
                head: core::ptr::null(),
                tail: core::ptr::null(),
                idle: (0..threads).map(|_| None).collect(),
                exit: false,
            }),
            in_flight: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
        });
        let lane = Self {
            state,
            threads,
            handles: SpinLock::new(Vec::with_capacity(threads)),
        };
        for i in 0..threads {
            let state = lane.state.clone();
            let builder = std::thread::Builder::new().name(format!("jobsys-blocking-{i}"));
            match crate::shim::thread::spawn(builder, move || serve(&state, i)) {
                Ok(h) => lane.handles.lock().push(h),
                // Dropping the lane joins the threads already started.
                Err(e) => return Err((i, e)),
            }
        }
        // A thread's start-up (the runtime names it, sets up its signal stack: heap
        // allocations) happens before `serve`: waiting here keeps it inside `build`, out of
        // the caller's steady state, as for the workers.
        while lane.state.started.load(Ordering::Acquire) != threads {
            crate::shim::thread::yield_now();
        }
        Ok(lane)
    }

    /// How many lane threads there are.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Whether a call is in flight.
    pub(crate) fn busy(&self) -> bool {
        self.state.in_flight.load(Ordering::SeqCst) != 0
    }

    /// Links `head` into the queue and wakes an idle lane thread, if any (a busy one takes it
    /// when it finishes).
    ///
    /// # Safety
    /// `head` is the head of a live call whose fiber waits on its `done` counter until it is
    /// released; the call is in no queue.
    unsafe fn submit(&self, head: *const Request) {
        let state = &*self.state;
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        let wake = {
            let mut q = state.queue.lock();
            // SAFETY: the caller's contract: `head` is alive and ours until a lane thread takes
            // it; the previous tail is linked and alive (its fiber waits) — both under the lock.
            unsafe { (*head).next.with_mut(|n| *n = core::ptr::null()) };
            if q.tail.is_null() {
                q.head = head;
            } else {
                // SAFETY: as above.
                unsafe { (*q.tail).next.with_mut(|n| *n = head) };
            }
            q.tail = head;
            q.idle.iter_mut().find_map(Option::take)
        };
        if let Some(t) = wake {
            crate::shim::thread::unpark(&t);
        }
    }

    /// Lets the lane threads finish the queue and leave, and joins them (idempotent).
    pub(crate) fn shutdown(&self) {
        let sleepers: Vec<Thread> = {
            let mut q = self.state.queue.lock();
            q.exit = true;
            q.idle.iter_mut().filter_map(Option::take).collect()
        };
        for t in &sleepers {
            crate::shim::thread::unpark(t);
        }
        let handles = core::mem::take(&mut *self.handles.lock());
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A lane thread's loop: take a request, run it; with none, sleep until a submitter or the
/// shutdown wakes this thread.
fn serve(state: &LaneState, me: usize) {
    state.started.fetch_add(1, Ordering::Release);
    loop {
        let next = {
            let mut q = state.queue.lock();
            let head = q.head;
            if head.is_null() {
                if q.exit {
                    return;
                }
                if q.idle[me].is_none() {
                    q.idle[me] = Some(crate::shim::thread::current());
                }
                None
            } else {
                // SAFETY: a queued request is alive until it is run (its fiber waits); under
                // the lock.
                q.head = unsafe { (*head).next.with(|n| *n) };
                if q.head.is_null() {
                    q.tail = core::ptr::null();
                }
                // A spurious wake may leave this thread marked idle: it is not.
                q.idle[me] = None;
                Some(head)
            }
        };
        match next {
            // SAFETY: taken out of the queue by this thread alone; alive as its fiber waits.
            Some(head) => unsafe {
                ((*head).run)(head);
                // After the release: the drain goes on until this, so the system outlives
                // every waker the release started.
                state.in_flight.fetch_sub(1, Ordering::SeqCst);
            },
            // Parks spuriously too: the loop looks again.
            None => crate::shim::thread::park(),
        }
    }
}

impl Ctx {
    /// Runs `f` on one of the system's blocking-lane threads and parks this fiber until it
    /// returns; returns its value, or re-raises its panic here. Meanwhile this worker runs
    /// other jobs: a file read, an OS wait, a call into a blocking library never blocks a
    /// worker. `f` may borrow this job's stack: the fiber waits for it to finish, whatever
    /// happens.
    ///
    /// The lane has [`Builder::blocking_threads`](crate::Builder::blocking_threads) threads
    /// (default [`DEFAULT_BLOCKING_THREADS`](crate::Builder::DEFAULT_BLOCKING_THREADS)),
    /// spawned at build and joined when the system drops; calls beyond that many wait their
    /// turn in FIFO order. With zero threads `f` runs inline on this worker, blocking it.
    /// Each call costs two thread hand-offs (a wake of a lane thread if one sleeps, and the
    /// fiber's wake) and allocates nothing: the request lives on this fiber's stack.
    ///
    /// To signal a [`Counter`] or an [`Event`](crate::sync::Event) when the call is done, do
    /// it after `blocking` returns, in the same job (spawn that job where the signal belongs).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let jobs = jobsys::JobSystem::builder().workers(1).blocking_threads(1).build()?;
    /// let (tx, rx) = mpsc::channel();
    /// let got = jobs.run(|ctx| {
    ///     // One worker: the job that sends runs while the blocking call waits for it.
    ///     let (got, ()) = ctx.join(|c| c.blocking(move || rx.recv().unwrap()), |_| tx.send(7).unwrap());
    ///     got
    /// });
    /// assert_eq!(got, 7);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Panics
    /// Re-raises a panic of `f`. In debug builds, panics if a no-suspend region is open on this
    /// fiber (before `f` is handed over). Aborts the process if called while this thread is
    /// panicking, as waits do.
    pub fn blocking<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        crate::fiber::check_no_suspend("Ctx::blocking");
        let lane = &self.shared().lane;
        if lane.threads() == 0 {
            return f();
        }
        let call = Call::<F, R> {
            head: Request {
                next: UnsafeCell::new(core::ptr::null()),
                run: run_call::<F, R>,
            },
            done: Counter::with_value(1),
            f: UnsafeCell::new(Some(f)),
            out: UnsafeCell::new(None),
        };
        let head = (&raw const call).cast::<Request>();
        // SAFETY: `call` stays in this frame until `done` is released: the wait below never
        // unwinds (`wait_external`) and returns only once the lane thread subtracted the hold,
        // its last touch of the call. `F: Send, R: Send` let it run and return on that thread.
        unsafe { lane.submit(head) };
        self.wait_external(call.done.core(), 0);
        // SAFETY: the lane thread stored the outcome before releasing `done` (whose wake
        // orders it before this read) and touches the call no more.
        let out = unsafe { call.out.with_mut(|o| (*o).take()) };
        match out.expect("a blocking call finished without an outcome") {
            Ok(r) => r,
            Err(payload) => resume_unwind(payload),
        }
    }
}
