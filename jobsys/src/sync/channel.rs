//! `Channel<T>`: bounded MPMC, storage allocated once; `send` parks when full, `recv` when
//! empty.
//!
//! The queue is Vyukov's bounded MPMC ring (a sequence number per slot). Blocking sits on top,
//! with the park table's protocol (`park/`): a side that finds the ring full (or empty) sets
//! its "parked" flag, fences, looks again, and parks with a validator that re-checks — under
//! the wait list's lock — that the ring is still full (empty), the channel open and the flag
//! still set. The other side, after each successful operation, fences and, if the flag is set,
//! unparks one waiter; the unparker clears the flag when it takes the last one. Dekker on the
//! two fences: either the waker sees the flag, or the parker's look sees the new item (slot).

use super::{Blocker, key_of};
use crate::shim::{AtomicU8, AtomicUsize, Ordering, fence};
use core::cell::UnsafeCell;
use core::fmt;
use core::mem::MaybeUninit;
use crossbeam_utils::CachePadded;
use std::time::Duration;

const RX_PARKED: u8 = 1;
const TX_PARKED: u8 = 2;

/// A channel's two sides, each with its own wait list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Send,
    Recv,
}

impl Side {
    fn flag(self) -> u8 {
        match self {
            Side::Send => TX_PARKED,
            Side::Recv => RX_PARKED,
        }
    }
}

struct Slot<T> {
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded multi-producer multi-consumer channel for jobs and threads.
///
/// ```
/// use jobsys::sync::Channel;
///
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let requests = Channel::new(4);
/// let total = jobs.run(|ctx| {
///     ctx.scope(|s| {
///         s.spawn(|s| {
///             for i in 1..=100u64 {
///                 requests.send(s, i).unwrap(); // parks while the channel is full
///             }
///             requests.close();
///         });
///         let mut total = 0;
///         while let Ok(v) = requests.recv(s) {
///             total += v; // parks while empty; Err once closed and drained
///         }
///         total
///     })
/// });
/// assert_eq!(total, 5050);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
///
/// Close: after [`close`](Self::close), sends fail and hand the value back; receivers drain
/// what is left, then get [`RecvError`]. Senders and receivers parked at the time are woken.
/// Every send that returned `Ok` is delivered to a receiver that drains the channel: a close
/// stops new sends from claiming slots, and receivers wait for slots already claimed.
pub struct Channel<T> {
    slots: Box<[Slot<T>]>,
    mask: usize,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    parked: AtomicU8,
}

/// Set in `tail` by `close`: no send can claim a slot after it (its CAS on the unmarked tail
/// fails), so every send that returned `Ok` claimed its slot before the close, and receivers
/// wait for those slots to be published before they report the channel drained.
const MARK: usize = 1 << (usize::BITS - 1);

// SAFETY: values move between threads through the ring (each slot owned by one side at a time,
// by its sequence number): `T: Send` suffices.
unsafe impl<T: Send> Send for Channel<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Channel<T> {}

/// `try_send` failed: the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// The channel is closed.
    Closed(T),
}

/// `send` failed because the channel is closed; the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// `try_recv` found nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// The channel is empty (and open).
    Empty,
    /// The channel is closed and drained.
    Closed,
}

/// `recv` failed: the channel is closed and drained.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

/// `send_timeout` failed: the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the deadline.
    Timeout(T),
    /// The channel is closed.
    Closed(T),
}

/// `recv_timeout` got nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// The channel stayed empty (and open) until the deadline.
    Timeout,
    /// The channel is closed and drained.
    Closed,
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed and empty channel")
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout(_) => "timed out sending on a full channel",
            Self::Closed(_) => "sending on a closed channel",
        })
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out receiving on an empty channel",
            Self::Closed => "receiving on a closed and empty channel",
        })
    }
}

impl<T: fmt::Debug> std::error::Error for SendError<T> {}
impl std::error::Error for RecvError {}
impl<T: fmt::Debug> std::error::Error for SendTimeoutError<T> {}
impl std::error::Error for RecvTimeoutError {}

impl<T> Channel<T> {
    /// A channel holding up to `capacity` values (rounded up to a power of two, and to at least
    /// 2: the ring's sequence numbers cannot tell a full one-slot ring from an empty one); the
    /// storage is allocated here, once.
    ///
    /// # Panics
    /// If `capacity` is 0 or above 2³⁰.
    pub fn new(capacity: usize) -> Self {
        assert!(
            (1..=1 << 30).contains(&capacity),
            "a channel holds 1..=2^30 values, not {capacity}"
        );
        let cap = capacity.next_power_of_two().max(2);
        Self {
            slots: (0..cap)
                .map(|i| Slot {
                    seq: AtomicUsize::new(i),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
            mask: cap - 1,
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            parked: AtomicU8::new(0),
        }
    }

    /// How many values the channel holds at most.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Values in the channel right now (a snapshot).
    pub fn len(&self) -> usize {
        // Head first: a later tail is never behind it, so the difference cannot wrap.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire) & !MARK;
        tail.wrapping_sub(head).min(self.capacity())
    }

    /// Whether the channel is empty right now (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & MARK != 0
    }

    pub(crate) fn rx_key(&self) -> usize {
        key_of(&self.parked)
    }

    pub(crate) fn tx_key(&self) -> usize {
        self.rx_key() + 1
    }

    /// Sends without blocking.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let r = self.push(value);
        if r.is_ok() {
            self.wake(RX_PARKED, self.rx_key());
        }
        r
    }

    /// Receives without blocking.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.pop() {
            Ok(v) => {
                self.wake(TX_PARKED, self.tx_key());
                Ok(v)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends, parking `blocker` while the channel is full. Fails, handing the value back, if
    /// the channel is (or gets) closed.
    pub fn send<B: Blocker + ?Sized>(&self, blocker: &B, value: T) -> Result<(), SendError<T>> {
        self.send_until(blocker, value, crate::deadline::NEVER)
            .map_err(|e| match e {
                SendTimeoutError::Closed(v) | SendTimeoutError::Timeout(v) => SendError(v),
            })
    }

    /// [`send`](Self::send) for at most `timeout`; the value comes back on timeout or close.
    pub fn send_timeout<B: Blocker + ?Sized>(
        &self,
        blocker: &B,
        value: T,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<T>> {
        self.send_until(blocker, value, crate::deadline::after(timeout))
    }

    fn send_until<B: Blocker + ?Sized>(
        &self,
        blocker: &B,
        mut value: T,
        deadline: u64,
    ) -> Result<(), SendTimeoutError<T>> {
        let mut expired = false;
        loop {
            match self.try_send(value) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(v)) => return Err(SendTimeoutError::Closed(v)),
                Err(TrySendError::Full(v)) => value = v,
            }
            if expired || crate::deadline::passed(deadline) {
                return Err(SendTimeoutError::Timeout(value));
            }
            expired = self.wait_side(blocker, Side::Send, deadline);
        }
    }

    /// Receives, parking `blocker` while the channel is empty. Fails once the channel is closed
    /// and drained.
    pub fn recv<B: Blocker + ?Sized>(&self, blocker: &B) -> Result<T, RecvError> {
        self.recv_until(blocker, crate::deadline::NEVER)
            .map_err(|_| RecvError)
    }

    /// [`recv`](Self::recv) for at most `timeout`. A send racing the timeout is never lost:
    /// the value is either received here or stays in the channel (and its wake goes to the
    /// next receiver).
    pub fn recv_timeout<B: Blocker + ?Sized>(
        &self,
        blocker: &B,
        timeout: Duration,
    ) -> Result<T, RecvTimeoutError> {
        self.recv_until(blocker, crate::deadline::after(timeout))
    }

    fn recv_until<B: Blocker + ?Sized>(
        &self,
        blocker: &B,
        deadline: u64,
    ) -> Result<T, RecvTimeoutError> {
        let mut expired = false;
        loop {
            match self.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            if expired || crate::deadline::passed(deadline) {
                return Err(RecvTimeoutError::Timeout);
            }
            expired = self.wait_side(blocker, Side::Recv, deadline);
        }
    }

    /// One side's park: set its flag, fence, and park on its key unless the other side moved
    /// meanwhile or the channel closed. The validator re-checks the same under the wait list's
    /// lock; a wake or a failed validation returns to the caller's retry loop. Returns whether
    /// the park timed out.
    fn wait_side<B: Blocker + ?Sized>(&self, blocker: &B, side: Side, deadline: u64) -> bool {
        let park = self.announce(side);
        if self.blocked(side) && !self.is_closed() {
            // SAFETY: the validator reads `self`, borrowed for the whole park.
            let token = unsafe { blocker.park(park.key, park.validate, park.data, deadline) };
            return token == crate::park::TOKEN_TIMED_OUT;
        }
        false
    }

    /// Sets `side`'s parked flag and fences (the parker's half of the Dekker pair with
    /// [`wake`](Self::wake)); returns how to park on that side.
    pub(crate) fn announce(&self, side: Side) -> super::select::ArmPark {
        // Already set: no RMW (the validator re-checks the flag under the wait list's lock,
        // so a waker clearing it meanwhile only makes the park fail and retry).
        if self.parked.load(Ordering::SeqCst) & side.flag() == 0 {
            self.parked.fetch_or(side.flag(), Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        super::select::ArmPark {
            key: self.key(side),
            validate: match side {
                Side::Send => full_and_waiting::<T>,
                Side::Recv => empty_and_waiting::<T>,
            },
            data: (self as *const Self).cast(),
        }
    }

    /// Whether `side` would block now (full for senders, empty for receivers).
    fn blocked(&self, side: Side) -> bool {
        match side {
            Side::Send => self.is_full(),
            Side::Recv => self.is_empty_now(),
        }
    }

    fn key(&self, side: Side) -> usize {
        match side {
            Side::Recv => self.rx_key(),
            Side::Send => self.tx_key(),
        }
    }

    /// Wakes one parked waiter of `side` if its flag is set (a select passing on a wake it
    /// did not use).
    pub(crate) fn wake_side(&self, side: Side) {
        self.wake(side.flag(), self.key(side));
    }

    /// Closes the channel: sends fail from now on, receivers drain what is left; every parked
    /// sender and receiver is woken. Idempotent.
    pub fn close(&self) {
        if self.tail.fetch_or(MARK, Ordering::SeqCst) & MARK != 0 {
            return;
        }
        crate::park::unpark_all(self.rx_key(), 0, |_| {
            self.parked.fetch_and(!RX_PARKED, Ordering::SeqCst);
        });
        crate::park::unpark_all(self.tx_key(), 0, |_| {
            self.parked.fetch_and(!TX_PARKED, Ordering::SeqCst);
        });
    }

    /// After a successful operation: wakes one waiter of the other side if its flag is set.
    #[inline]
    fn wake(&self, flag: u8, key: usize) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) & flag == 0 {
            return;
        }
        crate::park::unpark_one(key, |found| {
            if !found.more {
                self.parked.fetch_and(!flag, Ordering::SeqCst);
            }
            0
        });
    }

    /// No room: `capacity` values between `head` and `tail` (claimed or published).
    fn is_full(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst) & !MARK;
        tail.wrapping_sub(head) > self.mask
    }

    /// Nothing claimed between `head` and `tail` (an in-flight send is not "empty": its
    /// receiver waits for it rather than parking).
    fn is_empty_now(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst) & !MARK;
        head == tail
    }

    /// Vyukov enqueue; fails with `Full` or, once `tail` is marked, `Closed`.
    fn push(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            if pos & MARK != 0 {
                return Err(TrySendError::Closed(value));
            }
            let slot = &self.slots[pos & self.mask];
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos) as isize;
            if diff == 0 && crate::fault::cas_fails(crate::fault::Site::Cas) {
                pos = self.tail.load(Ordering::Relaxed);
            } else if diff == 0 {
                match self.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS on `tail` at `pos` gives us this slot until we
                        // publish it with the sequence store.
                        unsafe { (*slot.value.get()).write(value) };
                        slot.seq.store(pos.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                return Err(TrySendError::Full(value));
            } else {
                pos = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Vyukov dequeue. `Empty` only when nothing is claimed: a slot a sender claimed but has
    /// not published yet is waited for (spinning), so a close never hides a value whose send
    /// returned `Ok`.
    fn pop(&self) -> Result<T, TryRecvError> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos.wrapping_add(1)) as isize;
            if diff == 0 && crate::fault::cas_fails(crate::fault::Site::Cas) {
                pos = self.head.load(Ordering::Relaxed);
            } else if diff == 0 {
                match self.head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS on `head` at `pos` gives us the value the
                        // producer published (Acquire on `seq`).
                        let v = unsafe { (*slot.value.get()).assume_init_read() };
                        slot.seq
                            .store(pos.wrapping_add(self.mask + 1), Ordering::Release);
                        return Ok(v);
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                let tail = self.tail.load(Ordering::SeqCst);
                if tail & !MARK == pos {
                    return Err(if tail & MARK != 0 {
                        TryRecvError::Closed
                    } else {
                        TryRecvError::Empty
                    });
                }
                // A send claimed this slot and is writing it: wait for it.
                crate::shim::spin_loop();
                pos = self.head.load(Ordering::Relaxed);
            } else {
                pos = self.head.load(Ordering::Relaxed);
            }
        }
    }
}

/// Sender's validation: still full, open, and the sender flag still set.
///
/// # Safety
/// `chan` points at a live `Channel<T>`.
unsafe fn full_and_waiting<T>(chan: *const ()) -> bool {
    fence(Ordering::SeqCst);
    // SAFETY: caller contract.
    let c = unsafe { &*chan.cast::<Channel<T>>() };
    c.parked.load(Ordering::SeqCst) & TX_PARKED != 0 && c.is_full() && !c.is_closed()
}

/// Receiver's validation: still empty, open, and the receiver flag still set.
///
/// # Safety
/// `chan` points at a live `Channel<T>`.
unsafe fn empty_and_waiting<T>(chan: *const ()) -> bool {
    fence(Ordering::SeqCst);
    // SAFETY: caller contract.
    let c = unsafe { &*chan.cast::<Channel<T>>() };
    c.parked.load(Ordering::SeqCst) & RX_PARKED != 0 && c.is_empty_now() && !c.is_closed()
}

impl<T> Drop for Channel<T> {
    fn drop(&mut self) {
        while self.pop().is_ok() {}
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}
