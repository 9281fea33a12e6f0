//! The "Beyond throughput" sections: sync primitives, idle CPU and wake latency.

use crate::session::{
    LOST_WAKEUPS, Row, Session, cell, on_jobsys_pool, on_rayon_pool, progress, yes_no,
};
use jobsys::{Builder, Ctx, JobSystem};
use jobsys_benches::{
    IDLE_JOBS, IDLE_PERIOD, IdleStats, IdleWork, Sample, median_p99_us, on_jobsys, on_rayon,
    run_idle_frames, warm_then_time,
};
use std::time::Duration;

/// How long the wake-latency signalling job runs before it signals when the waiter's worker
/// should be asleep: far beyond the idle loop's spin and yield rounds.
const WAKE_ASLEEP_DELAY: Duration = Duration::from_millis(5);
/// The same, when the waiter's worker should still be spinning.
const WAKE_SPINNING_DELAY: Duration = Duration::from_micros(20);
/// Idle spin rounds of the pool for the `spinning` wake case: with the default
/// ([`Builder::DEFAULT_IDLE_SPINS`]) an idle worker has usually left its spin rounds within
/// [`WAKE_SPINNING_DELAY`]; 2^24 rounds last far longer (seconds), and stay far from `u32`
/// overflow.
const WAKE_SPINNING_IDLE_SPINS: u32 = 1 << 24;

/// The sync primitives (lock, barrier, channels, select) against their std peers on OS threads.
pub(crate) fn sync(b: &mut Session) {
    let (t, runs, quick) = (b.args.workers, b.args.runs, b.args.quick);
    if b.args.wants("sync") {
        let (ops, rounds) = if quick {
            (20_000, 2_000)
        } else {
            (200_000, 20_000)
        };
        let parties = t.max(2);
        // One sync workload: time `ours` on a jobsys pool and each peer on OS threads, per
        // `per` operations, and report one row per peer (the first peer's row carries the
        // workload's name; "reported": no pass/fail).
        let mut sync_rows = |workload: String,
                             per: usize,
                             ours: &dyn Fn(&Ctx) -> Duration,
                             peers: &[(&str, &dyn Fn() -> Duration)]| {
            progress(&format!("{workload}: jobsys"));
            let js = Sample::of(&on_jobsys_pool(t, |ctx| warm_then_time(runs, || ours(ctx))))
                .scaled(per as f64);
            for (i, (peer, run)) in peers.iter().enumerate() {
                progress(&format!("{workload}: {peer}"));
                let st = Sample::of(&warm_then_time(runs, run)).scaled(per as f64);
                b.rows.push(Row {
                    workload: if i == 0 {
                        workload.clone()
                    } else {
                        format!("{workload} (second peer)")
                    },
                    jobsys: cell(js, 1),
                    peer: format!("{peer} {}", cell(st, 1)),
                    ratio: Some(js.median / st.median),
                    target: "reported".into(),
                    met: "—".into(),
                });
            }
        };
        sync_rows(
            format!("sync: contended lock, {parties} contenders, ns per lock+unlock"),
            ops,
            &|ctx| on_jobsys::contended_lock(ctx, parties, ops),
            &[(&format!("std::sync::Mutex, {parties} threads"), &|| {
                jobsys_benches::std_contended_lock(parties, ops)
            })],
        );
        sync_rows(
            format!("sync: barrier round trip, {parties} parties, ns per round"),
            rounds,
            &|ctx| on_jobsys::barrier_rounds(ctx, parties, rounds),
            &[(&format!("std::sync::Barrier, {parties} threads"), &|| {
                jobsys_benches::std_barrier_rounds(parties, rounds)
            })],
        );
        let (pings, msgs, cap) = if quick {
            (2_000, 100_000, 1024)
        } else {
            (20_000, 1_000_000, 1024)
        };
        sync_rows(
            "sync: channel ping-pong, ns per round trip".into(),
            pings,
            &|ctx| on_jobsys::channel_ping_pong(ctx, pings),
            &[
                ("crossbeam bounded(1), 2 threads", &|| {
                    jobsys_benches::crossbeam_ping_pong(pings)
                }),
                ("std sync_channel(1), 2 threads", &|| {
                    jobsys_benches::std_ping_pong(pings)
                }),
            ],
        );
        sync_rows(
            "sync: select ping-pong (responder selects over 2 channels), ns per round trip".into(),
            pings,
            &|ctx| on_jobsys::select_ping_pong(ctx, pings),
            &[
                ("crossbeam select! over 2 bounded(1), 2 threads", &|| {
                    jobsys_benches::crossbeam_select_ping_pong(pings)
                }),
                (
                    "std sync_channel(1) ping-pong (no select), 2 threads",
                    &|| jobsys_benches::std_ping_pong(pings),
                ),
            ],
        );
        sync_rows(
            format!("sync: channel throughput (capacity {cap}), ns per message"),
            msgs,
            &|ctx| on_jobsys::channel_throughput(ctx, msgs, cap),
            &[
                (&format!("crossbeam bounded({cap}), 2 threads"), &|| {
                    jobsys_benches::crossbeam_channel_throughput(msgs, cap)
                }),
                (&format!("std sync_channel({cap}), 2 threads"), &|| {
                    jobsys_benches::std_channel_throughput(msgs, cap)
                }),
            ],
        );
        b.notes.push(format!(
            "sync: jobsys = jobs on {t} workers (a contended wait parks the fiber); peers = OS threads. Lock: {parties} contenders share {ops} lock+increment+unlock (jobsys::sync::Mutex with its default barging unlock); jobsys contender i is pinned to worker i mod T (Affinity::Worker), so at T >= 2 each contends from its own worker, across workers, as the std peer's threads do (at T = 1 both share the one worker). Barrier: {parties} parties, {rounds} rounds. Channels: {pings} ping-pong round trips over two capacity-1 channels; {msgs} messages one producer → one consumer. Channel peers: crossbeam-channel's bounded channel (and select!), then std's sync_channel as a second peer."
        ));
    }
}

/// idle: process CPU over job CPU for a light periodic frame, jobsys and rayon.
pub(crate) fn idle(b: &mut Session) {
    let (t, quick) = (b.args.workers, b.args.quick);
    if b.args.wants("idle") {
        let duration = if quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        let k = b.spin_k();
        let work = IdleWork::new(k);
        progress("idle jobsys");
        let js = on_jobsys_pool(t, |ctx| {
            run_idle_frames(&work, duration, "jobsys idle", || {
                on_jobsys::idle_frame(ctx, &work)
            })
        });
        progress("idle rayon");
        let ry = on_rayon_pool(t, || {
            run_idle_frames(&work, duration, "rayon idle", || {
                on_rayon::idle_frame(&work)
            })
        });
        // The metric's floor on this machine: the same jobs, with the same clock reads inside
        // them, run in a loop on the calling thread (no scheduler, no other thread). Each job's
        // two `CLOCK_THREAD_CPUTIME_ID` reads cost process CPU that its own window only half
        // sees; where that read is a system call (virtual machines) the floor is well above 1.
        progress("idle sequential floor");
        let seq = run_idle_frames(&work, duration, "sequential idle", || {
            for j in 0..IDLE_JOBS {
                work.job(j);
            }
        });
        let (jr, rr, sr) = (js.ratio(), ry.ratio(), seq.ratio());
        b.rows.push(Row {
            workload: format!(
                "idle: process CPU / job CPU, {IDLE_JOBS} jobs every {} ms for {:.1} s",
                IDLE_PERIOD.as_millis(),
                duration.as_secs_f64()
            ),
            jobsys: format!("{jr:.2}"),
            peer: format!("rayon {rr:.2}"),
            ratio: Some(jr / rr),
            target: "≤ 1.1".into(),
            met: yes_no(jr <= 1.1),
        });
        b.rows.push(Row {
            workload:
                "idle: the metric's floor, the same jobs in a loop on one thread (no scheduler)"
                    .into(),
            jobsys: format!("jobsys / floor {:.2}", jr / sr),
            peer: format!("floor {sr:.2}, rayon / floor {:.2}", rr / sr),
            ratio: None,
            target: "reported".into(),
            met: "—".into(),
        });
        b.notes.push(format!(
            "idle: K = {k}; all {t} workers; per frame one scope (jobsys) / `rayon::scope` of {IDLE_JOBS} spawns, waited for, then the submitting thread (worker 0 / a rayon worker) sleeps until the next {} ms tick; process CPU from `getrusage(RUSAGE_SELF)` over the timed window, job CPU = each job's `CLOCK_THREAD_CPUTIME_ID` time measured inside it.",
            IDLE_PERIOD.as_millis()
        ));
        b.notes.push(idle_details("jobsys", &js));
        b.notes.push(idle_details("rayon", &ry));
        b.notes.push(idle_details("sequential floor", &seq));
    }
}

/// wake: latency from a counter's last decrement to the waiter running again (jobsys only).
pub(crate) fn wake(b: &mut Session) {
    let (t, quick) = (b.args.workers, b.args.quick);
    if b.args.wants("wake") {
        if t < 2 {
            progress("wake: skipped (needs T ≥ 2)");
            b.notes.push(
                "wake: skipped at T = 1: the signalling job must run on a second worker (pinned to worker 1) while the waiter's worker 0 idles; run with --workers 2 or more.".into(),
            );
        } else {
            let (n_asleep, n_spinning) = if quick { (200, 200) } else { (400, 2000) };
            // (row label, pool's idle spin rounds, signal delay, warm-up rounds, samples)
            let cases = [
                (
                    "asleep",
                    Builder::DEFAULT_IDLE_SPINS,
                    WAKE_ASLEEP_DELAY,
                    5,
                    n_asleep,
                ),
                (
                    "spinning",
                    WAKE_SPINNING_IDLE_SPINS,
                    WAKE_SPINNING_DELAY,
                    50,
                    n_spinning,
                ),
                (
                    "in its default idle loop",
                    Builder::DEFAULT_IDLE_SPINS,
                    WAKE_SPINNING_DELAY,
                    50,
                    n_spinning,
                ),
            ];
            for (name, spins, delay, warmup, n) in cases {
                progress(&format!(
                    "wake latency jobsys (waiter {name}, signal after {delay:?})"
                ));
                let jobs = JobSystem::builder()
                    .workers(t)
                    .idle_spins(spins)
                    .build()
                    .expect("building the jobsys pool");
                let samples = jobs.run(|ctx| on_jobsys::wake_latency(ctx, delay, warmup, n));
                LOST_WAKEUPS.fetch_add(jobs.lost_wakeups(), std::sync::atomic::Ordering::Relaxed);
                let (p50, p99) = median_p99_us(&samples);
                b.rows.push(Row {
                    workload: format!(
                        "wake latency, waiter's worker {name} (signal after {delay:?}, idle spins {spins}; {n} samples), µs"
                    ),
                    jobsys: format!("median {p50:.2}, p99 {p99:.2}"),
                    peer: "—".into(),
                    ratio: None,
                    target: "reported (no target)".into(),
                    met: "—".into(),
                });
            }
            b.notes.push(
                "wake: the waiter (worker 0) submits one job pinned to worker 1 and waits on its counter; the job busy-waits for the delay, stores the time as its last action and returns (its completion is the last decrement); latency = waiter's clock right after `wait_for_counter` returns − that store. See `on_jobsys::wake_latency`.".into(),
            );
            let default_spins = Builder::DEFAULT_IDLE_SPINS;
            b.notes.push(format!(
                "wake: `asleep` uses the default pool and a {WAKE_ASLEEP_DELAY:?} delay, far past the idle loop's spin and yield rounds; `spinning` raises the pool's idle spin rounds to {WAKE_SPINNING_IDLE_SPINS} so worker 0 is certainly still spinning after {WAKE_SPINNING_DELAY:?} (with the default {default_spins} it has usually left the spin rounds by then: the third row shows what the default idle loop gives after that gap)."
            ));
        }
    }
}

fn idle_details(name: &str, s: &IdleStats) -> String {
    let jobs = (s.frames * IDLE_JOBS) as f64;
    format!(
        "idle {name}: {} frames in {:.0} ms; process CPU {:.1} ms (user {:.1}, sys {:.1}: a tick-sampled split) / job CPU {:.1} ms ({:.2} µs per job, its two thread-clock reads included) = {:.2}; frame submit→wait {:.0} µs mean, {:.0} max; {} frames overran the period.",
        s.frames,
        s.wall_ns as f64 / 1e6,
        (s.user_ns + s.sys_ns) as f64 / 1e6,
        s.user_ns as f64 / 1e6,
        s.sys_ns as f64 / 1e6,
        s.job_ns as f64 / 1e6,
        s.job_ns as f64 / 1e3 / jobs,
        s.ratio(),
        s.frame_mean_us,
        s.frame_max_us,
        s.overruns
    )
}
