//! Parallel loops over index ranges and slices: [`Ctx::par_for`], [`Ctx::par_for_chunks`],
//! [`Ctx::par_chunks`], [`Ctx::par_chunks_mut`] and [`Ctx::par_reduce`]; and a parallel
//! quicksort over the same fork, [`Ctx::par_sort_unstable_by`].
//!
//! All of them share one splitter, the adaptive one rayon uses. The loop cuts its input into
//! grains (`grain` items each; the last one may be shorter) and starts with a budget of one
//! split per worker. Each split halves the remaining budget and forks the two halves with
//! [`Ctx::join`]: the left half runs here, the right half is published for thieves. A half that
//! another worker took (it *migrated*) resets its budget to the worker count, so the work keeps
//! spreading to wherever idle workers are; a half that stayed on its worker runs its grains in
//! one sequential leaf once the budget is spent. So a loop makes about `2 × workers` leaves
//! when nobody is idle, and more only where thieves actually take work: the cost of a
//! hand-written batch of a few jobs per worker, without choosing the count up front.
//!
//! Nothing is allocated: every fork is a [`Ctx::join`], whose record lives on the forking
//! fiber's stack. Borrowing follows from `join`: it waits for both halves on every path (a
//! panicking half included), so no leaf outlives the call, and a panic in a leaf is re-raised
//! by the loop only after every leaf finished.

use crate::fiber::{Ctx, check_no_suspend};
use core::cmp::Ordering;
use core::ops::Range;

/// What a loop splits: an index range or a slice. `split_at(at)` cuts after `at` items.
trait Piece: Send + Sized {
    fn split_at(self, at: usize) -> (Self, Self);
}

impl Piece for Range<usize> {
    #[inline]
    fn split_at(self, at: usize) -> (Self, Self) {
        let mid = self.start + at;
        (self.start..mid, mid..self.end)
    }
}

impl<T: Sync> Piece for &[T] {
    #[inline]
    fn split_at(self, at: usize) -> (Self, Self) {
        <[T]>::split_at(self, at)
    }
}

impl<T: Send> Piece for &mut [T] {
    #[inline]
    fn split_at(self, at: usize) -> (Self, Self) {
        <[T]>::split_at_mut(self, at)
    }
}

/// The fixed parameters of one loop.
#[derive(Clone, Copy)]
struct Plan {
    /// Items per grain (at least 1).
    grain: usize,
    /// The split budget a migrated half gets back: the worker count.
    workers: usize,
}

/// Runs `leaf` over `piece` (`len` items, the first at `offset` from the loop's start),
/// forking halves while the split budget lasts, and combines the halves' results with
/// `reduce` (left operand: the lower half).
#[allow(clippy::too_many_arguments)]
fn bridge<P, R, L, J>(
    ctx: &Ctx,
    piece: P,
    offset: usize,
    len: usize,
    plan: Plan,
    splits: usize,
    migrated: bool,
    leaf: &L,
    reduce: &J,
) -> R
where
    P: Piece,
    R: Send,
    L: Fn(&Ctx, usize, P) -> R + Sync,
    J: Fn(R, R) -> R + Sync,
{
    let grains = len.div_ceil(plan.grain);
    // rayon's `LengthSplitter::try_split`: at least two grains, and either a half that
    // migrated (budget back to the worker count) or budget left (halved).
    let next = if grains < 2 {
        None
    } else if migrated {
        Some(plan.workers.max(splits / 2))
    } else if splits > 0 {
        Some(splits / 2)
    } else {
        None
    };
    let Some(splits) = next else {
        return leaf(ctx, offset, piece);
    };
    // Split on a grain boundary, so every leaf but the loop's last holds whole grains.
    let at = grains / 2 * plan.grain;
    let (left, right) = piece.split_at(at);
    let origin = ctx.worker_index();
    let (a, b) = ctx.join(
        |c| bridge(c, left, offset, at, plan, splits, false, leaf, reduce),
        move |c| {
            let migrated = c.worker_index() != origin;
            bridge(
                c,
                right,
                offset + at,
                len - at,
                plan,
                splits,
                migrated,
                leaf,
                reduce,
            )
        },
    );
    reduce(a, b)
}

/// The entry of every loop: checks the grain, refuses a no-suspend region (the loop may wait),
/// and starts the splitter with one split per worker.
#[track_caller]
fn start<P, R, L, J>(
    ctx: &Ctx,
    what: &'static str,
    piece: P,
    len: usize,
    grain: usize,
    leaf: &L,
    reduce: &J,
) -> R
where
    P: Piece,
    R: Send,
    L: Fn(&Ctx, usize, P) -> R + Sync,
    J: Fn(R, R) -> R + Sync,
{
    assert!(grain >= 1, "{what}: the grain must be at least 1 item");
    check_no_suspend(what);
    let workers = ctx.worker_count();
    let plan = Plan { grain, workers };
    bridge(ctx, piece, 0, len, plan, workers, false, leaf, reduce)
}

impl Ctx {
    /// Calls `f(ctx, i)` for every `i` in `range`, potentially in parallel, and returns when
    /// all calls returned.
    ///
    /// `grain` is the smallest number of consecutive indices one job runs: the range is cut
    /// into runs of whole grains, split adaptively (see the guide, "Parallel loops"): about two
    /// runs per worker, more where other workers steal. Each run calls `f` in ascending order
    /// on one fiber, with that fiber's `Ctx`.
    ///
    /// `f` may borrow from the caller's stack, and may itself wait, fork or loop: waits park
    /// the fiber, never the worker. If calls panic, the loop still runs every other index,
    /// then re-raises one of the panics here. Allocates nothing.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// let sum = AtomicU64::new(0);
    /// jobs.run(|ctx| {
    ///     ctx.par_for(0..1000, 64, |_, i| {
    ///         sum.fetch_add(i as u64, Ordering::Relaxed);
    ///     });
    /// });
    /// assert_eq!(sum.into_inner(), 499_500);
    /// ```
    ///
    /// # Panics
    /// If `grain` is 0. In debug builds, if a no-suspend region is open on this fiber (the
    /// loop may wait).
    #[track_caller]
    pub fn par_for<F>(&self, range: Range<usize>, grain: usize, f: F)
    where
        F: Fn(&Ctx, usize) + Sync,
    {
        let len = range.len();
        let leaf = |c: &Ctx, _: usize, r: Range<usize>| r.for_each(|i| f(c, i));
        start(self, "Ctx::par_for", range, len, grain, &leaf, &|(), ()| ());
    }

    /// Calls `f(ctx, sub)` for consecutive, disjoint sub-ranges `sub` that together cover
    /// `range`, potentially in parallel; [`par_for`](Self::par_for) with the loop over each
    /// sub-range in your hands (for a vectorised inner loop, or per-run setup).
    ///
    /// Each sub-range holds a whole number of grains (at least one), except the one that ends
    /// at `range.end`, which may be shorter. How many there are depends on the workers and on
    /// stealing (see [`par_for`](Self::par_for)); borrowing, waits, panics and allocation as
    /// there.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// let covered = AtomicUsize::new(0);
    /// jobs.run(|ctx| {
    ///     ctx.par_for_chunks(10..1010, 100, |_, sub| {
    ///         assert!(sub.len() >= 100 && (sub.start - 10) % 100 == 0);
    ///         covered.fetch_add(sub.len(), Ordering::Relaxed);
    ///     });
    /// });
    /// assert_eq!(covered.into_inner(), 1000);
    /// ```
    ///
    /// # Panics
    /// As [`par_for`](Self::par_for).
    #[track_caller]
    pub fn par_for_chunks<F>(&self, range: Range<usize>, grain: usize, f: F)
    where
        F: Fn(&Ctx, Range<usize>) + Sync,
    {
        let len = range.len();
        let leaf = |c: &Ctx, _: usize, r: Range<usize>| {
            // Only an empty loop has an empty leaf (splits fall inside the input).
            if !r.is_empty() {
                f(c, r)
            }
        };
        start(
            self,
            "Ctx::par_for_chunks",
            range,
            len,
            grain,
            &leaf,
            &|(), ()| (),
        );
    }

    /// Calls `f(ctx, offset, chunk)` for consecutive, disjoint chunks of `data`, potentially in
    /// parallel; `offset` is the index in `data` of the chunk's first element, so parallel
    /// arrays can be indexed alongside (`other[offset..offset + chunk.len()]`).
    ///
    /// Each chunk holds a whole number of grains (`grain` elements each, at least one grain),
    /// except the chunk that ends the slice, which may be shorter. Code that wants chunks of
    /// exactly `grain` elements loops `chunk.chunks(grain)` inside. Chunk count, borrowing,
    /// waits, panics and allocation as in [`par_for`](Self::par_for).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// let data: Vec<u64> = (0..10_000).collect();
    /// let sum = AtomicU64::new(0);
    /// jobs.run(|ctx| {
    ///     ctx.par_chunks(&data, 1024, |_, offset, chunk| {
    ///         assert_eq!(chunk[0], offset as u64);
    ///         sum.fetch_add(chunk.iter().sum::<u64>(), Ordering::Relaxed);
    ///     });
    /// });
    /// assert_eq!(sum.into_inner(), 49_995_000);
    /// ```
    ///
    /// # Panics
    /// As [`par_for`](Self::par_for).
    #[track_caller]
    pub fn par_chunks<T, F>(&self, data: &[T], grain: usize, f: F)
    where
        T: Sync,
        F: Fn(&Ctx, usize, &[T]) + Sync,
    {
        let leaf = |c: &Ctx, offset: usize, chunk: &[T]| {
            if !chunk.is_empty() {
                f(c, offset, chunk)
            }
        };
        start(
            self,
            "Ctx::par_chunks",
            data,
            data.len(),
            grain,
            &leaf,
            &|(), ()| (),
        );
    }

    /// Calls `f(ctx, offset, chunk)` for consecutive, disjoint mutable chunks of `data`,
    /// potentially in parallel; `offset` is the index in `data` of the chunk's first element.
    /// The engine's "update every body" loop.
    ///
    /// Chunks as in [`par_chunks`](Self::par_chunks): whole grains, the last one possibly
    /// shorter. Borrowing, waits, panics and allocation as in [`par_for`](Self::par_for).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// let velocity = vec![2.0f32; 10_000];
    /// let mut position = vec![0.0f32; 10_000];
    /// jobs.run(|ctx| {
    ///     ctx.par_chunks_mut(&mut position, 1024, |_, offset, chunk| {
    ///         let v = &velocity[offset..offset + chunk.len()];
    ///         for (p, v) in chunk.iter_mut().zip(v) {
    ///             *p += v * 0.5;
    ///         }
    ///     });
    /// });
    /// assert!(position.iter().all(|&p| p == 1.0));
    /// ```
    ///
    /// # Panics
    /// As [`par_for`](Self::par_for).
    #[track_caller]
    pub fn par_chunks_mut<T, F>(&self, data: &mut [T], grain: usize, f: F)
    where
        T: Send,
        F: Fn(&Ctx, usize, &mut [T]) + Sync,
    {
        let len = data.len();
        let leaf = |c: &Ctx, offset: usize, chunk: &mut [T]| {
            if !chunk.is_empty() {
                f(c, offset, chunk)
            }
        };
        start(
            self,
            "Ctx::par_chunks_mut",
            data,
            len,
            grain,
            &leaf,
            &|(), ()| (),
        );
    }

    /// Maps every `i` in `range` through `map` and combines the values with `reduce`,
    /// potentially in parallel; returns `identity()` for an empty range.
    ///
    /// `reduce` must be associative and `identity()` its neutral element
    /// (`reduce(identity(), x) == x`): each run of grains folds its indices in ascending order
    /// starting from `identity()`, and the runs' results are combined pairwise, lower half on
    /// the left. Operands keep their order, but the grouping depends on how the loop split
    /// (workers, stealing), so a reduction that is only approximately associative — a float
    /// sum — may differ in its last bits from run to run. Grain, borrowing, waits, panics and
    /// allocation as in [`par_for`](Self::par_for) (the values themselves live on the
    /// fibers' stacks).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// let heights = vec![3u32, 9, 4, 7, 1];
    /// let (max, sum) = jobs.run(|ctx| {
    ///     let max = ctx.par_reduce(0..heights.len(), 1, || 0, |_, i| heights[i], u32::max);
    ///     let sum = ctx.par_reduce(0..1000u64 as usize, 16, || 0u64, |_, i| i as u64, |a, b| a + b);
    ///     (max, sum)
    /// });
    /// assert_eq!((max, sum), (9, 499_500));
    /// ```
    ///
    /// # Panics
    /// As [`par_for`](Self::par_for).
    #[track_caller]
    pub fn par_reduce<R, I, M, J>(
        &self,
        range: Range<usize>,
        grain: usize,
        identity: I,
        map: M,
        reduce: J,
    ) -> R
    where
        R: Send,
        I: Fn() -> R + Sync,
        M: Fn(&Ctx, usize) -> R + Sync,
        J: Fn(R, R) -> R + Sync,
    {
        let len = range.len();
        let leaf = |c: &Ctx, _: usize, r: Range<usize>| {
            r.fold(identity(), |acc, i| reduce(acc, map(c, i)))
        };
        start(self, "Ctx::par_reduce", range, len, grain, &leaf, &reduce)
    }

    /// Sorts `data`, potentially in parallel; like `slice::sort_unstable` (not stable, in
    /// place, no allocation).
    ///
    /// A parallel quicksort: it partitions around a median-of-three pivot on this fiber and
    /// sorts the two sides with [`Ctx::join`]; pieces of at most `grain` elements (and pieces
    /// left after `2 × log2(len)` levels of lopsided partitions) are sorted sequentially with
    /// `sort_unstable_by`, so the worst case stays O(n log n). The first partition is
    /// sequential: the speed-up grows with the worker count more slowly than the loops'.
    ///
    /// If a comparison panics, the other side still finishes, then the panic is re-raised
    /// here; `data` then holds all its elements in an unspecified order. The order must be
    /// total (as for `slice::sort_unstable`; otherwise the result's order is unspecified,
    /// never unsound).
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// let mut keys: Vec<u64> = (0..10_000).map(|i| (i * 7919) % 10_007).collect();
    /// jobs.run(|ctx| ctx.par_sort_unstable(&mut keys, 512));
    /// assert!(keys.windows(2).all(|w| w[0] <= w[1]));
    /// ```
    ///
    /// # Panics
    /// If `grain` is 0; if `Ord::cmp` panics. In debug builds, if a no-suspend region is
    /// open on this fiber.
    #[track_caller]
    pub fn par_sort_unstable<T: Ord + Send>(&self, data: &mut [T], grain: usize) {
        self.par_sort_unstable_by(data, grain, T::cmp);
    }

    /// [`par_sort_unstable`](Self::par_sort_unstable) with a comparison function.
    ///
    /// ```
    /// let jobs = jobsys::JobSystem::builder().workers(2).build().unwrap();
    /// let mut depths: Vec<u32> = (0..10_000).map(|i| (i * 7919) % 10_007).collect();
    /// jobs.run(|ctx| ctx.par_sort_unstable_by(&mut depths, 512, |a, b| b.cmp(a)));
    /// assert!(depths.windows(2).all(|w| w[0] >= w[1]));
    /// ```
    ///
    /// # Panics
    /// As [`par_sort_unstable`](Self::par_sort_unstable), and if `compare` panics.
    #[track_caller]
    pub fn par_sort_unstable_by<T, F>(&self, data: &mut [T], grain: usize, compare: F)
    where
        T: Send,
        F: Fn(&T, &T) -> Ordering + Sync,
    {
        assert!(
            grain >= 1,
            "Ctx::par_sort_unstable_by: the grain must be at least 1 item"
        );
        check_no_suspend("Ctx::par_sort_unstable_by");
        let limit = 2 * (usize::BITS - data.len().leading_zeros());
        sort(self, data, grain, limit, &compare);
    }
}

/// One level of [`Ctx::par_sort_unstable_by`]: `limit` more partitions before the sequential
/// fallback.
fn sort<T, F>(ctx: &Ctx, v: &mut [T], grain: usize, limit: u32, compare: &F)
where
    T: Send,
    F: Fn(&T, &T) -> Ordering + Sync,
{
    let len = v.len();
    if len <= grain.max(8) || limit == 0 {
        v.sort_unstable_by(compare);
        return;
    }
    // Median of three to the front.
    let (a, b, c) = (0, len / 2, len - 1);
    let lt = |i: usize, j: usize| compare(&v[i], &v[j]) == Ordering::Less;
    let m = if lt(a, b) {
        if lt(b, c) {
            b
        } else if lt(a, c) {
            c
        } else {
            a
        }
    } else if lt(a, c) {
        a
    } else if lt(b, c) {
        c
    } else {
        b
    };
    v.swap(0, m);
    // Lomuto partition of `v[1..]` around `v[0]`: `v[1..=store]` < pivot.
    let (pivot, rest) = v.split_first_mut().expect("len > 8");
    let mut store = 0;
    for i in 0..rest.len() {
        if compare(&rest[i], pivot) == Ordering::Less {
            rest.swap(i, store);
            store += 1;
        }
    }
    v.swap(0, store);
    let (left, right) = v.split_at_mut(store);
    let right = &mut right[1..];
    ctx.join(
        |c| sort(c, left, grain, limit - 1, compare),
        |c| sort(c, right, grain, limit - 1, compare),
    );
}
