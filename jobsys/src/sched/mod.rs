//! The scheduling policy, apart from the workers that execute it.
//!
//! The executor (`worker/`, `fiber/`) owns the queues and the fibers and does what this module
//! decides: where a submitted job goes ([`Policy::place`]), in which order a worker looks at
//! its sources for the next job ([`Policy::order`]), whether an inline-children pass must stop
//! for more urgent work ([`Policy::global_pick`]), and which worker a thief tries first
//! ([`Policy::first_victim`]). The policy holds no queues and does no atomics: it is pure
//! decisions over small inputs, tested by driving it directly (see the tests below and
//! `tests/priority.rs`).
//!
//! # The default rules
//! - **Placement.** [`Hint::Lifo`] (the default) pushes on the submitting worker's ring of the
//!   job's priority: it runs next here unless stolen. [`Hint::Fifo`] appends to the shared
//!   injector of that priority, behind everything queued there. [`Hint::Inline`] runs the job
//!   on the submitting fiber before the submit call returns (when the fiber's stack class fits,
//!   the fiber has the inline headroom left — see `Builder::inline_headroom` — and the job may
//!   run on this worker; otherwise it is placed as `Lifo`). A pinned job always
//!   goes to its worker's inbox.
//! - **Order.** A worker looks at its pinned inbox, then its own High ring, then the High
//!   injector, then its own rings Normal → Low, then the injectors Normal → Low, then steals
//!   High → Normal → Low. (High work in the injector goes before local Normal and Low work, so
//!   a High job submitted `Fifo` or from outside the pool starts at the next pick of a busy
//!   worker, not at its next global pick.)
//! - **Anti-starvation.** Every [`GLOBAL_PERIOD`]th pick of a worker is a *global pick*, which
//!   looks at High work elsewhere first (the injector, then other workers' rings), then its
//!   pinned inbox and own High ring, then Low work (own Low ring, Low injector), then Normal
//!   work, stealing Low last. So a High job submitted elsewhere starts within
//!   `GLOBAL_PERIOD - 1` local picks of any busy worker that can host it, and on a worker with
//!   queued Low work a stream of Normal work cannot pass it over beyond the next global pick
//!   (only High and pinned work come first). A waiting fiber's inline-children pass counts its
//!   picks too, takes Low children first at a global pick, and, at a global pick with High
//!   work in the injector, pinned work in the worker's inbox, or a fiber ready or yielded on
//!   the worker (due timers fired first), parks without using the pick, so that the worker's
//!   next pick — the global one — takes that work. (High work in another worker's ring does
//!   not interrupt an inline-children pass.)
//! - **Priority inversion.** There is no priority inheritance. A job that waits runs its own
//!   unstarted children inline first, whatever their priority, so a High job waiting on Low
//!   children it submitted itself does not wait behind other Low work; Low work it did not
//!   submit keeps its priority (and the anti-starvation pick bounds how long it can be
//!   passed over).

use crate::job::{Affinity, JobMeta, Priority};

/// How a submission is placed: a per-call hint next to the job's [`Priority`].
///
/// ```
/// use jobsys::{Hint, JobSystem};
///
/// let jobs = JobSystem::builder().workers(2).build()?;
/// let order = std::sync::Mutex::new(Vec::new());
/// jobs.run(|ctx| {
///     ctx.scope(|s| {
///         let meta = jobsys::job_meta!("hinted");
///         s.spawn_hinted(Hint::Fifo, meta, |_| order.lock().unwrap().push("fifo"));
///         // Runs on this fiber before `spawn_hinted` returns.
///         s.spawn_hinted(Hint::Inline, meta, |_| order.lock().unwrap().push("inline"));
///         assert!(order.lock().unwrap().contains(&"inline"));
///     });
/// });
/// assert_eq!(order.into_inner().unwrap().len(), 2);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Hint {
    /// Run now, on the submitting fiber, before the submit call returns (when its stack class
    /// fits, the fiber has [`Builder::inline_headroom`](crate::Builder::inline_headroom) of
    /// stack left and its affinity allows this worker; otherwise placed as `Lifo`). No queue, no
    /// wake, no steal: use it for the piece of a fan-out the submitter would run anyway.
    Inline,
    /// Next on this worker: pushed on the submitting worker's ring (LIFO), where other workers
    /// may steal it. Cache-friendly for fork-join. The default.
    #[default]
    Lifo,
    /// Behind queued work: appended to the shared injector (FIFO, one lock per submission).
    /// Use it for work that must not jump ahead of what is already queued (streaming,
    /// background batches).
    Fifo,
}

/// Where a submitted job goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Run on the submitting fiber now.
    Inline,
    /// The submitting worker's ring of this priority.
    Own(Priority),
    /// The shared injector of this priority.
    Injector(Priority),
    /// Worker `k`'s pinned inbox.
    Pinned(usize),
}

/// A place a worker looks for its next job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Its pinned inbox.
    Pinned,
    /// Its own ring of this priority (LIFO end).
    Own(Priority),
    /// The injector of this priority (a share of it moves to the own ring).
    Injector(Priority),
    /// Other workers' rings of this priority (FIFO end, half at a time).
    Steal(Priority),
}

/// Every priority, most urgent first.
pub(crate) const PRIORITIES: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

/// One pick in this many is a *global pick*: a worker looks for High work anywhere (the
/// injector, then other workers' rings), then for Low work, before its usual order. So a High
/// job submitted elsewhere starts within `GLOBAL_PICK_PERIOD - 1` local picks of a busy worker,
/// and Low work gets at least one pick in this many on a worker that has some. Picked as a
/// prime, like Go's global-run-queue check (61), so it does not beat with power-of-two batch
/// sizes.
pub const GLOBAL_PICK_PERIOD: u32 = 61;
pub(crate) const GLOBAL_PERIOD: u32 = GLOBAL_PICK_PERIOD;

/// The scheduling decisions the executor delegates: the rules in the module docs, as
/// functions of small inputs and two order tables. One policy exists, so it is a plain type
/// with inherent functions, not a trait; a second policy would make it one again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Policy;

const LOCAL_ORDER: [Source; 10] = [
    Source::Pinned,
    Source::Own(Priority::High),
    // High work in the injector (a `Hint::Fifo` or foreign submission) before any local Normal
    // or Low work: behind a worker's own Low ring it would wait for the next global pick.
    Source::Injector(Priority::High),
    Source::Own(Priority::Normal),
    Source::Own(Priority::Low),
    Source::Injector(Priority::Normal),
    Source::Injector(Priority::Low),
    Source::Steal(Priority::High),
    Source::Steal(Priority::Normal),
    Source::Steal(Priority::Low),
];

const GLOBAL_ORDER: [Source; 10] = [
    Source::Injector(Priority::High),
    Source::Steal(Priority::High),
    Source::Pinned,
    Source::Own(Priority::High),
    Source::Own(Priority::Low),
    Source::Injector(Priority::Low),
    Source::Own(Priority::Normal),
    Source::Injector(Priority::Normal),
    Source::Steal(Priority::Normal),
    Source::Steal(Priority::Low),
];

impl Policy {
    /// Where a job with `meta`, submitted from a worker with hint `hint`, goes. `inline_ok`:
    /// the submitting fiber can host the job (stack class fits, affinity allows this worker).
    #[inline]
    pub(crate) fn place(&self, meta: &JobMeta, hint: Hint, inline_ok: bool) -> Place {
        if let Affinity::Worker(k) = meta.affinity
            && !(hint == Hint::Inline && inline_ok)
        {
            return Place::Pinned(k);
        }
        match hint {
            Hint::Inline if inline_ok => Place::Inline,
            Hint::Inline | Hint::Lifo => Place::Own(meta.priority),
            Hint::Fifo => Place::Injector(meta.priority),
        }
    }

    /// Where a submission from a thread outside the pool goes.
    pub(crate) fn place_foreign(&self, meta: &JobMeta) -> Place {
        match meta.affinity {
            Affinity::Worker(k) => Place::Pinned(k),
            Affinity::Any => Place::Injector(meta.priority),
        }
    }

    /// The sources to look at, in order, for a worker's `tick`th pick.
    #[inline]
    pub(crate) fn order(&self, tick: u32) -> &'static [Source] {
        if self.global_pick(tick) {
            &GLOBAL_ORDER
        } else {
            &LOCAL_ORDER
        }
    }

    /// The priorities a waiting fiber's inline-children pass looks at, in order, for a
    /// worker's `tick`th pick.
    #[inline]
    pub(crate) fn child_order(&self, tick: u32) -> &'static [Priority] {
        if self.global_pick(tick) {
            &[Priority::High, Priority::Low, Priority::Normal]
        } else {
            &PRIORITIES
        }
    }

    /// Whether a worker's `tick`th pick is a global pick (an inline-children pass stops there
    /// when urgent work is pending elsewhere).
    #[inline]
    pub(crate) fn global_pick(&self, tick: u32) -> bool {
        tick.is_multiple_of(GLOBAL_PERIOD)
    }

    /// The first victim a thief among `workers` tries (it then goes round in index order),
    /// from a fresh random number.
    #[inline]
    pub(crate) fn first_victim(&self, workers: usize, random: u32) -> usize {
        random as usize % workers
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::job::StackClass;

    static NORMAL: JobMeta = JobMeta::new("n", file!(), line!());
    static HIGH: JobMeta = JobMeta::new("h", file!(), line!()).priority(Priority::High);
    static PINNED: JobMeta = JobMeta::new("p", file!(), line!()).affinity(Affinity::Worker(3));
    static LARGE_LOW: JobMeta = JobMeta::new("l", file!(), line!())
        .priority(Priority::Low)
        .stack(StackClass::Large);

    #[test]
    fn hints_map_to_places() {
        let p = Policy;
        assert_eq!(
            p.place(&NORMAL, Hint::Lifo, true),
            Place::Own(Priority::Normal)
        );
        assert_eq!(p.place(&HIGH, Hint::Lifo, true), Place::Own(Priority::High));
        assert_eq!(
            p.place(&HIGH, Hint::Fifo, true),
            Place::Injector(Priority::High)
        );
        assert_eq!(p.place(&NORMAL, Hint::Inline, true), Place::Inline);
        // A fiber that cannot host it: placed as Lifo.
        assert_eq!(
            p.place(&LARGE_LOW, Hint::Inline, false),
            Place::Own(Priority::Low)
        );
        // Pinned jobs go to their inbox unless they may run inline right here.
        assert_eq!(p.place(&PINNED, Hint::Lifo, true), Place::Pinned(3));
        assert_eq!(p.place(&PINNED, Hint::Fifo, true), Place::Pinned(3));
        assert_eq!(p.place(&PINNED, Hint::Inline, false), Place::Pinned(3));
        assert_eq!(p.place(&PINNED, Hint::Inline, true), Place::Inline);
        assert_eq!(p.place_foreign(&HIGH), Place::Injector(Priority::High));
        assert_eq!(p.place_foreign(&PINNED), Place::Pinned(3));
    }

    #[test]
    fn every_order_visits_every_source_once() {
        let p = Policy;
        for tick in 0..2 * GLOBAL_PERIOD {
            let order = p.order(tick);
            let mut all = vec![Source::Pinned];
            for pr in PRIORITIES {
                all.extend([Source::Own(pr), Source::Injector(pr), Source::Steal(pr)]);
            }
            assert_eq!(order.len(), all.len(), "tick {tick}");
            for s in all {
                assert_eq!(
                    order.iter().filter(|&&o| o == s).count(),
                    1,
                    "{s:?} at {tick}"
                );
            }
        }
    }

    /// Local picks: High before Normal before Low in every kind of source, own before shared
    /// within a priority, and High work in the injector before any local Normal or Low work.
    #[test]
    fn local_order_is_by_priority_then_locality() {
        let p = Policy;
        let order = p.order(1);
        let pos = |s| order.iter().position(|&o| o == s).unwrap();
        for kind in [Source::Own, Source::Injector, Source::Steal] {
            assert!(pos(kind(Priority::High)) < pos(kind(Priority::Normal)));
            assert!(pos(kind(Priority::Normal)) < pos(kind(Priority::Low)));
        }
        for pr in PRIORITIES {
            assert!(pos(Source::Own(pr)) < pos(Source::Injector(pr)));
        }
        assert!(pos(Source::Own(Priority::Low)) < pos(Source::Injector(Priority::Normal)));
        assert!(pos(Source::Injector(Priority::High)) < pos(Source::Own(Priority::Normal)));
        assert!(pos(Source::Injector(Priority::High)) < pos(Source::Own(Priority::Low)));
    }

    /// The anti-starvation bound as the executor sees it: in any window of GLOBAL_PERIOD
    /// consecutive picks there is a global pick, which looks at High work elsewhere before
    /// anything local and at Low work before Normal.
    #[test]
    fn every_window_of_picks_has_a_global_pick() {
        let p = Policy;
        for start in 0..3 * GLOBAL_PERIOD {
            let window = start..start + GLOBAL_PERIOD;
            let global = window.clone().find(|&t| p.global_pick(t));
            let tick = global.unwrap_or_else(|| panic!("no global pick in {window:?}"));
            let order = p.order(tick);
            assert_eq!(order[0], Source::Injector(Priority::High));
            assert_eq!(order[1], Source::Steal(Priority::High));
            let pos = |s| order.iter().position(|&o| o == s).unwrap();
            assert!(pos(Source::Own(Priority::Low)) < pos(Source::Own(Priority::Normal)));
            let children = p.child_order(tick);
            assert_eq!(children, [Priority::High, Priority::Low, Priority::Normal]);
        }
        assert_eq!(p.child_order(1), PRIORITIES);
    }

    #[test]
    fn first_victim_is_in_range() {
        let p = Policy;
        for workers in 1..20 {
            for r in [0, 1, 7, u32::MAX] {
                assert!(p.first_victim(workers, r) < workers);
            }
        }
    }
}
