//! Zero heap allocations in steady state, proven with a counting global allocator.
//!
//! After a warm-up, submitting, running and waiting on 1,000 jobs — as a raw batch, as scope
//! spawns and as nested joins — performs no heap allocation on any thread; neither does a scope
//! of more spawns than a ring holds (which stays on its worker's grown ring), nor a frame
//! of channels, select, a mutex and timed waits.
//!
//! The count is process-wide, so nothing else may allocate while a check counts: this is a
//! `harness = false` test binary (see `jobsys/Cargo.toml`) whose `main` runs the checks one
//! after another on the main thread, with no test harness threads around. A self-check first
//! proves that the counter sees allocations made inside jobs on other worker threads, so a
//! zero cannot come from a counter that does not count.
use jobsys::{Counter, Ctx, Frame, JobDecl, JobSystem, job_meta};
use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Taken by the first counted allocation of a `count_allocs`, which records where it came from.
static FIRST_TAKEN: AtomicBool = AtomicBool::new(false);
/// The first counted allocation: its size and its backtrace (printed by a failing check, so
/// that a failing proof says what allocated; the frames show which thread: a worker loop or
/// `main`). Captured unresolved: the symbols are resolved when printed, on the main thread,
/// not on a fiber's small stack. (No `thread::current()` here: std's lazy initialisation of
/// the current thread allocates and aborts if the allocator re-enters it.)
static FIRST: Mutex<Option<(usize, Backtrace)>> = Mutex::new(None);
/// Frees counted while `COUNTING` (only `count_allocs_and_frees` reads them).
static FREES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread records [`FIRST`]: the recording's own allocations are neither
    /// counted nor recorded. Const-initialised without a destructor, so reading it from the
    /// allocator allocates nothing and works at any point of a thread's life.
    static RECORDING: Cell<bool> = const { Cell::new(false) };
}

/// Counts an allocation of `size` bytes if a `count_allocs` is counting, and records the first.
fn counted(size: usize) {
    if !COUNTING.load(Ordering::Relaxed) || RECORDING.with(Cell::get) {
        return;
    }
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    if !FIRST_TAKEN.swap(true, Ordering::Relaxed) {
        RECORDING.with(|r| r.set(true));
        let what = (size, Backtrace::force_capture());
        *FIRST.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
        RECORDING.with(|r| r.set(false));
    }
}

// SAFETY: forwards to the system allocator; only adds a counter (and, once per count, a
// recording whose own allocations re-enter this allocator with `RECORDING` set).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            FREES.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted(new_size);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations (and reallocations) that `f` makes, on any thread.
fn count_allocs(f: impl FnOnce()) -> usize {
    *FIRST.lock().unwrap() = None;
    ALLOCS.store(0, Ordering::SeqCst);
    FIRST_TAKEN.store(false, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
}

/// Where the first allocation of the last `count_allocs` came from (for a failing check).
fn first_alloc() -> String {
    // Another thread may still be recording it (it took `FIRST_TAKEN` before the count ended).
    loop {
        if let Some((size, at)) = &*FIRST.lock().unwrap() {
            return format!("{size} bytes, at:\n{at}");
        }
        if !FIRST_TAKEN.load(Ordering::SeqCst) {
            return "none recorded".into();
        }
        std::thread::yield_now();
    }
}

/// Heap allocations (and reallocations) and frees that `f` makes, on any thread.
fn count_allocs_and_frees(f: impl FnOnce()) -> (usize, usize) {
    FREES.store(0, Ordering::SeqCst);
    let allocs = count_allocs(f);
    (allocs, FREES.load(Ordering::SeqCst))
}

fn add(_: &Ctx, data: *mut ()) {
    // SAFETY: points at the test's live `AtomicUsize`.
    unsafe { &*(data as *const AtomicUsize) }.fetch_add(1, Ordering::Relaxed);
}

fn tree(ctx: &Ctx, n: u32) -> u32 {
    if n <= 1 {
        return 1;
    }
    let (a, b) = ctx.join(|c| tree(c, n / 2), |c| tree(c, n - n / 2));
    a + b
}

fn frame(jobs: &JobSystem, decls: &[JobDecl], cells: &mut [u64]) {
    jobs.run(|ctx| {
        let c = Counter::new();
        // SAFETY: `decls` (and the counter they bump) and `c` outlive the wait.
        unsafe { ctx.run_jobs(decls, &c) };
        ctx.wait_for_counter(&c, 0);
        ctx.scope(|s| {
            for cell in cells.iter_mut() {
                s.spawn(move |_| *cell += 1);
            }
        });
        assert_eq!(tree(ctx, 1000), 1000);
    });
}

fn steady_state_submit_run_wait_allocates_nothing() {
    for workers in [1, 2, 4] {
        // Rings that hold a frame's 1,000 spawns from the start: with two or more workers how
        // deep a ring gets depends on how fast thieves drain it, so a warmed-up frame could
        // still be the first to reach a new depth and grow its ring (growth has its own check,
        // `a_scope_larger_than_a_ring_stays_on_it_and_allocates_nothing`).
        let jobs = JobSystem::builder()
            .workers(workers)
            .queue_capacity(1024)
            .build()
            .unwrap();
        let hits = AtomicUsize::new(0);
        let decls: Vec<JobDecl> = (0..1000)
            .map(|_| JobDecl::new(job_meta!("add"), add, &hits as *const _ as *mut ()))
            .collect();
        let mut cells = vec![0u64; 1000];
        for _ in 0..50 {
            frame(&jobs, &decls, &mut cells);
        }
        let allocs = count_allocs(|| {
            for _ in 0..200 {
                frame(&jobs, &decls, &mut cells);
            }
        });
        assert_eq!(hits.load(Ordering::Relaxed), 250 * 1000);
        assert!(cells.iter().all(|&c| c == 250));
        assert_eq!(
            allocs,
            0,
            "{allocs} heap allocations in 200 warmed-up frames at {workers} workers; the first: {}",
            first_alloc()
        );
    }
}

/// A scope of many more spawns than a ring's first capacity, on one worker: after the warm-up
/// (where the ring grows), the spawns stay on the worker's own ring — nothing moves to the
/// shared injector (`WorkerStats::overflowed`) — and nothing allocates. One worker only: with
/// two, how deep the ring gets in a run depends on how fast the thief drains it, so the run
/// that first reaches the deepest depth (and grows) is not known in advance.
fn a_scope_larger_than_a_ring_stays_on_it_and_allocates_nothing() {
    const SPAWNS: usize = 20_000;
    let jobs = JobSystem::builder()
        .workers(1)
        .queue_capacity(256)
        .build()
        .unwrap();
    let mut cells = vec![0u64; SPAWNS];
    let run = |cells: &mut [u64]| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for cell in cells.iter_mut() {
                    s.spawn(move |_| *cell += 1);
                }
            })
        })
    };
    for _ in 0..3 {
        run(&mut cells);
    }
    let before = jobs.worker_stats(0);
    let allocs = count_allocs(|| {
        for _ in 0..20 {
            run(&mut cells);
        }
    });
    let d = jobs.worker_stats(0) - before;
    assert!(cells.iter().all(|&c| c == 23));
    assert_eq!(d.jobs_run, 20 * (SPAWNS as u64 + 1), "{d:?}");
    assert_eq!(d.overflowed, 0, "spawns overflowed to the injector: {d:?}");
    assert_eq!(
        allocs,
        0,
        "{allocs} heap allocations in 20 warmed-up scopes of {SPAWNS} spawns; the first: {}",
        first_alloc()
    );
}

/// A frame of the sync primitives: a channel pipeline, a select over two channels, a mutex,
/// a timed wait that times out, a timed acquire and a timed counter wait that succeed.
fn sync_frame(jobs: &JobSystem, p: &SyncParts) {
    use jobsys::sync::{RecvArm, select};
    use std::time::Duration;
    jobs.run(|ctx| {
        ctx.scope(|s| {
            s.spawn(|s| {
                for i in 0..100u64 {
                    let ch = if i % 2 == 0 { &p.a } else { &p.b };
                    ch.send(s, i).unwrap();
                }
            });
            for _ in 0..100 {
                let mut ra = RecvArm::new(&p.a);
                let mut rb = RecvArm::new(&p.b);
                let v = match select(s, &mut [&mut ra, &mut rb]) {
                    0 => ra.take(),
                    _ => rb.take(),
                };
                *p.total.lock(s) += v.unwrap().unwrap();
            }
            assert!(!p.never.wait_timeout(s, Duration::from_micros(20)));
            p.permits.release();
            assert!(p.permits.acquire_timeout(s, Duration::from_secs(60)));
        });
        let c = Counter::new();
        assert!(ctx.wait_for_counter_timeout(&c, 0, Duration::from_secs(60)));
    });
}

struct SyncParts {
    a: jobsys::sync::Channel<u64>,
    b: jobsys::sync::Channel<u64>,
    total: jobsys::sync::Mutex<u64>,
    never: jobsys::sync::Event,
    permits: jobsys::sync::Semaphore,
}

fn steady_state_sync_select_and_timed_waits_allocate_nothing() {
    for workers in [1, 2, 4] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let p = SyncParts {
            a: jobsys::sync::Channel::new(4),
            b: jobsys::sync::Channel::new(4),
            total: jobsys::sync::Mutex::new(0),
            never: jobsys::sync::Event::new(jobsys::sync::EventKind::Manual),
            permits: jobsys::sync::Semaphore::new(0),
        };
        for _ in 0..20 {
            sync_frame(&jobs, &p);
        }
        let allocs = count_allocs(|| {
            for _ in 0..100 {
                sync_frame(&jobs, &p);
            }
        });
        assert_eq!(*p.total.lock(&jobsys::sync::ThisThread), 120 * 4950);
        assert_eq!(
            allocs,
            0,
            "{allocs} heap allocations in 100 warmed-up sync frames at {workers} workers; the \
             first: {}",
            first_alloc()
        );
    }
}

/// The self-check: an allocation made inside a job on another worker thread is counted, and
/// so is one on the calling thread, through the same `count_allocs` the proofs use.
fn allocations_inside_jobs_on_other_workers_are_counted() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let main = std::thread::current().id();
    // Warm up, so the only allocations below are the boxes.
    for _ in 0..10 {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn(|_| ());
            })
        });
    }
    let elsewhere = AtomicBool::new(false);
    let allocs = count_allocs(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_with(
                    job_meta!("allocates", affinity(jobsys::Affinity::Worker(1))),
                    |s| {
                        assert_eq!(s.worker_index(), 1);
                        elsewhere.store(std::thread::current().id() != main, Ordering::SeqCst);
                        drop(std::hint::black_box(Box::new([7u8; 64])));
                    },
                );
            })
        })
    });
    assert!(
        elsewhere.load(Ordering::SeqCst),
        "the job ran on the calling thread"
    );
    assert!(
        allocs >= 1,
        "a Box allocated in a job on worker 1 was not counted ({allocs})"
    );
    let allocs = count_allocs(|| drop(std::hint::black_box(vec![1u64; 8])));
    assert_eq!(
        allocs, 1,
        "one Vec on the calling thread counted {allocs} times"
    );
    // And a failing proof can say what allocated: the Vec's 64 bytes, with a backtrace.
    let first = first_alloc();
    assert!(
        first.starts_with("64 bytes, at:\n") && first.contains("alloc::"),
        "the first allocation was not recorded: {first}"
    );
}

/// Set in the child process of [`a_stall_report_allocates_nothing`].
const STALL_CHILD: &str = "JOBSYS_ALLOC_STALL_CHILD";

/// A stall report printed while a program counts allocations allocates nothing: a job of a
/// warmed-up system parks on an event nobody sets, every worker falls asleep, the watchdog
/// reports the stall, and only then (told by the parent, which read the report on the child's
/// stderr) does a plain thread set the event. The whole spell, report included, lies inside
/// the counted window. Runs in a child process, whose stderr is the report.
fn a_stall_report_allocates_nothing() {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(STALL_CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take();
    let mut out = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains("Check that every Barrier") {
            // The report is out (its last line): the child may set the event. Dropping the
            // pipe closes it, which ends the child's read as well.
            if let Some(mut pipe) = stdin.take() {
                let _ = pipe.write_all(b"go\n");
            }
        }
    }
    let status = child.wait().unwrap();
    let report = out.find("jobsys: stall: no progress for");
    let count = out.find("child: 0 heap allocations while the stall was reported");
    assert!(
        status.success() && out.contains("in job 'stalled' ("),
        "the child did not report the stall and end ({status:?}):\n{out}"
    );
    assert!(
        count.is_some() && report < count,
        "the stall report allocated:\n{out}"
    );
}

/// The child of [`a_stall_report_allocates_nothing`].
fn stall_report_child() -> ! {
    use jobsys::sync::{Event, EventKind};
    use std::io::Read;
    /// Helper threads past their start (which may allocate).
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    // Hang guard, not a timing assertion: a child whose stall is never reported ends here.
    std::thread::spawn(|| {
        STARTED.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_secs(300));
        eprintln!("child: hang guard: no stall report");
        std::process::exit(3);
    });
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    // Warm up on the same shape: a job parked on an event, set by another job.
    for _ in 0..20 {
        let warm = Event::new(EventKind::Manual);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_with(job_meta!("stalled"), |s| warm.wait(s));
                s.spawn(|_| warm.set());
            })
        });
    }
    let event = Event::new(EventKind::Manual);
    // Stdin's buffer is allocated here, before the count; reading into it allocates nothing.
    let stdin = std::io::stdin();
    let allocs = std::thread::scope(|t| {
        t.spawn(|| {
            STARTED.fetch_add(1, Ordering::SeqCst);
            // Until the parent has read the stall report.
            let _ = stdin.lock().read(&mut [0u8; 1]);
            event.set();
        });
        while STARTED.load(Ordering::SeqCst) != 2 {
            std::thread::yield_now();
        }
        count_allocs(|| {
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    s.spawn_with(job_meta!("stalled"), |s| event.wait(s));
                });
            })
        })
    });
    if allocs == 0 {
        eprintln!("child: 0 heap allocations while the stall was reported");
    } else {
        eprintln!(
            "child: {allocs} heap allocations while the stall was reported; the first: {}",
            first_alloc()
        );
    }
    std::process::exit(0);
}

fn add_u64(_: &Ctx, data: *mut ()) {
    // SAFETY: points at an `AtomicU64` in the running frame's arena, which outlives the batch
    // (the frame's body waits for it).
    unsafe { &*(data as *const AtomicU64) }.fetch_add(1, Ordering::Relaxed);
}

/// A join tree with `n` leaves, each allocating in the frame's arena on its worker.
fn arena_tree(ctx: &Ctx, f: Frame<'_, '_>, n: u32) -> u64 {
    if n <= 1 {
        return *f.arena(ctx).alloc(1u64);
    }
    let (a, b) = ctx.join(|c| arena_tree(c, f, n / 2), |c| arena_tree(c, f, n - n / 2));
    a + b
}

/// What the frames of the zero-allocation proof share.
struct FrameWorld {
    /// The game state, one chunk per scope job, bumped once per frame.
    world: Vec<u64>,
    /// Later jobs that checked their frame's arena data.
    presented: AtomicUsize,
}

const CHUNK: usize = 8;
const CHUNKS: usize = 128;
const BATCH: usize = 128;

/// One frame of the proof, about 540 jobs: two dependent raw batches, a scope over the world
/// (each job copying its chunk into the arena, every 16th opening a nested scope), a join
/// tree whose leaves allocate, and a later job that reads the frame's arena data beside the
/// next frame. Everything the frame makes lives in its arena.
fn busy_frame<'f>(ctx: &Ctx, f: Frame<'f, '_>, w: &mut [u64], presented: &'f AtomicUsize) {
    let arena = f.arena(ctx);
    // Two dependent raw batches, their declarations and their target in the arena.
    for batch in 0..2u64 {
        let hits = &*arena.alloc(AtomicU64::new(0));
        let decls = arena.alloc_slice_fill_with(BATCH, |_| {
            JobDecl::new(
                job_meta!("frame batch"),
                add_u64,
                hits as *const _ as *mut (),
            )
        });
        let c = Counter::new();
        // SAFETY: `decls`, `hits` and `c` outlive the wait below.
        unsafe { ctx.run_jobs(decls, &c) };
        ctx.wait_for_counter(&c, 0);
        assert_eq!(hits.load(Ordering::Relaxed), BATCH as u64, "batch {batch}");
    }
    // A scope borrowing the world and arena results; nested scopes in some jobs.
    let sums: &mut [u64] = arena.alloc_slice_fill_copy(CHUNKS, 0);
    ctx.scope(|s| {
        for (j, (chunk, sum)) in w.chunks_mut(CHUNK).zip(sums.iter_mut()).enumerate() {
            s.spawn(move |s| {
                let copy: &[u64] = f.arena(s).alloc_slice_copy(chunk);
                *sum = copy.iter().sum();
                if j % 16 == 0 {
                    let extra = AtomicU64::new(0);
                    s.scope(|inner| {
                        for k in 0..4u64 {
                            let extra = &extra;
                            inner.spawn(move |i| {
                                let v = f.arena(i).alloc(k);
                                extra.fetch_add(*v, Ordering::Relaxed);
                            });
                        }
                    });
                    assert_eq!(extra.load(Ordering::Relaxed), 6);
                }
                chunk.iter_mut().for_each(|x| *x += 1);
            });
        }
    });
    assert_eq!(arena_tree(ctx, f, 128), 128);
    // The render stage: reads the frame's arena data beside the next frame.
    let snapshot: &[u64] = f.arena(ctx).alloc_slice_copy(w);
    let sums: &[u64] = sums;
    f.later(ctx, move |_| {
        let v = snapshot[0];
        assert!(snapshot.iter().all(|&x| x == v));
        assert!(sums.iter().all(|&s| s == (v - 1) * CHUNK as u64));
        presented.fetch_add(1, Ordering::Relaxed);
    });
}

/// The proof: a realistic loop of frames, two in flight, makes no heap allocation
/// and frees nothing once warm — frames 10 to 1,000, at 1, 2 and 4 workers. The `frames`
/// call itself is counted too.
fn frames_in_flight_allocate_and_free_nothing() {
    const WARM: usize = 10;
    const FRAMES: usize = 1000;
    // Frees are counted too (one Vec: one allocation, one free).
    let counted = count_allocs_and_frees(|| drop(std::hint::black_box(vec![1u64; 8])));
    assert_eq!(counted, (1, 1), "the counter misses allocations or frees");
    for workers in [1, 2, 4] {
        // A strict arena budget: the arenas never touch the heap.
        let jobs = JobSystem::builder()
            .workers(workers)
            .frames_in_flight(2)
            .frame_arena(256 * 1024, 256 * 1024)
            .build()
            .unwrap();
        let mut fw = FrameWorld {
            world: vec![0; CHUNK * CHUNKS],
            presented: AtomicUsize::new(0),
        };
        let (allocs, frees) = jobs.run(|ctx| {
            let FrameWorld { world, presented } = &mut fw;
            let presented = &*presented;
            ctx.frames(|frames| {
                for _ in 0..WARM {
                    frames.frame(|f| busy_frame(ctx, f, world, presented));
                }
            });
            count_allocs_and_frees(|| {
                ctx.frames(|frames| {
                    for _ in WARM..FRAMES {
                        frames.frame(|f| busy_frame(ctx, f, world, presented));
                    }
                });
            })
        });
        assert_eq!(fw.presented.load(Ordering::Relaxed), FRAMES);
        assert!(fw.world.iter().all(|&x| x == FRAMES as u64));
        assert_eq!(
            (allocs, frees),
            (0, 0),
            "heap allocations and frees in frames {WARM}..{FRAMES} at {workers} workers; first: {}",
            first_alloc()
        );
    }
}

/// A frame of the everyday lanes: blocking calls on the lane threads (their closures
/// borrowing the job's stack), fiber sleeps, and per-worker values.
fn lanes_frame(jobs: &JobSystem, local: &jobsys::WorkerLocal<u64>) {
    jobs.run(|ctx| {
        ctx.scope(|s| {
            for i in 0..8u64 {
                s.spawn(move |s| {
                    let mut buf = [0u64; 16];
                    let sum = s.blocking(|| {
                        buf.iter_mut().for_each(|b| *b = i);
                        buf.iter().sum::<u64>()
                    });
                    s.sleep(std::time::Duration::from_micros(50));
                    local.with(s, |v| *v += sum);
                });
            }
        })
    });
}

fn steady_state_blocking_calls_sleeps_and_worker_locals_allocate_nothing() {
    for workers in [1, 2, 4] {
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let local = jobsys::WorkerLocal::new(workers, |_| 0u64);
        for _ in 0..20 {
            lanes_frame(&jobs, &local);
        }
        let allocs = count_allocs(|| {
            for _ in 0..100 {
                lanes_frame(&jobs, &local);
            }
        });
        let mut local = local;
        let total: u64 = local.iter_mut().map(|v| *v).sum();
        assert_eq!(total, 120 * 16 * 28);
        assert_eq!(
            allocs,
            0,
            "{allocs} heap allocations in 100 warmed-up lane frames at {workers} workers; the \
             first: {}",
            first_alloc()
        );
    }
}

/// How many threads of this process the OS knows by a name that starts with `prefix` (its
/// 15-byte `comm`, which a Rust thread sets itself as it starts, before its closure runs).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with(prefix))
        .count()
}

/// `build` returns once every blocking-lane thread runs: a thread's start-up allocates (the
/// runtime copies its name, sets up its signal stack), and a lane thread still starting after
/// `build` would put those allocations into the caller's steady state (seen as one or two
/// stray allocations in `frames_in_flight_allocate_and_free_nothing` on a busy machine). The
/// checks run one at a time, so no other system's lane threads are alive here.
fn blocking_lane_threads_have_started_when_build_returns() {
    // Many rounds: without the wait, a just-spawned thread is often, not always, still
    // starting when `build` returns.
    for threads in [1, 2, 8, 32].repeat(25) {
        let jobs = JobSystem::builder()
            .workers(1)
            .blocking_threads(threads)
            .build()
            .unwrap();
        assert_eq!(
            threads_named("jobsys-blocking"),
            threads,
            "blocking-lane threads started by the time build returned ({threads} spawned)"
        );
        drop(jobs);
        assert_eq!(threads_named("jobsys-blocking"), 0, "joined at drop");
    }
}

/// One frame of the async bridge: `block_on` of ready futures, and a `block_on` that parks on
/// an event's `wait_async` (its fiber waker cloned into the event's wait node) until a sibling
/// job sets it.
fn async_frame(jobs: &JobSystem, event: &jobsys::sync::Event) -> u64 {
    jobs.run(|ctx| {
        let mut sum = 0u64;
        for i in 0..100u64 {
            sum += ctx.block_on(std::future::ready(i));
        }
        let (a, b) = ctx.join(
            |c| {
                c.block_on(async {
                    event.wait_async().await;
                    1u64
                })
            },
            |_| {
                event.set();
                2u64
            },
        );
        sum + a + b
    })
}

fn steady_state_block_on_allocates_nothing() {
    for workers in [1, 2, 4] {
        // No blocking lane: its idle threads would never run a job here, so on a loaded machine
        // std's start-up of one (its name) could land inside the count.
        let jobs = JobSystem::builder()
            .workers(workers)
            .blocking_threads(0)
            .build()
            .unwrap();
        let event = jobsys::sync::Event::new(jobsys::sync::EventKind::Auto);
        for _ in 0..20 {
            assert_eq!(async_frame(&jobs, &event), 4953);
        }
        let allocs = count_allocs(|| {
            for _ in 0..100 {
                assert_eq!(async_frame(&jobs, &event), 4953);
            }
        });
        assert_eq!(
            allocs,
            0,
            "{allocs} heap allocations in 100 warmed-up async-bridge frames at {workers} \
             workers; the first: {}",
            first_alloc()
        );
    }
}

type Check = (&'static str, fn());

/// Runs the checks one at a time and prints libtest-style lines; exits non-zero if any check
/// panicked. Understands libtest's filters (a plain argument keeps the checks whose name
/// contains it; `--exact`, `--skip NAME`, `--list`) and ignores its other options.
fn main() {
    if std::env::var_os(STALL_CHILD).is_some() {
        stall_report_child();
    }
    let checks: [Check; 9] = [
        (
            "allocations_inside_jobs_on_other_workers_are_counted",
            allocations_inside_jobs_on_other_workers_are_counted,
        ),
        (
            "steady_state_submit_run_wait_allocates_nothing",
            steady_state_submit_run_wait_allocates_nothing,
        ),
        (
            "a_scope_larger_than_a_ring_stays_on_it_and_allocates_nothing",
            a_scope_larger_than_a_ring_stays_on_it_and_allocates_nothing,
        ),
        (
            "steady_state_sync_select_and_timed_waits_allocate_nothing",
            steady_state_sync_select_and_timed_waits_allocate_nothing,
        ),
        (
            "a_stall_report_allocates_nothing",
            a_stall_report_allocates_nothing,
        ),
        (
            "frames_in_flight_allocate_and_free_nothing",
            frames_in_flight_allocate_and_free_nothing,
        ),
        (
            "steady_state_blocking_calls_sleeps_and_worker_locals_allocate_nothing",
            steady_state_blocking_calls_sleeps_and_worker_locals_allocate_nothing,
        ),
        (
            "blocking_lane_threads_have_started_when_build_returns",
            blocking_lane_threads_have_started_when_build_returns,
        ),
        (
            "steady_state_block_on_allocates_nothing",
            steady_state_block_on_allocates_nothing,
        ),
    ];
    let (mut filters, mut skips, mut exact, mut list) = (Vec::new(), Vec::new(), false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--list" => list = true,
            "--exact" => exact = true,
            "--skip" => skips.extend(args.next()),
            // libtest options that take a value (the value is not a filter).
            "--test-threads" | "--format" | "--color" | "--logfile" | "--shuffle-seed" | "-Z" => {
                args.next();
            }
            _ if a.starts_with('-') => {}
            _ => filters.push(a),
        }
    }
    let matches = |name: &str, f: &String| {
        if exact {
            name == f
        } else {
            name.contains(f.as_str())
        }
    };
    let selected: Vec<&Check> = checks
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
        .filter(|(name, _)| !skips.iter().any(|f| matches(name, f)))
        .collect();
    if list {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return;
    }
    let filtered_out = checks.len() - selected.len();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, check) in &selected {
        let ok = std::panic::catch_unwind(check).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {filtered_out} filtered out\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
