//! `FrameArena::alloc_slice_copy` (a bitwise copy into the frame arena): contents, alignment
//! after an odd-sized allocation, empty slices, zero-sized types, and `alloc_str`.

use jobsys::JobSystem;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Pair {
    a: u64,
    b: u16,
}

#[test]
fn slice_copies_are_exact_aligned_and_independent() {
    let jobs = JobSystem::builder().workers(1).build().unwrap();
    jobs.run(|ctx| {
        ctx.frame(|f| {
            let a = f.arena(ctx);
            // An odd-sized allocation first, so the next one needs padding to align.
            let byte = a.alloc(7u8);
            let src: Vec<Pair> = (0..100u64)
                .map(|i| Pair {
                    a: i * 3,
                    b: i as u16,
                })
                .collect();
            let before = a.used();
            let copy = a.alloc_slice_copy(&src);
            assert_eq!(copy, &src[..]);
            assert_eq!(copy.as_ptr() as usize % align_of::<Pair>(), 0, "misaligned");
            assert!(a.used() >= before + size_of_val(&src[..]), "room not taken");
            // A copy, not a view: writing it leaves the source alone, and the next allocation
            // does not overlap it.
            copy[0].a = 99;
            assert_eq!(src[0].a, 0);
            let next = a.alloc_slice_copy(&[1.5f32, 2.5]);
            assert_eq!(next, &[1.5, 2.5]);
            assert_eq!(copy[99], src[99]);
            assert_eq!(*byte, 7);

            let empty: &[u64] = a.alloc_slice_copy(&[]);
            assert!(empty.is_empty());
            assert_eq!(empty.as_ptr() as usize % align_of::<u64>(), 0);
            assert_eq!(a.alloc_slice_copy(&[(); 5]).len(), 5);
            assert_eq!(a.alloc_str("frame arena"), "frame arena");
        });
    });
}
