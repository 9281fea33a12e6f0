//! The scheduler loop each worker runs on its own thread stack.

use super::Shared;
use crate::fiber::{Resume, WorkerRef, switch_into};
use crate::job::{Affinity, JobRef, StackClass};
use crate::panic::AbortIfPanic;
use crate::queue::Steal;
use core::ptr::NonNull;

/// Idle rounds that call `yield_now` after the spin rounds and before sleeping; picked, tune
/// with data (issue 3 makes idling frame-aware).
const IDLE_YIELDS: u32 = 16;

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
pub(crate) fn main_loop(shared: &Shared, index: usize, mode: LoopMode, done: &dyn Fn() -> bool) {
    let guard = AbortIfPanic("a panic escaped the jobsys scheduler loop");
    let worker = &shared.workers[index];
    let at = WorkerRef {
        shared: NonNull::from(shared),
        index,
        worker: NonNull::from(worker),
    };
    let mut idle = 0u32;
    loop {
        if let Some(fiber) = worker.pop_ready().or_else(|| shared.steal_ready(index)) {
            switch_into(shared, index, fiber, Resume::Continue(at));
            idle = 0;
            continue;
        }
        if done() {
            break;
        }
        if let Some(job) = shared.find_job(index, Host::Scheduler) {
            match shared.fibers.acquire(job.meta().stack) {
                Some(fiber) => {
                    switch_into(shared, index, fiber, Resume::Run(job, at));
                    idle = 0;
                    // A fiber that yielded gets its turn after each round of new work.
                    if let Some(fiber) = worker.yielded.pop() {
                        switch_into(shared, index, fiber, Resume::Continue(at));
                    }
                }
                None => {
                    // Another worker took the free fiber we saw: give the job back (a worker
                    // never holds a job it cannot run) and try again.
                    shared.give_back(index, job);
                    std::thread::yield_now();
                }
            }
            continue;
        }
        if let Some(fiber) = worker.yielded.pop() {
            switch_into(shared, index, fiber, Resume::Continue(at));
            idle = 0;
            continue;
        }
        idle += 1;
        if idle <= shared.idle_spins {
            crate::sync::spin_loop();
        } else if idle <= shared.idle_spins + IDLE_YIELDS || mode == LoopMode::NoSleep {
            std::thread::yield_now();
        } else {
            shared.sleep(index, done);
            idle = 0;
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

    /// The next job for worker `index` that `host` can run now: pinned inbox (first hostable
    /// job), own rings (LIFO), a share of the injector, then steal. Never returns a job the
    /// host cannot run: a worker holding such a job would stop running the work that could
    /// free a fiber for it.
    #[inline]
    pub(crate) fn find_job(&self, index: usize, host: Host) -> Option<JobRef> {
        let me = &self.workers[index];
        if let Some(job) = me.pinned.pop_first(|j| self.can_host(host, j.meta().stack)) {
            return Some(job);
        }
        self.pop_own(index, host)
            .or_else(|| self.find_job_cold(index, host))
    }

    /// The newest hostable job on worker `index`'s own rings.
    #[inline]
    fn pop_own(&self, index: usize, host: Host) -> Option<JobRef> {
        let me = &self.workers[index];
        CLASSES.into_iter().find_map(|class| {
            self.can_host(host, class)
                .then(|| me.ring(class).pop())
                .flatten()
        })
    }

    #[cold]
    fn find_job_cold(&self, index: usize, host: Host) -> Option<JobRef> {
        let injected = self
            .take_injected(index)
            .then(|| self.pop_own(index, host))
            .flatten();
        injected.or_else(|| self.steal(index, host))
    }

    /// Moves a share of the injector to worker `index`'s rings under one lock (where its
    /// class-gated pops — and thieves — take them). Returns whether it moved anything.
    fn take_injected(&self, index: usize) -> bool {
        let share = (self.injector.len() / self.workers.len()).clamp(1, INJECTOR_BATCH);
        let mut batch = [None::<JobRef>; INJECTOR_BATCH];
        let mut n = 0;
        self.injector.pop_batch(share, |job| {
            batch[n] = Some(job);
            n += 1;
        });
        self.keep_in_order(index, &batch[..n]);
        if n > 0 && !self.injector.is_empty() {
            self.notify_one();
        }
        n > 0
    }

    /// Returns a job worker `index` took but could not start (it lost the race for the free
    /// fiber it saw) to where it may run: its pinned inbox, or this worker's ring.
    pub(crate) fn give_back(&self, index: usize, job: JobRef) {
        match job.meta().affinity {
            Affinity::Worker(k) => self.workers[k].pinned.push(job),
            Affinity::Any => {
                let ring = self.workers[index].ring(job.meta().stack);
                if let Err(job) = ring.push(job) {
                    self.overflow(ring, job);
                }
            }
        }
    }

    /// Pushes `jobs` (oldest first) onto worker `index`'s rings in reverse, so that its LIFO
    /// pops take them oldest first: FIFO-submitted work, typically ascending addresses, stays
    /// in submission order. What the rings have no room for goes back to the injector (after
    /// any injector lock was released: it is not reentrant).
    fn keep_in_order(&self, index: usize, jobs: &[Option<JobRef>]) {
        let me = &self.workers[index];
        for job in jobs.iter().rev().flatten() {
            if let Err(job) = me.ring(job.meta().stack).push(*job) {
                self.injector.push(job);
            }
        }
    }

    /// A ring was full when its owner pushed `job`: move the older half of the ring and `job`
    /// to the injector in one lock acquisition (Tokio's overflow), so a long run of submissions
    /// costs one lock per half ring instead of one per job.
    #[cold]
    pub(crate) fn overflow(&self, ring: &crate::queue::Ring, job: JobRef) {
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
                Steal::Retry => crate::sync::spin_loop(),
            }
        }
        match last {
            Some(l) => l.set_next(job.as_ptr()),
            None => first = Some(job),
        }
        self.injector.push_chain(first.unwrap_or(job), job, n + 1);
    }

    /// Steals from another worker's ring, taking up to half of what it holds: the first job is
    /// returned, the rest land in our own ring (single steals: see queue/ring.rs).
    fn steal(&self, index: usize, host: Host) -> Option<JobRef> {
        let n = self.workers.len();
        if n == 1 {
            return None;
        }
        let me = &self.workers[index];
        let start = me.next_random() as usize % n;
        for k in 0..n {
            let v = (start + k) % n;
            if v == index {
                continue;
            }
            for class in CLASSES {
                if !self.can_host(host, class) {
                    continue;
                }
                let ring = self.workers[v].ring(class);
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
                            crate::profile::steal(index, v, taken);
                            if !ring.is_empty() || taken > 1 {
                                self.notify_one();
                            }
                            return Some(job);
                        }
                        Steal::Empty => break,
                        Steal::Retry => crate::sync::spin_loop(),
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
