//! The wait-list layer under the counters (`counter/`) and the fiber-aware primitives
//! (`park/`): process-wide tables of spin-locked intrusive lists hashed by address, whose nodes
//! live on the waiters' own stacks; the [`Waiter`] a node wakes; and the one path that blocks a
//! plain OS thread ([`block_thread`]). What a node waits for, and when it is woken, is the
//! business of the layer above (`counter/README.md`, the module docs of `park/`).
//!
//! # The list invariant
//! - A node is linked only while its waiter is parked, and a parked waiter neither returns nor
//!   reuses the node's memory until it is woken. So a linked node is alive.
//! - Every change to a list, and every read of a linked node, happens under its bucket's lock.
//!   The lock is only reachable as a [`Locked`] guard, and the list operations ([`append`],
//!   [`unlink`], [`take_first`], [`drain`]) are methods of the guard: "the caller holds the
//!   lock" is a type, not a comment.
//! - Whoever unlinks a node (under the lock) owns its wake: exactly one party, so a node is
//!   woken once and a wake is never lost. It reads what it needs from the node — its `next`
//!   first ([`Chain`] does that) — before [`Waiter::wake`], and never touches the node after:
//!   the waiter may already have resumed and reused its stack.
//!
//! A node a caller only *compares* (a timer's stale pointer, a select's arm that may be gone)
//! is never dereferenced unless found linked.
//!
//! [`append`]: Locked::append
//! [`unlink`]: Locked::unlink
//! [`take_first`]: Locked::take_first
//! [`drain`]: Locked::drain

mod waiter;

pub(crate) use waiter::{Waiter, block_thread};

use crate::shim::{SpinGuard, SpinLock};
use core::ptr;
use crossbeam_utils::CachePadded;

/// Buckets per table; picked (contention is per bucket and waits are rare next to the
/// operations that do not wait), tune with data.
const BUCKETS: usize = 64;

/// A node of a wait list: it has a link to the next node of its list.
///
/// # Safety
/// [`next`](Self::next) returns a pointer to the node's own link field, which only the lists
/// read and write.
pub(crate) unsafe trait Node: Sized {
    /// The node's link field.
    ///
    /// # Safety
    /// `node` is alive.
    unsafe fn next(node: *mut Self) -> *mut *mut Self;
}

/// Implements [`Node`] for a struct with a `next: *mut Self` field.
macro_rules! impl_node {
    ($node:ty) => {
        // SAFETY: `next` is the node's own link field, private to its module and the lists.
        unsafe impl $crate::waitlist::Node for $node {
            unsafe fn next(node: *mut Self) -> *mut *mut Self {
                // SAFETY: caller contract: `node` is alive.
                unsafe { &raw mut (*node).next }
            }
        }
    };
}
pub(crate) use impl_node;

/// `BUCKETS` intrusive lists of `N`, each under its own spin lock, picked by address.
pub(crate) struct Buckets<N> {
    heads: [CachePadded<SpinLock<*mut N>>; BUCKETS],
}

// SAFETY: the node pointers are only dereferenced under their bucket's lock, by the wait and
// wake protocols that own them (the list invariant above).
unsafe impl<N> Send for Buckets<N> {}
// SAFETY: as above.
unsafe impl<N> Sync for Buckets<N> {}

impl<N: Node> Buckets<N> {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            heads: [const { CachePadded::new(SpinLock::new(ptr::null_mut())) }; BUCKETS],
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            heads: core::array::from_fn(|_| CachePadded::new(SpinLock::new(ptr::null_mut()))),
        }
    }

    /// Locks the list that waits on `addr` live in. Addresses in one 8-byte word share a bucket
    /// (`park/` relies on it: a primitive's two keys, `a` and `a + 1`, share one lock).
    #[inline]
    pub(crate) fn lock(&self, addr: usize) -> Locked<'_, N> {
        Locked {
            head: self.bucket(addr).lock(),
        }
    }

    #[inline]
    fn bucket(&self, addr: usize) -> &SpinLock<*mut N> {
        // A simulation replays exactly only if nothing depends on addresses or on other
        // simulations: each one keeps all of its keys in a bucket of its own.
        if let Some(b) = crate::sim::bucket() {
            return &self.heads[b % BUCKETS];
        }
        let h = (addr >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
        &self.heads[h % BUCKETS]
    }
}

/// Defines `fn $name() -> &'static Buckets<$node>`: a plain static, or under loom a
/// `lazy_static` (loom's locks have no `const` constructor).
macro_rules! static_buckets {
    ($vis:vis fn $name:ident() -> $node:ty) => {
        #[cfg(not(loom))]
        $vis fn $name() -> &'static $crate::waitlist::Buckets<$node> {
            static TABLE: $crate::waitlist::Buckets<$node> = $crate::waitlist::Buckets::new();
            &TABLE
        }

        #[cfg(loom)]
        $vis fn $name() -> &'static $crate::waitlist::Buckets<$node> {
            loom::lazy_static! {
                static ref TABLE: $crate::waitlist::Buckets<$node> =
                    $crate::waitlist::Buckets::new();
            }
            &TABLE
        }
    };
}
pub(crate) use static_buckets;

/// A locked bucket: the proof that its lock is held, and the only way to read or change its
/// list. Unlocks on drop.
pub(crate) struct Locked<'a, N> {
    head: SpinGuard<'a, *mut N>,
}

impl<N: Node> Locked<'_, N> {
    /// The linked nodes, first (oldest) to last.
    fn nodes(&self) -> impl Iterator<Item = *mut N> + '_ {
        let mut p: *mut N = *self.head;
        core::iter::from_fn(move || {
            let node = p;
            if node.is_null() {
                return None;
            }
            // SAFETY: linked nodes are alive and only changed under the lock, which this
            // guard, borrowed for the iterator's life, holds (the list invariant).
            p = unsafe { *N::next(node) };
            Some(node)
        })
    }

    /// The linked nodes, first (oldest) to last, for reading under the lock.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &N> + '_ {
        // SAFETY: as in `nodes`: alive, and written only by lock holders — this guard, which
        // is borrowed shared as long as the references live.
        self.nodes().map(|p| unsafe { &*p })
    }

    /// The first linked node for which `pred` holds.
    pub(crate) fn find(&self, mut pred: impl FnMut(&N) -> bool) -> Option<*mut N> {
        // SAFETY: as in `iter`; the reference lives only for the call.
        self.nodes().find(|&p| pred(unsafe { &*p }))
    }

    /// Links `node` last (FIFO among the waiters of one address).
    ///
    /// # Safety
    /// `node` is alive and not linked, and its waiter keeps it alive and in place until the
    /// node is unlinked and woken (or unlinked by the waiter itself, under this lock).
    pub(crate) unsafe fn append(&mut self, node: *mut N) {
        let mut link: *mut *mut N = &mut *self.head;
        // SAFETY: linked nodes are alive and we hold the lock; `node` is alive (caller).
        unsafe {
            while !(*link).is_null() {
                link = N::next(*link);
            }
            *N::next(node) = ptr::null_mut();
            *link = node;
        }
    }

    /// Unlinks `node` if it is linked; returns whether it was. `node` is only compared, so it
    /// may be a stale pointer.
    pub(crate) fn unlink(&mut self, node: *mut N) -> bool {
        self.take_first(|n| ptr::eq(n, node)).is_some()
    }

    /// Unlinks the first node for which `pred` holds and hands it over: its wake is now the
    /// caller's (see the module docs).
    pub(crate) fn take_first(&mut self, mut pred: impl FnMut(&N) -> bool) -> Option<*mut N> {
        let mut link: *mut *mut N = &mut *self.head;
        // SAFETY: linked nodes are alive and only changed under the lock, which we hold.
        unsafe {
            while !(*link).is_null() {
                let node = *link;
                if pred(&*node) {
                    *link = *N::next(node);
                    return Some(node);
                }
                link = N::next(node);
            }
        }
        None
    }

    /// Unlinks every node for which `pred` holds and hands them over, in list order: their
    /// wakes are now the caller's.
    pub(crate) fn drain(&mut self, mut pred: impl FnMut(&N) -> bool) -> Chain<N> {
        let mut out = Chain::new();
        while let Some(node) = self.take_first(&mut pred) {
            // SAFETY: just unlinked by us: ours until woken.
            unsafe { out.push(node) };
        }
        out
    }
}

/// Nodes unlinked by their owner, chained through their own links in the order pushed. Its
/// iterator reads a node's `next` *before* yielding the node, so each node may be woken (and
/// its memory reused by its waiter) as soon as it is yielded.
pub(crate) struct Chain<N> {
    head: *mut N,
    tail: *mut N,
}

impl<N: Node> Chain<N> {
    /// An empty chain.
    pub(crate) fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
        }
    }

    /// Adds `node` last.
    ///
    /// # Safety
    /// The caller unlinked `node` (it owns its wake), and nobody else touches it until the
    /// chain yields it.
    pub(crate) unsafe fn push(&mut self, node: *mut N) {
        // SAFETY: caller contract; `tail` is ours for the same reason.
        unsafe {
            *N::next(node) = ptr::null_mut();
            if self.tail.is_null() {
                self.head = node;
            } else {
                *N::next(self.tail) = node;
            }
        }
        self.tail = node;
    }
}

impl<N: Node> Iterator for Chain<N> {
    type Item = *mut N;

    fn next(&mut self) -> Option<*mut N> {
        let node = self.head;
        if node.is_null() {
            return None;
        }
        // SAFETY: the chain's nodes are ours until yielded; read the link before handing the
        // node out, after which it may be woken and gone.
        self.head = unsafe { *N::next(node) };
        if self.head.is_null() {
            self.tail = ptr::null_mut();
        }
        Some(node)
    }
}
