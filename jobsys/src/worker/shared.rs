//! State shared by all workers, and each worker's public face (its owner-only state is
//! `WorkerCore`, in `owner.rs`).

use crate::fiber::FiberPool;
use crate::job::{JobRef, Priority, StackClass};
use crate::panic::fatal;
use crate::queue::{JobList, Ring, RingSource};
use crate::scope::BlockPool;
use crate::shim::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use std::sync::OnceLock;
use std::thread::Thread;

/// The low half of `Worker::parked_here`: fibers parked here.
pub(super) const PARKED_HERE: u64 = (1 << 32) - 1;
/// One waker in flight toward a worker, in the high half of `Worker::parked_here`.
const IN_FLIGHT: u64 = 1 << 32;

/// One worker as the others see it.
pub(crate) struct Worker {
    pub(crate) index: usize,
    /// Owner-LIFO, thief-FIFO rings of unstarted jobs, one per priority and stack class
    /// (indexed `[Priority as usize][StackClass as usize]`): a thief only takes jobs it has a
    /// fitting fiber for, and every source is looked at most urgent first.
    pub(crate) rings: [[Ring; 2]; 3],
    /// Jobs pinned to this worker; never stolen.
    pub(crate) pinned: JobList,
    /// Fibers woken by a counter, to be resumed here (bounded by the pool size).
    pub(crate) ready: ArrayQueue<u32>,
    /// Migration mode only: woken fibers with no pinned job on their stack, which any idle
    /// worker may resume.
    pub(crate) ready_any: ArrayQueue<u32>,
    /// Fibers that yielded: resumed after new jobs had their turn, in FIFO order.
    pub(crate) yielded: ArrayQueue<u32>,
    /// One word, read in one load: low 32 bits, fibers parked while running on this worker
    /// and not yet pushed back to `ready` (see `parked_here()`); high 32 bits, wakers in
    /// flight toward this worker — between their first and their last touch of the system
    /// (see `Shared::make_ready_from` and `Shared::push_pinned`).
    pub(crate) parked_here: AtomicU64,
    /// Sleep state (see `wake/`).
    pub(crate) bed: crate::wake::Bed,
    pub(crate) thread: OnceLock<Thread>,
    /// Running totals (see `stats.rs`), written only by this worker's thread.
    pub(crate) stats: CachePadded<super::stats::StatCells>,
    /// True while this worker spins idle inside a frame (set at its periodic yield there,
    /// cleared when its idle run ends: it found work, or goes to sleep). Written only by this
    /// worker's thread (`IdleRounds`); read relaxed by the stall check (`stall.rs`), which
    /// counts such a worker idle like a sleeping one.
    pub(crate) frame_idle: AtomicBool,
}

// The queue block's size assumes as many rings per worker as `Worker::rings` holds.
const _: () = assert!(size_of::<[[Ring; 2]; 3]>() == RingSource::PER_WORKER * size_of::<Ring>());

impl Worker {
    /// Worker `index`, its rings from `rings` (managed, or carved from the user's queue block).
    pub(crate) fn new(index: usize, rings: &mut RingSource, fibers: usize) -> Self {
        Self {
            index,
            rings: core::array::from_fn(|_| [rings.ring(), rings.ring()]),
            pinned: JobList::new(),
            ready: ArrayQueue::new(fibers.max(1)),
            ready_any: ArrayQueue::new(fibers.max(1)),
            yielded: ArrayQueue::new(fibers.max(1)),
            parked_here: AtomicU64::new(0),
            bed: crate::wake::Bed::new(),
            thread: OnceLock::new(),
            stats: CachePadded::default(),
            frame_idle: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn push_ready(&self, fiber: u32) {
        if self.ready.push(fiber).is_err() {
            fatal("ready queue overflow (more ready fibers than the pool holds)");
        }
    }

    /// The next woken fiber to resume here.
    ///
    /// Each queue is looked at (`is_empty`: two loads) before it is popped: an empty
    /// `ArrayQueue::pop` costs a SeqCst fence, and the loop asks on every round. A push this
    /// look misses is not lost: its waker wakes this worker after the push (fenced), and the
    /// worker looks again (after its own fence) before it sleeps (see `wake/README.md`).
    #[inline]
    pub(crate) fn pop_ready(&self) -> Option<u32> {
        pop_if_any(&self.ready).or_else(|| pop_if_any(&self.ready_any))
    }

    /// No woken fiber waits here.
    #[inline]
    pub(crate) fn no_ready(&self) -> bool {
        self.ready.is_empty() && self.ready_any.is_empty()
    }

    #[inline]
    pub(crate) fn ring(&self, priority: Priority, class: StackClass) -> &Ring {
        &self.rings[priority as usize][class as usize]
    }

    #[inline]
    pub(crate) fn rings_empty(&self) -> bool {
        self.rings.iter().flatten().all(Ring::is_empty)
    }

    /// Whether the rings of `class` (every priority) are empty.
    #[inline]
    pub(crate) fn class_rings_empty(&self, class: StackClass) -> bool {
        self.rings.iter().all(|r| r[class as usize].is_empty())
    }

    /// Fibers parked while running here and not yet pushed back to a ready queue.
    #[inline]
    pub(crate) fn parked_here(&self) -> u64 {
        self.parked_here.load(Ordering::SeqCst) & PARKED_HERE
    }

    /// Fibers parked here and wakers in flight toward this worker (see
    /// `Shared::make_ready_from`), read together in one load.
    #[inline]
    pub(crate) fn parked_and_in_flight(&self) -> (u64, u64) {
        let word = self.parked_here.load(Ordering::SeqCst);
        (word & PARKED_HERE, word >> 32)
    }

    /// Counts a waker in flight toward this worker. Its first touch of the system: from here
    /// until [`waker_landed`](Self::waker_landed) the system does not finish dropping.
    #[inline]
    pub(super) fn waker_in_flight(&self) {
        self.parked_here.fetch_add(IN_FLIGHT, Ordering::SeqCst);
    }

    /// Ends [`waker_in_flight`](Self::waker_in_flight): the waker's last touch of the system,
    /// which may be freed right after it.
    #[inline]
    pub(super) fn waker_landed(&self) {
        self.parked_here.fetch_sub(IN_FLIGHT, Ordering::SeqCst);
    }

    /// Nothing queued, ready or parked here (wakers still in flight toward it are not
    /// counted: the fibers they wake are already in `ready`).
    pub(crate) fn is_quiet(&self) -> bool {
        self.no_ready()
            && self.yielded.is_empty()
            && self.parked_here() == 0
            && self.pinned.is_empty()
            && self.rings_empty()
    }
}

/// Pops `queue` unless it looks empty (see `Worker::pop_ready`).
#[inline]
pub(crate) fn pop_if_any(queue: &ArrayQueue<u32>) -> Option<u32> {
    if queue.is_empty() { None } else { queue.pop() }
}

/// Everything the workers, fibers and handles share. Lives in an `Arc`.
pub(crate) struct Shared {
    pub(crate) workers: Box<[Worker]>,
    pub(crate) fibers: FiberPool,
    /// Overflow from full rings, `Hint::Fifo` submissions and submissions from threads that
    /// are not workers, one FIFO per priority.
    pub(crate) injector: Injector,
    /// The scheduling policy (see `sched/`).
    pub(crate) policy: crate::sched::Policy,
    /// Sleep/wake bookkeeping shared by the workers (see `wake/`).
    pub(crate) dorm: crate::wake::Dorm,
    /// Open frames (`Ctx::frame`, nested ones counted): idle workers spin instead of sleeping
    /// while it is non-zero.
    pub(crate) frames_open: CachePadded<AtomicUsize>,
    /// Timers of fibers in timed waits (see `timer/`).
    pub(crate) timers: crate::timer::Timers,
    /// Parked fibers, one word so the deadlock check reads both halves at once: low 32 bits
    /// every parked fiber (counter or primitive), high 32 bits those parked on a
    /// `jobsys::sync` primitive. May lag below the truth, never above (see `fiber_parked`).
    pub(crate) parked: CachePadded<AtomicU64>,
    /// Set when the system starts dropping: new foreign submissions are refused.
    pub(crate) shutdown: AtomicBool,
    /// Set once the system is quiescent during drop: workers leave their loops.
    pub(crate) exit: AtomicBool,
    /// Worker 0 is inside `JobSystem::run`.
    pub(crate) in_run: AtomicBool,
    /// Foreign threads inside a submit call (shutdown waits for them to leave).
    pub(crate) foreign_submitters: CachePadded<AtomicUsize>,
    /// Memory blocks for scope job records, recycled across scopes.
    pub(crate) blocks: CachePadded<BlockPool>,
    /// Idle rounds spent spinning before a worker sleeps.
    pub(crate) idle_spins: u32,
    /// Whether a woken fiber may resume on another worker (unsafe builder opt-in).
    pub(crate) migration: bool,
    /// Stall reports (see `stall.rs`).
    pub(crate) stall: super::StallWatch,
    /// Frames in flight, their arenas and stats (see `frame/`).
    pub(crate) frames: crate::frame::FrameRing,
    /// The blocking lane's threads and queue (see `blocking.rs`).
    pub(crate) lane: crate::blocking::Lane,
    /// The builder's worker start and stop hooks (see `hooks.rs`).
    pub(crate) hooks: super::WorkerHooks,
}

impl Shared {
    /// Panics (before anything is queued) if `meta` pins a job to a worker that does not
    /// exist, or needs a large stack in a pool without large fibers. Every submit path calls it
    /// on everything it submits. Inline, so that a spawn with a constant unpinned small-stack
    /// meta (`JobMeta::DEFAULT`) checks nothing at run time.
    #[inline]
    pub(crate) fn check_job(&self, meta: &crate::job::JobMeta) {
        if meta.stack == crate::job::StackClass::Large || meta.affinity != crate::job::Affinity::Any
        {
            self.check_job_cold(meta);
        }
    }

    #[cold]
    fn check_job_cold(&self, meta: &crate::job::JobMeta) {
        if meta.stack == crate::job::StackClass::Large
            && !self.fibers.has_class(crate::job::StackClass::Large)
        {
            panic!(
                "job '{}' needs a Large stack, but the pool has no large fibers: give Builder::large_fibers a count of at least 1",
                meta.name
            );
        }
        if let crate::job::Affinity::Worker(k) = meta.affinity {
            let n = self.workers.len();
            assert!(
                k < n,
                "job '{}' is pinned to worker {k}, but the system has {n} workers (0..{n})",
                meta.name
            );
        }
    }

    /// Workers whose sleep flag is set (diagnostics).
    pub(crate) fn sleeping_workers(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| w.bed.sleeping.load(Ordering::Relaxed))
            .count()
    }

    /// Whether a frame is open (idle workers spin rather than sleep).
    #[inline]
    pub(crate) fn in_frame(&self) -> bool {
        self.frames_open.load(Ordering::Relaxed) != 0
    }

    /// Routes a pinned job to its worker's inbox and wakes that worker. Counted as a waker in
    /// flight toward it meanwhile, so that a sleeper whose watchdog sees the job before the
    /// wake comes (a descheduled submitter) counts no lost wake-up.
    pub(crate) fn push_pinned(&self, worker: usize, job: JobRef) {
        let Some(w) = self.workers.get(worker) else {
            // Unreachable through the public API (submit paths call `check_affinity`); scheduler
            // code must not unwind.
            fatal(&format!(
                "job '{}' is pinned to worker {worker}, but the system has {} workers",
                job.meta().name,
                self.workers.len()
            ));
        };
        w.waker_in_flight();
        w.pinned.push(job);
        self.wake_worker(worker);
        w.waker_landed();
    }

    /// The simulation's view of this system when a run fails: its workers and every fiber
    /// out of the pool, with what each waits on.
    pub(crate) fn wait_graph(&self) -> String {
        let mut out = format!(
            "System of {} workers and {} fibers; the injector holds {} jobs; {} fibers parked.\n",
            self.workers.len(),
            self.fibers.len(),
            self.injector.len(),
            self.workers.iter().map(Worker::parked_here).sum::<u64>()
        );
        for w in self.workers.iter() {
            out.push_str(&format!(
                "  worker {}: {}, rings {}, pinned {}, ready {}\n",
                w.index,
                if w.bed.sleeping.load(Ordering::SeqCst) {
                    "asleep"
                } else {
                    "awake"
                },
                if w.rings_empty() {
                    "empty"
                } else {
                    "hold jobs"
                },
                if w.pinned.is_empty() {
                    "empty"
                } else {
                    "holds jobs"
                },
                if w.no_ready() {
                    "empty"
                } else {
                    "holds fibers"
                },
            ));
        }
        out.push_str("  Fibers out of the pool:\n");
        out.push_str(&self.fibers.report(true));
        out
    }

    #[cold]
    pub(crate) fn deadlock(&self, why: &str) -> ! {
        let report = self.fibers.report(false);
        let (small, small_size, large, large_size) = self.fibers.shape();
        // A deep chain of nested waits (each level parked on the next) shows as one job on
        // most fibers: name it and the limits it ran into.
        let chain = match self.fibers.busiest_job() {
            Some((meta, n)) if n > 1 => format!(
                "Job '{}' ({}:{}) is on {n} of them: if it waits on a job like itself, that chain of nested waits is deeper than the pool can host. Each fiber hosts the levels that fit in its stack while {} bytes (Builder::{}) are left; the next level then needs a fiber of its own.\n",
                meta.name,
                meta.file,
                meta.line,
                self.fibers.inline_headroom(meta.stack),
                match meta.stack {
                    crate::job::StackClass::Small => "inline_headroom",
                    crate::job::StackClass::Large => "large_inline_headroom",
                },
            ),
            _ => String::new(),
        };
        fatal(&format!(
            "deadlock: {why}.\n{} workers, {} fibers ({small} small of {small_size} bytes, \
             {large} large of {large_size} bytes); injector holds {} jobs.\n{chain}Fibers:\n\
             {report}Fix: a job is waiting on work that needs a fiber to run; raise the pool \
             size or the stack sizes (Builder::small_fibers / large_fibers), or wait on fewer \
             things at once.",
            self.workers.len(),
            self.fibers.len(),
            self.injector.len()
        ))
    }
}

/// The shared FIFOs, one per priority (indexed by `Priority as usize`).
pub(crate) struct Injector([CachePadded<JobList>; 3]);

impl Injector {
    pub(crate) fn new() -> Self {
        Self(core::array::from_fn(|_| CachePadded::new(JobList::new())))
    }

    #[inline]
    pub(crate) fn at(&self, priority: Priority) -> &JobList {
        &self.0[priority as usize]
    }

    /// Whether some queued job satisfies `pred` (a look under each list's lock).
    pub(crate) fn any(&self, mut pred: impl FnMut(JobRef) -> bool) -> bool {
        self.0.iter().any(|l| l.any(&mut pred))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.iter().map(|l| l.len()).sum()
    }

    /// Appends `job` to the FIFO of its priority.
    pub(crate) fn push(&self, job: JobRef) {
        self.at(job.meta().priority).push(job);
    }
}
