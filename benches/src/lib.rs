//! Shared workload code for the benchmarks defined in `docs/benchmarks.md`.
//!
//! The six canonical workloads (W1–W6) are implemented here once per system, so that the
//! `compare` binary and the criterion benches run exactly the same code:
//!
//! - [`on_jobsys`]: jobsys (`Ctx::join`, `Ctx::scope`, raw `JobDecl` batches, park/unpark);
//! - [`on_rayon`]: the rayon idioms the design document names (`rayon::join`, `rayon::scope`,
//!   `par_chunks_mut`);
//! - [`on_corosensei`]: the raw corosensei resume/suspend round trip (W1);
//! - [`frame_sample`]: the game-frame sample's frame (the world and kernels of
//!   `jobsys-samples`) on rayon and on bevy_tasks.
//!
//! This root module holds what the systems share: the `spin` work unit and its calibration,
//! the expected results, the W4 arrays and kernel, the W5 frame bookkeeping and statistics,
//! and the idle-CPU frames of the "Beyond throughput" figures (thread and process CPU clocks).
//! Every workload checks its result and panics on a wrong one.

use std::hint::black_box;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub mod frame_sample;
pub mod on_corosensei;
pub mod on_jobsys;
pub mod on_rayon;

// ---------------------------------------------------------------------------------------------
// spin and its calibration
// ---------------------------------------------------------------------------------------------

/// The W5 work unit: `iters` rounds of an LCG step followed by an xorshift, from `seed | 1`.
///
/// ```text
/// x = seed | 1
/// repeat iters times: x = x * 0x5851F42D4C957F2D + 0x14057B7EF767814F  (wrapping u64)
///                     x ^= x >> 29
/// return x
/// ```
#[inline]
pub fn spin(iters: u64, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x = x
            .wrapping_mul(0x5851_F42D_4C95_7F2D)
            .wrapping_add(0x1405_7B7E_F767_814F);
        x ^= x >> 29;
    }
    x
}

/// Iterations of the calibration run of [`spin`].
pub const CALIBRATION_ITERS: u64 = 200_000;

/// Calibrates `K` so that `spin(K)` takes about `target`: the minimum of 15 timed runs of
/// `spin(200000)`, scaled linearly. Returns at least 1.
pub fn calibrate_k(target: Duration) -> u64 {
    let mut best = Duration::MAX;
    for i in 0..15u64 {
        let t = Instant::now();
        black_box(spin(black_box(CALIBRATION_ITERS), black_box(i)));
        best = best.min(t.elapsed());
    }
    let k =
        (CALIBRATION_ITERS as f64 * target.as_secs_f64() / best.as_secs_f64().max(1e-12)).round();
    (k as u64).max(1)
}

// ---------------------------------------------------------------------------------------------
// Expected results
// ---------------------------------------------------------------------------------------------

/// `fib(n)`, computed iteratively: the value every W3 run must return.
pub fn fib_expected(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

/// Number of jobs (calls) of the recursive `fib(n)` without cutoff: `2 * fib(n + 1) - 1`.
pub fn fib_jobs(n: u64) -> u64 {
    2 * fib_expected(n + 1) - 1
}

/// W3's `n`: fib(30) (2,692,537 jobs), or fib(35) at `T >= 8` as docs/benchmarks.md requires.
pub fn fib_n_for(workers: usize) -> u64 {
    if workers >= 8 { 35 } else { 30 }
}

/// Number of leaves of the W6 tree.
pub const SKYNET_LEAVES: u64 = 1_000_000;

/// The sum every `skynet(0, size)` must return: `0 + 1 + … + (size - 1)`.
pub fn skynet_expected(size: u64) -> u64 {
    size * (size - 1) / 2
}

/// Number of jobs of `skynet(_, size)` with `size` a power of ten: `1 + 10 + … + size`.
pub fn skynet_jobs(size: u64) -> u64 {
    let mut jobs = 0;
    let mut level = 1;
    while level <= size {
        jobs += level;
        level *= 10;
    }
    jobs
}

// ---------------------------------------------------------------------------------------------
// W2: flags the empty jobs set (the result check)
// ---------------------------------------------------------------------------------------------

/// Number of empty jobs in W2.
pub const EMPTY_JOBS: usize = 1_000_000;

/// One byte per empty job; each job's whole body is one relaxed store of 1 into its own byte
/// (a plain `mov` on x86), so the run can check that every job ran.
#[derive(Debug)]
pub struct Flags {
    flags: Box<[AtomicU8]>,
}

impl Flags {
    /// `n` cleared flags, touched.
    pub fn new(n: usize) -> Self {
        Self {
            flags: (0..n).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// The flags, one per job.
    pub fn as_slice(&self) -> &[AtomicU8] {
        &self.flags
    }

    /// Clears every flag (done outside the timed region).
    pub fn clear(&self) {
        for f in self.flags.iter() {
            f.store(0, Ordering::Relaxed);
        }
    }

    /// Panics unless every job set its flag exactly to 1.
    pub fn check_all_set(&self, what: &str) {
        let missing = self
            .flags
            .iter()
            .filter(|f| f.load(Ordering::Relaxed) != 1)
            .count();
        assert_eq!(
            missing,
            0,
            "{what}: {missing} of {} empty jobs did not run",
            self.flags.len()
        );
    }
}

/// The body of an empty job: sets its flag.
#[inline]
pub fn set_flag(flag: &AtomicU8) {
    flag.store(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// W4: parfor
// ---------------------------------------------------------------------------------------------

/// Elements of the W4 arrays.
pub const PARFOR_LEN: usize = 16_777_216;
/// Elements per W4 chunk (4,096 chunks of 4,096).
pub const PARFOR_CHUNK: usize = 4096;

/// The W4 kernel, the same non-inlined function for every chunk and for the sequential
/// baseline: `y[i] = sqrt(x[i]) * 1.0001 + y[i]`.
#[inline(never)]
pub fn parfor_kernel(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "parfor chunk lengths differ");
    for (yi, xi) in y.iter_mut().zip(x) {
        // `y + a` is bit-identical to `a + y` (IEEE addition commutes).
        *yi += xi.sqrt() * 1.0001;
    }
}

/// The W4 arrays: `x[i] = (i % 1000) as f32`, `y[i] = 0`.
#[derive(Debug)]
pub struct Parfor {
    /// Input.
    pub x: Vec<f32>,
    /// Output, accumulated by every pass.
    pub y: Vec<f32>,
}

impl Parfor {
    /// Arrays of `len` elements, both written (touched) before returning.
    pub fn new(len: usize) -> Self {
        let x: Vec<f32> = (0..len).map(|i| (i % 1000) as f32).collect();
        let mut y = vec![0.0f32; len];
        // `vec![0.0; n]` may hand out untouched zero pages: write them.
        y.fill(0.0);
        black_box(&mut y);
        Self { x, y }
    }

    /// Resets `y` to zero (outside the timed region), so the next pass can be verified.
    pub fn reset(&mut self) {
        self.y.fill(0.0);
    }

    /// Panics unless `y` holds exactly the result of one pass from `y = 0`.
    pub fn verify_one_pass(&self, what: &str) {
        for (i, (&y, &x)) in self.y.iter().zip(&self.x).enumerate() {
            let expected = x.sqrt() * 1.0001 + 0.0f32;
            assert!(
                y.to_bits() == expected.to_bits(),
                "{what}: parfor y[{i}] = {y}, expected {expected} after one pass"
            );
        }
    }

    /// One sequential pass of the kernel over the whole array.
    pub fn sequential_pass(&mut self) {
        parfor_kernel(&self.x, &mut self.y);
    }
}

// ---------------------------------------------------------------------------------------------
// W5: the frame
// ---------------------------------------------------------------------------------------------

/// Systems per frame (A..H).
pub const SYSTEMS: usize = 8;
/// Jobs per system.
pub const JOBS_PER_SYSTEM: usize = 64;
/// Index of each system in [`FrameWork`]: A..H.
pub mod system {
    /// System A (no predecessors).
    pub const A: usize = 0;
    /// System B (after A).
    pub const B: usize = 1;
    /// System C (after A).
    pub const C: usize = 2;
    /// System D (after B and C).
    pub const D: usize = 3;
    /// System E (after D).
    pub const E: usize = 4;
    /// System F (after D).
    pub const F: usize = 5;
    /// System G (after D).
    pub const G: usize = 6;
    /// System H (after E, F and G).
    pub const H: usize = 7;
}

/// The jobs of one W5 frame and what they report: each job `j` of system `s` computes
/// `spin(K, s*64 + j)`, discards it through `black_box`, and records its own duration and
/// result in its slot (no slot is shared, so no contention).
#[derive(Debug)]
pub struct FrameWork {
    k: u64,
    durations: Box<[AtomicU64]>,
    results: Box<[AtomicU64]>,
    expected: Box<[u64]>,
}

impl FrameWork {
    /// The frame's jobs with `spin(k)` as work unit; precomputes the expected results.
    pub fn new(k: u64) -> Self {
        let n = SYSTEMS * JOBS_PER_SYSTEM;
        Self {
            k,
            durations: (0..n).map(|_| AtomicU64::new(0)).collect(),
            results: (0..n).map(|_| AtomicU64::new(0)).collect(),
            expected: (0..n as u64).map(|seed| spin(k, seed)).collect(),
        }
    }

    /// The calibrated `K`.
    pub fn k(&self) -> u64 {
        self.k
    }

    /// Job `j` of system `s`: the timed `spin(K, s*64 + j)`.
    #[inline]
    pub fn job(&self, s: usize, j: usize) {
        let idx = s * JOBS_PER_SYSTEM + j;
        let t = Instant::now();
        let r = black_box(spin(black_box(self.k), black_box(idx as u64)));
        let d = t.elapsed().as_nanos() as u64;
        self.durations[idx].store(d.max(1), Ordering::Relaxed);
        self.results[idx].store(r, Ordering::Relaxed);
    }

    /// Clears the slots before a frame (outside the timed region).
    pub fn begin_frame(&self) {
        for (d, r) in self.durations.iter().zip(self.results.iter()) {
            d.store(0, Ordering::Relaxed);
            r.store(0, Ordering::Relaxed);
        }
    }

    /// After a frame: panics unless every job ran with the right result; returns the summed
    /// job durations in ns.
    pub fn end_frame(&self, what: &str) -> u64 {
        let mut sum = 0u64;
        for (i, ((d, r), e)) in self
            .durations
            .iter()
            .zip(self.results.iter())
            .zip(self.expected.iter())
            .enumerate()
        {
            let d = d.load(Ordering::Relaxed);
            assert!(d != 0, "{what}: frame job {i} did not run");
            assert_eq!(
                r.load(Ordering::Relaxed),
                *e,
                "{what}: frame job {i} returned a wrong result"
            );
            sum += d;
        }
        sum
    }
}

/// Runs `warmup` untimed and then `frames` timed frames; each frame is `frame()` timed in the
/// submitting context, bracketed by [`FrameWork::begin_frame`] / [`FrameWork::end_frame`].
/// `workers` is T, for the work bound.
pub fn run_frames(
    work: &FrameWork,
    workers: usize,
    warmup: usize,
    frames: usize,
    what: &str,
    mut frame: impl FnMut(),
) -> FrameStats {
    for _ in 0..warmup {
        work.begin_frame();
        frame();
        work.end_frame(what);
    }
    let mut times = Vec::with_capacity(frames);
    let mut bounds = Vec::with_capacity(frames);
    for _ in 0..frames {
        work.begin_frame();
        let t = Instant::now();
        frame();
        times.push(t.elapsed().as_nanos() as f64);
        bounds.push(work.end_frame(what) as f64 / workers as f64);
    }
    FrameStats::from_samples(&times, &bounds)
}

/// W5 statistics, all in µs.
#[derive(Debug, Clone, Copy)]
pub struct FrameStats {
    /// Mean frame time.
    pub mean: f64,
    /// Median frame time (nearest rank).
    pub p50: f64,
    /// 99th percentile frame time (nearest rank).
    pub p99: f64,
    /// Longest frame.
    pub max: f64,
    /// Mean work bound: (sum of the job durations measured in the frame) / T, averaged.
    pub bound: f64,
}

impl FrameStats {
    /// Statistics of frame times and per-frame bounds, both in ns.
    pub fn from_samples(frame_ns: &[f64], bound_ns: &[f64]) -> Self {
        let mut sorted = frame_ns.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        let bound = bound_ns.iter().sum::<f64>() / bound_ns.len() as f64;
        Self {
            mean: mean / 1e3,
            p50: nearest_rank(&sorted, 0.50) / 1e3,
            p99: nearest_rank(&sorted, 0.99) / 1e3,
            max: sorted.last().copied().unwrap_or(f64::NAN) / 1e3,
            bound: bound / 1e3,
        }
    }

    /// Mean frame time over the work bound.
    pub fn mean_over_bound(&self) -> f64 {
        self.mean / self.bound
    }

    /// p99 frame time over the work bound.
    pub fn p99_over_bound(&self) -> f64 {
        self.p99 / self.bound
    }
}

/// Nearest-rank percentile of an ascending, non-empty slice (`p` in 0..=1).
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------------
// Beyond throughput: idle CPU
// ---------------------------------------------------------------------------------------------

/// Jobs per frame of the idle-CPU workload.
pub const IDLE_JOBS: usize = 200;
/// The idle-CPU workload submits one frame per period.
pub const IDLE_PERIOD: Duration = Duration::from_millis(16);

/// CPU time consumed so far by the calling OS thread, in ns
/// (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call, and
    // `CLOCK_THREAD_CPUTIME_ID` is a clock id every supported (Linux/unix) target knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time consumed so far by the whole process, all threads, in ns.
#[derive(Debug, Clone, Copy)]
pub struct ProcessCpu {
    /// User time.
    pub user_ns: u64,
    /// System time.
    pub sys_ns: u64,
}

impl ProcessCpu {
    /// `getrusage(RUSAGE_SELF)` now.
    pub fn now() -> Self {
        // SAFETY: `rusage` is a plain C struct of integers (and padding), for which all-zero
        // bytes are a valid value.
        let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable `rusage` for the duration of the call.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) failed");
        let ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
        Self {
            user_ns: ns(ru.ru_utime),
            sys_ns: ns(ru.ru_stime),
        }
    }
}

/// The jobs of one idle-CPU frame: job `j` computes `spin(K, j)` and adds its own thread CPU
/// time (measured inside the job) and its result to shared sums, so the frame can be checked
/// and the process CPU compared with the CPU the jobs themselves used.
#[derive(Debug)]
pub struct IdleWork {
    k: u64,
    job_cpu_ns: AtomicU64,
    result_sum: AtomicU64,
    runs: AtomicU64,
    expected_sum: u64,
}

impl IdleWork {
    /// The frame's jobs with `spin(k)` as work unit; precomputes the expected result sum.
    pub fn new(k: u64) -> Self {
        Self {
            k,
            job_cpu_ns: AtomicU64::new(0),
            result_sum: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            expected_sum: (0..IDLE_JOBS as u64).fold(0u64, |a, j| a.wrapping_add(spin(k, j))),
        }
    }

    /// The calibrated `K`.
    pub fn k(&self) -> u64 {
        self.k
    }

    /// Job `j` of the frame: `spin(K, j)`, timed with the thread CPU clock.
    #[inline]
    pub fn job(&self, j: usize) {
        let t0 = thread_cpu_ns();
        let r = black_box(spin(black_box(self.k), black_box(j as u64)));
        let t1 = thread_cpu_ns();
        self.job_cpu_ns
            .fetch_add(t1.saturating_sub(t0), Ordering::Relaxed);
        self.result_sum.fetch_add(r, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Clears the sums before a frame.
    pub fn begin_frame(&self) {
        self.job_cpu_ns.store(0, Ordering::Relaxed);
        self.result_sum.store(0, Ordering::Relaxed);
        self.runs.store(0, Ordering::Relaxed);
    }

    /// After a frame (its wait returned): panics unless every job ran once with the right
    /// result; returns the summed job CPU time in ns.
    pub fn end_frame(&self, what: &str) -> u64 {
        let runs = self.runs.load(Ordering::Relaxed);
        assert_eq!(
            runs, IDLE_JOBS as u64,
            "{what}: {runs} idle-frame jobs ran, expected {IDLE_JOBS}"
        );
        assert_eq!(
            self.result_sum.load(Ordering::Relaxed),
            self.expected_sum,
            "{what}: idle-frame jobs returned wrong results"
        );
        self.job_cpu_ns.load(Ordering::Relaxed)
    }
}

/// What an idle-CPU run measured.
#[derive(Debug, Clone, Copy)]
pub struct IdleStats {
    /// Timed frames.
    pub frames: usize,
    /// Wall time of the timed window (`frames` periods), ns.
    pub wall_ns: u64,
    /// Process user CPU over the window, ns.
    pub user_ns: u64,
    /// Process system CPU over the window, ns.
    pub sys_ns: u64,
    /// Summed job CPU over the window (each job's thread CPU time measured inside it), ns.
    pub job_ns: u64,
    /// Mean time from submitting a frame to the return of its wait, µs.
    pub frame_mean_us: f64,
    /// Longest such time, µs.
    pub frame_max_us: f64,
    /// Frames that did not finish within their period (no sleep followed them).
    pub overruns: usize,
}

impl IdleStats {
    /// Process CPU (user + sys) over summed job CPU: 1.0 means no CPU spent beyond the jobs.
    pub fn ratio(&self) -> f64 {
        (self.user_ns + self.sys_ns) as f64 / self.job_ns as f64
    }
}

/// Runs frames for `duration` (at least one), one every [`IDLE_PERIOD`]: each frame is
/// `frame()` (submit [`IDLE_JOBS`] jobs of `work` and wait for them), then the calling thread
/// sleeps until the next 16 ms tick. One untimed warm-up frame comes first. Process CPU
/// (`getrusage`) is read at the start of the first timed frame and at the end of the last
/// period, so idle time after every frame is inside the window.
pub fn run_idle_frames(
    work: &IdleWork,
    duration: Duration,
    what: &str,
    mut frame: impl FnMut(),
) -> IdleStats {
    let frames = ((duration.as_nanos() / IDLE_PERIOD.as_nanos()) as usize).max(1);
    work.begin_frame();
    frame();
    work.end_frame(what);
    std::thread::sleep(IDLE_PERIOD);

    let mut busy = Vec::with_capacity(frames);
    let mut job_ns = 0u64;
    let mut overruns = 0;
    let cpu0 = ProcessCpu::now();
    let start = Instant::now();
    for i in 0..frames {
        work.begin_frame();
        let t = Instant::now();
        frame();
        busy.push(t.elapsed().as_nanos() as f64);
        job_ns += work.end_frame(what);
        let next = start + IDLE_PERIOD * (i as u32 + 1);
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        } else {
            overruns += 1;
        }
    }
    let wall_ns = start.elapsed().as_nanos() as u64;
    let cpu1 = ProcessCpu::now();
    IdleStats {
        frames,
        wall_ns,
        user_ns: cpu1.user_ns - cpu0.user_ns,
        sys_ns: cpu1.sys_ns - cpu0.sys_ns,
        job_ns,
        frame_mean_us: busy.iter().sum::<f64>() / busy.len() as f64 / 1e3,
        frame_max_us: busy.iter().copied().fold(0.0, f64::max) / 1e3,
        overruns,
    }
}

/// Median and 99th percentile (nearest rank) of latency samples in ns, returned in µs.
pub fn median_p99_us(samples_ns: &[f64]) -> (f64, f64) {
    let mut v = samples_ns.to_vec();
    v.sort_by(f64::total_cmp);
    (nearest_rank(&v, 0.50) / 1e3, nearest_rank(&v, 0.99) / 1e3)
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

/// Median and minimum of a set of timed runs, in ns.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Fastest run.
    pub min: f64,
}

/// The median of `v`, sorted ascending (the mean of the two middle values for an even count);
/// panics if empty.
pub fn median_of_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Sample {
    /// Median and min of `values` (ns); panics if empty.
    pub fn of(values: &[f64]) -> Self {
        assert!(!values.is_empty(), "no timed runs");
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let median = median_of_sorted(&v);
        Self { median, min: v[0] }
    }

    /// Both values divided by `d` (e.g. per job, or ns to ms).
    pub fn scaled(self, d: f64) -> Self {
        Self {
            median: self.median / d,
            min: self.min / d,
        }
    }
}

/// One untimed warm-up call of `f`, then `runs` timed calls; `f` returns the time it measured
/// itself. Returns the timed durations in ns.
pub fn warm_then_time(runs: usize, mut f: impl FnMut() -> Duration) -> Vec<f64> {
    f();
    (0..runs).map(|_| f().as_nanos() as f64).collect()
}

/// Times `f` with a monotonic clock.
#[inline]
pub fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// The std peer of `on_jobsys::contended_lock`: `parties` OS threads share `ops`
/// lock + increment + unlock of one `std::sync::Mutex`.
pub fn std_contended_lock(parties: usize, ops: usize) -> Duration {
    let m = std::sync::Mutex::new(0usize);
    let each = ops / parties;
    let start = std::sync::Barrier::new(parties + 1);
    let d = std::thread::scope(|s| {
        for _ in 0..parties {
            s.spawn(|| {
                start.wait();
                for _ in 0..each {
                    *m.lock().unwrap() += 1;
                }
            });
        }
        // Start the clock before releasing the threads (after would miss work done while
        // this thread was descheduled); the scope joins them before returning.
        let t = Instant::now();
        start.wait();
        t
    });
    let elapsed = d.elapsed();
    assert_eq!(
        *m.lock().unwrap(),
        each * parties,
        "std contended lock lost updates"
    );
    elapsed
}

/// The std peer of `on_jobsys::barrier_rounds`: `parties` OS threads meet at one
/// `std::sync::Barrier` `rounds` times.
pub fn std_barrier_rounds(parties: usize, rounds: usize) -> Duration {
    let b = std::sync::Barrier::new(parties);
    let leaders = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..parties {
            s.spawn(|| {
                for _ in 0..rounds {
                    if b.wait().is_leader() {
                        leaders.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let d = t.elapsed();
    assert_eq!(
        leaders.into_inner(),
        rounds,
        "std barrier: one leader per round"
    );
    d
}

/// A bounded channel of `usize` between two OS threads: the peers' side of the channel
/// workloads (std's `sync_channel` and crossbeam's `bounded`).
trait PeerChannel {
    type Tx: Send;
    type Rx: Send;
    const NAME: &'static str;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx);
    fn send(tx: &Self::Tx, v: usize);
    /// `None` once every sender is gone and the channel is empty.
    fn recv(rx: &Self::Rx) -> Option<usize>;
}

struct StdChannel;

impl PeerChannel for StdChannel {
    type Tx = std::sync::mpsc::SyncSender<usize>;
    type Rx = std::sync::mpsc::Receiver<usize>;
    const NAME: &'static str = "std";
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        std::sync::mpsc::sync_channel(capacity)
    }
    fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).expect("open");
    }
    fn recv(rx: &Self::Rx) -> Option<usize> {
        rx.recv().ok()
    }
}

struct CrossbeamChannel;

impl PeerChannel for CrossbeamChannel {
    type Tx = crossbeam_channel::Sender<usize>;
    type Rx = crossbeam_channel::Receiver<usize>;
    const NAME: &'static str = "crossbeam";
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(capacity)
    }
    fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).expect("open");
    }
    fn recv(rx: &Self::Rx) -> Option<usize> {
        rx.recv().ok()
    }
}

/// Two threads, two capacity-1 channels of `C`: `rounds` round trips.
fn thread_ping_pong<C: PeerChannel>(rounds: usize) -> Duration {
    let (ping_tx, ping_rx) = C::bounded(1);
    let (pong_tx, pong_rx) = C::bounded(1);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..rounds {
                let v = C::recv(&ping_rx).expect("ping open");
                C::send(&pong_tx, v + 1);
            }
        });
        let mut v = 0;
        for _ in 0..rounds {
            C::send(&ping_tx, v);
            v = C::recv(&pong_rx).expect("pong open");
        }
        assert_eq!(v, rounds, "{} ping-pong lost a message", C::NAME);
    });
    t.elapsed()
}

/// A producer thread and this thread over one channel of `C` with `capacity`: `n` messages.
fn thread_channel_throughput<C: PeerChannel>(n: usize, capacity: usize) -> Duration {
    let (tx, rx) = C::bounded(capacity);
    let t = Instant::now();
    let sum = std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..n {
                C::send(&tx, i);
            }
        });
        core::iter::from_fn(|| C::recv(&rx)).sum::<usize>()
    });
    let d = t.elapsed();
    assert_eq!(
        sum,
        n * (n - 1) / 2,
        "{} channel lost or duplicated values",
        C::NAME
    );
    d
}

/// The std peer of `on_jobsys::channel_ping_pong`: two threads, two `sync_channel(1)`s.
pub fn std_ping_pong(rounds: usize) -> Duration {
    thread_ping_pong::<StdChannel>(rounds)
}

/// The std peer of `on_jobsys::channel_throughput`: a producer thread and this thread over
/// `sync_channel(capacity)`.
pub fn std_channel_throughput(n: usize, capacity: usize) -> Duration {
    thread_channel_throughput::<StdChannel>(n, capacity)
}

/// The crossbeam peer of `on_jobsys::channel_ping_pong`: two threads, two
/// `crossbeam_channel::bounded(1)`s.
pub fn crossbeam_ping_pong(rounds: usize) -> Duration {
    thread_ping_pong::<CrossbeamChannel>(rounds)
}

/// The crossbeam peer of `on_jobsys::select_ping_pong`: the responder thread serves two
/// `bounded(1)` ping channels with `crossbeam_channel::select!`; the pinger alternates.
pub fn crossbeam_select_ping_pong(rounds: usize) -> Duration {
    let (a_tx, a_rx) = crossbeam_channel::bounded::<usize>(1);
    let (b_tx, b_rx) = crossbeam_channel::bounded::<usize>(1);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<usize>(1);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..rounds {
                let v = crossbeam_channel::select! {
                    recv(a_rx) -> v => v,
                    recv(b_rx) -> v => v,
                }
                .expect("open");
                pong_tx.send(v + 1).expect("pong open");
            }
        });
        let mut v = 0;
        for i in 0..rounds {
            let ping = if i % 2 == 0 { &a_tx } else { &b_tx };
            ping.send(v).expect("ping open");
            v = pong_rx.recv().expect("pong open");
        }
        assert_eq!(v, rounds, "crossbeam select ping-pong lost a message");
    });
    t.elapsed()
}

/// The crossbeam peer of `on_jobsys::channel_throughput`: a producer thread and this thread
/// over `crossbeam_channel::bounded(capacity)`.
pub fn crossbeam_channel_throughput(n: usize, capacity: usize) -> Duration {
    thread_channel_throughput::<CrossbeamChannel>(n, capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_values_match_benchmarks_md() {
        assert_eq!(fib_expected(30), 832_040);
        assert_eq!(fib_jobs(30), 2_692_537);
        assert_eq!(fib_expected(35), 9_227_465);
        assert_eq!(fib_jobs(35), 29_860_703);
        assert_eq!(skynet_expected(SKYNET_LEAVES), 499_999_500_000);
        assert_eq!(skynet_jobs(SKYNET_LEAVES), 1_111_111);
        assert_eq!(PARFOR_LEN / PARFOR_CHUNK, 4096);
    }

    #[test]
    fn spin_follows_its_definition() {
        assert_eq!(spin(0, 4), 5);
        let x = 1u64
            .wrapping_mul(0x5851_F42D_4C95_7F2D)
            .wrapping_add(0x1405_7B7E_F767_814F);
        assert_eq!(spin(1, 0), x ^ (x >> 29));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.99), 99.0);
        assert_eq!(nearest_rank(&v, 0.50), 50.0);
        assert_eq!(nearest_rank(&[7.0], 0.99), 7.0);
        let s = Sample::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.median, s.min), (2.5, 1.0));
    }

    #[test]
    fn parfor_verifies_one_pass() {
        let mut p = Parfor::new(3 * PARFOR_CHUNK);
        p.sequential_pass();
        p.verify_one_pass("test");
    }
}
