//! Address-keyed wait lists for the fiber-aware primitives (`jobsys::sync`): a fiber or an OS
//! thread parks on the address of a primitive if a condition still holds, and an unparker wakes
//! the first (FIFO) or every waiter on that address, handing each a token.
//!
//! This is the counters' wait machinery generalised (and the idea of `parking_lot`'s parking
//! lot): nodes live on the waiters' stacks, in a process-wide table of spin-locked buckets
//! hashed by address; a fiber never publishes itself — it suspends with `Suspend::Park` and its
//! worker runs [`publish`] after the switch (post-switch publication, see
//! `counter/README.md`).
//!
//! # The protocol
//! - **Park**: under the bucket lock, run the caller's `validate`; if it returns false, do not
//!   park (token [`TOKEN_INVALID`]); else append the node (FIFO) and unlock.
//! - **Unpark**: under the bucket lock, unlink the first node (or all) with the address, run
//!   the caller's callback with what it found (still under the lock, so the primitive's state
//!   and the list change together), unlock, then wake the unlinked nodes with the callback's
//!   token.
//!
//! Because `validate` and the unparker's callback both run under the same bucket lock, a
//! parker either sees the state the unparker left (and does not park) or is in the list when
//! the unparker looks: no wake-up is lost. Primitives keep a "someone may be parked" bit in
//! their state, set with a CAS before parking and checked by `validate`, cleared by the unparker's callback
//! when it takes the last waiter.

use crate::counter::Waiter;
use crate::shim::thread;
use crate::shim::{AtomicBool, Ordering};
use core::ptr;

/// The token a parker gets when its `validate` said not to park.
pub(crate) const TOKEN_INVALID: usize = usize::MAX;

/// A parked waiter. Lives on its stack for the whole park.
pub(crate) struct ParkNode {
    next: *mut ParkNode,
    key: usize,
    /// Set by the unparker (under the lock) before the wake, or `TOKEN_INVALID` by a failed
    /// validation.
    token: usize,
    validate: unsafe fn(*const ()) -> bool,
    data: *const (),
    waiter: Waiter,
}

/// What an unpark found, handed to its callback under the bucket lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unparked {
    /// How many waiters are being woken.
    pub(crate) woken: usize,
    /// Whether waiters on the same address remain parked.
    pub(crate) more: bool,
}

crate::counter::static_buckets!(fn table() -> ParkNode);

impl ParkNode {
    /// A node for parking on `key` while `validate(data)` holds.
    pub(crate) fn new(
        key: usize,
        validate: unsafe fn(*const ()) -> bool,
        data: *const (),
        waiter: Waiter,
    ) -> Self {
        Self {
            next: ptr::null_mut(),
            key,
            token: TOKEN_INVALID,
            validate,
            data,
            waiter,
        }
    }

    /// The token the wake (or a failed validation) left. Read after the node was handed back.
    pub(crate) fn token(&self) -> usize {
        self.token
    }
}

/// Validates and links `node`; returns whether it was linked (the waiter must then stay parked
/// until woken). On `false` the node's token is `TOKEN_INVALID`.
///
/// # Safety
/// `node` is alive and untouched by its owner until the unpark protocol hands it back (or this
/// returns false), and `validate(data)` is sound to call here.
pub(crate) unsafe fn publish(node: *mut ParkNode) -> bool {
    // SAFETY: caller contract.
    let key = unsafe { (*node).key };
    let mut head = table().bucket(key).lock();
    // SAFETY: caller contract: the validator and its data are alive.
    if !unsafe { ((*node).validate)((*node).data) } {
        // SAFETY: the node is still ours.
        unsafe { (*node).token = TOKEN_INVALID };
        return false;
    }
    // Append: FIFO among the waiters of one address (and of the bucket).
    let mut link: *mut *mut ParkNode = &mut *head;
    // SAFETY: linked nodes are alive (their waiters are parked) and the list is only changed
    // under this lock.
    unsafe {
        while !(*link).is_null() {
            link = &mut (**link).next;
        }
        (*node).next = ptr::null_mut();
        *link = node;
    }
    true
}

/// Wakes the first waiter parked on `key`, if any. `callback` runs under the bucket lock with
/// what was found and returns the token to hand over (ignored when nobody is woken). Returns
/// whether a waiter was woken.
pub(crate) fn unpark_one(key: usize, callback: impl FnOnce(Unparked) -> usize) -> bool {
    let mut head = table().bucket(key).lock();
    let mut link: *mut *mut ParkNode = &mut *head;
    let mut found: *mut ParkNode = ptr::null_mut();
    // SAFETY: as in `publish`.
    unsafe {
        while !(*link).is_null() {
            let node = *link;
            if (*node).key == key {
                *link = (*node).next;
                found = node;
                break;
            }
            link = &mut (*node).next;
        }
    }
    let mut more = false;
    if !found.is_null() {
        // Any other waiter on the key after it (the list is in arrival order)?
        let mut p = *head;
        // SAFETY: as in `publish`.
        unsafe {
            while !p.is_null() {
                if (*p).key == key {
                    more = true;
                    break;
                }
                p = (*p).next;
            }
        }
    }
    let token = callback(Unparked {
        woken: usize::from(!found.is_null()),
        more,
    });
    if found.is_null() {
        return false;
    }
    // SAFETY: the node is unlinked and ours until woken; the waiter reads the token only after
    // the wake (release in `Waiter::wake`).
    unsafe { (*found).token = token };
    drop(head);
    // SAFETY: unlinked above; after this call we never touch it.
    unsafe { Waiter::wake_park(found) };
    true
}

/// Wakes every waiter parked on `key`, handing each `token`; `callback` runs under the bucket
/// lock first. Returns how many were woken.
pub(crate) fn unpark_all(key: usize, token: usize, callback: impl FnOnce(Unparked)) -> usize {
    let mut head = table().bucket(key).lock();
    let mut woken: *mut ParkNode = ptr::null_mut();
    let mut tail: *mut ParkNode = ptr::null_mut();
    let mut n = 0;
    let mut link: *mut *mut ParkNode = &mut *head;
    // SAFETY: as in `publish`. Woken nodes are chained in arrival order through `next`.
    unsafe {
        while !(*link).is_null() {
            let node = *link;
            if (*node).key == key {
                *link = (*node).next;
                (*node).next = ptr::null_mut();
                (*node).token = token;
                if tail.is_null() {
                    woken = node;
                } else {
                    (*tail).next = node;
                }
                tail = node;
                n += 1;
            } else {
                link = &mut (*node).next;
            }
        }
    }
    callback(Unparked {
        woken: n,
        more: false,
    });
    drop(head);
    while !woken.is_null() {
        // SAFETY: unlinked nodes are ours until woken; read `next` before the wake.
        unsafe {
            let next = (*woken).next;
            Waiter::wake_park(woken);
            woken = next;
        }
    }
    n
}

/// Parks the calling OS thread (not a worker) on `key` while `validate(data)` holds, until an
/// unparker wakes it. Returns the token ([`TOKEN_INVALID`] if it did not park).
///
/// # Safety
/// `validate(data)` is sound to call from any thread until this returns.
pub(crate) unsafe fn park_thread(
    key: usize,
    validate: unsafe fn(*const ()) -> bool,
    data: *const (),
) -> usize {
    let mut node = ParkNode::new(
        key,
        validate,
        data,
        Waiter::Thread {
            thread: thread::current(),
            done: AtomicBool::new(false),
        },
    );
    // SAFETY: `node` lives on this stack until the wait below ends, after the waker's last
    // touch (its `done` store); the validator is the caller's.
    if unsafe { publish(&mut node) } {
        let Waiter::Thread { done, .. } = &node.waiter else {
            unreachable!()
        };
        while !done.load(Ordering::Acquire) {
            thread::park();
        }
    }
    node.token
}

impl Waiter {
    /// Makes the waiter of a park node runnable.
    ///
    /// # Safety
    /// As for [`Waiter::wake`]: `node` was unlinked by the caller, who never touches it again.
    unsafe fn wake_park(node: *mut ParkNode) {
        // SAFETY: caller contract — the node is alive and ours.
        match unsafe { &(*node).waiter } {
            // SAFETY: a parked fiber's system is alive: shutdown waits for parked fibers.
            Waiter::Fiber { shared, fiber } => unsafe { (**shared).make_ready_from(*fiber, true) },
            Waiter::Thread { thread, done } => {
                let thread = thread.clone();
                done.store(true, Ordering::Release);
                thread.unpark();
            }
        }
    }
}
