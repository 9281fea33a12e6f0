//! loom models of the counter protocol: publication against the decrement that reaches the
//! target, non-zero targets, several waiters, and the holds of pre-armed counters
//! (`checked_add`/`checked_sub`, behind `Counter::add`/`sub`). Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p jobsys-fiber --lib --release counter::loom`
//! (the bound docs/testing.md uses; unbounded, the older models run for many minutes).

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

/// A hold taken while a waiter publishes: the `add` changes the word under the publisher's
/// CAS (which must retry, not overwrite the count), never wakes anyone, and the wait returns
/// once the job's decrement and the hold's release have both been made — with no lost wake-up.
#[test]
fn loom_a_hold_taken_while_a_waiter_publishes_is_counted() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(1));
        let holder = {
            let c = c.clone();
            loom::thread::spawn(move || {
                c.checked_add(1).unwrap();
                c.checked_sub(1).unwrap();
            })
        };
        let job = spawn_decrements(&c, 1);
        // May return between the job's decrement and the hold (the count was 0 then).
        wait(&c, 0);
        holder.join().unwrap();
        job.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.value(), 0);
    });
}

/// The pre-arm pattern: a held counter (1) gets a batch (+1, a job that records it ran and
/// decrements) and then its hold released (`checked_sub`), racing the waiter's publication.
/// The wait returns only after the batch ran, and the release that reaches the target (when
/// the job finished first) wakes it: no lost wake-up.
#[test]
fn loom_the_release_of_a_hold_wakes_a_waiter_publishing_concurrently() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(1));
        let ran = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let kicker = {
            let (c, ran) = (c.clone(), ran.clone());
            loom::thread::spawn(move || {
                c.checked_add(1).unwrap(); // `run_jobs` of a batch of one
                let job = {
                    let (c, ran) = (c.clone(), ran.clone());
                    loom::thread::spawn(move || {
                        ran.store(true, loom::sync::atomic::Ordering::Relaxed);
                        c.sub(1);
                    })
                };
                c.checked_sub(1).unwrap(); // release the hold
                job.join().unwrap();
            })
        };
        wait(&c, 0);
        // Acquire on the waiter's side, release on the job's decrement.
        assert!(
            ran.load(loom::sync::atomic::Ordering::Relaxed),
            "the wait returned before the batch ran"
        );
        kicker.join().unwrap();
    });
}

/// `checked_sub` reaching a non-zero target while a waiter publishes, with a second waiter
/// whose target it does not reach; the later decrement wakes that one.
#[test]
fn loom_a_checked_sub_that_reaches_a_non_zero_target_wakes_only_that_waiter() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(3));
        let other = {
            let c = c.clone();
            loom::thread::spawn(move || {
                wait(&c, 0);
                assert_eq!(c.value(), 0);
            })
        };
        let dec = {
            let c = c.clone();
            loom::thread::spawn(move || {
                c.checked_sub(2).unwrap();
                c.checked_sub(1).unwrap();
            })
        };
        wait(&c, 1);
        assert!(c.value() <= 1);
        other.join().unwrap();
        dec.join().unwrap();
    });
}

/// A refused add or sub changes nothing, a waiter's trigger included: the waiter parked on the
/// counter is still woken by the decrement that reaches its target.
#[test]
fn loom_a_refused_add_or_sub_keeps_the_waiter() {
    loom::model(|| {
        let c = Arc::new(CounterCore::new(u32::MAX));
        let dec = {
            let c = c.clone();
            loom::thread::spawn(move || {
                assert_eq!(c.checked_add(1), Err(u32::MAX));
                c.checked_sub(u32::MAX - 1).unwrap();
                assert_eq!(c.checked_sub(2), Err(1));
                c.checked_sub(1).unwrap();
            })
        };
        wait(&c, 0);
        assert_eq!(c.value(), 0);
        dec.join().unwrap();
    });
}
