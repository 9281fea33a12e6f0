//! The async bridge both ways: `Ctx::block_on` parks the fiber between polls and is woken by a
//! waker from any thread; jobs, counters and events are awaited from a plain thread's executor.

mod common;

use common::each_worker_count;
use jobsys::sync::{Event, EventKind};
use jobsys::{Counter, JobDecl, JobSystem};
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A minimal executor on the calling plain thread: poll, park the thread until woken.
fn exec<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A one-value mailbox between async code and whoever sends (std mutex, a `Waker` slot).
#[derive(Default)]
struct Mailbox(Mutex<(Option<u64>, Option<Waker>)>);

impl Mailbox {
    fn send(&self, v: u64) {
        let waker = {
            let mut s = self.0.lock().unwrap();
            assert!(s.0.is_none(), "one value at a time");
            s.0 = Some(v);
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn recv(&self) -> Recv<'_> {
        Recv(self)
    }
}

struct Recv<'a>(&'a Mailbox);

impl Future for Recv<'_> {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut s = self.0.0.lock().unwrap();
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_future_woken_from_a_foreign_thread_resumes_its_fiber() {
    each_worker_count(|jobs, n| {
        let mailbox = Arc::new(Mailbox::default());
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let io = {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || {
                go_rx.recv().unwrap();
                mailbox.send(41);
            })
        };
        // The other half tells the foreign thread to send only once it runs: on one worker it
        // runs only because the first half's fiber parked (the worker was not blocked).
        let (got, worker_ok) = jobs.run(|ctx| {
            ctx.join(
                |c| {
                    let before = c.worker_index();
                    let v = c.block_on(mailbox.recv());
                    (v + 1, c.worker_index() == before || n > 1)
                },
                |_| go_tx.send(()).unwrap(),
            )
            .0
        });
        io.join().unwrap();
        assert_eq!(got, 42, "{n} workers");
        assert!(
            worker_ok,
            "{n} workers: a parked fiber resumes on its own worker"
        );
    });
}

/// A future that hands its waker out and is ready at once.
struct GrabWaker;

impl Future for GrabWaker {
    type Output = Waker;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Waker> {
        Poll::Ready(cx.waker().clone())
    }
}

/// Pending until its mailbox has a value; wakes `stale` on its first poll.
struct WakesStaleFirst<'a> {
    stale: &'a Waker,
    mailbox: &'a Mailbox,
    polls: &'a AtomicUsize,
}

impl Future for WakesStaleFirst<'_> {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        if self.polls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.stale.wake_by_ref();
        }
        let mut s = self.mailbox.0.lock().unwrap();
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_stale_waker_does_nothing() {
    // One worker: the second half of the join runs exactly when the first half's fiber parks,
    // so it sees how often the future was polled before the park.
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    let mailbox = Mailbox::default();
    let polls = AtomicUsize::new(0);
    let (stale, polls_when_parked, v) = jobs.run(|ctx| {
        // The waker of a finished block_on of this same fiber.
        let stale = ctx.block_on(GrabWaker);
        let (v, seen) = ctx.join(
            |c| {
                c.block_on(WakesStaleFirst {
                    stale: &stale,
                    mailbox: &mailbox,
                    polls: &polls,
                })
            },
            |_| {
                let seen = polls.load(Ordering::SeqCst);
                mailbox.send(7);
                seen
            },
        );
        (stale, seen, v)
    });
    assert_eq!(v, 7);
    assert_eq!(
        polls_when_parked, 1,
        "the stale wake during the first poll made the fiber poll again instead of parking"
    );
    assert_eq!(polls.load(Ordering::SeqCst), 2, "one poll per real wake");
    // A waker that outlives its system: waking it later touches nothing freed and does nothing.
    drop(jobs);
    stale.wake_by_ref();
    stale.wake();
}

#[test]
fn an_async_task_and_a_fiber_job_ping_pong_through_the_bridge() {
    const ROUNDS: u64 = 500;
    for n in [1, 2, 4] {
        let jobs = JobSystem::builder().workers(n).build().unwrap();
        let to_fiber = Arc::new(Mailbox::default());
        let to_task = Arc::new(Event::new(EventKind::Auto));
        let last = Arc::new(AtomicUsize::new(0));
        let task = {
            let (to_fiber, to_task, last) = (to_fiber.clone(), to_task.clone(), last.clone());
            std::thread::spawn(move || {
                exec(async move {
                    for i in 0..ROUNDS {
                        to_fiber.send(i);
                        to_task.wait_async().await;
                        // The fiber stored its reply before setting the event.
                        assert_eq!(last.load(Ordering::SeqCst) as u64, i + 1);
                    }
                })
            })
        };
        let sum = jobs.run(|ctx| {
            let mut sum = 0;
            for i in 0..ROUNDS {
                let v = ctx.block_on(to_fiber.recv());
                assert_eq!(v, i, "{n} workers: values in order");
                sum += v;
                last.store(i as usize + 1, Ordering::SeqCst);
                to_task.set();
            }
            sum
        });
        task.join().unwrap();
        assert_eq!(sum, ROUNDS * (ROUNDS - 1) / 2, "{n} workers");
        assert_eq!(jobs.lost_wakeups(), 0);
    }
}

fn noop(_: &jobsys::Ctx, _: *mut ()) {}

#[test]
fn a_plain_thread_awaits_a_job_handle_a_counter_and_an_event() {
    each_worker_count(|jobs, n| {
        let handle = jobs.handle();
        let decls: Vec<JobDecl> = (0..64)
            .map(|_| JobDecl::new(&jobsys::JobMeta::DEFAULT, noop, std::ptr::null_mut()))
            .collect();
        let counter = Counter::new();
        let event = Event::new(EventKind::Manual);
        let awaited = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let awaiter = s.spawn(|| {
                let v = exec(async {
                    let h = handle.spawn_detached(|ctx| ctx.worker_count() * 10);
                    let v = h.await;
                    counter.wait_async(0).await;
                    event.wait_async().await;
                    v
                });
                awaited.store(true, Ordering::SeqCst);
                v
            });
            // SAFETY: the declarations and the counter outlive the jobs (the awaiter waits).
            unsafe { handle.run_jobs(&decls, &counter) };
            event.set();
            // Worker 0 is this thread: it runs jobs only inside `run`.
            jobs.run(|ctx| {
                while !awaited.load(Ordering::SeqCst) {
                    ctx.yield_now();
                }
            });
            assert_eq!(awaiter.join().unwrap(), n * 10);
        });
        assert_eq!(counter.value(), 0);
    });
}

#[test]
fn a_job_handle_awaited_inside_block_on_and_a_counter_from_async() {
    each_worker_count(|jobs, n| {
        let v = jobs.run(|ctx| {
            let c = Counter::new();
            let hs: Vec<_> = (0..8u64).map(|i| ctx.spawn_detached(move |_| i)).collect();
            ctx.block_on(async {
                let mut sum = 0;
                for h in hs {
                    sum += h.await;
                }
                c.wait_async(0).await; // already at its target
                sum
            })
        });
        assert_eq!(v, 28, "{n} workers");
    });
}

#[test]
fn a_panic_in_the_awaited_job_reaches_the_awaiter() {
    each_worker_count(|jobs, n| {
        let h = jobs
            .handle()
            .spawn_detached(|_| -> u32 { panic!("boom in the job") });
        let awaited = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let awaiter = {
            let awaited = awaited.clone();
            std::thread::spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    exec(h.into_future())
                }));
                awaited.store(true, Ordering::SeqCst);
                r
            })
        };
        // Worker 0 is this thread: it runs jobs only inside `run`.
        jobs.run(|ctx| {
            while !awaited.load(Ordering::SeqCst) {
                ctx.yield_now();
            }
        });
        let r = awaiter.join().unwrap();
        let payload = r.expect_err("the job's panic reaches the awaiter");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"boom in the job"),
            "{n} workers"
        );
        // Inside a job too, through block_on.
        let h = jobs
            .handle()
            .spawn_detached(|_| -> u32 { panic!("boom again") });
        let r = jobs.run(|ctx| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctx.block_on(h.into_future())
            }))
        });
        assert_eq!(
            r.expect_err("re-raised").downcast_ref::<&str>(),
            Some(&"boom again")
        );
    });
}

/// Polls `f` once with a waker that counts its wakes.
fn poll_once<F: Future>(f: Pin<&mut F>, wakes: &Arc<Wakes>) -> Poll<F::Output> {
    let waker = Waker::from(wakes.clone());
    f.poll(&mut Context::from_waker(&waker))
}

#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_dropped_future_withdraws_and_an_auto_event_signal_handed_to_it_is_passed_on() {
    let wakes = Arc::new(Wakes::default());
    // Counter: pending, dropped, then the count reaches the target: nobody is woken.
    let c = Counter::with_value(1);
    {
        let mut f = pin!(c.wait_async(0));
        assert!(poll_once(f.as_mut(), &wakes).is_pending());
    }
    c.sub(1);
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        0,
        "a withdrawn wait is not woken"
    );
    // A pending wait is woken by the decrement, once, and is then ready.
    let c = Counter::with_value(2);
    let mut f = pin!(c.wait_async(1));
    assert!(poll_once(f.as_mut(), &wakes).is_pending());
    c.sub(1);
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    assert!(poll_once(f.as_mut(), &wakes).is_ready());

    // Auto event: `set` hands the signal to the parked future, which is dropped unpolled: the
    // signal must not be lost.
    let e = Event::new(EventKind::Auto);
    {
        let mut f = pin!(e.wait_async());
        assert!(poll_once(f.as_mut(), &wakes).is_pending());
        e.set();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2, "set woke the future");
        assert!(!e.is_set(), "the signal went to the waiting future");
    }
    assert!(e.is_set(), "the dropped future passed its signal on");
    // And a future that takes it consumes it.
    let mut f = pin!(e.wait_async());
    assert!(poll_once(f.as_mut(), &wakes).is_ready());
    assert!(!e.is_set());
}

#[test]
fn a_re_poll_with_a_new_waker_is_the_one_woken() {
    let (old, new) = (Arc::new(Wakes::default()), Arc::new(Wakes::default()));
    let e = Event::new(EventKind::Manual);
    let mut f = pin!(e.wait_async());
    assert!(poll_once(f.as_mut(), &old).is_pending());
    assert!(poll_once(f.as_mut(), &new).is_pending());
    e.set();
    assert_eq!(old.0.load(Ordering::SeqCst), 0);
    assert_eq!(new.0.load(Ordering::SeqCst), 1);
    assert!(poll_once(f.as_mut(), &new).is_ready());
}
