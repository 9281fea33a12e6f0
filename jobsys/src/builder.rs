//! `Builder` → `Result<JobSystem, BuildError>`.

use crate::JobSystem;
use crate::error::{BuildError, BuildErrorKind};
use crate::fiber::{FiberPool, fiber_main};
use crate::job::StackClass;
use crate::memory::{Memory, MemoryRegion, MemoryRequirements, Supplied};
use crate::queue::RingSource;
use crate::scope::BlockPool;
use crate::shim::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::worker::{FpState, Injector, Shared, Worker, start_worker};
use crossbeam_utils::CachePadded;
use std::sync::Arc;

/// Stack size of worker threads (they run only the scheduler loop; jobs run on fibers).
const WORKER_THREAD_STACK: usize = 256 * 1024;

/// Configures and builds a [`JobSystem`].
///
/// ```
/// use jobsys::JobSystem;
/// let jobs = JobSystem::builder()
///     .workers(4)                        // including the calling thread
///     .small_fibers(64, 64 * 1024)
///     .large_fibers(8, 512 * 1024)
///     .build()?;
/// assert_eq!(jobs.worker_count(), 4);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    workers: Option<usize>,
    small: (usize, usize),
    large: (usize, usize),
    pin_workers: bool,
    pin_main: bool,
    queue_capacity: usize,
    queue_growth_limit: usize,
    idle_spins: u32,
    inline_headroom: Option<usize>,
    large_inline_headroom: Option<usize>,
    migration: bool,
    frames_in_flight: usize,
    arena_capacity: usize,
    arena_limit: Option<usize>,
    stack_memory: Supplied,
    queue_memory: Supplied,
    arena_memory: Supplied,
    blocking_threads: usize,
    hooks: crate::worker::WorkerHooks,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            workers: None,
            small: (Self::DEFAULT_SMALL_FIBERS, Self::DEFAULT_SMALL_STACK),
            large: (Self::DEFAULT_LARGE_FIBERS, Self::DEFAULT_LARGE_STACK),
            pin_workers: false,
            pin_main: false,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            queue_growth_limit: Self::MAX_QUEUE_CAPACITY,
            idle_spins: Self::DEFAULT_IDLE_SPINS,
            inline_headroom: None,
            large_inline_headroom: None,
            migration: false,
            frames_in_flight: Self::DEFAULT_FRAMES_IN_FLIGHT,
            arena_capacity: Self::DEFAULT_ARENA_CAPACITY,
            arena_limit: None,
            stack_memory: Supplied::default(),
            queue_memory: Supplied::default(),
            arena_memory: Supplied::default(),
            blocking_threads: Self::DEFAULT_BLOCKING_THREADS,
            hooks: crate::worker::WorkerHooks::default(),
        }
    }
}

impl Builder {
    /// Most workers a system may have.
    pub const MAX_WORKERS: usize = 1024;
    /// Most fibers a pool may hold.
    pub const MAX_FIBERS: usize = 1 << 20;
    /// Smallest fiber stack accepted, in bytes (one guard page comes on top).
    pub const MIN_STACK_SIZE: usize = 16 * 1024;
    /// Smallest per-worker ring capacity.
    pub const MIN_QUEUE_CAPACITY: usize = 4;
    /// Largest per-worker ring capacity.
    pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

    /// Default small-fiber count (Naughty Dog shipped 128 × 64 KiB).
    pub const DEFAULT_SMALL_FIBERS: usize = 128;
    /// Default small-fiber stack size.
    pub const DEFAULT_SMALL_STACK: usize = 64 * 1024;
    /// Default large-fiber count (Naughty Dog shipped 32 × 512 KiB).
    pub const DEFAULT_LARGE_FIBERS: usize = 32;
    /// Default large-fiber stack size.
    pub const DEFAULT_LARGE_STACK: usize = 512 * 1024;
    /// Default per-worker ring capacity; overflow goes to the injector. Picked (Tokio uses 256);
    /// tune with data.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
    /// Default idle spin rounds before yielding and sleeping; picked, tune with data.
    pub const DEFAULT_IDLE_SPINS: u32 = 64;
    /// Default [`inline_headroom`](Self::inline_headroom): a fiber runs a child job inline (on its own stack)
    /// only while at least this much of its stack is left — half a default small stack, so a child
    /// run inline can count on as much stack as half a fresh small fiber. Picked; tune with data.
    pub const DEFAULT_INLINE_HEADROOM: usize = 32 * 1024;

    /// Default frames in flight: the game logic of frame N + 1 overlaps the render stage of
    /// frame N.
    pub const DEFAULT_FRAMES_IN_FLIGHT: usize = 2;
    /// Most frames in flight.
    pub const MAX_FRAMES_IN_FLIGHT: usize = 16;
    /// Default bytes reserved at build time for each worker's arena of each frame in flight.
    /// Picked; size it from [`FrameStats`](crate::FrameStats)' high-water marks.
    pub const DEFAULT_ARENA_CAPACITY: usize = 256 * 1024;
    /// Default growth limit of an arena, as a multiple of its capacity (see
    /// [`frame_arena`](Self::frame_arena)).
    pub const DEFAULT_ARENA_GROWTH: usize = 16;
    /// Default number of blocking-lane threads ([`blocking_threads`](Self::blocking_threads)):
    /// a couple of calls in flight at once, few threads idle. Picked; raise it for more
    /// concurrent blocking calls.
    pub const DEFAULT_BLOCKING_THREADS: usize = 2;

    /// A builder with the defaults: one worker per physical core (capped by the available
    /// parallelism), 128 × 64 KiB + 32 × 512 KiB fibers, no pinning.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of workers *including* the calling thread (worker 0).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Count and stack size (bytes) of the small fiber class.
    pub fn small_fibers(mut self, count: usize, stack_size: usize) -> Self {
        self.small = (count, stack_size);
        self
    }

    /// Count and stack size (bytes) of the large fiber class.
    pub fn large_fibers(mut self, count: usize, stack_size: usize) -> Self {
        self.large = (count, stack_size);
        self
    }

    /// Pin worker threads 1.. one per core (best effort; see [`JobSystem::pinned_cores`]).
    /// Off by default. Keep it off where several pools or processes share the cores (tests).
    pub fn pin_workers(mut self, on: bool) -> Self {
        self.pin_workers = on;
        self
    }

    /// Also pin the calling thread (worker 0) to the first core. Off by default: threads
    /// inherit affinity on Linux, so every thread it spawns later would share that one core.
    pub fn pin_main_thread(mut self, on: bool) -> Self {
        self.pin_main = on;
        self
    }

    /// Initial capacity of each worker's rings (a power of two). A ring that its worker fills
    /// doubles, up to [`queue_growth_limit`](Self::queue_growth_limit), and keeps its size;
    /// past that, jobs go to the shared injector list, so it bounds nothing but locality. Rings
    /// carved from [`queue_memory`](Self::queue_memory) never grow: more jobs than this go to
    /// the injector.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// Slots up to which a full ring doubles (default and most:
    /// [`MAX_QUEUE_CAPACITY`](Self::MAX_QUEUE_CAPACITY), 8 MiB of slots): a ring holding fewer
    /// slots that its worker pushes onto full allocates one of twice the size, so a long run of
    /// spawns stays on its worker instead of going through the shared injector. The ring keeps
    /// its largest size (and the buffers it outgrew, for thieves that may still read them: at
    /// most as many bytes again) until the system is dropped, so a workload that grew it runs
    /// again without allocating. A ring's size stays a power of two, so a limit that is not one
    /// stops growth at the power of two below it. At most
    /// [`queue_capacity`](Self::queue_capacity) (or any value up to it) turns growth off. Rings carved from [`queue_memory`](Self::queue_memory)
    /// never grow.
    pub fn queue_growth_limit(mut self, slots: usize) -> Self {
        self.queue_growth_limit = slots.min(Self::MAX_QUEUE_CAPACITY);
        self
    }

    /// Spin rounds an idle worker makes before yielding and then sleeping.
    pub fn idle_spins(mut self, n: u32) -> Self {
        self.idle_spins = n;
        self
    }

    /// Stack (bytes) a fiber must have left to run a child job inline on its own stack: a wait
    /// running its own unstarted children, a [`Ctx::join`](crate::Ctx::join) running its `b`
    /// when nobody stole it, a [`Hint::Inline`](crate::Hint::Inline) submission. With less
    /// left, the waiter parks and the child starts on a fiber of its own, so a deep chain of
    /// nested waits spreads over several fibers instead of overflowing one (see "Deep chains of
    /// waits" in the guide). Applies to `Small` children; `Large` ones use
    /// [`large_inline_headroom`](Self::large_inline_headroom).
    ///
    /// Default: [`DEFAULT_INLINE_HEADROOM`](Self::DEFAULT_INLINE_HEADROOM), or half the small stack
    /// if that is less. A child job run inline must fit in this much stack: raise it if jobs use
    /// more. `usize::MAX` never runs children inline (each child then takes a fiber of its own).
    ///
    /// # Errors
    /// [`build`](Self::build) refuses (`BuildErrorKind::HeadroomTooLarge`) a headroom, other
    /// than `usize::MAX`, that is not less than the stack of the fibers it applies to (the small
    /// ones, or the large ones in a pool without small fibers): no child could ever run inline
    /// there, and every level of a fork-join would hold a fiber.
    ///
    /// ```
    /// // A chain of 300 nested scopes: each level waits for the next. With little stack
    /// // left, a level starts on a fiber of its own instead of overflowing this one.
    /// fn level(ctx: &jobsys::Ctx, n: u32) -> u32 {
    ///     if n == 0 { return 0; }
    ///     let mut below = 0;
    ///     ctx.scope(|s| { s.spawn(|s| below = level(s, n - 1)); });
    ///     below + 1
    /// }
    /// let jobs = jobsys::JobSystem::builder()
    ///     .workers(1)
    ///     .inline_headroom(48 * 1024)
    ///     .build()?;
    /// assert_eq!(jobs.run(|ctx| level(ctx, 300)), 300);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn inline_headroom(mut self, bytes: usize) -> Self {
        self.inline_headroom = Some(bytes);
        self
    }

    /// Stack (bytes) a fiber must have left to run a [`Large`](crate::StackClass::Large)
    /// child inline; see [`inline_headroom`](Self::inline_headroom). A job is declared
    /// `Large` because it needs more than a small stack, so by default it runs inline only with
    /// at least a whole small stack left (or the `inline_headroom`, if that is more). Raise it
    /// towards the large stack size when `Large` jobs use more than that; with less left they
    /// start on a large fiber of their own.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder()
    ///     .large_fibers(8, 1024 * 1024)
    ///     .large_inline_headroom(512 * 1024)   // Large jobs here use up to 512 KiB
    ///     .build()?;
    /// # drop(jobs);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    ///
    /// # Errors
    /// [`build`](Self::build) refuses (`BuildErrorKind::HeadroomTooLarge`) a value, other than
    /// `usize::MAX`, that is not less than the large stack size.
    pub fn large_inline_headroom(mut self, bytes: usize) -> Self {
        self.large_inline_headroom = Some(bytes);
        self
    }

    /// Lets a woken fiber resume on any worker, not only the one that parked it.
    ///
    /// # Safety
    /// With migration a job may continue on another OS thread after any wait, join, scope or
    /// yield. The caller guarantees that no job holds across such a call anything tied to its
    /// thread: a reference obtained from a `thread_local!` (`LocalKey::with` borrow), a std
    /// `MutexGuard`/`RwLock` guard, a `RefCell` borrow of thread-local data, a Tracy span, any
    /// other `!Send` value tied to its thread, or an assumption about `std::thread::current()`
    /// (jobsys's own `!Send` guards — `jobsys::sync` guards and `profile::Zone` — belong to the
    /// job, not its thread, and may be held across waits here too); and that no code
    /// on the job's call stack caches a thread-local's address across it (LLVM may keep such
    /// addresses in registers across the switch). Violating this is undefined behaviour.
    pub unsafe fn allow_migration(mut self) -> Self {
        self.migration = true;
        self
    }

    /// The stack a fiber must have left to run a child inline, per class (`StackClass as
    /// usize`): the explicit values validated, the defaults fitted to the stacks.
    fn headroom(&self) -> Result<[usize; 2], BuildError> {
        let check = |class, headroom: usize, stack: usize| {
            if headroom != usize::MAX && headroom >= stack {
                Err(BuildError::new(BuildErrorKind::HeadroomTooLarge {
                    class,
                    headroom,
                    stack,
                }))
            } else {
                Ok(headroom)
            }
        };
        // The fibers a Small child is most often inlined on: the small ones, if any.
        let (host_class, host_stack) = if self.small.0 > 0 {
            (StackClass::Small, self.small.1)
        } else {
            (StackClass::Large, self.large.1)
        };
        let small = match self.inline_headroom {
            Some(h) => check(host_class, h, host_stack)?,
            None => Self::DEFAULT_INLINE_HEADROOM.min(host_stack / 2),
        };
        let large = match self.large_inline_headroom {
            Some(h) if self.large.0 > 0 => check(StackClass::Large, h, self.large.1)?,
            Some(h) => h,
            // A large child was declared to need more than a small stack.
            None => small.max(self.small.1),
        };
        Ok([small, large])
    }

    /// How many frames may be in flight at once (default
    /// [`DEFAULT_FRAMES_IN_FLIGHT`](Self::DEFAULT_FRAMES_IN_FLIGHT), 1 to
    /// [`MAX_FRAMES_IN_FLIGHT`](Self::MAX_FRAMES_IN_FLIGHT)): opening frame N waits until
    /// frame N − K retired. Each frame in flight has its own arena per worker.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).frames_in_flight(3).build()?;
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn frames_in_flight(mut self, k: usize) -> Self {
        self.frames_in_flight = k;
        self
    }

    /// The budget of each worker's arena per frame in flight: `capacity` bytes (rounded up to
    /// a multiple of 64) reserved at build time (default [`DEFAULT_ARENA_CAPACITY`](Self::DEFAULT_ARENA_CAPACITY)), and a
    /// `limit` it may grow to with heap chunks when a frame needs more (default 16 ×
    /// capacity). Growth is counted in [`FrameStats::arena_grown`](crate::FrameStats::arena_grown)
    /// and kept for later frames, so it happens once, not per frame. Past the limit,
    /// [`FrameArena::try_alloc`](crate::FrameArena::try_alloc) returns
    /// [`ArenaFull`](crate::ArenaFull) and the other allocation calls panic with that message.
    /// `limit == capacity` makes the budget strict: no heap allocation ever.
    ///
    /// ```
    /// // 1 MiB per worker per frame, never more.
    /// let jobs = jobsys::JobSystem::builder().workers(2).frame_arena(1 << 20, 1 << 20).build()?;
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn frame_arena(mut self, capacity: usize, limit: usize) -> Self {
        self.arena_capacity = capacity;
        self.arena_limit = Some(limit);
        self
    }

    /// Number of blocking-lane threads: the threads outside the workers that run
    /// [`Ctx::blocking`](crate::Ctx::blocking) calls while their fibers park. Spawned at
    /// build (named `jobsys-blocking-N`), joined when the system drops; they sleep while no
    /// call is queued. Default [`DEFAULT_BLOCKING_THREADS`](Self::DEFAULT_BLOCKING_THREADS).
    ///
    /// Zero spawns none: each `Ctx::blocking` call then runs its closure inline on the
    /// worker, blocking the worker and every fiber on it meanwhile (for platforms or tests
    /// without spare threads; a call that waits for another job can then deadlock).
    ///
    /// # Errors
    /// [`build`](Self::build) reports `BuildErrorKind::BlockingThreadSpawn` if the OS refuses
    /// a thread.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).blocking_threads(4).build()?;
    /// let len = jobs.run(|ctx| ctx.blocking(|| std::env::temp_dir().as_os_str().len()));
    /// assert!(len > 0);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn blocking_threads(mut self, n: usize) -> Self {
        self.blocking_threads = n;
        self
    }

    /// A hook every worker thread calls when it starts, before it runs any job: set a thread
    /// priority, initialise a per-thread library, log where it was pinned (see
    /// [`WorkerInfo`](crate::WorkerInfo)). Workers 1 and up call it on their own thread right
    /// after starting (and pinning); worker 0 — the thread that builds the system — calls it
    /// on that thread at the end of [`build`](Self::build). Every call has returned when
    /// `build` returns. A later call replaces an earlier hook.
    ///
    /// A hook must not panic (a panic aborts the process: no one could receive it) and must
    /// not wait for jobs (none run yet).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let jobs = jobsys::JobSystem::builder()
    ///     .workers(3)
    ///     .on_worker_start(move |w| log.lock().unwrap().push(w.index))
    ///     .build()?;
    /// let mut started = seen.lock().unwrap().clone();
    /// started.sort();
    /// assert_eq!(started, [0, 1, 2]);
    /// # drop(jobs);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn on_worker_start(
        mut self,
        hook: impl Fn(&crate::WorkerInfo<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.start = Some(std::sync::Arc::new(hook));
        self
    }

    /// A hook every worker thread calls when it stops, after its last job: workers 1 and up on
    /// their own thread as they leave their loop during the system's drop; worker 0 on the
    /// thread that drops the system (the one that built it), once the drain is done. Every
    /// call has returned when the drop returns. A later call replaces an earlier hook; the
    /// rules of [`on_worker_start`](Self::on_worker_start) apply.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let stopped = Arc::new(AtomicUsize::new(0));
    /// let count = stopped.clone();
    /// let jobs = jobsys::JobSystem::builder()
    ///     .workers(4)
    ///     .on_worker_stop(move |_| { count.fetch_add(1, Ordering::SeqCst); })
    ///     .build()?;
    /// assert_eq!(stopped.load(Ordering::SeqCst), 0);
    /// drop(jobs);
    /// assert_eq!(stopped.load(Ordering::SeqCst), 4);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn on_worker_stop(
        mut self,
        hook: impl Fn(&crate::WorkerInfo<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.stop = Some(std::sync::Arc::new(hook));
        self
    }

    /// Validates the configuration, maps every fiber stack, spawns the workers.
    pub fn build(mut self) -> Result<JobSystem, BuildError> {
        let workers = self.worker_count();
        let err = |k| Err(BuildError::new(k));
        if workers == 0 {
            return err(BuildErrorKind::ZeroWorkers);
        }
        if workers > Self::MAX_WORKERS {
            return err(BuildErrorKind::TooManyWorkers {
                requested: workers,
                max: Self::MAX_WORKERS,
            });
        }
        let total = self.small.0.saturating_add(self.large.0);
        if total == 0 {
            return err(BuildErrorKind::NoFibers);
        }
        if total > Self::MAX_FIBERS {
            return err(BuildErrorKind::TooManyFibers {
                requested: total,
                max: Self::MAX_FIBERS,
            });
        }
        for (class, (count, size)) in [
            (StackClass::Small, self.small),
            (StackClass::Large, self.large),
        ] {
            if count > 0 && size < Self::MIN_STACK_SIZE {
                return err(BuildErrorKind::StackTooSmall {
                    class,
                    size,
                    min: Self::MIN_STACK_SIZE,
                });
            }
        }
        if self.small.0 > 0 && self.large.0 > 0 && self.large.1 < self.small.1 {
            return err(BuildErrorKind::LargeSmallerThanSmall {
                small: self.small.1,
                large: self.large.1,
            });
        }
        let q = self.queue_capacity;
        if !q.is_power_of_two()
            || !(Self::MIN_QUEUE_CAPACITY..=Self::MAX_QUEUE_CAPACITY).contains(&q)
        {
            return err(BuildErrorKind::QueueCapacity {
                requested: q,
                min: Self::MIN_QUEUE_CAPACITY,
                max: Self::MAX_QUEUE_CAPACITY,
            });
        }

        let k = self.frames_in_flight;
        if !(1..=Self::MAX_FRAMES_IN_FLIGHT).contains(&k) {
            return err(BuildErrorKind::FramesInFlight {
                requested: k,
                max: Self::MAX_FRAMES_IN_FLIGHT,
            });
        }
        let arena_limit = self.arena_limit.unwrap_or(
            self.arena_capacity
                .saturating_mul(Self::DEFAULT_ARENA_GROWTH),
        );
        if arena_limit < self.arena_capacity {
            return err(BuildErrorKind::ArenaLimitBelowCapacity {
                capacity: self.arena_capacity,
                limit: arena_limit,
            });
        }
        if crate::frame::FrameConfig::checked_blocks(self.arena_capacity, k, self.worker_count())
            .is_none()
        {
            return err(BuildErrorKind::ArenaTooLarge {
                capacity: self.arena_capacity,
                workers: self.worker_count(),
                frames_in_flight: k,
            });
        }
        let mut frame_config = crate::frame::FrameConfig {
            in_flight: k,
            arena_capacity: self.arena_capacity,
            arena_limit,
            memory: None,
        };

        let lane =
            crate::blocking::Lane::new(self.blocking_threads).map_err(|(thread, source)| {
                BuildError::new(BuildErrorKind::BlockingThreadSpawn { thread, source })
            })?;
        let headroom = self.headroom()?;
        let needs = self.memory_requirements();
        let stack_memory = (self.stack_memory.take())
            .map(|m| m.check(MemoryRegion::FiberStacks, needs.fiber_stacks))
            .transpose()?;
        let queue_memory = (self.queue_memory.take())
            .map(|m| m.check(MemoryRegion::Queues, needs.queues))
            .transpose()?;
        frame_config.memory = (self.arena_memory.take())
            .map(|m| m.check(MemoryRegion::FrameArenas, needs.frame_arenas))
            .transpose()?;
        // SAFETY: the block holds what this configuration needs (checked just above), and is
        // the system's until it is dropped (the `Memory` contract).
        let fibers =
            unsafe { FiberPool::new(self.small, self.large, headroom, fiber_main, stack_memory)? };
        let fiber_count = fibers.len();
        // SAFETY: as for the fiber pool.
        let mut rings = unsafe { RingSource::new(q, self.queue_growth_limit, queue_memory) };
        let shared = Arc::new(Shared {
            workers: (0..workers)
                .map(|i| Worker::new(i, &mut rings, total))
                .collect(),
            fibers,
            injector: Injector::new(),
            policy: crate::sched::Policy,
            dorm: crate::wake::Dorm::new(),
            frames_open: CachePadded::new(AtomicUsize::new(0)),
            timers: crate::timer::Timers::new(fiber_count),
            parked: CachePadded::new(AtomicU64::new(0)),
            shutdown: AtomicBool::new(false),
            exit: AtomicBool::new(false),
            in_run: AtomicBool::new(false),
            foreign_submitters: CachePadded::new(AtomicUsize::new(0)),
            blocks: CachePadded::new(BlockPool::new()),
            idle_spins: self.idle_spins,
            migration: self.migration,
            stall: crate::worker::StallWatch::new(),
            frames: crate::frame::FrameRing::new(frame_config, workers)?,
            lane,
            hooks: self.hooks.clone(),
        });
        let _ = shared.workers[0].thread.set(std::thread::current());
        crate::profile::worker_start(0);
        crate::sim::on_report(|| {
            let system = Arc::downgrade(&shared);
            move || {
                system
                    .upgrade()
                    .map_or_else(String::new, |s| s.wait_graph())
            }
        });

        // Read the core list before pinning anything: on Linux it is the calling thread's mask.
        let cores = if self.pin_workers || self.pin_main {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let core_for = |i: usize| (!cores.is_empty()).then(|| cores[i % cores.len()]);
        let pinned: Arc<[AtomicBool]> = (0..workers).map(|_| AtomicBool::new(false)).collect();
        if let Some(core) = core_for(0).filter(|_| self.pin_main) {
            pinned[0].store(core_affinity::set_for_current(core), Ordering::Relaxed);
        }
        let fp = FpState::capture();
        let started = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::with_capacity(workers - 1);
        for i in 1..workers {
            let core = if self.pin_workers { core_for(i) } else { None };
            match start_worker(
                shared.clone(),
                i,
                core,
                fp,
                WORKER_THREAD_STACK,
                started.clone(),
                pinned.clone(),
            ) {
                Ok(t) => threads.push(t),
                Err(source) => {
                    shared.exit.store(true, Ordering::SeqCst);
                    shared.wake_all();
                    for t in threads {
                        let _ = t.join();
                    }
                    return err(BuildErrorKind::ThreadSpawn { worker: i, source });
                }
            }
        }
        // Every worker has published its thread handle (wakers need it) and its pin result.
        while started.load(Ordering::Acquire) != workers - 1 {
            crate::shim::thread::yield_now();
        }
        let pinned_cores: Vec<Option<usize>> = (0..workers)
            .map(|i| {
                let core = if i == 0 {
                    self.pin_main.then(|| core_for(0)).flatten()
                } else {
                    self.pin_workers.then(|| core_for(i)).flatten()
                };
                core.filter(|_| pinned[i].load(Ordering::Relaxed))
                    .map(|c| c.id)
            })
            .collect();
        // Worker 0's start hook, on this thread: every worker's has returned when build does.
        shared.hooks.started(0, pinned_cores[0]);
        Ok(JobSystem::from_parts(shared, threads, pinned_cores))
    }

    /// Carves every fiber stack, small and large, out of `memory` instead of mapping each
    /// one: the block's start is aligned up to a page, and each stack gets a guard page below
    /// it inside the block (made inaccessible, so a stack overflow is still reported like on a
    /// mapped stack). When the system is dropped the guard pages are made readable and
    /// writable again, and the whole block is the user's once more. The block must hold at
    /// least [`memory_requirements`](Self::memory_requirements)`().fiber_stacks` bytes. A
    /// clone of this builder does not take the block along (it maps its stacks).
    ///
    /// # Errors
    /// [`build`](Self::build) refuses a smaller block (`BuildErrorKind::MemoryTooSmall`, region
    /// `MemoryRegion::FiberStacks`), and reports `BuildErrorKind::StackAlloc` if the OS
    /// refuses to protect a guard page in it.
    ///
    /// ```
    /// use jobsys::{JobSystem, Memory};
    /// let builder = JobSystem::builder().workers(2).small_fibers(16, 64 * 1024).large_fibers(2, 256 * 1024);
    /// let bytes = builder.memory_requirements().fiber_stacks;
    /// let block: &'static mut [u8] = Box::leak(vec![0u8; bytes].into_boxed_slice());
    /// # let raw: *mut [u8] = &mut *block; // (the example gives the block back at its end)
    /// let jobs = builder.fiber_stack_memory(Memory::new(block)).build()?;
    /// assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
    /// # drop(jobs);
    /// # // SAFETY: the system that used the block is gone; it came from `Box::leak`.
    /// # unsafe { drop(Box::from_raw(raw)) };
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn fiber_stack_memory(mut self, memory: Memory) -> Self {
        self.stack_memory.set(memory);
        self
    }

    /// Carves the per-worker job rings (six per worker: three priorities times two stack
    /// classes, [`queue_capacity`](Self::queue_capacity) slots each) out of `memory` instead of
    /// allocating them. The block must hold at least
    /// [`memory_requirements`](Self::memory_requirements)`().queues` bytes; each ring starts on
    /// a cache line. The smaller internal queues (each worker's queues of ready and yielded
    /// fibers, the fiber pool's free lists) stay managed: they hold fiber indices, a few bytes
    /// per fiber. A clone of this builder does not take the block along.
    ///
    /// # Errors
    /// [`build`](Self::build) refuses a smaller block (`BuildErrorKind::MemoryTooSmall`, region
    /// `MemoryRegion::Queues`).
    ///
    /// ```
    /// use jobsys::{JobSystem, Memory};
    /// let builder = JobSystem::builder().workers(2).queue_capacity(128);
    /// let bytes = builder.memory_requirements().queues;
    /// let block: &'static mut [u8] = Box::leak(vec![0u8; bytes].into_boxed_slice());
    /// # let raw: *mut [u8] = &mut *block; // (the example gives the block back at its end)
    /// let jobs = builder.queue_memory(Memory::new(block)).build()?;
    /// assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
    /// # drop(jobs);
    /// # // SAFETY: the system that used the block is gone; it came from `Box::leak`.
    /// # unsafe { drop(Box::from_raw(raw)) };
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn queue_memory(mut self, memory: Memory) -> Self {
        self.queue_memory.set(memory);
        self
    }

    /// Carves every frame arena's reserved block (one per worker per frame in flight,
    /// [`frame_arena`](Self::frame_arena)'s capacity each, on a cache line) out of `memory`
    /// instead of allocating them. The block must hold at least
    /// [`memory_requirements`](Self::memory_requirements)`().frame_arenas` bytes. Growth
    /// past the capacity (up to the arena's limit) still comes from the heap: make the limit
    /// equal to the capacity to keep every frame allocation in the block. A clone of this
    /// builder does not take the block along.
    ///
    /// # Errors
    /// [`build`](Self::build) refuses a smaller block (`BuildErrorKind::MemoryTooSmall`, region
    /// `MemoryRegion::FrameArenas`).
    ///
    /// ```
    /// use jobsys::{JobSystem, Memory};
    /// let builder = JobSystem::builder().workers(2).frame_arena(64 * 1024, 64 * 1024);
    /// let bytes = builder.memory_requirements().frame_arenas;
    /// let block: &'static mut [u8] = Box::leak(vec![0u8; bytes].into_boxed_slice());
    /// # let raw: *mut [u8] = &mut *block; // (the example gives the block back at its end)
    /// let jobs = builder.frame_arena_memory(Memory::new(block)).build()?;
    /// let sum = jobs.run(|ctx| ctx.frame(|f| f.arena(ctx).alloc_slice_fill_copy(100, 2u32).iter().sum::<u32>()));
    /// assert_eq!(sum, 200);
    /// # drop(jobs);
    /// # // SAFETY: the system that used the block is gone; it came from `Box::leak`.
    /// # unsafe { drop(Box::from_raw(raw)) };
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn frame_arena_memory(mut self, memory: Memory) -> Self {
        self.arena_memory.set(memory);
        self
    }

    /// The bytes each region needs for this configuration, should the user supply it
    /// ([`fiber_stack_memory`](Self::fiber_stack_memory), [`queue_memory`](Self::queue_memory)):
    /// exact figures, alignment slack for the block's start included, so a block of that many
    /// bytes is accepted wherever it starts. They depend on the fiber counts and stack sizes,
    /// the worker count (the default one, if [`workers`](Self::workers) was not called) and the
    /// queue capacity, and on the page size for the stacks: ask after configuring those.
    ///
    /// ```
    /// let builder = jobsys::JobSystem::builder().workers(4).small_fibers(8, 64 * 1024).large_fibers(0, 0);
    /// let needs = builder.memory_requirements();
    /// // Eight stacks of 64 KiB, a guard page each, and up to a page of slack.
    /// assert!(needs.fiber_stacks >= 8 * 64 * 1024 + 8 * 4096);
    /// assert!(needs.queues >= 4 * 6 * 256 * 8); // workers x rings x slots x pointer
    /// ```
    pub fn memory_requirements(&self) -> MemoryRequirements {
        MemoryRequirements {
            fiber_stacks: crate::fiber::StackBlock::bytes([self.small, self.large]),
            queues: RingSource::bytes(self.worker_count(), self.queue_capacity),
            frame_arenas: crate::frame::FrameConfig::bytes_needed(
                self.arena_capacity,
                self.frames_in_flight,
                self.worker_count(),
            ),
        }
    }

    /// The worker count: the one asked for, else one per physical core (capped by the
    /// available parallelism).
    fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            num_cpus::get_physical()
                .min(std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1)
        })
    }
}
