//! A growable Chase–Lev deque of job pointers.
//!
//! Memory orderings follow Lê, Pop, Cohen, Zappa Nardelli, "Correct and Efficient Work-Stealing
//! for Weak Memory Models" (PPoPP 2013), resize included. Slots are atomics because a thief may
//! read a slot the owner is overwriting; such a thief always loses its CAS on `top` and discards
//! the value.
//!
//! Growth: when the owner pushes onto a full ring whose slots it allocated (a *managed* ring),
//! it allocates a buffer of twice the slots, copies the live range `[top, bottom)` into it and
//! publishes it (a release store that thieves load with acquire). The old buffer is *retired*,
//! not freed: a thief that loaded it before the switch may still read a slot from it, and every
//! slot it can read there holds the same job as the new buffer (the owner never writes a
//! retired buffer again), so its CAS on `top` decides as before. Retired buffers are chained
//! through a header line in front of each managed buffer's slots and freed when the ring is
//! dropped: at most as many bytes as the current buffer, so a ring never holds more than twice
//! its largest buffer. Growth stops at the ring's limit (`Builder::queue_growth_limit`, 2^20
//! slots by default); a full ring at its limit reports `Err` and the caller overflows to the
//! injector, as a ring in a user block ([`Ring::in_block`]) always does: those never grow, so a
//! system whose queues live in the user's memory never allocates for them. A ring keeps its
//! largest buffer once grown, so a workload that filled it once runs again without allocating.
//!
//! Steal-half is a loop of single steals: a multi-item CAS on `top` is unsound against an
//! owner that pops from the bottom without a CAS (it could pop an item the thief already
//! claimed), which is why crossbeam-deque also steals one by one from LIFO workers.

use crate::job::{JobHeader, JobRef};
use crate::shim::{AtomicIsize, AtomicPtr, AtomicUsize, Ordering, fence};
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

type Slot = AtomicPtr<JobHeader>;

/// A buffer of slots, packed in one word so that owner and thieves read address and size in
/// one load: the address of its first slot (a multiple of [`Ring::BLOCK_ALIGN`]) plus the
/// base-2 logarithm of its slot count (below 64, so it fits in the alignment's low bits).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Buf(usize);

const LOG_BITS: usize = Ring::BLOCK_ALIGN - 1;
const _: () = assert!(usize::BITS as usize <= Ring::BLOCK_ALIGN);

impl Buf {
    fn new(slots: NonNull<Slot>, capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        debug_assert_eq!(slots.as_ptr() as usize & LOG_BITS, 0);
        Self(slots.as_ptr() as usize | capacity.trailing_zeros() as usize)
    }

    #[inline]
    fn mask(self) -> usize {
        (1usize << (self.0 & LOG_BITS)) - 1
    }

    #[inline]
    fn slots(self) -> *mut Slot {
        (self.0 & !LOG_BITS) as *mut Slot
    }

    /// The slot of index `i`.
    ///
    /// # Safety
    /// `self` is a buffer of a live ring (current or retired: both stay allocated until the
    /// ring is dropped).
    #[inline]
    unsafe fn slot<'a>(self, i: isize) -> &'a Slot {
        // SAFETY: `i & mask` is below the slot count, and the buffer is allocated and
        // initialised (caller's contract).
        unsafe { &*self.slots().add(i as usize & self.mask()) }
    }

    /// Layout of a managed buffer of `capacity` slots: one `BLOCK_ALIGN` header line (the
    /// retired buffer it replaced) and the slots.
    fn managed_layout(capacity: usize) -> Option<std::alloc::Layout> {
        let bytes = capacity
            .checked_mul(size_of::<Slot>())?
            .checked_add(Ring::BLOCK_ALIGN)?;
        std::alloc::Layout::from_size_align(bytes, Ring::BLOCK_ALIGN).ok()
    }

    /// A managed buffer of `capacity` (a power of two) null slots, whose header records
    /// `retired` (the buffer it replaces, or `None`); `None` if the allocation failed.
    fn allocate(capacity: usize, retired: Option<Buf>) -> Option<Self> {
        let layout = Self::managed_layout(capacity)?;
        // SAFETY: the layout has a non-zero size (at least the header line).
        let base = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        // SAFETY: the header line is the first BLOCK_ALIGN bytes of the fresh allocation,
        // aligned for a usize.
        unsafe { base.cast::<usize>().write(retired.map_or(0, |b| b.0)) };
        // SAFETY: the slots start one header line in, inside the allocation.
        let slots = unsafe { base.add(Ring::BLOCK_ALIGN) }.cast::<Slot>();
        for i in 0..capacity {
            // SAFETY: slot `i` is inside the allocation and aligned (BLOCK_ALIGN is a multiple
            // of a slot's alignment, checked below).
            unsafe { slots.add(i).write(AtomicPtr::new(core::ptr::null_mut())) };
        }
        Some(Self::new(slots, capacity))
    }

    /// Frees a managed buffer and returns the retired buffer its header records.
    ///
    /// # Safety
    /// `self` came from [`allocate`](Self::allocate), is not freed yet, and nothing reads it
    /// any more.
    unsafe fn free(self) -> Option<Buf> {
        let capacity = self.mask() + 1;
        // SAFETY: `allocate` put the header one line before the slots.
        let base = unsafe { self.slots().cast::<u8>().sub(Ring::BLOCK_ALIGN) };
        // SAFETY: the header holds the word `allocate` wrote.
        let retired = unsafe { base.cast::<usize>().read() };
        // SAFETY: the slots were initialised by `allocate`; nobody uses them any more.
        unsafe {
            core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(self.slots(), capacity))
        };
        let layout = Self::managed_layout(capacity).expect("the layout it was allocated with");
        // SAFETY: `base` was allocated with this layout (caller's contract).
        unsafe { std::alloc::dealloc(base, layout) };
        (retired != 0).then_some(Buf(retired))
    }
}

/// Owner-LIFO, thief-FIFO ring of `JobRef`s with a power-of-two capacity that a managed ring
/// doubles when its owner pushes onto it full (see the module docs).
pub(crate) struct Ring {
    /// Next index thieves take. Only ever increases.
    top: CachePadded<AtomicIsize>,
    /// One past the last pushed index. Written by the owner only.
    bottom: CachePadded<AtomicIsize>,
    /// The current buffer ([`Buf`]'s packing). Written by the owner only (when it grows).
    buf: AtomicUsize,
    /// The first buffer: managed (from [`Buf::allocate`]) or a piece of a user block
    /// ([`Ring::in_block`]), which outlives every use of the ring.
    first: Buf,
    /// Whether `first` is managed (freed on drop); only managed rings grow.
    owned: bool,
    /// The most slots this ring may grow to.
    limit: usize,
}

// SAFETY: the buffers hold atomics, reached only through `&self` like the rest of the ring;
// a user block's slots are exclusive to this ring by `in_block`'s contract, and managed
// buffers are this ring's own allocations.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Alignment of a ring's slots in a user block: a cache line, so no two rings share one.
    /// Also the alignment of managed buffers, whose low bits carry the size (see [`Buf`]).
    pub(crate) const BLOCK_ALIGN: usize = 64;

    /// A managed ring of `capacity` slots (a power of two, checked by the builder) that doubles
    /// up to `limit` slots: to the largest power of two at most `limit` (a doubling past a
    /// limit that is not a power of two would overshoot it), and never below `capacity`.
    pub(crate) fn growable(capacity: usize, limit: usize) -> Self {
        assert!(capacity.is_power_of_two());
        let first = Buf::allocate(capacity, None).unwrap_or_else(|| {
            std::alloc::handle_alloc_error(
                Buf::managed_layout(capacity).expect("a ring of this size fits the address space"),
            )
        });
        // The largest power of two at most `limit` (0 for 0).
        let limit = limit.checked_ilog2().map_or(0, |log| 1usize << log);
        Self::with_buf(first, true, limit.max(capacity))
    }

    /// Bytes of a user block that a ring of `capacity` slots takes: its slots, rounded up to
    /// whole [`BLOCK_ALIGN`](Self::BLOCK_ALIGN) units so that the next ring starts aligned.
    pub(crate) fn block_bytes(capacity: usize) -> usize {
        capacity
            .saturating_mul(size_of::<Slot>())
            .next_multiple_of(Self::BLOCK_ALIGN)
    }

    /// A ring whose slots are the first `capacity` slots' worth of bytes at `at` (initialised
    /// here; the contents on entry do not matter). It never grows: a full ring overflows.
    ///
    /// # Safety
    /// `at` is aligned to [`BLOCK_ALIGN`](Self::BLOCK_ALIGN) and valid for reads and writes of
    /// [`block_bytes(capacity)`](Self::block_bytes) bytes, which nothing else touches for as
    /// long as the ring is used (the builder's user block, handed out piece by piece).
    pub(crate) unsafe fn in_block(capacity: usize, at: NonNull<u8>) -> Self {
        assert!(capacity.is_power_of_two());
        debug_assert_eq!(at.as_ptr() as usize % Self::BLOCK_ALIGN, 0);
        let slots = at.cast::<Slot>();
        for i in 0..capacity {
            // SAFETY: in bounds and exclusive by the caller's contract; BLOCK_ALIGN is at
            // least a slot's alignment (checked at compile time below).
            unsafe { slots.add(i).write(AtomicPtr::new(core::ptr::null_mut())) };
        }
        Self::with_buf(Buf::new(slots, capacity), false, capacity)
    }

    fn with_buf(first: Buf, owned: bool, limit: usize) -> Self {
        Self {
            top: CachePadded::new(AtomicIsize::new(0)),
            bottom: CachePadded::new(AtomicIsize::new(0)),
            buf: AtomicUsize::new(first.0),
            first,
            owned,
            limit,
        }
    }

    /// Slots in the current buffer.
    pub(crate) fn capacity(&self) -> usize {
        Buf(self.buf.load(Ordering::Relaxed)).mask() + 1
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

    /// Owner only. Grows a full managed ring below its limit; returns the job back if the
    /// ring is full and cannot grow.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) -> Result<(), JobRef> {
        let b = self.bottom.load(Ordering::Relaxed);
        let t = self.top.load(Ordering::Acquire);
        // Relaxed: only the owner (us) writes `buf`.
        let mut buf = Buf(self.buf.load(Ordering::Relaxed));
        if b.wrapping_sub(t) as usize > buf.mask() {
            match self.grow(buf, t, b) {
                Some(bigger) => buf = bigger,
                None => return Err(job),
            }
        }
        // SAFETY: `buf` is this ring's current buffer.
        unsafe { buf.slot(b) }.store(job.as_ptr(), Ordering::Relaxed);
        // Release: a thief that sees the new bottom sees the slot (and the buffer it is in).
        fence(Ordering::Release);
        self.bottom.store(b.wrapping_add(1), Ordering::Relaxed);
        Ok(())
    }

    /// Owner only: replaces the full buffer `old` (holding `[t, b)`) by one of twice the
    /// slots, unless the ring is at its limit (or unmanaged, or the allocation fails).
    #[cold]
    fn grow(&self, old: Buf, t: isize, b: isize) -> Option<Buf> {
        let capacity = old.mask() + 1;
        if !self.owned || capacity >= self.limit {
            return None;
        }
        let new = Buf::allocate(capacity * 2, Some(old))?;
        let mut i = t;
        while i != b {
            // Thieves may have taken some of `[t, b)` since we read `t`: copying those too is
            // harmless, they are below `top` and never read again.
            // SAFETY: `old` is this ring's current buffer (the owner's, us).
            let job = unsafe { old.slot(i) }.load(Ordering::Relaxed);
            // SAFETY: `new` is this ring's buffer, allocated above and not yet published.
            unsafe { new.slot(i) }.store(job, Ordering::Relaxed);
            i = i.wrapping_add(1);
        }
        // Release: a thief that loads the new buffer sees the copied slots. `old` stays
        // allocated (chained in `new`'s header) for thieves that loaded it before.
        self.buf.store(new.0, Ordering::Release);
        Some(new)
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
        // Relaxed: only the owner (us) writes `buf`.
        let buf = Buf(self.buf.load(Ordering::Relaxed));
        // SAFETY: `buf` is this ring's current buffer.
        let ptr = unsafe { buf.slot(b) }.load(Ordering::Relaxed);
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
        // Acquire: pairs with `grow`'s release, so the slots of the buffer we see are
        // initialised. A buffer the owner retired since still holds index `t`'s job (it was
        // copied, never overwritten); a slot the owner reused means `top` moved past `t`, and
        // the CAS below fails.
        let buf = Buf(self.buf.load(Ordering::Acquire));
        // SAFETY: current or retired, `buf` stays allocated until the ring is dropped.
        let ptr = unsafe { buf.slot(t) }.load(Ordering::Relaxed);
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

const _: () = assert!(Ring::BLOCK_ALIGN.is_multiple_of(align_of::<Slot>()));

impl Drop for Ring {
    fn drop(&mut self) {
        // The current buffer and every buffer it retired, newest first, down to the first.
        let mut buf = Buf(self.buf.load(Ordering::Relaxed));
        while buf != self.first {
            // SAFETY: every buffer but the first came from `Buf::allocate` in `grow`; the ring
            // is being dropped, so no thief reads any of them.
            buf = unsafe { buf.free() }.expect("a grown buffer records the one it replaced");
        }
        if self.owned {
            // SAFETY: `owned`: the first buffer came from `Buf::allocate` in `growable`.
            unsafe { self.first.free() };
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
        let ring = Ring::growable(4, 4);
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
        // Starts at 2 slots and grows to 64 while the thief steals.
        let ring = Ring::growable(2, 64);
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

    #[test]
    fn a_managed_ring_grows_keeping_order_and_a_block_ring_does_not() {
        let hs = headers(40);
        let ring = Ring::growable(4, 32);
        for h in &hs[..32] {
            ring.push(r(h)).unwrap();
        }
        assert_eq!(ring.capacity(), 32);
        assert_eq!(
            ring.push(r(&hs[32])),
            Err(r(&hs[32])),
            "grows no further than its limit"
        );
        assert_eq!(ring.steal(), Steal::Success(r(&hs[0])));
        assert_eq!(ring.pop(), Some(r(&hs[31])));
        for h in &hs[32..34] {
            ring.push(r(h)).unwrap();
        }
        assert_eq!(ring.pop(), Some(r(&hs[33])));
        assert_eq!(ring.steal(), Steal::Success(r(&hs[1])));
        let mut rest = Vec::new();
        while let Some(j) = ring.pop() {
            rest.push(j);
        }
        let expected: Vec<_> = hs[2..31].iter().chain(&hs[32..33]).rev().map(r).collect();
        assert_eq!(rest, expected);

        let mut block = vec![0u64; 8 + Ring::BLOCK_ALIGN / 8];
        let at = block.as_mut_ptr().cast::<u8>();
        let at = NonNull::new(at.wrapping_add(at.align_offset(Ring::BLOCK_ALIGN))).unwrap();
        // SAFETY: aligned, and the vector holds `block_bytes(4)` bytes past the alignment
        // slack; nothing else touches them while the ring lives.
        let ring = unsafe { Ring::in_block(4, at) };
        for h in &hs[..4] {
            ring.push(r(h)).unwrap();
        }
        assert_eq!(
            ring.push(r(&hs[4])),
            Err(r(&hs[4])),
            "a ring in a user block never grows"
        );
        assert_eq!(ring.capacity(), 4);
        drop(ring);
        drop(block);
    }
}
