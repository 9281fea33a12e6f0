//! The Tracy back-end allocates nothing per zone once warmed up, proven with a counting global
//! allocator, with no profiler connected (on-demand mode: zones begin inactive, but the
//! back-end still keeps, splits and reopens them at fiber switches).
//!
//! Each job's source location is built once, the first time its `JobMeta` is seen; the
//! thread-local zone lists grow to their high-water mark during the warm-up. After that, a
//! zone, a wait, and a fiber switch with zones open allocate nothing.
//!
//! User zones (`Ctx::zone`) and contended named `jobsys::sync::Mutex` locks (Tracy lock
//! contexts, announced at a lock's first contention) allocate nothing after warm-up either;
//! built with `--features tracy,tracy-fibers`, neither do fiber switches on fiber tracks (each
//! fiber's track name is built once).
//!
//! The count is process-wide: a `harness = false` binary (see `profiling/Cargo.toml`) whose
//! `main` runs the checks one after another on the main thread. Only built with `--features tracy`.
use jobsys::profile::ProfileHooks;
use jobsys::sync::Mutex as JobMutex;
use jobsys::{Ctx, JobMeta, JobSystem, job_meta};
use jobsys_profiling::Tracy;
use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Taken by the first counted allocation, which records its backtrace into [`FIRST`].
static FIRST_TAKEN: AtomicBool = AtomicBool::new(false);
/// Where the first counted allocation came from, printed when a check fails.
static FIRST: Mutex<Option<Backtrace>> = Mutex::new(None);

thread_local! {
    /// Set while this thread records [`FIRST`]: the recording's own allocations are not counted.
    static RECORDING: Cell<bool> = const { Cell::new(false) };
}

fn counted() {
    if !COUNTING.load(Ordering::Relaxed) || RECORDING.with(Cell::get) {
        return;
    }
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    if !FIRST_TAKEN.swap(true, Ordering::Relaxed) {
        RECORDING.with(|r| r.set(true));
        let trace = Backtrace::force_capture();
        *FIRST.lock().unwrap_or_else(|e| e.into_inner()) = Some(trace);
        RECORDING.with(|r| r.set(false));
    }
}

// SAFETY: forwards to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static TRACY: Tracy = Tracy::new();

/// A second hook set, beside Tracy's: counts lock contentions, so the lock checks know their
/// locks were contended (only contended acquisitions reach the lock hooks).
struct LockWaits(AtomicUsize);

impl ProfileHooks for LockWaits {
    fn lock_wait_begin(&self, _worker: usize, _name: &'static str, _addr: usize) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

static LOCK_WAITS: LockWaits = LockWaits(AtomicUsize::new(0));

/// Heap allocations (and reallocations) that `f` makes, on any thread.
fn count_allocs(f: impl FnOnce()) -> usize {
    ALLOCS.store(0, Ordering::Relaxed);
    FIRST_TAKEN.store(false, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::Relaxed)
}

/// Where the first allocation of the last count came from.
fn first_alloc() -> String {
    match FIRST.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(trace) => format!("first allocation:\n{trace}"),
        None => String::new(),
    }
}

const METAS: [&JobMeta; 4] = [
    job_meta!("outer"),
    job_meta!("other"),
    job_meta!("inner"),
    job_meta!("last"),
];

/// The hook sequence of a worker whose fiber 1 runs a job that parks in a wait with an inline
/// child's zone open, while fiber 2 runs other jobs, then fiber 1 comes back.
fn switch_with_zones_open(tracy: &Tracy) {
    let [outer, other, inner, last] = METAS;
    tracy.fiber_enter(0, 1);
    tracy.job_begin(0, outer);
    tracy.job_begin(0, inner);
    tracy.wait_begin(0);
    tracy.fiber_leave(0, 1); // ends outer, inner and wait; parks them
    tracy.fiber_enter(0, 2);
    tracy.job_begin(0, other);
    tracy.job_begin(0, last);
    tracy.job_end(0, last);
    tracy.job_end(0, other);
    tracy.fiber_leave(0, 2);
    tracy.sleep_begin(0);
    tracy.sleep_end(0);
    tracy.fiber_enter(0, 1); // begins outer, inner and wait again
    tracy.wait_end(0);
    tracy.job_end(0, inner);
    tracy.job_end(0, outer);
    tracy.fiber_leave(0, 1);
}

/// Hook by hook: user zones on two fibers, one open across a switch, and a lock contended on
/// one fiber while the other holds it, on two locks of the same name.
fn zones_and_locks(tracy: &Tracy) {
    let [outer, ..] = METAS;
    for addr in [0x1000, 0x2000] {
        tracy.fiber_enter(0, 3);
        tracy.job_begin(0, outer);
        tracy.zone_begin(0, 3, "update");
        tracy.lock_wait_begin(0, "world lock", addr);
        tracy.wait_begin(0);
        tracy.fiber_leave(0, 3); // parked on the lock, zones open
        tracy.fiber_enter(0, 4);
        tracy.zone_begin(0, 4, "render");
        tracy.zone_end(0, 4, "render");
        tracy.lock_released(0, "world lock", addr); // the holder lets go
        tracy.fiber_leave(0, 4);
        tracy.fiber_enter(0, 3);
        tracy.wait_end(0);
        tracy.lock_obtained(0, "world lock", addr);
        tracy.lock_released(0, "world lock", addr);
        tracy.zone_end(0, 3, "update");
        tracy.job_end(0, outer);
        tracy.fiber_leave(0, 3);
    }
}

/// One contended acquisition of `lock` on `ctx`: holds it, spawns a job that locks it, yields
/// until that job reported its wait (the lock hooks), then lets go. Inside user zones.
fn contend(ctx: &Ctx, lock: &JobMutex<u64>) {
    let _zone = ctx.zone("contend");
    let held = lock.lock(ctx);
    let before = LOCK_WAITS.0.load(Ordering::SeqCst);
    ctx.scope(|s| {
        s.spawn_with(job_meta!("waiter"), |c| {
            let _zone = c.zone("waiter zone");
            *lock.lock(c) += 1;
        });
        // The waiter may need this worker: yield rather than spin.
        while LOCK_WAITS.0.load(Ordering::SeqCst) == before {
            s.yield_now();
        }
        drop(held);
    });
}

fn main() {
    assert!(TRACY.install(), "hooks were already installed");
    assert!(
        jobsys::profile::add_hooks(&LOCK_WAITS),
        "no room for a second hook set"
    );
    let jobs = JobSystem::builder().workers(2).build().expect("job system");

    // The counter sees allocations made on worker threads.
    let seen = count_allocs(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..8 {
                    s.spawn(|_| drop(std::hint::black_box(Box::new(7u64))));
                }
            })
        });
    });
    assert!(seen >= 8, "the counter missed allocations in jobs: {seen}");

    // A fiber switch with zones open, driven hook by hook (deterministic: the jobs below may
    // or may not park).
    switch_with_zones_open(&TRACY); // warm-up: builds the locations, grows the lists
    let n = count_allocs(|| {
        for _ in 0..1000 {
            switch_with_zones_open(&TRACY);
        }
    });
    println!("1000 switches with 3 zones open: {n} allocations");
    assert_eq!(
        n,
        0,
        "a fiber switch with zones open allocated; {}",
        first_alloc()
    );

    // Jobs run with the Tracy hooks installed. Only named scope jobs (and `run`), all run in
    // every round, so the warm-up sees every meta (a stolen `join` half would bring in jobsys'
    // own `join` meta only on the round it is first stolen).
    let work = |jobs: &JobSystem| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..64 {
                    s.spawn_with(job_meta!("outer"), |c| {
                        c.scope(|s| {
                            for i in 0..4u64 {
                                s.spawn_with(job_meta!("inner"), move |_| {
                                    std::hint::black_box(i);
                                });
                            }
                        });
                    });
                }
            });
        })
    };
    for _ in 0..20 {
        work(&jobs);
    }
    let n = count_allocs(|| {
        for _ in 0..100 {
            work(&jobs);
        }
    });
    println!("100 runs of 64 + 256 jobs under Tracy hooks: {n} allocations");
    assert_eq!(
        n,
        0,
        "jobs under the Tracy hooks allocated; {}",
        first_alloc()
    );

    // Frames: a frame mark per opening, a lane's discontinuous frame from opening to retirement
    // (two frames in flight overlap through a later job), and the per-frame plots.
    let frames = |jobs: &JobSystem| {
        jobs.run(|ctx| {
            ctx.frames(|frames| {
                for _ in 0..4 {
                    frames.frame(|f| {
                        ctx.scope(|s| {
                            for _ in 0..32 {
                                s.spawn_with(job_meta!("frame job"), move |ctx| {
                                    std::hint::black_box(f.arena(ctx).alloc(1u64));
                                });
                            }
                        });
                        f.later_with(ctx, job_meta!("render"), |_| {});
                    });
                }
            })
        })
    };
    for _ in 0..10 {
        frames(&jobs);
    }
    let n = count_allocs(|| {
        for _ in 0..50 {
            frames(&jobs);
        }
    });
    println!("200 frames (two in flight) under Tracy hooks: {n} allocations");
    assert_eq!(
        n,
        0,
        "frames under the Tracy hooks allocated; {}",
        first_alloc()
    );

    // User zones and contended locks, hook by hook (the first round announces the two locks
    // and builds the zones' locations).
    zones_and_locks(&TRACY);
    let n = count_allocs(|| {
        for _ in 0..1000 {
            zones_and_locks(&TRACY);
        }
    });
    println!("1000 rounds of user zones and 2 contended locks, hook by hook: {n} allocations");
    assert_eq!(
        n,
        0,
        "user zones or contended locks allocated; {}",
        first_alloc()
    );

    // The same with real jobs: user zones that span waits, and named locks contended for
    // real (each round's waits counted by the second hook set).
    let locks = [
        JobMutex::named(0u64, "lock a"),
        JobMutex::named(0u64, "lock b"),
    ];
    let contended = |jobs: &JobSystem| {
        jobs.run(|ctx| {
            let _zone = ctx.zone("round");
            for lock in &locks {
                contend(ctx, lock);
            }
        })
    };
    for _ in 0..10 {
        contended(&jobs);
    }
    let waits_before = LOCK_WAITS.0.load(Ordering::SeqCst);
    let n = count_allocs(|| {
        for _ in 0..100 {
            contended(&jobs);
        }
    });
    let waits = LOCK_WAITS.0.load(Ordering::SeqCst) - waits_before;
    println!("100 runs with user zones and {waits} contended lock waits: {n} allocations");
    assert!(waits >= 200, "the locks were not contended: {waits} waits");
    assert_eq!(
        n,
        0,
        "user zones or contended locks in jobs allocated; {}",
        first_alloc()
    );
    drop(jobs);
    assert_eq!(
        locks.map(|l| l.into_inner()),
        [110, 110],
        "every waiter got its lock"
    );
    println!("tracy_alloc: ok");
}
