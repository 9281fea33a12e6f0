//! Helpers shared by the integration tests.
#![allow(dead_code)]

use jobsys::JobSystem;

/// The worker counts every behavioural test runs at.
pub(crate) const WORKER_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// A system with `n` workers, no pinning (tests share 2 cores with other processes).
pub(crate) fn system(n: usize) -> JobSystem {
    JobSystem::builder().workers(n).build().expect("build")
}

/// Runs `f` once per worker count with a fresh system. With fault injection on, prints the
/// seed first, so a failing test's output says how to replay it.
pub(crate) fn each_worker_count(mut f: impl FnMut(&JobSystem, usize)) {
    #[cfg(feature = "fault-injection")]
    eprintln!(
        "fault injection: replay with JOBSYS_FAULT_SEED={}",
        jobsys::fault::seed()
    );
    for n in WORKER_COUNTS {
        let jobs = system(n);
        f(&jobs, n);
        assert_eq!(
            jobs.lost_wakeups(),
            0,
            "{n} workers: the sleep watchdog caught a lost wake-up (a jobsys bug)"
        );
    }
}

/// Runs this test binary's `test` in a child process with the variable `env` set, and returns
/// the child's stderr up to the first line containing `stop` (or all of it, if it ends first),
/// then kills the child. The last line says how the child ended.
pub(crate) fn child_stderr(test: &str, env: &str, stop: &str) -> String {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut out = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains(stop) {
            break;
        }
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    out.push_str(&format!("(child ended: {status:?})\n"));
    out
}

/// Runs this test binary's `test` in a child process with the variable `env` set, reading its
/// stderr until it ends; once a line containing `stop` was read, tells the child to go on (a
/// line on its stdin, then the pipe closes: see [`wait_for_parent`]). Returns how the child
/// ended and its whole stderr.
pub(crate) fn child_stderr_released(
    test: &str,
    env: &str,
    stop: &str,
) -> (std::process::ExitStatus, String) {
    use std::io::{BufRead, Write};
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take();
    let mut out = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains(stop) {
            // Dropping the pipe closes it, which ends the child's read as well.
            if let Some(mut pipe) = stdin.take() {
                let _ = pipe.write_all(b"go\n");
            }
        }
    }
    (child.wait().unwrap(), out)
}

/// In the child of [`child_stderr_released`]: returns once the parent has read the line it
/// waited for (or has gone).
pub(crate) fn wait_for_parent() {
    use std::io::Read;
    let _ = std::io::stdin().lock().read(&mut [0u8; 1]);
}

/// In a child process: ends it after `secs` if the test has not (a hang guard, not a timing
/// assertion), saying `what` on stderr.
pub(crate) fn hang_guard(secs: u64, what: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        eprintln!("child: hang guard: {what}");
        std::process::exit(3);
    });
}

/// One level of a chain of jobs of `meta`, each submitting the next and waiting for it.
pub(crate) struct ChainLevel {
    pub(crate) meta: &'static jobsys::JobMeta,
    /// Levels below this one.
    pub(crate) below: usize,
}

/// Runs the chain level `data` points at (a [`ChainLevel`]).
pub(crate) fn chain_level(ctx: &jobsys::Ctx, data: *mut ()) {
    // SAFETY: `data` points at a `ChainLevel` that outlives this job: the parent level's frame,
    // which waits for this job's counter, or one the test keeps alive.
    let level = unsafe { &*(data as *const ChainLevel) };
    if level.below == 0 {
        return;
    }
    let next = ChainLevel {
        meta: level.meta,
        below: level.below - 1,
    };
    let decls = [jobsys::JobDecl::new(
        level.meta,
        chain_level as fn(&jobsys::Ctx, *mut ()),
        std::ptr::from_ref(&next).cast_mut().cast(),
    )];
    let counter = jobsys::Counter::new();
    // SAFETY: `decls`, `next` and `counter` live in this frame until the wait below returns.
    unsafe { ctx.run_jobs(&decls, &counter) };
    ctx.wait_for_counter(&counter, 0);
}

/// A chain of `depth` jobs of `meta` below the calling job.
pub(crate) fn chain(ctx: &jobsys::Ctx, meta: &'static jobsys::JobMeta, depth: usize) {
    let top = ChainLevel { meta, below: depth };
    chain_level(ctx, std::ptr::from_ref(&top).cast_mut().cast());
}

/// The system of the class-run-dry tests: 2 workers, 8 small fibers, 2 large ones, and no
/// `Large` child run inline, so each level of a `Large` chain holds a large fiber.
pub(crate) fn two_large_fibers() -> JobSystem {
    JobSystem::builder()
        .workers(2)
        .small_fibers(8, 64 * 1024)
        .large_fibers(2, 128 * 1024)
        .large_inline_headroom(usize::MAX)
        .build()
        .unwrap()
}
