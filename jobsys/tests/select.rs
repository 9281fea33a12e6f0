//! `select` over channel operations, across worker counts: exactly one arm completes (no value
//! is taken twice or lost), ready arms are chosen fairly, the default arm (`try_select`) and
//! the timeout work, an unsent value comes back, and close completes an arm.

mod common;

use common::{each_worker_count, system};
use jobsys::sync::{
    Channel, RecvArm, RecvError, SendArm, SendError, ThisThread, select, select_timeout, try_select,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn select_never_completes_two_arms() {
    // Both channels hold a value: one select takes exactly one of them.
    let a = Channel::new(2);
    let b = Channel::new(2);
    for round in 0..200 {
        a.try_send(round).unwrap();
        b.try_send(round).unwrap();
        let mut ra = RecvArm::new(&a);
        let mut rb = RecvArm::new(&b);
        let i = try_select(&mut [&mut ra, &mut rb]).expect("both ready");
        let (won, lost) = if i == 0 {
            (&mut ra, &mut rb)
        } else {
            (&mut rb, &mut ra)
        };
        assert_eq!(won.take(), Some(Ok(round)));
        assert_eq!(lost.take(), None, "round {round}: two arms completed");
        assert_eq!(a.len() + b.len(), 1, "round {round}");
        // Drain the other for the next round.
        let _ = a.try_recv();
        let _ = b.try_recv();
    }
}

#[test]
fn selecting_consumers_receive_every_message_exactly_once() {
    const EACH: usize = 1_500;
    each_worker_count(|jobs, n| {
        let a = Channel::new(2);
        let b = Channel::new(4);
        let seen: Vec<AtomicUsize> = (0..2 * EACH).map(|_| AtomicUsize::new(0)).collect();
        let closed = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn(|s| {
                    for i in 0..EACH {
                        a.send(s, i).unwrap();
                    }
                    a.close();
                });
                s.spawn(|s| {
                    for i in EACH..2 * EACH {
                        b.send(s, i).unwrap();
                    }
                    b.close();
                });
                // Three selecting consumers and a plain one compete for the same values.
                for _ in 0..3 {
                    s.spawn(|s| {
                        // Select over the channels still open (a closed, drained one is
                        // always ready: selecting on it again would spin).
                        let mut open = [true, true];
                        while open.iter().any(|&o| o) {
                            let mut ra = RecvArm::new(&a);
                            let mut rb = RecvArm::new(&b);
                            let (i, got) = match open {
                                [true, true] => match select(s, &mut [&mut ra, &mut rb]) {
                                    0 => (0, ra.take()),
                                    _ => (1, rb.take()),
                                },
                                [true, false] => {
                                    select(s, &mut [&mut ra]);
                                    (0, ra.take())
                                }
                                _ => {
                                    select(s, &mut [&mut rb]);
                                    (1, rb.take())
                                }
                            };
                            match got.expect("the chosen arm holds its outcome") {
                                Ok(v) => {
                                    seen[v].fetch_add(1, Ordering::Relaxed);
                                }
                                Err(RecvError) => open[i] = false,
                            }
                        }
                        closed.fetch_add(1, Ordering::Relaxed);
                    });
                }
                s.spawn(|s| {
                    while let Ok(v) = a.recv(s) {
                        seen[v].fetch_add(1, Ordering::Relaxed);
                    }
                });
            });
        });
        for (v, c) in seen.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), 1, "{n} workers: value {v}");
        }
        assert_eq!(closed.load(Ordering::Relaxed), 3);
    });
}

#[test]
fn a_thread_and_fibers_select_over_the_same_channels() {
    each_worker_count(|jobs, n| {
        const EACH: usize = 500;
        let a = Channel::new(2);
        let b = Channel::new(2);
        let sum = AtomicUsize::new(0);
        let consume = |select: &dyn Fn(&mut [&mut dyn jobsys::sync::SelectArm]) -> usize| {
            let mut open = [true, true];
            while open.iter().any(|&o| o) {
                let mut ra = RecvArm::new(&a);
                let mut rb = RecvArm::new(&b);
                // Only the open channels' arms (a closed, drained one is always ready).
                let (i, got) = match open {
                    [true, true] => match select(&mut [&mut ra, &mut rb]) {
                        0 => (0, ra.take()),
                        _ => (1, rb.take()),
                    },
                    [true, false] => {
                        select(&mut [&mut ra]);
                        (0, ra.take())
                    }
                    _ => {
                        select(&mut [&mut rb]);
                        (1, rb.take())
                    }
                };
                match got.expect("the chosen arm holds its outcome") {
                    Ok(v) => {
                        sum.fetch_add(v, Ordering::Relaxed);
                    }
                    Err(RecvError) => open[i] = false,
                }
            }
        };
        std::thread::scope(|t| {
            t.spawn(|| consume(&|arms| select(&ThisThread, arms)));
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    s.spawn(|s| consume(&|arms| select(s, arms)));
                    s.spawn(|s| {
                        for _ in 0..EACH {
                            a.send(s, 1).unwrap();
                        }
                        a.close();
                    });
                    for _ in 0..EACH {
                        b.send(s, 2).unwrap();
                    }
                    b.close();
                });
            });
        });
        assert_eq!(sum.load(Ordering::Relaxed), 3 * EACH, "{n} workers");
    });
}

#[test]
fn select_is_fair_among_ready_arms() {
    let chans: Vec<Channel<u8>> = (0..3).map(|_| Channel::new(2)).collect();
    let mut wins = [0usize; 3];
    for _ in 0..3_000 {
        for c in &chans {
            if c.is_empty() {
                c.try_send(0).unwrap();
            }
        }
        let mut arms: Vec<RecvArm<'_, u8>> = chans.iter().map(RecvArm::new).collect();
        let mut refs: Vec<&mut dyn jobsys::sync::SelectArm> = arms
            .iter_mut()
            .map(|a| a as &mut dyn jobsys::sync::SelectArm)
            .collect();
        wins[try_select(&mut refs).expect("all ready")] += 1;
    }
    // Uniform would be 1,000 each; a fixed order would give one arm everything.
    for (i, w) in wins.iter().enumerate() {
        assert!(*w >= 700, "arm {i} won {w} of 3,000 ({wins:?})");
    }
}

#[test]
fn the_default_arm_and_the_timeout() {
    let jobs = system(2);
    let a = Channel::<u32>::new(2);
    let full = Channel::new(2);
    full.try_send(1).unwrap();
    full.try_send(2).unwrap();
    // Nothing ready: the default arm (None) at once, and a send arm keeps its value.
    let mut ra = RecvArm::new(&a);
    let mut sf = SendArm::new(&full, 3);
    assert_eq!(try_select(&mut [&mut ra, &mut sf]), None);
    jobs.run(|ctx| {
        assert_eq!(
            select_timeout(ctx, &mut [&mut ra, &mut sf], Duration::from_millis(2)),
            None
        );
    });
    assert_eq!(
        select_timeout(
            &ThisThread,
            &mut [&mut ra, &mut sf],
            Duration::from_millis(2)
        ),
        None
    );
    assert_eq!(ra.take(), None);
    assert_eq!(sf.take(), None);
    assert_eq!(sf.into_unsent(), Some(3));
    assert_eq!(full.len(), 2);
    // Ready: the recv arm completes; the send arm is not sent and hands its value back.
    a.try_send(9).unwrap();
    let mut ra = RecvArm::new(&a);
    let mut sf = SendArm::new(&full, 4);
    assert_eq!(try_select(&mut [&mut ra, &mut sf]), Some(0));
    assert_eq!(ra.take(), Some(Ok(9)));
    assert_eq!(sf.into_unsent(), Some(4));
}

#[test]
fn a_parked_select_is_woken_by_a_send_a_close_or_room() {
    // One worker, so the order is fixed: the selector spawns the other side, parks (a select
    // never runs queued jobs inline), and each step of the other side wakes it.
    let jobs = system(1);
    let a = Channel::<u32>::new(2);
    let b = Channel::new(2);
    let out = Channel::new(2);
    out.try_send(0).unwrap();
    out.try_send(0).unwrap();
    jobs.run(|ctx| {
        ctx.scope(|s| {
            s.spawn(|s| {
                b.send(s, 7).unwrap();
                s.yield_now();
                a.close();
                s.yield_now();
                assert_eq!(out.recv(s), Ok(0));
            });
            // Parked on three arms: recv a, recv b, send out (full); the send on b wins.
            let mut ra = RecvArm::new(&a);
            let mut rb = RecvArm::new(&b);
            let mut so = SendArm::new(&out, 5);
            assert_eq!(select(s, &mut [&mut ra, &mut rb, &mut so]), 1);
            assert_eq!(rb.take(), Some(Ok(7)));
            assert_eq!(so.into_unsent(), Some(5));
            // The close completes the closed arm, with an error.
            let mut ra = RecvArm::new(&a);
            let mut so = SendArm::new(&out, 6);
            assert_eq!(select(s, &mut [&mut ra, &mut so]), 0);
            assert_eq!(ra.take(), Some(Err(RecvError)));
            // A receive on `out` makes room for the parked send arm.
            let mut so = SendArm::new(&out, 8);
            let mut rb = RecvArm::new(&b);
            assert_eq!(select(s, &mut [&mut rb, &mut so]), 1);
            assert_eq!(so.take(), Some(Ok(())));
        });
    });
    let mut values = vec![];
    while let Ok(v) = out.try_recv() {
        values.push(v);
    }
    assert_eq!(values, [0, 8]);
    // A send arm on a closed channel completes with its value as the error.
    out.close();
    let mut so = SendArm::new(&out, 1);
    assert_eq!(try_select(&mut [&mut so]), Some(0));
    assert_eq!(so.take(), Some(Err(SendError(1))));
}

#[test]
fn bad_arm_counts_are_refused_with_a_message() {
    let r = std::panic::catch_unwind(|| try_select(&mut []));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("1..=16 arms, not 0"), "{msg}");
}
