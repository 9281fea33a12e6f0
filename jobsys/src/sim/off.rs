//! The hooks without the `simulation` feature: empty `#[inline(always)]` functions that say
//! "not in a simulation" (`false`, `None`), so the runtime calls them unconditionally and they
//! compile to nothing. Only the hooks called outside `shim/` are here: the stepped backend
//! (`shim/stepped.rs`), the one caller of the others, is built only with the feature.

/// Whether the calling thread belongs to a simulation: never.
#[inline(always)]
pub(crate) fn active() -> bool {
    false
}

/// A fault-injection site as a step: none.
#[inline(always)]
pub(crate) fn site() {}

/// A draw from the simulation's generator: none.
#[inline(always)]
pub(crate) fn random() -> Option<u64> {
    None
}

/// The simulation's wait-list bucket: none.
#[inline(always)]
pub(crate) fn bucket() -> Option<usize> {
    None
}

/// The virtual clock: none.
#[inline(always)]
pub(crate) fn now() -> Option<u64> {
    None
}

/// What the calling thread blocks on: `what` is never called.
#[inline(always)]
pub(crate) fn waits_on(what: impl FnOnce() -> String) {
    let _ = what;
}

/// Ends what [`waits_on`] said: nothing to end.
#[inline(always)]
pub(crate) fn done_waiting() {}

/// A wait-graph reporter: `make` is never called.
#[inline(always)]
pub(crate) fn on_report<R>(make: impl FnOnce() -> R)
where
    R: Fn() -> String + Send + 'static,
{
    let _ = make;
}
