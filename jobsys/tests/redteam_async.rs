//! Red-team checks of the async bridge and of cancellation: wakers whose drop does work,
//! panics that carry the `Cancelled` value, nested `block_on`, stale wakers across many
//! generations.

mod common;

use jobsys::sync::{Event, EventKind};
use jobsys::{Cancelled, Counter, JobSystem};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A waker that sets an event when its last clone is dropped (an executor's task whose
/// teardown signals something: legal, safe code).
struct SetsOnDrop(Arc<Event>);

impl Wake for SetsOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for SetsOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn an_event_wait_re_polled_with_a_new_waker_drops_the_old_one_outside_the_lock() {
    for kind in [EventKind::Manual, EventKind::Auto] {
        let event = Arc::new(Event::new(kind));
        let mut wait = pin!(event.wait_async());
        let first = Waker::from(Arc::new(SetsOnDrop(event.clone())));
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&first))
                .is_pending()
        );
        // The node's clone is now the last one of `first`.
        drop(first);
        // A re-poll with another waker replaces the node's waker under the bucket lock; the
        // old waker's drop sets the very event the node is parked on (same bucket).
        let second = Waker::from(Arc::new(Noop));
        let got = wait.as_mut().poll(&mut Context::from_waker(&second));
        // Whatever the poll said, the set released the wait (manual: set; auto: handed over
        // or left set for this waiter's next look).
        if got.is_pending() {
            assert!(
                wait.as_mut()
                    .poll(&mut Context::from_waker(&second))
                    .is_ready(),
                "{kind:?}: the set from the old waker's drop was lost"
            );
        }
    }
}

#[test]
fn a_counter_wait_re_polled_with_a_new_waker_drops_the_old_one_outside_the_lock() {
    struct SubsOnDrop(Arc<Counter>);
    impl Wake for SubsOnDrop {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for SubsOnDrop {
        fn drop(&mut self) {
            self.0.sub(1);
        }
    }
    let counter = Arc::new(Counter::with_value(1));
    let mut wait = pin!(counter.wait_async(0));
    let first = Waker::from(Arc::new(SubsOnDrop(counter.clone())));
    assert!(
        wait.as_mut()
            .poll(&mut Context::from_waker(&first))
            .is_pending()
    );
    drop(first);
    let second = Waker::from(Arc::new(Noop));
    let mut got = wait.as_mut().poll(&mut Context::from_waker(&second));
    if got.is_pending() {
        got = wait.as_mut().poll(&mut Context::from_waker(&second));
    }
    assert!(
        got.is_ready(),
        "the decrement from the old waker's drop was lost"
    );
    assert_eq!(counter.value(), 0);
}

#[test]
fn a_started_job_that_panics_with_the_cancelled_value_is_a_panic_not_a_cancellation() {
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    // try_join: the job ran (nothing cancelled it), so its panic is re-raised.
    let r = catch_unwind(AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                let h = s.spawn(|_| -> u32 { std::panic::panic_any(Cancelled) });
                h.try_join(s)
            })
        })
    }));
    assert!(
        r.is_err(),
        "try_join of a job that started and panicked returned {r:?} instead of re-raising"
    );
    // A dropped handle: the job's panic reaches the scope.
    let r = catch_unwind(AssertUnwindSafe(|| {
        jobs.run(|ctx| {
            ctx.scope(|s| {
                drop(s.spawn(|_| std::panic::panic_any(Cancelled)));
            })
        })
    }));
    assert!(
        r.is_err(),
        "the panic of a job with a dropped handle was swallowed"
    );
}

/// Ready at the second poll, waking itself at the first (through a clone).
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_stale_waker_kept_across_many_generations_only_causes_spurious_polls() {
    // One worker: a helper job runs exactly while the block_on's fiber is parked.
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let stale: Mutex<Option<Waker>> = Mutex::new(None);
    let total = jobs.run(|ctx| {
        let mut total = 0u64;
        for round in 0..200u64 {
            let mailbox: Mutex<(Option<u64>, Option<Waker>)> = Mutex::new((None, None));
            let (v, ()) = ctx.join(
                |c| {
                    c.block_on(std::future::poll_fn(|cx| {
                        {
                            let mut st = stale.lock().unwrap();
                            if st.is_none() {
                                *st = Some(cx.waker().clone());
                            }
                        }
                        let mut m = mailbox.lock().unwrap();
                        match m.0.take() {
                            Some(v) => Poll::Ready(v),
                            None => {
                                m.1 = Some(cx.waker().clone());
                                Poll::Pending
                            }
                        }
                    }))
                },
                |_| {
                    // The fiber is parked (one worker): the stale waker wakes it for
                    // nothing (some rounds its tag matches), then the real send.
                    if let Some(w) = &*stale.lock().unwrap() {
                        w.wake_by_ref();
                    }
                    let w = {
                        let mut m = mailbox.lock().unwrap();
                        m.0 = Some(round);
                        m.1.take()
                    };
                    if let Some(w) = w {
                        w.wake();
                    }
                },
            );
            assert_eq!(v, round);
            ctx.block_on(YieldOnce(false));
            total += v;
        }
        total
    });
    assert_eq!(total, (0..200).sum::<u64>());
    drop(jobs);
    // After the system: the waker keeps its memory alive; waking does nothing.
    let w = stale.lock().unwrap().take().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let w = w.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    w.wake_by_ref();
                }
                w.wake();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn wakers_hammered_from_many_threads_while_block_on_runs() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    // One slot per job: every parked block_on has its live waker in reach of the hammers.
    let slots: Arc<Vec<Mutex<Option<Waker>>>> =
        Arc::new((0..4).map(|_| Mutex::new(None)).collect());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer: Vec<_> = (0..3)
        .map(|_| {
            let slots = slots.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for slot in slots.iter() {
                        let w = slot.lock().unwrap().clone();
                        if let Some(w) = w {
                            w.wake();
                        }
                    }
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    let polls = AtomicUsize::new(0);
    let n = jobs.run(|ctx| {
        ctx.scope(|s| {
            for slot in slots.iter() {
                let polls = &polls;
                s.spawn(move |c| {
                    for _ in 0..50 {
                        let mut seen = 0;
                        c.block_on(std::future::poll_fn(|cx| {
                            polls.fetch_add(1, Ordering::Relaxed);
                            *slot.lock().unwrap() = Some(cx.waker().clone());
                            seen += 1;
                            if seen == 5 {
                                Poll::Ready(())
                            } else {
                                Poll::Pending
                            }
                        }));
                    }
                });
            }
        });
        polls.load(Ordering::Relaxed)
    });
    stop.store(true, Ordering::Relaxed);
    for t in hammer {
        t.join().unwrap();
    }
    assert_eq!(n, 4 * 50 * 5);
    // The last waker outlives the system in the slot; drop it on this thread after the system.
    drop(jobs);
    for slot in slots.iter() {
        drop(slot.lock().unwrap().take());
    }
}

#[test]
fn block_on_in_a_job_run_inline_inside_another_block_on() {
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let v = jobs.run(|ctx| {
        ctx.block_on(async {
            ctx.scope(|s| {
                let h = s.spawn_hinted(jobsys::Hint::Inline, &jobsys::JobMeta::DEFAULT, |c| {
                    c.block_on(async { 5 })
                });
                h.join(s)
            })
        })
    });
    assert_eq!(v, 5);
}

#[test]
fn a_nested_block_on_that_parks_and_an_outer_wake_during_it() {
    // Two workers: the inner block_on parks and is woken from another job; the outer future
    // is woken (its waker) while the inner one runs, and still completes.
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let gate = Event::new(EventKind::Manual);
    let outer_woken = std::sync::atomic::AtomicBool::new(false);
    let v = jobs.run(|ctx| {
        ctx.join(
            |c| {
                let mut step = 0;
                c.block_on(std::future::poll_fn(|cx| {
                    step += 1;
                    if step == 1 {
                        // Inside the outer poll: a nested block_on that waits for the gate,
                        // with the outer waker woken meanwhile.
                        let w = cx.waker().clone();
                        let inner = c.block_on(async {
                            w.wake_by_ref();
                            outer_woken.store(true, Ordering::SeqCst);
                            gate.wait_async().await;
                            10
                        });
                        assert_eq!(inner, 10);
                        Poll::Pending
                    } else {
                        Poll::Ready(step)
                    }
                }))
            },
            |_| gate.set(),
        )
    });
    assert!(outer_woken.load(Ordering::SeqCst));
    assert_eq!(
        v.0, 2,
        "the outer future was polled again after the nested block_on"
    );
}

#[test]
fn a_waker_of_one_system_woken_while_another_runs() {
    let a = JobSystem::builder().workers(1).build().unwrap();
    let w = a.run(|ctx| ctx.block_on(std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone()))));
    let b = JobSystem::builder().workers(2).build().unwrap();
    let v = b.run(|ctx| {
        ctx.block_on(std::future::poll_fn(|cx| {
            w.wake_by_ref();
            let _ = cx;
            Poll::Ready(3)
        }))
    });
    assert_eq!(v, 3);
    drop(a);
    w.wake_by_ref();
    drop(b);
    w.wake();
}

#[test]
fn a_detached_handle_awaited_after_its_system_dropped() {
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let h = jobs.handle().spawn_detached(|_| 6 * 7);
    drop(jobs); // drains: the job ran
    let mut f = pin!(std::future::IntoFuture::into_future(h));
    let w = Waker::from(Arc::new(Noop));
    assert_eq!(
        f.as_mut().poll(&mut Context::from_waker(&w)),
        Poll::Ready(42)
    );
}
