//! The inline-children pass: a fiber about to wait on a counter first runs, on itself, its own
//! not-yet-started children from this worker's rings. Each child counts as a pick of the
//! worker (its tick, in the owner-only `WorkerCore`), and the pass stops as soon as the target
//! is reached counting the worker's unpaid decrements (`debt.rs`).
//!
//! A child run inline may itself wait, and in migration mode come back on another worker: the
//! worker, its rings and its core are read from the `Ctx` afresh after every child.

use crate::counter::CounterCore;
use crate::fiber::Ctx;
use crate::job::StackClass;
use crate::panic::fatal;

/// Runs the inline-children pass ([`pass`]) for a wait on `counter` until `target` — unless
/// nothing of this fiber's classes is queued on this worker's rings (the usual case when the
/// waited-for jobs are pinned, stolen or already running): the pass would then pop nothing
/// and take no pick, so it is skipped, for one load pair per ring. The rings are this
/// worker's own (only its thread pushes to them, and the caller is on that thread), so an
/// empty look cannot miss a child pushed before this wait. The caller has paid its batched
/// decrements: with no child run there are none new to pay.
#[inline]
pub(crate) fn run_own_children(ctx: &Ctx, counter: &CounterCore, target: u32) {
    let worker = ctx.worker();
    let empty = match ctx.class() {
        StackClass::Large => worker.rings_empty(),
        StackClass::Small => worker.class_rings_empty(StackClass::Small),
    };
    if !empty {
        pass(ctx, counter, target);
    }
}

/// The inline-children policy: pop from the LIFO end of each ring whose class fits this
/// fiber while the job there belongs to `counter` — never unrelated jobs — in the
/// policy's priority order for the pick. Each child counts as a pick of this worker; at a
/// global pick with urgent work pending (see `sched/`) the pass stops without using the
/// pick, so the caller parks and the worker's next pick — that global one — takes that
/// work. A global pick also fires the due timers and stops the pass when a fiber is ready or
/// yielded on this worker: those resume before more children, so a waiter whose children
/// keep spawning children cannot keep a sleeper, or a fiber woken from elsewhere, off its
/// worker for more than a global pick period.
#[inline(never)]
fn pass(ctx: &Ctx, counter: &CounterCore, target: u32) {
    let classes: &[StackClass] = match ctx.class() {
        StackClass::Large => &[StackClass::Large, StackClass::Small],
        StackClass::Small => &[StackClass::Small],
    };
    let policy = &ctx.shared().policy;
    // Whether there is stack left here for a child of each class (indexed by class): this
    // frame's stack pointer is the same at every pick (children run below it and return), and
    // so is the fiber's stack (a migrated fiber keeps its stack), so it is asked once.
    let mut room = [false; 2];
    for &class in classes {
        room[class as usize] = ctx.has_headroom(class);
    }
    'pick: loop {
        let tick = ctx.core().peek_tick();
        if policy.global_pick(tick) {
            // An endless stream of children (each spawning the next) must not starve the
            // fibers waiting for this worker: fire the due timers, and stop the pass when a
            // fiber is ready here (a timer's, one a thread or another worker woke, one a child
            // just handed over), one yielded, or urgent work is pending.
            ctx.shared().timers.poll();
            let worker = ctx.worker();
            if !worker.no_ready()
                || !worker.yielded.is_empty()
                || ctx.core().has_handed_off()
                || ctx.shared().urgent_work(ctx.worker_index())
            {
                break;
            }
        }
        for &priority in policy.child_order(tick) {
            for &class in classes {
                // Too little stack left for a child here: leave it for a fiber of its own
                // (the caller parks and the worker starts it).
                if !room[class as usize] {
                    continue;
                }
                let ring = ctx.worker().ring(priority, class);
                let Some(job) = ring.pop() else { continue };
                if !core::ptr::eq(job.owner(), counter) {
                    if ring.push(job).is_err() {
                        fatal("ring overflow re-pushing a just-popped job");
                    }
                    continue;
                }
                ctx.core().next_tick();
                ctx.run(job);
                if ctx.core().debt.done_counting_debt(counter, target) {
                    break 'pick;
                }
                continue 'pick;
            }
        }
        break;
    }
    // The children's decrements are batched: pay them, so the caller's check (and the
    // counter's other waiters) see them.
    ctx.flush_decrements();
}
