//! The scoped forms of `jobsys::promise` and scope cancellation allocate nothing once warm:
//! lazy values with `map` / `and_then`, `both`, `all`, `first`, lazy values spawned into a
//! scope (eager handles), `cancellable`, and a cancelled scope's dropped-unrun jobs with
//! `try_join`. Counted with a counting global allocator, process-wide, so this is a
//! `harness = false` binary (see `jobsys/Cargo.toml`).
use jobsys::promise::{Deferred, all, both, first, lazy, ready};
use jobsys::{CancelToken, Cancelled, Ctx, JobSystem};

#[path = "common/counting.rs"]
mod counting;
use counting::{Check, Counting, count_allocs};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One round of every scoped form; returns a checksum.
fn round(jobs: &JobSystem, data: &[u64]) -> u64 {
    let token = CancelToken::new();
    jobs.run(|ctx| {
        let mut sum = 0;
        for _ in 0..8 {
            // all: eight parts in parallel, then a map.
            let parts: [_; 8] = core::array::from_fn(|i| {
                let part = &data[i * 32..(i + 1) * 32];
                lazy(move |_: &Ctx| part.iter().sum::<u64>())
            });
            sum += all(parts).map(|v| v.iter().sum::<u64>()).get(ctx);
            // both, and_then, cancellable.
            let (a, b) = both(ready(1u64), lazy(|_: &Ctx| 2u64)).get(ctx);
            sum += lazy(|_: &Ctx| a + b)
                .and_then(|v| lazy(move |_: &Ctx| v * 2))
                .cancellable(&token)
                .get(ctx)
                .unwrap_or(0);
            // first: a slow part that waits to be cancelled, and three quick ones.
            let slow = |ctx: &Ctx| {
                while !ctx.is_cancelled() {
                    ctx.yield_now();
                }
                0u64
            };
            let quick = |_: &Ctx| 5u64;
            sum += first([
                lazy(slow as fn(&Ctx) -> u64),
                lazy(quick),
                lazy(quick),
                lazy(quick),
            ])
            .get(ctx);
            // Eager handles in a scope, and a cancelled scope whose jobs are dropped unrun.
            sum += ctx.scope(|s| {
                let hs: [_; 16] = core::array::from_fn(|i| lazy(move |_: &Ctx| i as u64).spawn(s));
                hs.into_iter().map(|h| h.map(|v| v + 1).get(s)).sum::<u64>()
            });
            let cancelled = ctx.scope(|s| {
                let hs: [_; 16] = core::array::from_fn(|i| s.spawn(move |_| i));
                s.cancel();
                let late: [_; 16] = core::array::from_fn(|i| s.spawn(move |_| i));
                hs.into_iter()
                    .chain(late)
                    .map(|h| h.try_join(s))
                    .filter(|r| *r == Err(Cancelled))
                    .count()
            });
            sum += cancelled as u64 * 1000;
        }
        sum
    })
}

fn promises_allocate_nothing_after_warm_up() {
    let data: Vec<u64> = (0..256).collect();
    for n in [1, 2, 4] {
        let jobs = JobSystem::builder().workers(n).build().unwrap();
        let mut warm = 0;
        for _ in 0..3 {
            warm = round(&jobs, &data);
        }
        let mut rounds = [0u64; 10];
        let allocs = count_allocs(|| {
            for r in rounds.iter_mut() {
                *r = round(&jobs, &data);
            }
        });
        // The checksum varies only with how many cancelled jobs had started; the late 16 of
        // each cancelled scope never run.
        let base = 8 * (data.iter().sum::<u64>() + 6 + 5 + 136);
        for r in rounds.into_iter().chain([warm]) {
            let cancelled = (r - base) / 1000;
            assert!(
                (8 * 16..=8 * 32).contains(&cancelled),
                "{n} workers: checksum {r}"
            );
            assert_eq!((r - base) % 1000, 0, "{n} workers: checksum {r}");
        }
        println!("{n} workers: {allocs} allocations in 10 warmed-up rounds of promise forms");
        assert_eq!(
            allocs, 0,
            "{n} workers: promise forms allocated in steady state"
        );
    }
}

/// The counter counts (so a zero above cannot come from a counter that does not count): a
/// boxed lazy value allocates.
fn boxed_values_are_counted() {
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let three = std::hint::black_box(3u64);
    let allocs = count_allocs(|| {
        // It captures a value: a box of a zero-sized closure would not allocate.
        // `black_box`: the optimiser may not elide the box.
        let boxed = std::hint::black_box(lazy(move |_: &Ctx| three).boxed());
        assert_eq!(jobs.run(|ctx| boxed.get(ctx)), 3);
    });
    assert!(allocs >= 1, "a boxed value's allocation was not counted");
}

fn main() {
    let checks: &[Check] = &[
        ("boxed_values_are_counted", boxed_values_are_counted),
        (
            "promises_allocate_nothing_after_warm_up",
            promises_allocate_nothing_after_warm_up,
        ),
    ];
    counting::run_checks(checks);
}
