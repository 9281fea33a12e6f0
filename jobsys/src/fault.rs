//! Fault-injection call sites at the scheduler's racy points.
//!
//! Today every site is an empty `#[inline(always)]` call, with or without the
//! `fault-injection` feature; seeded spins, yields, sleeps and spurious CAS failures arrive with
//! the reliability work (issue 5). The sites are here from the first commit so that work changes
//! no scheduler code.

/// Where a fault may be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Site {
    /// Before a job is pushed to a ring.
    Push,
    /// Before a steal attempt.
    Steal,
    /// Before a counter decrement.
    CounterDecrement,
    /// Before a wait node is published on a counter.
    WaitPublish,
    /// Between announcing sleep and re-checking for work.
    BeforeSleep,
    /// Before a worker switches into a fiber.
    Switch,
}

/// Possibly perturbs the current thread at `site`.
#[inline(always)]
pub(crate) fn inject(site: Site) {
    let _ = site;
}
