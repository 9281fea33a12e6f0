//! Futures over jobsys waits: a counter reaching a target, a detached job's handle, and the
//! core that `sync::Event::wait_async` parks with (see `bridge/mod.rs` for the protocol).

use super::{arm, replace_waker, settle};
use crate::Counter;
use crate::counter::{CounterCore, WaitNode};
use crate::park::ParkNode;
use crate::sync::Validate;
use crate::task::JobHandle;
use crate::waitlist::Waiter;
use core::fmt;
use core::future::{Future, IntoFuture};
use core::marker::PhantomPinned;
use core::pin::Pin;
use core::task::{Context, Poll};

/// An async waiter's node on a counter's list, and whether it is linked.
struct CounterAwait {
    node: WaitNode,
    linked: bool,
    _pinned: PhantomPinned,
}

impl CounterAwait {
    fn new(target: u32) -> Self {
        Self {
            node: WaitNode::new(target, Waiter::task()),
            linked: false,
            _pinned: PhantomPinned,
        }
    }

    /// Ready once `counter` is at or below the node's target; else (re)publishes the node with
    /// `cx`'s waker.
    ///
    /// # Safety
    /// `self` is pinned, and `counter` is the same counter on every call and outlives the
    /// node's last [`cancel`](Self::cancel) (or the `Ready` this returns).
    unsafe fn poll(&mut self, counter: &CounterCore, cx: &mut Context<'_>) -> Poll<()> {
        let target = self.node.target;
        loop {
            if counter.is_done(target) {
                self.cancel(counter);
                return Poll::Ready(());
            }
            let node = &raw mut self.node;
            if self.linked {
                // Cloned here and the spare dropped below, both outside the bucket lock (see
                // `replace_waker`).
                let mut spare = Some(cx.waker().clone());
                let still = crate::counter::with_linked(counter, node, |_, n| {
                    let new = spare.take().expect("once");
                    // SAFETY: under the bucket lock while linked, the node's waker is ours.
                    spare = Some(unsafe { replace_waker(&(*n).waiter, new) });
                });
                drop(spare);
                if still {
                    return Poll::Pending; // the decrement that reaches the target wakes us
                }
                settle(&self.node.waiter);
                self.linked = false;
                continue; // woken (maybe spuriously, see counter/README.md): look again
            }
            // SAFETY: not linked: ours.
            unsafe { arm(&self.node.waiter, cx.waker()) };
            // SAFETY: the node is pinned in `self` and stays until woken or cancelled (the
            // caller contract and `Drop`); `counter` outlives it.
            if unsafe { counter.publish(node) } {
                self.linked = true;
                return Poll::Pending;
            }
        }
    }

    /// Takes the node off the list (a dropped or finished future); if a decrement unlinked it
    /// first, waits for that waker's last touch.
    fn cancel(&mut self, counter: &CounterCore) {
        if self.linked {
            let node = &raw mut self.node;
            if !crate::counter::with_linked(counter, node, |list, n| {
                list.unlink(n);
            }) {
                settle(&self.node.waiter);
            }
            self.linked = false;
        }
    }
}

/// A future that is ready once a [`Counter`] is at or below a target (see
/// [`Counter::wait_async`]). Dropping it before it is ready withdraws its wait.
#[must_use = "futures do nothing unless awaited"]
pub struct CounterWait<'a> {
    counter: &'a Counter,
    wait: CounterAwait,
}

impl fmt::Debug for CounterWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterWait")
            .field("counter", &self.counter)
            .field("target", &self.wait.node.target)
            .finish()
    }
}

// SAFETY: the node's raw pointers are only dereferenced under the wait list's protocol (its
// bucket lock, or after `done`); the counter is `Sync`.
unsafe impl Send for CounterWait<'_> {}
// SAFETY: `&CounterWait` reaches nothing (every method takes `Pin<&mut Self>`).
unsafe impl Sync for CounterWait<'_> {}

impl Future for CounterWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: we never move out of the pinned future; the node stays where it is.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: pinned; the counter is borrowed for the future's life.
        unsafe { this.wait.poll(this.counter.core(), cx) }
    }
}

impl Drop for CounterWait<'_> {
    fn drop(&mut self) {
        self.wait.cancel(self.counter.core());
    }
}

impl Counter {
    /// A future that is ready once the counter is at or below `target`: await a batch of jobs
    /// (or any count) from async code running anywhere — another runtime's task, a plain
    /// thread's executor, or [`Ctx::block_on`](crate::Ctx::block_on).
    ///
    /// The future registers its waker on the counter like a parked fiber (no allocation; the
    /// wait node lives inside the future) and re-checks the count under the same lock as the
    /// decrement, so a decrement racing the registration is never lost. Dropping the future
    /// withdraws the wait.
    ///
    /// ```
    /// use jobsys::{Counter, JobDecl};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let done = Counter::new();
    /// fn work(_: &jobsys::Ctx, _: *mut ()) {}
    /// let decls: Vec<JobDecl> = (0..8).map(|_| JobDecl::new(&jobsys::JobMeta::DEFAULT, work, std::ptr::null_mut())).collect();
    /// // SAFETY: the declarations and the counter outlive the jobs (the wait below).
    /// unsafe { jobs.handle().run_jobs(&decls, &done) };
    /// // Any executor: here a minimal one on this thread.
    /// jobsys_block_on(done.wait_async(0));
    /// assert_eq!(done.value(), 0);
    /// # fn jobsys_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn wait_async(&self, target: u32) -> CounterWait<'_> {
        CounterWait {
            counter: self,
            wait: CounterAwait::new(target),
        }
    }
}

/// A [`JobHandle`] as a future (its [`IntoFuture`]): ready with the job's value once it
/// finished; re-raises the job's panic in the awaiting task. Dropping it before it is ready
/// drops the handle (the job runs on its own, as for a dropped handle).
#[must_use = "futures do nothing unless awaited"]
pub struct JobHandleFuture<T> {
    wait: CounterAwait,
    handle: Option<JobHandle<T>>,
}

impl<T> fmt::Debug for JobHandleFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandleFuture")
            .field("handle", &self.handle)
            .finish()
    }
}

// SAFETY: as `CounterWait`; the handle is `Send` when `T` is.
unsafe impl<T: Send> Send for JobHandleFuture<T> {}
// SAFETY: `&JobHandleFuture` reaches only `Debug` (an atomic load).
unsafe impl<T: Send> Sync for JobHandleFuture<T> {}

impl<T> Future for JobHandleFuture<T> {
    type Output = T;

    /// # Panics
    /// Re-raises the job's panic; panics if polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // SAFETY: we never move the node; `handle` is moved out only once the wait is over.
        let this = unsafe { self.get_unchecked_mut() };
        let handle = this
            .handle
            .as_ref()
            .expect("JobHandleFuture polled after it returned Ready");
        // SAFETY: pinned; the record (and its `done` counter) lives while the handle does,
        // and the handle is dropped only after the wait is cancelled (`Drop`) or over.
        match unsafe { this.wait.poll(handle.done_core(), cx) } {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(this.handle.take().expect("checked").take_finished()),
        }
    }
}

impl<T> Drop for JobHandleFuture<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            self.wait.cancel(h.done_core());
        }
    }
}

impl<T> IntoFuture for JobHandle<T> {
    type Output = T;
    type IntoFuture = JobHandleFuture<T>;

    /// Awaits the job from async code running anywhere (see [`JobHandleFuture`]).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let h = jobs.handle().spawn_detached(|_| 6 * 7);
    /// // Inside a job, through `block_on`; any executor works the same way.
    /// let v = jobs.run(|ctx| ctx.block_on(async { h.await }));
    /// assert_eq!(v, 42);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    fn into_future(self) -> JobHandleFuture<T> {
        JobHandleFuture {
            wait: CounterAwait::new(0),
            handle: Some(self),
        }
    }
}

/// An async waiter's node in the park table (`park/`), for the `jobsys::sync` futures.
pub(crate) struct ParkAwait {
    node: ParkNode,
    linked: bool,
    _pinned: PhantomPinned,
}

impl ParkAwait {
    pub(crate) fn new(key: usize, validate: Validate, data: *const ()) -> Self {
        Self {
            node: ParkNode::new(key, validate, data, Waiter::task()),
            linked: false,
            _pinned: PhantomPinned,
        }
    }

    /// Whether the node is (or was, until an unparker took it) linked.
    pub(crate) fn linked(&self) -> bool {
        self.linked
    }

    /// While [`linked`](Self::linked): updates the waker and returns `None`, or, if an
    /// unparker took the node, waits for its last touch and returns its token.
    pub(crate) fn poll_linked(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        debug_assert!(self.linked);
        let node = &raw mut self.node;
        // Cloned here and the spare dropped below, both outside the bucket lock (see
        // `replace_waker`).
        let mut spare = Some(cx.waker().clone());
        let still = crate::park::with_linked(self.node.key(), node, |_, n| {
            let new = spare.take().expect("once");
            // SAFETY: under the bucket lock while linked, the node's waker is ours to change.
            spare = Some(unsafe { replace_waker(crate::park::own_waiter(&*n), new) });
        });
        drop(spare);
        if still {
            return None;
        }
        settle(crate::park::own_waiter(&self.node));
        self.linked = false;
        Some(self.node.token())
    }

    /// Not linked: publishes the node with `cx`'s waker if the validation holds (under the
    /// bucket lock); returns whether it is linked now.
    ///
    /// # Safety
    /// `self` is pinned, and the validator's data outlives the node's last
    /// [`cancel`](Self::cancel).
    pub(crate) unsafe fn publish(&mut self, cx: &mut Context<'_>) -> bool {
        debug_assert!(!self.linked);
        // SAFETY: not linked: ours.
        unsafe { arm(crate::park::own_waiter(&self.node), cx.waker()) };
        // SAFETY: pinned in `self` until woken or cancelled; the validator's data is alive
        // (caller contract).
        self.linked = unsafe { crate::park::publish(&raw mut self.node) };
        self.linked
    }

    /// Takes the node off the list; `Some(token)` if an unparker had taken it first (after
    /// its last touch), `None` if it was withdrawn or not linked.
    pub(crate) fn cancel(&mut self) -> Option<usize> {
        if !self.linked {
            return None;
        }
        self.linked = false;
        let node = &raw mut self.node;
        if crate::park::with_linked(self.node.key(), node, |list, n| {
            list.unlink(n);
        }) {
            return None;
        }
        settle(crate::park::own_waiter(&self.node));
        Some(self.node.token())
    }
}
