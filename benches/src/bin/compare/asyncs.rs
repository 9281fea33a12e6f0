//! The `async` section: the async bridge (`Ctx::block_on`, `Event::wait_async`) against
//! `pollster::block_on` on a plain thread.
//!
//! - `block_on` of a ready future: ns per call, `ctx.block_on` inside a job against
//!   `pollster::block_on` on the main thread;
//! - ping-pong: an async task on a plain thread (run by `pollster`) sends a value to a fiber
//!   job, which `ctx.block_on`s its mailbox and replies through a `jobsys::sync::Event` that
//!   the task awaits (`wait_async`); the peer is the same two mailboxes between two plain
//!   threads, each running its side under `pollster::block_on`. ns per round trip.
//!
//! Each value is the median of the timed runs, with the range (min–max) of the runs.

use crate::session::{Row, Session, on_jobsys_pool, progress};
use jobsys::sync::{Event, EventKind};
use jobsys_benches::{Sample, warm_then_time};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Median (range min–max) of runs in ns, each divided by `per`.
fn cell(runs: &[f64], per: f64) -> (f64, String) {
    let s = Sample::of(runs).scaled(per);
    let max = runs.iter().copied().fold(f64::MIN, f64::max) / per;
    (
        s.median,
        format!("{:.1} ({:.1}–{:.1})", s.median, s.min, max),
    )
}

/// A one-value async mailbox (std mutex and a waker slot), the same on both sides.
#[derive(Default)]
struct Mailbox(Mutex<(Option<u64>, Option<Waker>)>);

impl Mailbox {
    fn send(&self, v: u64) {
        let waker = {
            let mut s = self.0.lock().unwrap();
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
                if !s.1.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.1 = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// The async side of a ping-pong: `rounds` times, send `i` and await the reply.
async fn task_side(rounds: u64, to_fiber: &Mailbox, reply: &Event) {
    for i in 0..rounds {
        to_fiber.send(i);
        reply.wait_async().await;
    }
}

pub(crate) fn asyncs(b: &mut Session) {
    if !b.args.wants("async") {
        return;
    }
    let (t, runs, quick) = (b.args.workers, b.args.runs, b.args.quick);
    let (calls, rounds) = if quick {
        (200_000u64, 2_000u64)
    } else {
        (2_000_000, 20_000)
    };

    progress("async: block_on of a ready future: jobsys");
    let ours = on_jobsys_pool(t, |ctx| {
        warm_then_time(runs, || {
            let start = Instant::now();
            let mut sum = 0u64;
            for i in 0..calls {
                sum = sum.wrapping_add(ctx.block_on(std::future::ready(black_box(i))));
            }
            assert_eq!(sum, calls * (calls - 1) / 2);
            start.elapsed()
        })
    });
    progress("async: block_on of a ready future: pollster");
    let peer = warm_then_time(runs, || {
        let start = Instant::now();
        let mut sum = 0u64;
        for i in 0..calls {
            sum = sum.wrapping_add(pollster::block_on(std::future::ready(black_box(i))));
        }
        assert_eq!(sum, calls * (calls - 1) / 2);
        start.elapsed()
    });
    let ((jm, js), (pm, ps)) = (cell(&ours, calls as f64), cell(&peer, calls as f64));
    b.rows.push(Row {
        workload: "async: block_on of a ready future, ns per call (range)".into(),
        jobsys: format!("Ctx::block_on {js}"),
        peer: format!("pollster::block_on {ps}"),
        ratio: Some(jm / pm),
        target: "reported".into(),
        met: "—".into(),
    });

    progress("async: ping-pong async task <-> fiber job: jobsys");
    let ours = on_jobsys_pool(t, |ctx| {
        warm_then_time(runs, || {
            let (to_fiber, reply) = (Mailbox::default(), Event::new(EventKind::Auto));
            std::thread::scope(|s| {
                let start = Instant::now();
                let task = s.spawn(|| pollster::block_on(task_side(rounds, &to_fiber, &reply)));
                for i in 0..rounds {
                    assert_eq!(ctx.block_on(to_fiber.recv()), i);
                    reply.set();
                }
                task.join().unwrap();
                start.elapsed()
            })
        })
    });
    progress("async: ping-pong async task <-> plain thread: pollster");
    let peer = warm_then_time(runs, || {
        let (to_fiber, back) = (Mailbox::default(), Mailbox::default());
        std::thread::scope(|s| {
            let start = Instant::now();
            let task = s.spawn(|| {
                pollster::block_on(async {
                    for i in 0..rounds {
                        to_fiber.send(i);
                        back.recv().await;
                    }
                })
            });
            for i in 0..rounds {
                assert_eq!(pollster::block_on(to_fiber.recv()), i);
                back.send(i);
            }
            task.join().unwrap();
            start.elapsed()
        })
    });
    let ((jm, js), (pm, ps)) = (cell(&ours, rounds as f64), cell(&peer, rounds as f64));
    b.rows.push(Row {
        workload: "async: ping-pong async task ↔ job, ns per round trip (range)".into(),
        jobsys: format!("task awaits Event::wait_async, job Ctx::block_on {js}"),
        peer: format!("2 plain threads, pollster::block_on both sides {ps}"),
        ratio: Some(jm / pm),
        target: "reported".into(),
        met: "—".into(),
    });
}
