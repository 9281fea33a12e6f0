//! The ring of frames in flight: which frame holds which slot, when a slot is free again,
//! and the slot's arenas.

use super::arena::WorkerArena;
use super::stats::{Sample, StatsBook};
use crate::counter::CounterCore;
use crate::panic::PanicSlot;
use crate::shim::{AtomicPtr, AtomicU32, AtomicU64, Ordering, SpinLock};
use crate::worker::Shared;
use core::alloc::Layout;
use core::ptr::NonNull;

/// What a loop of frames (`Ctx::frames`, or the one frame of `Ctx::frame`) shares with its
/// frames: a count of its frames not yet retired, and the first panic of their later jobs.
pub(crate) struct LoopState {
    pub(crate) pending: CounterCore,
    pub(crate) panic: PanicSlot,
}

impl LoopState {
    pub(crate) fn new() -> Self {
        Self {
            pending: CounterCore::new(0),
            panic: PanicSlot::new(),
        }
    }
}

/// One frame in flight.
pub(crate) struct FrameSlot {
    /// The index of the frame whose turn it is to open in this slot. Frame `i` (in slot
    /// `i % K`) may open once `turn == i`; its retirement stores `i + K`. So frame `i` has
    /// retired exactly when this slot's `turn > i`.
    turn: AtomicU64,
    /// Parts of the frame still running: its body, and each later job.
    live: AtomicU32,
    /// The frame that holds the slot (valid while `live > 0`).
    index: AtomicU64,
    /// The loop that opened it (valid while `live > 0`; the loop waits for the frame).
    owner: AtomicPtr<LoopState>,
    /// One arena per worker.
    pub(crate) arenas: Box<[WorkerArena]>,
}

/// Where the arenas' blocks come from.
enum Backing {
    /// One allocation made at build time, freed with the ring.
    Managed(NonNull<u8>, Layout),
    /// The user's block.
    User(#[allow(dead_code)] crate::Memory),
    /// No arena memory (zero capacity).
    None,
}

/// Frames in flight, their arenas and their stats.
pub(crate) struct FrameRing {
    slots: Box<[FrameSlot]>,
    /// The next frame index to hand out.
    next: AtomicU64,
    pub(crate) book: SpinLock<StatsBook>,
    backing: Backing,
}

// SAFETY: `Backing` only owns memory that the arenas use under their own rules.
unsafe impl Send for FrameRing {}
// SAFETY: as for `Send`; every shared field is an atomic, a lock or a `Sync` arena.
unsafe impl Sync for FrameRing {}

/// Frame configuration chosen on the builder.
#[derive(Debug)]
pub(crate) struct FrameConfig {
    pub(crate) in_flight: usize,
    pub(crate) arena_capacity: usize,
    pub(crate) arena_limit: usize,
    pub(crate) memory: Option<crate::Memory>,
}

impl FrameConfig {
    /// Bytes of arena blocks, each rounded up to a cache line, for `workers` workers.
    pub(crate) fn arena_bytes(&self, workers: usize) -> usize {
        Self::blocks(self.arena_capacity, self.in_flight, workers)
    }

    fn blocks(capacity: usize, in_flight: usize, workers: usize) -> usize {
        Self::checked_blocks(capacity, in_flight, workers).unwrap_or(usize::MAX)
    }

    /// The arena blocks' bytes, or `None` if they do not fit in one allocation (the builder
    /// refuses such a configuration).
    pub(crate) fn checked_blocks(
        capacity: usize,
        in_flight: usize,
        workers: usize,
    ) -> Option<usize> {
        capacity
            .checked_next_multiple_of(64)?
            .checked_mul(workers)?
            .checked_mul(in_flight)?
            .checked_add(63)
            .filter(|&n| n <= isize::MAX as usize)
            .map(|n| n - 63)
    }

    /// Bytes a user block must have for these arenas: the blocks plus the slack to align
    /// its start to a cache line (none when there are no blocks).
    pub(crate) fn bytes_needed(capacity: usize, in_flight: usize, workers: usize) -> usize {
        match Self::blocks(capacity, in_flight, workers) {
            0 => 0,
            n => n.saturating_add(63),
        }
    }
}

impl FrameRing {
    /// Reserves every arena block (from `config.memory`, or one allocation of its own).
    /// The caller checked that a user block is large enough (`arena_bytes + 63`).
    pub(crate) fn new(config: FrameConfig, workers: usize) -> Result<Self, crate::BuildError> {
        let k = config.in_flight;
        let block = config.arena_capacity.next_multiple_of(64);
        let total = config.arena_bytes(workers);
        let (base, backing) = match config.memory {
            Some(m) => {
                let base = (m.as_ptr() as usize).next_multiple_of(64) as *mut u8;
                (base, Backing::User(m))
            }
            None if total == 0 => (NonNull::<u8>::dangling().as_ptr(), Backing::None),
            None => {
                let refused =
                    || crate::BuildError::new(crate::BuildErrorKind::ArenaAlloc { bytes: total });
                // The builder checked that `total` fits in an allocation.
                let layout = Layout::from_size_align(total, 64).map_err(|_| refused())?;
                // SAFETY: `total > 0`.
                let p = NonNull::new(unsafe { std::alloc::alloc(layout) }).ok_or_else(refused)?;
                (p.as_ptr(), Backing::Managed(p, layout))
            }
        };
        let slots = (0..k)
            .map(|s| FrameSlot {
                turn: AtomicU64::new(s as u64),
                live: AtomicU32::new(0),
                index: AtomicU64::new(0),
                owner: AtomicPtr::new(core::ptr::null_mut()),
                arenas: (0..workers)
                    .map(|w| {
                        let at = if total == 0 {
                            base
                        } else {
                            // SAFETY: `(s * workers + w) * block + block <= total` bytes from
                            // `base`, inside the backing.
                            unsafe { base.add((s * workers + w) * block) }
                        };
                        WorkerArena::new(at, block, config.arena_limit, w)
                    })
                    .collect(),
            })
            .collect();
        Ok(Self {
            slots,
            next: AtomicU64::new(0),
            book: SpinLock::new(StatsBook::new(k, workers)),
            backing,
        })
    }

    /// Frames in flight (K).
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn slot_of(&self, index: u64) -> &FrameSlot {
        &self.slots[(index % self.slots.len() as u64) as usize]
    }

    /// Whether frame `index` has retired (false for frames not opened yet).
    pub(crate) fn is_retired(&self, index: u64) -> bool {
        self.slot_of(index).turn.load(Ordering::Acquire) > index
    }

    /// Claims the next frame index, unless it falls in one of the slots in `held` (bit `s`:
    /// slot `s`), the slots of frames whose bodies enclose the caller: that frame would wait
    /// for its own caller to retire. Then nothing is claimed and the index is the error.
    pub(crate) fn claim_unless(&self, held: u32) -> Result<u64, u64> {
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            if held & self.bit_of(next) != 0 {
                return Err(next);
            }
            match self.next.compare_exchange_weak(
                next,
                next + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(next),
                Err(now) => next = now,
            }
        }
    }

    /// The turn word of `index`'s slot (what a waiter for that slot parks on).
    pub(crate) fn turn_of(&self, index: u64) -> &AtomicU64 {
        &self.slot_of(index).turn
    }

    /// Frame `index` holds its slot (its turn came): resets the slot's arenas, records the
    /// owner, counts the body as live.
    pub(crate) fn begin(&self, shared: &Shared, index: u64, owner: &LoopState) -> &FrameSlot {
        let slot = self.slot_of(index);
        debug_assert_eq!(slot.turn.load(Ordering::Acquire), index);
        for a in slot.arenas.iter() {
            a.reset();
        }
        slot.index.store(index, Ordering::Relaxed);
        slot.owner
            .store(core::ptr::from_ref(owner).cast_mut(), Ordering::Relaxed);
        owner.pending.add(1);
        slot.live.store(1, Ordering::Release);
        let k = self.slots.len();
        self.book
            .lock()
            .opened(index, (index % k as u64) as usize, &Sample { shared });
        slot
    }

    /// The bit of `slot` in a fiber's held-slots mask (see [`claim_unless`](Self::claim_unless)),
    /// for a caller that is a live part of the frame in it.
    pub(crate) fn slot_bit(&self, slot: &FrameSlot) -> u32 {
        self.bit_of(slot.index.load(Ordering::Relaxed))
    }

    /// The bit of frame `index`'s slot in a fiber's held-slots mask.
    pub(crate) fn bit_of(&self, index: u64) -> u32 {
        1 << (index % self.slots.len() as u64)
    }

    /// Counts one more live part (a later job) of the frame in `slot`. The caller is itself a
    /// live part of it, so the frame cannot retire meanwhile.
    pub(crate) fn add_part(slot: &FrameSlot) {
        slot.live.fetch_add(1, Ordering::Relaxed);
    }

    /// The loop that owns the frame in `slot` (valid while the caller is a live part).
    pub(crate) fn owner(slot: &FrameSlot) -> &LoopState {
        // SAFETY: set by `begin` before any part could run; the loop waits for every frame it
        // opened to retire, so it outlives the caller, a live part of the frame.
        unsafe { &*slot.owner.load(Ordering::Relaxed) }
    }

    /// One live part of the frame in `slot` finished; the last one retires the frame: final
    /// stats, frame-aware idle closed, the slot handed to frame `index + K`, its waiters
    /// woken, and the owning loop told. After this returns the caller may not touch the frame.
    pub(crate) fn part_done(&self, shared: &Shared, slot: &FrameSlot) {
        if slot.live.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let index = slot.index.load(Ordering::Relaxed);
        let owner = slot.owner.load(Ordering::Relaxed);
        let k = self.slots.len();
        self.book.lock().retired(
            index,
            (index % k as u64) as usize,
            &slot.arenas,
            &Sample { shared },
        );
        crate::profile::frame_retired(index);
        shared.close_frame();
        let turn = &slot.turn;
        turn.store(index + k as u64, Ordering::Release);
        crate::park::unpark_all(crate::sync::key_of(turn), crate::sync::HANDOFF, |_| {});
        // SAFETY: the loop waits on `pending` until this decrement; `sub` touches nothing of
        // it after making the waiter runnable.
        unsafe { &*owner }.pending.sub(1);
    }
}

impl Drop for FrameRing {
    fn drop(&mut self) {
        // The arenas (and their growth chunks) go before the block they point into.
        self.slots = Box::new([]);
        if let Backing::Managed(p, layout) = self.backing {
            // SAFETY: allocated in `new` with this layout; freed once, here.
            unsafe { std::alloc::dealloc(p.as_ptr(), layout) };
        }
    }
}
