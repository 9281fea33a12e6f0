//! # par_loops — parallel loops over slices and ranges
//!
//! An engine frame over 100,000 bodies with the loops of `Ctx`: integrate positions
//! (`par_chunks_mut`), cull against a view box and count what is drawn (`par_reduce`), find the
//! highest body (`par_reduce` with `f32::max`), mark every tenth body (`par_for`), and build
//! per-slot bounds (`par_chunks_mut` with a `par_reduce` inside), then sort the bodies by
//! height (`par_sort_unstable_by`). Each loop takes a grain — the smallest piece one job runs —
//! and splits adaptively: a few leaves per worker, more where other workers steal. The closures
//! borrow the frame's arrays straight from `main`'s stack; nothing is allocated per loop.
//!
//! ```text
//! cargo run -p jobsys-samples --example par_loops
//! ```

use jobsys::JobSystem;
use std::sync::atomic::{AtomicU32, Ordering};

const BODIES: usize = 100_000;
const DT: f32 = 1.0 / 60.0;

fn main() -> Result<(), jobsys::BuildError> {
    let jobs = JobSystem::builder().workers(4).build()?;

    let velocity: Vec<f32> = (0..BODIES).map(|i| (i % 100) as f32).collect();
    let mut height = vec![0.0f32; BODIES];
    let marked: Vec<AtomicU32> = (0..BODIES).map(|_| AtomicU32::new(0)).collect();
    let mut bounds = [(0.0f32, 0.0f32); 16];

    let (drawn, highest) = jobs.run(|ctx| {
        for _frame in 0..60 {
            // 1. Integrate: disjoint mutable chunks; `offset` indexes the parallel array.
            ctx.par_chunks_mut(&mut height, 1024, |_, offset, chunk| {
                let v = &velocity[offset..offset + chunk.len()];
                for (h, v) in chunk.iter_mut().zip(v) {
                    *h += v * DT;
                }
            });
        }
        // 2. Cull: count the bodies inside the view (height below 49.5).
        let drawn = ctx.par_reduce(
            0..BODIES,
            4096,
            || 0usize,
            |_, i| usize::from(height[i] < 49.5),
            |a, b| a + b,
        );
        // 3. The highest body: any associative reduce with its identity.
        let highest = ctx.par_reduce(0..BODIES, 4096, || f32::MIN, |_, i| height[i], f32::max);
        // 4. One call per index.
        ctx.par_for(0..BODIES / 10, 256, |_, i| {
            marked[i * 10].fetch_add(1, Ordering::Relaxed);
        });
        // 5. Per-slot bounds from read-only chunks, inside a scope next to other work.
        let slot = BODIES / bounds.len();
        ctx.scope(|s| {
            s.par_chunks_mut(&mut bounds, 1, |c, first, out| {
                for (k, b) in out.iter_mut().enumerate() {
                    let start = (first + k) * slot;
                    let part = &height[start..start + slot];
                    *b = c.par_reduce(
                        0..part.len(),
                        1024,
                        || (f32::MAX, f32::MIN),
                        |_, i| (part[i], part[i]),
                        |a, b| (a.0.min(b.0), a.1.max(b.1)),
                    );
                }
            });
        });
        // 6. A draw order: body indices sorted by height, highest first.
        let mut order: Vec<u32> = (0..BODIES as u32).collect();
        ctx.par_sort_unstable_by(&mut order, 2048, |&a, &b| {
            height[b as usize].total_cmp(&height[a as usize])
        });
        assert!(height[order[0] as usize] >= height[order[BODIES - 1] as usize]);
        (drawn, highest)
    });

    // Every body moved for 60 frames at its velocity: 60 × v / 60 = v (up to rounding).
    assert!((highest - 99.0).abs() < 1e-3, "highest {highest}");
    assert_eq!(drawn, BODIES / 2, "bodies with v < 50 are drawn");
    let marks: u32 = marked.iter().map(|m| m.load(Ordering::Relaxed)).sum();
    assert_eq!(marks as usize, BODIES / 10);
    assert!(bounds.iter().all(|&(lo, hi)| lo < 1e-3 && hi > 98.9));
    println!("{drawn} of {BODIES} bodies drawn; highest at {highest:.2}; {marks} marked");
    println!("slot 0 spans {:.2}..{:.2}", bounds[0].0, bounds[0].1);
    Ok(())
}
