//! `ChromeTrace` end to end: install it, run jobs that fork, scope, wait and sleep, write the
//! JSON, and check that every worker's track is well formed.
//!
//! The hooks are process-wide, so only `installed_trace_balances_every_worker` installs one;
//! the other tests feed a private trace by calling the hooks directly.

use jobsys::profile::ProfileHooks;
use jobsys::sync::Mutex;
use jobsys::{Affinity, Counter, Ctx, JobDecl, JobSystem, job_meta};
use jobsys_profiling::ChromeTrace;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// The events of `json` on worker `tid`'s track, as lines.
fn track(json: &str, tid: usize) -> Vec<&str> {
    let needle = format!("\"tid\":{tid}");
    json.lines()
        .filter(|l| {
            l.contains(&needle)
                && !l.contains(&format!("{needle}0"))
                && !l.contains(&format!("{needle}1"))
        })
        .collect()
}

fn count(lines: &[&str], ph: &str) -> usize {
    let needle = format!("\"ph\":\"{ph}\"");
    lines.iter().filter(|l| l.contains(&needle)).count()
}

/// Checks the JSON's outer shape and that `"B"`/`"E"` nest on each track; returns the
/// number of slices per worker.
fn check_well_formed(json: &str, workers: usize) -> Vec<usize> {
    assert!(
        json.starts_with("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n"),
        "{}",
        &json[..json.len().min(200)]
    );
    assert!(json.trim_end().ends_with("}}"));
    assert_eq!(
        json.matches('{').count(),
        json.matches('}').count(),
        "unbalanced braces"
    );
    assert_eq!(
        json.matches('[').count(),
        json.matches(']').count(),
        "unbalanced brackets"
    );
    (0..workers)
        .map(|w| {
            let lines = track(json, w);
            let (mut depth, mut slices) = (0usize, 0);
            for line in &lines {
                if line.contains("\"ph\":\"B\"") {
                    depth += 1;
                    slices += 1;
                } else if line.contains("\"ph\":\"E\"") {
                    depth = depth
                        .checked_sub(1)
                        .unwrap_or_else(|| panic!("worker {w}: an E without its B: {line}"));
                }
            }
            assert_eq!(depth, 0, "worker {w}: slices left open");
            assert_eq!(count(&lines, "B"), count(&lines, "E"), "worker {w}");
            assert_eq!(
                count(&lines, "b"),
                count(&lines, "e"),
                "worker {w}: parked spans"
            );
            slices
        })
        .collect()
}

/// The slices of `json`'s track `tid`, checked to nest by name (each `"E"` closes the
/// innermost open `"B"`, of the same name): per `"B"`, its name, category, the categories of
/// the slices it is nested in, and whether it is a part after a switch (`"resumed"`).
fn nested_slices(json: &str, tid: usize) -> Vec<(String, String, Vec<String>, bool)> {
    let field = |line: &str, key: &str| -> String {
        let rest = line.split(&format!("\"{key}\":\"")).nth(1).unwrap_or("");
        // Names here hold no escaped quotes.
        rest.split('"').next().unwrap_or("").to_owned()
    };
    let mut open: Vec<(String, String)> = Vec::new();
    let mut slices = Vec::new();
    for line in track(json, tid) {
        if line.contains("\"ph\":\"B\"") {
            let (name, cat) = (field(line, "name"), field(line, "cat"));
            let outer = open.iter().map(|(_, c)| c.clone()).collect();
            let resumed = line.contains("\"resumed\":true");
            slices.push((name.clone(), cat.clone(), outer, resumed));
            open.push((name, cat));
        } else if line.contains("\"ph\":\"E\"") {
            let (name, _) = open
                .pop()
                .unwrap_or_else(|| panic!("track {tid}: an E without its B: {line}"));
            assert_eq!(
                field(line, "name"),
                name,
                "track {tid}: E closes another slice"
            );
        }
    }
    assert!(open.is_empty(), "track {tid}: left open: {open:?}");
    slices
}

/// Jobs the workload of `installed_trace_balances_every_worker` ran, counted by the workload.
static JOBS: AtomicUsize = AtomicUsize::new(0);

fn fib(ctx: &Ctx, n: u32) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    let (a, b) = ctx.join(
        |c| fib(c, n - 1),
        |c| {
            JOBS.fetch_add(1, Relaxed);
            fib(c, n - 2)
        },
    );
    a + b
}

/// Parked waits of the system's workers so far.
fn parked_waits(ctx: &Ctx) -> u64 {
    (0..ctx.worker_count())
        .map(|w| ctx.worker_stats(w).parked_waits)
        .sum()
}

/// Busy work for about `us` microseconds, so the other worker has time to steal.
fn spin(us: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

/// Entry of a raw job that bumps the `u64` it points to.
///
/// # Safety
/// `data` points to a `u64` only this job touches.
unsafe fn bump(_ctx: &Ctx, data: *mut ()) {
    // SAFETY: caller contract; the test gives each declaration its own cell.
    unsafe { *data.cast::<u64>() += 1 };
}

#[test]
fn installed_trace_balances_every_worker() {
    const WORKERS: usize = 2;
    let trace: &'static ChromeTrace = Box::leak(Box::new(ChromeTrace::new(WORKERS, 1 << 18)));
    assert!(
        trace.install(),
        "hooks were already installed in this process"
    );

    let jobs = JobSystem::builder()
        .workers(WORKERS)
        .build()
        .expect("job system");
    let mut cells = vec![0u64; 256];
    let lock = Mutex::named(0u32, "trace-lock");
    // The root job.
    JOBS.fetch_add(1, Relaxed);
    let fibs = jobs.run(|ctx| {
        let mut fibs = Vec::new();
        for _round in 0..3 {
            // Fork-join: many waits that park.
            fibs.push(fib(ctx, 16));
            // A scope whose jobs open scopes of their own, inside a zone that spans the
            // scope's wait and zones in the jobs.
            let zone = ctx.zone("trace-zone");
            ctx.scope(|s| {
                for _ in 0..32 {
                    s.spawn_with(job_meta!("leaf"), |s| {
                        JOBS.fetch_add(1, Relaxed);
                        let _zone = s.zone("leaf-zone");
                        spin(20);
                        s.scope(|inner| {
                            inner.spawn_with(job_meta!("inner"), |_| {
                                JOBS.fetch_add(1, Relaxed);
                            });
                        });
                    });
                }
            });
            drop(zone);
            // A contended lock: the spawned job finds it held and parks until it is dropped.
            let held = lock.lock(ctx);
            let before = parked_waits(ctx);
            ctx.scope(|s| {
                s.spawn_with(job_meta!("locker"), |s| {
                    JOBS.fetch_add(1, Relaxed);
                    *lock.lock(s) += 1;
                });
                while parked_waits(s) == before {
                    s.yield_now();
                }
                drop(held);
            });
            // A raw batch.
            let decls: Vec<JobDecl> = cells
                .iter_mut()
                .map(|c| JobDecl::new(job_meta!("bump"), bump, std::ptr::from_mut(c).cast()))
                .collect();
            let counter = Counter::new();
            JOBS.fetch_add(decls.len(), Relaxed);
            // SAFETY: `cells`, `decls` and `counter` outlive the wait below; one cell per job.
            unsafe { ctx.run_jobs(&decls, &counter) };
            ctx.wait_for_counter(&counter, 0);
            // A batch pinned to this worker: the wait cannot run it inline, so this job parks,
            // the worker runs the batch on other fibers, and this job resumes — a split slice.
            let pinned: Vec<JobDecl> = cells
                .iter_mut()
                .take(4)
                .map(|c| {
                    JobDecl::new(
                        job_meta!("pinned", affinity(Affinity::Worker(0))),
                        bump,
                        std::ptr::from_mut(c).cast(),
                    )
                })
                .collect();
            JOBS.fetch_add(pinned.len(), Relaxed);
            // SAFETY: as above; the four cells are not in another batch in flight.
            unsafe { ctx.run_jobs(&pinned, &counter) };
            ctx.wait_for_counter(&counter, 0);
            // Let the other worker go to sleep between rounds.
            std::thread::sleep(Duration::from_millis(5));
        }
        fibs
    });
    drop(jobs); // joins the workers: all events are in
    assert!(fibs.iter().all(|&f| f == 987));
    assert_eq!(lock.into_inner(), 3);
    assert!(cells[..4].iter().all(|&c| c == 6) && cells[4..].iter().all(|&c| c == 3));

    let mut out = Vec::new();
    trace.write_json(&mut out).expect("write to a Vec");
    let json = String::from_utf8(out).expect("UTF-8");
    assert_eq!(trace.dropped(), 0, "buffers too small for the test");

    let slices = check_well_formed(&json, WORKERS);
    assert!(slices[0] > 0, "worker 0 ran nothing");
    // A join's second half is a job slice wherever it ran: stolen, or called by the joiner.
    for name in ["join", "leaf", "inner", "bump", "pinned", "run", "locker"]
        .map(|n| format!("\"name\":\"{n}\""))
    {
        assert!(json.contains(&name), "no {name} slice");
    }
    // Exactly one job slice per job run, one zone slice per zone, one lock-wait slice per
    // contended acquisition (not counting their parts after a switch, marked `resumed`); zones
    // and lock waits nested inside a job on their track.
    let (mut job_slices, mut zones, mut leaf_zones, mut lock_waits) = (0, 0, 0, 0);
    for w in 0..WORKERS {
        for (name, cat, outer, resumed) in nested_slices(&json, w) {
            if resumed {
                continue;
            }
            match cat.as_str() {
                "job" => job_slices += 1,
                "zone" | "lock" => {
                    assert!(
                        outer.iter().any(|c| c == "job"),
                        "worker {w}: {cat} {name} outside a job: {outer:?}"
                    );
                    match name.as_str() {
                        "trace-zone" => zones += 1,
                        "leaf-zone" => leaf_zones += 1,
                        "lock wait: trace-lock" => lock_waits += 1,
                        _ => panic!("unexpected {cat} slice {name}"),
                    }
                }
                _ => {}
            }
        }
    }
    assert_eq!(job_slices, JOBS.load(Relaxed), "job slices, jobs run");
    assert_eq!(
        (zones, leaf_zones, lock_waits),
        (3, 3 * 32, 3),
        "trace-zone, leaf-zone, lock-wait slices"
    );
    // The waits for the pinned batches parked the root job: it resumes as a second slice.
    assert!(
        json.contains("\"resumed\":true"),
        "no job was split at a wait"
    );
    assert!(json.contains("\"name\":\"parked\""), "no parked span");
    assert!(json.contains("\"name\":\"sleep\""), "no worker ever slept");
    assert!(json.contains("\"name\":\"thread_name\""));
    println!("{} events, slices per worker {slices:?}", trace.recorded());
}

#[test]
fn a_full_buffer_counts_what_it_drops_and_stays_balanced() {
    let trace = ChromeTrace::new(1, 5);
    let meta = job_meta!("tiny");
    for _ in 0..10 {
        trace.job_begin(0, meta);
        trace.job_end(0, meta);
    }
    trace.sleep_begin(3); // no buffer for worker 3
    assert_eq!(trace.recorded(), 5);
    assert_eq!(trace.dropped(), 15 + 1);

    let mut out = Vec::new();
    trace.write_json(&mut out).unwrap();
    let json = String::from_utf8(out).unwrap();
    // 5 events stored: begin, end, begin, end, begin — the last slice is closed at the end.
    assert_eq!(check_well_formed(&json, 1), vec![3]);
    assert!(json.contains("\"dropped\":16"));
}

#[test]
fn job_slices_split_where_their_fiber_is_switched_out() {
    let trace = ChromeTrace::new(1, 64);
    let (outer, other) = (job_meta!("waits"), job_meta!("other \"quoted\""));
    // Fiber 1 runs `waits`, which parks; fiber 2 runs `other`; fiber 1 comes back.
    trace.fiber_enter(0, 1);
    trace.job_begin(0, outer);
    trace.wait_begin(0);
    trace.fiber_leave(0, 1);
    trace.fiber_enter(0, 2);
    trace.job_begin(0, other);
    trace.job_end(0, other);
    trace.fiber_leave(0, 2);
    trace.sleep_begin(0);
    trace.wake(0);
    trace.sleep_end(0);
    trace.fiber_enter(0, 1);
    trace.wait_end(0);
    trace.job_end(0, outer);
    trace.fiber_leave(0, 1);
    trace.steal(0, 1, 4);

    let mut out = Vec::new();
    trace.write_json(&mut out).unwrap();
    let json = String::from_utf8(out).unwrap();
    check_well_formed(&json, 1);

    let slices: Vec<(&str, &str)> = track(&json, 0)
        .into_iter()
        .filter_map(|l| {
            let ph = ["B", "E"]
                .into_iter()
                .find(|ph| l.contains(&format!("\"ph\":\"{ph}\"")))?;
            let name = l.split("\"name\":\"").nth(1)?.split("\",\"cat\"").next()?;
            Some((ph, name))
        })
        .collect();
    let other = r#"other \"quoted\""#;
    assert_eq!(
        slices,
        [
            ("B", "waits"),
            ("E", "waits"),
            ("B", other),
            ("E", other),
            ("B", "sleep"),
            ("E", "sleep"),
            ("B", "waits"),
            ("E", "waits")
        ]
    );
    assert!(json.contains("\"resumed\":true"));
    assert_eq!(json.matches("\"name\":\"parked\"").count(), 2);
    assert!(json.contains("\"args\":{\"victim\":1,\"count\":4}"));
    assert!(json.contains("\"name\":\"wake\""));
}

#[test]
fn zones_and_lock_waits_nest_in_their_job_and_split_with_it() {
    use jobsys::profile::NO_WORKER;
    let trace = ChromeTrace::new(1, 64);
    let (outer, other) = (job_meta!("outer"), job_meta!("other"));
    // Fiber 1 runs `outer`, opens zone "a", waits for lock "l" (parks), the worker runs
    // `other` with zone "b" on fiber 2, fiber 1 comes back, gets the lock, closes its zone.
    trace.fiber_enter(0, 1);
    trace.job_begin(0, outer);
    trace.zone_begin(0, 1, "a");
    trace.lock_wait_begin(0, "l", 0x10);
    trace.fiber_leave(0, 1);
    trace.fiber_enter(0, 2);
    trace.job_begin(0, other);
    trace.zone_begin(0, 2, "b");
    // A plain thread's lock wait: no track, not recorded, not dropped.
    trace.lock_wait_begin(NO_WORKER, "l", 0x10);
    trace.lock_obtained(NO_WORKER, "l", 0x10);
    trace.zone_end(0, 2, "b");
    trace.job_end(0, other);
    trace.fiber_leave(0, 2);
    trace.fiber_enter(0, 1);
    trace.lock_obtained(0, "l", 0x10);
    trace.lock_released(0, "l", 0x10);
    trace.zone_end(0, 1, "a");
    // A zone whose guard leaked: the job's end closes it.
    trace.zone_begin(0, 1, "leaked");
    trace.job_end(0, outer);
    trace.fiber_leave(0, 1);
    assert_eq!(trace.dropped(), 0);

    let mut out = Vec::new();
    trace.write_json(&mut out).unwrap();
    let json = String::from_utf8(out).unwrap();
    check_well_formed(&json, 1);
    let slices: Vec<(String, Vec<String>, bool)> = nested_slices(&json, 0)
        .into_iter()
        .map(|(name, _, outer, resumed)| (name, outer, resumed))
        .collect();
    let s = |name: &str, outer: &[&str], resumed: bool| {
        (
            name.to_owned(),
            outer.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            resumed,
        )
    };
    assert_eq!(
        slices,
        [
            s("outer", &[], false),
            s("a", &["job"], false),
            s("lock wait: l", &["job", "zone"], false),
            s("other", &[], false),
            s("b", &["job"], false),
            // Fiber 1's slices reopen, outermost first.
            s("outer", &[], true),
            s("a", &["job"], true),
            s("lock wait: l", &["job", "zone"], true),
            s("leaked", &["job"], false),
        ]
    );
    assert!(json.contains("\"cat\":\"zone\""));
    assert!(json.contains("\"cat\":\"lock\""));
}

/// In migration mode (`Builder::allow_migration`) a job that waits may resume on another
/// worker. Its part after the wait, with the zone it holds, belongs on the track of the worker
/// that runs it, and the worker it left must not show it again when its fiber later comes
/// back there with another job.
#[test]
fn a_job_that_migrates_continues_on_its_new_worker_and_not_on_its_old_one() {
    let trace = ChromeTrace::new(2, 64);
    let (moved, next) = (job_meta!("moved"), job_meta!("next"));
    // Worker 0: fiber 5 runs `moved`, opens a zone, waits and parks.
    trace.fiber_enter(0, 5);
    trace.job_begin(0, moved);
    trace.zone_begin(0, 5, "held");
    trace.wait_begin(0);
    trace.fiber_leave(0, 5);
    // Worker 1 resumes fiber 5: the wait ends, the zone and the job end there.
    trace.fiber_enter(1, 5);
    trace.wait_end(1);
    trace.zone_end(1, 5, "held");
    trace.job_end(1, moved);
    trace.fiber_leave(1, 5);
    // Worker 0 later runs `next` on the pooled fiber 5.
    trace.fiber_enter(0, 5);
    trace.job_begin(0, next);
    trace.job_end(0, next);
    trace.fiber_leave(0, 5);

    let mut out = Vec::new();
    trace.write_json(&mut out).unwrap();
    let json = String::from_utf8(out).unwrap();
    check_well_formed(&json, 2);
    let slices = |tid| -> Vec<(String, bool)> {
        nested_slices(&json, tid)
            .into_iter()
            .map(|(name, _, _, resumed)| (name, resumed))
            .collect()
    };
    let s = |name: &str, resumed| (name.to_owned(), resumed);
    assert_eq!(
        slices(0),
        [s("moved", false), s("held", false), s("next", false)],
        "worker 0: `moved` shown again around `next`"
    );
    assert_eq!(
        slices(1),
        [s("moved", true), s("held", true)],
        "worker 1: the part of `moved` it ran"
    );
    // The parked span ends when worker 1 resumed the fiber, on the track it began on.
    let worker0 = track(&json, 0);
    assert_eq!((count(&worker0, "b"), count(&worker0, "e")), (1, 1));
    let ts = |line: &str| -> f64 {
        let ts = line
            .split("\"ts\":")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        ts.parse().unwrap()
    };
    let find =
        |lines: &[&str], needle: &str| ts(lines.iter().find(|l| l.contains(needle)).unwrap());
    let end = find(&worker0, "\"ph\":\"e\"");
    let resumed = find(&track(&json, 1), "\"name\":\"moved\"");
    let next_begin = find(&worker0, "\"name\":\"next\"");
    // Hook order, on one thread: the resume, the wait's end, then `next`.
    assert!(
        resumed <= end && end <= next_begin,
        "the span ends when the fiber resumed: {resumed} <= {end} <= {next_begin}"
    );
}
