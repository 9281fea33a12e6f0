//! The throughput workloads W1–W6: one function per section of the table.

use crate::Args;
use crate::session::{Row, Session, cell, on_jobsys_pool, on_rayon_pool, progress, yes_no};
use jobsys_benches::{
    EMPTY_JOBS, Flags, FrameStats, FrameWork, PARFOR_LEN, Parfor, SKYNET_LEAVES, Sample, fib_jobs,
    fib_n_for, on_corosensei, on_jobsys, on_rayon, run_frames, skynet_jobs, timed, warm_then_time,
};

/// W1 (corosensei switch round trip) and W1b (jobsys park/unpark, compared with W1).
pub(crate) fn w1(b: &mut Session) {
    let (runs, quick) = (b.args.runs, b.args.quick);
    if b.args.wants("w1") {
        progress("W1 corosensei switch");
        let per_sample: u64 = if quick { 100_000 } else { 1_000_000 };
        let mut sw = on_corosensei::Switcher::new();
        sw.round_trips(100_000);
        let samples: Vec<f64> = (0..runs)
            .map(|_| sw.round_trips(per_sample).as_nanos() as f64 / per_sample as f64)
            .collect();
        let w1 = Sample::of(&samples);
        b.rows.push(Row {
            workload: "W1 switch: resume+suspend round trip, ns".into(),
            jobsys: "—".into(),
            peer: format!("corosensei {}", cell(w1, 2)),
            ratio: None,
            target: "reference for W1b".into(),
            met: "—".into(),
        });

        if b.args.wants("w1b") {
            progress("W1b jobsys park/unpark");
            let per_sample: u64 = if quick { 20_000 } else { 200_000 };
            let (samples, inline_runs) = on_jobsys_pool(1, |ctx| {
                on_jobsys::park_unpark(ctx, 10_000);
                let mut inline = 0;
                let samples: Vec<f64> = (0..runs)
                    .map(|_| {
                        let s = on_jobsys::park_unpark(ctx, per_sample);
                        inline += s.inline_runs;
                        s.elapsed.as_nanos() as f64 / per_sample as f64
                    })
                    .collect();
                (samples, inline)
            });
            let w1b = Sample::of(&samples);
            let ratio = w1b.median / w1.median;
            let met = if inline_runs > 0 {
                format!("**invalid**: {inline_runs} waits did not park")
            } else {
                yes_no(ratio <= 12.0)
            };
            b.rows.push(Row {
                workload: "W1b park/unpark through the scheduler (1 worker), ns per wait".into(),
                jobsys: cell(w1b, 1),
                peer: format!("W1 corosensei {:.2}", w1.median),
                ratio: Some(ratio),
                target: "≤ 12× W1".into(),
                met,
            });
            b.notes.push(
                "W1b: one pinned signalling job per wait (submit, park, run on another fiber, signal, unpark: 4 fiber switches); see `on_jobsys::park_unpark`.".into(),
            );
        }
    }
}

/// W2a (one batch of `JobDecl`s) and W2b (spawns in one scope), both against rayon scope+spawn,
/// which runs once and serves both rows.
pub(crate) fn w2(b: &mut Session) {
    let (t, runs) = (b.args.workers, b.args.runs);
    let mut rayon_w2: Option<Sample> = None;
    let mut rayon_w2_per_job = |args: &Args| -> Sample {
        if let Some(s) = rayon_w2 {
            return s;
        }
        progress("W2 rayon scope+spawn");
        let flags = Flags::new(EMPTY_JOBS);
        let samples = on_rayon_pool(args.workers, || {
            warm_then_time(args.runs, || {
                flags.clear();
                let d = on_rayon::empty_spawns(flags.as_slice());
                flags.check_all_set("rayon W2 (scope+spawn)");
                d
            })
        });
        let s = Sample::of(&samples).scaled(EMPTY_JOBS as f64);
        rayon_w2 = Some(s);
        s
    };
    if b.args.wants("w2a") {
        progress("W2a jobsys decl batch");
        let flags = Flags::new(EMPTY_JOBS);
        let batch = on_jobsys::EmptyBatch::new(&flags);
        let samples = on_jobsys_pool(t, |ctx| warm_then_time(runs, || batch.run(ctx)));
        let js = Sample::of(&samples).scaled(EMPTY_JOBS as f64);
        let ry = rayon_w2_per_job(&b.args);
        b.rows.push(Row {
            workload: "W2a 1M JobDecls in one batch, ns/job (vs rayon scope+spawn)".into(),
            jobsys: cell(js, 1),
            peer: format!("rayon {}", cell(ry, 1)),
            ratio: Some(js.median / ry.median),
            target: "reported (no target)".into(),
            met: "—".into(),
        });
    }
    if b.args.wants("w2b") {
        progress("W2b jobsys scope+spawn");
        let flags = Flags::new(EMPTY_JOBS);
        let samples = on_jobsys_pool(t, |ctx| {
            warm_then_time(runs, || {
                flags.clear();
                let d = on_jobsys::empty_spawns(ctx, flags.as_slice());
                flags.check_all_set("jobsys W2b (scope+spawn)");
                d
            })
        });
        let js = Sample::of(&samples).scaled(EMPTY_JOBS as f64);
        let ry = rayon_w2_per_job(&b.args);
        let ratio = js.median / ry.median;
        b.rows.push(Row {
            workload: "W2b 1M spawns in one scope, ns/job".into(),
            jobsys: cell(js, 1),
            peer: format!("rayon {}", cell(ry, 1)),
            ratio: Some(ratio),
            target: "≤ 0.5×".into(),
            met: yes_no(ratio <= 0.5),
        });
    }
}

/// W3: fib join, jobsys against `rayon::join`.
pub(crate) fn w3(b: &mut Session) {
    let (t, runs) = (b.args.workers, b.args.runs);
    if b.args.wants("w3") {
        let n = fib_n_for(t);
        progress(&format!("W3 fib({n}) jobsys"));
        let js = Sample::of(&on_jobsys_pool(t, |ctx| {
            warm_then_time(runs, || on_jobsys::fib_timed(ctx, n))
        }))
        .scaled(1e6);
        progress(&format!("W3 fib({n}) rayon"));
        let ry = Sample::of(&on_rayon_pool(t, || {
            warm_then_time(runs, || on_rayon::fib_timed(n))
        }))
        .scaled(1e6);
        let ratio = js.median / ry.median;
        let has_target = t <= 2 || t >= 8;
        b.rows.push(Row {
            workload: format!("W3 fib({n}) join, ms"),
            jobsys: cell(js, 2),
            peer: format!("rayon::join {}", cell(ry, 2)),
            ratio: Some(ratio),
            target: if has_target {
                "≤ 1.5×".into()
            } else {
                "none at T = 3..7".into()
            },
            met: if has_target {
                yes_no(ratio <= 1.5)
            } else {
                "—".into()
            },
        });
        let jobs = fib_jobs(n) as f64;
        b.notes.push(format!(
            "W3: {} jobs; jobsys {:.1} ns/job, rayon {:.1} ns/job (median).",
            fib_jobs(n),
            js.median * 1e6 / jobs,
            ry.median * 1e6 / jobs
        ));
    }
}

/// W4: parfor over 16M f32, three jobsys shapes against rayon and the sequential baseline.
pub(crate) fn w4(b: &mut Session) {
    let (t, quick) = (b.args.workers, b.args.quick);
    if b.args.wants("w4") {
        let passes = if quick { 3 } else { 10 };
        progress("W4 parfor: sequential baseline");
        let mut data = Parfor::new(PARFOR_LEN);
        let seq = parfor_passes(&mut data, passes, "sequential W4", |d| d.sequential_pass());
        progress("W4 parfor jobsys (scope spawn)");
        let js = on_jobsys_pool(t, |ctx| {
            parfor_passes(&mut data, passes, "jobsys W4 spawn", |d| {
                on_jobsys::parfor(ctx, d)
            })
        });
        let grain = on_jobsys::parfor_chunks_per_job(t);
        let decl_batch = |data: &mut Parfor, chunks_per_job: usize, label: &str| {
            progress(&format!("W4 parfor jobsys ({label})"));
            on_jobsys_pool(t, |ctx| {
                let mut scratch = on_jobsys::ParforDecls::new();
                parfor_passes(data, passes, &format!("jobsys W4 {label}"), |d| {
                    on_jobsys::parfor_decls(ctx, d, &mut scratch, chunks_per_job)
                })
            })
        };
        let jd = decl_batch(&mut data, 1, "decl batch");
        let jg = decl_batch(&mut data, grain, "grained decl batch");
        progress("W4 parfor jobsys (par_chunks_mut)");
        let jl = on_jobsys_pool(t, |ctx| {
            parfor_passes(&mut data, passes, "jobsys W4 par_chunks_mut", |d| {
                on_jobsys::parfor_loop(ctx, d)
            })
        });
        progress("W4 parfor rayon");
        let ry = on_rayon_pool(t, || {
            parfor_passes(&mut data, passes, "rayon W4", on_rayon::parfor)
        });
        let pairs = if quick { 6 } else { 40 };
        progress("W4 parfor jobsys par_chunks_mut and rayon, passes interleaved");
        let (il_js, il_ry, il_pair) = w4_interleaved(t, &mut data, pairs);
        let grained = format!("decl batch, {grain} chunks per job");
        for (how, s) in [
            ("Ctx::par_chunks_mut (grain 1 chunk)", jl),
            ("scope spawn per chunk", js),
            ("one decl batch", jd),
            (grained.as_str(), jg),
        ] {
            let ratio = s.median / ry.median;
            b.rows.push(Row {
                workload: format!(
                    "W4 parfor 16M f32, {how}, ms ({passes} passes; sequential {:.2})",
                    seq.median
                ),
                jobsys: format!("{} = {:.2}× seq", cell(s, 2), seq.median / s.median),
                peer: format!(
                    "rayon par_chunks_mut {} = {:.2}× seq",
                    cell(ry, 2),
                    seq.median / ry.median
                ),
                ratio: Some(ratio),
                target: "≤ 1.05×".into(),
                met: yes_no(ratio <= 1.05),
            });
        }
        let ratio = il_js.median / il_ry.median;
        b.rows.push(Row {
            workload: format!(
                "W4 parfor 16M f32, Ctx::par_chunks_mut, passes interleaved with rayon's, ms ({pairs} pairs; sequential {:.2})",
                seq.median
            ),
            jobsys: format!("{} = {:.2}× seq", cell(il_js, 2), seq.median / il_js.median),
            peer: format!(
                "rayon par_chunks_mut {} = {:.2}× seq",
                cell(il_ry, 2),
                seq.median / il_ry.median
            ),
            ratio: Some(ratio),
            target: "≤ 1.05×".into(),
            met: yes_no(ratio <= 1.05),
        });
        b.notes.push(format!(
            "W4 interleaved: both pools alive, one jobsys pass and one rayon pass per pair (alternating which goes first), each timed inside its pool; median of the per-pair ratios {il_pair:.2}×. Noise on a shared machine then hits both systems alike."
        ));
        b.notes.push(
            "W4: scope = one `spawn` per chunk and decls = one batch of 4,096 `JobDecl`s, both 4,096 jobs per pass; grained = one batch of `JobDecl`s of several whole chunks each (16 jobs per worker, as the workload allows), each chunk through the same kernel; par_chunks_mut = `Ctx::par_chunks_mut` with a grain of one chunk (adaptive splitting), each leaf running the kernel chunk by chunk. Declarations are filled inside the pass. `× seq` = speedup, sequential / parallel median.".into(),
        );
    }
}

/// W5: the frame of 512 `spin(K)` jobs, mean and p99 against the work bound and rayon.
pub(crate) fn w5(b: &mut Session) {
    let (t, quick) = (b.args.workers, b.args.quick);
    if b.args.wants("w5") {
        let (warmup, frames) = if quick { (20, 200) } else { (100, 2000) };
        let k = b.spin_k();
        let work = FrameWork::new(k);
        let single = {
            let d = (0..15)
                .map(|i| timed(|| work.job(i % 8, i)).as_nanos())
                .min()
                .unwrap_or(0);
            d as f64 / 1e3
        };
        progress("W5 frame jobsys");
        let js = on_jobsys_pool(t, |ctx| {
            run_frames(&work, t, warmup, frames, "jobsys W5", || {
                on_jobsys::frame(ctx, &work)
            })
        });
        progress("W5 frame rayon");
        let ry = on_rayon_pool(t, || {
            run_frames(&work, t, warmup, frames, "rayon W5", || {
                on_rayon::frame(&work)
            })
        });
        let mb = js.mean_over_bound();
        b.rows.push(Row {
            workload: "W5 frame: mean / work bound".into(),
            jobsys: format!("{mb:.3} (mean {:.0} µs, bound {:.0} µs)", js.mean, js.bound),
            peer: format!(
                "rayon {:.3} (mean {:.0} µs, bound {:.0} µs)",
                ry.mean_over_bound(),
                ry.mean,
                ry.bound
            ),
            ratio: Some(js.mean / ry.mean),
            target: "mean ≤ 1.15× bound".into(),
            met: yes_no(mb <= 1.15),
        });
        let p99_ratio = js.p99 / ry.p99;
        b.rows.push(Row {
            workload: "W5 frame: p99 µs".into(),
            jobsys: format!("{:.0} ({:.3}× bound)", js.p99, js.p99_over_bound()),
            peer: format!("rayon {:.0} ({:.3}× bound)", ry.p99, ry.p99_over_bound()),
            ratio: Some(p99_ratio),
            target: "p99 ≤ rayon's".into(),
            met: yes_no(p99_ratio <= 1.0),
        });
        b.notes.push(format!(
            "W5: K = {k} (spin(K) ≈ {single:.2} µs single-threaded, min of 15); {warmup} warm-up + {frames} timed frames of 512 jobs."
        ));
        b.notes.push(frame_details("jobsys", &js));
        b.notes.push(frame_details("rayon", &ry));
    }
}

/// W6: skynet, jobsys against rayon scope.
pub(crate) fn w6(b: &mut Session) {
    let (t, runs) = (b.args.workers, b.args.runs);
    if b.args.wants("w6") {
        progress("W6 skynet jobsys");
        let js = Sample::of(&on_jobsys_pool(t, |ctx| {
            warm_then_time(runs, || on_jobsys::skynet_timed(ctx, SKYNET_LEAVES))
        }))
        .scaled(1e6);
        progress("W6 skynet rayon");
        let ry = Sample::of(&on_rayon_pool(t, || {
            warm_then_time(runs, || on_rayon::skynet_timed(SKYNET_LEAVES))
        }))
        .scaled(1e6);
        let ratio = js.median / ry.median;
        b.rows.push(Row {
            workload: format!(
                "W6 skynet 1M leaves ({} jobs), ms",
                skynet_jobs(SKYNET_LEAVES)
            ),
            jobsys: cell(js, 2),
            peer: format!("rayon scope {}", cell(ry, 2)),
            ratio: Some(ratio),
            target: "≤ 0.5×".into(),
            met: yes_no(ratio <= 0.5),
        });
    }
}

/// W4 through `Ctx::par_chunks_mut` and through rayon's `par_chunks_mut`, both pools alive,
/// passes alternating (which system goes first alternates too); each pass timed inside its
/// pool. Returns both samples (ms) and the median of the per-pair ratios jobsys / rayon.
fn w4_interleaved(t: usize, data: &mut Parfor, pairs: usize) -> (Sample, Sample, f64) {
    let jobs = jobsys::JobSystem::builder()
        .workers(t)
        .build()
        .expect("building the jobsys pool");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build()
        .expect("building the rayon pool");
    data.reset();
    jobs.run(|ctx| on_jobsys::parfor_loop(ctx, data));
    data.verify_one_pass("jobsys W4 par_chunks_mut (interleaved)");
    data.reset();
    pool.install(|| on_rayon::parfor(data));
    data.verify_one_pass("rayon W4 (interleaved)");
    let (mut js, mut ry) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for i in 0..pairs {
        let ours = |d: &mut Parfor| {
            jobs.run(|ctx| timed(|| on_jobsys::parfor_loop(ctx, d)))
                .as_nanos() as f64
        };
        let theirs =
            |d: &mut Parfor| pool.install(|| timed(|| on_rayon::parfor(d))).as_nanos() as f64;
        if i % 2 == 0 {
            js.push(ours(data));
            ry.push(theirs(data));
        } else {
            ry.push(theirs(data));
            js.push(ours(data));
        }
    }
    crate::session::LOST_WAKEUPS
        .fetch_add(jobs.lost_wakeups(), std::sync::atomic::Ordering::Relaxed);
    let per_pair: Vec<f64> = js.iter().zip(&ry).map(|(a, b)| a / b).collect();
    (
        Sample::of(&js).scaled(1e6),
        Sample::of(&ry).scaled(1e6),
        Sample::of(&per_pair).median,
    )
}

/// Resets `y`, runs one warm-up pass and verifies it element-wise, then times `passes`
/// passes; returns their median/min in ms.
fn parfor_passes(
    data: &mut Parfor,
    passes: usize,
    what: &str,
    mut pass: impl FnMut(&mut Parfor),
) -> Sample {
    data.reset();
    pass(data);
    data.verify_one_pass(what);
    let times: Vec<f64> = (0..passes)
        .map(|_| timed(|| pass(data)).as_nanos() as f64)
        .collect();
    Sample::of(&times).scaled(1e6)
}

fn frame_details(name: &str, s: &FrameStats) -> String {
    format!(
        "W5 {name}: mean {:.0} µs, p50 {:.0}, p99 {:.0}, max {:.0}; bound {:.0} µs; mean/bound {:.3}, p99/bound {:.3}.",
        s.mean,
        s.p50,
        s.p99,
        s.max,
        s.bound,
        s.mean_over_bound(),
        s.p99_over_bound()
    )
}
