//! The scheduler loop each worker runs on its own thread stack.

use super::switch_into;
use super::{IdleRounds, Shared, WorkerCore};
use crate::fiber::{Resume, WorkerRef};
use crate::job::{Affinity, JobRef, Priority, StackClass};
use crate::panic::AbortIfPanic;
use crate::queue::Steal;
use crate::sched::Source;
use core::ptr::NonNull;

/// Idle rounds between frames that call `yield_now` after the spin rounds and before
/// sleeping; picked, tune with data.
const IDLE_YIELDS: u32 = 16;

/// While a frame is open, an idle worker yields once every this many rounds and spins the
/// rest; picked.
const FRAME_YIELD_EVERY: u32 = 1024;
// An idle run's count steps back by 2^30 past 2^31 rounds (`IdleRounds::next`), which keeps
// its place in this period only if the period divides 2^30.
const _: () = assert!((1u32 << 30).is_multiple_of(FRAME_YIELD_EVERY));

/// Most jobs a worker takes from the injector at once; picked (half a default ring), tune with
/// data.
const INJECTOR_BATCH: usize = 128;

/// Whether an idle worker may sleep.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoopMode {
    /// Normal operation.
    Sleep,
    /// Shutdown drain on worker 0: nobody would wake it when the system becomes quiescent.
    NoSleep,
}

/// Runs worker `index` until `done()` is true: ready fibers first, then new jobs (own pinned
/// inbox, own rings, injector, steal), then fibers that yielded, then spin, yield, sleep.
///
/// `core` is worker `index`'s owner-only state, which the calling thread owns and keeps for
/// the worker's whole life (so ticks, the random stream and the debt carry over loop runs).
pub(crate) fn main_loop(
    shared: &Shared,
    index: usize,
    core: &WorkerCore,
    mode: LoopMode,
    done: &dyn Fn() -> bool,
) {
    let guard = AbortIfPanic("a panic escaped the jobsys scheduler loop");
    let _worker_thread = super::WorkerThread::enter();
    crate::fiber::overflow::on_worker_start();
    let worker = &shared.workers[index];
    let at = WorkerRef {
        shared: NonNull::from(shared),
        index,
        worker: NonNull::from(worker),
        core: NonNull::from(core),
    };
    let mut idle = IdleRounds::new(worker);
    core.bind(shared);
    loop {
        // Timed waits whose deadline passed: their fibers become ready (see `timer/`) — before
        // the ready check, so that a fiber a timer wakes goes ahead of the next new job.
        shared.timers.poll();
        // A fiber handed over by a waker on this thread first (see `make_ready_from`): it must
        // be taken before `done()` is asked or the worker sleeps, since nobody else sees it.
        if let Some(fiber) = core
            .take_handed_off()
            .or_else(|| worker.pop_ready())
            .or_else(|| shared.steal_ready(index))
        {
            idle.busy();
            switch_into(shared, index, core, fiber, Resume::Continue(at));
            continue;
        }
        if done() {
            idle.busy();
            shared.flush_parked(core);
            break;
        }
        if let Some(job) = shared.find_job(index, core, Host::Scheduler) {
            match shared.fibers.acquire(job.meta().stack) {
                Some(fiber) => {
                    idle.busy();
                    switch_into(shared, index, core, fiber, Resume::Run(job, at));
                    // A fiber that yielded gets its turn after each round of new work — but
                    // not the fiber that just yielded out of this very round: it waits for the
                    // next job, or `yield_now` would not let anything else run.
                    if let Some(y) = super::shared::pop_if_any(&worker.yielded) {
                        if y == fiber && worker.yielded.push(y).is_err() {
                            crate::panic::fatal("yield queue overflow");
                        } else if y != fiber {
                            switch_into(shared, index, core, y, Resume::Continue(at));
                        }
                    }
                }
                None => {
                    // Another worker took the free fiber we saw: give the job back (a worker
                    // never holds a job it cannot run) and try again.
                    shared.give_back(index, job);
                    crate::shim::thread::yield_now();
                }
            }
            continue;
        }
        if let Some(fiber) = super::shared::pop_if_any(&worker.yielded) {
            idle.busy();
            switch_into(shared, index, core, fiber, Resume::Continue(at));
            continue;
        }
        // Out of work: count the fibers parked here in `parked` (and check for a deadlock).
        shared.flush_parked(core);
        let idle_rounds = idle.next();
        if idle_rounds <= shared.idle_spins {
            crate::shim::spin_loop();
        } else if shared.in_frame() {
            // Frame-aware idle: while a frame is open the next fan-out is microseconds away,
            // so stay awake — spinning, with a yield now and then so that a descheduled
            // thread of this process (or another) can run on an oversubscribed core.
            if idle_rounds.is_multiple_of(FRAME_YIELD_EVERY) {
                // Idle workers never sleep in a frame, so this is where a stall inside one is
                // noticed (see `worker/stall.rs`): the worker counts as idle from now until it
                // finds work, and looks.
                idle.spinning_in_frame();
                shared.check_stall();
                crate::shim::thread::yield_now();
            } else {
                crate::shim::spin_loop();
            }
        } else if idle_rounds <= shared.idle_spins + IDLE_YIELDS || mode == LoopMode::NoSleep {
            crate::shim::thread::yield_now();
        } else {
            idle.sleep(|| shared.sleep(index, done));
        }
    }
    core::mem::forget(guard);
}

/// Who will run the job being looked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Host {
    /// The scheduler loop, which needs a free fiber for it.
    Scheduler,
    /// A fiber of this class, which runs it itself without switching.
    Fiber(StackClass),
}

/// Ring classes in the order a host looks at them.
const CLASSES: [StackClass; 2] = [StackClass::Large, StackClass::Small];

impl Shared {
    /// Whether `host` can start a job of `class` now. Rings are only popped or stolen from
    /// when it can: a job taken without a fiber to run it would strand the waiter that could
    /// have run it inline.
    #[inline]
    fn can_host(&self, host: Host, class: StackClass) -> bool {
        match host {
            Host::Fiber(c) => c.fits(class),
            Host::Scheduler => self.fibers.has_free(class),
        }
    }

    /// The next job for worker `index` that `host` can run now, from the sources the policy
    /// lists for this pick (see `sched/`). Never returns a job the host cannot run: a worker
    /// holding such a job would stop running the work that could free a fiber for it.
    ///
    /// Callers poll the timers (`timers.poll()`) before they look at the ready queue and call
    /// this: a fiber whose timed wait just ended then resumes before the next job, not after.
    #[inline]
    pub(crate) fn find_job(&self, index: usize, core: &WorkerCore, host: Host) -> Option<JobRef> {
        let tick = core.next_tick();
        self.policy
            .order(tick)
            .iter()
            .find_map(|&source| self.take_from(index, core, host, source))
    }

    /// One hostable job from `source`, if it has one.
    #[inline]
    fn take_from(
        &self,
        index: usize,
        core: &WorkerCore,
        host: Host,
        source: Source,
    ) -> Option<JobRef> {
        match source {
            Source::Pinned => self.workers[index]
                .pinned
                .pop_first(|j| self.can_host(host, j.meta().stack)),
            Source::Own(p) => self.pop_own(index, host, p),
            // The empty check inline: the High injector is looked at on most picks.
            Source::Injector(p) if self.injector.at(p).is_empty() => None,
            Source::Injector(p) => self.take_injected_cold(index, host, p),
            Source::Steal(p) => self.steal(index, core, host, p),
        }
    }

    /// The newest hostable job on worker `index`'s own rings of `priority`.
    #[inline]
    fn pop_own(&self, index: usize, host: Host, priority: Priority) -> Option<JobRef> {
        let me = &self.workers[index];
        CLASSES.into_iter().find_map(|class| {
            self.can_host(host, class)
                .then(|| me.ring(priority, class).pop())
                .flatten()
        })
    }

    #[cold]
    fn take_injected_cold(&self, index: usize, host: Host, priority: Priority) -> Option<JobRef> {
        self.take_injected(index, priority)
            .then(|| self.pop_own(index, host, priority))
            .flatten()
    }

    /// Whether work more urgent than a waiting fiber's own children is pending for worker
    /// `index`: High work in the injector or pinned work in its inbox (checked at global picks
    /// by the inline-children pass, which then parks so the worker can take it).
    pub(crate) fn urgent_work(&self, index: usize) -> bool {
        !self.injector.at(Priority::High).is_empty() || !self.workers[index].pinned.is_empty()
    }

    /// Moves a share of the `priority` injector to worker `index`'s rings under one lock
    /// (where its class-gated pops — and thieves — take them). Returns whether it moved
    /// anything.
    fn take_injected(&self, index: usize, priority: Priority) -> bool {
        let list = self.injector.at(priority);
        if list.is_empty() {
            // Before the batch buffer below: zeroing it is most of an empty look's cost.
            return false;
        }
        let share = (list.len() / self.workers.len()).clamp(1, INJECTOR_BATCH);
        let mut batch = [None::<JobRef>; INJECTOR_BATCH];
        let mut n = 0;
        list.pop_batch(share, |job| {
            batch[n] = Some(job);
            n += 1;
        });
        // Jobs the rings had no room for went back to the injector: if none stayed (rings full
        // of jobs no free fiber can run), nothing was gained, and waking another worker to do
        // the same would only pass the same jobs around.
        let kept = self.keep_in_order(index, &batch[..n]);
        if kept > 0 && !list.is_empty() {
            self.notify_one();
        }
        kept > 0
    }

    /// Returns a job worker `index` took but could not start (it lost the race for the free
    /// fiber it saw) to where it may run: its pinned inbox, or this worker's ring.
    pub(crate) fn give_back(&self, index: usize, job: JobRef) {
        match job.meta().affinity {
            Affinity::Worker(k) => self.workers[k].pinned.push(job),
            Affinity::Any => {
                let meta = job.meta();
                let ring = self.workers[index].ring(meta.priority, meta.stack);
                if let Err(job) = ring.push(job) {
                    self.overflow(index, ring, job);
                }
            }
        }
    }

    /// Pushes `jobs` (oldest first) onto worker `index`'s rings in reverse, so that its LIFO
    /// pops take them oldest first: FIFO-submitted work, typically ascending addresses, stays
    /// in submission order. What the rings have no room for goes back to the injector (after
    /// any injector lock was released: it is not reentrant). Returns how many stayed.
    fn keep_in_order(&self, index: usize, jobs: &[Option<JobRef>]) -> usize {
        let me = &self.workers[index];
        let mut kept = 0;
        for job in jobs.iter().rev().flatten() {
            let meta = job.meta();
            match me.ring(meta.priority, meta.stack).push(*job) {
                Ok(()) => kept += 1,
                Err(job) => {
                    me.stats.overflowed.add(1);
                    self.injector.push(job);
                }
            }
        }
        kept
    }

    /// A ring of worker `index` was full (and could not grow) when its owner pushed `job`:
    /// move the older half of the ring and `job` to the injector in one lock acquisition
    /// (Tokio's overflow), so a long run of submissions costs one lock per half ring instead of
    /// one per job.
    #[cold]
    pub(crate) fn overflow(&self, index: usize, ring: &crate::queue::Ring, job: JobRef) {
        let (mut first, mut last, mut n) = (None::<JobRef>, None::<JobRef>, 0);
        for _ in 0..ring.capacity() / 2 {
            match ring.steal() {
                Steal::Success(old) => {
                    match last {
                        Some(l) => l.set_next(old.as_ptr()),
                        None => first = Some(old),
                    }
                    last = Some(old);
                    n += 1;
                }
                Steal::Empty => break,
                Steal::Retry => crate::shim::spin_loop(),
            }
        }
        match last {
            Some(l) => l.set_next(job.as_ptr()),
            None => first = Some(job),
        }
        self.workers[index].stats.overflowed.add(n as u64 + 1);
        self.injector
            .at(job.meta().priority)
            .push_chain(first.unwrap_or(job), job, n + 1);
    }

    /// Steals from another worker's rings of `priority`, taking up to half of what one holds:
    /// the first job is returned, the rest land in our own ring (single steals: see
    /// queue/ring.rs).
    fn steal(
        &self,
        index: usize,
        core: &WorkerCore,
        host: Host,
        priority: Priority,
    ) -> Option<JobRef> {
        let n = self.workers.len();
        if n == 1 {
            return None;
        }
        let start = self.policy.first_victim(n, core.next_random());
        for k in 0..n {
            let v = (start + k) % n;
            if v == index {
                continue;
            }
            for class in CLASSES {
                if !self.can_host(host, class) {
                    continue;
                }
                let ring = self.workers[v].ring(priority, class);
                if ring.is_empty() {
                    continue;
                }
                loop {
                    crate::fault::inject(crate::fault::Site::Steal);
                    match ring.steal() {
                        Steal::Success(job) => {
                            let mut batch = [None::<JobRef>; INJECTOR_BATCH];
                            let mut taken = 1;
                            for slot in batch.iter_mut().take(ring.len() / 2) {
                                let Steal::Success(more) = ring.steal() else {
                                    break;
                                };
                                *slot = Some(more);
                                taken += 1;
                            }
                            self.keep_in_order(index, &batch[..taken - 1]);
                            self.workers[index].stats.steals.add(taken as u64);
                            crate::profile::steal(index, v, taken);
                            if !ring.is_empty() || taken > 1 {
                                self.notify_one();
                            }
                            return Some(job);
                        }
                        Steal::Empty => break,
                        Steal::Retry => crate::shim::spin_loop(),
                    }
                }
            }
        }
        None
    }

    /// In migration mode, an idle worker may resume another worker's woken fiber — only one
    /// with no pinned job on its stack (those sit in `ready`, never stolen).
    #[inline]
    fn steal_ready(&self, index: usize) -> Option<u32> {
        if !self.migration {
            return None;
        }
        self.workers
            .iter()
            .filter(|w| w.index != index)
            .find_map(|w| w.ready_any.pop())
    }
}
