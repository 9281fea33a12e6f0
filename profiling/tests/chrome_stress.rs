//! `ChromeTrace` under a workload that misuses zones from safe code: guards dropped out of
//! order and leaked with `mem::forget`, zones held across joins, scopes, `yield_now` and
//! contended locks, a panic inside a zone and inside a join half, deep zone nesting, and jobs
//! submitted by a plain thread through a `Handle` that contend for the same named locks. Two
//! traces are installed (hook sets fan out): one with room for everything, whose job slices
//! must match the jobs run one for one, and a tiny one that fills up, whose JSON must stay
//! valid and balanced all the same. The workload runs twice: on a default system, then on one
//! built with `allow_migration`, where a job that waits may continue on another worker.
//!
//! The hooks are process-wide, so this file has one test.

use jobsys::sync::{Mutex, RwLock, ThisThread};
use jobsys::{Counter, Ctx, JobDecl, JobSystem, job_meta};
use jobsys_profiling::ChromeTrace;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

/// Jobs run, counted by the jobs themselves.
static JOBS: AtomicUsize = AtomicUsize::new(0);

static SHARED: LazyLock<Mutex<u64>> = LazyLock::new(|| Mutex::named(0, "stress-mutex"));
static TABLE: LazyLock<RwLock<u64>> = LazyLock::new(|| RwLock::named(0, "stress-rwlock"));

/// The events of `json` on worker `tid`'s track, as lines.
fn track(json: &str, tid: usize) -> Vec<&str> {
    let needle = format!("\"tid\":{tid},");
    let end = format!("\"tid\":{tid}}}");
    json.lines()
        .filter(|l| l.contains(&needle) || l.contains(&end))
        .collect()
}

/// Checks that `json` is one object whose braces and brackets balance, and that on every
/// track each `"E"` closes the innermost open `"B"` of the same name, zones and lock waits
/// only ever inside a job (`complete`: the trace dropped nothing; a cut-off trace may have
/// lost a fiber's leave from one worker, and so its job, before the fiber went on elsewhere),
/// nothing left open, and parked spans balanced. Returns the job slices that are not a part
/// after a switch (`"resumed"`), all tracks together.
fn check(json: &str, workers: usize, complete: bool) -> usize {
    assert!(json.starts_with("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n"));
    assert!(json.trim_end().ends_with("}}"));
    assert_eq!(json.matches('{').count(), json.matches('}').count());
    assert_eq!(json.matches('[').count(), json.matches(']').count());
    let field = |line: &str, key: &str| -> String {
        let rest = line.split(&format!("\"{key}\":\"")).nth(1).unwrap_or("");
        rest.split('"').next().unwrap_or("").to_owned()
    };
    let mut jobs = 0;
    for tid in 0..workers {
        let mut open: Vec<(String, String)> = Vec::new();
        let (mut parks, mut resumes) = (0, 0);
        for line in track(json, tid) {
            if line.contains("\"ph\":\"B\"") {
                let (name, cat) = (field(line, "name"), field(line, "cat"));
                if complete && (cat == "zone" || cat == "lock") {
                    assert!(
                        open.iter().any(|(_, c)| c == "job"),
                        "track {tid}: {cat} {name} outside a job: {open:?}"
                    );
                }
                if cat == "job" && !line.contains("\"resumed\":true") {
                    jobs += 1;
                }
                open.push((name, cat));
            } else if line.contains("\"ph\":\"E\"") {
                let (name, _) = open
                    .pop()
                    .unwrap_or_else(|| panic!("track {tid}: an E without its B: {line}"));
                assert_eq!(field(line, "name"), name, "track {tid}: E closes another");
            } else if line.contains("\"ph\":\"b\"") {
                parks += 1;
            } else if line.contains("\"ph\":\"e\"") {
                resumes += 1;
            }
        }
        assert!(open.is_empty(), "track {tid}: left open: {open:?}");
        assert_eq!(parks, resumes, "track {tid}: parked spans");
    }
    jobs
}

/// Busy work, so that locks are held for a while.
fn spin(n: u32) {
    for i in 0..n {
        std::hint::black_box(i);
    }
}

/// Fork-join whose zones are dropped out of order, leaked, and held across the join.
fn nest(ctx: &Ctx, depth: u32) -> u64 {
    let outer = ctx.zone("nest-outer");
    let inner = ctx.zone("nest-inner");
    if depth == 0 {
        drop(outer);
        drop(inner);
        return 1;
    }
    // Out of order: "nest-outer" is not the innermost zone.
    drop(outer);
    if depth.is_multiple_of(3) {
        std::mem::forget(ctx.zone("nest-forgotten"));
    }
    let (a, b) = ctx.join(
        |c| nest(c, depth - 1),
        |c| {
            JOBS.fetch_add(1, Relaxed);
            let _half = c.zone("nest-half");
            nest(c, depth - 1)
        },
    );
    drop(inner);
    a + b
}

/// `n` zones deep, then a join at the bottom.
fn deep(ctx: &Ctx, n: u32) -> u32 {
    let _zone = ctx.zone("deep");
    if n == 0 {
        let (a, b) = ctx.join(
            |_| 1,
            |_| {
                JOBS.fetch_add(1, Relaxed);
                1
            },
        );
        return a + b;
    }
    deep(ctx, n - 1)
}

/// Locks the shared mutex and the rwlock inside zones (a raw job: a plain thread's batch).
unsafe fn locker(ctx: &Ctx, _data: *mut ()) {
    JOBS.fetch_add(1, Relaxed);
    let _zone = ctx.zone("locker");
    *SHARED.lock(ctx) += 1;
    let read = TABLE.read(ctx);
    spin(200);
    drop(read);
    *TABLE.write(ctx) += 1;
}

/// Runs the workload on a fresh system of `WORKERS` workers, `migrate`: built with
/// `allow_migration` (a job may resume on another worker after a wait). Returns when the
/// workers are joined: all their events are in.
fn workload(migrate: bool) {
    // Stacks deep enough for 300 nested zones, also under AddressSanitizer.
    let builder = JobSystem::builder()
        .workers(WORKERS)
        .small_fibers(jobsys::Builder::DEFAULT_SMALL_FIBERS, 512 << 10);
    let builder = if migrate {
        // SAFETY: the workload holds nothing tied to its thread across a wait (its zones and
        // jobsys lock guards are not).
        unsafe { builder.allow_migration() }
    } else {
        builder
    };
    let jobs = builder.build().expect("job system");
    let handle = jobs.handle();
    std::thread::scope(|threads| {
        // A plain thread: submits raw jobs through the handle and contends for the same
        // locks (its own lock waits have no track).
        threads.spawn(|| {
            let decls: Vec<JobDecl> = (0..BATCH)
                .map(|_| JobDecl::new(job_meta!("locker"), locker, std::ptr::null_mut()))
                .collect();
            let counter = Counter::new();
            // SAFETY: the declarations carry no data and `counter` outlives the wait below.
            unsafe { handle.run_jobs(&decls, &counter) };
            for _ in 0..BATCH {
                *SHARED.lock(&ThisThread) += 1;
                *TABLE.write(&ThisThread) += 1;
                spin(100);
            }
            handle.wait_for_counter(&counter, 0);
        });
        JOBS.fetch_add(1, Relaxed); // the root job
        jobs.run(|ctx| {
            for _round in 0..3 {
                assert_eq!(nest(ctx, 9), 512);
                assert_eq!(deep(ctx, 300), 2);
                // A zone held across a scope whose jobs lock, yield and leak zones.
                let held = ctx.zone("held-across-scope");
                ctx.scope(|s| {
                    for i in 0..32u32 {
                        s.spawn_with(job_meta!("scoped"), move |s| {
                            JOBS.fetch_add(1, Relaxed);
                            let a = s.zone("scoped-a");
                            let b = s.zone("scoped-b");
                            s.yield_now();
                            drop(a); // out of order
                            if i.is_multiple_of(2) {
                                *SHARED.lock(s) += 1;
                                let _read = TABLE.read(s);
                                spin(300);
                            } else {
                                let mut w = TABLE.write(s);
                                spin(300);
                                *w += 1;
                            }
                            std::mem::forget(s.zone("scoped-forgotten"));
                            drop(b);
                        });
                    }
                });
                drop(held);
                // A panic inside a zone in the first half, then inside the second half.
                let r = catch_unwind(AssertUnwindSafe(|| {
                    ctx.join(
                        |c| {
                            let _zone = c.zone("a-panics");
                            panic!("first half");
                        },
                        |c| {
                            JOBS.fetch_add(1, Relaxed);
                            let _zone = c.zone("b-ok");
                        },
                    )
                }));
                assert!(r.is_err());
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let _zone = ctx.zone("around-join");
                    ctx.join(
                        |_| (),
                        |c| {
                            JOBS.fetch_add(1, Relaxed);
                            let _zone = c.zone("b-panics");
                            std::mem::forget(c.zone("b-forgotten"));
                            panic!("second half");
                        },
                    )
                }));
                assert!(r.is_err());
            }
        });
    });
}

const WORKERS: usize = 4;
const BATCH: usize = 64;

#[test]
fn misused_zones_and_a_full_buffer_leave_every_track_balanced() {
    let big: &'static ChromeTrace = Box::leak(Box::new(ChromeTrace::new(WORKERS, 1 << 18)));
    let tiny: &'static ChromeTrace = Box::leak(Box::new(ChromeTrace::new(WORKERS, 97)));
    assert!(big.install() && tiny.install(), "hooks already installed");

    // The panics below are expected; keep their messages out of the output.
    std::panic::set_hook(Box::new(|_| {}));
    workload(false);
    workload(true);
    let _ = std::panic::take_hook();

    let json = |trace: &ChromeTrace| {
        let mut out = Vec::new();
        trace.write_json(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(big.dropped(), 0, "the big trace had room for everything");
    assert_eq!(
        check(&json(big), WORKERS, true),
        JOBS.load(Relaxed),
        "job slices, jobs run"
    );
    assert!(tiny.dropped() > 0, "the tiny trace filled up");
    check(&json(tiny), WORKERS, false);
    // The SVG of each: one job bar per job slice, nothing left over.
    for trace in [big, tiny] {
        let mut svg = Vec::new();
        trace.write_svg(&mut svg, None).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
