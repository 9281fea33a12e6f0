//! Deep chains of nested waits — each job spawns one child and waits for it — complete, or stop
//! with a clear error that names the job and the limit: never a crash by signal, never a hang.
//!
//! A waiter runs its own children inline only while its fiber has `Builder::inline_headroom`
//! bytes of stack left; deeper, it parks and the child starts on a fiber of its own. Each chain
//! runs in a child process (the outcome may be an abort), at the default configuration.

mod common;

use jobsys::{Counter, Ctx, JobDecl, JobSystem, job_meta};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Each level opens a scope, spawns the next level in it and waits.
    Scope,
    /// Each level joins an empty `a` with the next level as `b`.
    Join,
    /// Each level submits the next as a raw one-job batch and waits on its counter.
    Counter,
}

fn scope_chain(ctx: &Ctx, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let mut below = 0;
    ctx.scope(|s| {
        s.spawn_with(job_meta!("scope-level"), |s| below = scope_chain(s, n - 1));
    });
    below + 1
}

fn join_chain(ctx: &Ctx, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    ctx.join(|_| (), |c| join_chain(c, n - 1)).1 + 1
}

/// One level of the raw chain: `data` points at the level's `(depth, result)`.
fn counter_level(ctx: &Ctx, data: *mut ()) {
    // SAFETY: `data` is the `(u32, u32)` of the waiting parent's frame, alive until this job's
    // counter is zero (the parent waits for it).
    let slot = unsafe { &mut *data.cast::<(u32, u32)>() };
    slot.1 = counter_chain(ctx, slot.0);
}

fn counter_chain(ctx: &Ctx, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let mut slot = (n - 1, 0u32);
    let decls = [JobDecl::new(
        job_meta!("counter-level"),
        counter_level,
        (&mut slot as *mut (u32, u32)).cast(),
    )];
    let counter = Counter::new();
    // SAFETY: `decls`, `slot` and `counter` live in this frame until the wait below returns,
    // which is after the job ran (counter back to zero).
    unsafe { ctx.run_jobs(&decls, &counter) };
    ctx.wait_for_counter(&counter, 0);
    slot.1 + 1
}

/// The child's side: runs one chain and prints its depth.
fn run_chain(kind: Kind, depth: u32, workers: usize) {
    let jobs = JobSystem::builder().workers(workers).build().unwrap();
    let got = jobs.run(|ctx| match kind {
        Kind::Scope => scope_chain(ctx, depth),
        Kind::Join => join_chain(ctx, depth),
        Kind::Counter => counter_chain(ctx, depth),
    });
    assert_eq!(got, depth);
    println!("chain completed: {kind:?} {depth} {workers}");
}

/// How a chain ended in its child process.
#[derive(Debug, PartialEq)]
enum Outcome {
    Completed,
    /// Stopped with the out-of-fibers report.
    Refused,
}

/// Runs a chain in a child process; panics on anything but completion or the clear error.
fn chain_outcome(kind: Kind, depth: u32, workers: usize) -> Outcome {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env("JOBSYS_DEEP", format!("{kind:?} {depth} {workers}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A hang guard, not a speed assertion: a chain that has not ended in five minutes hangs.
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("{kind:?} chain of {depth} on {workers} workers hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stdout.contains("chain completed") {
        return Outcome::Completed;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc_sigabrt()),
            "{kind:?} chain of {depth} on {workers} workers died by {:?}, not by the \
             deadlock report's abort; stderr:\n{stderr}",
            out.status
        );
    }
    // The report names the chain's job: the level job of a scope or raw chain, and for a join
    // chain the second half of `join` (named "join").
    let job = match kind {
        Kind::Scope => "Job 'scope-level'",
        Kind::Join => "Job 'join'",
        Kind::Counter => "Job 'counter-level'",
    };
    assert!(
        stderr.contains("deadlock: every fiber in the pool is parked")
            && stderr.contains(job)
            && stderr.contains("chain of nested waits")
            && stderr.contains("Builder::inline_headroom"),
        "{kind:?} chain of {depth} on {workers} workers: unclear failure:\n{stderr}"
    );
    Outcome::Refused
}

#[cfg(unix)]
fn libc_sigabrt() -> i32 {
    6
}

/// Entry point of the child processes (does nothing in the parent run).
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var("JOBSYS_DEEP") else {
        return;
    };
    let mut it = spec.split(' ');
    let kind = match it.next().unwrap() {
        "Scope" => Kind::Scope,
        "Join" => Kind::Join,
        _ => Kind::Counter,
    };
    let depth = it.next().unwrap().parse().unwrap();
    let workers = it.next().unwrap().parse().unwrap();
    run_chain(kind, depth, workers);
}

/// 2,000 nested waits complete at the default configuration on one worker, whatever the path
/// (they overflowed a 64 KiB fiber after about 40 levels when every child ran inline). With more
/// workers a level that another worker steals starts on a fiber of its own, so how many fibers a
/// chain needs depends on how often the idle workers win the race for the next level: the chain
/// completes, or stops with the report that names it — never a signal, never a hang.
#[test]
fn chains_of_2000_nested_waits_complete() {
    for kind in [Kind::Scope, Kind::Join, Kind::Counter] {
        assert_eq!(
            chain_outcome(kind, 2_000, 1),
            Outcome::Completed,
            "{kind:?} on 1 worker"
        );
        for workers in [2, 4] {
            let outcome = chain_outcome(kind, 2_000, workers);
            println!("{kind:?} x 2000 on {workers} workers: {outcome:?}");
        }
    }
}

/// 10,000 nested waits complete, or stop with the report that names the chain's job and the
/// limits — never a signal, never a hang.
#[test]
fn chains_of_10000_nested_waits_complete_or_stop_with_a_clear_error() {
    for kind in [Kind::Scope, Kind::Join, Kind::Counter] {
        for workers in [1, 2, 4] {
            let outcome = chain_outcome(kind, 10_000, workers);
            println!("{kind:?} x 10000 on {workers} workers: {outcome:?}");
        }
    }
}

static LARGE_LEVEL: jobsys::JobMeta =
    jobsys::JobMeta::new("large-level", file!(), line!()).stack(jobsys::StackClass::Large);

/// A chain of `Large` jobs deeper than the large fibers can host, with small fibers free: the
/// workers go to sleep (they cannot start the next level) and the system reports the stall,
/// naming the chain's job and the class that ran dry. Small jobs or a foreign thread could still
/// free a large fiber, so it is a report, not an abort: the child goes on waiting and the test
/// kills it once the report is out.
#[test]
fn a_large_chain_deeper_than_the_large_fibers_is_reported_not_hung() {
    if std::env::var_os("JOBSYS_LARGE_CHAIN").is_some() {
        common::hang_guard(300, "no stall report");
        let jobs = common::two_large_fibers();
        jobs.run(|ctx| common::chain(ctx, &LARGE_LEVEL, 5));
        println!("unreachable: the chain completed");
        return;
    }
    let report = common::child_stderr(
        "a_large_chain_deeper_than_the_large_fibers_is_reported_not_hung",
        "JOBSYS_LARGE_CHAIN",
        "so that more levels run inline",
    );
    assert!(
        report.contains("jobsys: stall: no progress for")
            && report.contains("Large jobs are queued, but no fiber that can run them is free")
            && report.matches("in job 'large-level'").count() == 2,
        "no stall report:\n{report}"
    );
}
