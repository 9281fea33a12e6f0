//! The `frame-sample` section: the game-frame sample's frame (100,000 entities) on jobsys,
//! rayon and bevy_tasks, at `--workers` threads, in one process.

use crate::session::{LOST_WAKEUPS, Row, Session, progress};
use jobsys_benches::frame_sample::{bevy_frames, bevy_pool, rayon_frames};
use jobsys_samples::frame::{build_system, simulate};
use jobsys_samples::world::{DEFAULT_ENTITIES, World, simulate_sequential};
use std::time::Duration;

/// Frame-time figures of one run: mean and nearest-rank p99 of the frames after warm-up, ms.
#[derive(Clone, Copy)]
struct Run {
    mean: f64,
    p99: f64,
}

impl Run {
    fn of(times: &[Duration]) -> Self {
        let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = ((0.99 * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
        Self {
            mean: ms.iter().sum::<f64>() / ms.len() as f64,
            p99: ms[rank],
        }
    }
}

/// Median and range of one figure over the runs.
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(f64::total_cmp);
        let median = jobsys_benches::median_of_sorted(&v);
        Self {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    fn cell(&self) -> String {
        format!("{:.2} [{:.2}–{:.2}]", self.median, self.min, self.max)
    }
}

/// `frame-sample`: `--runs` rounds, each a fresh world and a fresh pool per system, the three
/// systems one after the other within a round (so slow phases of a busy machine hit all
/// three). Every run's world must match the sequential reference.
pub(crate) fn frame_sample(b: &mut Session) {
    if !b.args.wants("frame-sample") {
        return;
    }
    let (t, runs) = (b.args.workers, b.args.runs);
    let (entities, frames, warmup) = if b.args.quick {
        (20_000, 30, 5)
    } else {
        (DEFAULT_ENTITIES, 60, 10)
    };
    progress("frame-sample: sequential reference");
    let reference = simulate_sequential(entities, frames).checksum();
    let check = |world: &World, who: &str| {
        assert_eq!(
            world.checksum(),
            reference,
            "frame-sample on {who}: the world differs from the sequential reference"
        );
    };
    let warm = warmup as usize;
    let (mut js, mut ry, mut bv) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..runs {
        progress(&format!("frame-sample round {} of {runs}", round + 1));
        let jobs = build_system(Some(t), entities).expect("building the jobsys pool");
        let mut world = World::new(entities);
        let report = simulate(&jobs, &mut world, frames, warmup, || 0);
        LOST_WAKEUPS.fetch_add(jobs.lost_wakeups(), std::sync::atomic::Ordering::Relaxed);
        drop(jobs);
        check(&world, "jobsys");
        js.push(Run::of(&report.frame_times[warm..]));

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("building the rayon pool");
        let mut world = World::new(entities);
        let times = pool.install(|| rayon_frames(&mut world, frames));
        drop(pool);
        check(&world, "rayon");
        ry.push(Run::of(&times[warm..]));

        let pool = bevy_pool(t);
        let mut world = World::new(entities);
        let times = bevy_frames(&pool, &mut world, frames);
        drop(pool);
        check(&world, "bevy_tasks");
        bv.push(Run::of(&times[warm..]));
    }
    type Figure = fn(&Run) -> f64;
    for (what, figure) in [("mean", (|r| r.mean) as Figure), ("p99", |r| r.p99)] {
        let js_spread = Spread::of(js.iter().map(figure));
        for (peer, p) in [("rayon", &ry), ("bevy_tasks", &bv)] {
            // The ratio within each round (both systems saw the same phase of a busy
            // machine), then the median over the rounds.
            let ratios = Spread::of(js.iter().zip(p.iter()).map(|(j, p)| figure(j) / figure(p)));
            b.rows.push(Row {
                workload: format!("frame-sample {what} ms/frame"),
                jobsys: js_spread.cell(),
                peer: format!("{peer} {}", Spread::of(p.iter().map(figure)).cell()),
                ratio: Some(ratios.median),
                target: format!("(per-round ratios {:.2}–{:.2})", ratios.min, ratios.max),
                met: "—".into(),
            });
        }
    }
    b.notes.push(format!(
        "frame-sample: the game-frame sample's world ({entities} entities), {warmup} warm-up + \
         {} timed frames per run, {runs} runs per system (median [min–max] of the runs' mean \
         and p99; the ratio is the median of the per-round ratios, their range in the target column); every run's world matches the sequential reference. Peers: render at the end \
         of its own frame (no frames in flight), assets loaded inline; bevy_tasks sorts \
         sequentially (no parallel sort); bevy's pool has T - 1 threads plus the scope's thread.",
        frames - warmup
    ));
}
