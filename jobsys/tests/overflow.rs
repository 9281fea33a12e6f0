//! A stack overflow on a fiber is loud: the process prints which fiber overflowed, its stack
//! class and size, and the job it ran, then aborts — and faults that are not a fiber's stack
//! overflow still reach whatever handled them before (here: the default action). Each case
//! runs in a child process, since each ends the process.

#![cfg(unix)]

use jobsys::{Ctx, JobSystem, job_meta};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

const SIGSEGV: i32 = 11;
const SIGBUS_LINUX: i32 = 7;
const SIGBUS_BSD: i32 = 10;
const SIGABRT: i32 = 6;

/// Re-runs this test binary for one test with `JOBSYS_OVERFLOW_CHILD` set; (signal, stderr).
fn child(test: &str) -> (Option<i32>, String, String) {
    // Under AddressSanitizer (see docs/testing.md), leave SIGSEGV/SIGBUS to the process's own
    // handlers — jobsys's, and the default action behind it — as in a build without ASan.
    let mut asan = std::env::var("ASAN_OPTIONS").unwrap_or_default();
    asan.push_str(":handle_segv=0:handle_sigbus=0");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("JOBSYS_OVERFLOW_CHILD", "1")
        .env("ASAN_OPTIONS", asan)
        .output()
        .unwrap();
    (
        out.status.signal(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn is_child() -> bool {
    std::env::var_os("JOBSYS_OVERFLOW_CHILD").is_some()
}

/// The default pool's shape, small fibers of 64 KiB.
fn system() -> JobSystem {
    JobSystem::builder()
        .workers(1)
        .small_fibers(4, 64 * 1024)
        .large_fibers(1, 512 * 1024)
        .build()
        .unwrap()
}

#[test]
#[cfg_attr(
    feature = "sanitizer",
    ignore = "under AddressSanitizer a big local's first touch may land below the guard page \
              (ASan lays out frames itself), so the fault is not recognised as an overflow"
)]
fn a_200_kib_local_on_a_64_kib_fiber_names_the_fiber_and_the_job() {
    if is_child() {
        let jobs = system();
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_with(job_meta!("big-local"), |_| {
                    let buf = std::hint::black_box([7u8; 200 * 1024]);
                    println!("unreachable: {}", std::hint::black_box(&buf)[1000]);
                });
            })
        });
        return;
    }
    let (sig, stdout, stderr) =
        child("a_200_kib_local_on_a_64_kib_fiber_names_the_fiber_and_the_job");
    assert!(!stdout.contains("unreachable"), "{stdout}");
    assert!(
        stderr.contains("jobsys: stack overflow on fiber ")
            && stderr.contains("(Small stack, 65536 bytes) in job 'big-local' (")
            && stderr.contains("overflow.rs:")
            && stderr.contains("Builder::small_fibers / large_fibers"),
        "child died by {sig:?} without the message; stderr:\n{stderr}"
    );
    assert_eq!(sig, Some(SIGABRT), "{stderr}");
}

fn deep(ctx: &Ctx, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    // `a` is the caller's own code: it runs on the caller's stack, one frame a level.
    let (a, ()) = ctx.join(|c| deep(c, n - 1), |_| ());
    std::hint::black_box(a) + 1
}

#[test]
fn a_million_deep_join_recursion_through_a_is_reported() {
    if is_child() {
        let jobs = system();
        let depth = jobs.run(|ctx| deep(ctx, 1_000_000));
        println!("unreachable: {depth}");
        return;
    }
    let (sig, stdout, stderr) = child("a_million_deep_join_recursion_through_a_is_reported");
    assert!(!stdout.contains("unreachable"), "{stdout}");
    assert!(
        stderr.contains("jobsys: stack overflow on fiber ")
            && stderr.contains(" stack, ")
            && stderr.contains(" in job '"),
        "child died by {sig:?} without the message; stderr:\n{stderr}"
    );
    assert_eq!(sig, Some(SIGABRT), "{stderr}");
}

#[test]
fn a_fault_outside_any_fiber_still_dies_by_its_own_signal() {
    if is_child() {
        let jobs = system();
        assert_eq!(jobs.run(|ctx| ctx.join(|_| 1, |_| 2)), (1, 2));
        // The handler is installed now. A null read on the thread's own stack is not ours.
        // SAFETY: none — this is the crash under test (in a child process).
        let v = unsafe { std::ptr::read_volatile(std::ptr::null::<u8>()) };
        println!("unreachable: {v}");
        return;
    }
    let (sig, stdout, stderr) = child("a_fault_outside_any_fiber_still_dies_by_its_own_signal");
    assert!(!stdout.contains("unreachable"), "{stdout}");
    assert!(!stderr.contains("jobsys: stack overflow"), "{stderr}");
    assert!(
        matches!(sig, Some(SIGSEGV | SIGBUS_LINUX | SIGBUS_BSD)),
        "died by {sig:?}, not by the fault's own signal; stderr:\n{stderr}"
    );
}

/// A fault inside a job that is not a stack overflow (a null read on the fiber) is not
/// mistaken for one either.
#[test]
fn a_fault_in_a_job_that_is_not_an_overflow_is_passed_on() {
    if is_child() {
        let jobs = system();
        jobs.run(|_| {
            // SAFETY: none — this is the crash under test (in a child process).
            let v = unsafe { std::ptr::read_volatile(std::ptr::null::<u8>()) };
            println!("unreachable: {v}");
        });
        return;
    }
    let (sig, stdout, stderr) = child("a_fault_in_a_job_that_is_not_an_overflow_is_passed_on");
    assert!(!stdout.contains("unreachable"), "{stdout}");
    assert!(!stderr.contains("jobsys: stack overflow"), "{stderr}");
    assert!(
        matches!(sig, Some(SIGSEGV | SIGBUS_LINUX | SIGBUS_BSD)),
        "died by {sig:?}; stderr:\n{stderr}"
    );
}
