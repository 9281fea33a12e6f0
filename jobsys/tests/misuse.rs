//! Misuse and bad configuration: each produces a clear message instead of a hang or UB.
//! Outcomes that abort the process are checked in a child process (rayon's pattern).

mod common;

use jobsys::{BuildErrorKind, Counter, Ctx, JobDecl, JobSystem, StackClass, job_meta};
use std::process::Command;

/// The command that re-runs this test binary for one test with `JOBSYS_CHILD` set.
fn child_command(test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("JOBSYS_CHILD", "1");
    cmd
}

/// Re-runs this test binary for one test with `JOBSYS_CHILD` set.
fn child_output(test: &str) -> std::process::Output {
    child_command(test).output().unwrap()
}

/// [`child_output`] as (success, stderr).
fn run_child(test: &str) -> (bool, String) {
    let out = child_output(test);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The message of the panic that `r` must hold (a `String` or `&str` payload).
fn refusal<T>(r: std::thread::Result<T>) -> String {
    let payload = r.err().expect("must refuse with a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|m| m.to_string()))
        .unwrap_or_default()
}

fn is_child() -> bool {
    std::env::var_os("JOBSYS_CHILD").is_some()
}

fn nop(_: &Ctx, _: *mut ()) {}

/// A one-job batch that does nothing.
fn nop_decl(meta: &'static jobsys::JobMeta) -> [JobDecl; 1] {
    [JobDecl::new(meta, nop, std::ptr::null_mut())]
}

/// Every fiber parks on the same unfinished counter whose job sits below them in the queue.
fn exhaust_pool() {
    let jobs = JobSystem::builder()
        .workers(1)
        .small_fibers(4, 64 * 1024)
        .large_fibers(0, 0)
        .build()
        .unwrap();
    jobs.run(|ctx| {
        let decls = nop_decl(job_meta!("starved"));
        let blocked = Counter::new();
        // SAFETY: never returns normally: the process aborts with the report.
        unsafe { ctx.run_jobs(&decls, &blocked) };
        let blocked = &blocked;
        ctx.scope(|s| {
            for _ in 0..10 {
                s.spawn_with(job_meta!("waiter"), move |s| s.wait_for_counter(blocked, 0));
            }
        });
    });
}

#[test]
fn fiber_pool_exhaustion_is_reported_not_hung() {
    if is_child() {
        exhaust_pool();
        return;
    }
    let (ok, stderr) = run_child("fiber_pool_exhaustion_is_reported_not_hung");
    assert!(!ok, "the child must abort");
    assert!(
        stderr.contains("deadlock: every fiber in the pool is parked"),
        "{stderr}"
    );
    assert!(
        stderr.contains("in job 'waiter'") && stderr.contains("waits on counter"),
        "{stderr}"
    );
    assert!(stderr.contains("raise the pool size"), "{stderr}");
}

/// Two workers, every fiber parked on a counter that nothing lowers. Untimed counter parks are
/// added to the system's parked count lazily, when their worker runs out of work: the last
/// worker to get there must still see every fiber parked.
fn exhaust_pool_on_two_workers() {
    let jobs = JobSystem::builder()
        .workers(2)
        .small_fibers(6, 64 * 1024)
        .large_fibers(0, 0)
        .build()
        .unwrap();
    jobs.run(|ctx| {
        let blocked = Counter::with_value(1);
        let blocked = &blocked;
        ctx.scope(|s| {
            for _ in 0..16 {
                s.spawn_with(job_meta!("waiter"), move |s| s.wait_for_counter(blocked, 0));
            }
        });
    });
}

#[test]
fn fiber_pool_exhaustion_on_two_workers_is_reported_not_hung() {
    if is_child() {
        exhaust_pool_on_two_workers();
        return;
    }
    let (ok, stderr) = run_child("fiber_pool_exhaustion_on_two_workers_is_reported_not_hung");
    assert!(!ok, "the child must abort");
    assert!(
        stderr.contains("deadlock: every fiber in the pool is parked"),
        "{stderr}"
    );
    assert!(stderr.contains("in job 'waiter'"), "{stderr}");
}

struct WaitOnDrop<'a>(&'a Ctx, &'a Counter);

impl Drop for WaitOnDrop<'_> {
    fn drop(&mut self) {
        self.0.wait_for_counter(self.1, 0);
    }
}

#[test]
fn waiting_while_panicking_is_refused_with_a_message() {
    if is_child() {
        let jobs = JobSystem::builder().workers(1).build().unwrap();
        jobs.run(|ctx| {
            let decls = nop_decl(job_meta!("pending"));
            let c = Counter::new();
            // SAFETY: the process aborts before `decls` or `c` go away.
            unsafe { ctx.run_jobs(&decls, &c) };
            // The guard's Drop waits on `c` (still 1: its job is queued) during unwinding.
            let _guard = WaitOnDrop(ctx, &c);
            panic!("boom");
        });
        return;
    }
    let (ok, stderr) = run_child("waiting_while_panicking_is_refused_with_a_message");
    assert!(!ok);
    assert!(
        stderr.contains("waited on a counter while its thread was panicking"),
        "{stderr}"
    );
}

#[test]
fn every_bad_configuration_is_a_typed_error_that_says_what_to_change() {
    let check = |b: jobsys::Builder, want: fn(&BuildErrorKind) -> bool, says: &str| {
        let e = b.build().expect_err("must be refused");
        assert!(want(e.kind()), "{:?}", e.kind());
        assert!(
            e.to_string().contains(says),
            "'{e}' should mention '{says}'"
        );
    };
    let b = JobSystem::builder;
    check(
        b().workers(0),
        |k| matches!(k, BuildErrorKind::ZeroWorkers),
        "workers(1)",
    );
    check(
        b().workers(100_000),
        |k| matches!(k, BuildErrorKind::TooManyWorkers { .. }),
        "at most",
    );
    check(
        b().small_fibers(0, 65536).large_fibers(0, 65536),
        |k| matches!(k, BuildErrorKind::NoFibers),
        "at least 1",
    );
    check(
        b().small_fibers(1 << 21, 65536),
        |k| matches!(k, BuildErrorKind::TooManyFibers { .. }),
        "lower",
    );
    check(
        b().small_fibers(4, 1024),
        |k| {
            matches!(
                k,
                BuildErrorKind::StackTooSmall {
                    class: StackClass::Small,
                    ..
                }
            )
        },
        "raise the size",
    );
    check(
        b().small_fibers(4, 1 << 20).large_fibers(4, 1 << 16),
        |k| matches!(k, BuildErrorKind::LargeSmallerThanSmall { .. }),
        "at least as big",
    );
    check(
        b().queue_capacity(100),
        |k| {
            matches!(k, BuildErrorKind::QueueCapacity { requested: 100, min, max }
                if *min == jobsys::Builder::MIN_QUEUE_CAPACITY
                    && *max == jobsys::Builder::MAX_QUEUE_CAPACITY)
        },
        "power of two",
    );
    check(
        b().workers(1).small_fibers(4, 1 << 46).large_fibers(0, 0),
        |k| matches!(k, BuildErrorKind::StackAlloc { .. }),
        "lower the fiber count or stack size",
    );
}

#[test]
fn a_handle_refuses_to_block_a_worker_thread() {
    // Declared before the system, so they outlive it: the refusal unwinds out of `run` with
    // the job still queued, and the system's drop runs it.
    let decls = nop_decl(job_meta!("pending"));
    let c = Counter::new();
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let handle = jobs.handle();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            // SAFETY: `decls` and `c` outlive `jobs`, whose drop runs the job.
            unsafe { ctx.run_jobs(&decls, &c) };
            handle.wait_for_counter(&c, 0);
        })
    }));
    let msg = refusal(r);
    assert!(
        msg.contains("Handle::wait_for_counter would block a worker thread")
            && msg.contains("inside a job use the Ctx: Ctx::wait_for_counter"),
        "{msg}"
    );
}

#[test]
fn pinning_to_a_missing_worker_is_refused_before_anything_is_queued() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_with(
                    job_meta!("gpu", affinity(jobsys::Affinity::Worker(5))),
                    |_| {},
                );
            })
        })
    }));
    let msg = refusal(r);
    assert!(
        msg.contains("pinned to worker 5, but the system has 2 workers"),
        "{msg}"
    );
    assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
}

fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        pad[0]
    } else {
        recurse(depth + 1) + pad[1]
    }
}

#[test]
fn a_fiber_stack_overflow_hits_the_guard_page_instead_of_corrupting_memory() {
    if is_child() {
        let jobs = JobSystem::builder()
            .workers(1)
            .small_fibers(2, 64 * 1024)
            .large_fibers(0, 0)
            .build()
            .unwrap();
        let r = jobs.run(|_| recurse(0));
        println!("unreachable: {r}");
        return;
    }
    // Under AddressSanitizer (docs/testing.md) ASan's own SIGSEGV handler would report the
    // overflow and exit with a status instead; leave the signals to the process, so the test
    // checks the same thing in every build (ASan ignores the variable's absence elsewhere).
    let mut asan = std::env::var("ASAN_OPTIONS").unwrap_or_default();
    asan.push_str(":handle_segv=0:handle_sigbus=0");
    let out =
        child_command("a_fiber_stack_overflow_hits_the_guard_page_instead_of_corrupting_memory")
            .env("ASAN_OPTIONS", asan)
            .output()
            .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("unreachable"));
    // On unix the guard-page fault is reported (tests/overflow.rs has the details).
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(6), "{stderr}");
        assert!(
            stderr.contains("jobsys: stack overflow on fiber"),
            "{stderr}"
        );
    }
}

#[test]
fn a_large_job_without_large_fibers_is_refused_at_submit() {
    let jobs = JobSystem::builder()
        .workers(2)
        .small_fibers(8, 64 * 1024)
        .large_fibers(0, 0)
        .build()
        .unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_with(job_meta!("deep", stack(StackClass::Large)), |_| {});
            })
        })
    }));
    let msg = refusal(r);
    assert!(
        msg.contains("needs a Large stack, but the pool has no large fibers"),
        "{msg}"
    );
}

struct DrainProbe {
    handle: jobsys::Handle,
    blocker: Counter,
    refused: std::sync::atomic::AtomicBool,
}

fn wait_through_handle(_: &Ctx, data: *mut ()) {
    // SAFETY: points at the test's `DrainProbe`, alive until after the system is dropped.
    let probe = unsafe { &*(data as *const DrainProbe) };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        probe.handle.wait_for_counter(&probe.blocker, 0)
    }));
    probe
        .refused
        .store(r.is_err(), std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn a_handle_refuses_to_block_worker_0_while_the_system_drains() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let probe = DrainProbe {
        handle: jobs.handle(),
        blocker: Counter::new(),
        refused: Default::default(),
    };
    let main = job_meta!("on-main", affinity(jobsys::Affinity::Worker(0)));
    let waiter = [JobDecl::new(
        main,
        wait_through_handle,
        &probe as *const DrainProbe as *mut (),
    )];
    let blocked = nop_decl(main);
    let done = Counter::new();
    // SAFETY: everything outlives `jobs`, whose drop runs both jobs.
    unsafe {
        probe.handle.run_jobs(&waiter, &done);
        probe.handle.run_jobs(&blocked, &probe.blocker);
    }
    drop(jobs); // worker 0 drains: the waiter must be refused, not block the only worker
    std::panic::set_hook(hook);
    assert!(probe.refused.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!((done.value(), probe.blocker.value()), (0, 0));
}

struct YieldOnDrop<'a>(&'a Ctx);

impl Drop for YieldOnDrop<'_> {
    fn drop(&mut self) {
        for _ in 0..3 {
            self.0.yield_now();
        }
    }
}

/// A yield during unwinding returns at once instead of running other jobs on top of a
/// panicking fiber (which would see the panic count and be refused their waits).
#[test]
fn yield_while_panicking_does_not_run_other_jobs_on_the_unwinding_fiber() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let other_done = std::sync::atomic::AtomicBool::new(false);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn(|s| {
                    s.scope(|t| {
                        t.spawn(|_| {});
                    });
                    other_done.store(true, std::sync::atomic::Ordering::SeqCst);
                });
                s.spawn(|s| {
                    let _g = YieldOnDrop(s);
                    panic!("a");
                });
            })
        })
    }));
    std::panic::set_hook(hook);
    assert!(r.is_err(), "the scope re-raises the panic");
    assert!(
        other_done.load(std::sync::atomic::Ordering::SeqCst),
        "the other job ran and waited normally"
    );
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a job's captured value panicked in its Drop");
        }
    }
}

#[test]
fn a_job_that_panics_in_a_drop_reaches_its_waiter_and_loses_no_work() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let ran = std::sync::atomic::AtomicUsize::new(0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                let value = PanicOnDrop;
                // The body returns normally; dropping what it captured panics.
                s.spawn(move |_| drop(value));
                for _ in 0..8 {
                    s.spawn(|_| {
                        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    });
                }
            });
        })
    }));
    assert_eq!(
        refusal(r),
        "a job's captured value panicked in its Drop",
        "the scope re-raises the Drop's panic"
    );
    // Its siblings all ran, and the system still works.
    assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 8);
    assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "needs debug assertions: no-suspend regions are checked only in debug builds of jobsys"
)]
fn a_wait_inside_a_no_suspend_region_is_refused_in_debug_builds() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let done = Counter::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            let _region = ctx.no_suspend();
            // Refused even though this wait would not suspend: the check does not depend on
            // timing.
            ctx.wait_for_counter(&done, 0);
        })
    }));
    let msg = refusal(r);
    assert!(
        msg.contains("a counter wait inside a no-suspend region (opened at")
            && msg.contains("tests/misuse.rs"),
        "{msg}"
    );
    assert!(msg.contains("drop the guard"), "{msg}");
    // A jobsys SpinLock guard is a region too: parking on a Mutex while holding one is refused.
    let spin = jobsys::sync::SpinLock::new(0);
    let lock = jobsys::sync::Mutex::new(0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            let _held = lock.lock(ctx);
            ctx.scope(|s| {
                s.spawn(|s| {
                    let _g = spin.lock();
                    let _m = lock.lock(s); // contended: would park
                });
            });
        })
    }));
    let msg = refusal(r);
    assert!(
        msg.contains("a wait on a jobsys::sync primitive inside a no-suspend region"),
        "{msg}"
    );
    // Once the guards are gone, waits work again on every worker.
    assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
}

#[test]
fn dropping_the_system_inside_one_of_its_jobs_aborts_with_a_message() {
    if is_child() {
        let jobs = std::mem::ManuallyDrop::new(JobSystem::builder().workers(2).build().unwrap());
        let at = &*jobs as *const JobSystem as usize;
        jobs.run(move |_| {
            // SAFETY: none — this is the misuse under test (safe code cannot express it: the
            // system is !Send and `run` borrows it). The process aborts inside the drop.
            unsafe { std::ptr::drop_in_place(at as *mut JobSystem) };
        });
        return;
    }
    let (ok, stderr) =
        run_child("dropping_the_system_inside_one_of_its_jobs_aborts_with_a_message");
    assert!(!ok, "the child must abort");
    assert!(
        stderr.contains("dropped inside one of its own jobs")
            && stderr.contains("after run returns"),
        "{stderr}"
    );
}

/// A job that blocks through `ThisThread` (a plain thread's blocker) would stall its worker
/// and every fiber on it: refused with a message, on any system's worker.
#[test]
fn a_thisthread_wait_on_a_worker_is_refused() {
    use jobsys::sync::{Event, EventKind, ThisThread};
    let never = Event::new(EventKind::Manual);
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                // On worker 1 or inline on worker 0: both are workers.
                s.spawn(|_| never.wait(&ThisThread));
            })
        })
    }));
    let msg = refusal(r);
    assert!(
        msg.contains("a jobsys::sync wait through ThisThread would block a worker thread")
            && msg.contains("inside a job use the Ctx"),
        "{msg}"
    );
    // A wait that does not block is not refused, and a plain thread may still block.
    never.set();
    jobs.run(|_| never.wait(&ThisThread));
    never.wait(&ThisThread);
}

/// A job of one system blocking through another system's handle blocks a worker all the
/// same: refused too.
#[test]
fn a_handle_refuses_to_block_a_worker_of_another_system() {
    let decls = nop_decl(job_meta!("pending"));
    let c = Counter::new();
    let other = JobSystem::builder().workers(1).build().unwrap();
    let handle = other.handle();
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    // SAFETY: `decls` and `c` outlive `other`, whose drop runs the job.
    unsafe { handle.run_jobs(&decls, &c) };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        jobs.run(|_| handle.wait_for_counter(&c, 0))
    }));
    let msg = refusal(r);
    assert!(
        msg.contains("Handle::wait_for_counter would block a worker thread"),
        "{msg}"
    );
    drop(jobs);
    drop(other);
    assert_eq!(c.value(), 0);
}

/// A `Barrier(4)` with 3 participants stalls (a plain thread could still arrive, so the
/// deadlock abort cannot fire): the system reports the stall, naming the waiting jobs and
/// the barrier, and goes on waiting. The child never ends by itself; the test kills it once
/// the report is out.
#[test]
fn a_barrier_short_of_participants_is_reported_as_a_stall() {
    if is_child() {
        // Hang guard, not a timing assertion: a child that never reports ends here.
        common::hang_guard(300, "no stall report");
        let barrier = jobsys::sync::Barrier::new(4);
        let jobs = JobSystem::builder().workers(2).build().unwrap();
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..3 {
                    s.spawn_with(job_meta!("party"), |s| {
                        barrier.wait(s);
                    });
                }
            })
        });
        println!("unreachable: the barrier opened");
        return;
    }
    let report = common::child_stderr(
        "a_barrier_short_of_participants_is_reported_as_a_stall",
        "JOBSYS_CHILD",
        "Check that every Barrier",
    );
    assert!(
        report.contains("jobsys: stall: no progress for")
            && report.contains("3 fiber(s) are parked on jobsys::sync primitives")
            && report.contains("in job 'party' (")
            && report.contains("waits at a Barrier for 4 participants, 3 arrived"),
        "no stall report:\n{report}"
    );
    assert_eq!(report.matches("waits at a Barrier").count(), 3, "{report}");
}

/// Checks the stall report a child of [`child_stderr_released`](common::child_stderr_released)
/// printed inside one frame: printed once, saying that a frame is open, naming `job` and
/// `waits` (`waits` times `count`), before the child was released and ended well.
fn assert_stall_in_frame_reported(test: &str, job: &str, waits: &str, count: usize) {
    let (status, out) =
        common::child_stderr_released(test, "JOBSYS_CHILD", "Check that every Barrier");
    assert!(
        status.success() && out.contains("child: released"),
        "the child did not report the stall, get released and end ({status:?}):\n{out}"
    );
    let header = out.find("jobsys: stall: no progress for");
    assert!(
        header.is_some() && header < out.find("child: released"),
        "no stall report before the release:\n{out}"
    );
    assert_eq!(
        out.matches("jobsys: stall:").count(),
        1,
        "one report per stall:\n{out}"
    );
    assert!(
        out.contains("every worker is idle while 1 frame(s) are open (idle workers are spinning)")
            && out.contains(&format!(
                "{count} fiber(s) are parked on jobsys::sync primitives"
            ))
            && out.contains(&format!("in job '{job}' (")),
        "the report does not say what stalls, or that a frame is open:\n{out}"
    );
    assert_eq!(out.matches(waits).count(), count, "{out}");
}

/// The stall of [`a_barrier_short_of_participants_is_reported_as_a_stall`] inside a frame:
/// while a frame is open idle workers spin instead of sleeping, and the stall is reported all
/// the same. Then a plain thread, told by the parent once it read the report, arrives as the
/// fourth participant, and the frame retires.
#[test]
fn a_barrier_short_of_participants_inside_a_frame_is_reported_as_a_stall() {
    if is_child() {
        // Hang guard, not a timing assertion: a child that never reports ends here.
        common::hang_guard(300, "no stall report");
        let barrier = jobsys::sync::Barrier::new(4);
        let jobs = JobSystem::builder().workers(2).build().unwrap();
        std::thread::scope(|t| {
            t.spawn(|| {
                common::wait_for_parent();
                barrier.wait(&jobsys::sync::ThisThread);
            });
            jobs.run(|ctx| {
                ctx.frame(|_| {
                    ctx.scope(|s| {
                        for _ in 0..3 {
                            s.spawn_with(job_meta!("party"), |s| {
                                barrier.wait(s);
                            });
                        }
                    })
                })
            });
        });
        eprintln!("child: released");
        return;
    }
    assert_stall_in_frame_reported(
        "a_barrier_short_of_participants_inside_a_frame_is_reported_as_a_stall",
        "party",
        "waits at a Barrier for 4 participants, 3 arrived",
        3,
    );
}

/// An event nobody sets, waited on by a later job of a frame of a `frames` loop (the body
/// has returned; the frame stays open until the later job ends): reported as a stall, then
/// released by a plain thread once the parent read the report.
#[test]
fn an_event_nobody_sets_in_a_later_job_of_a_frame_is_reported_as_a_stall() {
    use jobsys::sync::{Event, EventKind};
    if is_child() {
        // Hang guard, not a timing assertion: a child that never reports ends here.
        common::hang_guard(300, "no stall report");
        let event = Event::new(EventKind::Manual);
        let jobs = JobSystem::builder().workers(2).build().unwrap();
        std::thread::scope(|t| {
            t.spawn(|| {
                common::wait_for_parent();
                event.set();
            });
            jobs.run(|ctx| {
                ctx.frames(|frames| {
                    frames.frame(|f| {
                        f.later_with(ctx, job_meta!("stalled"), |ctx| event.wait(ctx));
                    });
                })
            });
        });
        eprintln!("child: released");
        return;
    }
    assert_stall_in_frame_reported(
        "an_event_nobody_sets_in_a_later_job_of_a_frame_is_reported_as_a_stall",
        "stalled",
        "in job 'stalled' (",
        1,
    );
}

/// A frame waiting for a frame that waits for it through another job (one frame in flight:
/// a job the frame body waits for opens a frame, which waits for the body's frame to
/// retire). Opening does not detect nesting through another job's fiber, and nothing can end
/// this wait, but it is no silent spin: the stall is reported, naming the job that waits for
/// its turn. The child never ends by itself; the test kills it once the report is out.
#[test]
fn a_frame_waiting_for_its_own_enclosing_frame_through_a_job_is_reported_as_a_stall() {
    if is_child() {
        // Hang guard, not a timing assertion: a child that never reports ends here.
        common::hang_guard(300, "no stall report");
        let jobs = JobSystem::builder()
            .workers(2)
            .frames_in_flight(1)
            .build()
            .unwrap();
        jobs.run(|ctx| {
            ctx.frame(|_| {
                ctx.scope(|s| {
                    // Pinned to worker 1, so that it runs on a fiber of its own (run inline
                    // on the body's fiber, the nesting would be refused with a panic).
                    s.spawn_with(
                        job_meta!("inner frame", affinity(jobsys::Affinity::Worker(1))),
                        |s| s.frame(|_| ()),
                    );
                })
            })
        });
        println!("unreachable: the inner frame opened");
        return;
    }
    let report = common::child_stderr(
        "a_frame_waiting_for_its_own_enclosing_frame_through_a_job_is_reported_as_a_stall",
        "JOBSYS_CHILD",
        "Check that every Barrier",
    );
    assert!(
        report.contains("jobsys: stall: no progress for")
            && report.contains("every worker is idle while 1 frame(s) are open")
            && report.contains("1 fiber(s) are parked on jobsys::sync primitives")
            && report.contains("in job 'inner frame' ("),
        "no stall report:\n{report}"
    );
}

/// A frame that is merely busy is no stall: one worker runs a long job (past the stall
/// report's one second) that ends by setting the event the frame body is parked on, while the
/// other worker spins idle in the frame, looking for a stall at its periodic yields. One
/// fiber parked on a `jobsys::sync` primitive, no timer, no progress counted meanwhile — but a
/// worker is busy, so nothing is reported. (Stopped early by an overloaded host, the child
/// shows nothing either way; it never reports falsely.)
#[test]
fn a_busy_frame_with_an_idle_worker_is_not_reported_as_a_stall() {
    use jobsys::sync::{Event, EventKind};
    if is_child() {
        // Hang guard, not a timing assertion.
        common::hang_guard(300, "the busy frame never ended");
        let event = Event::new(EventKind::Manual);
        let jobs = JobSystem::builder().workers(2).build().unwrap();
        jobs.run(|ctx| {
            ctx.frame(|_| {
                ctx.scope(|s| {
                    s.spawn_with(
                        job_meta!("long", affinity(jobsys::Affinity::Worker(1))),
                        |_| {
                            // Busy for three stall periods: a worker idle-flagged while it
                            // runs this would let the idle one report.
                            let start = std::time::Instant::now();
                            while start.elapsed() < std::time::Duration::from_secs(3) {
                                std::hint::spin_loop();
                            }
                            event.set();
                        },
                    );
                    event.wait(s);
                })
            })
        });
        eprintln!("child: done");
        return;
    }
    let out = common::child_stderr(
        "a_busy_frame_with_an_idle_worker_is_not_reported_as_a_stall",
        "JOBSYS_CHILD",
        "child: done",
    );
    assert!(
        out.contains("child: done"),
        "the child did not end well:\n{out}"
    );
    assert!(
        !out.contains("jobsys: stall"),
        "a busy frame was reported as a stall:\n{out}"
    );
}

/// A `Barrier(2)` with a third participant inside `wait` at the same time: debug builds panic
/// in the extra caller, before it arrives, instead of mixing generations.
///
/// Made deterministic with two workers: `A` (pinned to worker 1) parks at the barrier, then
/// `J` keeps worker 1 busy, so when the root (worker 0) completes the first generation, `A`
/// is released but cannot return yet. The root then waits again (2 inside) and `D` is the
/// third.
#[test]
#[cfg_attr(not(debug_assertions), ignore = "needs debug assertions")]
fn more_waiters_than_a_barrier_was_built_for_panic_in_debug() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let barrier = jobsys::sync::Barrier::new(2);
    let (j_running, release, a_done) = (
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    );
    let refused = std::sync::Mutex::new(String::new());
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    jobs.run(|ctx| {
        ctx.scope(|s| {
            s.spawn_with(job_meta!("A", affinity(jobsys::Affinity::Worker(1))), |s| {
                barrier.wait(s);
                a_done.store(true, SeqCst);
            });
            // Worker 1 takes its pinned jobs in order: J starts once A has parked.
            s.spawn_with(
                job_meta!("J", affinity(jobsys::Affinity::Worker(1))),
                |_| {
                    j_running.store(true, SeqCst);
                    while !release.load(SeqCst) {
                        std::thread::yield_now();
                    }
                },
            );
            while !j_running.load(SeqCst) {
                std::thread::yield_now();
            }
            assert!(barrier.wait(s).is_leader(), "A was waiting");
            s.spawn_with(job_meta!("D"), |s| {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    barrier.wait(s);
                }));
                release.store(true, SeqCst);
                if r.is_err() {
                    *refused.lock().unwrap() = refusal(r);
                    while !a_done.load(SeqCst) {
                        s.yield_now();
                    }
                    // Now a legitimate second participant of the root's generation.
                    barrier.wait(s);
                }
            });
            barrier.wait(s);
        })
    });
    let msg = refused.into_inner().unwrap();
    assert!(
        msg.contains("3 waits at once on a Barrier built for 2 participants"),
        "{msg}"
    );
}
