//! ND-style declarations and the lazily split batch.
//!
//! `run_jobs(&decls, &counter)` publishes *one* [`JobRef`]: a range `[0, n)` headed by
//! `decls[0]`. Whoever runs a range of length > 1 splits it in half, writes the length and
//! counter of the upper half into the upper half's first declaration and pushes that, then
//! continues with the lower half. So submission is O(1), thieves (FIFO end) take the largest
//! ranges first, the owner (LIFO end) walks addresses in ascending order, and the split state
//! lives in the declarations themselves: no descriptor pool, no reference count. Every range owns
//! the declarations in it, so nothing touches a declaration after its own job has finished.

use super::{JobHeader, JobMeta, JobRef};
use crate::counter::CounterCore;
use crate::fiber::Ctx;
use crate::panic::catch;
use crate::shim::UnsafeCell;
use core::fmt;
use core::ptr::NonNull;

/// One raw, Naughty-Dog-style job: an entry function, an opaque data pointer and its metadata.
///
/// Declarations are submitted in slices with [`Ctx::run_jobs`] or [`Handle::run_jobs`]; each
/// declaration is a separately schedulable job that any worker its affinity allows may run.
///
/// The declaration holds the bookkeeping of the batch it is in, so while a batch is in flight
/// its slice must stay alive and unmoved, and must not be submitted again: that is the
/// contract of the `unsafe` submit functions.
///
/// [`Ctx::run_jobs`]: crate::Ctx::run_jobs
/// [`Handle::run_jobs`]: crate::Handle::run_jobs
#[repr(C)]
pub struct JobDecl {
    header: JobHeader,
    entry: unsafe fn(&Ctx, *mut ()),
    data: *mut (),
    /// Length of the range this declaration heads, while it heads one.
    range_len: UnsafeCell<usize>,
}

// SAFETY: the raw layer's contract (see the submit functions) makes the submitter responsible
// for `data` being usable from any worker; the interior cells are only written by the holder
// of the range that contains the declaration.
unsafe impl Send for JobDecl {}
// SAFETY: as above.
unsafe impl Sync for JobDecl {}

impl JobDecl {
    crate::shim::loom_const! {
        /// A declaration that calls `entry(ctx, data)` when it runs.
        ///
        /// `entry` may be a safe `fn(&Ctx, *mut ())`; it receives the context of the fiber it runs
        /// on, through which it can submit and wait.
        pub fn new(
            meta: &'static JobMeta,
            entry: unsafe fn(&Ctx, *mut ()),
            data: *mut (),
        ) -> Self {
            Self {
                header: JobHeader::new(execute_range, core::ptr::null(), meta),
                entry,
                data,
                range_len: UnsafeCell::new(0),
            }
        }
    }

    /// The declaration's metadata.
    pub fn meta(&self) -> &'static JobMeta {
        self.header_ref().meta()
    }

    fn header_ref(&self) -> JobRef {
        // SAFETY: `header` is the first field of a `#[repr(C)]` struct we borrow.
        unsafe { JobRef::new(NonNull::from(&self.header)) }
    }
}

impl fmt::Debug for JobDecl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobDecl")
            .field("name", &self.meta().name)
            .field("data", &self.data)
            .finish()
    }
}

/// The prologue every `run_jobs` shares (`Ctx::run_jobs_hinted`, `Handle::run_jobs`): checks
/// each declaration with `check` (which panics, before anything is counted or queued, on a job
/// this system cannot run), adds the batch to `counter`, and returns it as one range owned by
/// `counter` for the caller to place. `None` for an empty batch: nothing to do.
///
/// # Panics
/// If the batch holds 2³² jobs or more, or `check` panics.
///
/// # Safety
/// `decls` outlives the counter reaching the value the submitter waits for, and is in no other
/// batch in flight (the `run_jobs` contract); the caller publishes the returned ref.
pub(crate) unsafe fn prepare_batch(
    decls: &[JobDecl],
    counter: &CounterCore,
    check: impl Fn(&JobMeta),
) -> Option<JobRef> {
    let Ok(n) = u32::try_from(decls.len()) else {
        panic!("a batch holds at most 2^32 - 1 jobs")
    };
    if n == 0 {
        return None;
    }
    decls.iter().for_each(|d| check(d.meta()));
    counter.add(n);
    let head = &decls[0];
    head.range_len.with_mut(|p| {
        // SAFETY: the batch is not published yet; we are its only holder.
        unsafe { *p = decls.len() }
    });
    let r = head.header_ref();
    r.set_owner(counter);
    Some(r)
}

/// Executes a range: split until one declaration is left, then run it.
///
/// # Safety
/// `header` heads a range published from `prepare_batch` or by a split below.
unsafe fn execute_range(header: NonNull<JobHeader>, ctx: &Ctx) {
    let first = header.cast::<JobDecl>().as_ptr().cast_const();
    // SAFETY: this range is ours (JobRef executed once); its declarations are alive until their
    // jobs finish (submit contract).
    let (mut len, owner) = unsafe {
        (
            (*first).range_len.with(|p| *p),
            (*first).header_ref().owner(),
        )
    };
    while len > 1 {
        let lower = len - len / 2;
        // SAFETY: `first + lower` is inside the range we own.
        let upper = unsafe { &*first.add(lower) };
        upper.range_len.with_mut(|p| {
            // SAFETY: the upper half is ours until we publish it on the next line.
            unsafe { *p = len / 2 }
        });
        let r = upper.header_ref();
        r.set_owner(owner);
        ctx.push(r);
        len = lower;
    }
    // SAFETY: a single declaration we own; alive until its counter decrement below.
    let (entry, data, counter) = unsafe { ((*first).entry, (*first).data, &*owner) };
    // SAFETY: the submitter vouched for `entry(ctx, data)` being callable here.
    if let Err(payload) = catch(|| unsafe { entry(ctx, data) }) {
        counter.poison();
        // The raw layer reports a panic as a poisoned counter; the payload goes, never
        // unwinding past the completion below.
        crate::panic::drop_payload(payload);
    }
    ctx.complete(counter);
}
