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
use std::ffi::c_char;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, Ordering};
use tracy_client::Client;
use tracy_client_sys as sys;

/// A [`ProfileHooks`] back-end for the [Tracy profiler](https://github.com/wolfpld/tracy).
///
/// Shows a zone per job (named after its [`JobMeta`], at its source location), a `wait` zone
/// around each wait (split like the job's), and a `sleep` zone while a worker sleeps; names
/// worker threads `jobsys worker N` (worker 0, the thread that calls `run`,
/// `jobsys worker 0 (main)` where jobsys reports its `worker_start`). Built with Tracy's on-demand mode: until the profiler
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
    /// Returns `false` if this back-end is already installed or every hook set
    /// (`jobsys::profile::MAX_HOOK_SETS`) is taken.
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

/// A Tracy source location that lives for the rest of the process.
struct StaticLoc(sys::___tracy_source_location_data);

// SAFETY: the pointers in a `StaticLoc` point to `'static`, never-written text (string
// literals, or text leaked by `loc_of`); sharing them between threads only reads them.
unsafe impl Sync for StaticLoc {}

static WAIT_LOC: StaticLoc = StaticLoc(sys::___tracy_source_location_data {
    name: c"wait".as_ptr(),
    function: c"wait_for_counter".as_ptr(),
    file: c"jobsys".as_ptr(),
    line: 0,
    color: 0,
});

static SLEEP_LOC: StaticLoc = StaticLoc(sys::___tracy_source_location_data {
    name: c"sleep".as_ptr(),
    function: c"sleep".as_ptr(),
    file: c"jobsys".as_ptr(),
    line: 0,
    color: 0,
});

/// A job's source location, built once per distinct `JobMeta` (by address) and never freed.
struct MetaLoc {
    meta: *const JobMeta,
    loc: StaticLoc,
    /// `name\0file\0`: the text `loc` points to (leaked with the `MetaLoc`).
    _text: Box<[u8]>,
}

/// Slots of the location table (a power of two). Metas past it fall back to Tracy's
/// allocated source locations.
const LOC_SLOTS: usize = 1024;

/// Open-addressed table from a `JobMeta`'s address to its location. A slot goes from null to
/// a leaked `MetaLoc` once and never changes again, so readers need no lock.
static LOCS: [AtomicPtr<MetaLoc>; LOC_SLOTS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; LOC_SLOTS];

/// The `'static` Tracy source location of `meta`: built (two allocations) the first time this
/// meta is seen, looked up without allocating after that. `None` when the table is full.
fn loc_of(meta: &'static JobMeta) -> Option<&'static sys::___tracy_source_location_data> {
    let key: *const JobMeta = meta;
    // Fibonacci hashing of the address; the low bits of a pointer to an aligned struct are 0.
    let start = ((key as usize as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
    let mut fresh: Option<Box<MetaLoc>> = None;
    for i in 0..LOC_SLOTS {
        let slot = &LOCS[(start + i) % LOC_SLOTS];
        let mut seen = slot.load(Ordering::Acquire);
        if seen.is_null() {
            let new = Box::into_raw(fresh.take().unwrap_or_else(|| new_loc(meta)));
            match slot.compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
                // SAFETY: published `MetaLoc`s are leaked: never freed nor written again.
                Ok(_) => return Some(unsafe { &(*new).loc.0 }),
                Err(now) => {
                    // SAFETY: `new` came from `Box::into_raw` above and was not published.
                    fresh = Some(unsafe { Box::from_raw(new) });
                    seen = now;
                }
            }
        }
        // SAFETY: non-null slots hold leaked `MetaLoc`s published with Release (see above).
        let entry = unsafe { &*seen };
        if ptr::eq(entry.meta, key) {
            return Some(&entry.loc.0);
        }
    }
    None
}

fn new_loc(meta: &'static JobMeta) -> Box<MetaLoc> {
    // Interior NULs would cut the C strings short: keep the text before them.
    let name = meta.name.split('\0').next().unwrap_or_default();
    let file = meta.file.split('\0').next().unwrap_or_default();
    let text: Box<[u8]> = [name.as_bytes(), b"\0", file.as_bytes(), b"\0"]
        .concat()
        .into();
    let name_ptr = text.as_ptr().cast::<c_char>();
    // SAFETY: `name.len() + 1 < text.len()`: the file's text starts after the name's NUL.
    let file_ptr = unsafe { name_ptr.add(name.len() + 1) };
    Box::new(MetaLoc {
        meta,
        loc: StaticLoc(sys::___tracy_source_location_data {
            name: name_ptr,
            function: name_ptr,
            file: file_ptr,
            line: meta.line,
            color: 0,
        }),
        // Moving the box moves the pointer, not the bytes: `name_ptr` stays valid.
        _text: text,
    })
}

/// An open Tracy zone; dropping it ends the zone (on the thread that began it: the zones
/// live in a thread-local).
struct OpenZone(sys::___tracy_c_zone_context);

impl OpenZone {
    fn begin(zone: Zone) -> Self {
        let ctx = match zone {
            Zone::Job(meta) => match loc_of(meta) {
                // SAFETY: the location is `'static` with NUL-terminated text; the client is
                // running (checked by the caller).
                Some(loc) => unsafe { sys::___tracy_emit_zone_begin(loc, 1) },
                // SAFETY: the pointers and lengths describe `'static` strs; Tracy copies
                // them into its own allocation, which the zone's end frees.
                None => unsafe {
                    let loc = sys::___tracy_alloc_srcloc_name(
                        meta.line,
                        meta.file.as_ptr().cast(),
                        meta.file.len(),
                        meta.name.as_ptr().cast(),
                        meta.name.len(),
                        meta.name.as_ptr().cast(),
                        meta.name.len(),
                        0,
                    );
                    sys::___tracy_emit_zone_begin_alloc(loc, 1)
                },
            },
            // SAFETY: as for a job's location.
            Zone::Wait => unsafe { sys::___tracy_emit_zone_begin(&WAIT_LOC.0, 1) },
            // SAFETY: as for a job's location.
            Zone::Sleep => unsafe { sys::___tracy_emit_zone_begin(&SLEEP_LOC.0, 1) },
        };
        Self(ctx)
    }
}

impl Drop for OpenZone {
    fn drop(&mut self) {
        // SAFETY: the context came from a zone begin on this thread and is ended once.
        unsafe { sys::___tracy_emit_zone_end(self.0) }
    }
}

/// One thread's zones. Only hooks running on this thread touch it.
struct ThreadZones {
    /// Open zones, innermost last, with the fiber they belong to (`None`: the worker's own).
    open: Vec<(Option<u32>, Zone, OpenZone)>,
    /// The fiber running on this thread now, if any.
    fiber: Option<u32>,
    /// Zones of fibers switched out in the middle of them; each fiber's outermost first.
    /// One flat list, so a switch allocates nothing once it has grown to its high-water mark.
    parked: Vec<(u32, Zone)>,
}

/// Zones each thread's lists have room for from their first use.
const RESERVED_ZONES: usize = 256;

thread_local! {
    static ZONES: RefCell<ThreadZones> = const { RefCell::new(ThreadZones { open: Vec::new(), fiber: None, parked: Vec::new() }) };
}

impl ThreadZones {
    fn begin(&mut self, zone: Zone) {
        if Client::running().is_none() {
            return;
        }
        self.prepare();
        self.open.push((self.fiber, zone, OpenZone::begin(zone)));
    }

    /// Once per thread: room enough that the lists rarely grow later. Done when a worker
    /// starts (so a worker's first zone, whenever it comes, allocates nothing), or at the
    /// first zone of a thread the back-end saw no start of.
    fn prepare(&mut self) {
        if self.open.capacity() == 0 {
            self.open.reserve(RESERVED_ZONES);
            self.parked.reserve(RESERVED_ZONES);
        }
    }

    /// Ends the innermost zone if `is_it` says it is the one ending (dropping it ends it).
    fn end(&mut self, is_it: impl FnOnce(Zone) -> bool) {
        if self.open.last().is_some_and(|&(_, zone, _)| is_it(zone)) {
            self.open.pop();
        }
    }

    /// `fiber` comes back: begins its parked zones again, outermost first.
    fn resume(&mut self, fiber: u32) {
        self.fiber = Some(fiber);
        let mut i = 0;
        while i < self.parked.len() {
            let (f, zone) = self.parked[i];
            if f == fiber {
                self.begin(zone);
            }
            i += 1;
        }
        self.parked.retain(|&(f, _)| f != fiber);
    }

    /// `fiber` leaves: ends its open zones, innermost first, and parks them outermost first.
    fn suspend(&mut self, fiber: u32) {
        let from = self.parked.len();
        while let Some(&(Some(f), zone, _)) = self.open.last()
            && f == fiber
        {
            self.open.pop(); // ends the zone
            self.parked.push((fiber, zone));
        }
        self.parked[from..].reverse();
        self.fiber = None;
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

/// Frame lanes: each frame, from its opening to its retirement, is a discontinuous frame of
/// the lowest lane free at its opening, so frames in flight that overlap land on different
/// frame sets ("jobsys frames (lane 0)", "(lane 1)", …) and no set has overlapping frames.
/// jobsys allows at most 16 frames in flight, so 16 lanes always suffice.
const LANES: usize = 16;
static LANE_NAMES: [&std::ffi::CStr; LANES] = [
    c"jobsys frames (lane 0)",
    c"jobsys frames (lane 1)",
    c"jobsys frames (lane 2)",
    c"jobsys frames (lane 3)",
    c"jobsys frames (lane 4)",
    c"jobsys frames (lane 5)",
    c"jobsys frames (lane 6)",
    c"jobsys frames (lane 7)",
    c"jobsys frames (lane 8)",
    c"jobsys frames (lane 9)",
    c"jobsys frames (lane 10)",
    c"jobsys frames (lane 11)",
    c"jobsys frames (lane 12)",
    c"jobsys frames (lane 13)",
    c"jobsys frames (lane 14)",
    c"jobsys frames (lane 15)",
];
/// Lanes in use (bit `l`: lane `l`).
static LANES_BUSY: AtomicU32 = AtomicU32::new(0);
/// The lane of frame `index` (at `index % LANES`), plus one; 0: none. Frames `n` and
/// `n + 16` are never open together (at most 16 in flight), so the slots never collide.
static LANE_OF: [AtomicU8; LANES] = [const { AtomicU8::new(0) }; LANES];

impl ProfileHooks for Tracy {
    fn frame_begin(&self, index: u64) {
        let Some(client) = Client::running() else {
            return;
        };
        // The main frame set: one mark per opening, so Tracy's frame view shows frame times.
        client.frame_mark();
        let mut busy = LANES_BUSY.load(Ordering::Relaxed);
        let lane = loop {
            let lane = (!busy).trailing_zeros() as usize;
            if lane >= LANES {
                return;
            }
            match LANES_BUSY.compare_exchange_weak(
                busy,
                busy | 1 << lane,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break lane,
                Err(now) => busy = now,
            }
        };
        LANE_OF[(index % LANES as u64) as usize].store(lane as u8 + 1, Ordering::Relaxed);
        // SAFETY: a `'static`, NUL-terminated name; Tracy keeps the pointer as the set's key.
        unsafe { sys::___tracy_emit_frame_mark_start(LANE_NAMES[lane].as_ptr()) };
    }

    fn frame_retired(&self, index: u64) {
        let lane = LANE_OF[(index % LANES as u64) as usize].swap(0, Ordering::Relaxed);
        if lane == 0 || Client::running().is_none() {
            return;
        }
        let lane = usize::from(lane - 1);
        // SAFETY: as in `frame_begin`.
        unsafe { sys::___tracy_emit_frame_mark_end(LANE_NAMES[lane].as_ptr()) };
        LANES_BUSY.fetch_and(!(1 << lane), Ordering::Relaxed);
    }

    fn frame_stats(&self, stats: &jobsys::FrameStats) {
        let Some(client) = Client::running() else {
            return;
        };
        let plots = [
            (
                tracy_client::plot_name!("jobsys jobs run"),
                stats.jobs_run as f64,
            ),
            (
                tracy_client::plot_name!("jobsys parked waits"),
                stats.parked_waits as f64,
            ),
            (
                tracy_client::plot_name!("jobsys steals"),
                stats.steals as f64,
            ),
            (
                tracy_client::plot_name!("jobsys fibers high-water"),
                stats.fibers_high_water as f64,
            ),
            (
                tracy_client::plot_name!("jobsys arena bytes"),
                stats.arena_used as f64,
            ),
            (
                tracy_client::plot_name!("jobsys arena grown bytes"),
                stats.arena_grown as f64,
            ),
        ];
        for (name, value) in plots {
            client.plot(name, value);
        }
        let idle: u64 = stats
            .workers()
            .iter()
            .map(|w| w.idle_ns + w.asleep_ns)
            .sum();
        client.plot(
            tracy_client::plot_name!("jobsys idle ms (all workers)"),
            idle as f64 / 1e6,
        );
    }

    fn worker_start(&self, worker: usize) {
        with_zones(ThreadZones::prepare);
        if let Some(client) = Client::running() {
            if worker == 0 {
                client.set_thread_name("jobsys worker 0 (main)");
            } else {
                client.set_thread_name(&format!("jobsys worker {worker}"));
            }
        }
    }

    fn job_begin(&self, _worker: usize, meta: &'static JobMeta) {
        with_zones(|z| z.begin(Zone::Job(meta)));
    }

    fn job_end(&self, _worker: usize, meta: &'static JobMeta) {
        with_zones(|z| z.end(|zone| matches!(zone, Zone::Job(m) if std::ptr::eq(m, meta))));
    }

    fn fiber_enter(&self, _worker: usize, fiber: u32) {
        with_zones(|z| z.resume(fiber));
    }

    fn fiber_leave(&self, _worker: usize, fiber: u32) {
        with_zones(|z| z.suspend(fiber));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    /// Overlapping frames take the lowest free lane and give it back when they retire, so no
    /// lane ever has two frames open.
    #[test]
    fn overlapping_frames_take_distinct_lanes_and_give_them_back() {
        let _client = Client::start();
        let tracy = Tracy::new();
        let lane = |index: u64| LANE_OF[(index % LANES as u64) as usize].load(Ordering::Relaxed);
        tracy.frame_begin(100);
        tracy.frame_begin(101);
        assert_eq!(
            (lane(100), lane(101)),
            (1, 2),
            "lanes 0 and 1, stored plus one"
        );
        tracy.frame_retired(100);
        assert_eq!(lane(100), 0);
        tracy.frame_begin(102);
        assert_eq!(lane(102), 1, "the lowest free lane again");
        tracy.frame_retired(101);
        tracy.frame_retired(102);
        assert_eq!(LANES_BUSY.load(Ordering::Relaxed), 0);
        // A retirement of a frame that never took a lane changes nothing.
        tracy.frame_retired(7);
        assert_eq!(LANES_BUSY.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_meta_gets_one_static_location_with_its_name_file_and_line() {
        static A: JobMeta = JobMeta::new("physics", "src/game.rs", 12);
        static B: JobMeta = JobMeta::new("physics", "src/game.rs", 12);
        let a = loc_of(&A).expect("room in the table");
        assert!(ptr::eq(a, loc_of(&A).unwrap()), "built twice");
        // Same text, other meta: its own location.
        assert!(!ptr::eq(a, loc_of(&B).unwrap()));
        // SAFETY: `loc_of` builds NUL-terminated text that lives for the process.
        let (name, file) = unsafe { (CStr::from_ptr(a.name), CStr::from_ptr(a.file)) };
        assert_eq!(
            (name.to_str(), file.to_str()),
            (Ok("physics"), Ok("src/game.rs"))
        );
        assert_eq!(a.line, 12);
    }
}
