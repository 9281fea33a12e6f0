//! `select`: wait on several channel operations at once; exactly one completes.
//!
//! The waiter parks on every arm's wait list at once — one node per arm, all in one group
//! (see "Groups" in `park/mod.rs`): the first channel operation that would have woken a
//! parked receiver (sender) claims the group and wakes it; the others find the group claimed
//! and pass their wake to the next waiter in their list. After waking, the select unlinks its
//! remaining nodes, then tries the arms again, from a random start so that no ready arm is
//! preferred. If it completes another arm than the one that claimed it, it passes that
//! channel's wake on, so a waiter behind it there is not left parked with a value waiting.

use super::channel::Side;
use super::{Blocker, Channel, RecvError, SendError, TrySendError, Validate};
use crate::park::{self, CLAIMED, Group, ParkNode, TIMED_OUT};
use std::time::Duration;

/// Most arms one select takes (its park nodes live in a fixed array on the waiter's stack).
pub const MAX_ARMS: usize = 16;

/// How to park on one arm's wait list (filled by the channel).
pub(crate) struct ArmPark {
    pub(crate) key: usize,
    pub(crate) validate: Validate,
    pub(crate) data: *const (),
}

/// One operation of a [`select`]: a [`RecvArm`] or a [`SendArm`]. Sealed.
///
/// An arm that completed holds its outcome until taken; while it holds one it counts as
/// ready, so selecting again without taking it returns it again and loses nothing.
pub trait SelectArm: private::Sealed {
    /// Tries the operation without blocking; true if the arm completed (or holds an
    /// outcome already).
    #[doc(hidden)]
    fn try_complete(&mut self) -> bool;

    /// Announces a parked waiter on this arm's side of its channel.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn announce(&self) -> ArmPark;

    /// Passes on a wake this arm's channel gave the select, which completed another arm.
    #[doc(hidden)]
    fn pass_on(&self);
}

/// Receives from a channel in a [`select`].
///
/// ```
/// use jobsys::sync::{Channel, RecvArm, SendArm, select};
///
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let (frames, io, out) = (Channel::new(4), Channel::new(4), Channel::new(4));
/// io.try_send("file loaded").unwrap();
/// jobs.run(|ctx| {
///     let mut frame = RecvArm::<u32>::new(&frames);
///     let mut done = RecvArm::new(&io);
///     let mut report = SendArm::new(&out, 7u64);
///     // Parks the fiber until one of the three can complete; exactly one does.
///     match select(ctx, &mut [&mut frame, &mut done, &mut report]) {
///         0 => println!("frame {:?}", frame.take()),
///         1 => assert_eq!(done.take(), Some(Ok("file loaded"))),
///         _ => assert_eq!(report.take(), Some(Ok(()))),
///     }
/// });
/// # Ok::<(), jobsys::BuildError>(())
/// ```
pub struct RecvArm<'c, T> {
    chan: &'c Channel<T>,
    got: Option<Result<T, RecvError>>,
}

impl<'c, T> RecvArm<'c, T> {
    /// An arm receiving from `chan`.
    pub fn new(chan: &'c Channel<T>) -> Self {
        Self { chan, got: None }
    }

    /// The outcome, if this arm completed: the value, or `Err` if the channel is closed and
    /// drained. Taking it re-arms the arm.
    pub fn take(&mut self) -> Option<Result<T, RecvError>> {
        self.got.take()
    }
}

impl<T> SelectArm for RecvArm<'_, T> {
    fn try_complete(&mut self) -> bool {
        if self.got.is_none() {
            self.got = match self.chan.try_recv() {
                Ok(v) => Some(Ok(v)),
                Err(super::TryRecvError::Closed) => Some(Err(RecvError)),
                Err(super::TryRecvError::Empty) => None,
            };
        }
        self.got.is_some()
    }

    #[allow(private_interfaces)]
    fn announce(&self) -> ArmPark {
        self.chan.announce(Side::Recv)
    }

    fn pass_on(&self) {
        self.chan.wake_side(Side::Recv);
    }
}

/// Sends a value on a channel in a [`select`]; the value stays in the arm until it is sent.
pub struct SendArm<'c, T> {
    chan: &'c Channel<T>,
    value: Option<T>,
    outcome: Option<Result<(), SendError<T>>>,
}

impl<'c, T> SendArm<'c, T> {
    /// An arm sending `value` on `chan`.
    pub fn new(chan: &'c Channel<T>, value: T) -> Self {
        Self {
            chan,
            value: Some(value),
            outcome: None,
        }
    }

    /// The outcome, if this arm completed: `Ok` if the value was sent, or the value back if
    /// the channel is closed. Once taken, the arm has nothing to send: select on a new one.
    pub fn take(&mut self) -> Option<Result<(), SendError<T>>> {
        self.outcome.take()
    }

    /// The value, if it was not sent.
    pub fn into_unsent(self) -> Option<T> {
        match self.outcome {
            Some(Err(SendError(v))) => Some(v),
            _ => self.value,
        }
    }
}

impl<T> SelectArm for SendArm<'_, T> {
    fn try_complete(&mut self) -> bool {
        if self.outcome.is_some() {
            return true;
        }
        let Some(v) = self.value.take() else {
            panic!("a SendArm was selected again after its outcome was taken; make a new one");
        };
        match self.chan.try_send(v) {
            Ok(()) => self.outcome = Some(Ok(())),
            Err(TrySendError::Closed(v)) => self.outcome = Some(Err(SendError(v))),
            Err(TrySendError::Full(v)) => self.value = Some(v),
        }
        self.outcome.is_some()
    }

    #[allow(private_interfaces)]
    fn announce(&self) -> ArmPark {
        self.chan.announce(Side::Send)
    }

    fn pass_on(&self) {
        self.chan.wake_side(Side::Send);
    }
}

/// Completes exactly one of `arms`, parking `blocker` until one can: returns its index, and
/// the arm holds the outcome. A closed channel makes its arm complete (with `Err`).
///
/// Fair: when several arms are ready, each is as likely to be chosen. Nothing allocates; a
/// parked select leaves nothing in any channel's wait list once it returns.
///
/// # Panics
/// If `arms` is empty or longer than [`MAX_ARMS`].
pub fn select<B: Blocker + ?Sized>(blocker: &B, arms: &mut [&mut dyn SelectArm]) -> usize {
    select_until(blocker, arms, crate::deadline::NEVER).expect("a select without deadline returned")
}

/// [`select`] for at most `timeout`: `None` if no arm could complete by then (no arm did).
///
/// # Panics
/// As [`select`].
pub fn select_timeout<B: Blocker + ?Sized>(
    blocker: &B,
    arms: &mut [&mut dyn SelectArm],
    timeout: Duration,
) -> Option<usize> {
    select_until(blocker, arms, crate::deadline::after(timeout))
}

/// [`select`] with a default arm: completes one ready arm, or returns `None` at once if none
/// is ready.
///
/// # Panics
/// As [`select`].
pub fn try_select(arms: &mut [&mut dyn SelectArm]) -> Option<usize> {
    check_arms(arms.len());
    try_pass(arms, fair_start(arms.len()))
}

fn check_arms(n: usize) {
    assert!(
        (1..=MAX_ARMS).contains(&n),
        "a select takes 1..={MAX_ARMS} arms, not {n}"
    );
}

/// A uniformly random first arm (splitmix64 over a process-wide sequence; no thread-local).
fn fair_start(n: usize) -> usize {
    if let Some(r) = crate::sim::random() {
        return (r % n as u64) as usize;
    }
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut z = SEQ
        .fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % n as u64) as usize
}

/// Tries every arm once, from `start` round; the index of the first that completes.
fn try_pass(arms: &mut [&mut dyn SelectArm], start: usize) -> Option<usize> {
    let n = arms.len();
    (0..n)
        .map(|k| (start + k) % n)
        .find(|&i| arms[i].try_complete())
}

/// A park validator that never parks (the unused tail of the node array).
unsafe fn never(_: *const ()) -> bool {
    false
}

fn select_until<B: Blocker + ?Sized>(
    blocker: &B,
    arms: &mut [&mut dyn SelectArm],
    deadline: u64,
) -> Option<usize> {
    let n = arms.len();
    check_arms(n);
    let start = fair_start(n);
    // The arm whose channel woke us last time, if it claimed us.
    let mut claimed: Option<usize> = None;
    let mut expired = false;
    loop {
        if let Some(i) = try_pass(arms, start) {
            if let Some(k) = claimed.filter(|&k| k != i) {
                arms[k].pass_on();
            }
            return Some(i);
        }
        if expired || crate::deadline::passed(deadline) {
            return None;
        }
        // Announce on every arm's side (flag + fence), then park on all of them; each
        // validator re-checks its arm under its list's lock, so an arm that became ready
        // after the pass above stops the park.
        let parks: [Option<ArmPark>; MAX_ARMS] =
            core::array::from_fn(|i| (i < n).then(|| arms[i].announce()));
        let first_key = parks[0].as_ref().map_or(0, |p| p.key);
        let group = Group::new(blocker.group_waiter(first_key));
        let mut nodes: [ParkNode; MAX_ARMS] = core::array::from_fn(|i| match &parks[i] {
            Some(p) => ParkNode::in_group(p.key, p.validate, p.data, &group, i),
            None => ParkNode::in_group(0, never, core::ptr::null(), &group, i),
        });
        nodes[0].set_deadline(deadline);
        // SAFETY: the validators read the channels, which the arms borrow for this whole call;
        // the group's waiter is the blocker's.
        unsafe { blocker.park_group(&group, &mut nodes[..n]) };
        // SAFETY: the nodes are ours again (the waiter is not parked).
        unsafe { park::unlink_group(nodes.as_mut_ptr(), n) };
        match group.outcome() {
            TIMED_OUT => expired = true,
            s if s >= CLAIMED => claimed = Some(s - CLAIMED),
            _ => claimed = None,
        }
    }
}

mod private {
    pub trait Sealed {}
    impl<T> Sealed for super::RecvArm<'_, T> {}
    impl<T> Sealed for super::SendArm<'_, T> {}
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::park::waiters_on;
    use crate::sync::Channel;

    /// A select parked on two channels, woken through one: once it returns, neither channel's
    /// wait list keeps its node (checked while it was parked: both had one).
    #[test]
    fn a_finished_select_leaves_no_trace_in_any_wait_list() {
        let jobs = crate::JobSystem::builder().workers(1).build().unwrap();
        let a = Channel::<u32>::new(2);
        let b = Channel::<u32>::new(2);
        let seen_parked = std::sync::Mutex::new((0, 0));
        jobs.run(|ctx| {
            ctx.scope(|s| {
                // Runs once the select below parked (one worker; a select never runs queued
                // jobs inline).
                s.spawn(|_| {
                    *seen_parked.lock().unwrap() = (waiters_on(a.rx_key()), waiters_on(b.rx_key()));
                    b.try_send(5).unwrap();
                });
                let mut ra = RecvArm::new(&a);
                let mut rb = RecvArm::new(&b);
                assert_eq!(select(s, &mut [&mut ra, &mut rb]), 1);
                assert_eq!(rb.take(), Some(Ok(5)));
            });
        });
        assert_eq!(
            *seen_parked.lock().unwrap(),
            (1, 1),
            "the select was parked on both"
        );
        assert_eq!(waiters_on(a.rx_key()), 0, "the cancelled arm left a node");
        assert_eq!(waiters_on(b.rx_key()), 0);
    }
}
