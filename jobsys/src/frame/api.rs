//! The frame API: `Ctx::frames`, `Ctx::frame`, `Frames`, `Frame`.

use super::arena::FrameArena;
use super::ring::{FrameRing, FrameSlot, LoopState};
use super::stats::FrameStats;
use crate::fiber::Ctx;
use crate::job::{JobHeader, JobMeta, JobRef};
use crate::panic::{catch, drop_payload};
use crate::sched::Hint;
use crate::shim::{AtomicU64, Ordering};
use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;
use std::panic::resume_unwind;

/// A loop of frames, each opened with [`frame`](Self::frame); handed by reference to the body
/// of [`Ctx::frames`], which returns once every frame it opened has retired.
///
/// Later jobs ([`Frame::later`]) may borrow anything that outlives the loop (`'env`) and
/// their frame's arena data, but not what a frame's body borrows for itself:
///
/// ```compile_fail
/// # let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
/// jobs.run(|ctx| {
///     let mut world = vec![0u32; 8];
///     ctx.frames(|frames| {
///         for _ in 0..2 {
///             frames.frame(|f| {
///                 let w = &mut world; // borrowed by this frame's body only
///                 f.later(ctx, move |_| w[0] += 1); // would race the next frame's body
///             });
///         }
///     });
/// });
/// ```
///
/// nor what lives only inside the loop's body:
///
/// ```compile_fail
/// # let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
/// jobs.run(|ctx| {
///     ctx.frames(|frames| {
///         let local = vec![1u32];
///         frames.frame(|f| {
///             let l = &local;
///             f.later(ctx, move |_| println!("{}", l[0]));
///         });
///         drop(local); // the later job may still run
///     });
/// });
/// ```
///
/// Dereferences to the [`Ctx`] of the job that opened the loop.
pub struct Frames<'scope, 'env: 'scope> {
    state: &'scope LoopState,
    ctx: NonNull<Ctx>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl Deref for Frames<'_, '_> {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        // SAFETY: a `Frames` is only handed out by reference for the duration of the call of
        // `Ctx::frames` on the `Ctx` it points to.
        unsafe { self.ctx.as_ref() }
    }
}

/// One frame: its index, its arenas, its later stages. `Copy`, `Send` and `Sync`: hand it to
/// the frame's jobs. `'f` is the frame's life, until it retires — every reference into its
/// arenas carries it; `'scope` is the loop's.
#[derive(Clone, Copy)]
pub struct Frame<'f, 'scope> {
    slot: &'f FrameSlot,
    ring: &'f FrameRing,
    index: u64,
    /// Invariant in both: a later job's captures must outlive the exact `'f` (which implies
    /// `'scope: 'f`), never a shorter one.
    _f: PhantomData<fn(&'f ()) -> &'f ()>,
    _scope: PhantomData<&'f mut &'scope ()>,
}

// SAFETY: a `Frame` is a handle to its slot, whose shared parts are atomics, and whose arenas
// are only reached through `arena(ctx)` on the calling worker's own thread.
unsafe impl Send for Frame<'_, '_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for Frame<'_, '_> {}

impl core::fmt::Debug for Frame<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Frame").field("index", &self.index).finish()
    }
}

/// A later job's record, allocated in the frame's arena.
#[repr(C)]
struct LaterJob<F> {
    header: JobHeader,
    slot: *const FrameSlot,
    f: ManuallyDrop<F>,
}

static LATER_META: JobMeta = JobMeta::new("frame later", file!(), line!());

impl<'f, 'scope> Frame<'f, 'scope> {
    /// The frame's index: 0, 1, 2, … in the order frames open, system-wide.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The calling worker's arena for this frame.
    ///
    /// # Panics
    /// If `ctx` belongs to another [`JobSystem`](crate::JobSystem).
    pub fn arena(&self, ctx: &Ctx) -> FrameArena<'f> {
        assert!(
            core::ptr::eq(&ctx.shared().frames, self.ring),
            "Frame::arena: this Ctx belongs to another JobSystem than the frame"
        );
        // SAFETY: the arena of the worker this `ctx` runs on, on this thread; `FrameArena` is
        // `!Send`, and the migration contract keeps `!Send` values from living across waits.
        unsafe { FrameArena::new(&self.slot.arenas[ctx.worker_index()]) }
    }

    /// Hands `job` to a later stage of this frame: it runs as a job now or soon (any worker),
    /// possibly after the frame's body returned and while the next frame runs — render of
    /// frame N beside the game logic of frame N + 1. The frame retires when its body and every
    /// later job finished; only then are its arenas reclaimed.
    ///
    /// The job may borrow the frame's arena data and anything that outlives the loop. Its
    /// record lives in this worker's arena of the frame (no heap allocation). A panic in it
    /// reaches the loop's owner ([`Ctx::frames`] re-raises it after every frame retired).
    ///
    /// # Panics
    /// If the arena cannot hold the record (see [`FrameArena::alloc`]).
    pub fn later<F>(&self, ctx: &Ctx, job: F)
    where
        F: FnOnce(&Ctx) + Send + 'f,
    {
        self.later_with(ctx, &LATER_META, job);
    }

    /// [`later`](Self::later) with metadata: a name for the profiler, a priority, a stack
    /// class, an affinity (`Affinity::Worker(0)`: the main thread, for present or GPU
    /// submission).
    ///
    /// # Panics
    /// As [`later`](Self::later); also if `meta` pins the job to a worker that does not exist.
    pub fn later_with<F>(&self, ctx: &Ctx, meta: &'static JobMeta, job: F)
    where
        F: FnOnce(&Ctx) + Send + 'f,
    {
        let shared = ctx.shared();
        shared.check_job(meta);
        let arena = self.arena(ctx);
        let record = arena
            .alloc_layout(Layout::new::<LaterJob<F>>())
            .unwrap_or_else(|e| panic!("Frame::later: {e}"))
            .cast::<LaterJob<F>>();
        // SAFETY: fresh arena room for the record, alive until the frame retires, which is
        // after this job ran (it is a live part of the frame).
        unsafe {
            record.as_ptr().write(LaterJob {
                header: JobHeader::new(execute_later::<F>, core::ptr::null(), meta),
                slot: self.slot,
                f: ManuallyDrop::new(job),
            })
        };
        FrameRing::add_part(self.slot);
        // SAFETY: the header is the first field of a `#[repr(C)]` record.
        let job = unsafe { JobRef::new(record.cast()) };
        ctx.submit(job, Hint::Lifo);
    }

    /// Whether frame `index` has retired (its body and later jobs finished, its arenas
    /// reclaimed or about to be). False for frames not opened yet.
    pub fn is_retired(&self, index: u64) -> bool {
        self.ring.is_retired(index)
    }

    /// Parks until frame `index` has retired (the previous frame's render finished, say).
    ///
    /// # Panics
    /// If the wait could never end because the calling job itself keeps frame `index` from
    /// retiring: it runs inside this frame (its body or a later job) or inside another frame
    /// of the system's that `index` would have to wait for (this frame itself, or a later one,
    /// from inside it). A wait for a frame held up only by other jobs is not detected.
    pub fn wait_retired(&self, ctx: &Ctx, index: u64) {
        let ring = self.ring;
        if core::ptr::eq(&ctx.shared().frames, ring)
            && !ring.is_retired(index)
            && ctx.frame_slots.get() & ring.bit_of(index) != 0
        {
            panic!(
                "Frame::wait_retired({index}) from inside a frame that frame {index} would have \
                 to wait for (the frame itself, or one before it in its slot): it would never \
                 return"
            );
        }
        wait_turn(ctx, ring.turn_of(index), index, true);
    }
}

/// # Safety
/// `header` heads a `LaterJob<F>` that has not run.
unsafe fn execute_later<F: FnOnce(&Ctx) + Send>(header: NonNull<JobHeader>, ctx: &Ctx) {
    let record = header.cast::<LaterJob<F>>().as_ptr();
    // SAFETY: the record is alive (in the frame's arena, which outlives its live parts) and
    // ours: `f` is taken exactly once, here.
    let (f, slot) = unsafe { (ManuallyDrop::take(&mut (*record).f), &*(*record).slot) };
    let shared = ctx.shared();
    // While it runs, the job holds its frame's slot: a frame it opened there would wait for
    // this very job's frame to retire, so it is refused (see `run_frame`).
    let held = ctx.frame_slots.get();
    ctx.frame_slots.set(held | shared.frames.slot_bit(slot));
    if let Err(payload) = catch(|| f(ctx)) {
        FrameRing::owner(slot).panic.record(payload);
    }
    ctx.frame_slots.set(held);
    shared.frames.part_done(shared, slot);
}

/// What a turn waiter checks under the wait list's lock: the turn has not reached `want`.
struct TurnWait<'a> {
    turn: &'a AtomicU64,
    want: u64,
    /// `true`: wait until `turn > want` (retired); `false`: until `turn >= want` (my turn).
    past: bool,
}

impl TurnWait<'_> {
    fn reached(&self) -> bool {
        let t = self.turn.load(Ordering::Acquire);
        if self.past {
            t > self.want
        } else {
            t >= self.want
        }
    }
}

/// # Safety
/// `data` points at a live `TurnWait`.
unsafe fn turn_not_reached(data: *const ()) -> bool {
    // SAFETY: caller contract (the waiter's stack frame outlives its park).
    !unsafe { &*data.cast::<TurnWait<'_>>() }.reached()
}

/// Parks until the slot's turn reaches `want` (`past`: passes it).
fn wait_turn(ctx: &Ctx, turn: &AtomicU64, want: u64, past: bool) {
    let w = TurnWait { turn, want, past };
    while !w.reached() {
        // SAFETY: `turn_not_reached` reads `w`, which lives until this returns.
        unsafe {
            ctx.park(
                crate::sync::key_of(turn),
                turn_not_reached,
                core::ptr::from_ref(&w).cast(),
                crate::deadline::NEVER,
            )
        };
    }
}

/// Opens the next frame for `state`'s loop, runs `body` in it, and closes the body's part.
fn run_frame<'f, 'scope: 'f, R>(
    ctx: &'f Ctx,
    state: &'f LoopState,
    body: impl FnOnce(Frame<'f, 'scope>) -> R,
) -> R {
    let shared = ctx.shared();
    let ring = &shared.frames;
    let depth = ctx.frame_depth.get();
    let k = ring.in_flight();
    // Frame N + K would wait for frame N, whose body is this fiber's caller: say so instead
    // of hanging (before claiming an index, which would stall its slot for good).
    assert!(
        (depth as usize) < k,
        "frames nested {} deep on one job, but only {k} frames may be in flight \
         (Builder::frames_in_flight): the innermost would wait for an outer one to retire",
        depth + 1
    );
    // Opening may park (below): a no-suspend region refuses that, and must do so before an
    // index is claimed — a claimed index that never opens would hold its slot's turn for good.
    crate::fiber::check_no_suspend("Frames::frame");
    let held = ctx.frame_slots.get();
    // The background lane: an outermost frame opening first lets one queued Low job run, so
    // background work progresses even when the frame loop never parks (see `task/`).
    if held == 0 {
        ctx.yield_to_background();
    }
    let index = ring.claim_unless(held).unwrap_or_else(|index| {
        panic!(
            "frame {index} would take slot {} of {k}, held by a frame whose body encloses this \
             call: it would wait for its own caller to retire (with {k} frames in flight, \
             Builder::frames_in_flight, a frame opened inside a frame body must not be frame \
             N + {k} or later of the enclosing frame N)",
            index % k as u64
        )
    });
    wait_turn(ctx, ring.turn_of(index), index, false);
    shared.open_frame_counted();
    let slot = ring.begin(shared, index, state);
    crate::profile::frame_begin(index);
    let frame = Frame {
        slot,
        ring,
        index,
        _f: PhantomData,
        _scope: PhantomData,
    };
    ctx.frame_depth.set(depth + 1);
    ctx.frame_slots.set(held | 1 << (index % k as u64));
    let result = catch(|| body(frame));
    ctx.frame_slots.set(held);
    ctx.frame_depth.set(depth);
    ring.part_done(shared, slot);
    match result {
        Ok(r) => r,
        Err(payload) => resume_unwind(payload),
    }
}

impl<'scope, 'env> Frames<'scope, 'env> {
    /// Opens the next frame and runs `body` in it; returns when `body` does. The frame
    /// retires later, once its later jobs ([`Frame::later`]) are done too.
    ///
    /// With K frames in flight ([`Builder::frames_in_flight`](crate::Builder::frames_in_flight),
    /// default 2), opening frame N first parks until frame N − K retired, so at most K frames
    /// hold arenas at once. Frames may be opened from several jobs or threads at once: each
    /// call takes the next index of the system's one sequence. A frame opened inside another
    /// counts toward the K.
    ///
    /// # Panics
    /// If this job already runs K frame bodies nested inside each other, or if the new frame
    /// would take the slot of a frame whose body encloses the call (frame N + K or later,
    /// counted system-wide, inside frame N's body): it would wait for an outer one forever.
    /// Nothing is claimed then, so later frames still open. Also in debug builds inside a
    /// no-suspend region ([`Ctx::no_suspend`]), since opening a frame may park. Nesting
    /// through other jobs (a frame opened by a job that a frame body waits for) is not
    /// detected: keep frames at most K deep.
    pub fn frame<R>(&self, body: impl for<'f> FnOnce(Frame<'f, 'scope>) -> R) -> R {
        // SAFETY: see `Deref`.
        let ctx = unsafe { self.ctx.as_ref() };
        run_frame(ctx, self.state, body)
    }
}

impl Ctx {
    /// Runs a loop of frames: `f` opens frames with [`Frames::frame`], each with its own
    /// arenas and later stages, up to K in flight. Returns once every frame it opened retired.
    ///
    /// If a frame body or a later job panicked, the first later-job panic (or else the body's)
    /// is re-raised here after every frame retired.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let mut positions = vec![0.0f32; 1024];
    /// let mut presented = Vec::new();
    /// let log = std::sync::Mutex::new(&mut presented);
    /// jobs.run(|ctx| {
    ///     ctx.frames(|frames| {
    ///         for _ in 0..4 {
    ///             frames.frame(|f| {
    ///                 // Game logic of frame N, borrowing the world for this frame only.
    ///                 ctx.scope(|s| {
    ///                     for chunk in positions.chunks_mut(256) {
    ///                         s.spawn(move |_| chunk.iter_mut().for_each(|p| *p += 1.0));
    ///                     }
    ///                 });
    ///                 // A snapshot in the frame's arena, for the render stage.
    ///                 let snapshot: &[f32] = f.arena(ctx).alloc_slice_copy(&positions);
    ///                 let log = &log;
    ///                 // Render of frame N runs beside the logic of frame N + 1.
    ///                 f.later(ctx, move |_| {
    ///                     log.lock().unwrap().push((f.index(), snapshot[0]));
    ///                 });
    ///             });
    ///         }
    ///     });
    /// });
    /// presented.sort_by_key(|p| p.0);
    /// assert_eq!(presented.iter().map(|p| p.1).collect::<Vec<_>>(), [1.0, 2.0, 3.0, 4.0]);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn frames<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Frames<'scope, 'env>) -> R,
    {
        // The loop's wait guards what later jobs borrow: check the region before any opens.
        crate::fiber::check_no_suspend("Ctx::frames");
        let state = LoopState::new();
        let frames = Frames {
            state: &state,
            ctx: NonNull::from(self),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let result = catch(|| f(&frames));
        self.finish_loop(&state, result)
    }

    /// Runs `body` as one frame (see [`frames`](Self::frames)) and returns once it retired,
    /// later jobs included. While a frame is open, idle workers spin instead of sleeping, so
    /// each fan-out of the frame finds them awake; between frames they sleep.
    ///
    /// Keep a frame around the job work of a frame, not around the wait for vsync or the
    /// GPU: while it is open, idle workers burn their cores.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let mut state = vec![0u32; 256];
    /// for _frame in 0..3 {
    ///     jobs.run(|ctx| {
    ///         ctx.frame(|f| {
    ///             let scratch = f.arena(ctx).alloc_slice_fill_copy(256, 1u32);
    ///             ctx.scope(|s| {
    ///                 for (chunk, add) in state.chunks_mut(64).zip(scratch.chunks(64)) {
    ///                     s.spawn(move |_| chunk.iter_mut().zip(add).for_each(|(x, a)| *x += a));
    ///                 }
    ///             });
    ///         })
    ///     });
    ///     // Between frames (here) idle workers go to sleep.
    /// }
    /// assert!(state.iter().all(|&x| x == 3));
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    pub fn frame<'env, R>(&self, body: impl for<'f> FnOnce(Frame<'f, 'env>) -> R) -> R {
        crate::fiber::check_no_suspend("Ctx::frame");
        let state = LoopState::new();
        let result = catch(|| run_frame(self, &state, body));
        self.finish_loop(&state, result)
    }

    /// The end of a loop of frames: waits until every frame it opened retired, then re-raises
    /// the first later-job panic (else the body's), as a scope does.
    fn finish_loop<R>(&self, state: &LoopState, result: Result<R, crate::panic::Payload>) -> R {
        self.wait_core(&state.pending, 0);
        if let Some(payload) = state.panic.take() {
            if let Err(body) = result {
                drop_payload(body);
            }
            resume_unwind(payload);
        }
        match result {
            Ok(r) => r,
            Err(payload) => resume_unwind(payload),
        }
    }

    /// Copies the stats of the most recently completed frame into `out` (allocating only
    /// the first time, for its per-worker list); false if no frame has completed yet. A
    /// frame's stats complete once it retired and its period ended (see [`FrameStats`]).
    pub fn frame_stats(&self, out: &mut FrameStats) -> bool {
        self.shared().frames.book.lock().latest(out)
    }

    /// Whether frame `index` has retired.
    pub fn is_frame_retired(&self, index: u64) -> bool {
        self.shared().frames.is_retired(index)
    }
}
