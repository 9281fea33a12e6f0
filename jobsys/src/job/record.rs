//! The job record every queue carries a pointer to.

use super::JobMeta;
use crate::counter::CounterCore;
use crate::fiber::Ctx;
use crate::shim::UnsafeCell;
use core::ptr::{self, NonNull};

/// The first field of every runnable record (`#[repr(C)]`, so a pointer to the record is a
/// pointer to its header).
///
/// Invariant: a `JobRef` to a header is executed exactly once, and whoever holds the `JobRef`
/// has exclusive use of `next` (the intrusive link of the overflow and pinned lists). The record
/// stays alive until `execute` has decremented the owner counter; after that nobody may touch it.
#[repr(C)]
pub(crate) struct JobHeader {
    /// Runs the job, records a panic with its owner, decrements its owner counter.
    execute: unsafe fn(NonNull<JobHeader>, &Ctx),
    /// Intrusive link for the injector and pinned lists.
    next: UnsafeCell<*const JobHeader>,
    /// The counter this job decrements when it finishes; a wait uses it to recognise its own
    /// children.
    owner: UnsafeCell<*const CounterCore>,
    meta: &'static JobMeta,
}

// Four words: a header must stay cheap to embed in every stack job.
#[cfg(not(loom))]
const _: () = assert!(size_of::<JobHeader>() == 4 * size_of::<usize>());

impl JobHeader {
    crate::shim::loom_const! {
        pub(crate) fn new(
            execute: unsafe fn(NonNull<JobHeader>, &Ctx),
            owner: *const CounterCore,
            meta: &'static JobMeta,
        ) -> Self {
            Self {
                execute,
                next: UnsafeCell::new(ptr::null()),
                owner: UnsafeCell::new(owner),
                meta,
            }
        }
    }
}

/// A type-erased pointer to a [`JobHeader`]: what every queue stores.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct JobRef(NonNull<JobHeader>);

// SAFETY: a JobRef is a token for running a record whose submitter promised (through the safe
// API's `Send` bounds, or the raw API's contract) that it may run on any worker its affinity
// allows.
unsafe impl Send for JobRef {}

impl JobRef {
    /// # Safety
    /// `header` points to a live header whose record follows the [`JobHeader`] invariant.
    #[inline]
    pub(crate) unsafe fn new(header: NonNull<JobHeader>) -> Self {
        Self(header)
    }

    #[inline]
    pub(crate) fn as_ptr(self) -> *mut JobHeader {
        self.0.as_ptr()
    }

    /// # Safety
    /// `ptr` came from [`JobRef::as_ptr`] of a ref that has not been executed yet.
    #[inline]
    pub(crate) unsafe fn from_ptr(ptr: *const JobHeader) -> Self {
        // SAFETY: non-null by the caller's contract.
        Self(unsafe { NonNull::new_unchecked(ptr.cast_mut()) })
    }

    #[inline]
    pub(crate) fn meta(self) -> &'static JobMeta {
        // SAFETY: the record is alive until executed (type invariant); `meta` is never written.
        unsafe { (*self.0.as_ptr()).meta }
    }

    #[inline]
    pub(crate) fn owner(self) -> *const CounterCore {
        // SAFETY: as in `meta`; `owner` is written only by the holder of the ref before it is
        // published, and publication (a queue push) orders that write before this read.
        unsafe { (*self.0.as_ptr()).owner.with(|p| *p) }
    }

    #[inline]
    pub(crate) fn set_owner(self, owner: *const CounterCore) {
        // SAFETY: only the holder of an unpublished ref writes `owner`.
        unsafe { (*self.0.as_ptr()).owner.with_mut(|p| *p = owner) }
    }

    #[inline]
    pub(crate) fn next(self) -> *const JobHeader {
        // SAFETY: the holder of the ref (a list under its lock) has exclusive use of `next`.
        unsafe { (*self.0.as_ptr()).next.with(|p| *p) }
    }

    #[inline]
    pub(crate) fn set_next(self, next: *const JobHeader) {
        // SAFETY: as in `next`.
        unsafe { (*self.0.as_ptr()).next.with_mut(|p| *p = next) }
    }

    /// Runs the job.
    ///
    /// # Safety
    /// Called exactly once per ref, on a worker its affinity allows, on a fiber whose stack
    /// class fits it. The record may be gone when this returns.
    #[inline]
    pub(crate) unsafe fn execute(self, ctx: &Ctx) {
        // SAFETY: the header is alive until `execute` finishes (type invariant).
        let execute = unsafe { (*self.0.as_ptr()).execute };
        // SAFETY: forwarded caller contract.
        unsafe { execute(self.0, ctx) }
    }
}
