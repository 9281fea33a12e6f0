//! loom models of the sleep/wake handshake (`Dorm`), run on the same code the workers run.
//! A lost wake-up shows as a loom deadlock (a sleeper parked forever). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p jobsys-fiber --lib --release loom`.

use super::{Bed, Dorm};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
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
        w.dorm
            .sleep(&w.beds[me], || w.work.visible(), || w.work.visible(), park);
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
                    w.dorm.sleep(&w.beds[1], look, look, park);
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

/// One waker in flight, in the high half of the model's `parked_here` (as in
/// `Worker::parked_here`).
const IN_FLIGHT: u64 = 1 << 32;

/// The waker's order in `Shared::make_ready_from`, against worker 0 inside `run` and then
/// dropping the system. Worker 0's `run` closure is parked (counted in `parked_here`); a
/// waker (another worker's job, or a plain thread) counts itself in flight, pushes the fiber
/// to worker 0's ready queue, un-counts it, wakes worker 0, and un-counts itself — its last
/// touch of the system. Worker 0 resumes the fiber (which finishes), and leaves `run` once
/// the fiber is done and nothing is parked; otherwise it sleeps. Then it drops the system:
/// the drain waits until no waker is in flight, then frees it.
///
/// A lost wake-up is a loom deadlock (worker 0 asleep for good with `run` done); a touch
/// after the free fails the waker's assertion. With the old order (push, wake, then un-count
/// the fiber as the last touch) the model deadlocks: worker 0 resumes the fiber, sees it
/// still counted, sleeps, and the late decrement wakes nobody.
#[test]
fn loom_a_woken_run_closure_never_leaves_worker_0_asleep() {
    loom::model(|| {
        let w = world(1);
        let parked_here = Arc::new(AtomicU64::new(1));
        let freed = Arc::new(AtomicBool::new(false));
        let worker0 = thread::current();
        let waker = {
            let (w, parked_here, freed) = (w.clone(), parked_here.clone(), freed.clone());
            thread::spawn(move || {
                parked_here.fetch_add(IN_FLIGHT, Ordering::SeqCst);
                w.work.publish();
                parked_here.fetch_sub(1, Ordering::SeqCst);
                // `wake_worker(0)`.
                fence(Ordering::SeqCst);
                if w.dorm.claim(&w.beds[0]) {
                    worker0.unpark();
                }
                assert!(
                    !freed.load(Ordering::SeqCst),
                    "the waker touched a freed system"
                );
                parked_here.fetch_sub(IN_FLIGHT, Ordering::SeqCst);
            })
        };
        // Worker 0 in `run`.
        let finished = AtomicBool::new(false);
        let done = || {
            finished.load(Ordering::Relaxed)
                && parked_here.load(Ordering::SeqCst) & (IN_FLIGHT - 1) == 0
        };
        loop {
            if w.work.take() {
                // The closure's fiber resumes and returns.
                finished.store(true, Ordering::Relaxed);
                continue;
            }
            if done() {
                break;
            }
            let look = || w.work.visible() || done();
            w.dorm.sleep(&w.beds[0], look, look, park);
        }
        // Dropping the system: the drain goes on while a waker is in flight.
        while parked_here.load(Ordering::SeqCst) >> 32 != 0 {
            thread::yield_now();
        }
        freed.store(true, Ordering::SeqCst);
        waker.join().unwrap();
    });
}

/// A sleeper's park without alarms.
fn park() -> bool {
    thread::park();
    false
}
