//! Starting a worker thread: name, FP control state, optional core pinning.

use super::{LoopMode, Shared, main_loop};
use crate::shim::Ordering;
use crate::shim::thread::JoinHandle;
use std::sync::Arc;

/// The caller's floating-point control state (MXCSR on x86-64, FPCR on AArch64), copied into
/// every worker at start so jobs see the same rounding and denormal modes on every thread.
///
/// The fiber switch does not save it: jobs must not change FP mode across a wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FpState(u64);

impl FpState {
    pub(crate) fn capture() -> Self {
        Self(imp::read())
    }

    fn apply(self) {
        imp::write(self.0);
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    pub(super) fn read() -> u64 {
        let mut v: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit MXCSR to the given, valid, writable address.
        unsafe {
            core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags))
        };
        u64::from(v)
    }
    pub(super) fn write(v: u64) {
        let v = v as u32;
        // SAFETY: ldmxcsr loads a value read from MXCSR on this machine (reserved bits zero).
        unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, preserves_flags)) };
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    pub(super) fn read() -> u64 {
        let v: u64;
        // SAFETY: reading FPCR has no side effects.
        unsafe {
            core::arch::asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
    pub(super) fn write(v: u64) {
        // SAFETY: writes back a value read from FPCR on this machine.
        unsafe {
            core::arch::asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack, preserves_flags))
        };
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod imp {
    // Other targets: FP control state is left as the OS starts threads.
    pub(super) fn read() -> u64 {
        0
    }
    pub(super) fn write(_: u64) {}
}

/// Spawns worker `index` (≥ 1). It reports whether pinning worked in `pinned[index]`, counts
/// itself in `started`, then runs its loop until the system exits.
pub(crate) fn start_worker(
    shared: Arc<Shared>,
    index: usize,
    core: Option<core_affinity::CoreId>,
    fp: FpState,
    stack_size: usize,
    started: Arc<crate::shim::AtomicUsize>,
    pinned: Arc<[crate::shim::AtomicBool]>,
) -> std::io::Result<JoinHandle> {
    let builder = std::thread::Builder::new()
        .name(format!("jobsys-worker-{index}"))
        .stack_size(stack_size);
    crate::shim::thread::spawn(builder, move || {
        fp.apply();
        let mut pinned_to = None;
        if let Some(core) = core {
            let ok = core_affinity::set_for_current(core);
            pinned[index].store(ok, Ordering::Relaxed);
            pinned_to = ok.then_some(core.id);
        }
        let _ = shared.workers[index].thread.set(std::thread::current());
        crate::profile::worker_start(index);
        // Before counting itself started: `build` returns after every start hook returned.
        shared.hooks.started(index, pinned_to);
        started.fetch_add(1, Ordering::Release);
        // This thread owns the worker's core for the worker's whole life.
        let core = super::WorkerCore::new(index);
        main_loop(&shared, index, &core, LoopMode::Sleep, &|| {
            shared.exit.load(Ordering::Acquire)
        });
        shared.hooks.stopped(index, pinned_to);
    })
}
