//! An intrusive FIFO of jobs under a spin lock: the injector and the pinned inboxes.

use crate::job::{JobHeader, JobRef};
use crate::shim::{AtomicUsize, Ordering, SpinLock};
use core::ptr;

struct Ends {
    head: *const JobHeader,
    tail: *const JobHeader,
}

/// FIFO of jobs linked through their headers' `next` field. Unbounded, allocation-free.
pub(crate) struct JobList {
    ends: SpinLock<Ends>,
    /// Length, readable without the lock. SeqCst on both sides: the sleep protocol reads it
    /// after its fence to decide whether work exists.
    len: AtomicUsize,
}

// SAFETY: the raw pointers are job headers owned by the list while linked; they are only
// touched under the lock.
unsafe impl Send for JobList {}
// SAFETY: as above.
unsafe impl Sync for JobList {}

impl JobList {
    pub(crate) fn new() -> Self {
        Self {
            ends: SpinLock::new(Ends {
                head: ptr::null(),
                tail: ptr::null(),
            }),
            len: AtomicUsize::new(0),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn push(&self, job: JobRef) {
        self.push_chain(job, job, 1);
    }

    /// Appends the chain `first ..= last` (already linked through `next`, `n` jobs) under one
    /// lock acquisition.
    pub(crate) fn push_chain(&self, first: JobRef, last: JobRef, n: usize) {
        last.set_next(ptr::null());
        let mut ends = self.ends.lock();
        if ends.tail.is_null() {
            ends.head = first.as_ptr();
        } else {
            // SAFETY: `tail` is a linked job, owned by the list, alive until popped.
            unsafe { JobRef::from_ptr(ends.tail) }.set_next(first.as_ptr());
        }
        ends.tail = last.as_ptr();
        self.len.fetch_add(n, Ordering::SeqCst);
    }

    /// Pops up to `max` jobs under one lock acquisition, handing each to `take`; returns how
    /// many were taken.
    pub(crate) fn pop_batch(&self, max: usize, mut take: impl FnMut(JobRef)) -> usize {
        if max == 0 || self.len.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut ends = self.ends.lock();
        let mut n = 0;
        while n < max && !ends.head.is_null() {
            // SAFETY: `head` is a linked job owned by the list.
            let job = unsafe { JobRef::from_ptr(ends.head) };
            ends.head = job.next();
            take(job);
            n += 1;
        }
        if ends.head.is_null() {
            ends.tail = ptr::null();
        }
        self.len.fetch_sub(n, Ordering::SeqCst);
        n
    }

    /// Whether some job in the list satisfies `pred` (a look under the lock; no lock when
    /// empty).
    pub(crate) fn any(&self, mut pred: impl FnMut(JobRef) -> bool) -> bool {
        // SeqCst like `is_empty`: the sleep protocol's look reads it.
        if self.is_empty() {
            return false;
        }
        let ends = self.ends.lock();
        let mut cur = ends.head;
        while !cur.is_null() {
            // SAFETY: linked jobs are owned by the list and alive until popped; we hold the lock.
            let job = unsafe { JobRef::from_ptr(cur) };
            if pred(job) {
                return true;
            }
            cur = job.next();
        }
        false
    }

    /// Removes and returns the first job (oldest first) that `pred` accepts.
    pub(crate) fn pop_first(&self, mut pred: impl FnMut(JobRef) -> bool) -> Option<JobRef> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut ends = self.ends.lock();
        let mut prev: *const JobHeader = ptr::null();
        let mut cur = ends.head;
        while !cur.is_null() {
            // SAFETY: linked jobs are owned by the list and alive until popped; we hold the lock.
            let job = unsafe { JobRef::from_ptr(cur) };
            let next = job.next();
            if pred(job) {
                if prev.is_null() {
                    ends.head = next;
                } else {
                    // SAFETY: `prev` is a linked job, as above.
                    unsafe { JobRef::from_ptr(prev) }.set_next(next);
                }
                if ends.tail == cur {
                    ends.tail = prev;
                }
                self.len.fetch_sub(1, Ordering::SeqCst);
                return Some(job);
            }
            prev = cur;
            cur = next;
        }
        None
    }
}
