//! Builder behaviour that is not an error: pinning reports, FP control state.

#[cfg(target_arch = "x86_64")]
use jobsys::{Affinity, JobMeta};
use jobsys::{Builder, JobSystem};

#[test]
fn pinning_is_off_by_default_and_reported_when_asked_for() {
    let jobs = JobSystem::builder().workers(3).build().unwrap();
    assert_eq!(jobs.pinned_cores(), &[None, None, None]);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = JobSystem::builder()
        .workers(3)
        .pin_workers(true)
        .build()
        .unwrap();
    let report = jobs.pinned_cores();
    assert_eq!(report.len(), 3);
    assert_eq!(
        report[0], None,
        "the calling thread is not pinned unless asked"
    );
    // Best effort: a worker is either unpinned (the OS refused) or on a real core.
    assert!(report[1..].iter().flatten().all(|&c| c < cores.max(1024)));
    // Pinned or not, the system works.
    assert_eq!(jobs.run(|ctx| ctx.join(|_| 2, |_| 3)), (2, 3));
}

/// Guards the contract (every worker runs with the building thread's MXCSR). On Linux new threads
/// also inherit the FP environment from their creator, so this passes there even without the
/// explicit copy in `worker/start.rs`; the copy is what makes it hold where threads do not inherit.
#[cfg(target_arch = "x86_64")]
#[test]
fn workers_copy_the_callers_floating_point_control_state() {
    fn mxcsr() -> u32 {
        let mut v = 0u32;
        // SAFETY: stmxcsr writes 4 bytes to a valid local.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
        v
    }
    fn set_mxcsr(v: u32) {
        // SAFETY: loads a value derived from this CPU's own MXCSR (only FTZ/DAZ bits added).
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack)) };
    }
    const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);
    let saved = mxcsr();
    set_mxcsr(saved | FTZ_DAZ);
    let jobs = JobSystem::builder().workers(4).build().unwrap();
    set_mxcsr(saved);
    let seen = std::sync::Mutex::new(Vec::new());
    jobs.run(|ctx| {
        ctx.scope(|s| {
            // One job pinned to each spawned worker, so every worker is checked.
            static PINNED: [JobMeta; 3] = [
                JobMeta::new("fp", file!(), line!()).affinity(Affinity::Worker(1)),
                JobMeta::new("fp", file!(), line!()).affinity(Affinity::Worker(2)),
                JobMeta::new("fp", file!(), line!()).affinity(Affinity::Worker(3)),
            ];
            for meta in &PINNED {
                let seen = &seen;
                s.spawn_with(meta, move |s| {
                    seen.lock().unwrap().push((s.worker_index(), mxcsr()))
                });
            }
        })
    });
    drop(jobs);
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 3);
    for (worker, v) in seen {
        assert_eq!(
            v & FTZ_DAZ,
            FTZ_DAZ,
            "worker {worker} did not inherit FTZ/DAZ"
        );
    }
}

fn fib(ctx: &jobsys::Ctx, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = ctx.join(|c| fib(c, n - 1), |c| fib(c, n - 2));
    a + b
}

/// With small stacks no bigger than the default headroom (32 KiB), the default adapts (half the stack), so
/// children still run inline: `fib(16)` through `join` (8 nested `b`s) fits in 4 fibers on one worker. Were the
/// headroom left at 32 KiB, no 32 KiB fiber could run a child inline, each level would hold a
/// fiber, and the pool would deadlock.
#[test]
fn the_default_inline_headroom_fits_small_stacks() {
    let jobs = JobSystem::builder()
        .workers(1)
        .small_fibers(4, 32 * 1024)
        .large_fibers(0, 64 * 1024)
        .build()
        .unwrap();
    assert_eq!(jobs.run(|ctx| fib(ctx, 16)), 987);
}

/// An explicit headroom that leaves no room on the fibers it applies to is refused with a
/// message; `usize::MAX` (never inline) is accepted.
#[test]
fn an_inline_headroom_as_large_as_the_stack_is_refused() {
    let err = JobSystem::builder()
        .small_fibers(4, 16 * 1024)
        .inline_headroom(16 * 1024)
        .build()
        .expect_err("refused");
    assert!(matches!(
        err.kind(),
        jobsys::BuildErrorKind::HeadroomTooLarge {
            class: jobsys::StackClass::Small,
            headroom: 16384,
            stack: 16384
        }
    ));
    assert!(err.to_string().contains("usize::MAX"), "{err}");
    let err = JobSystem::builder()
        .large_fibers(2, 256 * 1024)
        .large_inline_headroom(256 * 1024)
        .build()
        .expect_err("refused");
    assert!(matches!(
        err.kind(),
        jobsys::BuildErrorKind::HeadroomTooLarge {
            class: jobsys::StackClass::Large,
            ..
        }
    ));
    let jobs = JobSystem::builder()
        .workers(1)
        .inline_headroom(usize::MAX)
        .build()
        .unwrap();
    assert_eq!(jobs.run(|ctx| fib(ctx, 5)), 5);
}

/// The requirements are the exact figures: per fiber a guard page and its stack rounded up to
/// pages, plus a page less one byte of alignment slack; per worker six rings of whole cache
/// lines, plus a cache line less one byte.
#[test]
fn memory_requirements_follow_the_configuration() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let round = |n: usize| n.next_multiple_of(page);
    let needs = JobSystem::builder()
        .workers(3)
        .small_fibers(5, 40 * 1024 + 1)
        .large_fibers(2, 256 * 1024)
        .queue_capacity(4)
        .memory_requirements();
    assert_eq!(
        needs.fiber_stacks,
        page - 1 + 5 * (page + round(40 * 1024 + 1)) + 2 * (page + round(256 * 1024))
    );
    // Four 8-byte slots fill half a cache line: each ring takes a whole one.
    assert_eq!(needs.queues, 63 + 3 * 6 * 64);
    // One default-capacity arena per worker per frame in flight, plus alignment slack.
    assert_eq!(
        needs.frame_arenas,
        63 + 3 * Builder::DEFAULT_FRAMES_IN_FLIGHT * Builder::DEFAULT_ARENA_CAPACITY
    );
    let arenas = JobSystem::builder()
        .workers(2)
        .frames_in_flight(3)
        .frame_arena(1000, 1000)
        .memory_requirements();
    assert_eq!(arenas.frame_arenas, 63 + 2 * 3 * 1024);
    let none = JobSystem::builder().frame_arena(0, 0).memory_requirements();
    assert_eq!(none.frame_arenas, 0);
    let needs = JobSystem::builder()
        .workers(2)
        .queue_capacity(256)
        .memory_requirements();
    assert_eq!(needs.queues, 63 + 2 * 6 * 256 * size_of::<usize>());
}

/// A block smaller than its region needs is refused, and the message names the builder call
/// to fix and the size to give.
#[test]
fn a_memory_block_too_small_is_refused_naming_the_builder_call() {
    let builder = JobSystem::builder().workers(2).small_fibers(4, 64 * 1024);
    let needs = builder.memory_requirements();
    // Blocks owned by the test (not leaked, so the leak checker of the sanitizer runs stays
    // quiet): a refused build drops the builder, and with it the block's use.
    let mut stacks = vec![0u8; 4096];
    let mut rings = vec![0u8; 64];
    let block = |v: &mut Vec<u8>| {
        // SAFETY: the vector outlives the builder it is handed to, which `build` drops when it
        // refuses the block; nothing else touches the vector meanwhile.
        unsafe {
            jobsys::Memory::from_raw_parts(std::ptr::NonNull::new(v.as_mut_ptr()).unwrap(), v.len())
        }
    };
    let err = builder
        .clone()
        .fiber_stack_memory(block(&mut stacks))
        .build()
        .expect_err("refused");
    assert!(matches!(
        err.kind(),
        jobsys::BuildErrorKind::MemoryTooSmall {
            region: jobsys::MemoryRegion::FiberStacks,
            given: 4096,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("Builder::fiber_stack_memory")
            && msg.contains(&format!("at least {} bytes", needs.fiber_stacks)),
        "{msg}"
    );
    let err = builder
        .queue_memory(block(&mut rings))
        .build()
        .expect_err("refused");
    assert!(matches!(
        err.kind(),
        jobsys::BuildErrorKind::MemoryTooSmall {
            region: jobsys::MemoryRegion::Queues,
            given: 64,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("Builder::queue_memory")
            && msg.contains(&format!("at least {} bytes", needs.queues)),
        "{msg}"
    );
}

/// Frames in flight outside 1..=16, and an arena limit below its capacity, are refused with
/// their kinds; the bounds themselves are accepted.
#[test]
fn frame_options_out_of_range_are_refused() {
    use jobsys::BuildErrorKind;
    for k in [0, Builder::MAX_FRAMES_IN_FLIGHT + 1] {
        let err = JobSystem::builder()
            .workers(1)
            .frames_in_flight(k)
            .build()
            .expect_err("refused");
        assert!(
            matches!(
                err.kind(),
                BuildErrorKind::FramesInFlight { requested, max: 16 } if *requested == k
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("between 1 and 16"), "{err}");
    }
    let err = JobSystem::builder()
        .workers(1)
        .frame_arena(4096, 4095)
        .build()
        .expect_err("refused");
    assert!(
        matches!(
            err.kind(),
            BuildErrorKind::ArenaLimitBelowCapacity {
                capacity: 4096,
                limit: 4095
            }
        ),
        "{err:?}"
    );
    // Arenas that cannot fit in the address space are refused, not wrapped or panicked on.
    for capacity in [usize::MAX, usize::MAX / 4] {
        let err = JobSystem::builder()
            .workers(2)
            .frame_arena(capacity, capacity)
            .build()
            .expect_err("refused");
        assert!(
            matches!(err.kind(), BuildErrorKind::ArenaTooLarge { capacity: c, workers: 2, frames_in_flight: 2 } if *c == capacity),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("does not fit in the address space"),
            "{err}"
        );
    }
    for k in [1, Builder::MAX_FRAMES_IN_FLIGHT] {
        let jobs = JobSystem::builder()
            .workers(1)
            .frames_in_flight(k)
            .frame_arena(4096, 4096)
            .build()
            .unwrap();
        assert_eq!(jobs.run(|ctx| ctx.frame(|f| *f.arena(ctx).alloc(k))), k);
    }
}
