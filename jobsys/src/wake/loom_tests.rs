//! loom models of the sleep/wake handshake (`Dorm`), run on the same code the workers run.
//! A lost wake-up shows as a loom deadlock (a sleeper parked forever). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p jobsys --lib --release loom`.

use super::{Bed, Dorm};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

/// A queue reduced to its item count, published with Release and taken with a CAS.
struct Work(AtomicUsize);

impl Work {
    fn publish(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
    fn take(&self) -> bool {
        let mut n = self.0.load(Ordering::Acquire);
        while n > 0 {
            match self
                .0
                .compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }
    fn visible(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

struct World {
    dorm: Dorm,
    beds: Vec<Bed>,
    work: Work,
    taken: AtomicUsize,
    exit: AtomicBool,
}

fn world(workers: usize) -> Arc<World> {
    Arc::new(World {
        dorm: Dorm::new(),
        beds: (0..workers).map(|_| Bed::new()).collect(),
        work: Work(AtomicUsize::new(0)),
        taken: AtomicUsize::new(0),
        exit: AtomicBool::new(false),
    })
}

/// A worker's idle loop: take one item, or sleep until woken and look again.
fn worker(w: &World, me: usize) {
    loop {
        if w.work.take() {
            w.taken.fetch_add(1, Ordering::Relaxed);
            return;
        }
        w.dorm.sleep(&w.beds[me], || w.work.visible(), park);
    }
}

/// The general wake (`Shared::notify_one` + `wake_any`): publish, fenced check, claim one.
fn notify_one(w: &World, threads: &[thread::Thread]) {
    if w.dorm.anyone_asleep() {
        for (bed, t) in w.beds.iter().zip(threads) {
            if w.dorm.claim(bed) {
                t.unpark();
                return;
            }
        }
    }
}

fn spawn_workers(w: &Arc<World>, n: usize) -> Vec<thread::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let w = w.clone();
            thread::spawn(move || worker(&w, i))
        })
        .collect()
}

#[test]
fn loom_a_published_job_is_never_left_while_its_worker_sleeps() {
    loom::model(|| {
        let w = world(1);
        let workers = spawn_workers(&w, 1);
        let threads: Vec<_> = workers.iter().map(|h| h.thread().clone()).collect();
        w.work.publish();
        notify_one(&w, &threads);
        workers.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(w.taken.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn loom_two_jobs_wake_two_sleepers() {
    loom::model(|| {
        let w = world(2);
        let workers = spawn_workers(&w, 2);
        let threads: Vec<_> = workers.iter().map(|h| h.thread().clone()).collect();
        for _ in 0..2 {
            w.work.publish();
            notify_one(&w, &threads);
        }
        workers.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(w.taken.load(Ordering::Relaxed), 2);
        assert_eq!(w.dorm.sleepers.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn loom_a_targeted_wake_reaches_its_worker() {
    // `Shared::wake_worker`: work for worker 0 alone (a pinned job, a ready fiber).
    loom::model(|| {
        let w = world(1);
        let workers = spawn_workers(&w, 1);
        let t = workers[0].thread().clone();
        w.work.publish();
        loom::sync::atomic::fence(Ordering::SeqCst);
        if w.dorm.claim(&w.beds[0]) {
            t.unpark();
        }
        workers.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(w.taken.load(Ordering::Relaxed), 1);
    });
}

/// The unfenced check (`Shared::notify_local`) may miss a sleeper, but the publisher is a
/// worker that runs what it published when nobody else does: every job still runs exactly
/// once, and the other worker is woken by the next fenced notification (here: shutdown's).
#[test]
fn loom_an_unfenced_notify_loses_no_work() {
    loom::model(|| {
        let w = world(2);
        let sleeper = {
            let w = w.clone();
            thread::spawn(move || {
                // Worker 1: take work or sleep, until shutdown.
                loop {
                    if w.work.take() {
                        w.taken.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if w.exit.load(Ordering::SeqCst) {
                        return;
                    }
                    let look = || w.work.visible() || w.exit.load(Ordering::SeqCst);
                    w.dorm.sleep(&w.beds[1], look, park);
                }
            })
        };
        // Worker 0 publishes on "its own ring", checks without the fence, then runs its own
        // work if it is still there.
        w.work.publish();
        // The case the argument is about: the unfenced check saw nobody asleep, so no wake.
        // (When it sees a sleeper, the wake is the fenced path of the models above.)
        if w.work.take() {
            w.taken.fetch_add(1, Ordering::Relaxed);
        }
        // Shutdown: publish `exit`, then a fenced wake of everyone.
        w.exit.store(true, Ordering::SeqCst);
        if w.dorm.anyone_asleep() && w.dorm.claim(&w.beds[1]) {
            sleeper.thread().unpark();
        }
        sleeper.join().unwrap();
        assert_eq!(w.taken.load(Ordering::Relaxed), 1);
    });
}

/// A sleeper's park without alarms.
fn park() -> bool {
    thread::park();
    false
}
