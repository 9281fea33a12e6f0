//! # jobsys-samples — the game frame, as a library
//!
//! The world of the `game-frame` sample and its systems' kernels ([`world`]), the frame on
//! jobsys ([`frame`]), and a safe typed front for the raw `JobDecl` layer ([`raw`]). The
//! `game-frame` binary drives [`frame`] and checks it against [`world`]'s sequential
//! reference; the `compare` binary of `jobsys-benches` runs the same world and kernels on
//! rayon and bevy_tasks.

pub mod frame;
pub mod raw;
pub mod world;
