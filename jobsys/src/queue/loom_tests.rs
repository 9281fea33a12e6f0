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

/// Three jobs and how often each was taken, shared by the owner and the thief of a model.
struct Jobs {
    headers: Vec<JobHeader>,
    taken: Vec<AtomicUsize>,
}

impl Jobs {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            headers: (0..3)
                .map(|_| JobHeader::new(never, core::ptr::null(), &META))
                .collect(),
            taken: (0..3).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    fn job(&self, i: usize) -> JobRef {
        // SAFETY: the headers outlive the model iteration (`self` is held until its end).
        unsafe { JobRef::new(NonNull::from(&self.headers[i])) }
    }

    /// Counts `r` as taken once more.
    fn took(&self, r: JobRef) {
        let i = self
            .headers
            .iter()
            .position(|h| core::ptr::eq(h, r.as_ptr()))
            .unwrap();
        self.taken[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Steals what the thief left in `ring`, then checks every job was taken exactly once.
    fn assert_each_taken_once(&self, ring: &Ring) {
        while let Steal::Success(j) = ring.steal() {
            self.took(j);
        }
        for t in &self.taken {
            assert_eq!(t.load(Ordering::Relaxed), 1);
        }
    }
}

/// A thief that tries two steals from `ring`.
fn thief(ring: &Arc<Ring>, jobs: &Arc<Jobs>) -> loom::thread::JoinHandle<()> {
    let (ring, jobs) = (ring.clone(), jobs.clone());
    loom::thread::spawn(move || {
        for _ in 0..2 {
            if let Steal::Success(r) = ring.steal() {
                jobs.took(r);
            }
        }
    })
}

#[test]
fn loom_each_job_is_taken_exactly_once_by_owner_or_thief() {
    loom::model(|| {
        let jobs = Jobs::new();
        let ring = Arc::new(Ring::growable(4, 4));
        let thief = thief(&ring, &jobs);
        ring.push(jobs.job(0)).unwrap();
        ring.push(jobs.job(1)).unwrap();
        if let Some(j) = ring.pop() {
            jobs.took(j);
        }
        ring.push(jobs.job(2)).unwrap();
        while let Some(j) = ring.pop() {
            jobs.took(j);
        }
        thief.join().unwrap();
        // Whatever the thief did not take, nobody took twice, and the rest is still queued.
        jobs.assert_each_taken_once(&ring);
    });
}

/// Growth under a thief: the owner pushes three jobs onto a ring of two slots (the third push
/// grows it to four, copying and publishing the new buffer) while a thief steals, possibly
/// from the retired buffer; then the owner pops. Every job is taken exactly once.
#[test]
fn loom_growth_under_a_thief_takes_each_job_exactly_once() {
    loom::model(|| {
        let jobs = Jobs::new();
        let ring = Arc::new(Ring::growable(2, 4));
        let thief = thief(&ring, &jobs);
        for i in 0..3 {
            assert!(
                ring.push(jobs.job(i)).is_ok(),
                "a managed ring below its limit grows"
            );
        }
        while let Some(j) = ring.pop() {
            jobs.took(j);
        }
        thief.join().unwrap();
        jobs.assert_each_taken_once(&ring);
    });
}
