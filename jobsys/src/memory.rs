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
/// let memory = Memory::new(block);
/// assert_eq!(memory.len(), 1 << 20);
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
    #[allow(dead_code)]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}
