//! Static description of a job: what the profiler shows and what the scheduler must respect.

/// Scheduling priority of a job.
///
/// Every worker keeps one ring per priority and looks at its own rings, the shared injectors
/// and other workers' rings most urgent first. One pick in 61 is a *global pick* that looks
/// for High work anywhere, then Low work, first: a High job submitted elsewhere starts within
/// 60 local picks of a busy worker, and Low work is never starved by a stream of Normal work.
/// There is no priority inheritance: a waiting job runs its own unstarted children inline,
/// whatever their priority. The rules in full are in the source repository's guide
/// (docs/guide.md, "Priorities and hints").
///
/// Low work also has a *background lane*: each outermost frame opening
/// ([`Frames::frame`](crate::Frames::frame), [`Ctx::frame`](crate::Ctx::frame)) first lets one
/// queued Low job start on a fiber of its own, so background work progresses even when a frame
/// loop never parks (guide, "Detached work and the background lane").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// Latency-critical work (input, render submission).
    High,
    /// Ordinary frame work.
    #[default]
    Normal,
    /// Background work (streaming, compression).
    Low,
}

/// Which fiber stack a job needs.
///
/// A `Small` job may run on a large fiber; a `Large` job only ever runs on a large fiber. A job
/// that starts on a fiber of its own gets that fiber's whole stack; a job run inline on a
/// waiter's fiber (its own children, `join`'s `b`, `Hint::Inline`) gets at least the
/// [`Builder::inline_headroom`](crate::Builder::inline_headroom) (`Small`) or
/// [`Builder::large_inline_headroom`](crate::Builder::large_inline_headroom) (`Large`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum StackClass {
    /// The many small stacks (64 KiB by default).
    #[default]
    Small,
    /// The few large stacks (512 KiB by default), for deep recursion or big locals.
    Large,
}

impl StackClass {
    /// Whether a fiber of class `self` can run a job that declares `job`.
    #[inline]
    pub(crate) fn fits(self, job: StackClass) -> bool {
        self >= job
    }
}

/// Where a job may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Affinity {
    /// Any worker; the job may be stolen.
    #[default]
    Any,
    /// Only worker `n`. Worker 0 is the thread that built the system and calls
    /// [`JobSystem::run`](crate::JobSystem::run): use it for window, GPU-device or audio calls
    /// that must stay on the main thread. Pinned jobs are never stolen.
    Worker(usize),
}

/// The static identity of a job: name and source location for the profiler, and the
/// priority, stack class and affinity the scheduler honours.
///
/// Every job carries a `&'static JobMeta`. Make one with [`job_meta!`](crate::job_meta), which
/// fills in the file and line.
#[derive(Debug)]
pub struct JobMeta {
    /// Name shown in traces and in deadlock reports.
    pub name: &'static str,
    /// Source file that declared the job.
    pub file: &'static str,
    /// Source line that declared the job.
    pub line: u32,
    /// Scheduling priority.
    pub priority: Priority,
    /// Fiber stack class the job needs.
    pub stack: StackClass,
    /// Where the job may run.
    pub affinity: Affinity,
}

impl JobMeta {
    /// A `Normal`, `Small`, `Any` job named `name`.
    pub const fn new(name: &'static str, file: &'static str, line: u32) -> Self {
        Self {
            name,
            file,
            line,
            priority: Priority::Normal,
            stack: StackClass::Small,
            affinity: Affinity::Any,
        }
    }

    /// Same job, other priority.
    pub const fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Same job, other stack class.
    pub const fn stack(mut self, stack: StackClass) -> Self {
        self.stack = stack;
        self
    }

    /// Same job, other affinity.
    pub const fn affinity(mut self, affinity: Affinity) -> Self {
        self.affinity = affinity;
        self
    }

    /// The metadata of jobs submitted without a name.
    pub const DEFAULT: JobMeta = JobMeta::new("job", "<unnamed>", 0);
    /// The metadata of the second half of [`Ctx::join`](crate::Ctx::join).
    pub(crate) const JOIN: JobMeta = JobMeta::new("join", file!(), line!());
    /// The metadata of the closure passed to [`JobSystem::run`](crate::JobSystem::run).
    pub(crate) const ROOT: JobMeta =
        JobMeta::new("run", file!(), line!()).affinity(Affinity::Worker(0));
}

/// Declares a `&'static JobMeta` with this file and line.
///
/// ```
/// use jobsys::{job_meta, JobMeta, StackClass, Priority};
/// let plain: &'static JobMeta = job_meta!("physics");
/// let deep: &'static JobMeta = job_meta!("pathfind", stack(StackClass::Large), priority(Priority::High));
/// assert_eq!(plain.name, "physics");
/// assert_eq!(deep.stack, StackClass::Large);
/// ```
#[macro_export]
macro_rules! job_meta {
    ($name:expr $(, $setter:ident($arg:expr))* $(,)?) => {{
        static META: $crate::JobMeta = $crate::JobMeta::new($name, file!(), line!()) $(.$setter($arg))*;
        &META
    }};
}
