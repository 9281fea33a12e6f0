//! # scoped — the safe layer: scopes and join, borrowing the stack
//!
//! `ctx.scope(|s| ..)` returns only when every job spawned in it has finished, so its jobs may
//! borrow anything that outlives the scope — a local array, a slice of it, a counter on the
//! stack — with ordinary borrow rules: many readers or one writer per piece. `ctx.join(a, b)`
//! runs two closures, possibly in parallel, and returns both results. Neither allocates per
//! job once warm, and both wait by parking the fiber.
//!
//! ```text
//! cargo run -p jobsys-samples --example scoped
//! ```

use jobsys::{Ctx, JobSystem, job_meta};
use std::sync::atomic::{AtomicUsize, Ordering};

const WIDTH: usize = 64;
const HEIGHT: usize = 64;

/// Sums `values` by splitting it in halves with `join` until the pieces are small.
fn parallel_sum(ctx: &Ctx, values: &[u32]) -> u64 {
    if values.len() <= 256 {
        return values.iter().map(|&v| u64::from(v)).sum();
    }
    let (lo, hi) = values.split_at(values.len() / 2);
    let (a, b) = ctx.join(|ctx| parallel_sum(ctx, lo), |ctx| parallel_sum(ctx, hi));
    a + b
}

fn main() -> Result<(), jobsys::BuildError> {
    let jobs = JobSystem::builder().workers(2).build()?;

    // All of this lives on main's stack; the jobs below borrow it.
    let palette: [u32; 4] = [3, 5, 7, 11];
    let mut image = [0u32; WIDTH * HEIGHT];
    let rows_done = AtomicUsize::new(0);

    let (sum, checked) = jobs.run(|ctx| {
        // 1. A scope over rows: each job borrows its own row mutably and the palette shared.
        ctx.scope(|s| {
            for (y, row) in image.chunks_mut(WIDTH).enumerate() {
                let (palette, rows_done) = (&palette, &rows_done);
                s.spawn_with(job_meta!("shade row"), move |_| {
                    for (x, pixel) in row.iter_mut().enumerate() {
                        *pixel = palette[(x + y) % palette.len()];
                    }
                    rows_done.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        // The scope has returned: every row is written, and `image` is ours again.
        assert_eq!(rows_done.load(Ordering::Relaxed), HEIGHT);

        // 2. Fork-join over the finished image, borrowing it shared.
        let sum = parallel_sum(ctx, &image);

        // 3. Jobs spawn more jobs into the same scope, and open nested scopes of their own.
        let checked = AtomicUsize::new(0);
        ctx.scope(|s| {
            for quarter in image.chunks(WIDTH * HEIGHT / 4) {
                let checked = &checked;
                s.spawn(move |s| {
                    // A nested scope: returns when both halves of this quarter are checked.
                    s.scope(|inner| {
                        for half in quarter.chunks(quarter.len() / 2) {
                            inner.spawn(move |_| {
                                assert!(half.iter().all(|p| palette.contains(p)));
                                checked.fetch_add(half.len(), Ordering::Relaxed);
                            });
                        }
                    });
                });
            }
        });
        (sum, checked.into_inner())
    });

    let expected: u64 = image.iter().map(|&p| u64::from(p)).sum();
    assert_eq!(sum, expected);
    assert_eq!(checked, image.len());
    println!(
        "shaded {HEIGHT} rows; pixel sum {sum} (expected {expected}); {checked} pixels checked — OK"
    );
    Ok(())
}
