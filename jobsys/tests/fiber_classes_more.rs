//! The "wanted class" sleep protocol (`FiberPool::want` / `release`) under harder schedules: a
//! worker sleeps with jobs queued only when no fiber of their class is free, the release of
//! such a fiber wakes every worker that wants it, and a class run dry is reported (or, while
//! the system drops, aborts with the deadlock report). Each test forces its schedule as its comment says; the ones
//! that may hang run in a child process with a hang guard.

mod common;

use jobsys::{Counter, Ctx, JobDecl, JobMeta, JobSystem, StackClass};
use std::time::Duration;

static BIG: JobMeta = JobMeta::new("chain", file!(), line!()).stack(StackClass::Large);
static BIG_CHILD: JobMeta = JobMeta::new("chain-child", file!(), line!()).stack(StackClass::Large);

fn nothing(_: &Ctx, _: *mut ()) {}

/// The `Large` job that holds the only large fiber: submits `CHILDREN` `Large` jobs one batch
/// each (more than a ring holds, so they overflow into the injector) and waits for them
/// without running them inline (`large_inline_headroom(usize::MAX)`): it parks on the only
/// large fiber, and its children can never start.
fn big_parent(ctx: &Ctx, _: *mut ()) {
    const CHILDREN: usize = 32;
    let decls: Vec<[JobDecl; 1]> = (0..CHILDREN)
        .map(|_| {
            [JobDecl::new(
                &BIG_CHILD,
                nothing as fn(&Ctx, *mut ()),
                core::ptr::null_mut(),
            )]
        })
        .collect();
    let counter = Counter::new();
    for d in &decls {
        // SAFETY: `decls` and `counter` live in this frame until the wait below returns; each
        // one-job batch is its own array.
        unsafe { ctx.run_jobs(d, &counter) };
    }
    ctx.wait_for_counter(&counter, 0);
}

/// A class run dry whose queued jobs overflowed into the injector is reported, not spun on.
///
/// Injector jobs count as work only where a fiber of their class is free, and a worker that
/// moves injector jobs into rings that are full (they go straight back) does not wake another
/// to do the same. Were a non-empty injector work whatever its jobs' class, no worker would
/// ever sleep, and the stall report (which needs every worker asleep) would never come.
///
/// Schedule: 2 workers, 1 large fiber, rings of 4. The root submits one `Large` job; it takes
/// the large fiber, submits 32 `Large` children (28 overflow into the injector) and parks
/// waiting for them. Expected: the `Large` stall report within a second or so. Child process;
/// the child's hang guard ends it after 300 s.
#[test]
fn a_large_stall_with_jobs_in_the_injector_is_reported_not_spun_on() {
    if std::env::var_os("JOBSYS_REVIEW_INJECTOR_STALL").is_some() {
        common::hang_guard(300, "no stall report");
        let jobs = JobSystem::builder()
            .workers(2)
            .small_fibers(8, 64 * 1024)
            .large_fibers(1, 256 * 1024)
            .large_inline_headroom(usize::MAX)
            .queue_capacity(4)
            .queue_growth_limit(4)
            .build()
            .unwrap();
        // For the failure message: how many workers sleep once the stall has set in.
        let handle = jobs.handle();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                eprintln!("child: sleeping workers: {}", handle.sleeping_workers());
            }
        });
        let decls = [JobDecl::new(
            &BIG,
            big_parent as fn(&Ctx, *mut ()),
            core::ptr::null_mut(),
        )];
        jobs.run(|ctx| {
            let counter = Counter::new();
            // SAFETY: `decls` and `counter` outlive the wait below.
            unsafe { ctx.run_jobs(&decls, &counter) };
            ctx.wait_for_counter(&counter, 0);
        });
        println!("unreachable: the children ran");
        return;
    }
    let report = common::child_stderr(
        "a_large_stall_with_jobs_in_the_injector_is_reported_not_spun_on",
        "JOBSYS_REVIEW_INJECTOR_STALL",
        "so that more levels run inline",
    );
    assert!(
        report.contains("jobsys: stall: no progress for")
            && report.contains("Large jobs are queued, but no fiber that can run them is free"),
        "no stall report:\n{report}"
    );
}

/// Dropping a system in which a stack class ran dry aborts with the deadlock report.
///
/// A `Large` chain deeper than the large fibers, submitted through a `Handle`, stalls (the
/// next level is queued, the only large fiber is parked on it). During the drop no handle can
/// submit any more, so the queued jobs can never run: the drain's check sees queued jobs that
/// no free fiber can host with every fiber that could parked, and reports the deadlock,
/// instead of spinning on them forever.
///
/// Schedule: 2 workers, 1 large fiber, no inline `Large` children. The main thread submits a
/// 3-level `Large` chain through a handle and drops the system at once. Expected: a report (a
/// stall or deadlock message) rather than a silent hang. Child process; the child's hang guard
/// ends it after 30 s.
#[test]
fn dropping_a_system_with_a_class_run_dry_reports_it_not_hangs_silently() {
    if std::env::var_os("JOBSYS_REVIEW_DROP_STALL").is_some() {
        common::hang_guard(300, "JobSystem::drop never returned and printed nothing");
        let jobs = JobSystem::builder()
            .workers(2)
            .small_fibers(8, 64 * 1024)
            .large_fibers(1, 256 * 1024)
            .large_inline_headroom(usize::MAX)
            .build()
            .unwrap();
        let handle = jobs.handle();
        // Leaked: the chain never completes, and the batch must outlive its jobs.
        let top: &'static common::ChainLevel = Box::leak(Box::new(common::ChainLevel {
            meta: &BIG,
            below: 3,
        }));
        let decls: &'static [JobDecl; 1] = Box::leak(Box::new([JobDecl::new(
            &BIG,
            common::chain_level as fn(&Ctx, *mut ()),
            std::ptr::from_ref(top).cast_mut().cast(),
        )]));
        let counter: &'static Counter = Box::leak(Box::new(Counter::new()));
        // SAFETY: `top`, `decls` and `counter` are leaked, so they outlive every job of the batch.
        unsafe { handle.run_jobs(decls, counter) };
        drop(jobs);
        println!("unreachable: the drop returned");
        return;
    }
    let report = common::child_stderr(
        "dropping_a_system_with_a_class_run_dry_reports_it_not_hangs_silently",
        "JOBSYS_REVIEW_DROP_STALL",
        "child: hang guard",
    );
    assert!(
        !report.contains("child: hang guard"),
        "the drop hung without a report:\n{report}"
    );
    assert!(
        report.contains("deadlock: the system is dropping and Large jobs are still queued")
            && report.contains("in job 'chain'"),
        "unclear report:\n{report}"
    );
}

/// Spins (yielding) until `n` workers sleep; the deadline is a hang guard, not a timing
/// assertion.
fn until_sleeping(ctx: &Ctx, n: usize) {
    let guard = std::time::Instant::now();
    while ctx.sleeping_workers() != n {
        assert!(
            guard.elapsed() < Duration::from_secs(60),
            "the workers never went to sleep ({} asleep, want {n})",
            ctx.sleeping_workers()
        );
        std::thread::yield_now();
    }
}

/// two sleepers want two different classes (a `Small` job pinned to worker 1, a `Large`
/// job pinned to worker 2, no fiber free for either); one release of the large fiber clears
/// both marks, and `wake_all` gets both up; the one that loses the fiber marks its class again
/// and is woken by the next release. No lost wake-up, both jobs run.
///
/// Schedule: 3 workers, 1 small fiber (the root's, parked in its scope), 1 large fiber. A
/// `Large` holder pinned to worker 0 spawns the two pinned jobs into the root's scope, waits
/// until workers 1 and 2 sleep (each marked its class), and returns: its fiber goes idle and
/// is released on worker 0.
#[test]
fn one_release_wakes_two_sleepers_that_want_different_classes() {
    use jobsys::Affinity;
    static HOLDER: JobMeta = JobMeta::new("holder", file!(), line!())
        .stack(StackClass::Large)
        .affinity(Affinity::Worker(0));
    static SMALL_ON_1: JobMeta =
        JobMeta::new("small-on-1", file!(), line!()).affinity(Affinity::Worker(1));
    static LARGE_ON_2: JobMeta = JobMeta::new("large-on-2", file!(), line!())
        .stack(StackClass::Large)
        .affinity(Affinity::Worker(2));
    const ROUNDS: usize = 4;
    let mut lost = 0;
    for _ in 0..ROUNDS {
        let jobs = JobSystem::builder()
            .workers(3)
            .small_fibers(1, 64 * 1024)
            .large_fibers(1, 256 * 1024)
            .build()
            .unwrap();
        let ran = std::sync::atomic::AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_with(&HOLDER, |s| {
                    s.spawn_with(&SMALL_ON_1, |s| {
                        assert_eq!(s.worker_index(), 1);
                        ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    });
                    s.spawn_with(&LARGE_ON_2, |s| {
                        assert_eq!(s.worker_index(), 2);
                        ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    });
                    until_sleeping(s, 2);
                });
            });
        });
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 2);
        lost += jobs.lost_wakeups();
    }
    assert_eq!(lost, 0, "lost wake-ups in {ROUNDS} rounds");
}

/// Metas for the mixed-class stress below: `[class][affinity]` with affinity 0 = any, k = worker
/// k - 1.
static MIXED: [[JobMeta; 4]; 2] = {
    use jobsys::Affinity::{Any, Worker};
    const fn m(stack: StackClass, affinity: jobsys::Affinity) -> JobMeta {
        JobMeta::new("mixed", file!(), line!())
            .stack(stack)
            .affinity(affinity)
    }
    [
        [
            m(StackClass::Small, Any),
            m(StackClass::Small, Worker(0)),
            m(StackClass::Small, Worker(1)),
            m(StackClass::Small, Worker(2)),
        ],
        [
            m(StackClass::Large, Any),
            m(StackClass::Large, Worker(0)),
            m(StackClass::Large, Worker(1)),
            m(StackClass::Large, Worker(2)),
        ],
    ]
};

/// (No lost wake-up, no stall report, every job runs): leaf jobs of both classes, pinned
/// to every worker or to none, some yielding, some placed through the injector, submitted from
/// jobs and from a foreign thread, on a pool of 2 small fibers (one is the root's) and 1 large
/// fiber, so both classes run dry over and over and every release may find a mark. Child
/// process, so that its stderr (lost wake-ups and stall reports are printed there in debug
/// builds) can be read; the child's hang guard ends it after 240 s.
#[test]
fn mixed_classes_on_a_tiny_pool_lose_no_wake_up() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    if std::env::var_os("JOBSYS_REVIEW_MIXED").is_some() {
        common::hang_guard(240, "the mixed stress hung");
        const ROUNDS: usize = 3000;
        const JOBS: usize = 48;
        let jobs = JobSystem::builder()
            .workers(3)
            .small_fibers(2, 64 * 1024)
            .large_fibers(1, 256 * 1024)
            .queue_capacity(8)
            .queue_growth_limit(8)
            .build()
            .unwrap();
        let handle = jobs.handle();
        let ran = AtomicUsize::new(0);
        let mut rng = 0x9e37_79b9_u32;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng
        };
        for round in 0..ROUNDS {
            let picks: Vec<u32> = (0..JOBS).map(|_| next()).collect();
            // A foreign batch racing the round: `Large` jobs into the injector.
            let foreign_counter = Counter::new();
            let foreign: Vec<[JobDecl; 1]> = (0..4)
                .map(|_| {
                    [JobDecl::new(
                        &BIG_CHILD,
                        nothing as fn(&Ctx, *mut ()),
                        core::ptr::null_mut(),
                    )]
                })
                .collect();
            std::thread::scope(|t| {
                t.spawn(|| {
                    for d in &foreign {
                        // SAFETY: `foreign` and `foreign_counter` outlive the wait below.
                        unsafe { handle.run_jobs(d, &foreign_counter) };
                    }
                    handle.wait_for_counter(&foreign_counter, 0);
                });
                jobs.run(|ctx| {
                    if round % 3 == 0 {
                        ctx.frame(|_f| ctx.scope(|s| spawn_mixed(s, &picks, &ran)));
                    } else {
                        ctx.scope(|s| spawn_mixed(s, &picks, &ran));
                    }
                });
            });
        }
        assert_eq!(ran.load(SeqCst), ROUNDS * JOBS);
        eprintln!("child: done, lost wake-ups {}", jobs.lost_wakeups());
        return;
    }
    let report = common::child_stderr(
        "mixed_classes_on_a_tiny_pool_lose_no_wake_up",
        "JOBSYS_REVIEW_MIXED",
        "child: done",
    );
    assert!(
        report.contains("child: done, lost wake-ups 0")
            && !report.contains("LOST WAKE-UP")
            && !report.contains("stall:"),
        "{report}"
    );
}

/// Spawns one leaf job per pick into `s` (class, affinity, hint, work and yield from the pick).
fn spawn_mixed<'scope, 'env>(
    s: &jobsys::Scope<'scope, 'env>,
    picks: &'env [u32],
    ran: &'env std::sync::atomic::AtomicUsize,
) {
    for &p in picks {
        let meta = &MIXED[(p & 1) as usize][((p >> 1) % 4) as usize];
        let hint = if p & 0x100 != 0 {
            jobsys::Hint::Fifo
        } else {
            jobsys::Hint::Lifo
        };
        s.spawn_hinted(hint, meta, move |s| {
            for _ in 0..(p >> 12) % 200 {
                std::hint::black_box(0);
            }
            if p & 0x200 != 0 {
                s.yield_now();
            }
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
    }
}
