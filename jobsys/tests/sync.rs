//! The fiber-aware primitives across worker counts: exact counts under the mutex, one release
//! per auto-reset signal, bounded concurrency under the semaphore, barrier generations that
//! never mix, and waits that park the fiber, not the worker.

mod common;

use common::{each_worker_count, system};
use jobsys::JobSystem;
use jobsys::sync::{Barrier, Event, EventKind, Fairness, Mutex, Semaphore, ThisThread, WaitGroup};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[test]
fn a_counter_under_the_mutex_reaches_exactly_n() {
    const JOBS: usize = 200;
    const EACH: usize = 100;
    const THREAD: usize = 2_000;
    each_worker_count(|jobs, n| {
        let total = Mutex::new(0usize);
        std::thread::scope(|t| {
            // A plain thread competes with the jobs, blocking itself (not a worker).
            t.spawn(|| {
                for _ in 0..THREAD {
                    *total.lock(&ThisThread) += 1;
                }
            });
            jobs.run(|ctx| {
                ctx.scope(|s| {
                    for _ in 0..JOBS {
                        s.spawn(|s| {
                            for _ in 0..EACH {
                                let mut g = total.lock(s);
                                // A read-modify-write split by a yield: only exclusion keeps it
                                // exact.
                                let v = *g;
                                if v.is_multiple_of(64) {
                                    s.yield_now();
                                }
                                *g = v + 1;
                            }
                        });
                    }
                });
            });
        });
        assert_eq!(total.into_inner(), JOBS * EACH + THREAD, "{n} workers");
    });
}

#[test]
fn a_fiber_waiting_on_the_mutex_does_not_block_its_worker() {
    // One worker: the holder and the waiter share it. If the waiter blocked the thread, the
    // holder could never run again to unlock.
    let jobs = system(1);
    let m = Mutex::new(0);
    let waiter_done = AtomicBool::new(false);
    jobs.run(|ctx| {
        ctx.scope(|s| {
            let guard = m.lock(s);
            s.spawn(|s| {
                *m.lock(s) += 1;
                waiter_done.store(true, Ordering::Relaxed);
            });
            // Let the waiter run: it parks on the mutex, and the worker comes back here.
            s.yield_now();
            assert!(!waiter_done.load(Ordering::Relaxed));
            drop(guard);
        });
    });
    assert!(waiter_done.load(Ordering::Relaxed));
    assert_eq!(m.into_inner(), 1);
}

#[test]
fn the_mutex_hands_over_in_arrival_order() {
    // One worker, so arrival order is deterministic: waiters queue while the root holds the
    // lock, and get it in the order they parked — by hand-off with a fair mutex, and with the
    // default one too (each unlock wakes the longest waiter, and nobody else competes).
    let jobs = system(1);
    for fairness in [Fairness::Barging, Fairness::Fifo] {
        let m = Mutex::new(Vec::new()).with_fairness(fairness);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                let guard = m.lock(s);
                for i in 0..5 {
                    let m = &m;
                    s.spawn_hinted(jobsys::Hint::Fifo, jobsys::job_meta!("waiter"), move |s| {
                        m.lock(s).push(i)
                    });
                }
                // Run all five (each parks on the mutex), then release.
                for _ in 0..5 {
                    s.yield_now();
                }
                drop(guard);
            });
        });
        assert_eq!(m.into_inner(), [0, 1, 2, 3, 4], "{fairness:?}");
    }
}

#[test]
fn a_manual_event_releases_every_waiter() {
    each_worker_count(|jobs, n| {
        let event = Event::new(EventKind::Manual);
        let released = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..32 {
                    s.spawn(|s| {
                        event.wait(s);
                        released.fetch_add(1, Ordering::Relaxed);
                    });
                }
                s.spawn(|_| event.set());
            });
        });
        assert_eq!(released.load(Ordering::Relaxed), 32, "{n} workers");
        assert!(event.is_set());
    });
}

#[test]
fn an_auto_event_releases_exactly_one_waiter_per_set() {
    const WAITERS: usize = 16;
    each_worker_count(|jobs, n| {
        let event = Event::new(EventKind::Auto);
        let released = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..WAITERS {
                    s.spawn(|s| {
                        event.wait(s);
                        released.fetch_add(1, Ordering::SeqCst);
                    });
                }
                s.spawn(|s| {
                    for round in 0..WAITERS {
                        event.set();
                        // Wait (yielding) until that signal released someone...
                        while released.load(Ordering::SeqCst) == round {
                            s.yield_now();
                        }
                        // ...and exactly one.
                        assert_eq!(released.load(Ordering::SeqCst), round + 1, "{n} workers");
                    }
                });
            });
        });
        assert_eq!(released.load(Ordering::SeqCst), WAITERS);
        assert!(!event.is_set(), "{n} workers: a signal was left over");
    });
}

#[test]
fn a_thread_waits_for_an_event_a_job_sets() {
    let jobs = system(2);
    let event = Event::new(EventKind::Manual);
    std::thread::scope(|t| {
        let waiter = t.spawn(|| event.wait(&ThisThread));
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn(|_| event.set());
            })
        });
        waiter.join().unwrap();
    });
}

#[test]
fn the_semaphore_bounds_concurrency() {
    const PERMITS: usize = 3;
    each_worker_count(|jobs, n| {
        let sem = Semaphore::new(PERMITS);
        let (inside, most, done) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..200 {
                    s.spawn(|s| {
                        sem.acquire(s);
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        s.yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        sem.release();
                        done.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        });
        assert_eq!(done.load(Ordering::Relaxed), 200, "{n} workers");
        assert!(most.load(Ordering::SeqCst) <= PERMITS, "{n} workers");
        assert_eq!(
            sem.available(),
            PERMITS,
            "{n} workers: permits lost or created"
        );
    });
}

#[test]
fn barrier_generations_never_mix() {
    const PARTIES: u32 = 6;
    const ROUNDS: usize = 100;
    each_worker_count(|jobs, n| {
        let barrier = Barrier::new(PARTIES);
        let arrived: Vec<AtomicUsize> = (0..ROUNDS).map(|_| AtomicUsize::new(0)).collect();
        let leaders: Vec<AtomicUsize> = (0..ROUNDS).map(|_| AtomicUsize::new(0)).collect();
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..PARTIES {
                    s.spawn(|s| {
                        for round in 0..ROUNDS {
                            arrived[round].fetch_add(1, Ordering::SeqCst);
                            if barrier.wait(s).is_leader() {
                                leaders[round].fetch_add(1, Ordering::SeqCst);
                            }
                            // Nobody passes round `round` before all have arrived at it.
                            assert_eq!(
                                arrived[round].load(Ordering::SeqCst),
                                PARTIES as usize,
                                "{n} workers, round {round}"
                            );
                        }
                    });
                }
            });
        });
        for (round, l) in leaders.iter().enumerate() {
            assert_eq!(l.load(Ordering::SeqCst), 1, "{n} workers, round {round}");
        }
    });
}

#[test]
fn a_wait_group_waits_for_every_done() {
    each_worker_count(|jobs, n| {
        let wg = WaitGroup::new();
        let finished = AtomicUsize::new(0);
        wg.add(64);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..64 {
                    s.spawn(|_| {
                        finished.fetch_add(1, Ordering::SeqCst);
                        wg.done();
                    });
                }
                wg.wait(s);
                assert_eq!(finished.load(Ordering::SeqCst), 64, "{n} workers");
            });
        });
        assert_eq!(wg.count(), 0);
    });
}

#[test]
fn a_channel_delivers_every_message_exactly_once() {
    use jobsys::sync::Channel;
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 3;
    const EACH: usize = 2_000;
    each_worker_count(|jobs, n| {
        // Tiny capacity: senders and receivers park all the time.
        let chan = Channel::new(4);
        let seen: Vec<AtomicUsize> = (0..PRODUCERS * EACH).map(|_| AtomicUsize::new(0)).collect();
        let producers_left = AtomicUsize::new(PRODUCERS);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for p in 0..PRODUCERS {
                    let (chan, producers_left) = (&chan, &producers_left);
                    s.spawn(move |s| {
                        for i in 0..EACH {
                            chan.send(s, p * EACH + i).expect("open while producing");
                        }
                        if producers_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                            chan.close();
                        }
                    });
                }
                for _ in 0..CONSUMERS {
                    s.spawn(|s| {
                        while let Ok(v) = chan.recv(s) {
                            seen[v].fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
        });
        for (v, c) in seen.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), 1, "{n} workers: message {v}");
        }
        assert!(chan.is_empty() && chan.is_closed());
    });
}

#[test]
fn a_closed_channel_drains_then_reports_closed_and_returns_sends() {
    use jobsys::sync::{Channel, RecvError, SendError, TryRecvError, TrySendError};
    let chan = Channel::new(2);
    assert_eq!(chan.capacity(), 2);
    assert_eq!(Channel::<u8>::new(1).capacity(), 2);
    assert_eq!(chan.try_recv(), Err(TryRecvError::Empty));
    chan.try_send(1).unwrap();
    chan.try_send(2).unwrap();
    assert_eq!(chan.try_send(3), Err(TrySendError::Full(3)));
    chan.close();
    assert_eq!(chan.try_send(4), Err(TrySendError::Closed(4)));
    assert_eq!(chan.send(&ThisThread, 5), Err(SendError(5)));
    assert_eq!(chan.recv(&ThisThread), Ok(1));
    assert_eq!(chan.try_recv(), Ok(2));
    assert_eq!(chan.recv(&ThisThread), Err(RecvError));
    assert_eq!(chan.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn close_wakes_parked_receivers_and_senders() {
    use jobsys::sync::Channel;
    each_worker_count(|jobs, n| {
        let empty = Channel::<u32>::new(1);
        let full = Channel::new(2);
        full.try_send(0u32).unwrap();
        full.try_send(0u32).unwrap();
        let (receivers_out, senders_out) = (AtomicUsize::new(0), AtomicUsize::new(0));
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..4 {
                    s.spawn(|s| {
                        assert!(empty.recv(s).is_err());
                        receivers_out.fetch_add(1, Ordering::SeqCst);
                    });
                    s.spawn(|s| {
                        assert!(full.send(s, 1).is_err());
                        senders_out.fetch_add(1, Ordering::SeqCst);
                    });
                }
                s.spawn(|s| {
                    // Let the waiters park (they may or may not have), then close both.
                    s.yield_now();
                    empty.close();
                    full.close();
                });
            });
        });
        assert_eq!(receivers_out.load(Ordering::SeqCst), 4, "{n} workers");
        assert_eq!(senders_out.load(Ordering::SeqCst), 4, "{n} workers");
    });
}

#[test]
fn a_channel_connects_a_thread_and_jobs() {
    use jobsys::sync::Channel;
    let jobs = system(2);
    let to_jobs = Channel::new(8);
    let to_thread = Channel::new(8);
    std::thread::scope(|t| {
        // One thread feeds the jobs, another drains what they send back (with bounded
        // channels both ways, one thread doing both could deadlock against the jobs).
        t.spawn(|| {
            for i in 0..1_000u64 {
                to_jobs.send(&ThisThread, i).unwrap();
            }
            to_jobs.close();
        });
        let io = t.spawn(|| {
            let mut sum = 0;
            while let Ok(v) = to_thread.recv(&ThisThread) {
                sum += v;
            }
            sum
        });
        jobs.run(|ctx| {
            while let Ok(v) = to_jobs.recv(ctx) {
                to_thread.send(ctx, v * 2).unwrap();
            }
            to_thread.close();
        });
        assert_eq!(io.join().unwrap(), 999 * 1_000);
    });
}

#[test]
fn a_counter_under_the_spin_lock_reaches_exactly_n() {
    use jobsys::sync::SpinLock;
    each_worker_count(|jobs, n| {
        let total = SpinLock::new(0usize);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..64 {
                    s.spawn(|_| {
                        for _ in 0..500 {
                            *total.lock() += 1;
                        }
                    });
                }
            });
        });
        assert_eq!(total.into_inner(), 64 * 500, "{n} workers");
    });
}

#[test]
fn rwlock_readers_never_see_a_torn_write() {
    use jobsys::sync::RwLock;
    const WRITERS: usize = 8;
    const WRITES: usize = 200;
    each_worker_count(|jobs, n| {
        let pair = RwLock::new((0usize, 0usize));
        let reads = AtomicUsize::new(0);
        jobs.run(|ctx| {
            ctx.scope(|s| {
                for _ in 0..WRITERS {
                    s.spawn(|s| {
                        for _ in 0..WRITES {
                            let mut g = pair.write(s);
                            g.0 += 1;
                            s.yield_now(); // a torn state is visible only to a broken lock
                            g.1 += 1;
                        }
                    });
                }
                for _ in 0..8 {
                    s.spawn(|s| {
                        for _ in 0..WRITES {
                            let g = pair.read(s);
                            assert_eq!(g.0, g.1, "{n} workers: a reader saw a torn write");
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
        });
        assert_eq!(
            pair.into_inner(),
            (WRITERS * WRITES, WRITERS * WRITES),
            "{n} workers"
        );
        assert_eq!(reads.load(Ordering::Relaxed), 8 * WRITES);
    });
}

#[test]
fn rwlock_admits_in_arrival_order_and_readers_share() {
    use jobsys::sync::RwLock;
    // One worker: arrival order is deterministic.
    let jobs = system(1);
    let lock = RwLock::new(());
    let order = std::sync::Mutex::new(Vec::new());
    let shared = AtomicBool::new(false);
    jobs.run(|ctx| {
        ctx.scope(|s| {
            let first = lock.read(s);
            // A second reader gets in while the first holds it (no writer queued).
            s.spawn_hinted(jobsys::Hint::Fifo, jobsys::job_meta!("reader"), |s| {
                let _g = lock.read(s);
                shared.store(true, Ordering::Relaxed);
            });
            s.yield_now();
            assert!(
                shared.load(Ordering::Relaxed),
                "readers did not share the lock"
            );
            // Now a writer queues, then a reader: the reader must not overtake the writer.
            s.spawn_hinted(jobsys::Hint::Fifo, jobsys::job_meta!("writer"), |s| {
                let _g = lock.write(s);
                order.lock().unwrap().push("writer");
            });
            s.spawn_hinted(jobsys::Hint::Fifo, jobsys::job_meta!("late reader"), |s| {
                let _g = lock.read(s);
                order.lock().unwrap().push("reader");
            });
            s.yield_now();
            s.yield_now();
            assert!(
                order.lock().unwrap().is_empty(),
                "someone entered past the held read"
            );
            drop(first);
        });
    });
    assert_eq!(order.into_inner().unwrap(), ["writer", "reader"]);
}

#[test]
fn every_fiber_waiting_on_a_wait_group_a_thread_completes_is_not_a_deadlock() {
    // Two fibers, both parked on the wait group; only a plain thread can finish it. Before the
    // wait group parked through the primitives' wait lists, the pool reported a deadlock and
    // aborted here.
    let jobs = JobSystem::builder()
        .workers(1)
        .small_fibers(2, jobsys::Builder::DEFAULT_SMALL_STACK)
        .large_fibers(0, jobsys::Builder::DEFAULT_LARGE_STACK)
        .build()
        .unwrap();
    let handle = jobs.handle();
    let wg = WaitGroup::new();
    wg.add(1);
    std::thread::scope(|t| {
        t.spawn(|| {
            // Worker 0 asleep: both fibers are parked on the wait group.
            while handle.sleeping_workers() != 1 {
                std::thread::yield_now();
            }
            wg.done();
        });
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn(|s| wg.wait(s));
                wg.wait(s);
            })
        });
    });
    assert_eq!(wg.count(), 0);
}

#[test]
fn misuse_of_counts_is_refused_with_a_message() {
    let wg = WaitGroup::new();
    let r = std::panic::catch_unwind(|| wg.done());
    let msg = r.expect_err("done without add").downcast::<&str>().unwrap();
    assert!(msg.contains("more often than WaitGroup::add"), "{msg}");
    let sem = Semaphore::new(usize::MAX / 2);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sem.release()));
    let msg = r.expect_err("too many permits").downcast::<&str>().unwrap();
    assert!(msg.contains("more than usize::MAX / 2 permits"), "{msg}");
}
