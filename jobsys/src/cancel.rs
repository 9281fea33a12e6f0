//! Cancellation: the flag a cancelled scope raises, its chain to enclosing scopes, and the
//! user-owned [`CancelToken`].
//!
//! A scope's [`CancelNode`] links to the node that was current where the scope opened (the
//! enclosing scope's body or job), so cancelling a scope cancels every scope nested inside it.
//! The node current on a fiber is kept in its [`Ctx`](crate::Ctx) (set by the scope body and
//! by each scoped job around its closure), never in a thread-local.

use crate::shim::{AtomicBool, Ordering};
use core::fmt;

/// The error of a job or lazy value that was cancelled before it started: its closure was
/// dropped without running.
///
/// Returned by [`ScopedJobHandle::try_join`](crate::ScopedJobHandle::try_join) and by
/// [`Deferred::cancellable`](crate::promise::Deferred::cancellable) values.
///
/// ```
/// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
/// jobs.run(|ctx| {
///     ctx.scope(|s| {
///         s.cancel();
///         let h = s.spawn(|_| 1);
///         assert_eq!(h.try_join(s), Err(jobsys::Cancelled));
///     })
/// });
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancelled before it started")
    }
}

impl std::error::Error for Cancelled {}

/// A cancellation flag with a link to the enclosing one.
///
/// Checking walks the chain of enclosing nodes, one cache line each, which in a deep tree of
/// scopes is most of a job's start-up; so the outermost node of each chain (its *root*) also
/// keeps `any`, raised by a cancellation anywhere in its tree, and a check in a tree where
/// nothing was ever cancelled reads only that.
pub(crate) struct CancelNode {
    flag: AtomicBool,
    /// Root nodes only: some node of this tree was cancelled (never lowered).
    any: AtomicBool,
    /// The enclosing node (null at the root). It outlives this one: a scope opens and ends
    /// inside the body or job that owns the enclosing node (established by `Ctx::scope`).
    parent: *const CancelNode,
    /// The outermost node of the chain (null when this is it), which outlives this one as
    /// `parent` does.
    root: *const CancelNode,
}

// SAFETY: the flag is atomic; `parent` points at a node that outlives this one (see the field)
// and is only read through `&`.
unsafe impl Send for CancelNode {}
// SAFETY: as above.
unsafe impl Sync for CancelNode {}

impl CancelNode {
    pub(crate) fn new(parent: *const CancelNode) -> Self {
        let root = if parent.is_null() {
            core::ptr::null()
        } else {
            // SAFETY: the parent is alive (it outlives this node, see `parent`).
            let p = unsafe { &*parent };
            if p.root.is_null() { parent } else { p.root }
        };
        Self {
            flag: AtomicBool::new(false),
            any: AtomicBool::new(false),
            parent,
            root,
        }
    }

    /// The outermost node of this chain.
    #[inline]
    fn root(&self) -> &CancelNode {
        if self.root.is_null() {
            self
        } else {
            // SAFETY: the root outlives every node of its chain (see `root`).
            unsafe { &*self.root }
        }
    }

    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        // After the flag: a check that sees `any` (acquire) then sees the flag.
        self.root().any.store(true, Ordering::Release);
    }

    /// Whether this node or an enclosing one was cancelled.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        // A cancellation that happened before this check raised `any` before it ended, so
        // this load sees it; one racing with the check may be missed either way.
        if !self.root().any.load(Ordering::Acquire) {
            return false;
        }
        self.walk()
    }

    /// Whether this node or an enclosing one was cancelled, looking at each.
    #[cold]
    fn walk(&self) -> bool {
        let mut node: *const CancelNode = self;
        while !node.is_null() {
            // SAFETY: `self` is alive, and each parent outlives its child (see `parent`).
            let n = unsafe { &*node };
            if n.flag.load(Ordering::Acquire) {
                return true;
            }
            node = n.parent;
        }
        false
    }
}

/// A cancellation flag owned by the caller, for lazy values (see
/// [`Deferred::cancellable`](crate::promise::Deferred::cancellable)): work checks it when it
/// would start and is dropped unrun if it was raised; running work may poll it.
///
/// ```
/// use jobsys::promise::{Deferred, lazy};
/// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
/// let token = jobsys::CancelToken::new();
/// let work = lazy(|_| 5).cancellable(&token);
/// token.cancel();
/// assert_eq!(jobs.run(|ctx| work.get(ctx)), Err(jobsys::Cancelled));
/// # Ok::<(), jobsys::BuildError>(())
/// ```
pub struct CancelToken {
    flag: AtomicBool,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self {
            flag: AtomicBool::new(false),
        }
    }

    /// Raises the flag (idempotent): work that has not started yet will not start.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// The mark a job cancelled before it started leaves in its handle's slot. Private, so that
/// no job's own panic can carry it: a job that panics with the public [`Cancelled`] value
/// (`panic_any(Cancelled)`) started, and its panic is re-raised like any other.
struct CancelledMark;

/// The panic payload a job cancelled before it started leaves in its handle's slot (a
/// zero-sized box: no allocation).
pub(crate) fn cancelled_payload() -> crate::panic::Payload {
    Box::new(CancelledMark)
}

/// Whether `payload` is the mark of a job cancelled before it started.
pub(crate) fn is_cancelled_payload(payload: &crate::panic::Payload) -> bool {
    payload.is::<CancelledMark>()
}
