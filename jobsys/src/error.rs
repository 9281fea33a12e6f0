//! Configuration errors: each says what to change.

use crate::job::StackClass;
use crate::memory::MemoryRegion;
use std::fmt;

/// Why [`Builder::build`](crate::Builder::build) refused a configuration.
#[derive(Debug)]
pub struct BuildError {
    kind: BuildErrorKind,
}

/// The kinds of [`BuildError`].
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// `workers(0)`: at least the calling thread must be a worker.
    ZeroWorkers,
    /// More workers than the system supports.
    TooManyWorkers {
        /// What was asked for.
        requested: usize,
        /// The most allowed.
        max: usize,
    },
    /// Both fiber classes have zero fibers: no job could ever run.
    NoFibers,
    /// More fibers than the system supports.
    TooManyFibers {
        /// What was asked for.
        requested: usize,
        /// The most allowed.
        max: usize,
    },
    /// A fiber stack below the minimum.
    StackTooSmall {
        /// Which class.
        class: StackClass,
        /// The size asked for, in bytes.
        size: usize,
        /// The smallest size accepted, in bytes.
        min: usize,
    },
    /// The large class's stacks are smaller than the small class's.
    LargeSmallerThanSmall {
        /// Small stack size in bytes.
        small: usize,
        /// Large stack size in bytes.
        large: usize,
    },
    /// An inline headroom (`Builder::inline_headroom` / `large_inline_headroom`) not less than
    /// the stack of the fibers it applies to: no child could ever run inline there.
    HeadroomTooLarge {
        /// The class of fibers it applies to.
        class: StackClass,
        /// The headroom asked for, in bytes.
        headroom: usize,
        /// Those fibers' stack size, in bytes.
        stack: usize,
    },
    /// The per-worker queue capacity is not a power of two in the allowed range.
    QueueCapacity {
        /// What was asked for.
        requested: usize,
        /// The smallest capacity accepted.
        min: usize,
        /// The largest capacity accepted.
        max: usize,
    },
    /// `frames_in_flight` is 0 or above the maximum.
    FramesInFlight {
        /// What was asked for.
        requested: usize,
        /// The most accepted.
        max: usize,
    },
    /// `frame_arena`'s limit is below its capacity.
    ArenaLimitBelowCapacity {
        /// Bytes reserved per arena.
        capacity: usize,
        /// The growth limit asked for.
        limit: usize,
    },
    /// The frame arenas (`frame_arena`'s capacity × workers × frames in flight) do not fit in
    /// the address space.
    ArenaTooLarge {
        /// Bytes asked for per arena.
        capacity: usize,
        /// Workers.
        workers: usize,
        /// Frames in flight.
        frames_in_flight: usize,
    },
    /// Allocating the frame arenas' blocks failed (memory limits).
    ArenaAlloc {
        /// Bytes asked for.
        bytes: usize,
    },
    /// Mapping a fiber stack failed (address space or memory limits).
    StackAlloc {
        /// Which class.
        class: StackClass,
        /// Stack size in bytes.
        size: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// Spawning a worker thread failed.
    ThreadSpawn {
        /// Which worker.
        worker: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// Spawning a blocking-lane thread failed
    /// ([`Builder::blocking_threads`](crate::Builder::blocking_threads)).
    BlockingThreadSpawn {
        /// Which lane thread (from 0).
        thread: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// A block of user memory ([`Memory`](crate::Memory)) smaller than its region needs for
    /// this configuration (see [`Builder::memory_requirements`](crate::Builder::memory_requirements)).
    MemoryTooSmall {
        /// The region the block was given for.
        region: MemoryRegion,
        /// The bytes the region needs, alignment slack included.
        needed: usize,
        /// The block's size in bytes.
        given: usize,
    },
}

impl BuildError {
    pub(crate) fn new(kind: BuildErrorKind) -> Self {
        Self { kind }
    }

    pub(crate) fn stack(class: StackClass, size: usize, source: std::io::Error) -> Self {
        Self::new(BuildErrorKind::StackAlloc {
            class,
            size,
            source,
        })
    }

    /// What went wrong.
    pub fn kind(&self) -> &BuildErrorKind {
        &self.kind
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BuildErrorKind::*;
        match &self.kind {
            ZeroWorkers => write!(
                f,
                "workers(0) is not allowed: the calling thread is always worker 0; use workers(1) or more"
            ),
            TooManyWorkers { requested, max } => write!(
                f,
                "workers({requested}) exceeds the maximum of {max}; ask for at most {max}"
            ),
            NoFibers => write!(
                f,
                "the fiber pool is empty: give small_fibers or large_fibers a count of at least 1"
            ),
            TooManyFibers { requested, max } => {
                write!(
                    f,
                    "{requested} fibers requested; the pool holds at most {max}: lower small_fibers / large_fibers"
                )
            }
            StackTooSmall { class, size, min } => {
                write!(
                    f,
                    "{class:?} fiber stacks of {size} bytes are below the minimum of {min} bytes; raise the size"
                )
            }
            LargeSmallerThanSmall { small, large } => write!(
                f,
                "large fiber stacks ({large} bytes) must be at least as big as small ones ({small} bytes): a Large job must fit where a Small one does"
            ),
            HeadroomTooLarge {
                class,
                headroom,
                stack,
            } => write!(
                f,
                "an inline headroom of {headroom} bytes leaves no room on {class:?} fibers of {stack} bytes: no child could run inline there, and every level of a fork-join would hold a fiber; use less than the stack size (half is the default), or usize::MAX to never run children inline"
            ),
            QueueCapacity {
                requested,
                min,
                max,
            } => write!(
                f,
                "queue_capacity({requested}) must be a power of two between {min} and {max}"
            ),
            FramesInFlight { requested, max } => write!(
                f,
                "frames_in_flight({requested}) must be between 1 and {max}"
            ),
            ArenaLimitBelowCapacity { capacity, limit } => write!(
                f,
                "frame_arena({capacity}, {limit}): the limit must be at least the capacity (equal: a strict budget that never grows)"
            ),
            ArenaTooLarge {
                capacity,
                workers,
                frames_in_flight,
            } => write!(
                f,
                "frame_arena({capacity}, _) for {workers} workers and {frames_in_flight} frames in flight does not fit in the address space; lower the capacity"
            ),
            ArenaAlloc { bytes } => write!(
                f,
                "allocating {bytes} bytes of frame arenas failed; lower frame_arena's capacity, or supply the memory with Builder::frame_arena_memory"
            ),
            StackAlloc {
                class,
                size,
                source,
            } => write!(
                f,
                "mapping a {class:?} fiber stack of {size} bytes failed ({source}); lower the fiber count or stack size, or raise the address-space limit"
            ),
            ThreadSpawn { worker, source } => write!(
                f,
                "spawning worker thread {worker} failed ({source}); lower workers()"
            ),
            BlockingThreadSpawn { thread, source } => write!(
                f,
                "spawning blocking-lane thread {thread} failed ({source}); lower blocking_threads()"
            ),
            MemoryTooSmall {
                region,
                needed,
                given,
            } => {
                let (block, lower) = match region {
                    MemoryRegion::FiberStacks => (
                        "the block given to Builder::fiber_stack_memory",
                        "small_fibers / large_fibers",
                    ),
                    MemoryRegion::Queues => (
                        "the block given to Builder::queue_memory",
                        "workers / queue_capacity",
                    ),
                    MemoryRegion::FrameArenas => (
                        "the block given to Builder::frame_arena_memory",
                        "workers / frames_in_flight / frame_arena's capacity",
                    ),
                };
                write!(
                    f,
                    "{block} holds {given} bytes, but this configuration needs {needed} (Builder::memory_requirements); give a block of at least {needed} bytes, or lower {lower}"
                )
            }
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            BuildErrorKind::StackAlloc { source, .. }
            | BuildErrorKind::ThreadSpawn { source, .. }
            | BuildErrorKind::BlockingThreadSpawn { source, .. } => Some(source),
            _ => None,
        }
    }
}
