//! `ChromeTrace`: fixed per-worker event buffers, written out as Chrome trace JSON.
//!
//! Recording is the hot path: a timestamp, one atomic claim of the next slot in the worker's
//! own buffer, one write, one Release store. Everything else — pairing begins with ends,
//! splitting job slices where their fiber was switched out — happens in `write_json`.

use jobsys::JobMeta;
use jobsys::profile::{NO_WORKER, ProfileHooks};
use std::borrow::Cow;
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// A [`ProfileHooks`] back-end that records scheduler events into preallocated per-worker
/// buffers and writes them as Chrome trace JSON ([`write_json`](Self::write_json)), for
/// `chrome://tracing` or <https://ui.perfetto.dev>.
///
/// What the trace shows, one track per worker (`pid` 0, `tid` = worker index):
/// - a slice per job (`"B"`/`"E"`), named after its [`JobMeta`] and split where the job's fiber
///   was switched out: the part after a wait is a second slice marked `"resumed": true`, on
///   the track of the worker that resumed it (another one in migration mode);
/// - a slice per user zone ([`Ctx::zone`](jobsys::Ctx::zone)), named by the zone, category
///   `zone`, nested inside its job's slice and split with it where the fiber was switched out;
/// - a `lock wait: NAME` slice (category `lock`) from a contended `jobsys::sync` lock's
///   `lock_wait_begin` to its `lock_obtained`, inside the waiting job's slice; a plain thread's
///   lock wait (`NO_WORKER`) has no track and is not recorded (nor counted as dropped);
/// - `sleep` slices while a worker sleeps;
/// - `parked` async spans (`"b"`/`"e"`, one id per fiber) from a wait's start to its end;
/// - `steal` and `wake` instants.
///
/// Buffers have a fixed capacity, chosen at creation: recording never allocates, and events
/// past the capacity (or for a worker index beyond `workers`) are counted in
/// [`dropped`](Self::dropped) instead of stored. Each event takes 32 bytes.
///
/// Any thread may record into any buffer — each event claims its slot atomically — so a
/// second job system sharing the hooks cannot corrupt a trace, only clutter it. The timeline of
/// a worker is right when its events come from its own thread, which is how jobsys calls the
/// hooks (except `wake`, recorded by the waker on the woken worker's track).
pub struct ChromeTrace {
    epoch: Instant,
    buffers: Box<[Buffer]>,
    /// Frame openings and retirements (any thread), for the frame marks.
    frames: Buffer,
    /// Events for worker indexes that have no buffer.
    unknown_worker: AtomicU64,
}

impl ChromeTrace {
    /// A trace for `workers` workers (indexes `0..workers`), with room for `events_per_worker`
    /// events in each worker's buffer. Allocates and touches all the memory now.
    ///
    /// A job costs two events, plus four per wait that parks; a sleep, a zone and a contended
    /// lock wait two each.
    pub fn new(workers: usize, events_per_worker: usize) -> Self {
        Self {
            epoch: Instant::now(),
            buffers: (0..workers)
                .map(|_| Buffer::new(events_per_worker))
                .collect(),
            frames: Buffer::new(FRAME_EVENTS),
            unknown_worker: AtomicU64::new(0),
        }
    }

    /// Adds this trace to jobsys' process-wide hook sets (`jobsys::profile::add_hooks`; up to
    /// `MAX_HOOK_SETS` sets receive every event, so a trace and a game's own stats hook can run
    /// together). Returns `false` if this trace is already installed or every set is taken,
    /// and always `false` when jobsys was built without its `profile` feature. Install before
    /// building the job system.
    pub fn install(&'static self) -> bool {
        jobsys::profile::set_hooks(self)
    }

    /// How many workers have a buffer.
    pub fn workers(&self) -> usize {
        self.buffers.len()
    }

    /// How many events each worker's buffer holds.
    pub fn events_per_worker(&self) -> usize {
        self.buffers.first().map_or(0, |b| b.slots.len())
    }

    /// Events stored so far, all workers together.
    pub fn recorded(&self) -> usize {
        self.buffers
            .iter()
            .map(|b| b.claimed.load(Ordering::Relaxed))
            .sum()
    }

    /// Events not stored: their worker's buffer was full, or their worker had no buffer.
    pub fn dropped(&self) -> u64 {
        self.unknown_worker.load(Ordering::Relaxed)
            + self.frames.dropped.load(Ordering::Relaxed)
            + self
                .buffers
                .iter()
                .map(|b| b.dropped.load(Ordering::Relaxed))
                .sum::<u64>()
    }

    /// Writes the trace as Chrome trace JSON (the "JSON Object Format": `{"traceEvents":
    /// [..]}`), one event per line, timestamps in microseconds since the trace was created.
    ///
    /// Write after the job system has been dropped (or is idle): events still being recorded
    /// are left out, and a job still running has its slice closed at its worker's last event.
    /// Every `"B"` on a track gets its `"E"`, also for jobs cut off by a full buffer.
    pub fn write_json(&self, w: impl Write) -> io::Result<()> {
        let mut out = Json {
            w: BufWriter::new(w),
            first: true,
        };
        out.w
            .write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
        out.metadata("process_name", 0, "name", "jobsys")?;
        for worker in 0..self.buffers.len() {
            out.metadata("thread_name", worker, "name", &format!("worker {worker}"))?;
        }
        self.replay(&mut out)?;
        for Event { ns, kind } in self.frames.events() {
            let (what, index) = match kind {
                Kind::FrameBegin(i) => ("begin", i),
                Kind::FrameRetired(i) => ("retired", i),
                _ => continue,
            };
            out.frame_mark(ns, what, index)?;
        }
        write!(
            out.w,
            "\n],\"otherData\":{{\"recorded\":{},\"dropped\":{}}}}}\n",
            self.recorded(),
            self.dropped()
        )?;
        out.w.flush()
    }

    /// Stores a frame event.
    fn record_frame(&self, kind: Kind) {
        let ns = self.epoch.elapsed().as_nanos() as u64;
        self.frames.push(Event { ns, kind });
    }

    /// Replays every worker's events into `out`, the workers' streams merged in time order
    /// (each stream kept in its own order), so that the slices a fiber was switched out in
    /// reopen on whichever worker it resumes on: in migration mode
    /// (`Builder::allow_migration`) a job may continue on another worker after a wait. A
    /// fiber leaves (reported before it is handed on) before it enters elsewhere, so its
    /// leave sorts first.
    fn replay(&self, out: &mut impl Sink) -> io::Result<()> {
        let mut fibers = Fibers::default();
        let mut replays: Vec<Replay> = (0..self.buffers.len()).map(Replay::new).collect();
        let mut streams: Vec<_> = self.buffers.iter().map(|b| b.events().peekable()).collect();
        loop {
            let next = streams
                .iter_mut()
                .enumerate()
                .filter_map(|(w, s)| s.peek().map(|e| (e.ns, w)))
                .min();
            let Some((_, worker)) = next else {
                break;
            };
            step(worker, &mut streams, &mut replays, &mut fibers, out, 0)?;
        }
        // Close what the buffers cut off (a full buffer, or a trace written mid-run): open
        // slices on their track, parked spans on the track they began on.
        for replay in &mut replays {
            replay.close(out)?;
        }
        for (fiber, worker) in std::mem::take(&mut fibers.waiting) {
            out.wait(b'e', worker, replays[worker].last_ns, fiber, None)?;
        }
        Ok(())
    }

    /// Stores one event of `worker`.
    #[inline]
    fn record(&self, worker: usize, kind: Kind) {
        // u64 nanoseconds last 584 years.
        let ns = self.epoch.elapsed().as_nanos() as u64;
        match self.buffers.get(worker) {
            Some(buffer) => buffer.push(Event { ns, kind }),
            None => {
                self.unknown_worker.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl fmt::Debug for ChromeTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChromeTrace")
            .field("workers", &self.workers())
            .field("events_per_worker", &self.events_per_worker())
            .field("recorded", &self.recorded())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl ProfileHooks for ChromeTrace {
    fn worker_start(&self, worker: usize) {
        self.record(worker, Kind::WorkerStart);
    }
    fn job_begin(&self, worker: usize, meta: &'static JobMeta) {
        self.record(worker, Kind::JobBegin(meta));
    }
    fn job_end(&self, worker: usize, meta: &'static JobMeta) {
        self.record(worker, Kind::JobEnd(meta));
    }
    fn fiber_enter(&self, worker: usize, fiber: u32) {
        self.record(worker, Kind::FiberEnter(fiber));
    }
    fn fiber_leave(&self, worker: usize, fiber: u32) {
        self.record(worker, Kind::FiberLeave(fiber));
    }
    fn wait_begin(&self, worker: usize) {
        self.record(worker, Kind::WaitBegin);
    }
    fn wait_end(&self, worker: usize) {
        self.record(worker, Kind::WaitEnd);
    }
    fn wake(&self, worker: usize) {
        self.record(worker, Kind::Wake);
    }
    fn steal(&self, thief: usize, victim: usize, count: usize) {
        let (victim, count) = (
            victim.try_into().unwrap_or(u32::MAX),
            count.try_into().unwrap_or(u32::MAX),
        );
        self.record(thief, Kind::Steal { victim, count });
    }
    fn sleep_begin(&self, worker: usize) {
        self.record(worker, Kind::SleepBegin);
    }
    fn sleep_end(&self, worker: usize) {
        self.record(worker, Kind::SleepEnd);
    }
    fn frame_begin(&self, index: u64) {
        self.record_frame(Kind::FrameBegin(index));
    }
    fn frame_retired(&self, index: u64) {
        self.record_frame(Kind::FrameRetired(index));
    }
    fn zone_begin(&self, worker: usize, _fiber: u32, name: &'static str) {
        // The zone's fiber is the one running on `worker` now (hooks run on the zone's job).
        self.record(worker, Kind::ZoneBegin(Name::new(name)));
    }
    fn zone_end(&self, worker: usize, _fiber: u32, name: &'static str) {
        self.record(worker, Kind::ZoneEnd(Name::new(name)));
    }
    fn lock_wait_begin(&self, worker: usize, name: &'static str, _addr: usize) {
        // A plain thread's wait (`NO_WORKER`) has no track: not recorded, and not dropped.
        if worker != NO_WORKER {
            self.record(worker, Kind::LockWait(Name::new(name)));
        }
    }
    fn lock_obtained(&self, worker: usize, name: &'static str, _addr: usize) {
        if worker != NO_WORKER {
            self.record(worker, Kind::LockObtained(Name::new(name)));
        }
    }
}

/// Frame events kept (two per frame); later ones are counted in `dropped`.
const FRAME_EVENTS: usize = 1 << 16;

// ── Recording ───────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Debug)]
enum Kind {
    WorkerStart,
    JobBegin(&'static JobMeta),
    JobEnd(&'static JobMeta),
    FiberEnter(u32),
    FiberLeave(u32),
    WaitBegin,
    WaitEnd,
    Wake,
    Steal {
        victim: u32,
        count: u32,
    },
    SleepBegin,
    SleepEnd,
    FrameBegin(u64),
    FrameRetired(u64),
    ZoneBegin(Name),
    ZoneEnd(Name),
    /// A contended lock's waiter starts waiting.
    LockWait(Name),
    LockObtained(Name),
}

/// A `&'static str` in 12 bytes (address and a `u32` length, 4-byte aligned), so that an
/// event with a name stays as small as the others: a slot is 32 bytes.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct Name {
    ptr: *const u8,
    len: u32,
}

// SAFETY: a `Name` is a `&'static str` (see `Name::new`), which is `Send` and `Sync`.
unsafe impl Send for Name {}
// SAFETY: as above.
unsafe impl Sync for Name {}

impl Name {
    /// A name longer than `u32::MAX` bytes is stored as `"?"`.
    fn new(s: &'static str) -> Self {
        let s = if u32::try_from(s.len()).is_ok() {
            s
        } else {
            "?"
        };
        Self {
            ptr: s.as_ptr(),
            // Checked above.
            len: s.len() as u32,
        }
    }

    fn get(self) -> &'static str {
        // Copies out of the packed struct (no reference to a packed field).
        let (ptr, len) = (self.ptr, self.len as usize);
        // SAFETY: `ptr` and `len` are those of a `&'static str` (`Name::new` is the only
        // constructor): `len` initialized bytes of valid UTF-8 that live forever.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len)) }
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.get(), f)
    }
}

#[derive(Clone, Copy, Debug)]
struct Event {
    /// Nanoseconds since the trace was created.
    ns: u64,
    kind: Kind,
}

/// One event's storage: written once, by the recorder that claimed it, then published.
struct Slot {
    ready: AtomicBool,
    event: UnsafeCell<MaybeUninit<Event>>,
}

// `event` is written exactly once, by the one `Buffer::push` call that claimed the slot (the
// claim hands out each index once, ever), before that call sets `ready` with Release; it is read
// only after `ready` was loaded true with Acquire, and never written again. (`Send` follows from
// the fields: `Event` is plain `Copy` data.)
// SAFETY: by the above, no two accesses to `event` race.
unsafe impl Sync for Slot {}

/// One worker's events. Aligned so that two workers' claim words never share a cache line.
#[repr(align(128))]
struct Buffer {
    /// Slots handed out so far; never exceeds `slots.len()`.
    claimed: AtomicUsize,
    /// Events refused because the buffer was full.
    dropped: AtomicU64,
    slots: Box<[Slot]>,
}

impl Buffer {
    fn new(capacity: usize) -> Self {
        let slots = (0..capacity)
            .map(|_| Slot {
                ready: AtomicBool::new(false),
                event: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Self {
            claimed: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            slots,
        }
    }

    #[inline]
    fn push(&self, event: Event) {
        let capacity = self.slots.len();
        // Claim the next slot. The update never moves `claimed` past the capacity, so it hands
        // each index out at most once, whichever threads record here. Relaxed: the slot's
        // contents are published by `ready`, not by the claim.
        let claim = self
            .claimed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < capacity).then_some(n + 1)
            });
        let Ok(index) = claim else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let slot = &self.slots[index];
        // SAFETY: `index` was handed to this call alone (above), and readers do not look at the
        // slot before `ready` is set below: this is the only access to it right now.
        unsafe { slot.event.get().write(MaybeUninit::new(event)) };
        slot.ready.store(true, Ordering::Release);
    }

    /// The events stored so far, in claim order. A slot claimed but not yet written (its
    /// recorder is still at work) is skipped.
    fn events(&self) -> impl Iterator<Item = Event> + '_ {
        let claimed = self.claimed.load(Ordering::Relaxed);
        self.slots[..claimed].iter().filter_map(|slot| {
            if !slot.ready.load(Ordering::Acquire) {
                return None;
            }
            // SAFETY: `ready` (Acquire, pairing with `push`'s Release) shows the slot's one
            // write complete; nothing writes it again.
            Some(unsafe { slot.event.get().read().assume_init() })
        })
    }
}

// ── Writing ─────────────────────────────────────────────────────────────────────────────────

/// A slice on a worker's track.
#[derive(Clone, Copy, Debug)]
enum Slice {
    Job(&'static JobMeta),
    Sleep,
    /// A user zone, named by its name.
    Zone(&'static str),
    /// A contended lock's wait until it got the lock, named `lock wait: NAME`.
    Lock(&'static str),
}

impl Slice {
    /// The slice's name in the trace.
    fn name(self) -> Cow<'static, str> {
        match self {
            Slice::Job(meta) => meta.name.into(),
            Slice::Sleep => "sleep".into(),
            Slice::Zone(name) => name.into(),
            Slice::Lock(name) => format!("lock wait: {name}").into(),
        }
    }

    /// The slice's category (`"cat"`) in the trace.
    fn category(self) -> &'static str {
        match self {
            Slice::Job(_) => "job",
            Slice::Sleep => "idle",
            Slice::Zone(_) => "zone",
            Slice::Lock(_) => "lock",
        }
    }

    /// Whether this is `other`'s slice: the same job, zone name, lock name, or a sleep.
    fn same(self, other: Slice) -> bool {
        match (self, other) {
            (Slice::Job(a), Slice::Job(b)) => std::ptr::eq(a, b),
            (Slice::Sleep, Slice::Sleep) => true,
            (Slice::Zone(a), Slice::Zone(b)) | (Slice::Lock(a), Slice::Lock(b)) => a == b,
            _ => false,
        }
    }
}

/// Turns one worker's events into well-nested slices.
///
/// Chrome pairs each `"E"` with the latest open `"B"` of its track, but fibers interleave:
/// job A waits, the worker runs job B on another fiber, A resumes. So when a fiber is switched
/// out its open slices are closed, and when it is switched back in they are opened again.
struct Replay {
    worker: usize,
    /// The fiber running on the worker now, if any.
    fiber: Option<u32>,
    /// Slices written as `"B"` and not yet closed, innermost last, with the fiber they ran on.
    open: Vec<(Option<u32>, Slice)>,
    last_ns: u64,
}

/// Replays the next event of `worker`'s stream. Before a fiber's enter, the worker that fiber
/// left is replayed up to its leave, whatever the timestamps say: a fiber leaves (reported
/// before it is handed on) before it enters elsewhere, but two clocks read on two cores may
/// tie or disagree by a little. `depth` bounds that catching up (a cut-off stream may never
/// show the leave).
fn step<I: Iterator<Item = Event>>(
    worker: usize,
    streams: &mut [std::iter::Peekable<I>],
    replays: &mut [Replay],
    fibers: &mut Fibers,
    out: &mut impl Sink,
    depth: usize,
) -> io::Result<()> {
    let Some(event) = streams[worker].next() else {
        return Ok(());
    };
    if let Kind::FiberEnter(fiber) = event.kind
        && depth < replays.len()
    {
        for other in 0..replays.len() {
            while other != worker
                && replays[other].fiber == Some(fiber)
                && streams[other].peek().is_some()
            {
                step(other, streams, replays, fibers, out, depth + 1)?;
            }
        }
    }
    replays[worker].step(event, fibers, out)
}

/// What the replays of all workers share: a fiber may leave one worker and resume on another
/// (migration mode).
#[derive(Default)]
struct Fibers {
    /// Slices of fibers switched out in the middle of them, outermost first.
    parked: HashMap<u32, Vec<Slice>>,
    /// Fibers with an open `parked` async span, and the worker whose track it is on.
    waiting: Vec<(u32, usize)>,
}

impl Replay {
    fn new(worker: usize) -> Self {
        Self {
            worker,
            fiber: None,
            open: Vec::new(),
            last_ns: 0,
        }
    }

    /// Replays one event of this worker.
    fn step(
        &mut self,
        Event { ns, kind }: Event,
        fibers: &mut Fibers,
        out: &mut impl Sink,
    ) -> io::Result<()> {
        self.last_ns = self.last_ns.max(ns);
        {
            match kind {
                Kind::WorkerStart | Kind::FrameBegin(_) | Kind::FrameRetired(_) => {}
                Kind::FiberEnter(fiber) => {
                    self.fiber = Some(fiber);
                    for slice in fibers.parked.remove(&fiber).unwrap_or_default() {
                        self.begin(out, ns, slice, true)?;
                    }
                }
                Kind::FiberLeave(fiber) => {
                    let mut suspended = Vec::new();
                    while let Some(&(Some(f), slice)) = self.open.last()
                        && f == fiber
                    {
                        self.end(out, ns)?;
                        suspended.push(slice);
                    }
                    if !suspended.is_empty() {
                        suspended.reverse();
                        fibers.parked.insert(fiber, suspended);
                    }
                    self.fiber = None;
                }
                Kind::JobBegin(meta) => self.begin(out, ns, Slice::Job(meta), false)?,
                Kind::JobEnd(meta) => self.end_of(out, ns, Slice::Job(meta))?,
                Kind::SleepBegin => self.begin(out, ns, Slice::Sleep, false)?,
                Kind::SleepEnd => self.end_of(out, ns, Slice::Sleep)?,
                Kind::ZoneBegin(name) => self.begin(out, ns, Slice::Zone(name.get()), false)?,
                Kind::ZoneEnd(name) => self.end_of(out, ns, Slice::Zone(name.get()))?,
                Kind::LockWait(name) => self.begin(out, ns, Slice::Lock(name.get()), false)?,
                Kind::LockObtained(name) => self.end_of(out, ns, Slice::Lock(name.get()))?,
                Kind::WaitBegin => {
                    if let Some(fiber) = self.fiber {
                        let job = self.open.iter().rev().find_map(|&(_, s)| match s {
                            Slice::Job(meta) => Some(meta.name),
                            _ => None,
                        });
                        out.wait(b'b', self.worker, ns, fiber, job)?;
                        fibers.waiting.push((fiber, self.worker));
                    }
                }
                Kind::WaitEnd => {
                    // On the track the span began on, also when the fiber resumed on another
                    // worker: every track's `"b"`s and `"e"`s balance.
                    if let Some(fiber) = self.fiber
                        && let Some(i) = fibers.waiting.iter().position(|&(f, _)| f == fiber)
                    {
                        let (_, began) = fibers.waiting.swap_remove(i);
                        out.wait(b'e', began, ns, fiber, None)?;
                    }
                }
                Kind::Wake => out.instant(self.worker, ns, "wake", None)?,
                Kind::Steal { victim, count } => {
                    out.instant(self.worker, ns, "steal", Some((victim, count)))?
                }
            }
        }
        Ok(())
    }

    /// Closes the slices still open on this track at its last event.
    fn close(&mut self, out: &mut impl Sink) -> io::Result<()> {
        while !self.open.is_empty() {
            self.end(out, self.last_ns)?;
        }
        Ok(())
    }

    fn begin(
        &mut self,
        out: &mut impl Sink,
        ns: u64,
        slice: Slice,
        resumed: bool,
    ) -> io::Result<()> {
        out.slice(b'B', self.worker, ns, slice, self.fiber, resumed)?;
        self.open.push((self.fiber, slice));
        Ok(())
    }

    fn end(&mut self, out: &mut impl Sink, ns: u64) -> io::Result<()> {
        match self.open.pop() {
            Some((fiber, slice)) => out.slice(b'E', self.worker, ns, slice, fiber, false),
            None => Ok(()),
        }
    }

    /// Ends `slice`, the innermost open slice. An end whose begin is not the innermost open
    /// slice was not recorded (hooks installed late): skip it rather than close someone
    /// else's slice. Except: a job's end also closes the zones and lock waits its fiber left
    /// open inside it (a leaked zone guard), so they cannot outlive their job.
    fn end_of(&mut self, out: &mut impl Sink, ns: u64, slice: Slice) -> io::Result<()> {
        let fiber = self.fiber;
        let inside = self
            .open
            .iter()
            .rev()
            .take_while(|&&(f, s)| f == fiber && matches!(s, Slice::Zone(_) | Slice::Lock(_)))
            .count();
        let at = match slice {
            Slice::Job(_) => self.open.len() - inside,
            _ => self.open.len(),
        };
        if at > 0 && self.open[at - 1].1.same(slice) {
            while self.open.len() >= at {
                self.end(out, ns)?;
            }
        }
        Ok(())
    }
}

/// Where a [`Replay`] sends the well-nested slices, waits and instants it finds.
trait Sink {
    /// A slice begins (`ph == b'B'`) or ends (`b'E'`) on `worker`'s track.
    fn slice(
        &mut self,
        ph: u8,
        worker: usize,
        ns: u64,
        slice: Slice,
        fiber: Option<u32>,
        resumed: bool,
    ) -> io::Result<()>;
    /// `fiber` parks (`b'b'`, with the job that waits) or resumes (`b'e'`).
    fn wait(
        &mut self,
        ph: u8,
        worker: usize,
        ns: u64,
        fiber: u32,
        job: Option<&str>,
    ) -> io::Result<()>;
    /// A wake or a steal.
    fn instant(
        &mut self,
        worker: usize,
        ns: u64,
        name: &str,
        steal: Option<(u32, u32)>,
    ) -> io::Result<()>;
}

/// Writes trace events, one per line, separated by commas.
struct Json<W: Write> {
    w: W,
    first: bool,
}

impl<W: Write> Json<W> {
    fn next(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.w.write_all(b",\n")?;
        }
        Ok(())
    }

    /// `"ts":…,"pid":0,"tid":…` — microseconds with nanosecond precision.
    fn when_where(&mut self, ns: u64, worker: usize) -> io::Result<()> {
        write!(
            self.w,
            "\"ts\":{}.{:03},\"pid\":0,\"tid\":{worker}",
            ns / 1000,
            ns % 1000
        )
    }

    fn metadata(&mut self, name: &str, worker: usize, key: &str, value: &str) -> io::Result<()> {
        self.next()?;
        write!(
            self.w,
            "{{\"name\":\"{name}\",\"ph\":\"M\",\"pid\":0,\"tid\":{worker},\"args\":{{\"{key}\":"
        )?;
        self.string(value)?;
        self.w.write_all(b"}}")
    }

    /// A frame opening or retirement: a global instant, `"frame N begin"` / `"frame N retired"`.
    fn frame_mark(&mut self, ns: u64, what: &str, index: u64) -> io::Result<()> {
        self.next()?;
        write!(
            self.w,
            "{{\"name\":\"frame {index} {what}\",\"cat\":\"frame\",\"ph\":\"i\",\"s\":\"g\",\"args\":{{\"frame\":{index}}},"
        )?;
        self.when_where(ns, 0)?;
        self.w.write_all(b"}")
    }

    /// A JSON string literal.
    fn string(&mut self, s: &str) -> io::Result<()> {
        self.w.write_all(b"\"")?;
        for c in s.chars() {
            match c {
                '"' => self.w.write_all(b"\\\"")?,
                '\\' => self.w.write_all(b"\\\\")?,
                c if u32::from(c) < 0x20 => write!(self.w, "\\u{:04x}", u32::from(c))?,
                c => write!(self.w, "{c}")?,
            }
        }
        self.w.write_all(b"\"")
    }
}

impl<W: Write> Sink for Json<W> {
    fn slice(
        &mut self,
        ph: u8,
        worker: usize,
        ns: u64,
        slice: Slice,
        fiber: Option<u32>,
        resumed: bool,
    ) -> io::Result<()> {
        let (name, category) = (slice.name(), slice.category());
        self.next()?;
        self.w.write_all(b"{\"name\":")?;
        self.string(&name)?;
        write!(
            self.w,
            ",\"cat\":\"{category}\",\"ph\":\"{}\",",
            char::from(ph)
        )?;
        self.when_where(ns, worker)?;
        if ph == b'B' {
            // `args`: a job's source line, the fiber, whether this is a part after a switch.
            let mut sep = ",\"args\":{";
            if let Slice::Job(meta) = slice {
                write!(self.w, "{sep}\"src\":")?;
                self.string(&format!("{}:{}", meta.file, meta.line))?;
                sep = ",";
            }
            if let Some(fiber) = fiber {
                write!(self.w, "{sep}\"fiber\":{fiber}")?;
                sep = ",";
            }
            if resumed {
                write!(self.w, "{sep}\"resumed\":true")?;
                sep = ",";
            }
            if sep == "," {
                self.w.write_all(b"}")?;
            }
        }
        self.w.write_all(b"}")
    }

    fn wait(
        &mut self,
        ph: u8,
        worker: usize,
        ns: u64,
        fiber: u32,
        job: Option<&str>,
    ) -> io::Result<()> {
        self.next()?;
        write!(
            self.w,
            "{{\"name\":\"parked\",\"cat\":\"wait\",\"ph\":\"{}\",\"id\":\"0x{fiber:x}\",",
            char::from(ph)
        )?;
        self.when_where(ns, worker)?;
        if let Some(job) = job {
            self.w.write_all(b",\"args\":{\"job\":")?;
            self.string(job)?;
            self.w.write_all(b"}")?;
        }
        self.w.write_all(b"}")
    }

    fn instant(
        &mut self,
        worker: usize,
        ns: u64,
        name: &str,
        steal: Option<(u32, u32)>,
    ) -> io::Result<()> {
        self.next()?;
        write!(
            self.w,
            "{{\"name\":\"{name}\",\"cat\":\"sched\",\"ph\":\"i\",\"s\":\"t\","
        )?;
        self.when_where(ns, worker)?;
        if let Some((victim, count)) = steal {
            write!(
                self.w,
                ",\"args\":{{\"victim\":{victim},\"count\":{count}}}"
            )?;
        }
        self.w.write_all(b"}")
    }
}

// ── SVG timeline ────────────────────────────────────────────────────────────────────────────

/// One bar of the SVG timeline.
struct Bar {
    worker: usize,
    start: u64,
    end: u64,
    /// Slices open below it on its track when it began.
    depth: usize,
    slice: Slice,
    resumed: bool,
    fiber: Option<u32>,
}

/// A slice open on a track: start, slice, resumed, fiber.
type OpenSlice = (u64, Slice, bool, Option<u32>);

/// A [`Sink`] that keeps the slices and waits as bars.
#[derive(Default)]
struct Bars {
    bars: Vec<Bar>,
    /// Per worker: the slices open now (start, slice, resumed, fiber).
    open: HashMap<usize, Vec<OpenSlice>>,
    /// Parked spans: worker (where it began), fiber, start, end.
    waits: Vec<(usize, u32, u64, u64)>,
    /// Per fiber: the worker and time its open parked span began.
    open_waits: HashMap<u32, (usize, u64)>,
}

impl Sink for Bars {
    fn slice(
        &mut self,
        ph: u8,
        worker: usize,
        ns: u64,
        slice: Slice,
        fiber: Option<u32>,
        resumed: bool,
    ) -> io::Result<()> {
        let open = self.open.entry(worker).or_default();
        if ph == b'B' {
            open.push((ns, slice, resumed, fiber));
        } else if let Some((start, slice, resumed, fiber)) = open.pop() {
            self.bars.push(Bar {
                worker,
                start,
                end: ns,
                depth: open.len(),
                slice,
                resumed,
                fiber,
            });
        }
        Ok(())
    }

    fn wait(
        &mut self,
        ph: u8,
        worker: usize,
        ns: u64,
        fiber: u32,
        _job: Option<&str>,
    ) -> io::Result<()> {
        if ph == b'b' {
            self.open_waits.insert(fiber, (worker, ns));
        } else if let Some((began, start)) = self.open_waits.remove(&fiber) {
            self.waits.push((began, fiber, start, ns));
        }
        Ok(())
    }

    fn instant(&mut self, _: usize, _: u64, _: &str, _: Option<(u32, u32)>) -> io::Result<()> {
        Ok(())
    }
}

/// Text escaped for SVG (XML) content and attributes. Characters XML 1.0 allows in no form
/// (control characters other than tab, newline and carriage return; U+FFFE, U+FFFF) are
/// replaced with U+FFFD: a name holding one must not make the whole file unreadable.
struct Xml<'a>(&'a str);

impl fmt::Display for Xml<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '&' => f.write_str("&amp;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&apos;")?,
                '\t' | '\n' | '\r' => write!(f, "{c}")?,
                c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => f.write_str("\u{fffd}")?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

/// A stable colour per job name (its "system"): a hue from the name's FNV hash.
fn hue(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h % 360
}

impl ChromeTrace {
    /// Writes an SVG timeline: one row per worker, time left to right, one bar per job slice
    /// coloured by job name (its system), nested jobs (run inline or as children) stacked
    /// inside their parent, user zones as outlined bars inside their job (`class="zone"`),
    /// contended lock waits hatched red (`class="lock"`), the part of a job after a wait drawn
    /// dashed (`class="job resumed"`),
    /// parked spans as a grey line under the row, sleep in light grey, and frame openings and
    /// retirements as vertical lines. `frame: Some(n)` draws frame `n` only, from its opening
    /// to its retirement (job bars that began before it are drawn clipped, `class="job
    /// clipped"`); `None` the whole trace. Every job that began in the window has exactly one
    /// `class="job"` bar. Write after the job system has been dropped, like
    /// [`write_json`](Self::write_json).
    ///
    /// # Errors
    /// An I/O error of `w`, or `InvalidInput` if frame `n` did not both open and retire in the
    /// trace.
    pub fn write_svg(&self, w: impl Write, frame: Option<u64>) -> io::Result<()> {
        let mut bars = Bars::default();
        self.replay(&mut bars)?;
        let marks: Vec<(u64, bool, u64)> = self
            .frames
            .events()
            .filter_map(|Event { ns, kind }| match kind {
                Kind::FrameBegin(i) => Some((ns, true, i)),
                Kind::FrameRetired(i) => Some((ns, false, i)),
                _ => None,
            })
            .collect();
        let (from, to) = match frame {
            Some(n) => {
                let at = |begin: bool| {
                    marks
                        .iter()
                        .find(|&&(_, b, i)| b == begin && i == n)
                        .map(|&(ns, _, _)| ns)
                };
                match (at(true), at(false)) {
                    (Some(a), Some(b)) if a <= b => (a, b),
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("frame {n} did not both open and retire in this trace"),
                        ));
                    }
                }
            }
            None => (
                bars.bars.iter().map(|b| b.start).min().unwrap_or(0),
                bars.bars.iter().map(|b| b.end).max().unwrap_or(0),
            ),
        };
        let span = (to - from).max(1) as f64;
        let workers = self.buffers.len();
        let (left, width, row, top) = (120.0, 1200.0, 40.0, 40.0);
        let x = |ns: u64| left + (ns.clamp(from, to) - from) as f64 / span * width;
        let height = top + row * workers as f64 + 60.0;
        let mut w = BufWriter::new(w);
        writeln!(
            w,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="11">"#,
            left + width + 20.0
        )?;
        // Lock waits are hatched.
        writeln!(
            w,
            r##"<defs><pattern id="lock-wait" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="4" height="4" fill="#fdd"/><line x1="0" y1="0" x2="0" y2="4" stroke="#c00" stroke-width="1.5"/></pattern></defs>"##
        )?;
        let title = match frame {
            Some(n) => format!("frame {n}: {:.1} µs", span / 1000.0),
            None => format!("trace: {:.1} µs", span / 1000.0),
        };
        writeln!(
            w,
            r#"<text x="4" y="14" font-size="13">{}</text>"#,
            Xml(&title)
        )?;
        // Time axis: ten ticks.
        for t in 0..=10 {
            let at = left + width * f64::from(t) / 10.0;
            writeln!(
                w,
                r##"<line x1="{at:.1}" y1="{}" x2="{at:.1}" y2="{}" stroke="#ddd"/><text x="{at:.1}" y="{}" text-anchor="middle" fill="#666">{:.0} µs</text>"##,
                top - 6.0,
                top + row * workers as f64,
                top - 10.0,
                span / 1000.0 * f64::from(t) / 10.0
            )?;
        }
        for worker in 0..workers {
            let y = top + row * worker as f64;
            writeln!(
                w,
                r##"<text x="4" y="{:.1}">worker {worker}</text><line x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#eee"/>"##,
                y + row / 2.0 + 4.0,
                y + row,
                left + width,
                y + row
            )?;
        }
        let mut names: Vec<&str> = Vec::new();
        for bar in &bars.bars {
            if bar.end < from || bar.start > to {
                continue;
            }
            let (x0, x1) = (x(bar.start), x(bar.end));
            let inset = (bar.depth as f64 * 4.0).min(row / 2.0 - 6.0);
            let y = top + row * bar.worker as f64 + 2.0 + inset;
            let h = row - 10.0 - 2.0 * inset;
            let micros = (bar.end - bar.start) as f64 / 1000.0;
            match bar.slice {
                Slice::Sleep => writeln!(
                    w,
                    r##"<rect class="sleep" x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{h:.1}" fill="#eeeeee"><title>sleep {micros:.1} µs</title></rect>"##,
                    (x1 - x0).max(0.5)
                )?,
                Slice::Zone(name) => writeln!(
                    w,
                    r##"<rect class="zone" data-zone="{}" x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{h:.1}" fill="#fff" fill-opacity="0.35" stroke="#333" stroke-width="0.8"><title>zone {} {micros:.1} µs</title></rect>"##,
                    Xml(name),
                    (x1 - x0).max(0.5),
                    Xml(name)
                )?,
                Slice::Lock(name) => writeln!(
                    w,
                    r##"<rect class="lock" data-lock="{}" x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{h:.1}" fill="url(#lock-wait)" stroke="#b00" stroke-width="0.5"><title>lock wait: {} {micros:.1} µs</title></rect>"##,
                    Xml(name),
                    (x1 - x0).max(0.5),
                    Xml(name)
                )?,
                Slice::Job(meta) => {
                    if !names.contains(&meta.name) {
                        names.push(meta.name);
                    }
                    let class = if bar.resumed {
                        "job resumed"
                    } else if bar.start < from {
                        "job clipped"
                    } else {
                        "job"
                    };
                    let dash = if bar.resumed {
                        r#" stroke-dasharray="3,2""#
                    } else {
                        ""
                    };
                    let fiber = bar.fiber.map_or(String::new(), |f| format!(", fiber {f}"));
                    writeln!(
                        w,
                        r##"<rect class="{class}" data-job="{}" x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{h:.1}" fill="hsl({},65%,60%)" stroke="#333" stroke-width="0.5"{dash}><title>{} ({}:{}{fiber}) {micros:.1} µs</title></rect>"##,
                        Xml(meta.name),
                        (x1 - x0).max(0.5),
                        hue(meta.name),
                        Xml(meta.name),
                        Xml(meta.file),
                        meta.line
                    )?;
                }
            }
        }
        for &(worker, fiber, start, end) in &bars.waits {
            if end < from || start > to {
                continue;
            }
            let y = top + row * worker as f64 + row - 5.0;
            writeln!(
                w,
                r##"<line class="parked" x1="{:.2}" y1="{y:.1}" x2="{:.2}" y2="{y:.1}" stroke="#888" stroke-width="3"><title>fiber {fiber} parked {:.1} µs</title></line>"##,
                x(start),
                x(end).max(x(start) + 0.5),
                (end - start) as f64 / 1000.0
            )?;
        }
        for &(ns, begin, index) in &marks {
            if ns < from || ns > to {
                continue;
            }
            let (colour, label) = if begin {
                ("#c00", format!("frame {index}"))
            } else {
                ("#06c", format!("{index} retired"))
            };
            writeln!(
                w,
                r#"<line class="frame" x1="{0:.2}" y1="{1}" x2="{0:.2}" y2="{2:.1}" stroke="{colour}"/><text x="{0:.2}" y="{3:.1}" fill="{colour}">{4}</text>"#,
                x(ns),
                top - 4.0,
                top + row * workers as f64,
                top + row * workers as f64 + 12.0,
                Xml(&label)
            )?;
        }
        // Legend: one swatch per system.
        let mut lx = left;
        let ly = top + row * workers as f64 + 30.0;
        for name in names {
            writeln!(
                w,
                r##"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="hsl({},65%,60%)" stroke="#333" stroke-width="0.5"/><text x="{:.1}" y="{ly:.1}">{}</text>"##,
                ly - 9.0,
                hue(name),
                lx + 14.0,
                Xml(name)
            )?;
            lx += 24.0 + 7.0 * name.chars().count() as f64;
        }
        writeln!(
            w,
            r##"<text x="{left}" y="{:.1}" fill="#666">dashed: a job's part after a wait; outlined: a user zone; hatched red: waiting for a lock; grey line: fiber parked; light grey: worker asleep; red/blue lines: frame opened/retired</text>"##,
            ly + 18.0
        )?;
        writeln!(w, "</svg>")?;
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event size the docs promise (`ChromeTrace` docs: 32 bytes an event), names included.
    #[test]
    fn an_event_slot_is_32_bytes() {
        assert_eq!(size_of::<Slot>(), 32);
        let name = Name::new("physics");
        assert_eq!(name.get(), "physics");
    }
}
