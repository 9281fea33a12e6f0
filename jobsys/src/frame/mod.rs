//! Frames as first-class objects: frames in flight, each with per-worker arenas reclaimed in
//! bulk when the frame retires, later stages that overlap the next frame, and per-frame stats.
//!
//! A frame holds one of K slots (`Builder::frames_in_flight`). Opening frame N parks until
//! frame N − K retired; the frame is live while its body or any of its later jobs runs; the
//! last of them retires it (`FrameRing::part_done`): the stats are final, the slot's turn
//! passes to frame N + K (waking anyone waiting for it), and the owning loop is told. The
//! next opener of the slot resets its arenas.

mod api;
mod arena;
mod ring;
mod stats;

pub use api::{Frame, Frames};
pub use arena::{ArenaFull, FrameArena};
pub(crate) use ring::{FrameConfig, FrameRing};
pub use stats::{FrameStats, WorkerFrameStats};
