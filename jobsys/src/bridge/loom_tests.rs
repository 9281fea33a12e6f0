//! loom models of the `block_on` waker state machine (`cell.rs`) with the real park table: a
//! loom thread stands in for the fiber (it parks through `park::park_thread`, the same
//! publication and validation under the bucket lock as a fiber's park), another wakes it.
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p jobsys-fiber --lib --release loom`.

use super::cell::{GENS, IDLE, WakeCell};
use crate::shim::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

/// The fiber's side of `Ctx::block_on` for a future that is ready once `ready` is set:
/// poll, prepare the park, park, resume. Returns the number of polls.
fn block_on_flag(cell: &WakeCell, generation: u64, ready: &AtomicBool) -> usize {
    let mut polls = 0;
    loop {
        polls += 1;
        if ready.load(Ordering::Acquire) {
            return polls;
        }
        if cell.prepare_park(generation) {
            // SAFETY: the validator reads `cell`, alive until this returns.
            unsafe {
                crate::park::park_thread(
                    cell.key(),
                    WakeCell::validate,
                    (cell as *const WakeCell).cast(),
                    crate::deadline::NEVER,
                )
            };
            cell.resume(generation);
        }
    }
}

#[test]
fn loom_block_on_wake_from_another_thread_is_never_lost() {
    loom::model(|| {
        let cell = Arc::new(WakeCell::new());
        let ready = Arc::new(AtomicBool::new(false));
        let (generation, outer) = cell.begin();
        let waker = {
            let (cell, ready) = (cell.clone(), ready.clone());
            // The future's completion and its wake, from another thread (a reactor).
            thread::spawn(move || {
                ready.store(true, Ordering::Release);
                cell.wake(generation % GENS);
            })
        };
        // A lost wake-up leaves this thread parked forever: loom reports the deadlock.
        let polls = block_on_flag(&cell, generation, &ready);
        assert!(polls <= 2, "at most one poll per wake, plus the first");
        cell.end(generation, outer);
        waker.join().unwrap();
        assert_eq!(cell.phase(), IDLE);
    });
}

#[test]
fn loom_a_stale_waker_never_notifies_a_later_block_on() {
    loom::model(|| {
        let cell = Arc::new(WakeCell::new());
        let ready = Arc::new(AtomicBool::new(false));
        let (first, outer) = cell.begin();
        let stale = {
            let (cell, ready) = (cell.clone(), ready.clone());
            thread::spawn(move || {
                ready.store(true, Ordering::Release);
                cell.wake(first % GENS);
            })
        };
        // The first block_on completes through the wake (parking or not)...
        block_on_flag(&cell, first, &ready);
        cell.end(first, outer);
        // ...and the next one on the same fiber is not notified by it, whenever it lands: its
        // first `prepare_park` after a pending poll succeeds. (The first one's unpark may still
        // be on its way and end a park of the second early: that is a spurious poll only.)
        let (second, outer) = cell.begin();
        assert!(
            cell.prepare_park(second),
            "a stale waker notified a later block_on"
        );
        cell.resume(second);
        cell.end(second, outer);
        stale.join().unwrap();
        assert!(
            !cell.wake(first % GENS),
            "a finished block_on's waker does nothing"
        );
    });
}

#[test]
fn loom_two_wakers_one_park() {
    loom::model(|| {
        let cell = Arc::new(WakeCell::new());
        let ready = Arc::new(AtomicBool::new(false));
        let (generation, outer) = cell.begin();
        let wakers: Vec<_> = (0..2)
            .map(|i| {
                let (cell, ready) = (cell.clone(), ready.clone());
                thread::spawn(move || {
                    if i == 0 {
                        ready.store(true, Ordering::Release);
                    }
                    cell.wake(generation % GENS);
                })
            })
            .collect();
        block_on_flag(&cell, generation, &ready);
        cell.end(generation, outer);
        for w in wakers {
            w.join().unwrap();
        }
    });
}

#[test]
fn loom_a_wake_of_the_outer_block_on_during_a_nested_one_is_not_lost() {
    loom::model(|| {
        let cell = Arc::new(WakeCell::new());
        let ready = Arc::new(AtomicBool::new(false));
        let (outer_gen, idle) = cell.begin();
        // The outer future's completion and wake, racing the nested block_on's begin and end.
        let waker = {
            let (cell, ready) = (cell.clone(), ready.clone());
            thread::spawn(move || {
                ready.store(true, Ordering::Release);
                cell.wake(outer_gen % GENS);
            })
        };
        // The outer future's first poll runs a nested block_on (of a ready future) before it
        // returns Pending.
        let (inner, saved) = cell.begin();
        cell.end(inner, saved);
        // The rest of the outer block_on: a lost wake-up parks this thread for good.
        block_on_flag(&cell, outer_gen, &ready);
        cell.end(outer_gen, idle);
        waker.join().unwrap();
        assert_eq!(cell.phase(), IDLE);
    });
}
