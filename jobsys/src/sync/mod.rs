//! Fiber-aware synchronisation: [`Mutex`], [`Event`], [`Semaphore`], [`WaitGroup`],
//! [`Barrier`], [`Channel`] (with [`select()`] over several channel operations) and [`RwLock`],
//! plus [`SpinLock`] for very short sections. Events, semaphores, wait groups, channels and
//! selects also wait with a deadline (`wait_timeout`, `acquire_timeout`, `recv_timeout`,
//! `send_timeout`, [`select_timeout`]); a wake racing the timeout is never lost (see the
//! guide, "Timed waits").
//!
//! Every blocking call takes a [`Blocker`]: the job's [`Ctx`] (or a [`Scope`], which derefs to
//! one), which parks the *fiber* — the worker runs other jobs meanwhile, including the one that
//! will release it — or [`ThisThread`], which blocks a plain OS thread that is not a worker.
//! Nothing allocates after creation: waiters wait in nodes on their own stacks, in
//! address-keyed wait lists built like the counters' (see `jobsys/src/park/`).
//!
//! Blocking in a `Drop` while the thread unwinds from a panic aborts the process (the fiber
//! cannot carry the panic across a park); so does any wait there.
//!
//! ```
//! use jobsys::sync::Mutex;
//!
//! let jobs = jobsys::JobSystem::builder().workers(2).build()?;
//! let total = Mutex::new(0u64);
//! jobs.run(|ctx| {
//!     ctx.scope(|s| {
//!         for i in 0..100 {
//!             let total = &total;
//!             // Parks this job's fiber if another job holds the lock.
//!             s.spawn(move |s| *total.lock(s) += i);
//!         }
//!     });
//! });
//! assert_eq!(total.into_inner(), 4950);
//! # Ok::<(), jobsys::BuildError>(())
//! ```
//!
//! Fairness: a [`Mutex`] unlock by default frees the lock and wakes the longest waiter to
//! compete for it, so a running locker (often the releaser) may barge in first and a contended
//! lock stays with whoever is running; unfairness is bounded — a waiter barged past 16 times
//! forces hand-off until it has the lock. [`Mutex::fair`] (or [`MutexGuard::unlock_fair`])
//! hands the lock directly to the longest waiter. The other primitives are served first come,
//! first served: a release hands the permit or the auto-reset event directly to the longest
//! waiter, so no waiter starves.
//!
//! Do not block with [`ThisThread`] on a worker thread (inside a job): it would block the
//! worker and every fiber on it, so such a wait panics with a message. Pass the job's `Ctx`.
//!
//! Deadlocks among primitives do not abort: a fiber parked on a primitive may be released by a
//! plain thread, so the pool's "every fiber is parked" report stays silent while any fiber
//! waits on one. Instead, after about a second with every worker asleep, a stall report names
//! the waiting jobs and what they wait on (a [`Barrier`] says its participants and arrivals),
//! once per stall.

mod barrier;
mod channel;
mod event;
#[cfg(all(test, loom))]
mod loom_tests;
mod mutex;
mod rwlock;
mod select;
mod semaphore;
mod spin;
mod wait_group;

pub use barrier::{Barrier, BarrierWaitResult};
pub use channel::{
    Channel, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use event::{Event, EventKind, EventWait};
pub use mutex::{Fairness, Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use select::{MAX_ARMS, RecvArm, SelectArm, SendArm, select, select_timeout, try_select};
pub use semaphore::Semaphore;
pub use spin::{SpinLock, SpinLockGuard};
pub use wait_group::WaitGroup;

use crate::park::{Group, ParkNode};
use crate::waitlist::Waiter;
use crate::{Ctx, Scope};

/// The token an unparker hands a waiter it gave the resource to (lock, permit, event).
pub(crate) const HANDOFF: usize = 1;

/// A park validator: re-checks, under the wait list's lock, that the waiter should still park.
pub(crate) type Validate = unsafe fn(*const ()) -> bool;

/// What a blocking call parks: a job's fiber or the calling OS thread. Sealed.
pub trait Blocker: private::Sealed {
    /// Parks on `key` while `validate(data)` holds, until an unparker wakes it or `deadline`
    /// (`deadline::NEVER`: none) passes; returns the unparker's token (`TOKEN_TIMED_OUT` on
    /// timeout).
    ///
    /// # Safety
    /// `validate(data)` is sound to call on any thread until this returns.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    unsafe fn park(&self, key: usize, validate: Validate, data: *const (), deadline: u64) -> usize;

    /// The waiter a select's group wakes (`key`: the first arm's, for deadlock reports).
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn group_waiter(&self, key: usize) -> Waiter;

    /// Parks on every node of `group` (a select) until an arm or the deadline in `nodes[0]`
    /// claims it; the caller unlinks the nodes afterwards.
    ///
    /// # Safety
    /// Every node's validator is sound to call on any thread until this returns; `group`'s
    /// waiter came from [`group_waiter`](Self::group_waiter) of this blocker.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    unsafe fn park_group(&self, group: &Group, nodes: &mut [ParkNode]);

    /// Says what the next park waits for, for stall reports (a fiber records it; a thread
    /// ignores it).
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn describe_wait(&self, _what: crate::fiber::WaitWhat) {}

    /// The `worker` the lock profile hooks report for this blocker
    /// ([`profile::NO_WORKER`](crate::profile::NO_WORKER) for a plain thread).
    #[doc(hidden)]
    fn profile_worker(&self) -> usize {
        crate::profile::NO_WORKER
    }
}

/// Blocks the calling OS thread (one that is not a jobsys worker): for code outside jobs —
/// an IO thread, a test's main thread before `run`.
///
/// # Panics
/// A wait through it that would block, on a worker thread of any jobsys system (inside a
/// job, or in code a job calls), panics instead of stalling the worker and every fiber on it:
/// pass the job's `Ctx` there. A wait that does not block (an unlocked mutex, a set event)
/// is not refused.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThisThread;

/// `Ctx` and `Scope` (which derefs to the `Ctx` of its body) park the fiber.
macro_rules! fiber_blocker {
    ($($ty:ty),*) => {$(
        impl Blocker for $ty {
            #[allow(private_interfaces)]
            unsafe fn park(
                &self,
                key: usize,
                validate: Validate,
                data: *const (),
                deadline: u64,
            ) -> usize {
                // SAFETY: forwarded contract.
                unsafe { Ctx::park(self, key, validate, data, deadline) }
            }

            #[allow(private_interfaces)]
            fn group_waiter(&self, key: usize) -> Waiter {
                Ctx::group_waiter(self, key)
            }

            #[allow(private_interfaces)]
            fn describe_wait(&self, what: crate::fiber::WaitWhat) {
                Ctx::describe_wait(self, what)
            }

            fn profile_worker(&self) -> usize {
                Ctx::worker_index(self)
            }

            #[allow(private_interfaces)]
            unsafe fn park_group(&self, group: &Group, nodes: &mut [ParkNode]) {
                // SAFETY: forwarded contract.
                unsafe { Ctx::park_group(self, group, nodes) }
            }
        }
    )*};
}
fiber_blocker!(Ctx, Scope<'_, '_>);

impl ThisThread {
    /// Refuses to block a worker thread (see the type's docs).
    #[track_caller]
    fn refuse_on_worker() {
        if crate::worker::on_worker_thread() {
            crate::worker::refuse_blocking_on_worker(
                "a jobsys::sync wait through ThisThread",
                "pass the job's Ctx (or Scope) as the blocker",
            );
        }
    }
}

impl Blocker for ThisThread {
    #[allow(private_interfaces)]
    unsafe fn park(&self, key: usize, validate: Validate, data: *const (), deadline: u64) -> usize {
        Self::refuse_on_worker();
        // SAFETY: forwarded contract.
        unsafe { crate::park::park_thread(key, validate, data, deadline) }
    }

    #[allow(private_interfaces)]
    fn group_waiter(&self, _key: usize) -> Waiter {
        Waiter::thread()
    }

    #[allow(private_interfaces)]
    unsafe fn park_group(&self, group: &Group, nodes: &mut [ParkNode]) {
        Self::refuse_on_worker();
        // SAFETY: forwarded contract.
        unsafe { crate::park::park_thread_group(group, nodes.as_mut_ptr(), nodes.len()) }
    }
}

/// A lock acquisition that had to wait, as reported to the profile hooks: `lock_wait_begin`
/// when it starts waiting, `lock_obtained` when it gets the lock, `lock_released` when its guard
/// drops. An acquisition that gets the lock at once reports nothing (its guard carries
/// [`Contention::NONE`]), so the uncontended path costs the same with the `profile` feature.
/// Zero-sized, and every method empty, without the feature.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Contention {
    /// The worker that waited, when hooks were installed at the time.
    #[cfg(feature = "profile")]
    worker: Option<usize>,
}

impl Contention {
    /// Nothing reported: the lock was free.
    pub(crate) const NONE: Self = Self {
        #[cfg(feature = "profile")]
        worker: None,
    };

    /// `blocker` found the lock `name` at `addr` held and is about to wait for it.
    #[inline(always)]
    pub(crate) fn begin<B: Blocker + ?Sized>(blocker: &B, name: &'static str, addr: usize) -> Self {
        #[cfg(feature = "profile")]
        {
            if !crate::profile::active() {
                return Self::NONE;
            }
            let worker = blocker.profile_worker();
            crate::profile::lock_wait_begin(worker, name, addr);
            Self {
                worker: Some(worker),
            }
        }
        #[cfg(not(feature = "profile"))]
        {
            let _ = (blocker, name, addr);
            Self::NONE
        }
    }

    /// The waiter got the lock. Reported for the worker `blocker` runs on now (in migration
    /// mode the wait may have resumed on another worker than it began on), which the release
    /// reports too.
    #[inline(always)]
    pub(crate) fn obtained<B: Blocker + ?Sized>(
        self,
        blocker: &B,
        name: &'static str,
        addr: usize,
    ) -> Self {
        #[cfg(feature = "profile")]
        if self.worker.is_some() {
            let worker = blocker.profile_worker();
            crate::profile::lock_obtained(worker, name, addr);
            return Self {
                worker: Some(worker),
            };
        }
        let _ = (blocker, name, addr);
        self
    }

    /// The guard of a reported acquisition dropped.
    #[inline(always)]
    pub(crate) fn released(self, name: &'static str, addr: usize) {
        #[cfg(feature = "profile")]
        if let Some(worker) = self.worker {
            crate::profile::lock_released(worker, name, addr);
        }
        #[cfg(not(feature = "profile"))]
        let _ = (name, addr);
    }
}

/// The park key of a primitive: the address of one of its fields (never of the primitive
/// itself, which a primitive nested at offset 0 of its data would share).
pub(crate) fn key_of<W>(field: &W) -> usize {
    (field as *const W).cast::<u8>() as usize
}

/// A primitive's state word with a "waiters may be parked" bit.
pub(crate) trait ParkWord {
    /// Makes sure every bit of `bit` is set, given the value `seen` was read; false if the word changed
    /// meanwhile (re-read and retry).
    fn try_set(&self, seen: u64, bit: u64) -> bool;
}

macro_rules! park_word {
    ($($atomic:ty => $int:ty),*) => {$(
        impl ParkWord for $atomic {
            fn try_set(&self, seen: u64, bit: u64) -> bool {
                seen & bit == bit
                    || self
                        .compare_exchange_weak(
                            seen as $int,
                            (seen | bit) as $int,
                            crate::shim::Ordering::Relaxed,
                            crate::shim::Ordering::Relaxed,
                        )
                        .is_ok()
            }
        }
    )*};
}
park_word!(
    crate::shim::AtomicU8 => u8,
    crate::shim::AtomicU32 => u32,
    crate::shim::AtomicUsize => usize,
    crate::shim::AtomicU64 => u64
);

/// How a [`park_with_bit`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// Setting the bit lost a race: re-read the word and retry (nothing parked).
    Raced,
    /// Woken (or not parked: the validator said no) without the resource: re-check.
    Retry,
    /// The releaser handed the resource (lock, permit, signal) to this waiter.
    Handoff,
    /// The deadline passed before any releaser took the waiter.
    TimedOut,
}

/// The wait step the word-based primitives share: set `bit` in `word` (read as `seen`), then
/// park `blocker` on the word's address while `validate(word)` holds, until `deadline`
/// (`deadline::NEVER`: none). A [`Woken::Handoff`] comes after an Acquire fence, so the waiter
/// sees what the releaser wrote.
///
/// A timed-out waiter leaves the bit set even if it was the last one: the next release finds
/// nobody to hand to and clears it (every primitive's unpark callback handles `woken == 0`).
pub(crate) fn park_with_bit<W: ParkWord, B: Blocker + ?Sized>(
    blocker: &B,
    word: &W,
    seen: u64,
    bit: u64,
    validate: Validate,
    deadline: u64,
) -> Woken {
    if !word.try_set(seen, bit) {
        return Woken::Raced;
    }
    // SAFETY: `validate` reads `word`, which the caller borrows for the whole call.
    let token =
        unsafe { blocker.park(key_of(word), validate, (word as *const W).cast(), deadline) };
    match token {
        HANDOFF => {
            crate::shim::fence(crate::shim::Ordering::Acquire);
            Woken::Handoff
        }
        crate::park::TOKEN_TIMED_OUT => Woken::TimedOut,
        _ => Woken::Retry,
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for crate::Ctx {}
    impl Sealed for crate::Scope<'_, '_> {}
    impl Sealed for super::ThisThread {}
}

/// Spins this many times on a contended primitive before parking; picked (parking costs a
/// fiber switch, ~100 ns), tune with data.
#[cfg(not(loom))]
pub(crate) const SPINS: u32 = 64;
/// Under loom, park at once: a spin is a loom yield, which always lets the holder finish
/// first, so the models would never reach the park path.
#[cfg(loom)]
pub(crate) const SPINS: u32 = 0;
