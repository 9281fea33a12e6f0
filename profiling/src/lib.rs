//! # jobsys-profiling — see what the job system did
//!
//! Back-ends for jobsys' profiler hooks ([`jobsys::profile::ProfileHooks`]). This crate turns
//! on jobsys' `profile` feature, which makes the scheduler call the hooks installed with
//! [`jobsys::profile::add_hooks`]; without it the call sites compile to nothing.
//!
//! - [`ChromeTrace`] records job, user-zone, lock-wait, wait, steal and sleep events per
//!   worker into fixed buffers and writes them as Chrome trace JSON, for `chrome://tracing` or
//!   the Perfetto UI. No profiler to install, nothing allocated while recording.
//! - `Tracy` (cargo feature `tracy`; `tracy-network` to listen on every interface instead of
//!   loopback; `tracy-fibers` for a track per fiber) feeds Tracy over `tracy-client`: zones per
//!   job and user zone, frame marks and frame sets, plots, contended locks in the lock view,
//!   with on-demand connection: nothing is recorded until the Tracy profiler connects.
//!
//! Hooks are process-wide; up to `jobsys::profile::MAX_HOOK_SETS` sets receive every event
//! (a back-end beside a game's own stats hook, say). Install each back-end once,
//! before building the job system.
//!
//! ```
//! use jobsys_profiling::ChromeTrace;
//!
//! // 2 workers, room for 64 Ki events each; the hooks need a `'static` back-end.
//! let trace: &'static ChromeTrace = Box::leak(Box::new(ChromeTrace::new(2, 1 << 16)));
//! assert!(trace.install());
//!
//! let jobs = jobsys::JobSystem::builder().workers(2).build()?;
//! let mut data = vec![1u32; 4096];
//! jobs.run(|ctx| {
//!     ctx.scope(|s| {
//!         for chunk in data.chunks_mut(256) {
//!             s.spawn_with(jobsys::job_meta!("double"), move |_| chunk.iter_mut().for_each(|x| *x *= 2));
//!         }
//!     });
//! });
//! drop(jobs); // joins the workers: every event is in
//!
//! let mut json = Vec::new(); // or a `std::fs::File` named `trace.json`
//! trace.write_json(&mut json)?;
//! let json = String::from_utf8(json)?;
//! assert!(json.contains(r#""name":"double""#));
//! assert_eq!(trace.dropped(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chrome;
#[cfg(feature = "tracy-backend")]
mod tracy;

pub use chrome::ChromeTrace;
#[cfg(feature = "tracy-backend")]
pub use tracy::Tracy;

// The package README's examples compile and pass as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
