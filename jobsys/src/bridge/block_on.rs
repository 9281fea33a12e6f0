//! `Ctx::block_on`: a future polled on the job's fiber, which parks between polls.

use super::cell::{GENS, WakeCell};
use crate::fiber::Ctx;
use crate::shim::Ordering;
use crate::worker::Shared;
use core::future::Future;
use core::mem::ManuallyDrop;
use core::pin::pin;
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::sync::Arc;

/// A fiber waker's data pointer: the cell's address, the generation modulo `GENS` in its low
/// bits (the cell is aligned to `GENS`).
fn encode(cell: &WakeCell, generation: u64) -> *const () {
    (cell.key() | (generation % GENS) as usize) as *const ()
}

/// The cell and generation tag of a waker's data pointer.
///
/// # Safety
/// `data` came from [`encode`], and the system owning the cell is alive (the waker holds a
/// count of its `Arc`, or the `block_on` that made it runs).
unsafe fn decode<'a>(data: *const ()) -> (&'a WakeCell, u64) {
    let bits = data as usize;
    let mask = GENS as usize - 1;
    // SAFETY: caller contract: the cell lies in the pool of a live system.
    (
        unsafe { &*((bits & !mask) as *const WakeCell) },
        (bits & mask) as u64,
    )
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// # Safety
/// `data` is a fiber waker's (see [`decode`]).
unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: caller contract.
    let (cell, _) = unsafe { decode(data) };
    // SAFETY: `shared` was written from the system's `Arc` before any waker existed (the waker
    // reached this thread after, with a happens-before); the new waker owns this count.
    unsafe { Arc::increment_strong_count(cell.shared.load(Ordering::Relaxed).cast_const()) };
    RawWaker::new(data, &VTABLE)
}

/// # Safety
/// `data` is an owned fiber waker's (from [`clone`]).
unsafe fn wake(data: *const ()) {
    // SAFETY: caller contract.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

/// # Safety
/// `data` is a fiber waker's.
unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: caller contract.
    let (cell, tag) = unsafe { decode(data) };
    cell.wake(tag);
}

/// # Safety
/// `data` is an owned fiber waker's (from [`clone`]), dropped once.
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: caller contract.
    let (cell, _) = unsafe { decode(data) };
    // SAFETY: the count `clone` took for this waker; after it the cell may be freed.
    unsafe { Arc::decrement_strong_count(cell.shared.load(Ordering::Relaxed).cast_const()) };
}

/// Ends the `block_on` however it leaves (its future's output, or a panic of its `poll`).
struct End<'a>(&'a WakeCell, u64, u64);

impl Drop for End<'_> {
    fn drop(&mut self) {
        self.0.end(self.1, self.2);
    }
}

impl Ctx {
    /// Polls `future` to completion on this job's fiber and returns its output. Between polls
    /// the *fiber* parks — the worker runs other jobs — until the future's `Waker` is woken.
    ///
    /// The bridge from async code into jobs: an asset loader's future, a platform SDK's
    /// request, an async channel. The waker may be woken from any thread: a worker, a plain
    /// thread, another runtime's reactor. It is allocation-free (it points at this fiber's
    /// slot in the pool, with the `block_on`'s generation) and may outlive the call and even
    /// the [`JobSystem`](crate::JobSystem): a late wake does nothing (at most it makes a later
    /// `block_on` of the same fiber poll its future once more). A clone of it keeps the
    /// system's memory (not its threads) alive until dropped.
    ///
    /// A wake that comes while the future is being polled is not lost: the fiber polls again
    /// instead of parking. The future runs on whatever fiber runs the job; it must not block the
    /// thread (use a `jobsys::sync` wait or `.await`).
    ///
    /// ```
    /// use std::future::Future;
    /// use std::pin::Pin;
    /// use std::sync::{Arc, Mutex};
    /// use std::task::{Context, Poll, Waker};
    ///
    /// /// A one-shot value that a plain thread fills in (an IO completion, say).
    /// #[derive(Default)]
    /// struct Shot(Mutex<(Option<u32>, Option<Waker>)>);
    /// struct Recv(Arc<Shot>);
    /// impl Future for Recv {
    ///     type Output = u32;
    ///     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
    ///         let mut s = self.0.0.lock().unwrap();
    ///         match s.0.take() {
    ///             Some(v) => Poll::Ready(v),
    ///             None => { s.1 = Some(cx.waker().clone()); Poll::Pending }
    ///         }
    ///     }
    /// }
    ///
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let shot = Arc::new(Shot::default());
    /// let io = {
    ///     let shot = shot.clone();
    ///     std::thread::spawn(move || {
    ///         let waker = { let mut s = shot.0.lock().unwrap(); s.0 = Some(7); s.1.take() };
    ///         if let Some(w) = waker { w.wake() }
    ///     })
    /// };
    /// let v = jobs.run(|ctx| ctx.block_on(Recv(shot.clone())) + ctx.block_on(async { 1 }));
    /// io.join().unwrap();
    /// assert_eq!(v, 8);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// A `block_on` inside a future that another `block_on` on this fiber polls (a job that
    /// the future's wait runs inline, or the future itself) works: the outer future is polled
    /// once more after it, which its contract allows. Prefer `.await` inside a future.
    ///
    /// # Panics
    /// Re-raises a panic of the future's `poll`. In debug builds, if a no-suspend region is
    /// open when the fiber would park. Aborts if the fiber
    /// would park while its thread is panicking, as the other waits do.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let shared: &Shared = self.shared();
        let cell = self.wake_cell();
        cell.shared
            .store(shared as *const Shared as *mut Shared, Ordering::Relaxed);
        let (generation, outer) = cell.begin();
        let _end = End(cell, generation, outer);
        // The borrowed waker holds no count (the system outlives this call); its clones do.
        // SAFETY: the data pointer is `encode`'s and the vtable's functions keep its contract.
        let waker = ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(encode(cell, generation), &VTABLE))
        });
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return v;
            }
            if cell.prepare_park(generation) {
                // SAFETY: the validator reads the cell, which lives in the pool as long as the
                // system, so on any thread until the park returns.
                unsafe {
                    self.park(
                        cell.key(),
                        WakeCell::validate,
                        (cell as *const WakeCell).cast(),
                        crate::deadline::NEVER,
                    )
                };
                cell.resume(generation);
            }
        }
    }
}
