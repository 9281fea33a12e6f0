//! Zero heap allocations in steady state, proven with a counting global allocator.
//!
//! After a warm-up, submitting, running and waiting on 1,000 jobs — as a raw batch, as scope
//! spawns and as nested joins — performs no heap allocation on any thread; neither does a frame
//! of channels, select, a mutex and timed waits.
//!
//! The count is process-wide, so nothing else may allocate while a check counts: this is a
//! `harness = false` test binary (see `jobsys/Cargo.toml`) whose `main` runs the checks one
//! after another on the main thread, with no test harness threads around. A self-check first
//! proves that the counter sees allocations made inside jobs on other worker threads, so a
//! zero cannot come from a counter that does not count.
use jobsys::{Counter, Ctx, Frame, JobDecl, JobSystem, job_meta};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Frees counted while `COUNTING` (only `count_allocs_and_frees` reads them).
static FREES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
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
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations (and reallocations) that `f` makes, on any thread.
fn count_allocs(f: impl FnOnce()) -> usize {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
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
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
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
            allocs, 0,
            "{allocs} heap allocations in 200 warmed-up frames at {workers} workers"
        );
    }
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
            allocs, 0,
            "{allocs} heap allocations in 100 warmed-up sync frames at {workers} workers"
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
        jobs.run(|ctx| ctx.scope(|s| s.spawn(|_| ())));
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
            "heap allocations and frees in frames {WARM}..{FRAMES} at {workers} workers"
        );
    }
}

type Check = (&'static str, fn());

/// Runs the checks one at a time and prints libtest-style lines; exits non-zero if any check
/// panicked. Understands libtest's filters (a plain argument keeps the checks whose name
/// contains it; `--exact`, `--skip NAME`, `--list`) and ignores its other options.
fn main() {
    let checks: [Check; 4] = [
        (
            "allocations_inside_jobs_on_other_workers_are_counted",
            allocations_inside_jobs_on_other_workers_are_counted,
        ),
        (
            "steady_state_submit_run_wait_allocates_nothing",
            steady_state_submit_run_wait_allocates_nothing,
        ),
        (
            "steady_state_sync_select_and_timed_waits_allocate_nothing",
            steady_state_sync_select_and_timed_waits_allocate_nothing,
        ),
        (
            "frames_in_flight_allocate_and_free_nothing",
            frames_in_flight_allocate_and_free_nothing,
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
