//! Memory the user supplies for one of the system's regions (fiber stacks, job queues, frame
//! arenas) instead of the managed default, which the system allocates itself at build time.

use core::mem::MaybeUninit;
use core::ptr::NonNull;

/// A block of memory handed to a [`Builder`](crate::Builder) for one region: fiber stacks,
/// job queues or frame arenas. The system carves the region out of it at build time and
/// allocates nothing for that region itself.
///
/// The block belongs to the system from [`build`](crate::Builder::build) until the
/// [`JobSystem`](crate::JobSystem) is dropped (a block given to a builder that is dropped
/// without building is simply not used). Its contents on entry do not matter. How many bytes
/// each region needs for a given configuration:
/// [`Builder::memory_requirements`](crate::Builder::memory_requirements).
///
/// ```
/// # use jobsys::Memory;
/// // Memory that lives for the rest of the program: a leaked buffer, or a `static`.
/// let block: &'static mut [u8] = Box::leak(vec![0u8; 1 << 20].into_boxed_slice());
/// # let raw: *mut [u8] = &mut *block; // (the example gives the block back at its end)
/// let memory = Memory::new(block);
/// assert_eq!(memory.len(), 1 << 20);
/// # drop(memory);
/// # // SAFETY: nothing uses the block any more; it came from `Box::leak`.
/// # unsafe { drop(Box::from_raw(raw)) };
/// ```
#[derive(Debug)]
pub struct Memory {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Memory` is an exclusive, unaliased block (by `new`'s `&'static mut` or by
// `from_raw_parts`' contract), so handing it to another thread is moving a `&mut [u8]`.
unsafe impl Send for Memory {}
// SAFETY: `&Memory` only reads the pointer and length.
unsafe impl Sync for Memory {}

impl Memory {
    /// A block that lives for the rest of the program.
    pub fn new(block: &'static mut [u8]) -> Self {
        let len = block.len();
        Self {
            ptr: NonNull::from(block).cast(),
            len,
        }
    }

    /// A block of uninitialised bytes that lives for the rest of the program.
    pub fn from_uninit(block: &'static mut [MaybeUninit<u8>]) -> Self {
        let len = block.len();
        Self {
            ptr: NonNull::from(block).cast(),
            len,
        }
    }

    /// A block from the engine's own allocator.
    ///
    /// # Safety
    /// The caller guarantees that `ptr` is valid for reads and writes of `len` bytes, and that
    /// nothing else reads, writes or frees those bytes from the moment this `Memory` is handed
    /// to a [`Builder`](crate::Builder) until the [`JobSystem`](crate::JobSystem) built from it
    /// has been dropped (or the builder was dropped without building).
    pub unsafe fn from_raw_parts(ptr: NonNull<u8>, len: usize) -> Self {
        Self { ptr, len }
    }

    /// Size of the block in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the block.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The block, if it holds at least `needed` bytes; else the error that names `region`.
    pub(crate) fn check(
        self,
        region: MemoryRegion,
        needed: usize,
    ) -> Result<Self, crate::BuildError> {
        if self.len < needed {
            return Err(crate::BuildError::new(
                crate::BuildErrorKind::MemoryTooSmall {
                    region,
                    needed,
                    given: self.len,
                },
            ));
        }
        Ok(self)
    }
}

/// The regions of a system that can live in user-supplied [`Memory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryRegion {
    /// Every fiber stack, small and large, each with its guard page
    /// ([`Builder::fiber_stack_memory`](crate::Builder::fiber_stack_memory)).
    FiberStacks,
    /// The per-worker job rings ([`Builder::queue_memory`](crate::Builder::queue_memory)).
    Queues,
    /// The per-worker, per-frame arenas.
    FrameArenas,
}

/// How many bytes each region needs for a builder's configuration
/// ([`Builder::memory_requirements`](crate::Builder::memory_requirements)): a block of at
/// least this many bytes, wherever it starts, is accepted for that region. The figures
/// include the slack for aligning the block's start, so they hold whatever the block's
/// alignment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryRequirements {
    /// Bytes for [`Builder::fiber_stack_memory`](crate::Builder::fiber_stack_memory): every
    /// stack rounded up to whole pages, one guard page below each, and up to a page less one
    /// byte to align the block's start to a page.
    pub fiber_stacks: usize,
    /// Bytes for [`Builder::queue_memory`](crate::Builder::queue_memory): six rings per worker
    /// (three priorities times two stack classes) of `queue_capacity` slots each, every ring
    /// rounded up to whole cache lines, and up to a cache line less one byte to align the
    /// block's start.
    pub queues: usize,
    /// Bytes for the frame arenas ([`Builder::frame_arena_memory`](crate::Builder::frame_arena_memory)):
    /// one block of `frame_arena`'s capacity (rounded up to a cache line) per worker per
    /// frame in flight, and up to a cache line less one byte to align the block's start;
    /// 0 when the capacity is 0.
    pub frame_arenas: usize,
}

/// A user block given to a [`Builder`](crate::Builder) for one region. A clone of the
/// builder does not take the block with it (a block belongs to one system at most): the clone
/// uses managed memory for that region.
#[derive(Debug, Default)]
pub(crate) struct Supplied(Option<Memory>);

impl Supplied {
    pub(crate) fn set(&mut self, memory: Memory) {
        self.0 = Some(memory);
    }

    pub(crate) fn take(&mut self) -> Option<Memory> {
        self.0.take()
    }
}

impl Clone for Supplied {
    fn clone(&self) -> Self {
        Self(None)
    }
}
