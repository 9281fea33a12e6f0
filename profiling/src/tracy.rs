//! `Tracy`: one Tracy zone per job, over `tracy-client` (cargo feature `tracy`).
//!
//! Tracy zones must nest per thread, and a zone (`tracy_client::Span`) may not leave its
//! thread. Fibers break both: a job that waits is switched out with its zone open, and the
//! worker goes on to run other jobs. Without the `tracy-fibers` feature, zones end when their
//! fiber leaves the worker and begin again — as a new zone with the same name — when it comes
//! back. With it, each pooled fiber is a Tracy fiber track (`___tracy_fiber_enter` /
//! `___tracy_fiber_leave` at every switch) and zones stay open across switches: a job's zone
//! spans its waits on its fiber's track. The open zones live in a thread-local, touched only by
//! hooks running on that thread, each tagged with the fiber it belongs to.
//!
//! Contended [`jobsys::sync::Mutex`] / `RwLock` acquisitions of named locks go to Tracy's lock
//! view through its lockable-context API, one context per lock (announced at its first
//! contention); user zones (`Ctx::zone`) are zones with a static source location per name.

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
/// Also: a zone per user zone (`Ctx::zone(name)`), the contended acquisitions of named
/// `jobsys::sync` locks in Tracy's lock view, a frame mark per frame, each frame in flight as a
/// discontinuous frame on a "jobsys frames (lane N)" set, and plots from each frame's stats.
///
/// By default zones are not fiber-aware tracks: a job that waits shows as two or more zones on
/// its worker's thread, one per stretch it ran. With the `tracy-fibers` feature each pooled
/// fiber gets a track "fiber N" and a job's zone spans its waits (Tracy's fiber mode
/// serialises every event through one queue, so it costs more per event).
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
        // The first fibers' track names, built now rather than at the first switch.
        #[cfg(feature = "tracy-fibers")]
        let _ = fiber_name(0);
        jobsys::profile::add_hooks(self)
    }

    /// Whether a Tracy profiler is connected to this process now. `false` before the client
    /// starts ([`install`](Self::install) starts it).
    pub fn is_connected() -> bool {
        // SAFETY: the client is running (checked first, and it stays up for the process);
        // `___tracy_connected` only reads its connection state.
        Client::running().is_some() && unsafe { sys::___tracy_connected() } != 0
    }

    /// Waits until a Tracy profiler connects or `timeout` passes; returns whether one is
    /// connected. For short runs: in on-demand mode nothing is recorded before the profiler
    /// connects. Call after [`install`](Self::install) (returns `false` at once before it).
    /// Polls every 10 ms.
    pub fn wait_for_connection(timeout: std::time::Duration) -> bool {
        if Client::running().is_none() {
            return false;
        }
        let start = std::time::Instant::now();
        loop {
            if Self::is_connected() {
                return true;
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(std::time::Duration::from_millis(10)));
        }
    }
}

/// What an open zone stands for, to open it again after a fiber switch.
#[derive(Clone, Copy, Debug)]
enum Zone {
    Job(&'static JobMeta),
    /// A user zone (`Ctx::zone`).
    User(&'static str),
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

/// A source location, built once per distinct `JobMeta` (by address) or per distinct
/// `&'static str` name (by address and length) and never freed.
struct MetaLoc {
    key: LocKey,
    loc: StaticLoc,
    /// `name\0file\0`: the text `loc` points to (leaked with the `MetaLoc`).
    _text: Box<[u8]>,
}

/// What a location belongs to: a `JobMeta` (its address, `usize::MAX`) or a name (its text's
/// address and length; no `str` is `usize::MAX` bytes long, so the two never collide).
#[derive(Clone, Copy, PartialEq, Eq)]
struct LocKey(usize, usize);

impl LocKey {
    fn meta(meta: &'static JobMeta) -> Self {
        Self(ptr::from_ref(meta) as usize, usize::MAX)
    }
    fn name(name: &'static str) -> Self {
        Self(name.as_ptr() as usize, name.len())
    }
}

/// Slots of the location table (a power of two). Metas and names past it fall back to
/// Tracy's allocated source locations (zones) or to no lock context (locks).
const LOC_SLOTS: usize = 1024;

/// Open-addressed table from a location's key to the location. A slot goes from null to
/// a leaked `MetaLoc` once and never changes again, so readers need no lock.
static LOCS: [AtomicPtr<MetaLoc>; LOC_SLOTS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; LOC_SLOTS];

/// The `'static` Tracy source location of `meta`: built (two allocations) the first time this
/// meta is seen, looked up without allocating after that. `None` when the table is full.
fn loc_of(meta: &'static JobMeta) -> Option<&'static sys::___tracy_source_location_data> {
    loc_for(LocKey::meta(meta), meta.name, meta.file, meta.line)
}

/// The `'static` source location of the user zone or lock `name`, as for [`loc_of`].
fn name_loc(name: &'static str) -> Option<&'static sys::___tracy_source_location_data> {
    loc_for(LocKey::name(name), name, "jobsys", 0)
}

/// Open-addressed slot index sequence start for a key: Fibonacci hashing (the low bits of a
/// pointer to an aligned struct are 0).
fn slot_start(key: usize, bits: u32) -> usize {
    ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

fn loc_for(
    key: LocKey,
    name: &'static str,
    file: &'static str,
    line: u32,
) -> Option<&'static sys::___tracy_source_location_data> {
    let start = slot_start(key.0 ^ key.1.rotate_left(32), LOC_SLOTS.trailing_zeros());
    let mut fresh: Option<Box<MetaLoc>> = None;
    for i in 0..LOC_SLOTS {
        let slot = &LOCS[(start + i) % LOC_SLOTS];
        let mut seen = slot.load(Ordering::Acquire);
        if seen.is_null() {
            let new = Box::into_raw(
                fresh
                    .take()
                    .unwrap_or_else(|| new_loc(key, name, file, line)),
            );
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
        if entry.key == key {
            return Some(&entry.loc.0);
        }
    }
    None
}

fn new_loc(key: LocKey, name: &str, file: &str, line: u32) -> Box<MetaLoc> {
    // Interior NULs would cut the C strings short: keep the text before them.
    let name = name.split('\0').next().unwrap_or_default();
    let file = file.split('\0').next().unwrap_or_default();
    let text: Box<[u8]> = [name.as_bytes(), b"\0", file.as_bytes(), b"\0"]
        .concat()
        .into();
    let name_ptr = text.as_ptr().cast::<c_char>();
    // SAFETY: `name.len() + 1 < text.len()`: the file's text starts after the name's NUL.
    let file_ptr = unsafe { name_ptr.add(name.len() + 1) };
    Box::new(MetaLoc {
        key,
        loc: StaticLoc(sys::___tracy_source_location_data {
            name: name_ptr,
            function: name_ptr,
            file: file_ptr,
            line,
            color: 0,
        }),
        // Moving the box moves the pointer, not the bytes: `name_ptr` stays valid.
        _text: text,
    })
}

/// Tracy's lock context of one named `jobsys::sync` lock, announced at its first contention
/// and never terminated (a lock's address may be reused; the context stays for the process).
struct LockEntry {
    addr: usize,
    name: LocKey,
    ctx: *mut sys::__tracy_lockable_context_data,
}

/// Slots of the lock table (a power of two). Locks past it are not shown in Tracy.
const LOCK_SLOTS: usize = 4096;

/// Open-addressed table from a lock's address and name to its Tracy context; slots go from
/// null to a leaked `LockEntry` once, as in [`LOCS`].
static LOCKS: [AtomicPtr<LockEntry>; LOCK_SLOTS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; LOCK_SLOTS];

/// The lock context of the lock at `addr` named `name`. With `announce`, the first call for a
/// lock announces it to Tracy (one allocation here, one in Tracy's own allocator); without,
/// `None` if it was never announced. `None` too when the table is full or `name` has no
/// location.
fn lock_ctx(
    addr: usize,
    name: &'static str,
    announce: bool,
) -> Option<*mut sys::__tracy_lockable_context_data> {
    let key = LocKey::name(name);
    let start = slot_start(addr ^ key.0.rotate_left(17), LOCK_SLOTS.trailing_zeros());
    for i in 0..LOCK_SLOTS {
        let slot = &LOCKS[(start + i) % LOCK_SLOTS];
        let mut seen = slot.load(Ordering::Acquire);
        if seen.is_null() {
            if !announce {
                return None;
            }
            let loc = name_loc(name)?;
            // SAFETY: `loc` is `'static` (leaked in the location table); Tracy keeps its
            // address as the lock's source location.
            let ctx = unsafe { sys::___tracy_announce_lockable_ctx(loc) };
            let new = Box::into_raw(Box::new(LockEntry {
                addr,
                name: key,
                ctx,
            }));
            match slot.compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(ctx),
                Err(now) => {
                    // SAFETY: `new` came from `Box::into_raw` above and was not published;
                    // `ctx` was announced here and never used: terminating it frees it.
                    unsafe {
                        drop(Box::from_raw(new));
                        sys::___tracy_terminate_lockable_ctx(ctx);
                    }
                    seen = now;
                }
            }
        }
        // SAFETY: non-null slots hold leaked `LockEntry`s published with Release (see above).
        let entry = unsafe { &*seen };
        if entry.addr == addr && entry.name == key {
            return Some(entry.ctx);
        }
    }
    None
}

/// Tracy fiber track names "fiber N\0", `FIBER_NAME_LEN` bytes apart, built a chunk of
/// `FIBERS_PER_CHUNK` at a time the first time a fiber of the chunk is entered (chunk 0 at
/// install) and never freed: Tracy keeps the pointer as the fiber's key.
#[cfg(feature = "tracy-fibers")]
const FIBER_NAME_LEN: usize = 12; // "fiber 65535\0"
#[cfg(feature = "tracy-fibers")]
const FIBERS_PER_CHUNK: usize = 1024;
#[cfg(feature = "tracy-fibers")]
const FIBER_CHUNKS: usize = 64;
#[cfg(feature = "tracy-fibers")]
static FIBER_NAMES: [AtomicPtr<u8>; FIBER_CHUNKS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; FIBER_CHUNKS];
/// The one track of every fiber past the named ones (a pool of over 65536 fibers).
#[cfg(feature = "tracy-fibers")]
static FIBER_OVERFLOW: &std::ffi::CStr = c"fiber 65536+";

/// The `'static`, NUL-terminated Tracy track name of pooled fiber `fiber`.
#[cfg(feature = "tracy-fibers")]
fn fiber_name(fiber: u32) -> *const c_char {
    let index = fiber as usize;
    let chunk = index / FIBERS_PER_CHUNK;
    if chunk >= FIBER_CHUNKS {
        return FIBER_OVERFLOW.as_ptr();
    }
    let mut base = FIBER_NAMES[chunk].load(Ordering::Acquire);
    if base.is_null() {
        base = fiber_chunk(chunk);
    }
    // SAFETY: a chunk holds `FIBERS_PER_CHUNK` names of `FIBER_NAME_LEN` bytes.
    unsafe { base.add(index % FIBERS_PER_CHUNK * FIBER_NAME_LEN) }.cast()
}

/// Builds (or finds, if another thread won) the names of fibers chunk `chunk`.
#[cfg(feature = "tracy-fibers")]
#[cold]
fn fiber_chunk(chunk: usize) -> *mut u8 {
    use std::io::Write;
    let mut text = vec![0u8; FIBERS_PER_CHUNK * FIBER_NAME_LEN].into_boxed_slice();
    for (i, name) in text.chunks_mut(FIBER_NAME_LEN).enumerate() {
        // At most "fiber 65535" (11 bytes): the last byte stays 0, the terminator.
        let _ = write!(
            &mut name[..FIBER_NAME_LEN - 1],
            "fiber {}",
            chunk * FIBERS_PER_CHUNK + i
        );
    }
    let new = Box::into_raw(text).cast::<u8>();
    match FIBER_NAMES[chunk].compare_exchange(
        ptr::null_mut(),
        new,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => new,
        Err(now) => {
            // SAFETY: `new` came from `Box::into_raw` of a slice of this length above and
            // was not published.
            drop(unsafe {
                Box::from_raw(ptr::slice_from_raw_parts_mut(
                    new,
                    FIBERS_PER_CHUNK * FIBER_NAME_LEN,
                ))
            });
            now
        }
    }
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
                None => alloc_zone(meta.name, meta.file, meta.line),
            },
            Zone::User(name) => match name_loc(name) {
                // SAFETY: as for a job's location.
                Some(loc) => unsafe { sys::___tracy_emit_zone_begin(loc, 1) },
                None => alloc_zone(name, "jobsys", 0),
            },
            // SAFETY: as for a job's location.
            Zone::Wait => unsafe { sys::___tracy_emit_zone_begin(&WAIT_LOC.0, 1) },
            // SAFETY: as for a job's location.
            Zone::Sleep => unsafe { sys::___tracy_emit_zone_begin(&SLEEP_LOC.0, 1) },
        };
        Self(ctx)
    }
}

impl OpenZone {
    /// A zone Tracy never sees: its end is a no-op.
    #[cfg(feature = "tracy-fibers")]
    fn inactive() -> Self {
        Self(sys::___tracy_c_zone_context {
            id: 0,
            active: 0,
            connectionId: 0,
        })
    }
}

/// A zone with a source location Tracy allocates (the location table is full).
#[cold]
fn alloc_zone(name: &str, file: &str, line: u32) -> sys::___tracy_c_zone_context {
    // SAFETY: the pointers and lengths describe live strs; Tracy copies them into its own
    // allocation, which the zone's end frees. The client is running (checked by the caller).
    unsafe {
        let loc = sys::___tracy_alloc_srcloc_name(
            line,
            file.as_ptr().cast(),
            file.len(),
            name.as_ptr().cast(),
            name.len(),
            name.as_ptr().cast(),
            name.len(),
            0,
        );
        sys::___tracy_emit_zone_begin_alloc(loc, 1)
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
    /// Without `tracy-fibers` only the running fiber's zones (and the worker's) are open; with
    /// it, switched-out fibers keep theirs open too, interleaved, each fiber's nesting in order.
    open: Vec<(Option<u32>, Zone, OpenZone)>,
    /// The fiber running on this thread now, if any.
    fiber: Option<u32>,
    /// Without `tracy-fibers`: zones of fibers switched out in the middle of them; each fiber's
    /// outermost first. One flat list, so a switch allocates nothing once it has grown to its
    /// high-water mark.
    parked: Vec<(u32, Zone)>,
    /// Contended lock acquisitions in progress on this thread's fibers: the fiber, the lock's
    /// address, and whether Tracy recorded the wait (then it gets the obtain).
    lock_waits: Vec<(Option<u32>, usize, bool)>,
    /// With `tracy-fibers`: whether the running fiber's Tracy fiber enter was sent (a profiler
    /// was connected when it resumed). Its leave is sent only then, and zones begun while it
    /// was not are kept inactive: a profiler that connects mid-run never receives a leave
    /// without its enter, nor a zone whose end lands on another fiber's track.
    #[cfg(feature = "tracy-fibers")]
    entered: bool,
}

/// Fibers whose last thread is tracked (the first `FIBER_SLOTS` of the pool).
const FIBER_SLOTS: usize = 1 << 16;

/// Per fiber: a token of the thread it last resumed on (0: none yet). In migration mode
/// (`Builder::allow_migration`) a fiber may leave one thread in the middle of a job and go on
/// on another; the zones, parked zones and lock waits it left on the first thread are stale
/// then, and dropped when it comes back there, rather than reopened around its next work (and
/// kept, one set more per migration, for good).
static FIBER_THREAD: [AtomicU32; FIBER_SLOTS] = [const { AtomicU32::new(0) }; FIBER_SLOTS];

/// Hands out the thread tokens of [`FIBER_THREAD`].
static NEXT_THREAD: AtomicU32 = AtomicU32::new(1);

thread_local! {
    /// This thread's token in [`FIBER_THREAD`] (0: not taken yet).
    static THREAD_TOKEN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Records that `fiber` resumes on this thread; returns whether it last resumed on another.
/// Relaxed: the fiber's handoff between threads orders its resumes.
fn ran_elsewhere(fiber: u32) -> bool {
    let Some(slot) = FIBER_THREAD.get(fiber as usize) else {
        return false;
    };
    let me = THREAD_TOKEN.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed).max(1));
        }
        t.get()
    });
    let last = slot.swap(me, Ordering::Relaxed);
    last != 0 && last != me
}

/// Zones each thread's lists have room for from their first use.
const RESERVED_ZONES: usize = 256;

thread_local! {
    static ZONES: RefCell<ThreadZones> = const {
        RefCell::new(ThreadZones {
            open: Vec::new(),
            fiber: None,
            parked: Vec::new(),
            lock_waits: Vec::new(),
            #[cfg(feature = "tracy-fibers")]
            entered: false,
        })
    };
}

impl ThreadZones {
    /// Opens `zone` on the running fiber (or the worker's own stack).
    fn begin(&mut self, zone: Zone) {
        self.begin_on(self.fiber, zone);
    }

    fn begin_on(&mut self, fiber: Option<u32>, zone: Zone) {
        if Client::running().is_none() {
            return;
        }
        self.prepare();
        #[cfg(feature = "tracy-fibers")]
        if fiber.is_some() && !self.entered {
            self.open.push((fiber, zone, OpenZone::inactive()));
            return;
        }
        self.open.push((fiber, zone, OpenZone::begin(zone)));
    }

    /// Once per thread: room enough that the lists rarely grow later. Done when a worker
    /// starts (so a worker's first zone, whenever it comes, allocates nothing), or at the
    /// first zone of a thread the back-end saw no start of.
    fn prepare(&mut self) {
        if self.open.capacity() == 0 {
            self.open.reserve(RESERVED_ZONES);
            self.parked.reserve(RESERVED_ZONES);
            self.lock_waits.reserve(RESERVED_ZONES);
        }
    }

    /// Ends the innermost zone of the running fiber if `is_it` says it is the one ending.
    fn end(&mut self, is_it: impl FnOnce(Zone) -> bool) {
        self.end_on(self.fiber, is_it);
    }

    /// Ends `fiber`'s innermost open zone if `is_it` says it is the one ending (removing it
    /// ends it; without `tracy-fibers` it is the last one).
    fn end_on(&mut self, fiber: Option<u32>, is_it: impl FnOnce(Zone) -> bool) {
        if let Some(i) = self.open.iter().rposition(|&(f, _, _)| f == fiber)
            && is_it(self.open[i].1)
        {
            self.open.remove(i);
        }
    }

    /// Ends the running fiber's zone of job `meta`, and before it the user zones the fiber
    /// left open inside it (a `Zone` guard leaked with `mem::forget`, or dropped before an
    /// inner one, whose end then named a zone that was not the innermost and ended nothing),
    /// innermost first, so they cannot keep the job's zone open for good. Nothing if the
    /// fiber's innermost zone other than user zones is not `meta`'s. Other fibers' zones
    /// (interleaved with `tracy-fibers`) stay as they are.
    fn end_job(&mut self, meta: &'static JobMeta) {
        let fiber = self.fiber;
        let mut at = None;
        for (i, (f, zone, _)) in self.open.iter().enumerate().rev() {
            if *f != fiber {
                continue;
            }
            match zone {
                Zone::User(_) => {}
                Zone::Job(m) if ptr::eq(*m, meta) => {
                    at = Some(i);
                    break;
                }
                _ => break,
            }
        }
        let Some(at) = at else {
            return;
        };
        for i in (at..self.open.len()).rev() {
            if self.open[i].0 == fiber {
                self.open.remove(i); // ends the zone
            }
        }
    }

    /// `fiber` comes back: enters its Tracy fiber track (`tracy-fibers`), or begins its parked
    /// zones again, outermost first. If it ran on another thread since it left this one
    /// (migration mode), what it left here is stale and dropped first (see [`FIBER_THREAD`]).
    fn resume(&mut self, fiber: u32) {
        let moved = ran_elsewhere(fiber);
        self.fiber = Some(fiber);
        #[cfg(feature = "tracy-fibers")]
        {
            self.entered = Tracy::is_connected();
            if self.entered {
                // SAFETY: a `'static`, NUL-terminated name, one per fiber; Tracy keeps the
                // pointer.
                unsafe { sys::___tracy_fiber_enter(fiber_name(fiber)) };
            }
            if moved {
                // Its zones still open here end now, on its track, innermost first.
                for i in (0..self.open.len()).rev() {
                    if self.open[i].0 == Some(fiber) {
                        self.open.remove(i);
                    }
                }
            }
        }
        if moved {
            self.lock_waits.retain(|&(f, _, _)| f != Some(fiber));
        }
        #[cfg(not(feature = "tracy-fibers"))]
        {
            if moved {
                self.parked.retain(|&(f, _)| f != fiber);
            }
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
    }

    /// `fiber` leaves: leaves its Tracy fiber track, its zones staying open (`tracy-fibers`),
    /// or ends its open zones, innermost first, and parks them outermost first.
    fn suspend(&mut self, fiber: u32) {
        #[cfg(feature = "tracy-fibers")]
        {
            let _ = fiber;
            if core::mem::take(&mut self.entered) {
                // SAFETY: no arguments; back to the thread's own track, left only after an
                // enter was sent.
                unsafe { sys::___tracy_fiber_leave() };
            }
        }
        #[cfg(not(feature = "tracy-fibers"))]
        {
            let from = self.parked.len();
            while let Some(&(Some(f), zone, _)) = self.open.last()
                && f == fiber
            {
                self.open.pop(); // ends the zone
                self.parked.push((fiber, zone));
            }
            self.parked[from..].reverse();
        }
        self.fiber = None;
    }

    /// A contended acquisition of the lock at `addr` begins on the running fiber.
    fn lock_wait(&mut self, addr: usize, name: &'static str) {
        if Client::running().is_none() {
            return;
        }
        let Some(ctx) = lock_ctx(addr, name, true) else {
            return;
        };
        self.prepare();
        // SAFETY: a context from `lock_ctx`, never freed. Every `before_lock` is paired with
        // one `after_unlock` (at `lock_released`), as Tracy's on-demand lock count needs.
        let recorded = unsafe { sys::___tracy_before_lock_lockable_ctx(ctx) } != 0;
        self.lock_waits.push((self.fiber, addr, recorded));
    }

    /// The running fiber's contended acquisition of the lock at `addr` got it.
    fn lock_obtained(&mut self, addr: usize, name: &'static str) {
        let fiber = self.fiber;
        let Some(i) = self
            .lock_waits
            .iter()
            .rposition(|&(f, a, _)| f == fiber && a == addr)
        else {
            return;
        };
        let (_, _, recorded) = self.lock_waits.swap_remove(i);
        if recorded && let Some(ctx) = lock_ctx(addr, name, false) {
            // SAFETY: as in `lock_wait`; Tracy recorded this waiter's wait.
            unsafe { sys::___tracy_after_lock_lockable_ctx(ctx) };
        }
    }
}

/// The lock at `addr`, obtained after a reported contention, was released.
fn lock_released(addr: usize, name: &'static str) {
    if Client::running().is_none() {
        return;
    }
    if let Some(ctx) = lock_ctx(addr, name, false) {
        // SAFETY: as in `ThreadZones::lock_wait`: pairs that acquisition's `before_lock`.
        unsafe { sys::___tracy_after_unlock_lockable_ctx(ctx) };
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
        with_zones(|z| z.end_job(meta));
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

    fn lock_wait_begin(&self, _worker: usize, name: &'static str, addr: usize) {
        with_zones(|z| z.lock_wait(addr, name));
    }

    fn lock_obtained(&self, _worker: usize, name: &'static str, addr: usize) {
        with_zones(|z| z.lock_obtained(addr, name));
    }

    fn lock_released(&self, _worker: usize, name: &'static str, addr: usize) {
        lock_released(addr, name);
    }

    fn zone_begin(&self, _worker: usize, fiber: u32, name: &'static str) {
        with_zones(|z| z.begin_on(Some(fiber), Zone::User(name)));
    }

    fn zone_end(&self, _worker: usize, fiber: u32, name: &'static str) {
        with_zones(|z| {
            z.end_on(
                Some(fiber),
                |zone| matches!(zone, Zone::User(n) if ptr::eq(n, name)),
            )
        });
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

    /// A user zone keeps one static location per name; a fiber's zones end in its own nesting
    /// order, whatever another fiber did meanwhile; with `tracy-fibers` a switched-out fiber's
    /// zones stay open (one zone spans the wait), without it they are parked and reopened.
    #[test]
    fn user_zones_are_keyed_by_fiber_and_span_switches_with_fiber_tracks() {
        let _client = Client::start();
        let tracy = Tracy::new();
        static NAME: &str = "user zone";
        let a = name_loc(NAME).expect("room in the table");
        assert!(ptr::eq(a, name_loc(NAME).unwrap()), "built twice");
        // Same address, shorter text: another name.
        assert!(!ptr::eq(a, name_loc(&NAME[..4]).unwrap()));
        let open = || ZONES.with(|z| z.borrow().open.len());
        let parked = || ZONES.with(|z| z.borrow().parked.len());
        let before = open();
        tracy.fiber_enter(0, 5);
        tracy.zone_begin(0, 5, NAME);
        tracy.fiber_leave(0, 5);
        if cfg!(feature = "tracy-fibers") {
            assert_eq!((open(), parked()), (before + 1, 0), "the zone stays open");
        } else {
            assert_eq!((open(), parked()), (before, 1), "the zone is parked");
        }
        tracy.fiber_enter(0, 6);
        tracy.zone_begin(0, 6, "other");
        tracy.zone_end(0, 6, "other");
        tracy.fiber_leave(0, 6);
        tracy.fiber_enter(0, 5);
        assert_eq!((open(), parked()), (before + 1, 0));
        // A zone_end that names another zone than the fiber's innermost ends nothing.
        tracy.zone_end(0, 5, "other");
        assert_eq!(open(), before + 1);
        tracy.zone_end(0, 5, NAME);
        tracy.fiber_leave(0, 5);
        assert_eq!((open(), parked()), (before, 0));
    }

    /// A user zone left open inside its job (its guard leaked with `mem::forget`, or dropped
    /// before an inner one, whose end then names a zone that is not the innermost) does not keep
    /// the job's zone open: the job's end ends both, and only the ending fiber's zones.
    #[test]
    fn a_jobs_end_ends_the_user_zones_left_open_inside_it() {
        let _client = Client::start();
        let tracy = Tracy::new();
        static LEAKY: JobMeta = JobMeta::new("leaky", "src/game.rs", 3);
        static OTHER: JobMeta = JobMeta::new("other", "src/game.rs", 4);
        let open = || ZONES.with(|z| z.borrow().open.len());
        let parked = || ZONES.with(|z| z.borrow().parked.len());
        let before = open();
        // Fiber 12 runs `other` and waits inside its zone "o".
        tracy.fiber_enter(0, 12);
        tracy.job_begin(0, &OTHER);
        tracy.zone_begin(0, 12, "o");
        tracy.fiber_leave(0, 12);
        let other_open = open() - before;
        // Fiber 11 runs `leaky`: "kept" is dropped before "forgotten", whose guard leaks.
        tracy.fiber_enter(0, 11);
        tracy.job_begin(0, &LEAKY);
        tracy.zone_begin(0, 11, "kept");
        tracy.zone_begin(0, 11, "forgotten");
        tracy.zone_end(0, 11, "kept"); // not the innermost: ends nothing
        assert_eq!(open(), before + other_open + 3);
        tracy.job_end(0, &LEAKY);
        assert_eq!(
            open(),
            before + other_open,
            "the job's zone or a zone inside it stayed open"
        );
        tracy.fiber_leave(0, 11);
        assert_eq!(open(), before + other_open);
        // Fiber 12's zones are untouched: it finishes as usual.
        tracy.fiber_enter(0, 12);
        tracy.zone_end(0, 12, "o");
        tracy.job_end(0, &OTHER);
        tracy.fiber_leave(0, 12);
        assert_eq!((open(), parked()), (before, 0));
    }

    /// In migration mode a fiber may leave this thread in the middle of a job and finish it on
    /// another. What it left here is stale when it comes back with other work: dropped, not
    /// reopened around that work, and not kept (one set more per migration).
    #[test]
    fn a_fiber_that_ran_elsewhere_leaves_nothing_stale_on_this_thread() {
        let _client = Client::start();
        let tracy = Tracy::new();
        static MOVED: JobMeta = JobMeta::new("moved", "src/game.rs", 5);
        static NEXT: JobMeta = JobMeta::new("next", "src/game.rs", 6);
        const F: u32 = 40; // no other test uses this fiber
        let open = || ZONES.with(|z| z.borrow().open.len());
        let parked = || ZONES.with(|z| z.borrow().parked.len());
        let waits = || ZONES.with(|z| z.borrow().lock_waits.len());
        let before = (open(), parked(), waits());
        for round in 0..3 {
            tracy.fiber_enter(0, F);
            tracy.job_begin(0, &MOVED);
            tracy.zone_begin(0, F, "held");
            tracy.lock_wait_begin(0, "moved-lock", 0x40);
            tracy.fiber_leave(0, F);
            // Another thread (worker 1) resumes fiber F and finishes the job.
            std::thread::scope(|s| {
                s.spawn(|| {
                    tracy.fiber_enter(1, F);
                    tracy.lock_obtained(1, "moved-lock", 0x40);
                    tracy.zone_end(1, F, "held");
                    tracy.job_end(1, &MOVED);
                    tracy.fiber_leave(1, F);
                });
            });
            // F comes back here with another job.
            tracy.fiber_enter(0, F);
            assert_eq!(
                (open(), parked(), waits()),
                before,
                "round {round}: `moved`'s zones or lock wait still here"
            );
            tracy.job_begin(0, &NEXT);
            tracy.job_end(0, &NEXT);
            tracy.fiber_leave(0, F);
            assert_eq!((open(), parked(), waits()), before, "round {round}");
        }
    }

    /// One Tracy lock context per (address, name), announced at the first contention only;
    /// a contended acquisition's wait is matched with its obtain on the same fiber.
    /// With fiber tracks and no profiler connected, no fiber enter is sent, so no leave is, and
    /// a fiber's zones stay inactive (a profiler connecting mid-run sees neither half).
    #[cfg(feature = "tracy-fibers")]
    #[test]
    fn without_a_profiler_no_fiber_enter_is_sent_and_fiber_zones_stay_inactive() {
        let _client = Client::start();
        let tracy = Tracy::new();
        static NAME: &str = "zone on fiber 9";
        assert!(!Tracy::is_connected());
        tracy.fiber_enter(0, 9);
        assert!(
            !ZONES.with(|z| z.borrow().entered),
            "an enter nobody received"
        );
        tracy.zone_begin(0, 9, NAME);
        let active = ZONES.with(|z| z.borrow().open.last().map(|(_, _, zone)| zone.0.active));
        assert_eq!(
            active,
            Some(0),
            "a zone on a fiber whose enter was not sent"
        );
        tracy.zone_end(0, 9, NAME);
        tracy.fiber_leave(0, 9);
    }

    #[test]
    fn a_lock_gets_one_context_per_address_and_name() {
        let _client = Client::start();
        let tracy = Tracy::new();
        let addr = 0x1000_usize;
        assert!(
            lock_ctx(addr, "lock", false).is_none(),
            "announced before contention"
        );
        tracy.lock_wait_begin(0, "lock", addr);
        let ctx = lock_ctx(addr, "lock", false).expect("announced at the first contention");
        assert_eq!(lock_ctx(addr, "lock", true), Some(ctx));
        assert_ne!(lock_ctx(addr + 64, "lock", true), Some(ctx));
        let waits = || ZONES.with(|z| z.borrow().lock_waits.len());
        assert_eq!(waits(), 1);
        tracy.lock_obtained(0, "lock", addr);
        assert_eq!(waits(), 0);
        tracy.lock_released(0, "lock", addr);
        // Another waiter later: the same context.
        tracy.lock_wait_begin(0, "lock", addr);
        tracy.lock_obtained(0, "lock", addr);
        tracy.lock_released(0, "lock", addr);
        assert_eq!(lock_ctx(addr, "lock", false), Some(ctx));
    }

    #[cfg(feature = "tracy-fibers")]
    #[test]
    fn each_fiber_has_one_static_track_name() {
        use std::ffi::CStr;
        let name = |f| {
            // SAFETY: `fiber_name` returns NUL-terminated text that lives for the process.
            unsafe { CStr::from_ptr(fiber_name(f)) }.to_str().unwrap()
        };
        assert_eq!(name(17), "fiber 17");
        assert_eq!(name(0), "fiber 0");
        assert_eq!(name(1023), "fiber 1023");
        assert_eq!(name(1024), "fiber 1024");
        assert_eq!(name(65535), "fiber 65535");
        assert_eq!(name(65536), "fiber 65536+");
        assert_eq!(name(u32::MAX), "fiber 65536+");
        assert!(ptr::eq(fiber_name(17), fiber_name(17)), "built twice");
        assert!(!ptr::eq(fiber_name(17), fiber_name(18)));
    }
}
