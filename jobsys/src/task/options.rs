//! `JobOptions`: job metadata chosen at run time, without leaking a `JobMeta` per spawn.

use crate::job::{Affinity, JobMeta, Priority, StackClass};
use crate::sched::Hint;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Priority, stack class, affinity, placement hint and name of one spawn, chosen at run time.
///
/// Every job carries a `&'static JobMeta`, which profilers key by address. Options are turned
/// into one by *interning*: the first spawn with a given (name, priority, stack, affinity,
/// call site) allocates its `JobMeta` once, for the life of the process, in a process-wide
/// table; every later spawn with the same combination finds it there (one lock and one hash
/// lookup, no allocation). Memory therefore grows with the number of distinct combinations a
/// program uses — a handful per call site — never with the number of spawns. The name is a
/// `&'static str` for the same reason (profilers keep it): for a name built at run time,
/// intern the string yourself. [`job_meta!`](crate::job_meta) stays the zero-cost choice when
/// everything is known at compile time.
///
/// ```
/// use jobsys::{JobOptions, JobSystem, Priority};
/// let jobs = JobSystem::builder().workers(2).build()?;
/// let urgent = true; // known only at run time
/// let opts = JobOptions::new("upload").priority(if urgent { Priority::High } else { Priority::Low });
/// let v = jobs.run(|ctx| ctx.scope(|s| s.spawn_opts(opts, |_| 6 * 7).join(s)));
/// assert_eq!(v, 42);
/// assert_eq!(opts.meta().priority, Priority::High);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobOptions {
    /// Name shown in traces and in deadlock reports.
    pub name: &'static str,
    /// Scheduling priority.
    pub priority: Priority,
    /// Fiber stack class the job needs.
    pub stack: StackClass,
    /// Where the job may run.
    pub affinity: Affinity,
    /// How the submission is placed (see [`Hint`]).
    pub hint: Hint,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self::new("job")
    }
}

impl From<Priority> for JobOptions {
    /// An unnamed job (`"job"`) of priority `priority`.
    fn from(priority: Priority) -> Self {
        Self::new("job").priority(priority)
    }
}

/// What a `JobMeta` is interned by.
type Key = (
    &'static str,
    &'static str,
    u32,
    Priority,
    StackClass,
    Affinity,
);

fn table() -> &'static Mutex<HashMap<Key, &'static JobMeta>> {
    static TABLE: OnceLock<Mutex<HashMap<Key, &'static JobMeta>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

impl JobOptions {
    /// A `Normal`, `Small`, `Any`, `Lifo` job named `name`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            priority: Priority::Normal,
            stack: StackClass::Small,
            affinity: Affinity::Any,
            hint: Hint::Lifo,
        }
    }

    /// Same options, other priority.
    pub const fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Same options, other stack class.
    pub const fn stack(mut self, stack: StackClass) -> Self {
        self.stack = stack;
        self
    }

    /// Same options, other affinity.
    pub const fn affinity(mut self, affinity: Affinity) -> Self {
        self.affinity = affinity;
        self
    }

    /// Same options, other placement hint.
    pub const fn hint(mut self, hint: Hint) -> Self {
        self.hint = hint;
        self
    }

    /// The interned `&'static JobMeta` of these options at the caller's location (see the type
    /// docs): the same reference for the same options at the same call site.
    ///
    /// ```
    /// let meta = |p| jobsys::JobOptions::new("io").priority(p).meta();
    /// let (a, b) = (meta(jobsys::Priority::Low), meta(jobsys::Priority::Low));
    /// assert!(std::ptr::eq(a, b)); // interned once
    /// assert_eq!(a.name, "io");
    /// ```
    #[track_caller]
    pub fn meta(&self) -> &'static JobMeta {
        let at = core::panic::Location::caller();
        let key = (
            self.name,
            at.file(),
            at.line(),
            self.priority,
            self.stack,
            self.affinity,
        );
        let mut table = table().lock().unwrap_or_else(|e| e.into_inner());
        table.entry(key).or_insert_with(|| {
            Box::leak(Box::new(
                JobMeta::new(self.name, at.file(), at.line())
                    .priority(self.priority)
                    .stack(self.stack)
                    .affinity(self.affinity),
            ))
        })
    }
}
