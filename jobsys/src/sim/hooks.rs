//! The hooks the runtime calls (feature `simulation`): steps, fault sites, spins, parks and
//! unparks, the virtual clock, the generator, and what a thread says it waits on. Outside a
//! simulation's threads each one does nothing and says so (`false`, `None`). Without the
//! feature, `off.rs` stands in with empty versions of the ones called outside `shim/`.

use std::time::Duration;

use std::cell::Cell;

use super::world::{ME, NEVER, REPORTING, Status, TICK_NS, splitmix, with_me};

/// Whether the calling thread belongs to a simulation.
#[inline]
pub(crate) fn active() -> bool {
    !REPORTING.with(Cell::get) && ME.with(|m| m.borrow().is_some())
}

/// A step: the baton may move to another thread here.
#[inline]
pub(crate) fn step() {
    with_me(|w, me| {
        let s = w.count(w.lock(), me);
        w.maybe_switch(s, me);
    });
}

/// A fault-injection site (a racy point of a protocol, see `fault.rs`): a step where, with
/// [`super::Sim::preempt_one_in`], the thread may also be descheduled for a while.
pub(crate) fn site() {
    with_me(|w, me| {
        let mut s = w.count(w.lock(), me);
        // Drawn only when preemption is on, so that runs without it replay as before.
        if s.preempt_one_in != 0 && splitmix(&mut s.rng).is_multiple_of(s.preempt_one_in) {
            // Log-uniform from one tick to about 26 ms: short and very long deschedules are
            // both common. A long one outlasts another worker's way to sleep (its idle spins
            // and yields, thousands of steps).
            let span = TICK_NS << (splitmix(&mut s.rng) % 19);
            let until = s.clock.saturating_add(span);
            s.threads[me].status = Status::Preempted { until };
            s.preemptions += 1;
            drop(w.pass(s, me, true));
            return;
        }
        w.maybe_switch(s, me);
    });
}

/// A spin or yield: the baton moves to another runnable thread if there is one (or time
/// passes to the next deadline). Returns false outside a simulation.
pub(crate) fn spin() -> bool {
    with_me(|w, me| {
        let s = w.count(w.lock(), me);
        drop(w.pass(s, me, true));
    })
    .is_some()
}

/// A draw from the simulation's generator, `None` outside one.
pub(crate) fn random() -> Option<u64> {
    with_me(|w, me| {
        let mut s = w.count(w.lock(), me);
        splitmix(&mut s.rng)
    })
}

/// The wait-list bucket of the caller's simulation, `None` outside one. Replay must not
/// depend on where memory happens to be (addresses change from run to run), nor on what
/// other simulations running in the same process do: each simulation puts all of its keys in
/// a bucket of its own.
pub(crate) fn bucket() -> Option<usize> {
    with_me(|w, _| w.bucket)
}

/// The virtual clock in nanoseconds, `None` outside a simulation.
pub(crate) fn now() -> Option<u64> {
    with_me(|w, _| w.lock().clock)
}

/// Parks the calling thread until unparked or `timeout` (none: untimed) passes in virtual
/// time. Returns false outside a simulation.
pub(crate) fn park(timeout: Option<Duration>) -> bool {
    with_me(|w, me| {
        let mut s = w.count(w.lock(), me);
        let t = &mut s.threads[me];
        if std::mem::take(&mut t.token) {
            return;
        }
        let deadline = timeout.map_or(NEVER, |d| {
            s.clock
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(NEVER))
        });
        s.threads[me].status = Status::Blocked { deadline };
        drop(w.pass(s, me, false));
    })
    .is_some()
}

/// Unparks `thread` if it belongs to the caller's simulation. Returns false when the caller
/// is outside one (then use `Thread::unpark`).
pub(crate) fn unpark(thread: &std::thread::Thread) -> bool {
    with_me(|w, me| {
        let mut s = w.count(w.lock(), me);
        let id = thread.id();
        if let Some(t) = s.threads.iter_mut().find(|t| t.os == Some(id)) {
            if matches!(t.status, Status::Blocked { .. }) {
                t.status = Status::Runnable;
            } else {
                t.token = true;
            }
        } else {
            thread.unpark();
        }
    })
    .is_some()
}

/// Says what the calling thread is about to block on (for the wait graph), until
/// [`done_waiting`].
pub(crate) fn waits_on(what: impl FnOnce() -> String) {
    with_me(|w, me| w.lock().threads[me].waits_on = Some(what()));
}

/// Ends what [`waits_on`] said.
pub(crate) fn done_waiting() {
    with_me(|w, me| w.lock().threads[me].waits_on = None);
}

/// Adds to the wait graph of a failed run (a system registers its fiber report): `make`
/// builds the reporter, only inside a simulation.
pub(crate) fn on_report<R>(make: impl FnOnce() -> R)
where
    R: Fn() -> String + Send + 'static,
{
    with_me(|w, _| w.lock().reporters.push(Box::new(make())));
}
