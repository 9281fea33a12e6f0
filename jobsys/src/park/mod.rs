//! Address-keyed wait lists for the fiber-aware primitives (`jobsys::sync`): a fiber or an OS
//! thread parks on the address of a primitive if a condition still holds, and an unparker wakes
//! the first (FIFO) or every waiter on that address, handing each a token.
//!
//! This is the counters' wait machinery generalised (and the idea of `parking_lot`'s parking
//! lot), on the same wait-list layer (`waitlist/`): nodes live on the waiters' stacks, in a
//! process-wide table of spin-locked buckets hashed by address; a fiber never publishes itself — it suspends with `Suspend::Park` and its
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
//!
//! # Timeouts: a timer racing a wake
//! A timed park has a deadline and a `stamp` (unique per park, [`Timing::until`]).
//! When the deadline passes, the timer calls [`cancel`]`(key, node, stamp)`, which takes the
//! same bucket lock and looks for the node *by address and stamp*:
//! - found: the cancel unlinks it and wakes the waiter with [`TOKEN_TIMED_OUT`]; no unparker
//!   can see it any more, so none hands it a token — the resource (permit, signal) it would
//!   have handed goes to the next waiter or back into the primitive;
//! - not found: an unparker unlinked it first (under the lock) and owns the wake; the cancel
//!   does nothing, and the waiter gets the unparker's token even though its deadline passed.
//!
//! Unlinking is the single point of decision, and it happens under one lock: a node is woken
//! exactly once, by whoever unlinked it, and a wake is never lost to a timeout. The stamp
//! makes a late cancel harmless: a node at the same stack address but of a later park has
//! another stamp, and the cancel dereferences a node only while it is linked (its waiter is
//! then still parked, so it is alive).
//!
//! # Groups: one waiter on several addresses (select)
//! A `Select` parks one waiter on several channels at once: one node per arm, all pointing at
//! a [`Group`] whose `state` says whether the waiter is still to be woken. Whoever unlinks a
//! group node *claims* the group with a CAS (`ARMING` or `WAITING` → `CLAIMED + arm`, or
//! `TIMED_OUT` by a cancel); only the winner wakes the waiter, and only if it was `WAITING`
//! (a group still `ARMING` is being published, and its publisher sees the claim and does not
//! park). An unparker that finds a node of an already-claimed group unlinks it and goes on to
//! the next waiter, so the wake it carries is not lost. After the waiter resumes it unlinks
//! whatever nodes of its group are still linked ([`unlink_group`]), so a finished select leaves
//! nothing in the other channels' lists.

use crate::deadline::Timing;
use crate::shim::{AtomicUsize, Ordering};
use crate::waitlist::{Chain, Waiter, block_thread};
use core::ptr;

/// The token a parker gets when its `validate` said not to park.
pub(crate) const TOKEN_INVALID: usize = usize::MAX;
/// The token of a park whose deadline passed before any unparker took it.
pub(crate) const TOKEN_TIMED_OUT: usize = usize::MAX - 1;

/// Group states (see the module docs); `CLAIMED + i`: arm `i`'s channel claimed the waiter.
pub(crate) const ARMING: usize = 0;
const WAITING: usize = 1;
/// The group's deadline passed before any arm claimed it.
pub(crate) const TIMED_OUT: usize = 2;
/// First claimed state.
pub(crate) const CLAIMED: usize = 3;

/// A parked waiter. Lives on its stack for the whole park.
pub(crate) struct ParkNode {
    next: *mut ParkNode,
    key: usize,
    /// Set by the unparker (under the lock) before the wake, or `TOKEN_INVALID` by a failed
    /// validation.
    token: usize,
    validate: unsafe fn(*const ()) -> bool,
    data: *const (),
    wake: Wake,
    /// A timed park's stamp identifies it to a late [`cancel`].
    pub(crate) timing: Timing,
}

crate::waitlist::impl_node!(ParkNode);

/// Whom a node wakes.
enum Wake {
    /// Its own waiter.
    Own(Waiter),
    /// The waiter of a group (a select), through arm `arm`.
    Group { group: *const Group, arm: usize },
}

/// One waiter parked on several addresses (see the module docs). Lives on its stack.
pub(crate) struct Group {
    pub(crate) state: AtomicUsize,
    waiter: Waiter,
}

impl Group {
    pub(crate) fn new(waiter: Waiter) -> Self {
        Self {
            state: AtomicUsize::new(ARMING),
            waiter,
        }
    }

    /// The final state: `TIMED_OUT`, or `CLAIMED + arm` (`ARMING` if nothing claimed it, as
    /// after a validation failure).
    pub(crate) fn outcome(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }
}

/// What an unpark found, handed to its callback under the bucket lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unparked {
    /// How many waiters are being woken.
    pub(crate) woken: usize,
    /// Whether waiters on the same address remain parked.
    pub(crate) more: bool,
}

crate::waitlist::static_buckets!(fn table() -> ParkNode);

impl ParkNode {
    /// A node for parking on `key` while `validate(data)` holds.
    pub(crate) fn new(
        key: usize,
        validate: unsafe fn(*const ()) -> bool,
        data: *const (),
        waiter: Waiter,
    ) -> Self {
        Self::with_wake(key, validate, data, Wake::Own(waiter))
    }

    /// A node of arm `arm` of `group`, parking on `key` while `validate(data)` holds.
    pub(crate) fn in_group(
        key: usize,
        validate: unsafe fn(*const ()) -> bool,
        data: *const (),
        group: *const Group,
        arm: usize,
    ) -> Self {
        Self::with_wake(key, validate, data, Wake::Group { group, arm })
    }

    fn with_wake(
        key: usize,
        validate: unsafe fn(*const ()) -> bool,
        data: *const (),
        wake: Wake,
    ) -> Self {
        Self {
            next: ptr::null_mut(),
            key,
            token: TOKEN_INVALID,
            validate,
            data,
            wake,
            timing: Timing::NONE,
        }
    }

    /// Makes this a park until `deadline` (untimed for `deadline::NEVER`).
    pub(crate) fn set_deadline(&mut self, deadline: u64) {
        self.timing = Timing::until(deadline);
    }

    /// The token the wake (or a failed validation) left. Read after the node was handed back.
    pub(crate) fn token(&self) -> usize {
        self.token
    }

    pub(crate) fn key(&self) -> usize {
        self.key
    }

    /// The node's own waiter (loom tests).
    #[cfg(all(test, loom))]
    pub(crate) fn waiter_ref(&self) -> &Waiter {
        match &self.wake {
            Wake::Own(w) => w,
            Wake::Group { .. } => unreachable!("a group node"),
        }
    }
}

/// How an unlinker treats a node it found.
#[derive(PartialEq, Eq)]
enum Claim {
    /// Wake its waiter.
    Wake,
    /// A group still being published: claimed, its publisher sees it and does not park.
    Claimed,
    /// A group someone else claimed: drop it from the list and look further.
    Dead,
}

/// Decides, under the bucket lock, what unlinking `node` means (see the module docs).
///
/// # Safety
/// `node` is linked (so alive) and the caller holds its bucket's lock.
unsafe fn claim(node: *mut ParkNode, claimed: Option<usize>) -> Claim {
    // SAFETY: caller contract.
    match unsafe { &(*node).wake } {
        Wake::Own(_) => Claim::Wake,
        Wake::Group { group, arm } => {
            let to = claimed.unwrap_or(CLAIMED + arm);
            // SAFETY: a linked group node's group is alive (its waiter unlinks every node of
            // the group before it returns, under this same lock).
            let state = unsafe { &(**group).state };
            // AcqRel: the claim orders the channel operation that caused it before the
            // waiter's retry, through the waiter's Acquire in `outcome` / the wake.
            match state.compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => Claim::Wake,
                Err(ARMING) => {
                    match state.compare_exchange(ARMING, to, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => Claim::Claimed,
                        // It went WAITING between the two: claim that.
                        Err(WAITING) => {
                            if state
                                .compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire)
                                .is_ok()
                            {
                                Claim::Wake
                            } else {
                                Claim::Dead
                            }
                        }
                        Err(_) => Claim::Dead,
                    }
                }
                Err(_) => Claim::Dead,
            }
        }
    }
}

/// Unlinks, under the bucket lock held by `list`, the first node parked on `key` that still
/// has a waiter to wake, and says how (`Wake` or `Claimed`); nodes of groups claimed by
/// someone else are unlinked and skipped (`Dead`). `None` when no such node is left.
fn take_next(
    list: &mut crate::waitlist::Locked<'_, ParkNode>,
    key: usize,
) -> Option<(*mut ParkNode, Claim)> {
    while let Some(node) = list.take_first(|n| n.key == key) {
        // SAFETY: just unlinked under the lock: alive (its waiter is parked until woken).
        match unsafe { claim(node, None) } {
            Claim::Dead => {}
            c => return Some((node, c)),
        }
    }
    None
}

/// Validates and links `node`; returns whether it was linked (the waiter must then stay parked
/// until woken). On `false` the node's token is `TOKEN_INVALID`.
///
/// # Safety
/// `node` is alive and untouched by its owner until the unpark protocol hands it back (or this
/// returns false), and `validate(data)` is sound to call here.
pub(crate) unsafe fn publish(node: *mut ParkNode) -> bool {
    crate::fault::inject(crate::fault::Site::Park);
    // SAFETY: caller contract.
    let key = unsafe { (*node).key };
    let mut list = table().lock(key);
    // SAFETY: caller contract: the validator and its data are alive.
    if !unsafe { ((*node).validate)((*node).data) } {
        // SAFETY: the node is still ours.
        unsafe { (*node).token = TOKEN_INVALID };
        return false;
    }
    // SAFETY: caller contract: the node stays put until the unpark protocol hands it back.
    unsafe { list.append(node) };
    true
}

/// Publishes every node of `group` (one per arm, each validated under its own bucket lock);
/// returns whether the waiter must park. False when a validation failed (an arm is ready) or
/// an unparker claimed the group meanwhile; the caller then runs [`unlink_group`] and retries.
///
/// # Safety
/// As [`publish`], for every node and for `group`.
pub(crate) unsafe fn publish_group(group: *const Group, nodes: *mut ParkNode, n: usize) -> bool {
    // SAFETY: caller contract.
    let state = unsafe { &(*group).state };
    for i in 0..n {
        // SAFETY: caller contract: `nodes[..n]` are alive.
        let node = unsafe { nodes.add(i) };
        // SAFETY: as above.
        let key = unsafe { (*node).key };
        let mut list = table().lock(key);
        if state.load(Ordering::Acquire) != ARMING {
            return false; // claimed by an arm already linked
        }
        // SAFETY: caller contract.
        if !unsafe { ((*node).validate)((*node).data) } {
            // An arm is ready: close the group so late unparkers of linked arms skip it.
            let _ =
                state.compare_exchange(ARMING, CLAIMED + i, Ordering::AcqRel, Ordering::Acquire);
            return false;
        }
        // SAFETY: caller contract, as in `publish`.
        unsafe { list.append(node) };
    }
    // Armed: from now on a claimer wakes the waiter.
    state
        .compare_exchange(ARMING, WAITING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// Unlinks every node of a group that is still linked (after its waiter resumed, or after
/// [`publish_group`] returned false): a finished select leaves no trace in any list.
///
/// # Safety
/// `nodes[..n]` are alive and their waiter is not parked.
pub(crate) unsafe fn unlink_group(nodes: *mut ParkNode, n: usize) {
    for i in 0..n {
        // SAFETY: caller contract.
        let node = unsafe { nodes.add(i) };
        // SAFETY: as above.
        table().lock(unsafe { (*node).key }).unlink(node);
    }
}

/// Runs `f` on `node` under its bucket lock if it is still linked on `key` (an async waiter
/// updating its `Waker`, or unlinking itself when its future is dropped) and returns true; false
/// when an unparker unlinked it first (it owns the wake, and the waiter's `done` says when it is
/// over). The node is dereferenced only while linked.
pub(crate) fn with_linked(
    key: usize,
    node: *mut ParkNode,
    f: impl FnOnce(&mut crate::waitlist::Locked<'_, ParkNode>, *mut ParkNode),
) -> bool {
    let mut list = table().lock(key);
    if list.find(|n| ptr::eq(n, node) && n.key == key).is_none() {
        return false;
    }
    f(&mut list, node);
    true
}

/// The waiter of an own (non-group) node.
pub(crate) fn own_waiter(node: &ParkNode) -> &Waiter {
    match &node.wake {
        Wake::Own(w) => w,
        Wake::Group { .. } => unreachable!("a group node"),
    }
}

/// Takes a timed park's node off its list if it is still there (matched by address *and*
/// stamp) and wakes its waiter with [`TOKEN_TIMED_OUT`] — or, for a group node, claims the
/// group as timed out and wakes its waiter. Returns false if an unparker got there first (it
/// owns the wake) or the park is over. See "Timeouts" in the module docs.
pub(crate) fn cancel(key: usize, node: *mut ParkNode, stamp: u64) -> bool {
    crate::fault::inject(crate::fault::Site::Park);
    let mut list = table().lock(key);
    // The node is dereferenced only once found linked (so alive).
    if list
        .find(|n| ptr::eq(n, node) && n.timing.stamp == stamp)
        .is_none()
    {
        return false;
    }
    // SAFETY: linked, so alive; we hold the lock.
    match unsafe { &(*node).wake } {
        Wake::Own(_) => {
            list.unlink(node);
            // SAFETY: unlinked by us: ours until woken.
            unsafe { (*node).token = TOKEN_TIMED_OUT };
        }
        // The waiter unlinks its group's nodes itself after it resumes.
        Wake::Group { .. } => {
            // SAFETY: linked and under the lock.
            if unsafe { claim(node, Some(TIMED_OUT)) } != Claim::Wake {
                return false;
            }
        }
    }
    drop(list);
    // SAFETY: we decided the wake under the lock; nobody else wakes this waiter.
    unsafe { wake_node(node) };
    true
}

/// Wakes the first waiter parked on `key`, if any. `callback` runs under the bucket lock with
/// what was found and returns the token to hand over (ignored when nobody is woken). Returns
/// whether a waiter was woken.
pub(crate) fn unpark_one(key: usize, callback: impl FnOnce(Unparked) -> usize) -> bool {
    crate::fault::inject(crate::fault::Site::Park);
    let mut list = table().lock(key);
    let (found, wake) = match take_next(&mut list, key) {
        Some((node, claim)) => (node, claim == Claim::Wake),
        None => (ptr::null_mut(), false),
    };
    // Any other waiter on the key after it (the list is in arrival order)?
    let more = !found.is_null() && list.iter().any(|n| n.key == key);
    let token = callback(Unparked {
        woken: usize::from(!found.is_null()),
        more,
    });
    if !wake {
        return !found.is_null();
    }
    // SAFETY: the node is unlinked and ours until woken; the waiter reads the token only after
    // the wake (release in the wake).
    unsafe { (*found).token = token };
    drop(list);
    // SAFETY: unlinked above; after this call we never touch it.
    unsafe { wake_node(found) };
    true
}

/// Wakes every waiter parked on `key`, handing each `token`; `callback` runs under the bucket
/// lock first. Returns how many were woken.
pub(crate) fn unpark_all(key: usize, token: usize, callback: impl FnOnce(Unparked)) -> usize {
    let mut list = table().lock(key);
    let mut woken = Chain::new();
    let mut n = 0;
    while let Some((node, claim)) = take_next(&mut list, key) {
        n += 1;
        if claim == Claim::Claimed {
            continue; // its publisher sees the claim and does not park
        }
        // SAFETY: unlinked by `take_next`: ours until woken; the waiter reads the token only
        // after the wake.
        unsafe {
            (*node).token = token;
            woken.push(node);
        }
    }
    callback(Unparked {
        woken: n,
        more: false,
    });
    drop(list);
    for node in woken {
        // SAFETY: unlinked nodes are ours until woken; the chain read `next` before the wake.
        unsafe { wake_node(node) };
    }
    n
}

/// Parks the calling OS thread (not a worker) on `key` while `validate(data)` holds, until an
/// unparker wakes it or `deadline` passes. Returns the token ([`TOKEN_INVALID`] if it did not
/// park, [`TOKEN_TIMED_OUT`] on timeout).
///
/// # Safety
/// `validate(data)` is sound to call from any thread until this returns.
pub(crate) unsafe fn park_thread(
    key: usize,
    validate: unsafe fn(*const ()) -> bool,
    data: *const (),
    deadline: u64,
) -> usize {
    let mut node = ParkNode::new(key, validate, data, Waiter::thread());
    node.set_deadline(deadline);
    let (node_ptr, stamp) = (&mut node as *mut ParkNode, node.timing.stamp);
    // SAFETY: `node` lives on this stack until the wait below ends, after the waker's last
    // touch (its `done` store) or our own cancel; the validator is the caller's.
    if unsafe { publish(node_ptr) } {
        let Wake::Own(waiter) = &node.wake else {
            unreachable!()
        };
        block_thread(
            waiter,
            deadline,
            || cancel(key, node_ptr, stamp),
            || format!("a plain thread is parked on a jobsys::sync primitive at {key:#x}"),
        );
    }
    node.token
}

/// [`publish_group`] then block, for a plain thread; the group's waiter is this thread. The
/// caller runs [`unlink_group`] afterwards.
///
/// # Safety
/// As [`publish_group`]; `group`'s waiter is a `Thread` waiter of this thread.
pub(crate) unsafe fn park_thread_group(group: &Group, nodes: *mut ParkNode, n: usize) {
    // SAFETY: forwarded contract.
    if unsafe { publish_group(group, nodes, n) } {
        // SAFETY: `nodes[0]` is alive (caller contract).
        let (key, timing) = unsafe { ((*nodes).key, (*nodes).timing) };
        block_thread(
            &group.waiter,
            timing.deadline,
            || cancel(key, nodes, timing.stamp),
            || format!("a plain thread selects on {n} arms; the first at {key:#x}"),
        );
    }
}

/// Makes the waiter of a park node (or of its group) runnable.
///
/// # Safety
/// The caller decided this wake under the bucket lock (unlinked the node or claimed its
/// group) and never touches the node again.
unsafe fn wake_node(node: *mut ParkNode) {
    // SAFETY: caller contract — the node (and its group) is alive until the waiter runs.
    let waiter: *const Waiter = match unsafe { &(*node).wake } {
        Wake::Own(w) => w,
        // SAFETY: as above.
        Wake::Group { group, .. } => unsafe { &raw const (**group).waiter },
    };
    // SAFETY: forwarded. A park is counted with the waits that end by themselves.
    unsafe { Waiter::wake(waiter, true, None) };
}

/// How many nodes wait on `key` (tests: a finished select leaves none).
#[cfg(test)]
pub(crate) fn waiters_on(key: usize) -> usize {
    table().lock(key).iter().filter(|n| n.key == key).count()
}
