//! The coroutine under every fiber: the one file that knows corosensei. The rest of the crate
//! sees our small types — [`Coro`] (a fiber's coroutine and its stack), [`FiberYielder`] (how
//! a fiber's body hands control back) and [`Switched`] (what a switch came back with).

use super::pool::StackBounds;
use super::{Resume, Suspend};
use corosensei::stack::{DefaultStack, Stack, StackPointer};
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

/// A fiber's stack: mapped by corosensei's `DefaultStack`, or carved from a user block
/// (`Builder::fiber_stack_memory`, see `stack.rs`). Either way a guard page lies below it.
/// `base` and `limit` are plain fields, so the switch path reads them without a branch.
pub(crate) struct FiberStack {
    /// Highest address (the stack grows down from here).
    base: StackPointer,
    /// Lowest address, guard page included.
    limit: StackPointer,
    /// The mapping, for a stack mapped here; `None` for one in a user block (whose guard
    /// page the block's owner, `StackBlock`, protects and restores).
    _mapped: Option<DefaultStack>,
}

// SAFETY: `base`/`limit` come from a `DefaultStack` (which keeps them) or from a user-block
// stack that `Coro::in_block`'s caller vouches for: page-aligned, a PROT_NONE guard page at
// `limit`, more than corosensei's MIN_STACK_SIZE usable above it (the builder's is larger).
unsafe impl Stack for FiberStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.limit
    }
}

/// A fiber's coroutine, with its stack (a guard page below it).
pub(crate) struct Coro(Coroutine<Resume, Suspend, (), FiberStack>);

impl Coro {
    /// Maps a stack of `size` bytes and a coroutine, not started, that will run
    /// `body(yielder, first_input, bounds)` on it. Returns it with its stack's bounds.
    pub(crate) fn new(
        size: usize,
        body: impl FnOnce(&FiberYielder, Resume, StackBounds) + 'static,
    ) -> std::io::Result<(Self, StackBounds)> {
        let stack = DefaultStack::new(size)?;
        let bounds = bounds_of(&stack);
        let stack = FiberStack {
            base: stack.base(),
            limit: stack.limit(),
            _mapped: Some(stack),
        };
        Ok((Self::with_stack(stack, bounds, body), bounds))
    }

    /// A coroutine, not started, that will run `body(yielder, first_input, bounds)` on the
    /// stack at `bounds`, in a user block.
    ///
    /// # Safety
    /// `bounds` is page-aligned, `[guard, low)` is a PROT_NONE guard page, and `[guard, high)`
    /// is memory that nothing but this coroutine touches until [`Coro::finish`] has run on it
    /// (the fiber pool's `StackBlock` carves it so; see `stack.rs`).
    pub(crate) unsafe fn in_block(
        bounds: StackBounds,
        body: impl FnOnce(&FiberYielder, Resume, StackBounds) + 'static,
    ) -> Self {
        let at = |a: usize| StackPointer::new(a).expect("a stack inside the address space");
        let stack = FiberStack {
            base: at(bounds.high),
            limit: at(bounds.guard),
            _mapped: None,
        };
        Self::with_stack(stack, bounds, body)
    }

    fn with_stack(
        stack: FiberStack,
        bounds: StackBounds,
        body: impl FnOnce(&FiberYielder, Resume, StackBounds) + 'static,
    ) -> Self {
        Self(Coroutine::with_stack(
            stack,
            move |y: &Yielder<Resume, Suspend>, input| body(FiberYielder::wrap(y), input, bounds),
        ))
    }

    /// Ends a coroutine that never started (its body waits on its stack; dropping it reads
    /// the stack), so that the stack is no longer touched, not even by the coroutine's drop:
    /// done before a user block's stacks go back to the user. A coroutine that ran has
    /// returned by now (the pool's shutdown makes sure), and is left as it is.
    pub(crate) fn finish(&mut self) {
        if !self.0.started() {
            // Not started: this only drops the body stored on the stack.
            self.0.force_unwind();
        }
        debug_assert!(
            self.0.done(),
            "a fiber's coroutine still suspended at finish"
        );
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
