//! The SIGSEGV/SIGBUS handler and the per-thread alternate signal stacks (see `mod.rs`).

use super::{Msg, overflow_message, running};
use core::cell::{Cell, UnsafeCell};
use core::mem::MaybeUninit;
use std::sync::Once;

/// The signals a guard-page hit raises (Linux: SIGSEGV; macOS: SIGBUS).
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The disposition each of [`SIGNALS`] had before ours, for chaining.
struct Previous(UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);

// SAFETY: written only inside `INSTALL` (once, before our handler is installed for that
// signal); read only by the handler, which runs after the install.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new([MaybeUninit::uninit(); 2]));
static INSTALL: Once = Once::new();

/// Size of the alternate signal stack we map for a thread that has none (the handler needs
/// little: a 1 KiB message buffer and a few calls).
const ALT_STACK: usize = 64 * 1024;

/// The alternate signal stack this thread mapped, unmapped when the thread ends.
struct AltStack(Cell<*mut libc::c_void>);

impl Drop for AltStack {
    fn drop(&mut self) {
        let p = self.0.get();
        if p.is_null() {
            return;
        }
        let off = libc::stack_t {
            ss_sp: core::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: ALT_STACK,
        };
        // SAFETY: disables this thread's alternate stack (ours) before unmapping it; the
        // mapping is the one `install_alt_stack` made, of `ALT_STACK + page` bytes.
        unsafe {
            libc::sigaltstack(&off, core::ptr::null_mut());
            libc::munmap(p, ALT_STACK + page_size());
        }
    }
}

std::thread_local! {
    static ALT: AltStack = const { AltStack(Cell::new(core::ptr::null_mut())) };
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Called on every thread that runs a worker loop, each time it starts one: installs the
/// process-wide handler (once) and gives this thread an alternate signal stack if it has
/// none (std gives its threads one when its own overflow handler is installed; we keep it).
pub(crate) fn on_worker_start() {
    INSTALL.call_once(install_handlers);
    install_alt_stack();
}

fn install_alt_stack() {
    let mut old = MaybeUninit::<libc::stack_t>::uninit();
    // SAFETY: queries this thread's alternate stack into `old` (a valid out pointer).
    if unsafe { libc::sigaltstack(core::ptr::null(), old.as_mut_ptr()) } != 0 {
        return;
    }
    // SAFETY: initialised by the successful call above.
    let old = unsafe { old.assume_init() };
    if old.ss_flags & libc::SS_DISABLE == 0 {
        return; // this thread has one (std's, or ours from an earlier `run`)
    }
    let page = page_size();
    // SAFETY: a fresh anonymous mapping; nothing else refers to it.
    let map = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            ALT_STACK + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANON,
            -1,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return; // no loud message on this thread; the fault stays a plain signal
    }
    // SAFETY: the lowest page of our own mapping becomes a guard page for the signal stack.
    unsafe { libc::mprotect(map, page, libc::PROT_NONE) };
    let stack = libc::stack_t {
        // SAFETY: within the mapping (one page in).
        ss_sp: unsafe { map.cast::<u8>().add(page) }.cast(),
        ss_flags: 0,
        ss_size: ALT_STACK,
    };
    // SAFETY: `stack` describes memory of this mapping, which stays mapped until the
    // thread-local below is dropped at thread exit (which disables it first).
    if unsafe { libc::sigaltstack(&stack, core::ptr::null_mut()) } != 0 {
        // SAFETY: our mapping, never handed out.
        unsafe { libc::munmap(map, ALT_STACK + page) };
        return;
    }
    let _ = ALT.try_with(|a| a.0.set(map));
}

fn install_handlers() {
    for (i, &sig) in SIGNALS.iter().enumerate() {
        // SAFETY: a zeroed sigaction is a valid value to fill in; `sa_mask` is emptied with
        // sigemptyset below.
        let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `PREVIOUS` is written only here, inside `INSTALL`, before our handler is
        // installed for `sig` by this same call (the kernel stores the old disposition into
        // it first), so the handler never reads it unwritten.
        let prev = unsafe { (*PREVIOUS.0.get())[i].as_mut_ptr() };
        // SAFETY: valid action and out pointer.
        unsafe { libc::sigaction(sig, &action, prev) };
    }
}

/// The faulting address of a SIGSEGV/SIGBUS.
///
/// # Safety
/// `info` is the `siginfo_t` the kernel handed the handler.
unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: caller contract; `si_addr` is valid for SIGSEGV/SIGBUS.
    return unsafe { (*info).si_addr() as usize };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: as above.
    return unsafe { (*info).si_addr as usize };
}

/// The handler: a guard-page hit of the running fiber prints and aborts; anything else goes
/// to the previous handler. Async-signal-safe: a thread-local load, atomic loads, `write`,
/// `sigaction` and `abort`.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let slot = running();
    if !slot.is_null() {
        // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
        let addr = unsafe { fault_address(info) };
        // SAFETY: `RUNNING` is set only while `slot`'s fiber runs on this thread, and the
        // pool (which owns the slot) outlives every switch into its fibers.
        let slot = unsafe { &*slot };
        if (slot.stack.guard..slot.stack.low).contains(&addr) {
            let mut msg = Msg::new();
            overflow_message(slot, &mut msg);
            let bytes = msg.bytes();
            // SAFETY: writes our own buffer to stderr; `write` and `abort` are
            // async-signal-safe.
            unsafe {
                libc::write(2, bytes.as_ptr().cast(), bytes.len());
                libc::abort();
            }
        }
    }
    let i = usize::from(sig != libc::SIGSEGV);
    // SAFETY: written by `install_handlers` before our handler was installed (see there).
    let prev = unsafe { (*PREVIOUS.0.get())[i].assume_init_ref() };
    let action = prev.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // Not ours and nobody else's: restore the default action and return; the faulting
        // instruction runs again and the process dies by the signal, as without jobsys.
        // SAFETY: `prev` is a valid disposition (the one the kernel gave us).
        unsafe {
            let mut dfl: libc::sigaction = core::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut dfl.sa_mask);
            libc::sigaction(sig, &dfl, core::ptr::null_mut());
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this
        // signature; we forward what the kernel gave us.
        unsafe {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                core::mem::transmute(action);
            f(sig, info, context);
        }
    } else {
        // SAFETY: a plain `sa_handler` installed without SA_SIGINFO.
        unsafe {
            let f: extern "C" fn(libc::c_int) = core::mem::transmute(action);
            f(sig);
        }
    }
}
