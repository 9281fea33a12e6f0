//! loom models of the counter protocol: publication against the decrement that reaches the
//! target, non-zero targets, and several waiters. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p jobsys-fiber --lib --release loom`.

use super::CounterCore;
use loom::sync::Arc;

/// A blocking thread's wait: the very loop `Handle::wait_for_counter` runs.
fn wait(counter: &CounterCore, target: u32) {
    super::block_thread_until(counter, target, crate::deadline::NEVER);
}

/// `n` threads, each removing one finished job from `c`.
fn spawn_decrements(c: &Arc<CounterCore>, n: usize) -> Vec<loom::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let c = c.clone();
            loom::thread::spawn(move || c.sub(1))
        })
        .collect()
}

#[test]
fn loom_the_decrement_that_reaches_zero_wakes_the_waiter() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(2));
        let decrementers = spawn_decrements(&c, 2);
        wait(&c, 0);
        assert_eq!(c.value(), 0);
        decrementers.into_iter().for_each(|t| t.join().unwrap());
    });
}

#[test]
fn loom_a_non_zero_target_is_woken_by_the_decrement_that_reaches_it() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(3));
        let decrementers = spawn_decrements(&c, 2);
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

/// Found in review: a decrement whose slow path runs late (it read the trigger of an earlier
/// waiter) wakes a waiter that has since re-armed the counter with a new batch. The wait must
/// not return before its own target is reached.
#[test]
fn loom_a_late_slow_path_never_ends_a_later_wait_early() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(2));
        let first = spawn_decrements(&c, 2);
        wait(&c, 1);
        // A new batch of 2 on the same counter, counted down by one more job.
        c.add(2);
        let second = {
            let c = c.clone();
            loom::thread::spawn(move || {
                c.sub(1);
                c.sub(1);
            })
        };
        wait(&c, 0);
        assert_eq!(c.value(), 0, "a wait for 0 returned early");
        first.into_iter().for_each(|t| t.join().unwrap());
        second.join().unwrap();
    });
}
