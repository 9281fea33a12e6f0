//! Fixed-size blocks for scope job records, recycled across scopes and frames.

use crate::shim::SpinLock;
use core::alloc::Layout;
use core::ptr::{self, NonNull};
use std::alloc::{alloc, dealloc, handle_alloc_error};

/// Bytes per block; picked so a block holds ~1,000 small spawn records. Tune with data.
pub(crate) const BLOCK_SIZE: usize = 64 * 1024;
/// Alignment of every block, and the largest record alignment served from blocks.
const BLOCK_ALIGN: usize = 64;
/// Bytes at the start of a block used for its link.
const BLOCK_HEADER: usize = BLOCK_ALIGN;

fn block_layout() -> Layout {
    Layout::from_size_align(BLOCK_SIZE, BLOCK_ALIGN).expect("block layout")
}

/// A free list of blocks shared by all scopes of a system. Blocks are allocated on first need
/// (warm-up) and returned here when their scope ends; they are freed when the system drops.
pub(crate) struct BlockPool {
    free: SpinLock<*mut u8>,
}

// SAFETY: the raw block pointers are owned by the pool and only touched under its lock.
unsafe impl Send for BlockPool {}
// SAFETY: as above.
unsafe impl Sync for BlockPool {}

/// Link word at the start of each block.
fn next_of(block: *mut u8) -> *mut *mut u8 {
    block.cast()
}

impl BlockPool {
    crate::shim::loom_const! {
        pub(crate) fn new() -> Self {
            Self {
                free: SpinLock::new(ptr::null_mut()),
            }
        }
    }

    fn get(&self) -> *mut u8 {
        {
            let mut head = self.free.lock();
            if !head.is_null() {
                let block = *head;
                // SAFETY: pooled blocks are valid and their link word is initialised.
                *head = unsafe { *next_of(block) };
                return block;
            }
        }
        // SAFETY: the layout has non-zero size.
        let block = unsafe { alloc(block_layout()) };
        if block.is_null() {
            handle_alloc_error(block_layout());
        }
        block
    }

    /// Returns a chain of blocks linked through their link words, `first..=last`.
    fn put_chain(&self, first: *mut u8, last: *mut u8) {
        let mut head = self.free.lock();
        // SAFETY: `last` is a block we own.
        unsafe { *next_of(last) = *head };
        *head = first;
    }
}

impl Drop for BlockPool {
    fn drop(&mut self) {
        let mut p = *self.free.lock();
        while !p.is_null() {
            // SAFETY: pooled blocks came from `alloc(block_layout())` and are unused now.
            unsafe {
                let next = *next_of(p);
                dealloc(p, block_layout());
                p = next;
            }
        }
    }
}

/// One scope's bump allocator over pooled blocks. Records larger than a block get their own
/// allocation, freed when the scope ends.
pub(crate) struct Arena {
    /// Blocks in use, most recent first (linked through their link words).
    blocks: *mut u8,
    last: *mut u8,
    offset: usize,
    /// Oversized records: (pointer, layout) chain, each with a link in its first word.
    big: *mut u8,
}

// SAFETY: the arena owns its blocks; it is only used under its scope's lock.
unsafe impl Send for Arena {}

impl Arena {
    crate::shim::loom_const! {
        pub(crate) fn new() -> Self {
            Self {
                blocks: ptr::null_mut(),
                last: ptr::null_mut(),
                offset: BLOCK_SIZE,
                big: ptr::null_mut(),
            }
        }
    }

    /// Room for one value of `layout`, alive until [`release`](Self::release).
    pub(crate) fn alloc(&mut self, pool: &BlockPool, layout: Layout) -> NonNull<u8> {
        if layout.size() + layout.align() > BLOCK_SIZE - BLOCK_HEADER
            || layout.align() > BLOCK_ALIGN
        {
            return self.alloc_big(layout);
        }
        let mut start = self.offset.next_multiple_of(layout.align());
        if start + layout.size() > BLOCK_SIZE {
            let block = pool.get();
            // SAFETY: a fresh block we own; link it in front.
            unsafe { *next_of(block) = self.blocks };
            if self.blocks.is_null() {
                self.last = block;
            }
            self.blocks = block;
            start = BLOCK_HEADER.next_multiple_of(layout.align());
        }
        self.offset = start + layout.size();
        // SAFETY: `start + size <= BLOCK_SIZE` inside a live block.
        unsafe { NonNull::new_unchecked(self.blocks.add(start)) }
    }

    #[cold]
    fn alloc_big(&mut self, layout: Layout) -> NonNull<u8> {
        let (full, off) = Layout::new::<(usize, Layout)>()
            .extend(layout)
            .expect("record layout");
        let full = full.pad_to_align();
        // SAFETY: non-zero size (it holds the link).
        let p = unsafe { alloc(full) };
        if p.is_null() {
            handle_alloc_error(full);
        }
        // SAFETY: `p` has room for the (link, layout) header at offset 0.
        unsafe { p.cast::<(*mut u8, Layout)>().write((self.big, full)) };
        self.big = p;
        // SAFETY: `off` is inside the allocation.
        unsafe { NonNull::new_unchecked(p.add(off)) }
    }

    /// Gives every block back to the pool. The records must all have run.
    pub(crate) fn release(&mut self, pool: &BlockPool) {
        if !self.blocks.is_null() {
            pool.put_chain(self.blocks, self.last);
        }
        while !self.big.is_null() {
            // SAFETY: each big chunk starts with the header written in `alloc_big`.
            unsafe {
                let (next, layout) = self.big.cast::<(*mut u8, Layout)>().read();
                dealloc(self.big, layout);
                self.big = next;
            }
        }
        *self = Self::new();
    }
}
