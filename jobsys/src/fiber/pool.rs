//! The fixed fiber pool, created at build time only.

use super::Resume;
use super::coro::{Coro, FiberYielder, Switched};
use super::stack::StackBlock;
use crate::counter::CounterCore;
use crate::error::BuildError;
use crate::job::{JobMeta, StackClass};
use crate::panic::fatal;
use crate::shim::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use crossbeam_queue::ArrayQueue;

/// Where a fiber's stack lies in memory: `[guard, low)` is its guard page (no access), and
/// `[low, high)` the usable stack, which grows down from `high`. Fixed at build time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackBounds {
    /// Lowest address of the guard page.
    pub(crate) guard: usize,
    /// Lowest usable address (just above the guard page).
    pub(crate) low: usize,
    /// One past the highest usable address (the stack starts here).
    pub(crate) high: usize,
}

impl StackBounds {
    /// Usable bytes.
    pub(crate) fn size(&self) -> usize {
        self.high - self.low
    }
}

/// The life of a fiber. Transitions (checked with `debug_assert!`):
/// `Pooled → Running` (a worker starts a job on it), `Running → Pooled` (idle),
/// `Running → Waiting` (suspended to wait), `Waiting → Ready` (woken, or its wait was already
/// satisfied at publication), `Running → Ready` (yield), `Ready → Running` (resumed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FiberState {
    Pooled = 0,
    Running = 1,
    Waiting = 2,
    Ready = 3,
}

/// One pooled fiber.
///
/// Invariant: the coroutine is resumed by at most one thread at a time — the worker that took
/// it from the free list (Pooled) or from a ready queue (Ready); both hand out each fiber once.
/// Without the unsafe migration opt-in, a Waiting fiber becomes Ready only on its `home`
/// worker's ready queue, so it resumes on the thread that parked it. Nothing thread-affine
/// (thread-local borrows, std mutex guards, Tracy spans) may be alive on its stack across a
/// suspension when migration is on; see docs/safety.md.
pub(crate) struct FiberSlot {
    coro: UnsafeCell<Coro>,
    /// Its index in the pool (for messages).
    pub(crate) index: u32,
    pub(crate) class: StackClass,
    /// Where its stack lies (fixed at build).
    pub(crate) stack: StackBounds,
    state: AtomicU8,
    /// The worker that last ran this fiber; a woken fiber goes to its ready queue.
    pub(crate) home: AtomicUsize,
    /// What it waits on, for deadlock reports (written by the fiber before it suspends).
    waiting_on: AtomicPtr<CounterCore>,
    waiting_for: AtomicU32,
    /// What a `jobsys::sync` wait is, for stall reports: a [`WaitWhat`] code (0: nothing said)
    /// and its numbers, written by the fiber before it parks.
    wait_kind: AtomicU8,
    wait_detail: AtomicU64,
    /// The job it runs, for deadlock reports.
    job: AtomicPtr<JobMeta>,
    /// Pinned jobs (affinity other than `Any`) on this fiber's stack; a fiber with any may
    /// never resume on another worker, even in migration mode. Written by the fiber only.
    pinned: AtomicU32,
    /// The waker state of a `Ctx::block_on` on this fiber (`bridge/`); its address is what the
    /// fiber's wakers point at, so it never moves (the slots are a boxed slice).
    pub(crate) wake: crate::bridge::WakeCell,
}

// SAFETY: the coroutine is only touched by the one worker that owns the fiber's current state
// (type invariant); everything else is atomic.
unsafe impl Sync for FiberSlot {}
// SAFETY: a fiber's stack holds only what the safety contract allows to cross threads
// (nothing, for a pooled fiber; see the type invariant for parked ones).
unsafe impl Send for FiberSlot {}

impl FiberSlot {
    /// Moves the fiber from `from` to `to`. The caller owns the fiber's current state, so a
    /// plain store suffices; debug builds check the transition with a swap.
    #[inline]
    pub(crate) fn transition(&self, from: FiberState, to: FiberState) {
        if cfg!(debug_assertions) {
            let was = self.state.swap(to as u8, Ordering::AcqRel);
            assert_eq!(was, from as u8, "fiber state {from:?} -> {to:?} from {was}");
        } else {
            self.state.store(to as u8, Ordering::Release);
        }
    }

    pub(crate) fn state(&self) -> FiberState {
        match self.state.load(Ordering::Acquire) {
            0 => FiberState::Pooled,
            1 => FiberState::Running,
            2 => FiberState::Waiting,
            _ => FiberState::Ready,
        }
    }

    /// Switches into the fiber.
    ///
    /// # Safety
    /// The caller owns the fiber's current state (took it from the free list or a ready queue).
    #[inline]
    pub(crate) unsafe fn resume(&self, input: Resume) -> Switched {
        // While it runs, this thread's signal handler knows which fiber's guard page is
        // whose (see `overflow/`).
        let _running = super::overflow::Running::enter(self);
        // SAFETY: exclusive by the caller's contract.
        self.coro.with_mut(|c| unsafe { (*c).resume(input) })
    }

    /// The job running on this fiber, or null (a plain atomic load: the stack-overflow
    /// handler reads it from a signal handler).
    #[inline]
    pub(crate) fn running_job(&self) -> *const JobMeta {
        self.job.load(Ordering::Relaxed)
    }

    pub(crate) fn set_waiting(&self, counter: *const CounterCore, target: u32) {
        self.waiting_on.store(counter.cast_mut(), Ordering::Relaxed);
        self.waiting_for.store(target, Ordering::Relaxed);
    }

    /// Says what the next park of this fiber waits for (`None`: clear it after the park).
    pub(crate) fn describe_wait(&self, what: Option<WaitWhat>) {
        let (kind, detail) = match what {
            None => (0, 0),
            Some(WaitWhat::Barrier { n, arrived }) => {
                (1, (u64::from(n) << 32) | u64::from(arrived))
            }
        };
        self.wait_detail.store(detail, Ordering::Relaxed);
        self.wait_kind.store(kind, Ordering::Relaxed);
    }

    fn wait_what(&self) -> Option<WaitWhat> {
        let detail = self.wait_detail.load(Ordering::Relaxed);
        match self.wait_kind.load(Ordering::Relaxed) {
            1 => Some(WaitWhat::Barrier {
                n: (detail >> 32) as u32,
                arrived: detail as u32,
            }),
            _ => None,
        }
    }

    /// Counts a pinned job starting (`+1`) or ending (`-1`) on this fiber.
    #[inline]
    pub(crate) fn add_pinned(&self, delta: i32) {
        let n = self
            .pinned
            .load(Ordering::Relaxed)
            .wrapping_add_signed(delta);
        self.pinned.store(n, Ordering::Relaxed);
    }

    /// Whether a pinned job is on this fiber's stack (read by a waker after the fiber parked;
    /// publication under the bucket lock orders the fiber's last write before this read).
    pub(crate) fn has_pinned(&self) -> bool {
        self.pinned.load(Ordering::Relaxed) != 0
    }

    /// Records the running job; returns the previous one (jobs run inline nest). Only the
    /// fiber itself writes this, so load + store (no locked RMW).
    #[inline]
    pub(crate) fn set_job(&self, meta: *const JobMeta) -> *const JobMeta {
        let outer = self.job.load(Ordering::Relaxed);
        self.job.store(meta.cast_mut(), Ordering::Relaxed);
        outer
    }
}

/// What a fiber parked on a `jobsys::sync` primitive waits for, as the primitive described
/// it when it parked (a snapshot: the report never reads the primitive, which may be gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitWhat {
    /// A `Barrier` for `n` participants, of which `arrived` had arrived (this one included).
    Barrier { n: u32, arrived: u32 },
}

/// `waiting_for` of a fiber parked on a `jobsys::sync` primitive (whose address is in
/// `waiting_on`, not a counter). No counter wait has this target: it is always reached.
pub(crate) const SYNC_WAIT: u32 = u32::MAX;

/// All fibers, and a free list per stack class.
pub(crate) struct FiberPool {
    slots: Box<[FiberSlot]>,
    free_small: ArrayQueue<u32>,
    free_large: ArrayQueue<u32>,
    /// Number of large fibers.
    large: usize,
    /// Stack a fiber must have left to run a child of each class inline (indexed by
    /// `StackClass as usize`; see `Builder::inline_headroom`).
    headroom: [usize; 2],
    /// Classes (`WANT_SMALL`, `WANT_LARGE`) that a worker went to sleep without a free fiber
    /// for, while jobs of that class were queued (see [`FiberPool::want`]).
    wanted: AtomicU8,
    /// Most fibers out of the pool at once since the last `take_high_water` (a statistic).
    high_water: crate::shim::StatMax,
    /// The user block the stacks were carved from (`Builder::fiber_stack_memory`), if any.
    /// After `slots`, so that on drop the coroutines are gone before it is released.
    stack_block: Option<StackBlock>,
}

const WANT_SMALL: u8 = 1;
const WANT_LARGE: u8 = 2;

impl FiberPool {
    /// Creates every fiber (not started), a guard page below each stack: stacks mapped, or
    /// carved from `stack_memory`.
    ///
    /// # Safety
    /// `stack_memory`, if given, holds at least `StackBlock::bytes([small, large])` bytes
    /// (the builder checks it) and is the system's until its drop (the `Memory` contract).
    pub(crate) unsafe fn new(
        small: (usize, usize),
        large: (usize, usize),
        headroom: [usize; 2],
        body: fn(&FiberYielder, Resume, u32, StackClass, StackBounds),
        stack_memory: Option<crate::Memory>,
    ) -> Result<Self, BuildError> {
        let total = small.0 + large.0;
        // SAFETY: forwarded from the caller. If a stack below fails, the block is dropped
        // (after the coroutines already made, which are dropped first: `slots` is declared
        // after it here) and its guard pages restored.
        let mut stack_block = stack_memory.map(|m| unsafe { StackBlock::new(m, total) });
        let mut slots = Vec::with_capacity(total);
        let free_small = ArrayQueue::new(small.0.max(1));
        let free_large = ArrayQueue::new(large.0.max(1));
        for i in 0..total {
            let (class, size) = if i < small.0 {
                (StackClass::Small, small.1)
            } else {
                (StackClass::Large, large.1)
            };
            let index = i as u32;
            let run = move |y: &FiberYielder, input, bounds| body(y, input, index, class, bounds);
            let (coro, bounds) = match &mut stack_block {
                None => Coro::new(size, run),
                Some(block) => block.carve(size).map(|bounds| {
                    // SAFETY: `carve` hands out each page-aligned piece of the block once,
                    // its guard page protected; the block outlives the coroutine's use of it
                    // (`shutdown` finishes every coroutine before releasing it).
                    (unsafe { Coro::in_block(bounds, run) }, bounds)
                }),
            }
            .map_err(|e| BuildError::stack(class, size, e))?;
            slots.push(FiberSlot {
                coro: UnsafeCell::new(coro),
                index,
                class,
                stack: bounds,
                state: AtomicU8::new(FiberState::Pooled as u8),
                home: AtomicUsize::new(0),
                waiting_on: AtomicPtr::new(core::ptr::null_mut()),
                waiting_for: AtomicU32::new(0),
                wait_kind: AtomicU8::new(0),
                wait_detail: AtomicU64::new(0),
                job: AtomicPtr::new(core::ptr::null_mut()),
                pinned: AtomicU32::new(0),
                wake: crate::bridge::WakeCell::new(),
            });
            let free = if class == StackClass::Small {
                &free_small
            } else {
                &free_large
            };
            let _ = free.push(index);
        }
        Ok(Self {
            slots: slots.into_boxed_slice(),
            free_small,
            free_large,
            large: large.0,
            headroom,
            wanted: AtomicU8::new(0),
            high_water: crate::shim::StatMax::new(),
            stack_block,
        })
    }

    /// Stack (bytes) a fiber must have left to run a job of `class` inline.
    #[inline]
    pub(crate) fn inline_headroom(&self, class: StackClass) -> usize {
        self.headroom[class as usize]
    }

    /// The job that holds the most fibers out of the pool and how many (a chain of nested
    /// waits shows as one job on many parked fibers), for the deadlock report's headline.
    pub(crate) fn busiest_job(&self) -> Option<(&'static JobMeta, usize)> {
        let mut best: Option<(&'static JobMeta, usize)> = None;
        for s in self.slots.iter() {
            let job = s.job.load(Ordering::Relaxed);
            if job.is_null() || s.state() == FiberState::Pooled {
                continue;
            }
            // SAFETY: job metas are 'static.
            let meta: &'static JobMeta = unsafe { &*job };
            if best.is_some_and(|(m, _)| core::ptr::eq(m, meta)) {
                continue;
            }
            let n = self
                .slots
                .iter()
                .filter(|o| {
                    o.state() != FiberState::Pooled
                        && core::ptr::eq(o.job.load(Ordering::Relaxed), meta)
                })
                .count();
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((meta, n));
            }
        }
        best
    }

    /// Stack sizes of the two classes, for messages: (small count, small bytes, large count,
    /// large bytes).
    pub(crate) fn shape(&self) -> (usize, usize, usize, usize) {
        let size = |class| {
            self.slots
                .iter()
                .find(|s| s.class == class)
                .map_or(0, |s| s.stack.size())
        };
        (
            self.slots.len() - self.large,
            size(StackClass::Small),
            self.large,
            size(StackClass::Large),
        )
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn slot(&self, fiber: u32) -> &FiberSlot {
        &self.slots[fiber as usize]
    }

    /// A free fiber that can host a job of class `class` (a small job may borrow a large fiber).
    #[inline]
    pub(crate) fn acquire(&self, class: StackClass) -> Option<u32> {
        let fiber = match class {
            StackClass::Small => self.free_small.pop().or_else(|| self.free_large.pop()),
            StackClass::Large => self.free_large.pop(),
        }?;
        // Only here does the count of fibers in use grow. Not per job: a fiber runs jobs until
        // its worker's queues are empty, and a worker takes one when it starts a job with none
        // running (after a wait parked the last, or after an idle spell). The count reads both
        // free lists' ends (a few loads, ~40 instructions; measured in W1b, one acquire per
        // wait); the mark itself is written only when it rises.
        self.high_water.raise(self.in_use());
        Some(fiber)
    }

    /// Fibers out of the pool now (running, parked or ready; approximate while workers
    /// acquire and release them).
    pub(crate) fn in_use(&self) -> usize {
        self.slots
            .len()
            .saturating_sub(self.free_small.len() + self.free_large.len())
    }

    /// Most fibers out of the pool at once since the last call (or since build); the mark
    /// restarts at the count in use now.
    pub(crate) fn take_high_water(&self) -> usize {
        self.high_water.take(self.in_use())
    }

    /// Whether the pool has any fiber of `class`.
    pub(crate) fn has_class(&self, class: StackClass) -> bool {
        match class {
            StackClass::Small => self.slots.len() > self.large,
            StackClass::Large => self.large > 0,
        }
    }

    /// Whether a free fiber could host a job of `class` right now (a hint; `acquire` decides).
    #[inline]
    pub(crate) fn has_free(&self, class: StackClass) -> bool {
        !self.free_large.is_empty() || (class == StackClass::Small && !self.free_small.is_empty())
    }

    /// Returns a fiber to its free list. Called by the worker only after the fiber has switched
    /// out (its stack is quiescent), so no other worker can start it while it still runs.
    ///
    /// Returns whether a worker went to sleep wanting a fiber of this class (see
    /// [`want`](Self::want)): the caller then wakes the sleepers.
    #[inline]
    #[must_use = "a true return means sleepers wait for this fiber: wake them"]
    pub(crate) fn release(&self, fiber: u32) -> bool {
        let class = self.slot(fiber).class;
        let free = if class == StackClass::Small {
            &self.free_small
        } else {
            &self.free_large
        };
        if free.push(fiber).is_err() {
            fatal("fiber free list overflow");
        }
        // The push is a SeqCst read-modify-write of the free list's tail (crossbeam's
        // `ArrayQueue`), and `has_free` reads it with SeqCst loads; with the SeqCst mark of
        // `want` on the other side, a releaser that reads no mark here is ordered before the
        // marker, whose re-check then sees this fiber free. One plain load when nobody wants.
        self.wanted.load(Ordering::SeqCst) != 0 && self.served(class)
    }

    #[cold]
    fn served(&self, class: StackClass) -> bool {
        // A large fiber hosts both classes; a small one only small jobs.
        let hosts = match class {
            StackClass::Small => WANT_SMALL,
            StackClass::Large => WANT_SMALL | WANT_LARGE,
        };
        self.wanted.fetch_and(!hosts, Ordering::SeqCst) & hosts != 0
    }

    /// Called by a worker about to sleep with jobs of `class` queued and no free fiber for
    /// them: marks the class wanted, so the next [`release`](Self::release) of a fiber that can
    /// host it reports it (and its caller wakes the sleepers), then looks again. Returns
    /// whether a fiber for `class` is free after all.
    pub(crate) fn want(&self, class: StackClass) -> bool {
        let bit = match class {
            StackClass::Small => WANT_SMALL,
            StackClass::Large => WANT_LARGE,
        };
        self.wanted.fetch_or(bit, Ordering::SeqCst);
        self.has_free(class)
    }

    /// A human-readable list of every fiber (or every one not in the pool) and what it
    /// waits on (for the deadlock abort and the simulation's wait graph; the stall report
    /// writes it with [`write_report`](Self::write_report), allocating nothing).
    pub(crate) fn report(&self, skip_pooled: bool) -> String {
        let mut out = String::new();
        let _ = self.write_report(&mut out, skip_pooled);
        out
    }

    /// Writes [`report`](Self::report)'s list to `out`, one line per fiber.
    pub(crate) fn write_report(
        &self,
        out: &mut impl core::fmt::Write,
        skip_pooled: bool,
    ) -> core::fmt::Result {
        for (i, s) in self.slots.iter().enumerate() {
            let state = s.state();
            if skip_pooled && state == FiberState::Pooled {
                continue;
            }
            write!(
                out,
                "  fiber {i:>4} ({:?}, home worker {}): {state:?}",
                s.class,
                s.home.load(Ordering::Relaxed)
            )?;
            let job = s.job.load(Ordering::Relaxed);
            if !job.is_null() && state != FiberState::Pooled {
                // SAFETY: job metas are 'static.
                let meta = unsafe { &*job };
                write!(out, " in job '{}' ({}:{})", meta.name, meta.file, meta.line)?;
            }
            if state == FiberState::Waiting {
                let c = s.waiting_on.load(Ordering::Relaxed);
                let target = s.waiting_for.load(Ordering::Relaxed);
                if target == SYNC_WAIT {
                    // Not a counter: the address of a `jobsys::sync` primitive.
                    write!(out, " parked on a jobsys::sync primitive at {c:p}")?;
                } else {
                    // Only the address and the target, both copied into this slot's atomics:
                    // the counter itself is never read. The report runs on another thread
                    // than the waiter, and by the time it looks the fiber may have been woken
                    // and its counter freed or reused.
                    write!(out, " waits on counter {c:p} for <= {target}")?;
                }
            }
            out.write_char('\n')?;
        }
        Ok(())
    }

    /// Whether fiber `s` is parked on a `jobsys::sync` primitive.
    fn on_sync(s: &FiberSlot) -> bool {
        s.state() == FiberState::Waiting && s.waiting_for.load(Ordering::Relaxed) == SYNC_WAIT
    }

    /// How many fibers are parked on `jobsys::sync` primitives (the stall report's count).
    pub(crate) fn sync_wait_count(&self) -> usize {
        self.slots.iter().filter(|s| Self::on_sync(s)).count()
    }

    /// The stall report's list, written to `out`: every fiber parked on a `jobsys::sync`
    /// primitive, its job and what it waits for (from the snapshots the fibers left; no
    /// primitive is read), one line each. A barrier's arrivals are the most any of its parked
    /// fibers saw.
    pub(crate) fn write_sync_waits(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        for (i, s) in self.slots.iter().enumerate() {
            if !Self::on_sync(s) {
                continue;
            }
            let key = s.waiting_on.load(Ordering::Relaxed);
            write!(out, "  fiber {i:>4} ({:?})", s.class)?;
            let job = s.job.load(Ordering::Relaxed);
            if !job.is_null() {
                // SAFETY: job metas are 'static.
                let meta = unsafe { &*job };
                write!(out, " in job '{}' ({}:{})", meta.name, meta.file, meta.line)?;
            }
            match s.wait_what() {
                Some(WaitWhat::Barrier { n, arrived }) => {
                    let arrived = self
                        .slots
                        .iter()
                        .filter(|o| {
                            o.state() == FiberState::Waiting
                                && core::ptr::eq(o.waiting_on.load(Ordering::Relaxed), key)
                        })
                        .filter_map(|o| o.wait_what())
                        .map(|WaitWhat::Barrier { arrived, .. }| arrived)
                        .fold(arrived, u32::max);
                    write!(
                        out,
                        " waits at a Barrier for {n} participants, {arrived} arrived ({key:p})"
                    )?;
                }
                None => write!(out, " parked on a jobsys::sync primitive at {key:p}")?,
            }
            out.write_char('\n')?;
        }
        Ok(())
    }

    /// Ends every fiber: resumes each with `Exit` so its body returns. Aborts if a fiber is not
    /// pooled — dropping a parked fiber would force-unwind a stack other jobs may borrow.
    pub(crate) fn shutdown(&self) {
        for (i, s) in self.slots.iter().enumerate() {
            if s.state() != FiberState::Pooled {
                fatal(&format!(
                    "shutdown found fiber {i} {:?}; a parked fiber is never dropped",
                    s.state()
                ));
            }
            let started = s.coro.with(|c| {
                // SAFETY: called once all workers have exited: nothing else touches the fibers.
                unsafe { (*c).started() }
            });
            if started {
                // SAFETY: no worker runs; the fiber is pooled, suspended at its idle point.
                match unsafe { s.resume(Resume::Exit) } {
                    Switched::Returned => {}
                    Switched::Suspended(_) => fatal("a fiber did not exit at shutdown"),
                }
            }
        }
        if let Some(block) = &self.stack_block {
            for s in self.slots.iter() {
                // SAFETY: no worker runs (as above), and every fiber has returned.
                s.coro.with_mut(|c| unsafe { (*c).finish() });
            }
            // No coroutine touches its stack any more: the block goes back to the user.
            block.release();
        }
    }
}
