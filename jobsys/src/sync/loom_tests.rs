//! loom models of the primitives' park/unpark cores, with plain (loom) threads as waiters.
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p jobsys --lib --release loom`.

use super::{Barrier, Event, EventKind, Mutex, Semaphore, ThisThread};
use loom::sync::Arc;
use loom::thread;

#[test]
fn loom_mutex_excludes_and_hands_over() {
    loom::model(|| {
        let m = Arc::new(Mutex::new(0usize));
        let other = {
            let m = m.clone();
            thread::spawn(move || *m.lock(&ThisThread) += 1)
        };
        *m.lock(&ThisThread) += 1;
        other.join().unwrap();
        assert_eq!(*m.lock(&ThisThread), 2);
    });
}

#[test]
fn loom_auto_event_releases_its_waiter_once() {
    loom::model(|| {
        let e = Arc::new(Event::new(EventKind::Auto));
        let waiter = {
            let e = e.clone();
            thread::spawn(move || e.wait(&ThisThread))
        };
        e.set();
        waiter.join().unwrap();
        assert!(!e.is_set(), "the waiter consumed the signal");
    });
}

#[test]
fn loom_semaphore_permit_reaches_the_waiter() {
    loom::model(|| {
        let s = Arc::new(Semaphore::new(0));
        let waiter = {
            let s = s.clone();
            thread::spawn(move || s.acquire(&ThisThread))
        };
        s.release();
        waiter.join().unwrap();
        assert_eq!(s.available(), 0);
    });
}

#[test]
fn loom_barrier_releases_both_with_one_leader() {
    loom::model(|| {
        let b = Arc::new(Barrier::new(2));
        let other = {
            let b = b.clone();
            thread::spawn(move || b.wait(&ThisThread).is_leader())
        };
        let me = b.wait(&ThisThread).is_leader();
        let them = other.join().unwrap();
        assert!(me ^ them, "exactly one leader");
    });
}

#[test]
fn loom_channel_wakes_a_parked_receiver_per_value() {
    use super::Channel;
    loom::model(|| {
        let c = Arc::new(Channel::new(2));
        let rx = {
            let c = c.clone();
            thread::spawn(move || [c.recv(&ThisThread).unwrap(), c.recv(&ThisThread).unwrap()])
        };
        c.send(&ThisThread, 1).unwrap();
        c.send(&ThisThread, 2).unwrap();
        assert_eq!(rx.join().unwrap(), [1, 2]);
    });
}

#[test]
fn loom_channel_close_wakes_a_parked_receiver() {
    use super::{Channel, RecvError};
    loom::model(|| {
        let c = Arc::new(Channel::<u8>::new(2));
        let rx = {
            let c = c.clone();
            thread::spawn(move || c.recv(&ThisThread))
        };
        c.close();
        assert_eq!(rx.join().unwrap(), Err(RecvError));
    });
}

#[test]
fn loom_rwlock_writer_and_reader_exclude_and_both_finish() {
    use super::RwLock;
    loom::model(|| {
        let l = Arc::new(RwLock::new((0u8, 0u8)));
        let w = {
            let l = l.clone();
            thread::spawn(move || {
                let mut g = l.write(&ThisThread);
                g.0 += 1;
                g.1 += 1;
            })
        };
        let seen = {
            let g = l.read(&ThisThread);
            *g
        };
        assert_eq!(seen.0, seen.1);
        w.join().unwrap();
        assert_eq!(*l.read(&ThisThread), (1, 1));
    });
}

/// Found in review: a send that returned `Ok` before `close` could be lost when another send's
/// slot was claimed but not yet written. Receivers now wait for claimed slots.
#[test]
fn loom_channel_value_sent_before_close_is_delivered() {
    use super::Channel;
    loom::model(|| {
        let c = Arc::new(Channel::new(2));
        let a = {
            let c = c.clone();
            thread::spawn(move || c.try_send(1u8).is_ok())
        };
        let b = {
            let c = c.clone();
            thread::spawn(move || {
                let ok = c.try_send(2u8).is_ok();
                c.close();
                ok
            })
        };
        let mut got = Vec::new();
        while let Ok(v) = c.recv(&ThisThread) {
            got.push(v);
        }
        let (a_ok, b_ok) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(
            got.contains(&1),
            a_ok,
            "send(1) Ok = {a_ok}, delivered {got:?}"
        );
        assert_eq!(
            got.contains(&2),
            b_ok,
            "send(2) Ok = {b_ok}, delivered {got:?}"
        );
        assert!(c.is_empty());
    });
}
