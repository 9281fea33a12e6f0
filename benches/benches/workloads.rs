//! Criterion benches of the `docs/benchmarks.md` workloads at small sizes, jobsys next to rayon.
//!
//! Sizes are cut down so a run stays short (`sample_size(10)`): fib(20), 100k empty jobs,
//! skynet with 100k leaves, parfor over 1M f32, and single W5 frames. The full-size,
//! same-process comparison against the targets is the `compare` binary. Pools use all cores;
//! each system gets one pool for the whole run, and the jobsys benches time inside its root
//! job (`JobSystem::run`), the rayon ones inside `ThreadPool::install`.

use criterion::Criterion;
use jobsys::JobSystem;
use jobsys_benches::{Flags, FrameWork, Parfor, calibrate_k, on_jobsys, on_rayon};
use std::hint::black_box;
use std::time::Duration;

const FIB_N: u64 = 20;
const EMPTY: usize = 100_000;
const SKYNET: u64 = 100_000;
const PARFOR: usize = 1 << 20;

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn jobsys_pool() -> JobSystem {
    JobSystem::builder()
        .workers(workers())
        .build()
        .expect("building the jobsys pool")
}

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers())
        .build()
        .expect("building the rayon pool")
}

fn bench_fib(c: &mut Criterion, jobs: &JobSystem, pool: &rayon::ThreadPool) {
    let mut g = c.benchmark_group("W3_fib20");
    g.bench_function("jobsys_join", |b| {
        jobs.run(|ctx| b.iter(|| assert_eq!(on_jobsys::fib(ctx, black_box(FIB_N)), 6765)));
    });
    g.bench_function("rayon_join", |b| {
        pool.install(|| b.iter(|| assert_eq!(on_rayon::fib(black_box(FIB_N)), 6765)))
    });
    g.finish();
}

fn bench_empty(c: &mut Criterion, jobs: &JobSystem, pool: &rayon::ThreadPool) {
    let flags = Flags::new(EMPTY);
    let mut g = c.benchmark_group("W2_empty100k");
    g.bench_function("jobsys_decl_batch", |b| {
        let batch = on_jobsys::EmptyBatch::new(&flags);
        jobs.run(|ctx| b.iter(|| batch.run(ctx)));
    });
    g.bench_function("jobsys_scope_spawn", |b| {
        jobs.run(|ctx| {
            b.iter(|| {
                flags.clear();
                on_jobsys::empty_spawns(ctx, flags.as_slice());
                flags.check_all_set("jobsys scope spawn");
            })
        });
    });
    g.bench_function("rayon_scope_spawn", |b| {
        pool.install(|| {
            b.iter(|| {
                flags.clear();
                on_rayon::empty_spawns(flags.as_slice());
                flags.check_all_set("rayon scope spawn");
            })
        });
    });
    g.finish();
}

fn bench_skynet(c: &mut Criterion, jobs: &JobSystem, pool: &rayon::ThreadPool) {
    let mut g = c.benchmark_group("W6_skynet100k");
    g.bench_function("jobsys_scope", |b| {
        jobs.run(|ctx| b.iter(|| on_jobsys::skynet_timed(ctx, SKYNET)))
    });
    g.bench_function("rayon_scope", |b| {
        pool.install(|| b.iter(|| on_rayon::skynet_timed(SKYNET)))
    });
    g.finish();
}

fn bench_parfor(c: &mut Criterion, jobs: &JobSystem, pool: &rayon::ThreadPool) {
    let mut data = Parfor::new(PARFOR);
    let mut g = c.benchmark_group("W4_parfor1M");
    g.bench_function("sequential", |b| b.iter(|| data.sequential_pass()));
    g.bench_function("jobsys_scope_chunks", |b| {
        jobs.run(|ctx| b.iter(|| on_jobsys::parfor(ctx, &mut data)))
    });
    g.bench_function("rayon_par_chunks_mut", |b| {
        pool.install(|| b.iter(|| on_rayon::parfor(&mut data)))
    });
    g.finish();
    data.reset();
    on_rayon::parfor(&mut data);
    data.verify_one_pass("W4 bench");
}

fn bench_frame(c: &mut Criterion, jobs: &JobSystem, pool: &rayon::ThreadPool) {
    let work = FrameWork::new(calibrate_k(Duration::from_micros(5)));
    let mut g = c.benchmark_group("W5_frame");
    g.bench_function("jobsys", |b| {
        jobs.run(|ctx| {
            b.iter(|| {
                work.begin_frame();
                on_jobsys::frame(ctx, &work);
                work.end_frame("jobsys frame bench")
            })
        });
    });
    g.bench_function("rayon", |b| {
        pool.install(|| {
            b.iter(|| {
                work.begin_frame();
                on_rayon::frame(&work);
                work.end_frame("rayon frame bench")
            })
        });
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let jobs = jobsys_pool();
    let pool = rayon_pool();
    bench_fib(&mut c, &jobs, &pool);
    bench_empty(&mut c, &jobs, &pool);
    bench_skynet(&mut c, &jobs, &pool);
    bench_parfor(&mut c, &jobs, &pool);
    bench_frame(&mut c, &jobs, &pool);
    c.final_summary();
}
