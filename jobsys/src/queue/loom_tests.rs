//! loom models of the ring: an owner pushing and popping against a thief, including the race
//! for the last item, and an owner growing the ring while a thief steals from it. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p jobsys-fiber --lib --release loom`.

use super::{Ring, Steal};
use crate::job::{JobHeader, JobMeta, JobRef};
use core::ptr::NonNull;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

static META: JobMeta = JobMeta::new("loom", file!(), line!());

/// # Safety
/// Never called: the model only moves refs around.
unsafe fn never(_: NonNull<JobHeader>, _: &crate::fiber::Ctx) {
    unreachable!()
}

#[test]
fn loom_each_job_is_taken_exactly_once_by_owner_or_thief() {
    loom::model(|| {
        let headers: Arc<Vec<JobHeader>> = Arc::new(
            (0..3)
                .map(|_| JobHeader::new(never, core::ptr::null(), &META))
                .collect(),
        );
        let taken: Arc<Vec<AtomicUsize>> = Arc::new((0..3).map(|_| AtomicUsize::new(0)).collect());
        let ring = Arc::new(Ring::growable(4, 4));
        let index = {
            let headers = headers.clone();
            move |r: JobRef| {
                headers
                    .iter()
                    .position(|h| core::ptr::eq(h, r.as_ptr()))
                    .unwrap()
            }
        };
        let thief = {
            let (ring, taken, index) = (ring.clone(), taken.clone(), index.clone());
            loom::thread::spawn(move || {
                for _ in 0..2 {
                    if let Steal::Success(r) = ring.steal() {
                        taken[index(r)].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let r = |i: usize| {
            // SAFETY: the headers outlive the model iteration.
            unsafe { JobRef::new(NonNull::from(&headers[i])) }
        };
        ring.push(r(0)).unwrap();
        ring.push(r(1)).unwrap();
        if let Some(j) = ring.pop() {
            taken[index(j)].fetch_add(1, Ordering::Relaxed);
        }
        ring.push(r(2)).unwrap();
        while let Some(j) = ring.pop() {
            taken[index(j)].fetch_add(1, Ordering::Relaxed);
        }
        thief.join().unwrap();
        // Whatever the thief did not take, nobody took twice, and the rest is still queued.
        while let Steal::Success(j) = ring.steal() {
            taken[index(j)].fetch_add(1, Ordering::Relaxed);
        }
        for t in taken.iter() {
            assert_eq!(t.load(Ordering::Relaxed), 1);
        }
    });
}

/// Growth under a thief: the owner pushes three jobs onto a ring of two slots (the third push
/// grows it to four, copying and publishing the new buffer) while a thief steals, possibly
/// from the retired buffer; then the owner pops. Every job is taken exactly once.
#[test]
fn loom_growth_under_a_thief_takes_each_job_exactly_once() {
    loom::model(|| {
        let headers: Arc<Vec<JobHeader>> = Arc::new(
            (0..3)
                .map(|_| JobHeader::new(never, core::ptr::null(), &META))
                .collect(),
        );
        let taken: Arc<Vec<AtomicUsize>> = Arc::new((0..3).map(|_| AtomicUsize::new(0)).collect());
        let ring = Arc::new(Ring::growable(2, 4));
        let index = {
            let headers = headers.clone();
            move |r: JobRef| {
                headers
                    .iter()
                    .position(|h| core::ptr::eq(h, r.as_ptr()))
                    .unwrap()
            }
        };
        let thief = {
            let (ring, taken, index) = (ring.clone(), taken.clone(), index.clone());
            loom::thread::spawn(move || {
                for _ in 0..2 {
                    if let Steal::Success(r) = ring.steal() {
                        taken[index(r)].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        for h in headers.iter() {
            // SAFETY: the headers outlive the model iteration.
            let r = unsafe { JobRef::new(NonNull::from(h)) };
            assert!(ring.push(r).is_ok(), "a managed ring below its limit grows");
        }
        while let Some(j) = ring.pop() {
            taken[index(j)].fetch_add(1, Ordering::Relaxed);
        }
        thief.join().unwrap();
        while let Steal::Success(j) = ring.steal() {
            taken[index(j)].fetch_add(1, Ordering::Relaxed);
        }
        for t in taken.iter() {
            assert_eq!(t.load(Ordering::Relaxed), 1);
        }
    });
}
