//! `Tracy`: one Tracy zone per job, over `tracy-client` (cargo feature `tracy`).
//!
//! Tracy zones must nest per thread, and a zone (`tracy_client::Span`) may not leave its
//! thread. Fibers break both: a job that waits is switched out with its zone open, and the
//! worker goes on to run other jobs. So zones end when their fiber leaves the worker and begin
//! again — as a new zone with the same name — when it comes back. The open zones live in a
//! thread-local, touched only by hooks running on that thread.

use jobsys::JobMeta;
use jobsys::profile::ProfileHooks;
use std::cell::RefCell;
use std::sync::OnceLock;
use tracy_client::{Client, Span};

/// A [`ProfileHooks`] back-end for the [Tracy profiler](https://github.com/wolfpld/tracy).
///
/// Shows a zone per job (named after its [`JobMeta`], at its source location), a `wait` zone
/// around each wait (split like the job's), and a `sleep` zone while a worker sleeps; names
/// worker threads `jobsys worker N`. Built with Tracy's on-demand mode: until the profiler
/// connects, the hooks cost little and nothing is kept.
///
/// Zones are not fiber-aware tracks (Tracy's fiber mode serialises every event): a job that
/// waits shows as two or more zones on its worker's thread, one per stretch it ran.
///
/// ```no_run
/// static TRACY: jobsys_profiling::Tracy = jobsys_profiling::Tracy::new();
/// TRACY.install();
/// let jobs = jobsys::JobSystem::builder().build()?;
/// // … run frames; connect the Tracy profiler to see them.
/// # Ok::<(), jobsys::BuildError>(())
/// ```
#[derive(Debug, Default)]
pub struct Tracy {
    _private: (),
}

impl Tracy {
    /// The Tracy back-end; put it in a `static`.
    pub const fn new() -> Self {
        Self { _private: () }
    }

    /// Starts the Tracy client and installs this back-end as jobsys' process-wide hooks.
    /// Returns `false` if hooks were already installed (the first installation wins).
    pub fn install(&'static self) -> bool {
        // Kept for the rest of the process: with tracy-client's `manual-lifetime` feature the
        // client stops when its last handle drops.
        static CLIENT: OnceLock<Client> = OnceLock::new();
        CLIENT.get_or_init(Client::start);
        jobsys::profile::set_hooks(self)
    }
}

/// What an open zone stands for, to open it again after a fiber switch.
#[derive(Clone, Copy, Debug)]
enum Zone {
    Job(&'static JobMeta),
    Wait,
    Sleep,
}

/// One thread's zones. Only hooks running on this thread touch it.
struct ThreadZones {
    /// Open zones, innermost last, with the fiber they belong to (`None`: the worker's own).
    open: Vec<(Option<u32>, Zone, Span)>,
    /// The fiber running on this thread now, if any.
    fiber: Option<u32>,
    /// Zones of fibers switched out in the middle of them, outermost first.
    parked: Vec<(u32, Vec<Zone>)>,
}

thread_local! {
    static ZONES: RefCell<ThreadZones> = const { RefCell::new(ThreadZones { open: Vec::new(), fiber: None, parked: Vec::new() }) };
}

impl ThreadZones {
    fn begin(&mut self, zone: Zone) {
        let Some(client) = Client::running() else {
            return;
        };
        let span = match zone {
            Zone::Job(meta) => {
                client.span_alloc(Some(meta.name), meta.name, meta.file, meta.line, 0)
            }
            Zone::Wait => client.span_alloc(Some("wait"), "wait_for_counter", file!(), line!(), 0),
            Zone::Sleep => client.span_alloc(Some("sleep"), "sleep", file!(), line!(), 0),
        };
        self.open.push((self.fiber, zone, span));
    }

    /// Ends the innermost zone if `is_it` says it is the one ending (dropping a `Span` ends it).
    fn end(&mut self, is_it: impl FnOnce(Zone) -> bool) {
        if self.open.last().is_some_and(|&(_, zone, _)| is_it(zone)) {
            self.open.pop();
        }
    }
}

/// Runs `f` on this thread's zones. A hook never runs inside another hook on the same thread,
/// but if one did, it is skipped rather than panic inside the scheduler.
fn with_zones(f: impl FnOnce(&mut ThreadZones)) {
    let _ = ZONES.try_with(|zones| {
        if let Ok(mut zones) = zones.try_borrow_mut() {
            f(&mut zones);
        }
    });
}

impl ProfileHooks for Tracy {
    fn worker_start(&self, worker: usize) {
        if let Some(client) = Client::running() {
            client.set_thread_name(&format!("jobsys worker {worker}"));
        }
    }

    fn job_begin(&self, _worker: usize, meta: &'static JobMeta) {
        with_zones(|z| z.begin(Zone::Job(meta)));
    }

    fn job_end(&self, _worker: usize, meta: &'static JobMeta) {
        with_zones(|z| z.end(|zone| matches!(zone, Zone::Job(m) if std::ptr::eq(m, meta))));
    }

    fn fiber_enter(&self, _worker: usize, fiber: u32) {
        with_zones(|z| {
            z.fiber = Some(fiber);
            if let Some(i) = z.parked.iter().position(|&(f, _)| f == fiber) {
                let (_, zones) = z.parked.swap_remove(i);
                for zone in zones {
                    z.begin(zone);
                }
            }
        });
    }

    fn fiber_leave(&self, _worker: usize, fiber: u32) {
        with_zones(|z| {
            let mut suspended = Vec::new();
            while let Some(&(Some(f), zone, _)) = z.open.last()
                && f == fiber
            {
                z.open.pop(); // ends the zone, innermost first
                suspended.push(zone);
            }
            if !suspended.is_empty() {
                suspended.reverse();
                z.parked.push((fiber, suspended));
            }
            z.fiber = None;
        });
    }

    fn wait_begin(&self, _worker: usize) {
        with_zones(|z| z.begin(Zone::Wait));
    }

    fn wait_end(&self, _worker: usize) {
        with_zones(|z| z.end(|zone| matches!(zone, Zone::Wait)));
    }

    fn sleep_begin(&self, _worker: usize) {
        with_zones(|z| z.begin(Zone::Sleep));
    }

    fn sleep_end(&self, _worker: usize) {
        with_zones(|z| z.end(|zone| matches!(zone, Zone::Sleep)));
    }
}
