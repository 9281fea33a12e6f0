//! # promises — lazy and eager deferred values, combinators, cancellation
//!
//! - `lazy(..)` describes work; nothing runs until `get(ctx)` or `spawn(scope)`.
//! - `map`, `and_then`, `all`, `join_all`, `both` and `first` compose them; the scoped forms
//!   allocate nothing once warm.
//! - `Scope::cancel` drops the jobs nobody started yet; running ones see `is_cancelled`.
//!
//! ```text
//! cargo run -p jobsys-samples --example promises
//! ```

use jobsys::promise::{Deferred, all, both, first, join_all, lazy};
use jobsys::{CancelToken, Cancelled, Ctx, JobSystem};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A stand-in for building one level of detail of a mesh.
fn build_lod(seed: u64, lod: u32) -> u64 {
    (0..20_000u64 >> lod).fold(seed, |h, i| h.rotate_left(7) ^ i)
}

/// A stand-in for a path search that takes `steps` steps and gives up when cancelled.
fn search(ctx: &Ctx, steps: u32, answer: &'static str) -> &'static str {
    for _ in 0..steps {
        if ctx.is_cancelled() {
            return "gave up";
        }
        ctx.yield_now();
    }
    answer
}

fn main() -> Result<(), jobsys::BuildError> {
    let jobs = JobSystem::builder().workers(4).build()?;
    let model_seed = 0x5eed;

    jobs.run(|ctx| {
        // Lazy: a description of work. `all` runs its parts in parallel when got; `map`
        // packs the results on the getter's fiber.
        let lods = all([0, 1, 2, 3].map(|lod| lazy(move |_: &Ctx| build_lod(model_seed, lod))));
        let packed = lods.map(|l| l.iter().fold(0u64, |a, b| a ^ b));
        println!("mesh checksum {:#x}", packed.get(ctx));

        // and_then: the second step depends on the first one's value.
        let size = lazy(|_: &Ctx| 12u32)
            .and_then(|n| lazy(move |_: &Ctx| (1..=n).map(u64::from).product::<u64>()))
            .get(ctx);
        println!("12! = {size}");

        // both and join_all: values in order, whatever order the parts finish in.
        let (audio, ai) = both(lazy(|_: &Ctx| "mixed"), lazy(|_: &Ctx| "planned")).get(ctx);
        let names =
            join_all(["rock", "tree", "river"].map(|n| lazy(move |_: &Ctx| n.len()))).get(ctx);
        println!("{audio}, {ai}, name lengths {names:?}");

        // first: the fastest search wins; the others see the cancellation and stop.
        let path = first([
            lazy(|ctx: &Ctx| search(ctx, 1_000, "full A*")).boxed(),
            lazy(|ctx: &Ctx| search(ctx, 0, "cached path")).boxed(),
        ])
        .get(ctx);
        println!("path: {path}");

        // Eager: spawned now, got later; the handle takes the same combinators.
        let doubled = ctx.scope(|s| {
            let running = lazy(|_: &Ctx| 21u32).spawn(s);
            running.map(|v| v * 2).get(s)
        });
        println!("eager value {doubled}");

        // Cancellation: a job finds the target and cancels its scope; jobs nobody started
        // are dropped unrun, and their handles say so.
        let ran = AtomicUsize::new(0);
        let tiles: Vec<u32> = (0..256).collect();
        let (hits, skipped) = ctx.scope(|s| {
            let handles: Vec<_> = tiles
                .iter()
                .map(|&t| {
                    let ran = &ran;
                    s.spawn(move |s| {
                        ran.fetch_add(1, Ordering::Relaxed);
                        if t == 200 {
                            s.cancel();
                        }
                        t == 200
                    })
                })
                .collect();
            let mut hits = 0;
            let mut skipped = 0;
            for h in handles {
                match h.try_join(s) {
                    Ok(true) => hits += 1,
                    Ok(false) => {}
                    Err(Cancelled) => skipped += 1,
                }
            }
            (hits, skipped)
        });
        let ran = ran.load(Ordering::Relaxed);
        assert_eq!(ran + skipped, tiles.len());
        println!("found {hits} target; {ran} tiles searched, {skipped} skipped");

        // A lazy value with a token: cancelled before it starts, it never runs.
        let token = CancelToken::new();
        let load = lazy(|_: &Ctx| "level 2").cancellable(&token);
        token.cancel();
        println!("level load: {:?}", load.get(ctx));
    });
    Ok(())
}
