//! Timed waits (`wait_timeout`, `acquire_timeout`, `recv_timeout`, `send_timeout`,
//! `wait_for_counter_timeout`) on fibers and threads, across worker counts: a wait with nothing
//! coming times out (no earlier than its deadline), a wake before the deadline wins, and a
//! timeout racing a wake never loses the wake nor wakes twice (permits, messages and counts are
//! conserved exactly, and a double wake trips the fiber state assertion).

mod common;

use common::{each_worker_count, system};
use jobsys::sync::{Channel, Event, EventKind, RecvTimeoutError, Semaphore, SendTimeoutError};
use jobsys::sync::{ThisThread, WaitGroup};
use jobsys::{Counter, Ctx, JobDecl, job_meta};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(3);
const LONG: Duration = Duration::from_secs(60);

/// What a gate job shares with its test.
struct Gate {
    started: AtomicBool,
    open: Event,
}

impl Gate {
    fn new() -> Self {
        Self {
            started: AtomicBool::new(false),
            open: Event::new(EventKind::Manual),
        }
    }
}

/// A job that waits for the `Gate` at `data` to open.
fn wait_gate(ctx: &Ctx, data: *mut ()) {
    // SAFETY: the declaration points at a `Gate` that outlives the job (the test waits).
    let gate = unsafe { &*(data as *const Gate) };
    gate.started.store(true, Ordering::Release);
    gate.open.wait(ctx);
}

/// A job that spins `data` (a count, not a pointer) rounds.
fn spin(_: &Ctx, data: *mut ()) {
    for _ in 0..data as usize {
        std::hint::spin_loop();
    }
}

fn gate_decl(gate: &Gate) -> JobDecl {
    JobDecl::new(job_meta!("gate"), wait_gate, gate as *const Gate as *mut ())
}

/// Runs `f` and checks it did not return before `timeout` had passed.
fn not_before<R>(timeout: Duration, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let r = f();
    assert!(
        start.elapsed() >= timeout,
        "a timed wait returned before its deadline"
    );
    r
}

#[test]
fn fiber_waits_with_nothing_coming_time_out() {
    each_worker_count(|jobs, n| {
        let manual = Event::new(EventKind::Manual);
        let auto = Event::new(EventKind::Auto);
        let sem = Semaphore::new(0);
        let empty = Channel::<u32>::new(2);
        let full = Channel::new(2);
        full.try_send(1).unwrap();
        full.try_send(2).unwrap();
        let wg = WaitGroup::new();
        wg.add(1);
        let gate = Gate::new();
        let counter = Counter::new();
        let decls = [gate_decl(&gate)];
        jobs.run(|ctx| {
            // Every worker may go to sleep meanwhile: the timer must wake one.
            assert!(
                !not_before(SHORT, || manual.wait_timeout(ctx, SHORT)),
                "{n}"
            );
            assert!(!not_before(SHORT, || auto.wait_timeout(ctx, SHORT)), "{n}");
            assert!(
                !not_before(SHORT, || sem.acquire_timeout(ctx, SHORT)),
                "{n}"
            );
            assert!(!not_before(SHORT, || wg.wait_timeout(ctx, SHORT)), "{n}");
            assert_eq!(
                not_before(SHORT, || empty.recv_timeout(ctx, SHORT)),
                Err(RecvTimeoutError::Timeout)
            );
            assert_eq!(
                not_before(SHORT, || full.send_timeout(ctx, 3, SHORT)),
                Err(SendTimeoutError::Timeout(3))
            );
            // SAFETY: the decls and counter outlive the jobs: we wait for them below.
            unsafe { ctx.run_jobs(&decls, &counter) };
            // Let the gate job start elsewhere: run inline by our wait, it would park this
            // very fiber on the gate that only we open.
            while !gate.started.load(Ordering::Acquire) {
                ctx.yield_now();
            }
            assert!(!not_before(SHORT, || ctx.wait_for_counter_timeout(&counter, 0, SHORT)));
            gate.open.set();
            assert!(ctx.wait_for_counter_timeout(&counter, 0, LONG), "{n}");
            // A deadline already passed does not park at all.
            assert!(!sem.acquire_timeout(ctx, Duration::ZERO));
        });
        assert_eq!(full.len(), 2);
    });
}

#[test]
fn thread_waits_with_nothing_coming_time_out() {
    let jobs = system(2);
    let ev = Event::new(EventKind::Auto);
    let sem = Semaphore::new(0);
    let ch = Channel::<u8>::new(2);
    assert!(!not_before(SHORT, || ev.wait_timeout(&ThisThread, SHORT)));
    assert!(!not_before(SHORT, || sem.acquire_timeout(&ThisThread, SHORT)));
    assert_eq!(
        not_before(SHORT, || ch.recv_timeout(&ThisThread, SHORT)),
        Err(RecvTimeoutError::Timeout)
    );
    let counter = Counter::new();
    let gate = Gate::new();
    let decls = [gate_decl(&gate)];
    let handle = jobs.handle();
    // SAFETY: the decls and counter outlive the job: we wait for it below.
    unsafe { handle.run_jobs(&decls, &counter) };
    assert!(!not_before(SHORT, || handle
        .wait_for_counter_timeout(&counter, 0, SHORT)));
    gate.open.set();
    assert!(handle.wait_for_counter_timeout(&counter, 0, LONG));
}

#[test]
fn a_wake_before_the_deadline_wins() {
    each_worker_count(|jobs, n| {
        let ev = Event::new(EventKind::Auto);
        let sem = Semaphore::new(0);
        let ch = Channel::new(2);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn(|s| assert!(ev.wait_timeout(s, LONG), "{n}"));
                s.spawn(|s| assert!(sem.acquire_timeout(s, LONG), "{n}"));
                s.spawn(|s| assert_eq!(ch.recv_timeout(s, LONG), Ok(7), "{n}"));
                s.spawn(|_| {
                    ev.set();
                    sem.release();
                    ch.try_send(7).unwrap();
                });
            });
        });
        assert!(!ev.is_set(), "{n}: the signal was consumed once");
        assert_eq!(sem.available(), 0, "{n}");
    });
}

/// A little xorshift for jitter (deterministic per seed).
fn jitter(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn a_timeout_racing_a_release_never_loses_the_permit_nor_hands_it_twice() {
    const ROUNDS: usize = 300;
    each_worker_count(|jobs, n| {
        let sem = Semaphore::new(0);
        let acquired = AtomicUsize::new(0);
        let left = AtomicUsize::new(0);
        jobs.run(|ctx| {
            for r in 0..ROUNDS {
                // The releaser is spawned and spins for about as long as the timeout of the
                // wait this fiber parks in meanwhile (an idle worker fires the timer).
                ctx.scope(|s| {
                    s.spawn(|_| {
                        let mut seed = r as u64 * 0x51 + 3;
                        for _ in 0..jitter(&mut seed) % 20_000 {
                            std::hint::spin_loop();
                        }
                        sem.release();
                    });
                    let mut seed = r as u64 * 0x9E37 + 1;
                    let t = Duration::from_micros(jitter(&mut seed) % 200);
                    if sem.acquire_timeout(s, t) {
                        acquired.fetch_add(1, Ordering::Relaxed);
                    }
                });
                // A permit the timed-out waiter did not get is back in the pool: take it, so
                // that the next round starts empty and races again.
                while sem.try_acquire() {
                    left.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        // Every permit released went to its waiter or back to the pool, exactly once.
        assert_eq!(
            acquired.load(Ordering::Relaxed) + left.load(Ordering::Relaxed),
            ROUNDS,
            "{n} workers"
        );
        assert_eq!(sem.available(), 0);
    });
}

#[test]
fn a_timeout_racing_a_send_never_loses_nor_duplicates_a_message() {
    const MESSAGES: usize = 2_000;
    each_worker_count(|jobs, n| {
        let ch = Channel::new(2);
        let seen: Vec<AtomicUsize> = (0..MESSAGES).map(|_| AtomicUsize::new(0)).collect();
        let timeouts = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn(|s| {
                    let mut seed = 77;
                    for i in 0..MESSAGES {
                        if jitter(&mut seed).is_multiple_of(4) {
                            s.yield_now();
                        }
                        ch.send(s, i).unwrap();
                    }
                    ch.close();
                });
                for _ in 0..3 {
                    s.spawn(|s| {
                        loop {
                            match ch.recv_timeout(s, Duration::from_micros(20)) {
                                Ok(i) => {
                                    seen[i].fetch_add(1, Ordering::Relaxed);
                                }
                                Err(RecvTimeoutError::Timeout) => {
                                    timeouts.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(RecvTimeoutError::Closed) => break,
                            }
                        }
                    });
                }
            });
        });
        for (i, c) in seen.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), 1, "{n} workers: message {i}");
        }
    });
}

#[test]
fn a_counter_wait_racing_its_last_job_reports_what_happened() {
    each_worker_count(|jobs, n| {
        jobs.run(|ctx| {
            for round in 0..200u64 {
                let counter = Counter::new();
                let spins = (round * 37) % 3000;
                let decls = [JobDecl::new(
                    job_meta!("spin"),
                    spin,
                    spins as usize as *mut (),
                )];
                // SAFETY: the decls and counter outlive the job: we wait for it below.
                unsafe { ctx.run_jobs(&decls, &counter) };
                let t = Duration::from_micros(round % 30);
                let reached = ctx.wait_for_counter_timeout(&counter, 0, t);
                assert!(!reached || counter.is_done(0), "{n}: true means reached");
                ctx.wait_for_counter(&counter, 0);
            }
        });
    });
}

#[test]
fn threads_and_fibers_time_out_on_one_channel_while_values_flow() {
    each_worker_count(|jobs, n| {
        const EACH: usize = 500;
        let ch = Channel::new(4);
        let got = AtomicUsize::new(0);
        std::thread::scope(|t| {
            // A plain thread receives with timeouts next to the fibers.
            t.spawn(|| {
                loop {
                    match ch.recv_timeout(&ThisThread, Duration::from_micros(50)) {
                        Ok(v) => {
                            got.fetch_add(v, Ordering::Relaxed);
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Closed) => break,
                    }
                }
            });
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|s| {
                            for _ in 0..EACH {
                                while let Err(SendTimeoutError::Timeout(_)) =
                                    ch.send_timeout(s, 1, Duration::from_micros(30))
                                {
                                }
                            }
                        });
                    }
                    s.spawn(|s| {
                        for _ in 0..EACH / 2 {
                            if let Ok(v) = ch.recv_timeout(s, Duration::from_micros(40)) {
                                got.fetch_add(v, Ordering::Relaxed);
                            }
                        }
                    });
                });
                ch.close();
            });
        });
        assert_eq!(got.load(Ordering::Relaxed), 2 * EACH, "{n} workers");
    });
}

/// A fiber whose sleep has ended resumes before the next queued job starts on its worker: a
/// worker fires due timers before it looks at its ready queue and for its next job, also when
/// the fiber that just finished a job looks for the next one itself. One worker, so the order
/// of the log is the worker's.
#[test]
fn a_due_sleep_resumes_before_the_next_queued_job() {
    let jobs = system(1);
    let log = std::sync::Mutex::new(Vec::new());
    jobs.run(|ctx| {
        ctx.scope(|s| {
            let log = &log;
            s.spawn(move |_| log.lock().unwrap().push("next job"));
            s.spawn(move |_| {
                // Starts once the sleeper has parked (one worker, LIFO): its deadline was set
                // before this start, so it has passed once SHORT has elapsed since.
                let start = Instant::now();
                while start.elapsed() <= SHORT {
                    std::hint::spin_loop();
                }
                log.lock().unwrap().push("past the deadline");
            });
            // The newest child: the scope's wait runs it first, and it parks in the sleep.
            s.spawn(move |c| {
                c.sleep(SHORT);
                log.lock().unwrap().push("sleeper");
            });
        });
    });
    assert_eq!(
        log.into_inner().unwrap(),
        ["past the deadline", "sleeper", "next job"]
    );
}
