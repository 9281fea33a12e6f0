//! A fixed-capacity Chase–Lev deque of job pointers.
//!
//! Memory orderings follow Lê, Pop, Cohen, Zappa Nardelli, "Correct and Efficient Work-Stealing
//! for Weak Memory Models" (PPoPP 2013), without the resize. Slots are atomics because a thief may
//! read a slot the owner is overwriting; such a thief always loses its CAS on `top` and discards
//! the value.
//!
//! Steal-half is a loop of single steals: a multi-item CAS on `top` is unsound against an
//! owner that pops from the bottom without a CAS (it could pop an item the thief already
//! claimed), which is why crossbeam-deque also steals one by one from LIFO workers.

use crate::job::{JobHeader, JobRef};
use crate::shim::{AtomicIsize, AtomicPtr, Ordering, fence};
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

/// Outcome of a steal attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Steal {
    /// The ring was empty.
    Empty,
    /// Got a job.
    Success(JobRef),
    /// Lost a race; the ring may still hold work.
    Retry,
}

/// Owner-LIFO, thief-FIFO ring of `JobRef`s with a power-of-two capacity.
pub(crate) struct Ring {
    /// Next index thieves take. Only ever increases.
    top: CachePadded<AtomicIsize>,
    /// One past the last pushed index. Written by the owner only.
    bottom: CachePadded<AtomicIsize>,
    /// `mask + 1` initialised slots: a leaked `Box<[_]>` (`owned`) or a piece of a user block
    /// ([`Ring::in_block`]), which outlives every use of the ring.
    slots: NonNull<AtomicPtr<JobHeader>>,
    mask: usize,
    /// Whether `slots` is our own boxed slice, freed on drop.
    owned: bool,
}

// SAFETY: the slots are atomics, reached only through `&self` like the rest of the ring (as
// they were when `slots` was a `Box<[AtomicPtr<_>]>`); a user block's slots are exclusive to
// this ring by `in_block`'s contract.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Alignment of a ring's slots in a user block: a cache line, so no two rings share one.
    pub(crate) const BLOCK_ALIGN: usize = 64;

    /// `capacity` must be a power of two (checked by the builder).
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two());
        let slots: Box<[AtomicPtr<JobHeader>]> = (0..capacity)
            .map(|_| AtomicPtr::new(core::ptr::null_mut()))
            .collect();
        let slots = NonNull::from(Box::leak(slots)).cast();
        Self::with_slots(slots, capacity, true)
    }

    /// Bytes of a user block that a ring of `capacity` slots takes: its slots, rounded up to
    /// whole [`BLOCK_ALIGN`](Self::BLOCK_ALIGN) units so that the next ring starts aligned.
    pub(crate) fn block_bytes(capacity: usize) -> usize {
        capacity
            .saturating_mul(size_of::<AtomicPtr<JobHeader>>())
            .next_multiple_of(Self::BLOCK_ALIGN)
    }

    /// A ring whose slots are the first `capacity` slots' worth of bytes at `at` (initialised
    /// here; the contents on entry do not matter).
    ///
    /// # Safety
    /// `at` is aligned to [`BLOCK_ALIGN`](Self::BLOCK_ALIGN) and valid for reads and writes of
    /// [`block_bytes(capacity)`](Self::block_bytes) bytes, which nothing else touches for as
    /// long as the ring is used (the builder's user block, handed out piece by piece).
    pub(crate) unsafe fn in_block(capacity: usize, at: NonNull<u8>) -> Self {
        assert!(capacity.is_power_of_two());
        debug_assert_eq!(at.as_ptr() as usize % Self::BLOCK_ALIGN, 0);
        let slots = at.cast::<AtomicPtr<JobHeader>>();
        for i in 0..capacity {
            // SAFETY: in bounds and exclusive by the caller's contract; BLOCK_ALIGN is at
            // least a slot's alignment (checked at compile time below).
            unsafe { slots.add(i).write(AtomicPtr::new(core::ptr::null_mut())) };
        }
        Self::with_slots(slots, capacity, false)
    }

    fn with_slots(slots: NonNull<AtomicPtr<JobHeader>>, capacity: usize, owned: bool) -> Self {
        Self {
            top: CachePadded::new(AtomicIsize::new(0)),
            bottom: CachePadded::new(AtomicIsize::new(0)),
            slots,
            mask: capacity - 1,
            owned,
        }
    }

    #[inline]
    fn slot(&self, i: isize) -> &AtomicPtr<JobHeader> {
        // SAFETY: `i & mask` is below the slot count, and the slots outlive `self` (see the
        // field).
        unsafe { self.slots.add(i as usize & self.mask).as_ref() }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Approximate length (exact for the owner when no thief is active).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        let b = self.bottom.load(Ordering::Relaxed);
        let t = self.top.load(Ordering::Relaxed);
        b.wrapping_sub(t).max(0) as usize
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Owner only. Returns the job back if the ring is full.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) -> Result<(), JobRef> {
        let b = self.bottom.load(Ordering::Relaxed);
        let t = self.top.load(Ordering::Acquire);
        if b.wrapping_sub(t) as usize > self.mask {
            return Err(job);
        }
        self.slot(b).store(job.as_ptr(), Ordering::Relaxed);
        // Release: a thief that sees the new bottom sees the slot.
        fence(Ordering::Release);
        self.bottom.store(b.wrapping_add(1), Ordering::Relaxed);
        Ok(())
    }

    /// Owner only: the most recently pushed job.
    #[inline]
    pub(crate) fn pop(&self) -> Option<JobRef> {
        // Cheap exit without the fence: `bottom` is ours, and a stale `top` only reads low
        // (it never decreases), which makes the ring look fuller, never emptier.
        if self
            .bottom
            .load(Ordering::Relaxed)
            .wrapping_sub(self.top.load(Ordering::Relaxed))
            <= 0
        {
            return None;
        }
        let b = self.bottom.load(Ordering::Relaxed).wrapping_sub(1);
        self.bottom.store(b, Ordering::Relaxed);
        // SeqCst: the bottom store must be visible before we read top, or a thief and we could
        // both take the last item.
        fence(Ordering::SeqCst);
        let t = self.top.load(Ordering::Relaxed);
        let len = b.wrapping_sub(t);
        if len < 0 {
            self.bottom.store(b.wrapping_add(1), Ordering::Relaxed);
            return None;
        }
        let ptr = self.slot(b).load(Ordering::Relaxed);
        if len > 0 {
            // SAFETY: indices in [top, bottom) hold published, unexecuted refs.
            return Some(unsafe { JobRef::from_ptr(ptr) });
        }
        // Last item: race thieves for it.
        let won = self
            .top
            .compare_exchange(t, t.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        self.bottom.store(b.wrapping_add(1), Ordering::Relaxed);
        // SAFETY: we won the only claim on index `b`.
        won.then(|| unsafe { JobRef::from_ptr(ptr) })
    }

    /// Any thread: the oldest job.
    #[inline]
    pub(crate) fn steal(&self) -> Steal {
        let t = self.top.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        let b = self.bottom.load(Ordering::Acquire);
        if b.wrapping_sub(t) <= 0 {
            return Steal::Empty;
        }
        let ptr = self.slot(t).load(Ordering::Relaxed);
        if self
            .top
            .compare_exchange(t, t.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return Steal::Retry;
        }
        // SAFETY: the CAS gave us the only claim on index `t`, which held a published ref.
        Steal::Success(unsafe { JobRef::from_ptr(ptr) })
    }
}

const _: () = assert!(Ring::BLOCK_ALIGN.is_multiple_of(align_of::<AtomicPtr<JobHeader>>()));

impl Drop for Ring {
    fn drop(&mut self) {
        if self.owned {
            let slots = core::ptr::slice_from_raw_parts_mut(self.slots.as_ptr(), self.mask + 1);
            // SAFETY: `owned`: `slots` is the boxed slice `new` leaked, of `mask + 1` slots.
            drop(unsafe { Box::from_raw(slots) });
        }
        // A user block's slots are left as they are: the block is the user's again once the
        // system is dropped, and atomics need no drop.
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::job::JobMeta;
    use core::ptr::NonNull;

    static META: JobMeta = JobMeta::new("t", file!(), line!());

    unsafe fn nop(_: NonNull<JobHeader>, _: &crate::fiber::Ctx) {}

    fn headers(n: usize) -> Vec<JobHeader> {
        (0..n)
            .map(|_| JobHeader::new(nop, core::ptr::null(), &META))
            .collect()
    }

    fn r(h: &JobHeader) -> JobRef {
        // SAFETY: test headers outlive the ring operations.
        unsafe { JobRef::new(NonNull::from(h)) }
    }

    #[test]
    fn owner_is_lifo_thief_is_fifo_and_full_is_reported() {
        let hs = headers(5);
        let ring = Ring::new(4);
        for h in &hs[..4] {
            ring.push(r(h)).unwrap();
        }
        assert_eq!(ring.push(r(&hs[4])), Err(r(&hs[4])));
        assert_eq!(ring.steal(), Steal::Success(r(&hs[0])));
        assert_eq!(ring.pop(), Some(r(&hs[3])));
        assert_eq!(ring.pop(), Some(r(&hs[2])));
        assert_eq!(ring.steal(), Steal::Success(r(&hs[1])));
        assert_eq!(ring.pop(), None);
        assert_eq!(ring.steal(), Steal::Empty);
    }

    #[test]
    fn concurrent_pop_and_steal_take_each_job_once() {
        const N: usize = 200_000;
        let hs = headers(64);
        let ring = Ring::new(64);
        let taken = std::sync::atomic::AtomicUsize::new(0);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Acquire) {
                    if let Steal::Success(_) = ring.steal() {
                        taken.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            let mut pushed = 0;
            let mut mine = 0;
            while pushed < N {
                if ring.push(r(&hs[pushed % 64])).is_ok() {
                    pushed += 1;
                }
                if pushed % 3 == 0 && ring.pop().is_some() {
                    mine += 1;
                }
            }
            while ring.pop().is_some() {
                mine += 1;
            }
            stop.store(true, Ordering::Release);
            taken.fetch_add(mine, Ordering::Relaxed);
        });
        assert_eq!(taken.load(Ordering::Relaxed), N);
    }
}
