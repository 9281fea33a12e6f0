//! `ChromeTrace`: fixed per-worker event buffers, written out as Chrome trace JSON.
//!
//! Recording is the hot path: a timestamp, one atomic claim of the next slot in the worker's
//! own buffer, one write, one Release store. Everything else — pairing begins with ends,
//! splitting job slices where their fiber was switched out — happens in `write_json`.

use jobsys::JobMeta;
use jobsys::profile::ProfileHooks;
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
///   was switched out: the part after a wait is a second slice marked `"resumed": true`;
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
    /// Events for worker indexes that have no buffer.
    unknown_worker: AtomicU64,
}

impl ChromeTrace {
    /// A trace for `workers` workers (indexes `0..workers`), with room for `events_per_worker`
    /// events in each worker's buffer. Allocates and touches all the memory now.
    ///
    /// A job costs two events, plus four per wait that parks; a sleep two.
    pub fn new(workers: usize, events_per_worker: usize) -> Self {
        Self {
            epoch: Instant::now(),
            buffers: (0..workers)
                .map(|_| Buffer::new(events_per_worker))
                .collect(),
            unknown_worker: AtomicU64::new(0),
        }
    }

    /// Installs this trace as jobsys' process-wide hooks. Returns `false` if hooks were
    /// already installed (only the first installation wins), and always `false` when jobsys
    /// was built without its `profile` feature. Install before building the job system.
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
        for (worker, buffer) in self.buffers.iter().enumerate() {
            out.metadata("thread_name", worker, "name", &format!("worker {worker}"))?;
            Replay::new(worker).run(buffer.events(), &mut out)?;
        }
        write!(
            out.w,
            "\n],\"otherData\":{{\"recorded\":{},\"dropped\":{}}}}}\n",
            self.recorded(),
            self.dropped()
        )?;
        out.w.flush()
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
}

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
    Steal { victim: u32, count: u32 },
    SleepBegin,
    SleepEnd,
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
}

impl Slice {
    fn name_and_category(self) -> (&'static str, &'static str) {
        match self {
            Slice::Job(meta) => (meta.name, "job"),
            Slice::Sleep => ("sleep", "idle"),
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
    /// Slices of fibers switched out in the middle of them, outermost first.
    parked: HashMap<u32, Vec<Slice>>,
    /// Fibers with an open `parked` async span.
    waiting: Vec<u32>,
    last_ns: u64,
}

impl Replay {
    fn new(worker: usize) -> Self {
        Self {
            worker,
            fiber: None,
            open: Vec::new(),
            parked: HashMap::new(),
            waiting: Vec::new(),
            last_ns: 0,
        }
    }

    fn run<W: Write>(
        mut self,
        events: impl Iterator<Item = Event>,
        out: &mut Json<W>,
    ) -> io::Result<()> {
        for Event { ns, kind } in events {
            self.last_ns = self.last_ns.max(ns);
            match kind {
                Kind::WorkerStart => {}
                Kind::FiberEnter(fiber) => {
                    self.fiber = Some(fiber);
                    for slice in self.parked.remove(&fiber).unwrap_or_default() {
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
                        self.parked.insert(fiber, suspended);
                    }
                    self.fiber = None;
                }
                Kind::JobBegin(meta) => self.begin(out, ns, Slice::Job(meta), false)?,
                // An end whose begin is not the innermost open slice was not recorded (hooks
                // installed late): skip it rather than close someone else's slice.
                Kind::JobEnd(meta) => {
                    if matches!(self.open.last(), Some((_, Slice::Job(m))) if std::ptr::eq(*m, meta))
                    {
                        self.end(out, ns)?;
                    }
                }
                Kind::SleepBegin => self.begin(out, ns, Slice::Sleep, false)?,
                Kind::SleepEnd => {
                    if matches!(self.open.last(), Some((_, Slice::Sleep))) {
                        self.end(out, ns)?;
                    }
                }
                Kind::WaitBegin => {
                    if let Some(fiber) = self.fiber {
                        let job = self.open.iter().rev().find_map(|&(_, s)| match s {
                            Slice::Job(meta) => Some(meta.name),
                            Slice::Sleep => None,
                        });
                        out.wait(b'b', self.worker, ns, fiber, job)?;
                        self.waiting.push(fiber);
                    }
                }
                Kind::WaitEnd => {
                    if let Some(fiber) = self.fiber
                        && let Some(i) = self.waiting.iter().position(|&f| f == fiber)
                    {
                        self.waiting.swap_remove(i);
                        out.wait(b'e', self.worker, ns, fiber, None)?;
                    }
                }
                Kind::Wake => out.instant(self.worker, ns, "wake", None)?,
                Kind::Steal { victim, count } => {
                    out.instant(self.worker, ns, "steal", Some((victim, count)))?
                }
            }
        }
        // Close what the buffer cut off (a full buffer, or a trace written mid-run).
        while !self.open.is_empty() {
            self.end(out, self.last_ns)?;
        }
        for fiber in std::mem::take(&mut self.waiting) {
            out.wait(b'e', self.worker, self.last_ns, fiber, None)?;
        }
        Ok(())
    }

    fn begin<W: Write>(
        &mut self,
        out: &mut Json<W>,
        ns: u64,
        slice: Slice,
        resumed: bool,
    ) -> io::Result<()> {
        out.slice(b'B', self.worker, ns, slice, self.fiber, resumed)?;
        self.open.push((self.fiber, slice));
        Ok(())
    }

    fn end<W: Write>(&mut self, out: &mut Json<W>, ns: u64) -> io::Result<()> {
        match self.open.pop() {
            Some((fiber, slice)) => out.slice(b'E', self.worker, ns, slice, fiber, false),
            None => Ok(()),
        }
    }
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

    fn slice(
        &mut self,
        ph: u8,
        worker: usize,
        ns: u64,
        slice: Slice,
        fiber: Option<u32>,
        resumed: bool,
    ) -> io::Result<()> {
        let (name, category) = slice.name_and_category();
        self.next()?;
        self.w.write_all(b"{\"name\":")?;
        self.string(name)?;
        write!(
            self.w,
            ",\"cat\":\"{category}\",\"ph\":\"{}\",",
            char::from(ph)
        )?;
        self.when_where(ns, worker)?;
        if ph == b'B'
            && let Slice::Job(meta) = slice
        {
            self.w.write_all(b",\"args\":{\"src\":")?;
            self.string(&format!("{}:{}", meta.file, meta.line))?;
            if let Some(fiber) = fiber {
                write!(self.w, ",\"fiber\":{fiber}")?;
            }
            if resumed {
                self.w.write_all(b",\"resumed\":true")?;
            }
            self.w.write_all(b"}")?;
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
