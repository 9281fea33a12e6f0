//! # pinned — jobs that must run on the main thread
//!
//! Window, input, audio and GPU-device APIs often must be called from one thread. Give such a
//! job `Affinity::Worker(0)`: worker 0 is the thread that called `JobSystem::run`, usually
//! `main`. Pinned jobs are never stolen; any job, on any worker, may submit them.
//!
//! Here the "GPU device" is a thread-local queue that exists only on the main thread. Work
//! runs anywhere; each result is handed to a pinned "upload" job. If an upload ran on another
//! thread it would land in that thread's queue, and the check at the end would fail.
//!
//! ```text
//! cargo run -p jobsys-samples --example pinned
//! ```

use jobsys::{Affinity, Counter, Ctx, JobDecl, JobSystem, job_meta};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

thread_local! {
    /// The main thread's "GPU command queue". Borrows of it must not be held across a wait
    /// (a waiting job may be interleaved with other jobs on this thread).
    static DEVICE: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

const MAIN_THREAD: Affinity = Affinity::Worker(0);
const MESHES: u32 = 64;
const PRESENTS: usize = 8;

/// Jobs that ran on another thread than main (how much work left the main thread).
static OFF_MAIN: AtomicUsize = AtomicUsize::new(0);

/// Entry point of a raw pinned "present" job: records its index on the device.
///
/// # Safety
/// `data` points to a live `u32`.
unsafe fn present(ctx: &Ctx, data: *mut ()) {
    assert_eq!(
        ctx.worker_index(),
        0,
        "a pinned job ran on worker {}",
        ctx.worker_index()
    );
    // SAFETY: caller contract; `main` keeps the ids alive until the batch is done.
    let id = unsafe { *data.cast::<u32>() };
    DEVICE.with_borrow_mut(|queue| queue.push(1000 + id));
}

/// Stand-in for real work (a few microseconds): a "vertex count" derived from the mesh id.
fn build_mesh(mesh: u32) -> u32 {
    let mut x = u64::from(mesh) + 1;
    for _ in 0..20_000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    (x >> 48) as u32
}

fn main() -> Result<(), jobsys::BuildError> {
    let jobs = JobSystem::builder().workers(2).build()?;
    let main_thread = thread::current().id();

    jobs.run(|ctx| {
        // 1. Safe layer: compute anywhere, upload on the main thread.
        ctx.scope(|s| {
            for mesh in 0..MESHES {
                s.spawn_with(job_meta!("build mesh"), move |s| {
                    if thread::current().id() != main_thread {
                        OFF_MAIN.fetch_add(1, Ordering::Relaxed);
                    }
                    let vertices = build_mesh(mesh);
                    s.spawn_with(job_meta!("upload", affinity(MAIN_THREAD)), move |_| {
                        assert_eq!(
                            thread::current().id(),
                            main_thread,
                            "upload ran off the main thread"
                        );
                        DEVICE.with_borrow_mut(|queue| queue.push(vertices));
                    });
                });
            }
        });

        // 2. Raw layer: a batch of pinned declarations, submitted from this job.
        let ids: Vec<u32> = (0..PRESENTS as u32).collect();
        let decls: Vec<JobDecl> = ids
            .iter()
            .map(|id| {
                JobDecl::new(
                    job_meta!("present", affinity(MAIN_THREAD)),
                    present,
                    std::ptr::from_ref(id).cast_mut().cast(),
                )
            })
            .collect();
        let counter = Counter::new();
        // SAFETY: `ids`, `decls` and `counter` outlive the wait below; `present` only reads its id.
        unsafe { ctx.run_jobs(&decls, &counter) };
        ctx.wait_for_counter(&counter, 0);
    });

    // Back on main, outside the job system: every upload landed in main's own queue.
    let mut queue = DEVICE.take();
    queue.sort_unstable();
    let mut expected: Vec<u32> = (0..MESHES)
        .map(build_mesh)
        .chain((0..PRESENTS as u32).map(|id| 1000 + id))
        .collect();
    expected.sort_unstable();
    assert_eq!(queue, expected);
    println!(
        "{} uploads and {PRESENTS} presents ran on the main thread; {} of {MESHES} mesh jobs ran on other workers — OK",
        MESHES,
        OFF_MAIN.load(Ordering::Relaxed)
    );
    Ok(())
}
