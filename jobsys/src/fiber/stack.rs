//! Where the running fiber's stack pointer is: the headroom check that keeps inline execution
//! (a waiter running its own children, a join running its `b`, `Hint::Inline`) from
//! overflowing a fiber's stack. And the fiber stacks carved from a user block
//! ([`StackBlock`]).

use super::pool::StackBounds;
use crate::shim::{AtomicBool, Ordering};

/// The current stack pointer: exact on x86-64 and AArch64, the address of a local elsewhere
/// (within a frame of it). Read from the register rather than from a local's address because
/// AddressSanitizer may move locals to a heap "fake stack".
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: usize;
        // SAFETY: reads a register into a local; touches no memory and no flags — nothing for
        // a caller to establish.
        unsafe {
            core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let sp: usize;
        // SAFETY: as on x86-64: a register read with no memory or flag effects.
        unsafe {
            core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let marker = 0u8;
        core::hint::black_box(&marker) as *const u8 as usize
    }
}

/// The system's page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Fiber stacks carved from a user block (`Builder::fiber_stack_memory`), laid out like the
/// mapped ones: the block's start aligned up to a page, then per fiber one guard page
/// (PROT_NONE, so an overflow faults and the overflow reporter names the fiber) and the stack,
/// rounded up to whole pages. [`release`](Self::release) — at the system's shutdown, or on drop
/// if the build failed — makes the guard pages readable and writable again, so the whole
/// block is the user's once more.
pub(crate) struct StackBlock {
    /// The next free, page-aligned address, and one past the block's last byte.
    next: usize,
    end: usize,
    page: usize,
    /// Guard pages protected so far.
    guards: Vec<usize>,
    released: AtomicBool,
}

impl StackBlock {
    /// Bytes a block needs for `(count, stack size)` of each class: a page less one byte to
    /// align the start, then a guard page and the stack rounded up to pages, per fiber.
    pub(crate) fn bytes(classes: [(usize, usize); 2]) -> usize {
        let page = page_size();
        classes
            .iter()
            .map(|&(count, size)| {
                count.saturating_mul(
                    page.saturating_add(size.saturating_add(page - 1) & !(page - 1)),
                )
            })
            .fold(page - 1, usize::saturating_add)
    }

    /// Stacks carved from `memory`, for `fibers` fibers.
    ///
    /// # Safety
    /// `memory` holds at least [`bytes`](Self::bytes) bytes for every stack that will be
    /// carved (the builder checks it), and is the system's until [`release`](Self::release)
    /// (the `Memory` contract).
    pub(crate) unsafe fn new(memory: crate::Memory, fibers: usize) -> Self {
        let page = page_size();
        let start = memory.as_ptr() as usize;
        Self {
            next: start.next_multiple_of(page),
            end: start + memory.len(),
            page,
            guards: Vec::with_capacity(fibers),
            released: AtomicBool::new(false),
        }
    }

    /// The next stack, of `size` bytes rounded up to pages, with its guard page protected.
    pub(crate) fn carve(&mut self, size: usize) -> std::io::Result<StackBounds> {
        let guard = self.next;
        let low = guard + self.page;
        let high = low + size.next_multiple_of(self.page);
        assert!(
            high <= self.end,
            "fiber stack memory checked by the builder"
        );
        // SAFETY: `[guard, guard + page)` is a page-aligned page of the user block (checked
        // above), which the `Memory` contract gives the system, and which nothing else uses.
        if unsafe { libc::mprotect(guard as *mut libc::c_void, self.page, libc::PROT_NONE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.guards.push(guard);
        self.next = high;
        Ok(StackBounds { guard, low, high })
    }

    /// Makes every guard page readable and writable again (once; later calls do nothing).
    /// Called when no fiber can touch its stack any more: every coroutine finished.
    pub(crate) fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        for &guard in &self.guards {
            // SAFETY: a page of the user block that `carve` protected; the block is still the
            // system's until this returns.
            let rc = unsafe {
                libc::mprotect(
                    guard as *mut libc::c_void,
                    self.page,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if rc != 0 {
                crate::panic::fatal(&format!(
                    "restoring a guard page in the fiber stack memory failed ({})",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
}

impl Drop for StackBlock {
    fn drop(&mut self) {
        self.release();
    }
}
