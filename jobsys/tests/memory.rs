//! User-supplied memory (`Builder::fiber_stack_memory`, `Builder::queue_memory`): the system
//! runs with its stacks and rings in the user's blocks, gives the blocks back whole when
//! dropped, and still reports a stack overflow on a stack in a user block.

mod common;

use jobsys::{Counter, Ctx, JobDecl, JobSystem, Memory, job_meta};
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A user block of exactly `len` bytes that starts one byte past an allocation's start, so
/// it is misaligned for pages and cache lines: the requirements' alignment slack must cover it.
struct Block {
    buf: Vec<u8>,
    len: usize,
}

impl Block {
    fn new(len: usize, fill: u8) -> Self {
        Self {
            buf: vec![fill; len + 1],
            len,
        }
    }

    fn range(&mut self) -> Range<usize> {
        let start = self.buf.as_mut_ptr() as usize + 1;
        start..start + self.len
    }

    /// The block as a `Memory`; `buf` is not touched again until the system is dropped.
    fn memory(&mut self) -> Memory {
        let start = NonNull::new(self.buf[1..].as_mut_ptr()).unwrap();
        // SAFETY: `buf` lives until the end of the test and is neither read nor written
        // between this call and the drop of the system built with it (each test drops the
        // system before it looks at `buf`).
        unsafe { Memory::from_raw_parts(start, self.len) }
    }

    /// Writes every byte (a guard page left inaccessible would fault here) and reads them back.
    fn write_all(&mut self) {
        let bytes = &mut self.buf[1..];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert!(
            bytes.iter().enumerate().all(|(i, &b)| b == i as u8),
            "the block reads back what was written"
        );
    }
}

/// Where a job's stack is: the stack pointer (read from the register on x86-64 and AArch64,
/// where AddressSanitizer could move a local to a heap "fake stack"), else a local's address.
#[inline(never)]
fn stack_address() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: usize;
        // SAFETY: reads a register into a local; touches no memory and no flags.
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let sp: usize;
        // SAFETY: as on x86-64: a register read with no memory or flag effects.
        unsafe {
            std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let local = 0u8;
        std::hint::black_box(&local) as *const u8 as usize
    }
}

/// What the jobs check: that they run on a stack in `stacks`.
struct Seen {
    stacks: Range<usize>,
    inside: AtomicUsize,
    outside: AtomicUsize,
}

impl Seen {
    fn check(&self) {
        if self.stacks.contains(&stack_address()) {
            self.inside.fetch_add(1, Ordering::Relaxed);
        } else {
            self.outside.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn fib(ctx: &Ctx, n: u64, seen: &Seen) -> u64 {
    seen.check();
    if n < 2 {
        return n;
    }
    let (a, b) = ctx.join(|c| fib(c, n - 1, seen), |c| fib(c, n - 2, seen));
    a + b
}

fn check_entry(_: &Ctx, data: *mut ()) {
    // SAFETY: every declaration points at the test's `Seen`, alive until the batch is waited.
    unsafe { &*(data as *const Seen) }.check();
}

fn builder(workers: usize) -> jobsys::Builder {
    JobSystem::builder()
        .workers(workers)
        .small_fibers(16, 64 * 1024)
        .large_fibers(2, 256 * 1024)
        .queue_capacity(64)
}

#[test]
fn jobs_run_on_stacks_in_the_users_block_and_the_blocks_come_back_whole() {
    const BATCH: usize = 1000;
    const FILL: u8 = 0xA5;
    for workers in [1, 2, 4] {
        let needs = builder(workers).memory_requirements();
        let mut stacks = Block::new(needs.fiber_stacks, FILL);
        let mut queues = Block::new(needs.queues, FILL);
        let seen = Seen {
            stacks: stacks.range(),
            inside: AtomicUsize::new(0),
            outside: AtomicUsize::new(0),
        };
        let jobs = builder(workers)
            .fiber_stack_memory(stacks.memory())
            .queue_memory(queues.memory())
            .build()
            .unwrap();
        assert_eq!(jobs.run(|ctx| fib(ctx, 15, &seen)), 610);
        let decls: Vec<JobDecl> = (0..BATCH)
            .map(|_| {
                JobDecl::new(
                    job_meta!("check"),
                    check_entry,
                    &seen as *const Seen as *mut (),
                )
            })
            .collect();
        jobs.run(|ctx| {
            let counter = Counter::new();
            // SAFETY: `decls`, `seen` and `counter` outlive the wait below.
            unsafe { ctx.run_jobs(&decls, &counter) };
            ctx.wait_for_counter(&counter, 0);
        });
        assert_eq!(jobs.lost_wakeups(), 0);
        drop(jobs);

        let fib_calls = 1973; // calls of fib(15), each one check
        assert_eq!(
            seen.outside.load(Ordering::Relaxed),
            0,
            "{workers} workers: jobs ran on stacks outside the user block"
        );
        assert_eq!(
            seen.inside.load(Ordering::Relaxed),
            fib_calls + BATCH,
            "{workers} workers"
        );
        // The rings were in the queue block: their slots were set to null at build and hold
        // the last jobs pushed on them (a ring slot keeps its job pointer after the pop).
        let words: Vec<usize> = queues.buf[1..]
            .chunks_exact(size_of::<usize>())
            .map(|w| usize::from_ne_bytes(w.try_into().unwrap()))
            .collect();
        let fill = usize::from_ne_bytes([FILL; size_of::<usize>()]);
        assert!(
            words.iter().any(|&w| w != 0 && w != fill),
            "{workers} workers: no job pointer was ever stored in the queue block"
        );
        // Both blocks are the user's again: every byte is writable (the guard pages too).
        stacks.write_all();
        queues.write_all();
    }
}

/// A recursion that needs far more than a 64 KiB stack, one frame of at least 512 bytes a level.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n as u8; 512]);
    if n == 0 {
        return 0;
    }
    recurse(n - 1) + u64::from(std::hint::black_box(&pad)[7])
}

#[test]
fn a_deep_recursion_on_a_stack_in_the_users_block_is_reported() {
    const CHILD: &str = "JOBSYS_MEMORY_OVERFLOW_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let builder = builder(1);
        let needs = builder.memory_requirements();
        let block: &'static mut [u8] = Box::leak(vec![0u8; needs.fiber_stacks].into_boxed_slice());
        let jobs = builder
            .fiber_stack_memory(Memory::new(block))
            .build()
            .unwrap();
        jobs.run(|ctx| {
            ctx.scope(|s| {
                s.spawn_with(job_meta!("deep-recursion"), |_| {
                    eprintln!("unreachable: {}", recurse(1_000_000));
                });
            })
        });
        eprintln!("unreachable: the run returned");
        return;
    }
    let report = common::child_stderr(
        "a_deep_recursion_on_a_stack_in_the_users_block_is_reported",
        CHILD,
        "jobsys: stack overflow",
    );
    assert!(!report.contains("unreachable"), "{report}");
    assert!(
        report.contains("jobsys: stack overflow on fiber ")
            && report.contains("(Small stack, 65536 bytes) in job 'deep-recursion' (")
            && report.contains("memory.rs:"),
        "the child died without the overflow message:\n{report}"
    );
}

/// A block one byte short is refused, naming the region; the block is not touched.
#[test]
fn blocks_one_byte_short_are_refused_with_the_region() {
    let needs = builder(2).memory_requirements();
    let mut stacks = Block::new(needs.fiber_stacks - 1, 0);
    let err = builder(2)
        .fiber_stack_memory(stacks.memory())
        .build()
        .expect_err("refused");
    assert!(
        matches!(
            err.kind(),
            jobsys::BuildErrorKind::MemoryTooSmall {
                region: jobsys::MemoryRegion::FiberStacks,
                needed,
                given
            } if *needed == needs.fiber_stacks && *given == needs.fiber_stacks - 1
        ),
        "{err:?}"
    );
    let mut queues = Block::new(needs.queues - 1, 0);
    let err = builder(2)
        .queue_memory(queues.memory())
        .build()
        .expect_err("refused");
    assert!(
        matches!(
            err.kind(),
            jobsys::BuildErrorKind::MemoryTooSmall {
                region: jobsys::MemoryRegion::Queues,
                needed,
                given
            } if *needed == needs.queues && *given == needs.queues - 1
        ),
        "{err:?}"
    );
    stacks.write_all();
    queues.write_all();
}

/// A block goes to one system at most: a clone of the builder uses managed stacks and rings,
/// and a builder dropped without building leaves its block untouched.
#[test]
fn a_builder_clone_does_not_take_the_block_along() {
    const FILL: u8 = 0x5A;
    let needs = builder(2).memory_requirements();
    let mut stacks = Block::new(needs.fiber_stacks, FILL);
    let mut queues = Block::new(needs.queues, FILL);
    let seen = Seen {
        stacks: stacks.range(),
        inside: AtomicUsize::new(0),
        outside: AtomicUsize::new(0),
    };
    let jobs = {
        let with_blocks = builder(2)
            .fiber_stack_memory(stacks.memory())
            .queue_memory(queues.memory());
        with_blocks.clone().build().unwrap()
        // `with_blocks` is dropped here, never built.
    };
    assert_eq!(jobs.run(|ctx| fib(ctx, 10, &seen)), 55);
    drop(jobs);
    assert_eq!(seen.inside.load(Ordering::Relaxed), 0);
    assert_eq!(seen.outside.load(Ordering::Relaxed), 177); // calls of fib(10)
    assert!(
        stacks.buf[1..].iter().all(|&b| b == FILL),
        "the stack block was touched"
    );
    assert!(
        queues.buf[1..].iter().all(|&b| b == FILL),
        "the queue block was touched"
    );
}
