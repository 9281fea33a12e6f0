//! The workloads on rayon, with the idioms `docs/benchmarks.md` names.
//!
//! Call these inside `ThreadPool::install` of a T-thread pool, so the submitting context is
//! one of the T threads.

use crate::{
    FrameWork, IDLE_JOBS, IdleWork, JOBS_PER_SYSTEM, PARFOR_CHUNK, Parfor, fib_expected,
    parfor_kernel, set_flag, skynet_expected, system,
};
use rayon::prelude::*;
use std::hint::black_box;
use std::sync::atomic::AtomicU8;
use std::time::{Duration, Instant};

/// W3: `fib(n)` with `rayon::join` at every level, no cutoff.
pub fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = rayon::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

/// W3, timed and checked.
pub fn fib_timed(n: u64) -> Duration {
    let t = Instant::now();
    let r = fib(black_box(n));
    let d = t.elapsed();
    assert_eq!(r, fib_expected(n), "rayon fib({n}) returned a wrong result");
    d
}

/// W6: `skynet(num, size)` with a 10-way `rayon::scope` fan-out per level.
pub fn skynet(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / 10;
    let mut sums = [0u64; 10];
    rayon::scope(|s| {
        for (i, slot) in sums.iter_mut().enumerate() {
            s.spawn(move |_| *slot = skynet(num + i as u64 * sub, sub));
        }
    });
    sums.iter().sum()
}

/// W6, timed and checked.
pub fn skynet_timed(size: u64) -> Duration {
    let t = Instant::now();
    let r = skynet(0, black_box(size));
    let d = t.elapsed();
    assert_eq!(
        r,
        skynet_expected(size),
        "rayon skynet(0, {size}) returned a wrong result"
    );
    d
}

/// W2: `rayon::scope` with one `spawn` per flag; each job sets its flag. Returns the time from
/// the first spawn to the return of the scope.
pub fn empty_spawns(flags: &[AtomicU8]) -> Duration {
    let t = Instant::now();
    rayon::scope(|s| {
        for f in flags {
            s.spawn(move |_| set_flag(f));
        }
    });
    t.elapsed()
}

/// W4: one pass with `par_chunks_mut` over 4,096-element chunks.
pub fn parfor(data: &mut Parfor) {
    let Parfor { x, y } = data;
    y.par_chunks_mut(PARFOR_CHUNK)
        .zip(x.par_chunks(PARFOR_CHUNK))
        .for_each(|(yc, xc)| parfor_kernel(xc, yc));
}

/// One W5 system: 64 jobs in a `rayon::scope`.
fn frame_system(work: &FrameWork, s: usize) {
    rayon::scope(|sc| {
        for j in 0..JOBS_PER_SYSTEM {
            sc.spawn(move |_| work.job(s, j));
        }
    });
}

/// W5: one frame of the DAG, one `rayon::scope` per system; B ∥ C through `rayon::join`,
/// E ∥ F ∥ G through a scope (E, F spawned, G on the caller) — the same shape as the jobsys
/// version.
pub fn frame(work: &FrameWork) {
    use system::*;
    frame_system(work, A);
    rayon::join(|| frame_system(work, B), || frame_system(work, C));
    frame_system(work, D);
    rayon::scope(|sc| {
        sc.spawn(|_| frame_system(work, E));
        sc.spawn(|_| frame_system(work, F));
        frame_system(work, G);
    });
    frame_system(work, H);
}

/// Idle CPU: one frame of [`IDLE_JOBS`] `spin(K)` jobs, one `spawn` each in a `rayon::scope`.
pub fn idle_frame(work: &IdleWork) {
    rayon::scope(|s| {
        for j in 0..IDLE_JOBS {
            s.spawn(move |_| work.job(j));
        }
    });
}
