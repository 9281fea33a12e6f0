//! Stall reports: fibers parked on `jobsys::sync` primitives that nothing releases.
//!
//! The deadlock abort (`Shared::fiber_parked`) cannot fire while a fiber is parked on a
//! primitive: a plain thread may still release it. But a `Barrier` waited on by fewer
//! participants than it was built for, or an `Event` nobody sets, stalls the system all the
//! same. So when every worker has been idle with such fibers parked, no timer armed and no
//! progress in between for [`STALL_AFTER`], the first worker whose look notices prints, once
//! per stall, which jobs wait and on what. It never aborts: the stall may still end (a thread
//! may set the event).
//!
//! Idle means asleep, or — while a frame is open, when idle workers spin instead of sleeping —
//! spinning idle in the frame (`Worker::frame_idle`, set at the spinner's periodic yield and
//! cleared when it finds work). The looks are made by sleeping workers at their watchdog wakes
//! and by workers spinning idle in a frame at their periodic yield, so a stall inside a frame
//! is reported the same way. A worker running a job is never idle: a frame that is merely busy
//! is no stall.
//!
//! The same holds for a class of fibers run dry: jobs of one stack class queued while every
//! fiber that could run them is parked (a chain of nested `Large` waits deeper than the large
//! fibers, with small fibers free). Small jobs, or a job a foreign thread submits, could still
//! wake one, so this is no deadlock abort either; it is reported the same way.
//!
//! A quiet spell is exact about progress: it lasts only while the system's progress signature
//! (the wake epoch, and every worker's running totals of jobs started and waits parked) stays
//! what it was when the spell began. Watchdogs look every 20 ms, so a burst of work between two
//! looks (worker 0 entering `run`, a worker up by itself) is seen in the totals even though
//! no look saw a worker awake, and the report's quiet time never spans it.
//!
//! The report allocates nothing: it is written straight to a locked stderr (a stall may
//! strike a program that proves it allocates nothing per frame while it waits).
//!
//! Cost: a few atomic loads at each watchdog wake of a sleeping worker (every 20 ms while
//! asleep) and at each periodic yield of a worker spinning idle in a frame (every 1,024 idle
//! rounds, beside a `yield_now`); nothing on the hot paths, no extra thread.

use super::Shared;
use crate::job::StackClass;
use crate::shim::{AtomicBool, AtomicU64, Ordering};

/// How long the system must be stalled before the report is printed.
const STALL_AFTER: u64 = 1_000_000_000;

/// The current quiet spell, as the watchdogs saw it.
pub(crate) struct StallWatch {
    /// The progress signature (see [`Shared::progress_signature`]) when the spell began; any
    /// change ends the spell.
    progress: AtomicU64,
    /// When the spell began (`deadline::now`), or `NEVER` outside one.
    since: AtomicU64,
    /// The spell was reported (reset when it ends).
    reported: AtomicBool,
}

impl StallWatch {
    pub(crate) fn new() -> Self {
        Self {
            progress: AtomicU64::new(0),
            since: AtomicU64::new(crate::deadline::NEVER),
            reported: AtomicBool::new(false),
        }
    }

    /// One watchdog look at time `now`: whether the system is `stalled` (see
    /// [`Shared::stalled`]) and its progress signature then. Starts, continues or ends the
    /// spell; returns the quiet time to report, once per spell, when it has lasted
    /// [`STALL_AFTER`] with the signature unchanged.
    fn observe(&self, stalled: bool, progress: u64, now: u64) -> Option<u64> {
        if !stalled {
            if self.since.load(Ordering::Relaxed) != crate::deadline::NEVER {
                self.since.store(crate::deadline::NEVER, Ordering::Relaxed);
                self.reported.store(false, Ordering::Relaxed);
            }
            return None;
        }
        // Recorded at every look, so a new spell compares with its own start.
        let moved = self.progress.swap(progress, Ordering::Relaxed) != progress;
        let since = self.since.load(Ordering::Relaxed);
        if since == crate::deadline::NEVER || moved {
            // A new spell (or progress ended the last one).
            self.since.store(now, Ordering::Relaxed);
            self.reported.store(false, Ordering::Relaxed);
            return None;
        }
        let quiet = now.saturating_sub(since);
        (quiet >= STALL_AFTER && !self.reported.swap(true, Ordering::Relaxed)).then_some(quiet)
    }
}

/// `core::fmt::Write` over a locked stderr: a report written through it reaches the stream
/// piece by piece, with no `String` built first (no heap allocation), and in one piece with
/// respect to other threads' `eprint!`s (the lock is held throughout).
pub(crate) struct StderrWriter(std::io::StderrLock<'static>);

impl StderrWriter {
    /// Locks stderr until the writer is dropped.
    pub(crate) fn lock() -> Self {
        Self(std::io::stderr().lock())
    }
}

impl core::fmt::Write for StderrWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        std::io::Write::write_all(&mut self.0, s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

impl Shared {
    /// Called by a sleeping worker each time its park returns, and by a worker spinning idle
    /// in a frame at its periodic yield: starts, continues or ends the
    /// quiet spell, and reports it once when it has lasted [`STALL_AFTER`]. Approximate by
    /// design (its reads are not one snapshot): it only decides whether to print.
    pub(crate) fn check_stall(&self) {
        let stalled = self.stalled();
        let progress = if stalled {
            self.progress_signature()
        } else {
            0
        };
        if let Some(quiet) = self
            .stall
            .observe(stalled, progress, crate::deadline::now())
        {
            self.report_stall(quiet);
        }
    }

    /// Whether the system looks stalled: every worker idle (asleep, or spinning idle in a
    /// frame), no timer armed, and fibers parked on `jobsys::sync` primitives (or a stack
    /// class run dry). The cheap loads first: spinners look often.
    fn stalled(&self) -> bool {
        let all_idle = self.workers.iter().enumerate().all(|(i, w)| {
            w.bed.sleeping.load(Ordering::Relaxed)
                || w.frame_idle.load(Ordering::Relaxed)
                // Worker 0 outside `run` is no worker: it runs nothing, so it is not missing.
                || (i == 0 && !self.in_run.load(Ordering::Relaxed))
        });
        all_idle
            && !self.timers.armed()
            && !self.lane.busy()
            && (self.parked.load(Ordering::Relaxed) >> 32 != 0 || self.starved_class().is_some())
    }

    /// What moves whenever the system makes progress: the wake epoch (every claim of a
    /// sleeping worker) plus every worker's jobs started and waits parked. Each part only
    /// grows, so the sum changes whenever one does.
    fn progress_signature(&self) -> u64 {
        let epoch = self.dorm.epoch.load(Ordering::SeqCst) as u64;
        (0..self.workers.len()).fold(epoch, |sum, i| {
            let s = self.worker_stats(i);
            sum.wrapping_add(s.jobs_run).wrapping_add(s.parked_waits)
        })
    }

    /// A stack class with jobs queued on some worker's rings and no free fiber to run them.
    fn starved_class(&self) -> Option<StackClass> {
        [StackClass::Large, StackClass::Small]
            .into_iter()
            .find(|&class| {
                !self.fibers.has_free(class)
                    && (0..self.workers.len()).any(|i| self.queued_for(i, class))
            })
    }

    #[cold]
    fn report_stall(&self, quiet_ns: u64) {
        // Written straight to stderr, so that the report allocates nothing.
        let _ = self.write_stall_report(&mut StderrWriter::lock(), quiet_ns);
    }

    /// Writes the stall report (nothing if, by now, neither kind of stall is seen).
    fn write_stall_report(
        &self,
        out: &mut impl core::fmt::Write,
        quiet_ns: u64,
    ) -> core::fmt::Result {
        let ms = quiet_ns / 1_000_000;
        let idle = Idle(self.frames_open.load(Ordering::Relaxed));
        if let Some(class) = self.starved_class() {
            let (small, small_size, large, large_size) = self.fibers.shape();
            writeln!(
                out,
                "jobsys: stall: no progress for {ms} ms: {idle} and {class:?} \
                 jobs are queued, but no fiber that can run them is free ({small} small of \
                 {small_size} bytes, {large} large of {large_size} bytes). Fibers out of the \
                 pool:"
            )?;
            self.fibers.write_report(out, true)?;
            writeln!(
                out,
                "A chain of nested waits of {class:?} jobs deeper than those fibers can \
                 host looks like this: raise the fiber count of that class \
                 (Builder::small_fibers / large_fibers), or lower \
                 Builder::large_inline_headroom / inline_headroom so that more levels run \
                 inline. (Small jobs or a foreign thread could still end the stall, so the \
                 system goes on waiting.)"
            )?;
        }
        let n = self.fibers.sync_wait_count();
        if n == 0 {
            return Ok(());
        }
        writeln!(
            out,
            "jobsys: stall: no progress for {ms} ms: {idle} and {n} fiber(s) are \
             parked on jobsys::sync primitives that nothing has released (a plain thread still \
             could, so this is no deadlock abort; the system goes on waiting):"
        )?;
        self.fibers.write_sync_waits(out)?;
        writeln!(
            out,
            "Check that every Barrier has as many participants as it was built for, and that \
             whatever sets, releases or sends to these primitives runs."
        )
    }
}

/// How the stall report says that every worker is idle, given the frames open.
struct Idle(usize);

impl core::fmt::Display for Idle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            0 => f.write_str("every worker is asleep"),
            n => write!(
                f,
                "every worker is idle while {n} frame(s) are open (idle workers are spinning)"
            ),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{STALL_AFTER, StallWatch};
    use crate::shim::Ordering;
    use crate::sync::{Event, EventKind};
    use crate::{Affinity, Counter, Ctx, JobDecl, JobSystem, job_meta};

    fn wait_event(ctx: &Ctx, data: *mut ()) {
        // SAFETY: points at the test's `Event`, which outlives the job (the test waits for
        // the job's counter before dropping it).
        unsafe { &*(data as *const Event) }.wait(ctx);
    }

    /// A spell must not outlive progress that no watchdog saw as a worker awake: worker 0
    /// running a `run` between two looks of worker 1's watchdog, which claims no sleeper (the
    /// wake epoch does not move), still ends the spell. So a quiet moment shorter than
    /// `STALL_AFTER` after it is not reported, although the first spell began longer ago.
    ///
    /// Deterministic: the looks are made here on a watch of the test's own, at times the test
    /// chooses, on a real system held stalled (a job parked on an event nobody sets yet, every
    /// worker asleep); the system's own watchdogs use the system's watch and cannot interfere.
    #[test]
    fn progress_between_two_looks_ends_the_quiet_spell() {
        let jobs = JobSystem::builder().workers(2).build().unwrap();
        let shared: *const super::Shared = jobs.run(|ctx| core::ptr::from_ref(ctx.shared()));
        // SAFETY: `ctx.shared()` is the system's `Shared`, kept alive by `jobs` (an `Arc`)
        // until the end of this test; nothing here outlives `jobs`.
        let shared = unsafe { &*shared };
        let event = Event::new(EventKind::Manual);
        let decls = [JobDecl::new(
            job_meta!("stalled", affinity(Affinity::Worker(1))),
            wait_event,
            core::ptr::from_ref(&event).cast_mut().cast(),
        )];
        let counter = Counter::new();
        let handle = jobs.handle();
        // Sets the event and waits for the job, also when an assertion fails (a system
        // dropped with the job still parked would abort).
        struct Release<'a>(&'a Event, &'a crate::Handle, &'a Counter);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.set();
                self.1.wait_for_counter(self.2, 0);
            }
        }
        // SAFETY: `decls`, `event` and `counter` outlive the wait for `counter` in
        // `Release::drop`, which runs before any of them is dropped (declared after them).
        unsafe { handle.run_jobs(&decls, &counter) };
        let _release = Release(&event, &handle, &counter);
        // Stalled: the job parked on the event, worker 1 asleep, worker 0 outside `run`.
        while !(shared.parked.load(Ordering::SeqCst) >> 32 == 1 && shared.stalled()) {
            std::thread::yield_now();
        }
        let watch = StallWatch::new();
        let t0 = 1_000;
        assert_eq!(watch.observe(true, shared.progress_signature(), t0), None);
        assert_eq!(
            watch.observe(true, shared.progress_signature(), t0 + STALL_AFTER / 2),
            None
        );
        // Progress that wakes nobody: the root job of a `run` on worker 0.
        let epoch = shared.dorm.epoch.load(Ordering::SeqCst);
        jobs.run(|_| ());
        assert!(shared.stalled(), "worker 1 was woken");
        assert_eq!(
            shared.dorm.epoch.load(Ordering::SeqCst),
            epoch,
            "a sleeper was claimed: the epoch alone would have ended the spell"
        );
        let progress = shared.progress_signature();
        // Past `STALL_AFTER` since the first spell began, but a new spell begins here.
        assert_eq!(
            watch.observe(true, progress, t0 + STALL_AFTER + 1),
            None,
            "a quiet spell spanning the run on worker 0 was reported"
        );
        assert_eq!(
            watch.observe(true, progress, t0 + 2 * STALL_AFTER),
            None,
            "reported before the new spell lasted STALL_AFTER"
        );
        // The new spell is reported once it has lasted `STALL_AFTER`, and once only.
        assert_eq!(
            watch.observe(true, progress, t0 + 2 * STALL_AFTER + 1),
            Some(STALL_AFTER)
        );
        assert_eq!(watch.observe(true, progress, t0 + 3 * STALL_AFTER), None);
        // A look that finds the system not stalled ends the spell; the next begins afresh.
        assert_eq!(watch.observe(false, 0, t0 + 3 * STALL_AFTER), None);
        assert_eq!(watch.observe(true, progress, t0 + 3 * STALL_AFTER), None);
        assert_eq!(
            watch.observe(true, progress, t0 + 4 * STALL_AFTER - 1),
            None
        );
    }
}
