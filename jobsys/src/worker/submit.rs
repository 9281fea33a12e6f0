//! Submission: where the policy places a job submitted through a `Ctx` (see `sched/`) — run
//! here now, this worker's ring, the injector, or a pinned inbox — and one submitted from a
//! thread outside the pool.

use super::Shared;
use crate::fault;
use crate::fiber::Ctx;
use crate::job::{Affinity, JobRef};
use crate::sched::{Hint, Place};

/// Places `job` where the policy says for `hint` (see `sched/`): run here now, this
/// worker's ring, the injector, or a pinned inbox; wakes a sleeper for published work.
#[inline]
pub(crate) fn submit(ctx: &Ctx, job: JobRef, hint: Hint) {
    let shared = ctx.shared();
    let meta = job.meta();
    let inline_ok = hint == Hint::Inline
        && ctx.class().fits(meta.stack)
        && ctx.has_headroom(meta.stack)
        && match meta.affinity {
            Affinity::Any => true,
            Affinity::Worker(k) => k == ctx.worker_index(),
        };
    match shared.policy.place(meta, hint, inline_ok) {
        // The hot case (every spawn and join): kept small so that `submit` inlines into them.
        Place::Own(priority) => {
            fault::inject(fault::Site::Push);
            let ring = ctx.worker().ring(priority, meta.stack);
            if let Err(job) = ring.push(job) {
                shared.overflow(ctx.worker_index(), ring, job);
            }
            shared.notify_local();
        }
        place => submit_elsewhere(ctx, job, place),
    }
}

/// The other placements of [`submit`], out of line (a join's push inlines the ring case only:
/// with these arms inline, `submit` stopped inlining and fib joins got 25% slower).
#[inline(never)]
fn submit_elsewhere(ctx: &Ctx, job: JobRef, place: Place) {
    let shared = ctx.shared();
    match place {
        Place::Inline => {
            ctx.run(job);
            // The submitter goes on with its own job: pay the inline job's decrement now
            // rather than when that job ends.
            ctx.flush_decrements();
        }
        Place::Own(_) => unreachable!("`submit` places on the own ring itself"),
        Place::Injector(priority) => {
            fault::inject(fault::Site::Push);
            shared.injector.at(priority).push(job);
            shared.notify_local();
        }
        // Pinned to this very worker: it is awake (it runs us) and looks at its inbox before
        // it sleeps, so no wake and no in-flight count.
        Place::Pinned(k) if k == ctx.worker_index() => {
            fault::inject(fault::Site::Push);
            ctx.worker().pinned.push(job);
        }
        Place::Pinned(k) => shared.push_pinned(k, job),
    }
}

impl Shared {
    /// Places a job submitted from a thread outside the pool (see `sched/`) and wakes a
    /// worker for it.
    pub(crate) fn submit_foreign(&self, job: JobRef) {
        match self.policy.place_foreign(job.meta()) {
            crate::sched::Place::Pinned(k) => self.push_pinned(k, job),
            crate::sched::Place::Injector(p) => {
                self.injector.at(p).push(job);
                self.notify_one();
            }
            other => crate::panic::fatal(&format!("a foreign submission cannot go to {other:?}")),
        }
    }
}
