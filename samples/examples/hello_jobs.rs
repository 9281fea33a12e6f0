//! # hello_jobs — the raw, Naughty-Dog-style layer
//!
//! A job is a `JobDecl`: an entry function and a pointer to its data. Submit an array of them
//! in one call, counted on a `Counter`, and wait for the counter to drop to a value. Waiting
//! parks the *fiber*; the worker thread runs other jobs meanwhile. Waits inside jobs are fine.
//!
//! The raw layer is `unsafe` because jobsys cannot see what the data pointers point to: the
//! submitter promises that it stays alive and unaliased until the counter says the jobs are
//! done. The safe layer (`scoped.rs`) keeps that promise for you.
//!
//! ```text
//! cargo run -p jobsys-samples --example hello_jobs
//! ```

use jobsys::{Counter, Ctx, JobDecl, JobSystem, job_meta};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One job's data: a number to square, and where the square goes.
struct Square {
    n: u64,
    squared: u64,
}

/// Jobs that finished squaring, for the "wait for a non-zero value" part.
static SQUARED: AtomicUsize = AtomicUsize::new(0);

/// Entry point of a "square" job.
///
/// # Safety
/// `data` points to a `Square` that no one else touches until this job's counter drops.
unsafe fn square(_ctx: &Ctx, data: *mut ()) {
    // SAFETY: caller contract — `main` gives every declaration its own `Square` and waits for
    // the batch before it reads them.
    let item = unsafe { &mut *data.cast::<Square>() };
    item.squared = item.n * item.n;
    SQUARED.fetch_add(1, Ordering::Release);
}

/// One job's data for the nested sum: a range of squares and where its total goes.
struct Sum<'a> {
    items: &'a [Square],
    total: u64,
}

/// Entry point of a "sum" job: splits its range in two child jobs until it is small, then adds
/// up. The parent waits for its children on a counter of its own, which parks its fiber.
///
/// # Safety
/// `data` points to a `Sum` that no one else touches until this job's counter drops.
unsafe fn sum(ctx: &Ctx, data: *mut ()) {
    // SAFETY: caller contract — each `Sum` belongs to exactly one declaration.
    let job = unsafe { &mut *data.cast::<Sum<'_>>() };
    if job.items.len() <= 4 {
        job.total = job.items.iter().map(|s| s.squared).sum();
        return;
    }
    let (lo, hi) = job.items.split_at(job.items.len() / 2);
    let mut halves = [
        Sum {
            items: lo,
            total: 0,
        },
        Sum {
            items: hi,
            total: 0,
        },
    ];
    let [a, b] = &mut halves;
    let children = [
        JobDecl::new(job_meta!("sum"), sum, std::ptr::from_mut(a).cast()),
        JobDecl::new(job_meta!("sum"), sum, std::ptr::from_mut(b).cast()),
    ];
    let counter = Counter::new();
    // SAFETY: `halves`, `children` and `counter` live on this stack until the wait below
    // returns, which nothing between can skip; each child owns one half.
    unsafe { ctx.run_jobs(&children, &counter) };
    ctx.wait_for_counter(&counter, 0);
    job.total = halves[0].total + halves[1].total;
}

fn main() -> Result<(), jobsys::BuildError> {
    const N: usize = 64;
    let jobs = JobSystem::builder().workers(2).build()?;

    let total = jobs.run(|ctx| {
        // 1. A batch: one declaration per item, all counted on `counter`.
        let mut items: Vec<Square> = (0..N as u64).map(|n| Square { n, squared: 0 }).collect();
        let decls: Vec<JobDecl> = items
            .iter_mut()
            .map(|item| JobDecl::new(job_meta!("square"), square, std::ptr::from_mut(item).cast()))
            .collect();
        let counter = Counter::new();
        // SAFETY: `items`, `decls` and `counter` outlive the wait for zero below; each
        // declaration has its own item and `square` is fine on any worker.
        unsafe { ctx.run_jobs(&decls, &counter) };

        // 2. Wait for a non-zero value: resume as soon as at most half the batch is
        //    outstanding. The counter's Acquire makes the finished jobs' writes visible here.
        ctx.wait_for_counter(&counter, (N / 2) as u32);
        let finished = SQUARED.load(Ordering::Acquire);
        println!(
            "woke with counter <= {}: {finished} of {N} jobs had finished",
            N / 2
        );
        assert!(finished >= N / 2, "woke before half the batch was done");

        // 3. Wait for the rest; then the items are ours again.
        ctx.wait_for_counter(&counter, 0);
        assert!(!counter.is_poisoned(), "a job panicked");
        drop(decls);
        assert!(items.iter().all(|s| s.squared == s.n * s.n));

        // 4. Jobs that wait: a recursive sum whose every level parks on its children.
        let mut root = Sum {
            items: &items,
            total: 0,
        };
        let decl = [JobDecl::new(
            job_meta!("sum"),
            sum,
            std::ptr::from_mut(&mut root).cast(),
        )];
        let counter = Counter::new();
        // SAFETY: `root`, `decl` and `counter` outlive the wait just below.
        unsafe { ctx.run_jobs(&decl, &counter) };
        ctx.wait_for_counter(&counter, 0);
        root.total
    });

    let expected: u64 = (0..N as u64).map(|n| n * n).sum();
    assert_eq!(total, expected);
    println!("sum of squares 0..{N} = {total} (expected {expected}) — OK");
    Ok(())
}
