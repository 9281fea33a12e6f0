//! The profile hooks seen from two hook sets at once (`add_hooks`, `set_hooks`): every job of a
//! batch, every frame, contended `sync::Mutex` / `RwLock` acquisitions and user zones reach both
//! sets, in installation order. Only with jobsys's `profile` feature (which `cargo test
//! --workspace` turns on through `jobsys-profiling`).
//!
//! Hook sets are process-wide and cannot be removed: both are installed once, and the tests run
//! one at a time (`serial`), so the frame events counted are the running test's. Jobs, locks
//! and zones are told apart by name.

#![cfg(feature = "profile")]

mod common;

use jobsys::profile::{self, MAX_HOOK_SETS, NO_WORKER, ProfileHooks};
use jobsys::sync::{Mutex, RwLock, ThisThread};
use jobsys::{Counter, Ctx, FrameStats, JobDecl, JobMeta, JobSystem, job_meta};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{MutexGuard, Once};

/// Counts of one lock's events.
#[derive(Default)]
struct LockCounts {
    wait: AtomicUsize,
    obtained: AtomicUsize,
    released: AtomicUsize,
    /// The last `worker` and `addr` reported (by any of the three hooks).
    worker: AtomicUsize,
    addr: AtomicUsize,
}

impl LockCounts {
    fn counts(&self) -> [usize; 3] {
        [&self.wait, &self.obtained, &self.released].map(|c| c.load(SeqCst))
    }
    fn note(&self, worker: usize, addr: usize) {
        self.worker.store(worker, SeqCst);
        self.addr.store(addr, SeqCst);
    }
}

/// A hook set that counts what the tests look for.
#[derive(Default)]
struct Recorder {
    /// `job_begin` / `job_end` of every job, whatever its name.
    job_begin: AtomicUsize,
    job_end: AtomicUsize,
    batch_begin: AtomicUsize,
    batch_end: AtomicUsize,
    frame_begin: AtomicUsize,
    frame_retired: AtomicUsize,
    frame_stats: AtomicUsize,
    /// Sums of the frame indices seen opening, retiring, and in stats.
    frame_begin_sum: AtomicU64,
    frame_retired_sum: AtomicU64,
    mutex: LockCounts,
    rwlock: LockCounts,
    thread_mutex: LockCounts,
    /// "test-load-mutex": threads and fibers contending, barging and fair unlocks mixed.
    load_mutex: LockCounts,
    zone_begin: AtomicUsize,
    zone_end: AtomicUsize,
    /// The fiber the outer zone began and ended on.
    zone_fiber_begin: AtomicUsize,
    zone_fiber_end: AtomicUsize,
    child_zone_begin: AtomicUsize,
    child_zone_end: AtomicUsize,
    /// `child_zone_end` when the outer zone ended.
    children_done_at_zone_end: AtomicUsize,
    /// The `TICK` this set took at the outer zone's begin (fan-out order).
    zone_tick: AtomicU64,
    /// "test-migrate-mutex": the worker its last contended wait began on / got the lock on.
    migrate_wait_worker: AtomicUsize,
    migrate_obtained_worker: AtomicUsize,
}

/// Taken by each set in turn, to see the order the sets are called in.
static TICK: AtomicU64 = AtomicU64::new(1);

const BATCH: &str = "hooks-batch";

impl Recorder {
    fn lock(&self, name: &str) -> Option<&LockCounts> {
        match name {
            "test-mutex" => Some(&self.mutex),
            "test-rwlock" => Some(&self.rwlock),
            "test-thread-mutex" => Some(&self.thread_mutex),
            "test-load-mutex" => Some(&self.load_mutex),
            _ => None,
        }
    }
}

impl ProfileHooks for Recorder {
    fn job_begin(&self, _worker: usize, meta: &'static JobMeta) {
        self.job_begin.fetch_add(1, SeqCst);
        if meta.name == BATCH {
            self.batch_begin.fetch_add(1, SeqCst);
        }
    }
    fn job_end(&self, _worker: usize, meta: &'static JobMeta) {
        self.job_end.fetch_add(1, SeqCst);
        if meta.name == BATCH {
            self.batch_end.fetch_add(1, SeqCst);
        }
    }
    fn frame_begin(&self, index: u64) {
        self.frame_begin.fetch_add(1, SeqCst);
        self.frame_begin_sum.fetch_add(index, SeqCst);
    }
    fn frame_retired(&self, index: u64) {
        self.frame_retired.fetch_add(1, SeqCst);
        self.frame_retired_sum.fetch_add(index, SeqCst);
    }
    fn frame_stats(&self, _stats: &FrameStats) {
        self.frame_stats.fetch_add(1, SeqCst);
    }
    fn lock_wait_begin(&self, worker: usize, name: &'static str, addr: usize) {
        if name == "test-migrate-mutex" {
            self.migrate_wait_worker.store(worker, SeqCst);
        }
        if let Some(l) = self.lock(name) {
            l.wait.fetch_add(1, SeqCst);
            l.note(worker, addr);
        }
    }
    fn lock_obtained(&self, worker: usize, name: &'static str, addr: usize) {
        if name == "test-migrate-mutex" {
            self.migrate_obtained_worker.store(worker, SeqCst);
        }
        if let Some(l) = self.lock(name) {
            l.obtained.fetch_add(1, SeqCst);
            l.note(worker, addr);
        }
    }
    fn lock_released(&self, worker: usize, name: &'static str, addr: usize) {
        if let Some(l) = self.lock(name) {
            l.released.fetch_add(1, SeqCst);
            l.note(worker, addr);
        }
    }
    fn zone_begin(&self, _worker: usize, fiber: u32, name: &'static str) {
        match name {
            "test-zone" => {
                self.zone_begin.fetch_add(1, SeqCst);
                self.zone_fiber_begin.store(fiber as usize, SeqCst);
                self.zone_tick.store(TICK.fetch_add(1, SeqCst), SeqCst);
            }
            "test-zone-child" => {
                self.child_zone_begin.fetch_add(1, SeqCst);
            }
            _ => {}
        }
    }
    fn zone_end(&self, _worker: usize, fiber: u32, name: &'static str) {
        match name {
            "test-zone" => {
                self.zone_end.fetch_add(1, SeqCst);
                self.zone_fiber_end.store(fiber as usize, SeqCst);
                self.children_done_at_zone_end
                    .store(self.child_zone_end.load(SeqCst), SeqCst);
            }
            "test-zone-child" => {
                self.child_zone_end.fetch_add(1, SeqCst);
            }
            _ => {}
        }
    }
}

/// Installed first (`add_hooks`) and second (`set_hooks`, which adds too).
static FIRST: std::sync::LazyLock<Recorder> = std::sync::LazyLock::new(Recorder::default);
static SECOND: std::sync::LazyLock<Recorder> = std::sync::LazyLock::new(Recorder::default);

/// Installs both sets once, and runs the tests one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        assert!(profile::add_hooks(&*FIRST));
        assert!(profile::set_hooks(&*SECOND), "set_hooks adds a second set");
        // A set already installed is refused, so a second `install` does not double events.
        assert!(!profile::add_hooks(&*FIRST));
        assert!(!profile::set_hooks(&*SECOND));
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn both() -> [&'static Recorder; 2] {
    [&*FIRST, &*SECOND]
}

fn bump(_ctx: &Ctx, data: *mut ()) {
    // SAFETY: `data` is the test's `AtomicUsize`, alive until the batch's wait returned.
    unsafe { &*(data as *const AtomicUsize) }.fetch_add(1, SeqCst);
}

#[test]
fn both_sets_see_every_job_of_a_batch() {
    let _serial = serial();
    const N: usize = 100;
    let before = both().map(|r| (r.batch_begin.load(SeqCst), r.batch_end.load(SeqCst)));
    let ran = AtomicUsize::new(0);
    let decls: Vec<JobDecl> = (0..N)
        .map(|_| JobDecl::new(job_meta!(BATCH), bump, &ran as *const _ as *mut ()))
        .collect();
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    jobs.run(|ctx| {
        let counter = Counter::new();
        // SAFETY: `decls`, `ran` and `counter` outlive the wait below.
        unsafe { ctx.run_jobs(&decls, &counter) };
        ctx.wait_for_counter(&counter, 0);
    });
    // Joins the workers: every hook call is in.
    drop(jobs);
    assert_eq!(ran.load(SeqCst), N);
    for (r, (b, e)) in both().into_iter().zip(before) {
        assert_eq!(r.batch_begin.load(SeqCst) - b, N);
        assert_eq!(r.batch_end.load(SeqCst) - e, N);
    }
}

/// Fork-join Fibonacci that counts the jobs it makes: every join's second half is one.
fn fib(ctx: &Ctx, n: u32, jobs: &AtomicUsize) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    let (a, b) = ctx.join(
        |c| fib(c, n - 1, jobs),
        |c| {
            jobs.fetch_add(1, SeqCst);
            fib(c, n - 2, jobs)
        },
    );
    a + b
}

/// Every job that runs reports exactly one `job_begin` and one `job_end`, and the worker stats
/// count the same jobs: join halves run by the joiner itself (the take-back fast path, the
/// only path with one worker) as much as stolen ones, scoped jobs, nested scopes. The jobs are
/// counted independently, by the workload.
#[test]
fn every_job_run_reports_one_begin_and_one_end_and_stats_agree() {
    let _serial = serial();
    for workers in [1, 2, 4] {
        let before = both().map(|r| (r.job_begin.load(SeqCst), r.job_end.load(SeqCst)));
        // The root job `run` makes.
        let ran = AtomicUsize::new(1);
        let jobs = JobSystem::builder().workers(workers).build().unwrap();
        let fibs = jobs.run(|ctx| {
            let mut fibs = vec![fib(ctx, 15, &ran)];
            ctx.scope(|s| {
                for _ in 0..16 {
                    s.spawn(|s| {
                        ran.fetch_add(1, SeqCst);
                        let f = fib(s, 8, &ran);
                        s.scope(|inner| {
                            for _ in 0..4 {
                                inner.spawn(|_| {
                                    ran.fetch_add(1, SeqCst);
                                });
                            }
                        });
                        assert_eq!(f, 21);
                    });
                }
            });
            fibs.push(fib(ctx, 12, &ran));
            fibs
        });
        assert_eq!(fibs, [610, 144]);
        // Stats count a job when it starts: all are in once `run` returned.
        let counted: u64 = (0..workers).map(|w| jobs.worker_stats(w).jobs_run).sum();
        // Joins the workers: every hook call is in.
        drop(jobs);
        let ran = ran.load(SeqCst);
        assert_eq!(counted, ran as u64, "{workers} workers: stats");
        for (r, (b, e)) in both().into_iter().zip(before) {
            let begins = r.job_begin.load(SeqCst) - b;
            let ends = r.job_end.load(SeqCst) - e;
            assert_eq!(
                (begins, ends),
                (ran, ran),
                "{workers} workers: job_begin, job_end"
            );
        }
    }
}

/// A join's second half that panics while the joiner runs it itself (one worker: nobody can
/// steal it) still reports its `job_end`.
#[test]
fn a_join_half_that_panics_reports_its_end() {
    let _serial = serial();
    let before = both().map(|r| (r.job_begin.load(SeqCst), r.job_end.load(SeqCst)));
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| ctx.join(|_| (), |_| panic!("the join's second half panics")))
    }));
    assert!(panicked.is_err());
    drop(jobs);
    for (r, (b, e)) in both().into_iter().zip(before) {
        // The root job and the join's second half.
        let counts = (r.job_begin.load(SeqCst) - b, r.job_end.load(SeqCst) - e);
        assert_eq!(counts, (2, 2), "job_begin, job_end");
    }
}

#[test]
fn both_sets_see_every_frame() {
    let _serial = serial();
    const FRAMES: u64 = 4;
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let before = both().map(|r| {
        [
            r.frame_begin.load(SeqCst),
            r.frame_retired.load(SeqCst),
            r.frame_stats.load(SeqCst),
        ]
    });
    let sums_before = both().map(|r| r.frame_begin_sum.load(SeqCst));
    let mut indices = 0;
    jobs.run(|ctx| {
        for _ in 0..FRAMES {
            indices += ctx.frame(|f| {
                ctx.scope(|s| {
                    s.spawn(|_| {});
                });
                f.index()
            });
        }
    });
    drop(jobs);
    let mut stats = [0; 2];
    for (i, (r, b)) in both().into_iter().zip(before).enumerate() {
        assert_eq!(r.frame_begin.load(SeqCst) - b[0], FRAMES as usize);
        assert_eq!(r.frame_retired.load(SeqCst) - b[1], FRAMES as usize);
        assert_eq!(r.frame_begin_sum.load(SeqCst) - sums_before[i], indices);
        assert_eq!(
            r.frame_retired_sum.load(SeqCst),
            r.frame_begin_sum.load(SeqCst)
        );
        stats[i] = r.frame_stats.load(SeqCst) - b[2];
    }
    // A frame's stats complete once the next frame opened: at least every frame but the last.
    assert!(stats[0] >= FRAMES as usize - 1, "{stats:?}");
    assert_eq!(stats[0], stats[1]);
}

/// Parked waits of the system's workers so far.
fn parked_waits(ctx: &Ctx) -> u64 {
    (0..ctx.worker_count())
        .map(|w| ctx.worker_stats(w).parked_waits)
        .sum()
}

/// Yields until some job parked since `before` (the only job that can: the lock's waiter; a
/// yield is not a parked wait). Yields, since that job may need this worker.
fn yield_until_parked(ctx: &Ctx, before: u64) {
    while parked_waits(ctx) == before {
        ctx.yield_now();
    }
}

#[test]
fn a_contended_mutex_reports_wait_obtained_released_to_both_sets() {
    let _serial = serial();
    let m = Mutex::named(0u32, "test-mutex");
    let addr = &m as *const Mutex<u32> as usize;
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    jobs.run(|ctx| {
        // Uncontended: nothing reported.
        *m.lock(ctx) += 1;
        let held = m.lock(ctx);
        let before = parked_waits(ctx);
        ctx.scope(|s| {
            s.spawn(|s| *m.lock(s) += 1);
            // The spawned job found the lock held and parked on it.
            yield_until_parked(s, before);
            drop(held);
        });
    });
    drop(jobs);
    assert_eq!(m.into_inner(), 2);
    for r in both() {
        assert_eq!(r.mutex.counts(), [1, 1, 1], "wait, obtained, released");
        assert_eq!(r.mutex.addr.load(SeqCst), addr);
        assert!(r.mutex.worker.load(SeqCst) < 2);
    }
}

/// Under load — plain threads and fibers on two workers, barging drops and `unlock_fair` mixed,
/// waiters woken to compete that lose and park again — every contended acquisition reports
/// exactly one wait, one obtain and one release, however often it was woken: the three counts
/// agree, and there are no more of them than acquisitions. (The first acquisition is made to
/// contend, so the counts are not zero.)
#[test]
fn a_mutex_under_load_reports_one_wait_obtain_and_release_per_contended_acquisition() {
    const THREADS: usize = 2;
    const JOBS: usize = 16;
    const EACH: usize = 200;
    let _serial = serial();
    let before = both().map(|r| r.load_mutex.counts());
    let m = Mutex::named(0usize, "test-load-mutex");
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    jobs.run(|ctx| {
        let held = m.lock(ctx);
        let parked = parked_waits(ctx);
        ctx.scope(|s| {
            s.spawn(|s| *m.lock(s) += 1);
            yield_until_parked(s, parked);
            drop(held);
        });
    });
    std::thread::scope(|t| {
        for _ in 0..THREADS {
            t.spawn(|| {
                for i in 0..EACH {
                    let mut g = m.lock(&ThisThread);
                    *g += 1;
                    if i % 4 == 0 {
                        jobsys::sync::MutexGuard::unlock_fair(g);
                    }
                }
            });
        }
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..JOBS {
                    s.spawn(|s| {
                        for i in 0..EACH {
                            let mut g = m.lock(s);
                            if i % 16 == 0 {
                                s.yield_now();
                            }
                            *g += 1;
                            if i % 3 == 0 {
                                jobsys::sync::MutexGuard::unlock_fair(g);
                            }
                        }
                    });
                }
            });
        });
    });
    drop(jobs);
    let acquisitions = 1 + (THREADS + JOBS) * EACH;
    assert_eq!(m.into_inner(), acquisitions);
    for (r, before) in both().iter().zip(before) {
        let [wait, obtained, released] = r.load_mutex.counts();
        let [wait, obtained, released] =
            [wait - before[0], obtained - before[1], released - before[2]];
        assert!(wait >= 1, "the first acquisition contended");
        assert_eq!(
            [obtained, released],
            [wait, wait],
            "wait, obtained, released"
        );
        assert!(wait <= acquisitions);
    }
}

/// In migration mode a contended wait may resume on another worker than it began on: the
/// obtain is reported for the worker that got the lock (a back-end files it on that worker's
/// track). Fails without that whenever a wait migrated; the count of migrated waits is printed.
#[test]
fn a_lock_obtained_after_migrating_reports_the_worker_it_resumed_on() {
    let _serial = serial();
    let m = Mutex::named(0u32, "test-migrate-mutex");
    // SAFETY: these jobs hold nothing tied to their thread across a wait.
    let jobs = unsafe { JobSystem::builder().workers(2).allow_migration() }
        .build()
        .unwrap();
    let (mut contended, mut migrated) = (0, 0);
    for _ in 0..200 {
        let (waited, got) = jobs.run(|ctx| {
            let held = m.lock(ctx);
            let before = parked_waits(ctx);
            let seen = std::sync::Mutex::new(None);
            ctx.scope(|s| {
                s.spawn(|s| {
                    let _g = m.lock(s);
                    *seen.lock().unwrap() = Some(s.worker_index());
                });
                yield_until_parked(s, before);
                drop(held);
                // Keep this worker busy for a moment so the woken waiter may resume elsewhere.
                for _ in 0..64 {
                    s.yield_now();
                }
            });
            (
                FIRST.migrate_wait_worker.load(SeqCst),
                seen.into_inner().unwrap(),
            )
        });
        let got = got.expect("the waiter ran");
        contended += 1;
        if waited != got {
            migrated += 1;
        }
        assert_eq!(
            FIRST.migrate_obtained_worker.load(SeqCst),
            got,
            "lock_obtained names the worker the waiter got the lock on"
        );
    }
    println!("{contended} contended waits, {migrated} resumed on another worker");
}

#[test]
fn a_contended_rwlock_reports_each_waiting_reader_and_writer() {
    let _serial = serial();
    let l = RwLock::named(0u32, "test-rwlock");
    let addr = &l as *const RwLock<u32> as usize;
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    jobs.run(|ctx| {
        // A reader waits for a writer.
        let mut w = l.write(ctx);
        *w = 1;
        let before = parked_waits(ctx);
        ctx.scope(|s| {
            s.spawn(|s| assert_eq!(*l.read(s), 1));
            yield_until_parked(s, before);
            drop(w);
        });
        // A writer waits for a reader; the reader itself entered at once.
        let r = l.read(ctx);
        let before = parked_waits(ctx);
        ctx.scope(|s| {
            s.spawn(|s| *l.write(s) = 2);
            yield_until_parked(s, before);
            drop(r);
        });
    });
    drop(jobs);
    assert_eq!(l.into_inner(), 2);
    for r in both() {
        assert_eq!(r.rwlock.counts(), [2, 2, 2], "wait, obtained, released");
        assert_eq!(r.rwlock.addr.load(SeqCst), addr);
    }
}

/// A plain thread waiting on a `Mutex` reports `NO_WORKER`. Its wait is observed through the
/// hook itself (a thread's park counts nowhere else), so it runs in a child process with a hang
/// guard: without the hook it ends in a report instead of a hung run.
#[test]
fn a_plain_thread_waiting_on_a_mutex_is_reported_as_no_worker() {
    const ENV: &str = "JOBSYS_PROFILE_HOOKS_CHILD";
    if std::env::var_os(ENV).is_none() {
        let report = common::child_stderr(
            "a_plain_thread_waiting_on_a_mutex_is_reported_as_no_worker",
            ENV,
            "child: done",
        );
        assert!(report.contains("child: done"), "{report}");
        return;
    }
    common::hang_guard(120, "the waiting thread's lock_wait_begin never came");
    let _serial = serial();
    let m = Mutex::named((), "test-thread-mutex");
    let held = m.lock(&ThisThread);
    std::thread::scope(|s| {
        s.spawn(|| drop(m.lock(&ThisThread)));
        while FIRST.thread_mutex.wait.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        drop(held);
    });
    for r in both() {
        assert_eq!(
            r.thread_mutex.counts(),
            [1, 1, 1],
            "wait, obtained, released"
        );
        assert_eq!(r.thread_mutex.worker.load(SeqCst), NO_WORKER);
    }
    eprintln!("child: done");
}

#[test]
fn a_zone_spans_waits_and_reaches_both_sets_in_installation_order() {
    let _serial = serial();
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    jobs.run(|ctx| {
        let _zone = ctx.zone("test-zone");
        ctx.scope(|s| {
            for _ in 0..8 {
                s.spawn(|c| {
                    let _zone = c.zone("test-zone-child");
                    c.yield_now();
                });
            }
        });
    });
    drop(jobs);
    for r in both() {
        assert_eq!(r.zone_begin.load(SeqCst), 1);
        assert_eq!(r.zone_end.load(SeqCst), 1);
        assert_eq!(r.child_zone_begin.load(SeqCst), 8);
        assert_eq!(r.child_zone_end.load(SeqCst), 8);
        // The zone stayed open across the scope's wait, on the same fiber.
        assert_eq!(r.children_done_at_zone_end.load(SeqCst), 8);
        assert_eq!(
            r.zone_fiber_begin.load(SeqCst),
            r.zone_fiber_end.load(SeqCst)
        );
    }
    assert!(FIRST.zone_tick.load(SeqCst) < SECOND.zone_tick.load(SeqCst));
}

#[test]
fn at_most_max_hook_sets_are_installed() {
    let _serial = serial();
    // Distinct objects (a zero-sized type's `&'static`s may share an address).
    struct Nothing(#[allow(dead_code)] u8);
    impl ProfileHooks for Nothing {}
    static MORE: [Nothing; MAX_HOOK_SETS] = [const { Nothing(0) }; MAX_HOOK_SETS];
    // This binary installed two; no other test adds any.
    for more in &MORE[2..] {
        assert!(profile::add_hooks(more));
    }
    assert!(!profile::add_hooks(&MORE[0]));
    assert!(!profile::set_hooks(&MORE[1]));
}
