//! loom models of the counter protocol: publication against the decrement that reaches the
//! target, non-zero targets, and several waiters. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p jobsys --lib --release loom`.

use super::{CounterCore, WaitNode, Waiter};
use crate::sync::{AtomicBool, thread};
use loom::sync::Arc;

/// A blocking thread's wait: the same publish-then-park path `Handle::wait_for_counter` takes.
fn wait(counter: &CounterCore, target: u32) {
    if counter.is_done(target) {
        return;
    }
    let mut node = WaitNode::new(
        target,
        Waiter::Thread {
            thread: thread::current(),
            done: AtomicBool::new(false),
        },
    );
    // SAFETY: `node` lives on this stack until `block_thread` returns, after the waker's last
    // touch; `counter` outlives the wait (an `Arc` held by the caller).
    if unsafe { counter.publish(&mut node) } {
        node.block_thread();
    }
}

#[test]
fn loom_the_decrement_that_reaches_zero_wakes_the_waiter() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(2));
        let decrementers: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                loom::thread::spawn(move || c.sub(1))
            })
            .collect();
        wait(&c, 0);
        assert_eq!(c.value(), 0);
        decrementers.into_iter().for_each(|t| t.join().unwrap());
    });
}

#[test]
fn loom_a_non_zero_target_is_woken_by_the_decrement_that_reaches_it() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(3));
        let decrementers: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                loom::thread::spawn(move || c.sub(1))
            })
            .collect();
        wait(&c, 1);
        assert!(c.value() <= 1);
        decrementers.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.value(), 1);
    });
}

#[test]
fn loom_two_waiters_with_different_targets_both_wake() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(2));
        let other = {
            let c = c.clone();
            loom::thread::spawn(move || {
                wait(&c, 1);
                assert!(c.value() <= 1);
            })
        };
        let dec = {
            let c = c.clone();
            loom::thread::spawn(move || {
                c.sub(1);
                c.sub(1);
            })
        };
        wait(&c, 0);
        assert_eq!(c.value(), 0);
        other.join().unwrap();
        dec.join().unwrap();
    });
}
