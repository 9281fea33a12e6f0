//! The coroutine under every fiber: the one file that knows corosensei. The rest of the crate
//! sees our small types — [`Coro`] (a fiber's coroutine and its stack), [`FiberYielder`] (how
//! a fiber's body hands control back) and [`Switched`] (what a switch came back with).

use super::pool::StackBounds;
use super::{Resume, Suspend};
use corosensei::stack::{DefaultStack, Stack as _};
use corosensei::{Coroutine, CoroutineResult, Yielder};

/// What a switch into a fiber came back with.
pub(crate) enum Switched {
    /// The fiber suspended itself, saying why.
    Suspended(Suspend),
    /// The fiber's body returned (only after `Resume::Exit`).
    Returned,
}

/// The fiber's side of the switch: its body receives a `&FiberYielder` and suspends through it.
#[repr(transparent)]
pub(crate) struct FiberYielder(Yielder<Resume, Suspend>);

impl FiberYielder {
    /// Switches back to the worker that resumed this fiber with `why`; returns what the fiber
    /// is resumed with next (possibly by another worker, in migration mode).
    #[inline]
    pub(crate) fn suspend(&self, why: Suspend) -> Resume {
        self.0.suspend(why)
    }

    fn wrap(y: &Yielder<Resume, Suspend>) -> &Self {
        // SAFETY: `FiberYielder` is `repr(transparent)` over `Yielder<Resume, Suspend>` (this
        // type's definition establishes it), so the cast keeps layout and lifetime.
        unsafe { &*core::ptr::from_ref(y).cast::<Self>() }
    }
}

/// A fiber's coroutine, with its stack (mapped at build, a guard page below it).
pub(crate) struct Coro(Coroutine<Resume, Suspend, (), DefaultStack>);

impl Coro {
    /// Maps a stack of `size` bytes and a coroutine, not started, that will run
    /// `body(yielder, first_input, bounds)` on it. Returns it with its stack's bounds.
    pub(crate) fn new(
        size: usize,
        body: impl FnOnce(&FiberYielder, Resume, StackBounds) + 'static,
    ) -> std::io::Result<(Self, StackBounds)> {
        let stack = DefaultStack::new(size)?;
        let bounds = bounds_of(&stack);
        let coro = Coroutine::with_stack(stack, move |y: &Yielder<Resume, Suspend>, input| {
            body(FiberYielder::wrap(y), input, bounds)
        });
        Ok((Self(coro), bounds))
    }

    /// Switches into the coroutine with `input` until it suspends or returns.
    #[inline]
    pub(crate) fn resume(&mut self, input: Resume) -> Switched {
        match self.0.resume(input) {
            CoroutineResult::Yield(why) => Switched::Suspended(why),
            CoroutineResult::Return(()) => Switched::Returned,
        }
    }

    /// Whether the coroutine was ever resumed (its body is running or suspended).
    pub(crate) fn started(&self) -> bool {
        self.0.started()
    }
}

/// Where `stack` lies: its guard page is the page below its limit.
fn bounds_of(stack: &DefaultStack) -> StackBounds {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let guard = stack.limit().get();
    StackBounds {
        guard,
        low: guard + page,
        high: stack.base().get(),
    }
}
