//! The workloads on jobsys.
//!
//! All functions take the [`Ctx`] of the job they run in: call them inside
//! [`JobSystem::run`](jobsys::JobSystem::run).

use crate::{
    FrameWork, IDLE_JOBS, IdleWork, JOBS_PER_SYSTEM, PARFOR_CHUNK, Parfor, fib_expected,
    parfor_kernel, set_flag, skynet_expected, system,
};
use jobsys::{Affinity, Counter, Ctx, JobDecl, JobMeta};
use std::hint::black_box;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// W3: `fib(n)` with [`Ctx::join`] at every level, no cutoff (each `b` side is a stealable job).
pub fn fib(ctx: &Ctx, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = ctx.join(|c| fib(c, n - 1), |c| fib(c, n - 2));
    a + b
}

/// W3, timed and checked: the duration of one `fib(n)`.
pub fn fib_timed(ctx: &Ctx, n: u64) -> Duration {
    let t = Instant::now();
    let r = fib(ctx, black_box(n));
    let d = t.elapsed();
    assert_eq!(
        r,
        fib_expected(n),
        "jobsys fib({n}) returned a wrong result"
    );
    d
}

/// W6: `skynet(num, size)` with a 10-way [`Ctx::scope`] fan-out per level.
pub fn skynet(ctx: &Ctx, num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / 10;
    let mut sums = [0u64; 10];
    ctx.scope(|s| {
        for (i, slot) in sums.iter_mut().enumerate() {
            s.spawn(move |s| *slot = skynet(s, num + i as u64 * sub, sub));
        }
    });
    sums.iter().sum()
}

/// W6, timed and checked: the duration of one `skynet(0, size)`.
pub fn skynet_timed(ctx: &Ctx, size: u64) -> Duration {
    let t = Instant::now();
    let r = skynet(ctx, 0, black_box(size));
    let d = t.elapsed();
    assert_eq!(
        r,
        skynet_expected(size),
        "jobsys skynet(0, {size}) returned a wrong result"
    );
    d
}

/// W2b: one `spawn` per flag inside one scope; each job sets its flag. Returns the time from
/// the first spawn to the return of the scope (its wait).
pub fn empty_spawns(ctx: &Ctx, flags: &[AtomicU8]) -> Duration {
    let t = Instant::now();
    ctx.scope(|s| {
        for f in flags {
            s.spawn(move |_| set_flag(f));
        }
    });
    t.elapsed()
}

static EMPTY_META: JobMeta = JobMeta::new("w2a-empty", file!(), line!());

/// Entry of a W2a declaration: `data` is the job's `&AtomicU8` flag.
fn empty_entry(_: &Ctx, data: *mut ()) {
    // SAFETY: every W2a declaration is built by `EmptyBatch::new` with `data` pointing at one
    // flag of the `Flags` the batch borrows, which outlives the batch (see `EmptyBatch`).
    let flag = unsafe { &*data.cast_const().cast::<AtomicU8>() };
    set_flag(flag);
}

/// W2a: one Naughty-Dog-style batch of declarations, one per flag, each a separately
/// schedulable job whose body sets its flag.
///
/// The declaration array is built once, outside the timed region, and reused by every run
/// (a finished batch may be submitted again); the timed region is `run_jobs` through the
/// return of `wait_for_counter`.
#[derive(Debug)]
pub struct EmptyBatch<'f> {
    decls: Vec<JobDecl>,
    flags: &'f crate::Flags,
}

impl<'f> EmptyBatch<'f> {
    /// One declaration per flag of `flags`.
    pub fn new(flags: &'f crate::Flags) -> Self {
        let decls = flags
            .as_slice()
            .iter()
            .map(|f| {
                JobDecl::new(
                    &EMPTY_META,
                    empty_entry,
                    (f as *const AtomicU8).cast_mut().cast(),
                )
            })
            .collect();
        Self { decls, flags }
    }

    /// Clears the flags, then submits the whole batch on one counter and waits for it; checks
    /// every job ran. Returns the time from submission to the return of the wait.
    pub fn run(&self, ctx: &Ctx) -> Duration {
        self.flags.clear();
        let counter = Counter::new();
        let t = Instant::now();
        // `self.decls` and `counter` outlive the wait below, which returns only once the
        // counter is back at zero; the declarations are in no other batch in flight (a run
        // borrows `self` until its wait returned).
        // SAFETY: so, and as each entry only stores into the flag it was built with, which
        // `self.flags` keeps alive, running each once on any worker is sound.
        unsafe { ctx.run_jobs(&self.decls, &counter) };
        ctx.wait_for_counter(&counter, 0);
        let d = t.elapsed();
        assert!(!counter.is_poisoned(), "a W2a job panicked");
        self.flags.check_all_set("jobsys W2a (decl batch)");
        d
    }
}

/// W4: one pass over the arrays, one scope `spawn` per 4,096-element chunk (the owner runs the
/// chunks it keeps from the LIFO end of its queue: in descending address order).
pub fn parfor(ctx: &Ctx, data: &mut Parfor) {
    let Parfor { x, y } = data;
    ctx.scope(|s| {
        for (yc, xc) in y.chunks_mut(PARFOR_CHUNK).zip(x.chunks(PARFOR_CHUNK)) {
            s.spawn(move |_| parfor_kernel(xc, yc));
        }
    });
}

/// W4 through the parallel loop: `Ctx::par_chunks_mut` over `y` with a grain of one
/// 4,096-element chunk (the adaptive splitter picks the leaves, as rayon's does); each leaf
/// runs the kernel chunk by chunk, as rayon's `par_chunks_mut` leaves do.
pub fn parfor_loop(ctx: &Ctx, data: &mut Parfor) {
    let Parfor { x, y } = data;
    let x = &x[..];
    ctx.par_chunks_mut(y, PARFOR_CHUNK, |_, offset, yc| {
        let xc = &x[offset..offset + yc.len()];
        for (yc, xc) in yc.chunks_mut(PARFOR_CHUNK).zip(xc.chunks(PARFOR_CHUNK)) {
            parfor_kernel(xc, yc);
        }
    });
}

/// One W4 chunk as a raw job sees it.
struct ChunkPtrs {
    x: *const f32,
    y: *mut f32,
    len: usize,
}

static PARFOR_META: JobMeta = JobMeta::new("w4-chunk", file!(), line!());

/// Entry of a W4 declaration: `data` is its `ChunkPtrs`, one or several whole chunks, each run
/// through the same kernel.
fn parfor_entry(_: &Ctx, data: *mut ()) {
    // SAFETY: `parfor_decls` builds each declaration with `data` pointing at one `ChunkPtrs` of
    // its scratch, which it keeps alive and unmoved until the batch's counter is zero; the
    // spans are disjoint pieces of the arrays `parfor_decls` borrows mutably for that time.
    let (x, y) = unsafe {
        let c = &*data.cast_const().cast::<ChunkPtrs>();
        (
            core::slice::from_raw_parts(c.x, c.len),
            core::slice::from_raw_parts_mut(c.y, c.len),
        )
    };
    for (xc, yc) in x.chunks(PARFOR_CHUNK).zip(y.chunks_mut(PARFOR_CHUNK)) {
        parfor_kernel(xc, yc);
    }
}

/// Reusable storage for [`parfor_decls`]: one chunk descriptor and one declaration per chunk
/// (filled anew every pass, allocated only on the first).
#[derive(Default)]
pub struct ParforDecls {
    chunks: Vec<ChunkPtrs>,
    decls: Vec<JobDecl>,
}

impl ParforDecls {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }
}

impl core::fmt::Debug for ParforDecls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ParforDecls")
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// W4: one pass over the arrays as one Naughty-Dog-style batch of declarations of
/// `chunks_per_job` whole chunks each (1: 4,096 jobs; more: as the workload allows, "a job may
/// take several whole chunks"). The batch splits lazily, so each worker walks its ranges in
/// ascending address order. Filling the declarations is part of the pass.
pub fn parfor_decls(
    ctx: &Ctx,
    data: &mut Parfor,
    scratch: &mut ParforDecls,
    chunks_per_job: usize,
) {
    let per_job = chunks_per_job.max(1) * PARFOR_CHUNK;
    let Parfor { x, y } = data;
    scratch.decls.clear();
    scratch.chunks.clear();
    for (yc, xc) in y.chunks_mut(per_job).zip(x.chunks(per_job)) {
        scratch.chunks.push(ChunkPtrs {
            x: xc.as_ptr(),
            y: yc.as_mut_ptr(),
            len: xc.len(),
        });
    }
    for c in &scratch.chunks {
        scratch.decls.push(JobDecl::new(
            &PARFOR_META,
            parfor_entry,
            (c as *const ChunkPtrs).cast_mut().cast(),
        ));
    }
    let counter = Counter::new();
    // `scratch` (declarations and chunk descriptors) and `counter` stay alive and unmoved
    // until the wait below returns; the declarations are in no other batch.
    // SAFETY: so, and as each entry touches only its own span of `data` (borrowed mutably here
    // throughout; the spans are disjoint), running each once on any worker is sound.
    unsafe { ctx.run_jobs(&scratch.decls, &counter) };
    ctx.wait_for_counter(&counter, 0);
    assert!(!counter.is_poisoned(), "a W4 job panicked");
}

/// Chunks per job for the grained W4 variant: 16 jobs per worker (at least one chunk each),
/// the granularity rayon's adaptive splitter reaches for `par_chunks_mut`, fixed up front.
pub fn parfor_chunks_per_job(workers: usize) -> usize {
    (crate::PARFOR_LEN / PARFOR_CHUNK / (16 * workers)).max(1)
}

/// One W5 system: 64 jobs in a scope.
fn frame_system(ctx: &Ctx, work: &FrameWork, s: usize) {
    ctx.scope(|sc| {
        for j in 0..JOBS_PER_SYSTEM {
            sc.spawn(move |_| work.job(s, j));
        }
    });
}

/// W5: one frame of the DAG A → {B, C} → D → {E, F, G} → H, one scope per system; B ∥ C
/// through [`Ctx::join`], E ∥ F ∥ G through a scope (E, F spawned, G on the caller). The
/// frame is marked with [`Ctx::frame`], as an engine would.
pub fn frame(ctx: &Ctx, work: &FrameWork) {
    ctx.frame(|_f| frame_dag(ctx, work));
}

fn frame_dag(ctx: &Ctx, work: &FrameWork) {
    use system::*;
    frame_system(ctx, work, A);
    ctx.join(|c| frame_system(c, work, B), |c| frame_system(c, work, C));
    frame_system(ctx, work, D);
    ctx.scope(|sc| {
        sc.spawn(|c| frame_system(c, work, E));
        sc.spawn(|c| frame_system(c, work, F));
        frame_system(sc, work, G);
    });
    frame_system(ctx, work, H);
}

/// What the W1b signalling job reports back to the waiter.
struct Signal {
    runs: AtomicU64,
    /// Address of a local in the signalling job's frame: tells which stack it ran on.
    stack_addr: AtomicUsize,
}

/// Entry of the W1b signalling job: counts itself and records where its stack is.
fn signal_entry(_: &Ctx, data: *mut ()) {
    // SAFETY: `park_unpark` builds the declaration with `data` pointing at its `Signal`, which
    // lives on its frame until after the wait for this job returned.
    let signal = unsafe { &*data.cast_const().cast::<Signal>() };
    let probe = 0u8;
    signal
        .stack_addr
        .store(black_box(&probe) as *const u8 as usize, Ordering::Relaxed);
    signal
        .runs
        .store(signal.runs.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// A signalling-job frame closer than this below the waiter's frame means it ran nested on the
/// waiter's own fiber (inline, no park). Fiber stacks are separate mappings of >= 64 KiB, so a
/// job on another fiber lies farther away or above.
const INLINE_DISTANCE: usize = 16 * 1024;

/// Result of a W1b sample.
#[derive(Debug, Clone, Copy)]
pub struct ParkSample {
    /// Time for all iterations.
    pub elapsed: Duration,
    /// Iterations in which the signalling job ran nested on the waiter's fiber instead of
    /// after a park (0 when every wait really parked).
    pub inline_runs: u64,
}

/// W1b: `iters` park/unpark round trips through the scheduler, on worker 0 (call it from the
/// closure of [`JobSystem::run`](jobsys::JobSystem::run)).
///
/// Each iteration (one park + one unpark):
/// 1. the waiter (this job, on fiber F0 of worker 0) submits one declaration `D` on counter
///    `C`, pinned to worker 0 (`Affinity::Worker(0)`): pinned jobs go to the worker's pinned inbox,
///    which the waiter's inline-children pass (it pops only its own LIFO ring) never touches
///    and other workers never steal;
/// 2. the waiter calls `wait_for_counter(C, 0)`: `C` is 1, no own child is in the ring, so the
///    fiber really parks (switch F0 → scheduler loop, which publishes the wait node);
/// 3. the scheduler loop takes `D` from the pinned inbox, runs it on a pooled fiber F1
///    (switch → F1); `D`'s completion decrements `C` to 0, which makes F0 ready on worker 0;
/// 4. F1 sees a ready fiber and goes back to the pool (switch → loop), the loop resumes F0
///    (switch → F0) and `wait_for_counter` returns.
///
/// So the time per iteration is one submit + one park + one job start on another fiber + one
/// counter signal + one unpark: four fiber switches, against two for a W1 round trip. Each
/// iteration checks that `D` ran (and reports, through [`ParkSample::inline_runs`], any that
/// ran nested on F0 rather than after a park).
pub fn park_unpark(ctx: &Ctx, iters: u64) -> ParkSample {
    assert_eq!(
        ctx.worker_index(),
        0,
        "park_unpark runs on worker 0 (call it from JobSystem::run's closure)"
    );
    let meta = jobsys::job_meta!("w1b-signal", affinity(Affinity::Worker(0)));
    signal_rounds(ctx, iters, meta)
}

/// `iters` rounds of "submit one signalling declaration with `meta`, then wait for it".
fn signal_rounds(ctx: &Ctx, iters: u64, meta: &'static JobMeta) -> ParkSample {
    let signal = Signal {
        runs: AtomicU64::new(0),
        stack_addr: AtomicUsize::new(0),
    };
    let here = black_box(&signal) as *const Signal as usize;
    let decl = [JobDecl::new(
        meta,
        signal_entry,
        (&signal as *const Signal).cast_mut().cast(),
    )];
    let counter = Counter::new();
    let mut inline_runs = 0;
    let t = Instant::now();
    for _ in 0..iters {
        // `decl`, `signal` and `counter` live in this frame until after the wait below returned
        // (the counter is back at zero); the declaration is in no other batch in flight (the
        // previous iteration's wait returned).
        // SAFETY: so, and the entry only touches `signal`, through atomics: any worker may run it.
        unsafe { ctx.run_jobs(&decl, &counter) };
        ctx.wait_for_counter(&counter, 0);
        let at = signal.stack_addr.load(Ordering::Relaxed);
        if at < here && here - at < INLINE_DISTANCE {
            inline_runs += 1;
        }
    }
    let elapsed = t.elapsed();
    assert!(!counter.is_poisoned(), "the W1b signalling job panicked");
    assert_eq!(
        signal.runs.load(Ordering::Relaxed),
        iters,
        "W1b: the signalling job did not run once per wait"
    );
    ParkSample {
        elapsed,
        inline_runs,
    }
}

/// Idle CPU: one frame of [`IDLE_JOBS`] `spin(K)` jobs, spawned in one scope and waited for.
/// The frame is marked with [`Ctx::frame`]: idle workers spin inside it and sleep between
/// frames.
pub fn idle_frame(ctx: &Ctx, work: &IdleWork) {
    ctx.frame(|_f| {
        ctx.scope(|s| {
            for j in 0..IDLE_JOBS {
                s.spawn(move |_| work.job(j));
            }
        });
    });
}

/// What the wake-latency signalling job shares with its waiter.
struct WakeSignal {
    /// Time origin shared by the signaller and the waiter.
    base: Instant,
    /// How long the signalling job busy-waits before it signals.
    delay: Duration,
    /// When the signalling job finished, ns since `base`: its very last action.
    done_at_ns: AtomicU64,
    runs: AtomicU64,
}

/// Entry of the wake-latency signalling job: busy-waits for the delay, then records the time
/// as its last action and returns; its completion is the counter's last decrement.
fn wake_entry(_: &Ctx, data: *mut ()) {
    // SAFETY: `wake_latency` builds the declaration with `data` pointing at its `WakeSignal`,
    // which lives on its frame until after the wait for this job returned.
    let signal = unsafe { &*data.cast_const().cast::<WakeSignal>() };
    let until = Instant::now() + signal.delay;
    while Instant::now() < until {
        core::hint::spin_loop();
    }
    signal.runs.fetch_add(1, Ordering::Relaxed);
    signal
        .done_at_ns
        .store(signal.base.elapsed().as_nanos() as u64, Ordering::Release);
}

/// Wake latency: `warmup` untimed and then `samples` timed rounds of "submit one job pinned
/// to worker 1, wait for it", on worker 0 (call it from the closure of
/// [`JobSystem::run`](jobsys::JobSystem::run), with at least 2 workers). Returns the samples in
/// ns.
///
/// The signalling job busy-waits for `delay` on worker 1, then stores the time as its last
/// action; the completion that follows is the counter's last decrement, which wakes the
/// waiting fiber on worker 0. A sample is the time from that store to the waiter running again
/// right after `wait_for_counter`. Worker 0 has nothing else to do meanwhile, so `delay`
/// decides what its idle loop is doing when the decrement comes: after milliseconds it
/// sleeps; after microseconds it may still be spinning, for as long as the pool's idle spin
/// rounds ([`Builder::idle_spins`](jobsys::Builder::idle_spins)) last.
pub fn wake_latency(ctx: &Ctx, delay: Duration, warmup: usize, samples: usize) -> Vec<f64> {
    assert_eq!(
        ctx.worker_index(),
        0,
        "wake_latency runs on worker 0 (call it from JobSystem::run's closure)"
    );
    assert!(
        ctx.worker_count() >= 2,
        "wake_latency needs a second worker for the signalling job"
    );
    let meta = jobsys::job_meta!("wake-signal", affinity(Affinity::Worker(1)));
    let signal = WakeSignal {
        base: Instant::now(),
        delay,
        done_at_ns: AtomicU64::new(0),
        runs: AtomicU64::new(0),
    };
    let decl = [JobDecl::new(
        meta,
        wake_entry,
        (&signal as *const WakeSignal).cast_mut().cast(),
    )];
    let counter = Counter::new();
    let mut out = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        // `decl`, `signal` and `counter` live in this frame until after the wait below returned
        // (the counter is back at zero); the declaration is in no other batch in flight (the
        // previous round's wait returned).
        // SAFETY: so, and the entry only touches `signal`, through atomics and shared reads: it
        // may run on worker 1.
        unsafe { ctx.run_jobs(&decl, &counter) };
        ctx.wait_for_counter(&counter, 0);
        let woke = signal.base.elapsed().as_nanos() as u64;
        let done = signal.done_at_ns.load(Ordering::Acquire);
        if i >= warmup {
            out.push(woke.saturating_sub(done) as f64);
        }
    }
    assert!(!counter.is_poisoned(), "the wake signalling job panicked");
    assert_eq!(
        signal.runs.load(Ordering::Relaxed),
        (warmup + samples) as u64,
        "wake: the signalling job did not run once per wait"
    );
    assert_eq!(ctx.worker_index(), 0, "wake: the waiter moved off worker 0");
    out
}

/// Contended lock: `parties` jobs each do their share of `ops` lock + increment + unlock of one
/// `jobsys::sync::Mutex`. Returns the elapsed time; checks the total.
///
/// Contender `i` is pinned to worker `i % workers` (`Affinity::Worker`), so with as many
/// workers as contenders each runs on its own worker and every contended wait is across
/// workers — as the std peer's threads are. Unpinned, both contenders of a 2-worker pool often
/// landed on one worker, ran one after the other and hardly contended.
pub fn contended_lock(ctx: &Ctx, parties: usize, ops: usize) -> std::time::Duration {
    /// One pinned job description per worker index (the pool has at most this many workers).
    static PINNED: std::sync::LazyLock<Vec<JobMeta>> = std::sync::LazyLock::new(|| {
        (0..256)
            .map(|k| JobMeta::new("contended-lock", file!(), line!()).affinity(Affinity::Worker(k)))
            .collect()
    });
    let workers = ctx.worker_count();
    assert!(
        workers <= PINNED.len(),
        "contended_lock: at most 256 workers"
    );
    let m = jobsys::sync::Mutex::new(0usize);
    let each = ops / parties;
    // Built before the clock starts.
    let metas: Vec<&'static JobMeta> = (0..parties).map(|i| &PINNED[i % workers]).collect();
    let t = std::time::Instant::now();
    ctx.scope(|s| {
        for (i, meta) in metas.iter().enumerate() {
            let m = &m;
            s.spawn_with(meta, move |s| {
                assert_eq!(
                    s.worker_index(),
                    i % workers,
                    "contended_lock: a contender moved"
                );
                for _ in 0..each {
                    *m.lock(s) += 1;
                }
            });
        }
    });
    let d = t.elapsed();
    assert_eq!(
        m.into_inner(),
        each * parties,
        "jobsys contended lock lost updates"
    );
    d
}

/// Barrier round trip: `parties` jobs meet at one `jobsys::sync::Barrier` `rounds` times.
pub fn barrier_rounds(ctx: &Ctx, parties: usize, rounds: usize) -> std::time::Duration {
    let b = jobsys::sync::Barrier::new(parties as u32);
    let leaders = AtomicUsize::new(0);
    let t = std::time::Instant::now();
    ctx.scope(|s| {
        for _ in 0..parties {
            s.spawn(|s| {
                for _ in 0..rounds {
                    if b.wait(s).is_leader() {
                        leaders.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let d = t.elapsed();
    assert_eq!(
        leaders.into_inner(),
        rounds,
        "jobsys barrier: one leader per round"
    );
    d
}

/// Channel ping-pong: two jobs bounce a value over two `jobsys::sync::Channel`s `rounds`
/// times. Returns the elapsed time.
pub fn channel_ping_pong(ctx: &Ctx, rounds: usize) -> std::time::Duration {
    let (ping, pong) = (jobsys::sync::Channel::new(1), jobsys::sync::Channel::new(1));
    let t = std::time::Instant::now();
    ctx.scope(|s| {
        s.spawn(|s| {
            for _ in 0..rounds {
                let v: usize = ping.recv(s).expect("ping open");
                pong.send(s, v + 1).expect("pong open");
            }
        });
        let mut v = 0;
        for _ in 0..rounds {
            ping.send(s, v).expect("ping open");
            v = pong.recv(s).expect("pong open");
        }
        assert_eq!(v, rounds, "jobsys ping-pong lost a message");
    });
    t.elapsed()
}

/// `channel_ping_pong` where the responder serves two ping channels with a `select` (the
/// pinger alternates between them): the cost of a select that parks on two wait lists.
pub fn select_ping_pong(ctx: &Ctx, rounds: usize) -> std::time::Duration {
    use jobsys::sync::{Channel, RecvArm, select};
    let (a, b, pong) = (Channel::new(1), Channel::new(1), Channel::new(1));
    let t = std::time::Instant::now();
    ctx.scope(|s| {
        s.spawn(|s| {
            for _ in 0..rounds {
                let mut ra = RecvArm::new(&a);
                let mut rb = RecvArm::new(&b);
                let v: usize = match select(s, &mut [&mut ra, &mut rb]) {
                    0 => ra.take(),
                    _ => rb.take(),
                }
                .expect("the chosen arm holds its value")
                .expect("open");
                pong.send(s, v + 1).expect("pong open");
            }
        });
        let mut v = 0;
        for i in 0..rounds {
            let ping = if i % 2 == 0 { &a } else { &b };
            ping.send(s, v).expect("ping open");
            v = pong.recv(s).expect("pong open");
        }
        assert_eq!(v, rounds, "jobsys select ping-pong lost a message");
    });
    t.elapsed()
}

/// Channel throughput: one job sends `n` values through a channel of `capacity`, another
/// receives and sums them.
pub fn channel_throughput(ctx: &Ctx, n: usize, capacity: usize) -> std::time::Duration {
    let chan = jobsys::sync::Channel::new(capacity);
    let t = std::time::Instant::now();
    let sum = ctx.scope(|s| {
        s.spawn(|s| {
            for i in 0..n {
                chan.send(s, i).expect("open");
            }
            chan.close();
        });
        let mut sum = 0usize;
        while let Ok(v) = chan.recv(s) {
            sum += v;
        }
        sum
    });
    let d = t.elapsed();
    assert_eq!(
        sum,
        n * (n - 1) / 2,
        "jobsys channel lost or duplicated values"
    );
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Flags, fib_expected, skynet_expected};
    use jobsys::JobSystem;

    #[test]
    fn every_w1b_wait_parks() {
        let jobs = JobSystem::builder().workers(1).build().unwrap();
        let s = jobs.run(|ctx| park_unpark(ctx, 1000));
        assert_eq!(s.inline_runs, 0);
    }

    #[test]
    fn the_inline_detector_sees_an_unpinned_signal_run_inline() {
        // Unpinned, the declaration is the waiter's own child at the LIFO end of its ring, so
        // the wait runs it nested on the waiter's fiber: the detector must count every round.
        let jobs = JobSystem::builder().workers(1).build().unwrap();
        let s = jobs.run(|ctx| signal_rounds(ctx, 100, jobsys::job_meta!("w1b-unpinned")));
        assert_eq!(s.inline_runs, 100);
    }

    #[test]
    fn idle_frames_and_wake_latency_check_out() {
        let jobs = JobSystem::builder().workers(2).build().unwrap();
        let work = IdleWork::new(100);
        jobs.run(|ctx| {
            for _ in 0..3 {
                work.begin_frame();
                idle_frame(ctx, &work);
                work.end_frame("test");
            }
            let lat = wake_latency(ctx, Duration::from_micros(50), 2, 20);
            assert_eq!(lat.len(), 20);
        });
    }

    #[test]
    fn small_workloads_check_out() {
        for t in [1, 2] {
            let jobs = JobSystem::builder().workers(t).build().unwrap();
            let flags = Flags::new(10_000);
            let batch = EmptyBatch::new(&flags);
            jobs.run(|ctx| {
                assert_eq!(fib(ctx, 18), fib_expected(18));
                assert_eq!(skynet(ctx, 0, 10_000), skynet_expected(10_000));
                batch.run(ctx);
                flags.clear();
                empty_spawns(ctx, flags.as_slice());
                flags.check_all_set("test");
            });
        }
    }

    #[test]
    fn parfor_loop_makes_one_pass() {
        for t in [1, 2] {
            let jobs = JobSystem::builder().workers(t).build().unwrap();
            // Not a multiple of the chunk: the last leaf is short.
            let mut p = crate::Parfor::new(5 * crate::PARFOR_CHUNK + 123);
            jobs.run(|ctx| parfor_loop(ctx, &mut p));
            p.verify_one_pass("parfor_loop");
        }
    }
}
