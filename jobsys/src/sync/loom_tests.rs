//! loom models of the primitives' park/unpark cores, with plain (loom) threads as waiters.
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p jobsys-fiber --lib --release loom`.

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

/// The barging unlock: the holder unlocks (waking a parked waiter to compete) and locks again
/// at once. Whether the woken waiter wins or is barged — and then re-parks, setting the parked
/// bit again, possibly while the holder unlocks once more — no wake-up is lost, both finish,
/// and no waiter bit is left behind. With `MAX_BARGES` = 1 under loom, a waiter barged once
/// parks starving and the next unlock hands the lock over (the hand-off path is modelled too).
#[test]
fn loom_mutex_barging_relock_loses_no_wakeup() {
    loom::model(|| relock_against_waiters(Mutex::new(0), 1));
}

/// Two waiters and a barging holder (`MAX_BARGES` = 1 under loom, so both waiters can be
/// starving at once): whichever gets the lock first, the starving count ends at zero, no
/// wake-up is lost, and every increment lands.
#[test]
fn loom_mutex_two_starving_waiters_lose_no_wakeup_and_leave_no_count() {
    loom::model(|| relock_against_waiters(Mutex::new(0), 2));
}

/// A FIFO mutex: every contended unlock hands the lock over; the bits end clear.
#[test]
fn loom_fair_mutex_hands_over() {
    loom::model(|| relock_against_waiters(Mutex::fair(0), 1));
}

/// One model run: `waiters` threads each lock `m` once and add one while this thread locks it
/// twice in a row (so a barging unlock can relock at once); then every increment has landed
/// and no parked bit or starving count is left in the state word.
fn relock_against_waiters(m: Mutex<usize>, waiters: usize) {
    let m = Arc::new(m);
    let others: Vec<_> = (0..waiters)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || *m.lock(&ThisThread) += 1)
        })
        .collect();
    *m.lock(&ThisThread) += 1;
    *m.lock(&ThisThread) += 1;
    for o in others {
        o.join().unwrap();
    }
    assert_eq!(*m.lock(&ThisThread), waiters + 2);
    assert_eq!(m.state_bits(), 0, "no stale parked bit or starving count");
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

/// A timeout racing a wake of the same node (see "Timeouts" in `park/mod.rs`): the timer's
/// cancel and an unparker's hand-off both try to take the node; exactly one does, and the
/// waiter sees that one's token.
#[test]
fn loom_a_timeout_racing_a_wake_takes_the_node_once() {
    use crate::park::{self, ParkNode, TOKEN_TIMED_OUT};
    use crate::waitlist::Waiter;
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    unsafe fn always(_: *const ()) -> bool {
        true
    }
    loom::model(|| {
        let key = Arc::new(AtomicUsize::new(0));
        let k = crate::sync::key_of(&*key);
        let mut node = ParkNode::new(
            k,
            always,
            core::ptr::null(),
            Waiter::Thread {
                thread: thread::current(),
                done: AtomicBool::new(false),
            },
        );
        node.timing.stamp = 7;
        let ptr: *mut ParkNode = &mut node;
        // SAFETY: the node lives on this stack until the end of the model.
        assert!(unsafe { park::publish(ptr) });
        let woke = Arc::new(AtomicUsize::new(0));
        let unparker = {
            let woke = woke.clone();
            thread::spawn(move || {
                let mut h = 0;
                let hit = park::unpark_one(k, |found| {
                    h = found.woken;
                    super::HANDOFF
                });
                woke.store(usize::from(hit) + 10 * h, Ordering::SeqCst);
            })
        };
        let cancelled = park::cancel(k, ptr, 7);
        // A cancel that lost waits for the unparker's wake (as `waitlist::block_thread` does).
        if !cancelled {
            let Waiter::Thread { done, .. } = &node_waiter(ptr) else {
                unreachable!()
            };
            while !done.load(Ordering::Acquire) {
                thread::park();
            }
        }
        unparker.join().unwrap();
        let woke = woke.load(Ordering::SeqCst);
        assert!(
            cancelled ^ (woke == 11),
            "cancel {cancelled}, unpark {woke}"
        );
        let token = node.token();
        assert_eq!(
            token,
            if cancelled {
                TOKEN_TIMED_OUT
            } else {
                super::HANDOFF
            }
        );
        assert_eq!(park::waiters_on(k), 0);
    });
}

fn node_waiter(p: *mut crate::park::ParkNode) -> &'static crate::waitlist::Waiter {
    // SAFETY: test helper; the node outlives the use.
    unsafe { (*p).waiter_ref() }
}

/// A select's group (see "Groups" in `park/mod.rs`) parked on two addresses while an
/// unparker wakes each: exactly one claims and wakes the waiter (the other finds the group
/// claimed and reports nobody woken), whether the claim comes during the publication or after,
/// and once the waiter unlinks its nodes neither list keeps one.
#[test]
fn loom_two_unparkers_claim_a_select_group_once() {
    use crate::park::{self, CLAIMED, Group, ParkNode};
    use loom::sync::atomic::{AtomicUsize, Ordering};
    /// Park while the arm's "ready" word is 0 (as a channel's validator: still empty).
    unsafe fn not_ready(data: *const ()) -> bool {
        // SAFETY: points at one of the model's words.
        unsafe { &*data.cast::<AtomicUsize>() }.load(Ordering::SeqCst) == 0
    }
    loom::model(|| {
        let ready = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let k = [
            crate::sync::key_of(&ready[0]),
            crate::sync::key_of(&ready[1]),
        ];
        let data = |i: usize| (&ready[i] as *const AtomicUsize).cast::<()>();
        let group = Group::new(crate::waitlist::Waiter::thread());
        let mut nodes = [
            ParkNode::in_group(k[0], not_ready, data(0), &group, 0),
            ParkNode::in_group(k[1], not_ready, data(1), &group, 1),
        ];
        // Each "sender" makes its arm ready, then wakes one waiter of it.
        let unparkers: Vec<_> = (0..2)
            .map(|i| {
                let ready = ready.clone();
                thread::spawn(move || {
                    ready[i].store(1, Ordering::SeqCst);
                    park::unpark_one(crate::sync::key_of(&ready[i]), |_| 0)
                })
            })
            .collect();
        // SAFETY: the group and nodes live on this stack until the end of the model.
        unsafe {
            park::park_thread_group(&group, nodes.as_mut_ptr(), 2);
            park::unlink_group(nodes.as_mut_ptr(), 2);
        }
        let hits: Vec<bool> = unparkers.into_iter().map(|t| t.join().unwrap()).collect();
        let outcome = group.outcome();
        // Claimed by an arm's unparker, or by the publication itself when an arm was already
        // ready (then nobody had to wake the waiter).
        assert!(outcome >= CLAIMED, "claimed by an arm");
        let winner = outcome - CLAIMED;
        // At most one unparker took a node of the group, and only the claiming arm's.
        assert!(!(hits[0] && hits[1]), "both arms woke the select");
        assert!(!hits[1 - winner], "{hits:?} {winner}");
        assert_eq!(
            ready[winner].load(Ordering::SeqCst),
            1,
            "the claimed arm is ready"
        );
        for key in k {
            assert_eq!(park::waiters_on(key), 0);
        }
    });
}
