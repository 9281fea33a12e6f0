//! Worker thread start and stop hooks ([`Builder::on_worker_start`](crate::Builder::on_worker_start),
//! [`Builder::on_worker_stop`](crate::Builder::on_worker_stop)) and what they are told.

use core::fmt;
use std::sync::Arc;

/// What a worker start or stop hook is told about the worker whose thread calls it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let names = Arc::new(Mutex::new(Vec::new()));
/// let log = names.clone();
/// let jobs = jobsys::JobSystem::builder()
///     .workers(2)
///     .on_worker_start(move |w: &jobsys::WorkerInfo<'_>| {
///         if w.index > 0 {
///             log.lock().unwrap().push((w.index, w.thread_name.map(str::to_owned), w.core));
///         }
///     })
///     .build()?;
/// assert_eq!(*names.lock().unwrap(), [(1, Some("jobsys-worker-1".to_owned()), None)]);
/// # drop(jobs);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct WorkerInfo<'a> {
    /// The worker's index (0: the thread that built the system).
    pub index: usize,
    /// The thread's name: `jobsys-worker-N` for workers 1 and up; worker 0's is whatever the
    /// building thread is called (`None` if it has no name).
    pub thread_name: Option<&'a str>,
    /// The core the thread was pinned to ([`Builder::pin_workers`](crate::Builder::pin_workers),
    /// [`Builder::pin_main_thread`](crate::Builder::pin_main_thread)), or `None` if pinning
    /// was off or failed.
    pub core: Option<usize>,
}

/// A start or stop hook.
pub(crate) type Hook = Arc<dyn Fn(&WorkerInfo<'_>) + Send + Sync>;

/// The hooks a builder was given.
#[derive(Clone, Default)]
pub(crate) struct WorkerHooks {
    pub(crate) start: Option<Hook>,
    pub(crate) stop: Option<Hook>,
}

impl fmt::Debug for WorkerHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHooks")
            .field("start", &self.start.is_some())
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

impl WorkerHooks {
    /// Calls the start hook, if any, on the calling thread, as worker `index`.
    pub(crate) fn started(&self, index: usize, core: Option<usize>) {
        Self::call(self.start.as_ref(), index, core, "on_worker_start");
    }

    /// Calls the stop hook, if any, on the calling thread, as worker `index`.
    pub(crate) fn stopped(&self, index: usize, core: Option<usize>) {
        Self::call(self.stop.as_ref(), index, core, "on_worker_stop");
    }

    fn call(hook: Option<&Hook>, index: usize, core: Option<usize>, what: &str) {
        let Some(hook) = hook else { return };
        let thread = std::thread::current();
        let info = WorkerInfo {
            index,
            thread_name: thread.name(),
            core,
        };
        // A worker thread has nobody to hand a panic to (and worker 0's build or drop is half
        // done): abort with a message instead.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&info))).is_err() {
            crate::panic::fatal(&format!(
                "the Builder::{what} hook panicked on worker {index}; hooks must not panic"
            ));
        }
    }
}
