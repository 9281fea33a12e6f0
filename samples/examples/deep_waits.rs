//! Deep chains of nested waits: how much stack one level costs, and how deep a chain the
//! default pool hosts.
//!
//! A waiter runs its own children inline (on its own stack) only while its fiber has
//! `Builder::inline_headroom` bytes left; deeper, it parks and the next level starts on a fiber
//! of its own. So a chain hosts about `(stack - headroom) / cost` levels per fiber, and a pool
//! of fibers hosts the sum — past that, jobsys stops with a report naming the chain's job.
//!
//! ```sh
//! cargo run --release -p jobsys-samples --example deep_waits
//! ```

use jobsys::{Counter, Ctx, JobDecl, JobSystem, job_meta};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The address of a local of the caller's frame: the stack depth of one level.
#[inline(always)]
fn here() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Records the stack address of the first two levels (inline on one fiber, 1 worker).
struct Probe {
    depth: [AtomicUsize; 2],
}

impl Probe {
    fn record(&self, n: u32) {
        if let Some(slot) = self.depth.get(n as usize) {
            slot.store(here(), Ordering::Relaxed);
        }
    }
    /// Bytes one level of the chain costs.
    fn cost(&self) -> usize {
        self.depth[0]
            .load(Ordering::Relaxed)
            .abs_diff(self.depth[1].load(Ordering::Relaxed))
    }
}

fn scope_chain(ctx: &Ctx, n: u32, depth: u32, p: &Probe) {
    p.record(n);
    if n < depth {
        ctx.scope(|s| {
            s.spawn(move |s| scope_chain(s, n + 1, depth, p));
        });
    }
}

fn join_chain(ctx: &Ctx, n: u32, depth: u32, p: &Probe) {
    p.record(n);
    if n < depth {
        ctx.join(|_| (), |c| join_chain(c, n + 1, depth, p));
    }
}

struct Level<'a> {
    n: u32,
    depth: u32,
    probe: &'a Probe,
}

fn counter_level(ctx: &Ctx, data: *mut ()) {
    // SAFETY: `data` is the parent's `Level`, alive until the parent's wait returns.
    let l = unsafe { &*data.cast::<Level<'_>>() };
    counter_chain(ctx, l.n, l.depth, l.probe);
}

fn counter_chain(ctx: &Ctx, n: u32, depth: u32, p: &Probe) {
    p.record(n);
    if n < depth {
        let next = Level {
            n: n + 1,
            depth,
            probe: p,
        };
        let decls = [JobDecl::new(
            job_meta!("level"),
            counter_level,
            (&next as *const Level<'_>).cast_mut().cast(),
        )];
        let counter = Counter::new();
        // SAFETY: `next`, `decls` and `counter` outlive the wait below.
        unsafe { ctx.run_jobs(&decls, &counter) };
        ctx.wait_for_counter(&counter, 0);
    }
}

type Chain = fn(&Ctx, u32, u32, &Probe);

fn main() {
    let small = jobsys::Builder::DEFAULT_SMALL_STACK;
    let large = jobsys::Builder::DEFAULT_LARGE_STACK;
    let headroom = jobsys::Builder::DEFAULT_INLINE_HEADROOM;
    println!(
        "default pool: {} small fibers of {} KiB, {} large of {} KiB; inline headroom {} KiB",
        jobsys::Builder::DEFAULT_SMALL_FIBERS,
        small / 1024,
        jobsys::Builder::DEFAULT_LARGE_FIBERS,
        large / 1024,
        headroom / 1024
    );
    let chains: [(&str, Chain); 3] = [
        ("scope", scope_chain),
        ("join", join_chain),
        ("counter", counter_chain),
    ];
    for (name, chain) in chains {
        // The cost of one level, measured on one worker where every level runs inline.
        let one = JobSystem::builder().workers(1).build().unwrap();
        let probe = Probe {
            depth: [AtomicUsize::new(0), AtomicUsize::new(0)],
        };
        one.run(|ctx| chain(ctx, 0, 3, &probe));
        let cost = probe.cost().max(1);
        let per_small = (small - headroom) / cost + 1;
        let per_large = (large - headroom) / cost + 1;
        let pool = jobsys::Builder::DEFAULT_SMALL_FIBERS * per_small
            + jobsys::Builder::DEFAULT_LARGE_FIBERS * per_large;
        // A chain of 2,000 levels on two workers (stolen levels start fresh fibers).
        let two = JobSystem::builder().workers(2).build().unwrap();
        let deep = Probe {
            depth: [AtomicUsize::new(0), AtomicUsize::new(0)],
        };
        two.run(|ctx| chain(ctx, 0, 2_000, &deep));
        println!(
            "{name:>7}: {cost:>5} bytes a level; ~{per_small} levels a small fiber, \
             ~{per_large} a large one; the default pool hosts ~{pool} levels on one worker; \
             a 2,000-level chain on 2 workers completed"
        );
    }
}
