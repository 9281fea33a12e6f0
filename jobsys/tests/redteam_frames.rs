//! Red-team tests for frames and their arenas: misuse from safe code that must neither hang
//! the system nor corrupt memory, and the arena's allocator under interleaved fibers.
//!
//! The tests that would hang if the property broke run in a child process with a hang guard
//! (a deadlock ends in a report instead of a hung run).

mod common;

use common::{child_stderr, hang_guard};
use jobsys::sync::{Event, EventKind};
use jobsys::{Ctx, JobSystem};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

fn sys(n: usize, k: usize) -> JobSystem {
    JobSystem::builder()
        .workers(n)
        .frames_in_flight(k)
        .build()
        .unwrap()
}

/// Runs `body` in a child process (this test binary, filtered to `test`) with a hang guard.
fn guarded(test: &str, body: impl FnOnce()) {
    const ENV: &str = "JOBSYS_REDTEAM_FRAMES_CHILD";
    if std::env::var_os(ENV).is_none() {
        let report = child_stderr(test, ENV, "child: done");
        assert!(report.contains("child: done"), "{report}");
        return;
    }
    hang_guard(120, "a red-team frames test hung");
    body();
    eprintln!("child: done");
}

fn panic_message<T>(r: std::thread::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected a panic"),
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

/// A frame opened inside a no-suspend region (debug builds check them) while it would have
/// to wait for its slot panics — and must do so before it takes a frame index: an index taken
/// and never opened would keep its slot's turn from ever passing, so every later frame of the
/// system in that slot would wait forever.
#[test]
fn a_frame_refused_in_a_no_suspend_region_does_not_stall_later_frames() {
    if !jobsys::NoSuspend::CHECKED {
        return; // release builds check no regions: the frame just opens
    }
    guarded(
        "a_frame_refused_in_a_no_suspend_region_does_not_stall_later_frames",
        || {
            let jobs = sys(2, 1);
            let release = Event::new(EventKind::Manual);
            let indices = jobs.run(|ctx| {
                let refused = ctx.frames(|frames| {
                    let first = frames.frame(|f| {
                        let release = &release;
                        // Frame 0 stays live until `release` is set, after the refused open.
                        f.later(ctx, move |ctx| release.wait(ctx));
                        f.index()
                    });
                    let region = ctx.no_suspend();
                    let r = catch_unwind(AssertUnwindSafe(|| frames.frame(|f| f.index())));
                    drop(region);
                    release.set();
                    (first, panic_message(r))
                });
                // The next frames open (K = 1: each waits for the one before it).
                let second = ctx.frame(|f| f.index());
                let third = ctx.frame(|f| f.index());
                (refused, second, third)
            });
            let ((first, msg), second, third) = indices;
            assert!(msg.contains("no-suspend region"), "{msg}");
            assert_eq!((first, second, third), (0, 1, 2));
        },
    );
}

/// Two frames opened one after the other inside one frame body, K = 2: the second nested
/// frame takes index N + 2, the outer frame's slot, and would wait for the outer frame — its
/// own caller — to retire. It must panic (as the documented too-deep nesting does) instead of
/// hanging, and the system's later frames must still open.
#[test]
fn sequential_nested_frames_past_k_panic_instead_of_hanging() {
    guarded(
        "sequential_nested_frames_past_k_panic_instead_of_hanging",
        || {
            let jobs = sys(2, 2);
            let (msg, next) = jobs.run(|ctx| {
                let msg = ctx.frames(|frames| {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        frames.frame(|_outer| {
                            frames.frame(|_| ()); // frame 1, nested: fine
                            frames.frame(|_| ()); // frame 2: slot of frame 0, the caller
                        })
                    }));
                    panic_message(r)
                });
                (msg, ctx.frame(|f| f.index()))
            });
            assert!(msg.contains("in flight"), "{msg}");
            // Frames 0 and 1 were opened; the refused one took no index.
            assert_eq!(next, 2);
        },
    );
}

/// An arena vector grown by a job after another job on the same worker allocated from the
/// same arena while the first was parked: the grown vector must not overlap the other's data.
#[test]
fn arena_vec_growth_after_another_fiber_allocated_keeps_both_intact() {
    let jobs = sys(1, 2);
    jobs.run(|ctx| {
        ctx.frame(|f| {
            let gate = Event::new(EventKind::Manual);
            let other_done = Event::new(EventKind::Manual);
            let ok = AtomicUsize::new(0);
            ctx.scope(|s| {
                let (gate, other_done, ok) = (&gate, &other_done, &ok);
                s.spawn(move |s| {
                    let ctx: &Ctx = s;
                    let mut v = f.arena(ctx).vec::<u64>();
                    v.extend(0..16u64); // the arena's last allocation
                    gate.set();
                    other_done.wait(ctx); // parks; the other job allocates meanwhile
                    v.extend(16..4096u64); // must move, not grow over the other's block
                    v.shrink_to_fit();
                    if v.iter().copied().eq(0..4096u64) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                });
                s.spawn(move |s| {
                    let ctx: &Ctx = s;
                    gate.wait(ctx);
                    let mine = f.arena(ctx).alloc_slice_fill_copy(64, 0xABu8);
                    other_done.set();
                    ctx.yield_now();
                    if mine.iter().all(|&b| b == 0xAB) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                });
            });
            assert_eq!(ok.load(Ordering::Relaxed), 2);
        });
    });
}

/// Odd layouts: zero-sized values, alignments past a cache line (past the block's, so the
/// arena grows with slack), a request near the address space's size (refused, not wrapped).
#[test]
fn arena_odd_layouts_are_aligned_in_bounds_or_refused() {
    use std::alloc::Layout;
    let jobs = JobSystem::builder()
        .workers(1)
        .frame_arena(4096, 1 << 24)
        .build()
        .unwrap();
    jobs.run(|ctx| {
        ctx.frame(|f| {
            let a = f.arena(ctx);
            let z: &mut () = a.alloc(());
            let _ = z;
            #[repr(align(4096))]
            struct Page([u8; 4096]);
            for _ in 0..3 {
                let p = a.alloc(Page([7; 4096]));
                assert_eq!(core::ptr::from_ref(p) as usize % 4096, 0);
                assert!(p.0.iter().all(|&b| b == 7));
            }
            for align in [128usize, 1 << 12, 1 << 16, 1 << 20] {
                let l = Layout::from_size_align(align, align).unwrap();
                let p = a.alloc_layout(l).expect("fits the limit");
                assert_eq!(p.as_ptr() as usize % align, 0);
                // SAFETY: `alloc_layout` handed out `align` writable bytes.
                unsafe { p.as_ptr().write_bytes(1, align) };
            }
            let huge = Layout::from_size_align(isize::MAX as usize - 63, 64).unwrap();
            assert!(a.alloc_layout(huge).is_err());
            let aligned_huge = Layout::from_size_align(0, 1 << 62).unwrap();
            assert!(a.alloc_layout(aligned_huge).is_err());
            // A slice whose maker allocates from the same arena and parks.
            let s = a.alloc_slice_fill_with(100, |i| {
                let inner = f.arena(ctx).alloc_slice_fill_copy(10, i as u32);
                if i % 25 == 0 {
                    ctx.yield_now();
                }
                inner.iter().sum::<u32>() as usize
            });
            assert!(s.iter().enumerate().all(|(i, &x)| x == 10 * i));
        });
    });
}

/// A later job that panics with a payload whose `Drop` panics, beside a body that panics
/// after handing out later jobs: the loop re-raises the later job's panic after every frame
/// retired, every later job ran, and the system opens frames afterwards.
#[test]
fn later_job_panics_with_a_panicking_payload_are_contained() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("payload drop");
            }
        }
    }
    for k in 1..=3 {
        let jobs = sys(2, k);
        let ran = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            jobs.run(|ctx| {
                ctx.frames(|frames| {
                    for i in 0..6 {
                        frames.frame(|f| {
                            let ran = &ran;
                            for _ in 0..3 {
                                f.later(ctx, move |_| {
                                    ran.fetch_add(1, Ordering::Relaxed);
                                    if i % 2 == 0 {
                                        std::panic::panic_any(Bomb);
                                    }
                                });
                            }
                            if i == 3 {
                                panic!("body");
                            }
                        });
                    }
                })
            })
        }));
        let payload = r.expect_err("a panic re-raised");
        // Dropping the re-raised payload panics in `Bomb::drop`; contain it here.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
        // Frames 0..=3 opened (3 panicked in its body), with 3 later jobs each.
        assert_eq!(ran.load(Ordering::Relaxed), 12, "k = {k}");
        assert_eq!(jobs.run(|ctx| ctx.frame(|f| f.index())), 4, "k = {k}");
    }
}

/// K = 1: a later job of frame N that opens a frame (N + 1, which waits for frame N — the
/// later job's own frame — to retire) or waits for its own frame to retire would never
/// return. Both must panic instead, and the loop and later frames go on.
#[test]
fn a_later_job_waiting_for_its_own_frame_panics_instead_of_hanging() {
    guarded(
        "a_later_job_waiting_for_its_own_frame_panics_instead_of_hanging",
        || {
            let jobs = sys(2, 1);
            let msgs = std::sync::Mutex::new(Vec::new());
            let next = jobs.run(|ctx| {
                ctx.frames(|frames| {
                    frames.frame(|f| {
                        let msgs = &msgs;
                        f.later(ctx, move |ctx| {
                            let r = catch_unwind(AssertUnwindSafe(|| ctx.frame(|g| g.index())));
                            msgs.lock().unwrap().push(panic_message(r));
                            let r =
                                catch_unwind(AssertUnwindSafe(|| f.wait_retired(ctx, f.index())));
                            msgs.lock().unwrap().push(panic_message(r));
                        });
                    });
                });
                ctx.frame(|f| f.index())
            });
            let msgs = msgs.into_inner().unwrap();
            assert!(msgs[0].contains("in flight"), "{}", msgs[0]);
            assert!(msgs[1].contains("never return"), "{}", msgs[1]);
            assert_eq!(next, 1);
        },
    );
}

/// Waiting for a frame that already retired, from inside a later frame in the same slot,
/// returns at once (no false refusal).
#[test]
fn waiting_for_a_retired_frame_of_the_same_slot_returns() {
    let jobs = sys(2, 2);
    jobs.run(|ctx| {
        ctx.frames(|frames| {
            for _ in 0..4 {
                frames.frame(|f| {
                    if f.index() >= 2 {
                        f.wait_retired(ctx, f.index() - 2);
                        assert!(f.is_retired(f.index() - 2));
                        f.later(ctx, move |ctx| f.wait_retired(ctx, f.index() - 2));
                    }
                });
            }
        });
    });
}
