//! # frame_memory — frames in flight, frame arenas, later stages, budgets and frame stats
//!
//! A small engine loop: each frame integrates particles with per-job scratch in the frame's
//! arena, builds a draw list in the arena, and hands it to a render stage (`Frame::later`)
//! that runs beside the next frame's logic. Two frames are in flight; the arenas are
//! reclaimed in bulk when a frame retires. Every frame prints what it cost.
//!
//! ```text
//! cargo run -p jobsys-samples --release --example frame_memory
//! ```

use jobsys::{FrameStats, JobSystem, Memory};
use std::sync::atomic::{AtomicU64, Ordering};

const FRAMES: u64 = 8;
const PARTICLES: usize = 16 * 1024;
const CHUNK: usize = 1024;

#[derive(Clone, Copy, Default)]
struct DrawItem {
    key: u32,
    x: f32,
}

fn main() -> Result<(), jobsys::BuildError> {
    // A strict budget: 256 KiB per worker per frame in flight, carved from memory the engine
    // owns; a frame that needs more gets `ArenaFull` instead of a hidden heap allocation.
    let builder = JobSystem::builder()
        .workers(2)
        .frames_in_flight(2)
        .frame_arena(256 * 1024, 256 * 1024);
    let block: &'static mut [u8] =
        Box::leak(vec![0u8; builder.memory_requirements().frame_arenas].into_boxed_slice());
    let jobs = builder.frame_arena_memory(Memory::new(block)).build()?;

    let mut particles = vec![0.0f32; PARTICLES];
    let presented = AtomicU64::new(0);
    let mut stats = FrameStats::new();

    jobs.run(|ctx| {
        ctx.frames(|frames| {
            for _ in 0..FRAMES {
                frames.frame(|f| {
                    // Logic: each job takes scratch from its worker's arena of this frame.
                    ctx.scope(|s| {
                        for chunk in particles.chunks_mut(CHUNK) {
                            s.spawn(move |ctx| {
                                let forces = f.arena(ctx).alloc_slice_fill_copy(chunk.len(), 0.5f32);
                                for (p, force) in chunk.iter_mut().zip(forces.iter()) {
                                    *p += force;
                                }
                            });
                        }
                    });
                    // A draw list in the arena (an allocator_api2 Vec), leaked to `&'f [_]`.
                    let mut draw = f.arena(ctx).vec_with_capacity::<DrawItem>(PARTICLES / 64);
                    for (i, p) in particles.iter().step_by(64).enumerate() {
                        draw.push(DrawItem { key: i as u32, x: *p });
                    }
                    let draw: &[DrawItem] = draw.leak();
                    let presented = &presented;
                    // Render of this frame runs beside the logic of the next one, in order.
                    f.later(ctx, move |ctx| {
                        if f.index() > 0 {
                            f.wait_retired(ctx, f.index() - 1);
                        }
                        // Submit in key order (what a renderer would sort by).
                        assert!(draw.windows(2).all(|w| w[0].key < w[1].key));
                        assert!(draw.iter().all(|d| d.x == (f.index() + 1) as f32 * 0.5));
                        presented.fetch_add(1, Ordering::Relaxed);
                    });
                });
                if ctx.frame_stats(&mut stats) {
                    println!(
                        "frame {}: {} jobs, {} parked waits, {} steals, {} fibers at most, arena {} bytes (grown {}), per worker used {:?}",
                        stats.index,
                        stats.jobs_run,
                        stats.parked_waits,
                        stats.steals,
                        stats.fibers_high_water,
                        stats.arena_used,
                        stats.arena_grown,
                        stats.workers().iter().map(|w| w.arena_used).collect::<Vec<_>>(),
                    );
                }
            }
        });
    });

    assert_eq!(presented.load(Ordering::Relaxed), FRAMES);
    assert!(particles.iter().all(|&p| p == FRAMES as f32 * 0.5));
    println!("{FRAMES} frames presented, two in flight");
    Ok(())
}
