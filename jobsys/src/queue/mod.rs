//! ② QUEUE — where runnable work waits.
//!
//! Receives [`JobRef`](crate::job::JobRef)s from the submit stage and hands them to workers.
//! Per worker: a [`Ring`] per priority and stack class (owner pushes and pops at the bottom,
//! LIFO; thieves take from the top, FIFO, half at a time). A managed ring that its owner fills
//! doubles (up to `Builder::queue_growth_limit`, 2^20 slots by default) and keeps its size, so a long run of spawns stays
//! on its worker and, once a workload has grown the ring, runs again without allocating. When a
//! ring is full and cannot grow (at its limit, or carved from a user block, which never grows)
//! the older half of it and the job go to the shared injector, an intrusive [`JobList`]
//! threaded through the job headers, so a submission never fails. Pinned jobs wait in their
//! worker's own `JobList`.

mod list;
#[cfg(all(test, loom))]
mod loom_tests;
mod ring;

pub(crate) use list::JobList;
pub(crate) use ring::{Ring, Steal};

/// Where the builder gets each worker's rings: boxed slices of their own (managed), or
/// consecutive pieces of one user block ([`Builder::queue_memory`](crate::Builder::queue_memory)).
/// Only the rings go in the block: the small per-worker queues of fiber indices (ready,
/// yielded) stay managed.
pub(crate) struct RingSource {
    capacity: usize,
    /// Slots up to which managed rings grow.
    limit: usize,
    /// The next free, `Ring::BLOCK_ALIGN`-aligned byte of the user block, and the bytes left.
    block: Option<(core::ptr::NonNull<u8>, usize)>,
}

impl RingSource {
    /// Rings per worker: one per priority and stack class.
    pub(crate) const PER_WORKER: usize = 6;

    /// Bytes of a user block that `workers` workers' rings of `capacity` need, alignment slack
    /// for the block's start included.
    pub(crate) fn bytes(workers: usize, capacity: usize) -> usize {
        workers
            .saturating_mul(Self::PER_WORKER)
            .saturating_mul(Ring::block_bytes(capacity))
            .saturating_add(Ring::BLOCK_ALIGN - 1)
    }

    /// Rings of `capacity` slots, carved from `memory` if given (those never grow), or managed
    /// ones that grow up to `limit` slots.
    ///
    /// # Safety
    /// `memory`, if given, holds at least [`bytes`](Self::bytes) bytes for every ring this
    /// source will hand out (the builder checks it), and stays the system's until every ring
    /// carved from it is no longer used (the `Memory` contract: until the system is dropped).
    pub(crate) unsafe fn new(capacity: usize, limit: usize, memory: Option<crate::Memory>) -> Self {
        let block = memory.map(|m| {
            let start = m.as_ptr();
            let skip = start.align_offset(Ring::BLOCK_ALIGN);
            // SAFETY: the block holds at least the alignment slack (caller's contract), so the
            // aligned start is inside it (or one past its end, with nothing left).
            let aligned = unsafe { start.add(skip) };
            (
                core::ptr::NonNull::new(aligned).expect("a block inside the address space"),
                m.len().saturating_sub(skip),
            )
        });
        Self {
            capacity,
            limit,
            block,
        }
    }

    /// The next ring.
    pub(crate) fn ring(&mut self) -> Ring {
        let Some((next, left)) = &mut self.block else {
            return Ring::growable(self.capacity, self.limit);
        };
        let bytes = Ring::block_bytes(self.capacity);
        assert!(*left >= bytes, "queue memory checked by the builder");
        let at = *next;
        // SAFETY: `bytes <= left`, so the new cursor is inside the block or one past its end.
        *next = unsafe { at.add(bytes) };
        *left -= bytes;
        // SAFETY: `at` is aligned (the start was aligned, and every ring takes whole
        // BLOCK_ALIGN units), holds `bytes` bytes (checked above) that no other ring gets (the
        // cursor moved past them), and stays valid while the rings are used (`new`'s contract).
        unsafe { Ring::in_block(self.capacity, at) }
    }
}
