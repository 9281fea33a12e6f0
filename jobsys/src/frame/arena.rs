//! Frame arenas: one linear allocator per worker per frame in flight, reset in bulk when its
//! frame retires.
//!
//! Each arena bumps through a block reserved at build time (carved from one managed
//! allocation, or from the user's [`Memory`](crate::Memory)). Past the block it grows into
//! heap chunks up to its limit; the chunks are kept across frames, so growth is paid once (and
//! counted in the frame stats), never per frame.

use core::alloc::Layout;
use core::cell::{Cell, UnsafeCell};
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;

/// Most growth chunks one arena keeps: each doubles the last, so this is never the binding
/// limit for any realistic `limit / capacity` ratio.
const MAX_CHUNKS: usize = 40;

/// One worker's arena for one frame slot.
///
/// Only one thread touches an arena at a time: worker `w`'s thread while its frame is live
/// (through [`FrameArena`], which is neither `Send` nor `Sync` and is only handed out for the
/// calling worker's own arena), or the party with exclusive use of the whole slot (the
/// retirer reading its stats, the next opener resetting it). Fibers that share worker `w`'s
/// thread never interleave inside a call: nothing here can switch fibers.
pub(crate) struct WorkerArena(CachePadded<Inner>);

struct Inner {
    /// The reserved block (`block_len` may be 0).
    block: *mut u8,
    block_len: usize,
    /// The region being bumped: `[base, end)`, next free byte `top` (addresses).
    base: Cell<usize>,
    top: Cell<usize>,
    end: Cell<usize>,
    /// Growth chunks (kept across frames), in the order they were made; `at` is the chunk
    /// being bumped (`usize::MAX`: the block).
    chunks: UnsafeCell<Vec<(NonNull<u8>, usize)>>,
    at: Cell<usize>,
    /// Bytes used this frame in regions already left behind.
    used_before: Cell<usize>,
    /// Bytes reserved: the block and every growth chunk.
    reserved: Cell<usize>,
    /// Most bytes the arena may reserve.
    limit: usize,
    /// Bytes of heap chunks made since the last [`WorkerArena::take_grown`].
    grown: Cell<usize>,
    /// Most bytes used in one frame so far.
    high_water: Cell<usize>,
    worker: usize,
}

// SAFETY: see the type's docs: one thread at a time, handed over by the frame slot's
// synchronisation (the live count's AcqRel decrements, the turn's Release store and Acquire
// load) or by the worker's own thread.
unsafe impl Sync for WorkerArena {}
// SAFETY: the raw pointers are owned memory (the block belongs to the ring, the chunks to
// this arena).
unsafe impl Send for WorkerArena {}

impl WorkerArena {
    /// An arena over `block` (`len` bytes, 64-aligned, owned by the caller for the arena's
    /// life) that may grow to `limit` bytes in all.
    pub(crate) fn new(block: *mut u8, len: usize, limit: usize, worker: usize) -> Self {
        let start = block as usize;
        Self(CachePadded::new(Inner {
            block,
            block_len: len,
            base: Cell::new(start),
            top: Cell::new(start),
            end: Cell::new(start + len),
            chunks: UnsafeCell::new(Vec::with_capacity(MAX_CHUNKS)),
            at: Cell::new(usize::MAX),
            used_before: Cell::new(0),
            reserved: Cell::new(len),
            limit: limit.max(len),
            grown: Cell::new(0),
            high_water: Cell::new(0),
            worker,
        }))
    }

    /// Room for `layout`, or why not.
    #[inline]
    pub(crate) fn alloc(&self, layout: Layout) -> Result<NonNull<u8>, ArenaFull> {
        let a = &*self.0;
        let top = a.top.get();
        // `align` is a power of two; `top + align - 1` cannot overflow an address range we
        // own by more than `align`, and `checked_add` guards the size.
        let start = (top + layout.align() - 1) & !(layout.align() - 1);
        match start.checked_add(layout.size()) {
            Some(end) if end <= a.end.get() => {
                a.top.set(end);
                // SAFETY: `start` lies in `[base, end]` of a live region, which is non-null.
                Ok(unsafe { NonNull::new_unchecked(start as *mut u8) })
            }
            _ => self.alloc_slow(layout),
        }
    }

    #[cold]
    fn alloc_slow(&self, layout: Layout) -> Result<NonNull<u8>, ArenaFull> {
        let a = &*self.0;
        let full = || ArenaFull {
            requested: layout.size(),
            used: self.used(),
            limit: a.limit,
            worker: a.worker,
        };
        // SAFETY: one thread at a time (type invariant); no reference into `chunks` escapes.
        let chunks = unsafe { &mut *a.chunks.get() };
        // A chunk kept from an earlier frame that fits.
        let first = if a.at.get() == usize::MAX {
            0
        } else {
            a.at.get() + 1
        };
        for (i, &(p, len)) in chunks.iter().enumerate().skip(first) {
            let start = (p.as_ptr() as usize).next_multiple_of(layout.align());
            if start + layout.size() <= p.as_ptr() as usize + len {
                self.enter(i, p, len);
                return self.alloc(layout);
            }
        }
        // A new chunk: double the last one (at least the block, at least this request).
        let last = chunks.last().map_or(a.block_len, |c| c.1);
        // Chunks are 64-aligned: only a stricter alignment needs slack.
        let need = if layout.align() <= 64 {
            layout.size()
        } else {
            layout.size().saturating_add(layout.align())
        };
        let want = need.max(last.saturating_mul(2)).max(4096);
        let room = a.limit.saturating_sub(a.reserved.get());
        let len = want.min(room);
        if len < need || len == 0 || chunks.len() == MAX_CHUNKS {
            return Err(full());
        }
        let chunk_layout = Layout::from_size_align(len, 64).map_err(|_| full())?;
        // SAFETY: `len > 0`.
        let p = NonNull::new(unsafe { std::alloc::alloc(chunk_layout) })
            .unwrap_or_else(|| std::alloc::handle_alloc_error(chunk_layout));
        chunks.push((p, len));
        a.reserved.set(a.reserved.get() + len);
        a.grown.set(a.grown.get() + len);
        self.enter(chunks.len() - 1, p, len);
        self.alloc(layout)
    }

    /// Leaves the current region for chunk `i`.
    fn enter(&self, i: usize, p: NonNull<u8>, len: usize) {
        let a = &*self.0;
        a.used_before
            .set(a.used_before.get() + (a.top.get() - a.base.get()));
        let start = p.as_ptr() as usize;
        a.at.set(i);
        a.base.set(start);
        a.top.set(start);
        a.end.set(start + len);
    }

    /// Gives back `[ptr, ptr + old)` if it is the last allocation, or grows/shrinks it in
    /// place to `new` bytes if it is and there is room; returns whether it did.
    #[inline]
    pub(crate) fn resize_last(&self, ptr: NonNull<u8>, old: usize, new: usize) -> bool {
        let a = &*self.0;
        let p = ptr.as_ptr() as usize;
        if p + old != a.top.get() || p < a.base.get() {
            return false;
        }
        match p.checked_add(new) {
            Some(end) if end <= a.end.get() => {
                a.top.set(end);
                true
            }
            _ => false,
        }
    }

    /// Bytes used in the current frame (alignment padding included).
    pub(crate) fn used(&self) -> usize {
        let a = &*self.0;
        a.used_before.get() + (a.top.get() - a.base.get())
    }

    /// Bytes reserved (block plus growth chunks).
    pub(crate) fn reserved(&self) -> usize {
        self.0.reserved.get()
    }

    /// Most bytes the arena may reserve.
    pub(crate) fn limit(&self) -> usize {
        self.0.limit
    }

    /// The most used in one frame so far (this frame included).
    pub(crate) fn high_water(&self) -> usize {
        self.0.high_water.get().max(self.used())
    }

    /// Heap bytes added since the last call.
    pub(crate) fn take_grown(&self) -> usize {
        self.0.grown.replace(0)
    }

    /// Frees everything in bulk (the frame retired): back to the start of the block.
    pub(crate) fn reset(&self) {
        let a = &*self.0;
        a.high_water.set(self.high_water());
        let start = a.block as usize;
        a.at.set(usize::MAX);
        a.used_before.set(0);
        a.base.set(start);
        a.top.set(start);
        a.end.set(start + a.block_len);
    }
}

impl Drop for WorkerArena {
    fn drop(&mut self) {
        for &(p, len) in self.0.chunks.get_mut().iter() {
            // SAFETY: allocated in `alloc_slow` with this layout, freed once, here.
            unsafe { std::alloc::dealloc(p.as_ptr(), Layout::from_size_align_unchecked(len, 64)) };
        }
    }
}

/// A frame arena ran out: the request does not fit in its block and growing would pass its
/// limit (see [`Builder::frame_arena`](crate::Builder::frame_arena)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaFull {
    /// Bytes asked for.
    pub requested: usize,
    /// Bytes the arena had handed out this frame.
    pub used: usize,
    /// Most bytes the arena may reserve.
    pub limit: usize,
    /// The worker whose arena it was.
    pub worker: usize,
}

impl fmt::Display for ArenaFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the frame arena of worker {} is exhausted: {} bytes requested with {} used, and growing \
             would pass its limit of {} bytes (raise Builder::frame_arena's limit, or allocate less per frame)",
            self.worker, self.requested, self.used, self.limit
        )
    }
}

impl std::error::Error for ArenaFull {}

/// The calling worker's arena of one frame: allocations live until the frame retires, and
/// are then reclaimed in bulk, without running destructors.
///
/// Get one with [`Frame::arena`](crate::Frame::arena). It is `Copy` and cheap; it is neither
/// `Send` nor `Sync`, because it bumps the arena of the worker it was taken on — take a fresh
/// one in each job. What it allocates (`&'f mut T`, `&'f mut [T]`) is ordinary data: hand it to
/// other jobs of the same frame on any worker.
///
/// Values in the arena are never dropped: a `String` or `Vec` put in it leaks its heap buffer.
/// Keep plain data there, or use the arena's own collections (it implements
/// [`allocator_api2::alloc::Allocator`]).
///
/// A reference into the arena cannot outlive its frame:
///
/// ```compile_fail
/// # let jobs = jobsys::JobSystem::builder().workers(1).build().unwrap();
/// jobs.run(|ctx| {
///     let mut kept: &[u32] = &[];
///     ctx.frame(|f| {
///         kept = f.arena(ctx).alloc_slice_copy(&[1, 2, 3]); // the frame retires first
///     });
///     println!("{kept:?}");
/// });
/// ```
///
/// and the arena handle itself cannot move to another job:
///
/// ```compile_fail
/// # let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
/// jobs.run(|ctx| {
///     ctx.frame(|f| {
///         let arena = f.arena(ctx);
///         ctx.scope(|s| { s.spawn(move |_| { arena.alloc(1u32); }); });
///     });
/// });
/// ```
#[derive(Clone, Copy)]
pub struct FrameArena<'f> {
    arena: &'f WorkerArena,
    _not_send: PhantomData<*mut ()>,
}

impl fmt::Debug for FrameArena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameArena")
            .field("worker", &self.arena.0.worker)
            .field("used", &self.used())
            .field("reserved", &self.arena.reserved())
            .field("limit", &self.arena.limit())
            .finish()
    }
}

impl<'f> FrameArena<'f> {
    /// # Safety
    /// `arena` belongs to the calling thread's worker, and the returned handle stays on this
    /// thread (it is `!Send`) — the caller guarantees that, in migration mode, no handle is
    /// alive across a wait (the migration contract forbids `!Send` values there).
    pub(crate) unsafe fn new(arena: &'f WorkerArena) -> Self {
        Self {
            arena,
            _not_send: PhantomData,
        }
    }

    /// Moves `value` into the arena.
    ///
    /// # Panics
    /// If the arena is exhausted (see [`try_alloc`](Self::try_alloc)).
    #[inline]
    pub fn alloc<T>(self, value: T) -> &'f mut T {
        self.try_alloc(value).unwrap_or_else(|e| exhausted(e))
    }

    /// Moves `value` into the arena, or says why it does not fit ([`ArenaFull`]); `value` is
    /// dropped then.
    #[inline]
    pub fn try_alloc<T>(self, value: T) -> Result<&'f mut T, ArenaFull> {
        let p = self.arena.alloc(Layout::new::<T>())?.cast::<T>();
        // SAFETY: fresh, aligned room for a `T`, valid until the frame retires (`'f`), handed
        // out once.
        unsafe {
            p.as_ptr().write(value);
            Ok(&mut *p.as_ptr())
        }
    }

    /// A slice of `len` values made by `f(index)`.
    ///
    /// # Panics
    /// If the arena is exhausted, or if `f` panics (the values made so far are not dropped).
    pub fn alloc_slice_fill_with<T>(
        self,
        len: usize,
        mut f: impl FnMut(usize) -> T,
    ) -> &'f mut [T] {
        let layout = Layout::array::<T>(len).unwrap_or_else(|_| {
            panic!("a frame-arena slice of {len} elements does not fit in the address space")
        });
        let p = self
            .arena
            .alloc(layout)
            .unwrap_or_else(|e| exhausted(e))
            .cast::<T>();
        for i in 0..len {
            // SAFETY: in bounds of the fresh array.
            unsafe { p.as_ptr().add(i).write(f(i)) };
        }
        // SAFETY: all `len` elements were written; the memory lives until the frame retires.
        unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) }
    }

    /// A copy of `src`.
    ///
    /// # Panics
    /// If the arena is exhausted.
    #[inline]
    pub fn alloc_slice_copy<T: Copy>(self, src: &[T]) -> &'f mut [T] {
        let p = self
            .arena
            .alloc(Layout::for_value(src))
            .unwrap_or_else(|e| exhausted(e))
            .cast::<T>();
        // SAFETY: `alloc` gave fresh room for `src.len()` `T`s (`for_value`), not overlapping
        // `src`, handed out once and alive until the frame retires; `T: Copy` copies bitwise.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
            core::slice::from_raw_parts_mut(p.as_ptr(), src.len())
        }
    }

    /// A clone of every element of `src`.
    pub fn alloc_slice_clone<T: Clone>(self, src: &[T]) -> &'f mut [T] {
        self.alloc_slice_fill_with(src.len(), |i| src[i].clone())
    }

    /// `len` copies of `value`.
    pub fn alloc_slice_fill_copy<T: Copy>(self, len: usize, value: T) -> &'f mut [T] {
        self.alloc_slice_fill_with(len, |_| value)
    }

    /// `len` default values.
    pub fn alloc_slice_fill_default<T: Default>(self, len: usize) -> &'f mut [T] {
        self.alloc_slice_fill_with(len, |_| T::default())
    }

    /// A copy of `s`.
    pub fn alloc_str(self, s: &str) -> &'f mut str {
        let bytes = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: a byte-for-byte copy of a `str`.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }

    /// Raw room for `layout`, valid until the frame retires.
    pub fn alloc_layout(self, layout: Layout) -> Result<NonNull<u8>, ArenaFull> {
        self.arena.alloc(layout)
    }

    /// An empty vector that grows in this arena.
    pub fn vec<T>(self) -> allocator_api2::vec::Vec<T, Self> {
        allocator_api2::vec::Vec::new_in(self)
    }

    /// A vector with room for `capacity` elements in this arena.
    ///
    /// # Panics
    /// If the arena is exhausted.
    pub fn vec_with_capacity<T>(self, capacity: usize) -> allocator_api2::vec::Vec<T, Self> {
        allocator_api2::vec::Vec::with_capacity_in(capacity, self)
    }

    /// Bytes this arena handed out in the current frame (padding included).
    pub fn used(self) -> usize {
        self.arena.used()
    }

    /// Bytes reserved now: the block from build time plus growth so far.
    pub fn reserved(self) -> usize {
        self.arena.reserved()
    }
}

#[cold]
#[track_caller]
fn exhausted(e: ArenaFull) -> ! {
    panic!("{e}")
}

// SAFETY: blocks stay valid until the frame retires, after every `FrameArena<'f>` and its
// collections are gone (they cannot outlive `'f`); bump allocation never hands a block out
// twice, and `resize_last`/`deallocate` only move the top for the last block.
unsafe impl allocator_api2::alloc::Allocator for FrameArena<'_> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        let p = self
            .arena
            .alloc(layout)
            .map_err(|_| allocator_api2::alloc::AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // Reclaimed in bulk when the frame retires; the last block comes back at once.
        self.arena.resize_last(ptr, layout.size(), 0);
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        if new.align() <= old.align() && self.arena.resize_last(ptr, old.size(), new.size()) {
            return Ok(NonNull::slice_from_raw_parts(ptr, new.size()));
        }
        let fresh = self.allocate(new)?;
        // SAFETY: the caller's `ptr` is valid for `old.size()` bytes, the fresh block for
        // `new.size() >= old.size()`, and they do not overlap (bump allocation).
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.cast::<u8>().as_ptr(), old.size())
        };
        Ok(fresh)
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        if new.align() <= old.align() {
            self.arena.resize_last(ptr, old.size(), new.size());
            return Ok(NonNull::slice_from_raw_parts(ptr, new.size()));
        }
        let fresh = self.allocate(new)?;
        // SAFETY: as in `grow`, copying the `new.size() <= old.size()` bytes that stay.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.cast::<u8>().as_ptr(), new.size())
        };
        Ok(fresh)
    }
}
