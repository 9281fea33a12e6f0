//! Where the running fiber's stack pointer is: the headroom check that keeps inline execution
//! (a waiter running its own children, a join running its `b`, `Hint::Inline`) from
//! overflowing a fiber's stack.

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
