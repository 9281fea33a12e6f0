//! Seeded fault injection at the scheduler's racy points (cargo feature `fault-injection`;
//! without it every site is an empty `#[inline(always)]` call and compiles out).
//!
//! With the feature, each site draws from a per-thread xorshift generator and now and then
//! perturbs the calling thread: a short spin (most often), `yield_now`, or a sleep of up to
//! 50 µs (rarely). CAS loops that ask `cas_fails` also fail spuriously now and then. This
//! widens the windows between the steps of a protocol — publish then count, fence then claim,
//! take a timer then cancel it — so that races a quiet machine almost never shows come up in
//! ordinary test runs. In the unsafe migration mode, `migrate` also sends one woken fiber in
//! four to another worker (a forced migration).
//!
//! **Seed and replay.** The seed comes from `JOBSYS_FAULT_SEED` (decimal or `0x` hex); without
//! it one is derived from the clock. It is printed to stderr once per process ("jobsys: fault
//! injection seed = …"), and the tests' `each_worker_count` prints it again in every test's
//! output, so a failing test shows it. Each thread's generator is seeded from the seed and the
//! order in which threads first reach a site, so a seed replays the same *fault schedule* per
//! thread; the OS still interleaves threads freely, so a replay reproduces a failure often,
//! not always. Exact replay is the deterministic simulation's job (`jobsys::sim`, feature
//! `simulation`), where every site is a step of its seeded scheduler.

/// Where a fault may be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Site {
    /// Before a job is pushed to a ring.
    Push,
    /// Before a steal attempt.
    Steal,
    /// Before a counter decrement.
    CounterDecrement,
    /// Before a wait node is published on a counter.
    WaitPublish,
    /// Between announcing sleep and re-checking for work.
    BeforeSleep,
    /// Before a worker switches into a fiber.
    Switch,
    /// Between a wait's publication and the fiber's parked count (`publish_wait`).
    AfterPublish,
    /// Before a park node is validated and linked, or unlinked by an unparker.
    Park,
    /// Between taking due timers out of the table and cancelling their waits.
    TimerFire,
    /// A waker (`Shared::make_ready_from`) has pushed the fiber to a ready queue and not yet
    /// woken its worker.
    Readied,
    /// A waker has woken the fiber's worker and not yet made its last touch of the system.
    AfterWake,
    /// A CAS in a retry loop (see [`cas_fails`]).
    Cas,
}

#[cfg(not(feature = "fault-injection"))]
mod imp {
    /// Possibly perturbs the current thread at `site`.
    #[inline(always)]
    pub(crate) fn inject(site: super::Site) {
        let _ = site;
    }

    /// Whether the CAS at `site` should fail spuriously (never without the feature).
    #[inline(always)]
    pub(crate) fn cas_fails(site: super::Site) -> bool {
        let _ = site;
        false
    }

    /// A forced migration's target (never without the feature).
    #[inline(always)]
    pub(crate) fn migrate(home: usize, workers: usize) -> Option<usize> {
        let _ = (home, workers);
        None
    }
}

#[cfg(feature = "fault-injection")]
mod imp {
    use std::cell::Cell;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// The process's seed (read once).
    pub(crate) fn seed() -> u64 {
        static SEED: OnceLock<u64> = OnceLock::new();
        *SEED.get_or_init(|| {
            let seed = std::env::var("JOBSYS_FAULT_SEED")
                .ok()
                .and_then(|s| {
                    let s = s.trim();
                    match s.strip_prefix("0x") {
                        Some(hex) => u64::from_str_radix(hex, 16).ok(),
                        None => s.parse().ok(),
                    }
                })
                .unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(1, |d| d.as_nanos() as u64)
                });
            eprintln!("jobsys: fault injection seed = {seed} (replay: JOBSYS_FAULT_SEED={seed})");
            seed
        })
    }

    /// The next value of this thread's generator (seeded lazily from the seed and the order in
    /// which threads first get here).
    fn next() -> u64 {
        static THREADS: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            static STATE: Cell<u64> = const { Cell::new(0) };
        }
        STATE.with(|s| {
            let mut x = s.get();
            if x == 0 {
                let ordinal = THREADS.fetch_add(1, Ordering::Relaxed) + 1;
                x = (seed() ^ ordinal.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.set(x);
            x
        })
    }

    /// Possibly perturbs the current thread at `site`: about 1 in 8 calls spins up to 256
    /// rounds, 1 in 32 yields, 1 in 2,048 sleeps up to 50 µs.
    pub(crate) fn inject(site: super::Site) {
        let _ = site;
        let r = next();
        match r % 2048 {
            0 => std::thread::sleep(Duration::from_micros((r >> 11) % 50)),
            1..=64 => std::thread::yield_now(),
            65..=320 => {
                for _ in 0..(r >> 11) % 256 {
                    std::hint::spin_loop();
                }
            }
            _ => {}
        }
    }

    /// Whether the CAS at `site` should fail spuriously: about 1 in 16.
    pub(crate) fn cas_fails(site: super::Site) -> bool {
        let _ = site;
        next().is_multiple_of(16)
    }

    /// A forced migration's target: another worker, about 1 in 4 calls.
    pub(crate) fn migrate(home: usize, workers: usize) -> Option<usize> {
        let r = next();
        r.is_multiple_of(4)
            .then(|| (home + 1 + (r >> 2) as usize % (workers - 1)) % workers)
    }
}

/// Possibly perturbs the current thread at `site`; under simulation, a step where the
/// scheduler may switch threads.
#[inline(always)]
pub(crate) fn inject(site: Site) {
    if crate::sim::active() {
        crate::sim::site();
        return;
    }
    imp::inject(site);
}

/// Whether the CAS at `site` should fail spuriously (under simulation, a seeded 1 in 16).
#[inline(always)]
pub(crate) fn cas_fails(site: Site) -> bool {
    if let Some(r) = crate::sim::random() {
        return r.is_multiple_of(16);
    }
    imp::cas_fails(site)
}

/// In the unsafe migration mode, the worker other than `home` (of `workers`) whose ready
/// queue a woken fiber should go to instead of its own: a forced migration, about 1 in 4
/// wakes under fault injection or simulation, never otherwise.
#[inline(always)]
pub(crate) fn migrate(home: usize, workers: usize) -> Option<usize> {
    if workers < 2 {
        return None;
    }
    if let Some(r) = crate::sim::random() {
        return r
            .is_multiple_of(4)
            .then(|| (home + 1 + (r >> 2) as usize % (workers - 1)) % workers);
    }
    imp::migrate(home, workers)
}

/// The fault-injection seed of this process (read from `JOBSYS_FAULT_SEED`, or derived from
/// the clock and printed once), to quote in a failing test's output. Only with the
/// `fault-injection` feature.
#[cfg(feature = "fault-injection")]
pub fn seed() -> u64 {
    imp::seed()
}
