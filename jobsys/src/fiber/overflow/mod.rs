//! Loud stack overflows: a fiber that runs off the end of its stack hits its guard page, and
//! instead of a bare SIGSEGV the process prints which fiber overflowed, its stack class and
//! size, and the job it ran (name, file, line), then aborts.
//!
//! How: a thread-local names the fiber slot the thread is running ([`Running`], set around
//! every switch into a fiber); a SIGSEGV/SIGBUS handler on an alternate signal stack (the
//! overflowing stack has no room left to run it) checks whether the faulting address lies in
//! that fiber's guard page. If it does, it writes the message with `write(2)` — formatted
//! into a buffer on the signal stack, no allocation, no locks — and aborts. Any other fault
//! goes to the handler that was installed before ours (std's own stack-overflow handler,
//! another runtime's, or the default action, which kills the process by the signal as if
//! jobsys were not there).
//!
//! The handler is installed once per process, when the first worker loop starts; each
//! thread that runs a worker loop gets an alternate signal stack if it has none. Non-unix
//! targets keep the bare guard-page fault (`stub.rs`).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::on_worker_start;

#[cfg(not(unix))]
mod stub;
#[cfg(not(unix))]
pub(crate) use stub::on_worker_start;

use super::pool::FiberSlot;
use core::cell::Cell;

std::thread_local! {
    /// The fiber this thread is running, null on the thread's own stack. Const-initialised
    /// and without a destructor, so reading it is a plain thread-local load: safe from a
    /// signal handler (no lazy initialisation, no allocation, no registration).
    static RUNNING: Cell<*const FiberSlot> = const { Cell::new(core::ptr::null()) };
}

/// Marks `slot` as the fiber this thread runs until dropped (restores the previous one).
pub(crate) struct Running(*const FiberSlot);

impl Running {
    #[inline]
    pub(crate) fn enter(slot: &FiberSlot) -> Self {
        Self(RUNNING.with(|r| r.replace(slot)))
    }
}

impl Drop for Running {
    #[inline]
    fn drop(&mut self) {
        let outer = self.0;
        RUNNING.with(|r| r.set(outer));
    }
}

/// The fiber this thread runs, or null. Async-signal-safe (see [`RUNNING`]).
#[cfg_attr(not(unix), allow(dead_code))]
fn running() -> *const FiberSlot {
    RUNNING.try_with(Cell::get).unwrap_or(core::ptr::null())
}

/// A fixed buffer for a message built inside a signal handler: no allocation, no formatting
/// machinery; what does not fit is cut off.
#[cfg_attr(not(unix), allow(dead_code))]
struct Msg {
    buf: [u8; 1024],
    len: usize,
}

#[cfg_attr(not(unix), allow(dead_code))]
impl Msg {
    const fn new() -> Self {
        Self {
            buf: [0; 1024],
            len: 0,
        }
    }

    fn str(&mut self, s: &str) -> &mut Self {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        self
    }

    fn num(&mut self, mut v: usize) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        // SAFETY-free: ASCII digits are valid UTF-8.
        self.str(core::str::from_utf8(&digits[i..]).unwrap_or("?"))
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The message for an overflow of `slot`'s stack (also used by the unit test below).
#[cfg_attr(not(unix), allow(dead_code))]
fn overflow_message(slot: &FiberSlot, out: &mut Msg) {
    out.str("jobsys: stack overflow on fiber ")
        .num(slot.index as usize)
        .str(match slot.class {
            crate::job::StackClass::Small => " (Small stack, ",
            crate::job::StackClass::Large => " (Large stack, ",
        })
        .num(slot.stack.size())
        .str(" bytes)");
    let job = slot.running_job();
    if job.is_null() {
        out.str(" between jobs");
    } else {
        // SAFETY: job metas are 'static (`&'static JobMeta` everywhere a job is made).
        let meta = unsafe { &*job };
        out.str(" in job '")
            .str(meta.name)
            .str("' (")
            .str(meta.file)
            .str(":")
            .num(meta.line as usize)
            .str(")");
    }
    out.str(
        "; raise the stack size of its class (Builder::small_fibers / large_fibers), \
         declare the job StackClass::Large (job_meta!(.., stack(StackClass::Large))), or move \
         big locals and deep recursion to the heap. Aborting.\n",
    );
}

#[cfg(test)]
mod tests {
    use super::Msg;

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut m = Msg::new();
        m.num(0).str(" ").num(65536).str(" ").num(usize::MAX);
        assert_eq!(m.bytes(), format!("0 65536 {}", usize::MAX).as_bytes());
    }

    #[test]
    fn a_long_message_is_cut_off_not_overrun() {
        let mut m = Msg::new();
        for _ in 0..100 {
            m.str("0123456789abcdef");
        }
        assert_eq!(m.bytes().len(), 1024);
    }
}
