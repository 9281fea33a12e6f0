//! The price list behind the scaling model in `docs/performance.md` ("Scaling model"): what one
//! operation on a cache line costs when one thread owns it, when two threads write it, and
//! when one thread reads a line another keeps writing — the three cases the scheduler's
//! shared words fall into (a counter word, the process-wide parked count, the fiber free
//! lists, the injector lock, the rings idle thieves look at).
//!
//! This machine's virtual CPUs expose no hardware counters (`perf stat -e cycles` says "not
//! supported"), so instead of counting cache misses this measures their price directly: two
//! threads, each case timed over many operations, 7 runs, median and range.
//!
//! `cargo run --release -p jobsys-benches --example line_costs`

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

const OPS: u64 = 4_000_000;
const RUNS: usize = 7;

/// Runs `body(thread)` on 2 threads that start together; returns ns per operation of thread 0
/// (each body does `OPS` operations).
fn two(body: impl Fn(usize) + Sync) -> f64 {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            start.wait();
            body(1);
        });
        start.wait();
        let t = Instant::now();
        body(0);
        let ns = t.elapsed().as_nanos() as f64 / OPS as f64;
        other.join().expect("thread 1 panicked");
        ns
    })
}

/// Median and range of `RUNS` samples of `f`.
fn measure(f: impl Fn() -> f64) -> (f64, f64, f64) {
    let mut v: Vec<f64> = (0..RUNS).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    (v[RUNS / 2], v[0], v[RUNS - 1])
}

/// A test-and-set spin lock like the injector's and the wait lists' bucket locks.
struct Spin(AtomicBool);

impl Spin {
    fn with(&self, f: impl FnOnce()) {
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.0.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
        f();
        self.0.store(false, Ordering::Release);
    }
}

fn main() {
    let private = [
        CachePadded::new(AtomicU64::new(0)),
        CachePadded::new(AtomicU64::new(0)),
    ];
    let shared = CachePadded::new(AtomicU64::new(0));
    let rows: Vec<(&str, (f64, f64, f64))> = vec![
        (
            "RMW (fetch_add AcqRel), each thread its own line",
            measure(|| {
                two(|t| {
                    for _ in 0..OPS {
                        private[t].fetch_add(1, Ordering::AcqRel);
                    }
                })
            }),
        ),
        (
            "RMW (fetch_add AcqRel), both threads one line",
            measure(|| {
                two(|_| {
                    for _ in 0..OPS {
                        shared.fetch_add(1, Ordering::AcqRel);
                    }
                })
            }),
        ),
        (
            "load of a line the other thread keeps writing (thread 0 loads)",
            measure(|| {
                let stop = AtomicBool::new(false);
                two(|t| {
                    if t == 0 {
                        for _ in 0..OPS {
                            black_box(shared.load(Ordering::Acquire));
                        }
                        stop.store(true, Ordering::Relaxed);
                    } else {
                        while !stop.load(Ordering::Relaxed) {
                            shared.fetch_add(1, Ordering::Release);
                        }
                    }
                })
            }),
        ),
        (
            "load of a line nobody writes",
            measure(|| {
                two(|_| {
                    for _ in 0..OPS {
                        black_box(shared.load(Ordering::Acquire));
                    }
                })
            }),
        ),
        (
            "ArrayQueue pop+push (a fiber free list), each thread its own queue",
            measure(|| {
                let queues = [ArrayQueue::new(64), ArrayQueue::new(64)];
                for q in &queues {
                    for i in 0..32u32 {
                        q.push(i).expect("room");
                    }
                }
                two(|t| {
                    for _ in 0..OPS {
                        let f = queues[t].pop().expect("a fiber");
                        queues[t].push(black_box(f)).expect("room");
                    }
                })
            }),
        ),
        (
            "ArrayQueue pop+push (a fiber free list), both threads one queue",
            measure(|| {
                let queue = ArrayQueue::new(64);
                for i in 0..32u32 {
                    queue.push(i).expect("room");
                }
                two(|_| {
                    for _ in 0..OPS {
                        let f = queue.pop().expect("a fiber");
                        queue.push(black_box(f)).expect("room");
                    }
                })
            }),
        ),
        (
            "spin lock + unlock, each thread its own lock",
            measure(|| {
                let locks = [
                    CachePadded::new(Spin(AtomicBool::new(false))),
                    CachePadded::new(Spin(AtomicBool::new(false))),
                ];
                let n = [
                    CachePadded::new(AtomicU64::new(0)),
                    CachePadded::new(AtomicU64::new(0)),
                ];
                two(|t| {
                    for _ in 0..OPS {
                        locks[t].with(|| {
                            n[t].store(n[t].load(Ordering::Relaxed) + 1, Ordering::Relaxed)
                        });
                    }
                })
            }),
        ),
        (
            "spin lock + unlock (the injector's), both threads one lock",
            measure(|| {
                let lock = Spin(AtomicBool::new(false));
                let n = AtomicU64::new(0);
                two(|_| {
                    for _ in 0..OPS {
                        lock.with(|| n.store(n.load(Ordering::Relaxed) + 1, Ordering::Relaxed));
                    }
                })
            }),
        ),
    ];
    println!(
        "| operation (2 threads, {OPS} ops each, {RUNS} runs) | ns/op median | range |\n|---|---|---|"
    );
    for (name, (med, lo, hi)) in rows {
        println!("| {name} | {med:.1} | {lo:.1}–{hi:.1} |");
    }
}
