//! Lazy and eager values on fibers, their combinators, and cancellation before they start.
//!
//! A [`Deferred`] is a value a job gets later, with [`get(ctx)`](Deferred::get), parking its
//! fiber (never the worker) while it waits. Two kinds implement it:
//!
//! - **Lazy** values describe work that has not started: [`lazy`], [`ready`], and the
//!   combinators ([`map`](Deferred::map), [`and_then`](Deferred::and_then), [`both`], [`all`],
//!   [`join_all`], [`first`]). Nothing runs until the value is [`get`](Deferred::get) (it then
//!   runs on the getter's fiber, its parallel parts as jobs of a scope) or submitted with
//!   [`spawn`](Deferred::spawn) / [`spawn_detached`](Deferred::spawn_detached).
//! - **Eager** values are handles of work already running: [`ScopedJobHandle`] (from
//!   [`Scope::spawn`] or [`Deferred::spawn`]) and [`JobHandle`] (detached). Their `get` is
//!   their `join`, so they take the same combinators: `s.spawn(..).map(..)` applies the map to
//!   the job's value when it is got.
//!
//! These are not Rust [`Future`](core::future::Future)s: no polling, no waker; `get` runs or
//! waits on the calling fiber.
//!
//! # Memory
//! Lazy values and their combinators are plain values on the stack (generic structs, like
//! iterator adapters): building and getting them allocates nothing, except [`join_all`] (a
//! `Vec` of its parts, of their handles and of their results) and [`boxed`](Deferred::boxed)
//! (one box per value, to name the type or store it). The parallel parts of [`both`],
//! [`all`], [`join_all`] and [`first`] run as jobs of a scope whose records live in pooled
//! blocks, so once warm they allocate nothing more. An eager scoped value lives in its scope's
//! records (no allocation); a detached one is one heap allocation (see [`JobHandle`]).
//!
//! # Cancellation
//! A lazy value spawned into a scope is a job of that scope: if the scope (or one enclosing
//! it) is [cancelled](Scope::cancel) before the job starts, it is dropped unrun. A
//! [`cancellable`](Deferred::cancellable) value is checked against a [`CancelToken`] when it
//! would start. Work that started always runs to its end and may poll
//! [`Ctx::is_cancelled`]. Combinators' parts that were cancelled before they started have no
//! value: [`all`], [`join_all`], [`both`]'s second part and [`first`] with no finished part
//! panic saying so (as [`ScopedJobHandle::join`] does); wrap parts in
//! [`cancellable`](Deferred::cancellable) to get `Err(Cancelled)` instead.
//!
//! # Panics
//! A panic inside a lazy value reaches whoever gets it: `get` re-raises it (for the parallel
//! parts of a combinator, after all of them ended, like a scope).
//!
//! ```
//! use jobsys::promise::{Deferred, all, lazy};
//! let jobs = jobsys::JobSystem::builder().workers(2).build()?;
//! let data = [1u32, 2, 3, 4, 5, 6, 7, 8];
//! let total = jobs.run(|ctx| {
//!     // A description of work: nothing runs yet.
//!     let sums = all([0, 4].map(|at| lazy(move |_| data[at..at + 4].iter().sum::<u32>())));
//!     let total = sums.map(|[a, b]| a + b);
//!     total.get(ctx) // runs both parts in parallel, then the map
//! });
//! assert_eq!(total, 36);
//! # Ok::<(), jobsys::BuildError>(())
//! ```

use crate::cancel::{CancelToken, Cancelled};
use crate::fiber::Ctx;
use crate::panic::catch;
use crate::scope::{Scope, ScopedJobHandle};
use crate::shim::{AtomicBool, Ordering, SpinLock};
use crate::task::JobHandle;
use core::fmt;
use std::panic::resume_unwind;

/// A value got later on a fiber with [`get`](Self::get): lazy work that starts then, or the
/// handle of eager work already running (see the [module docs](self)).
pub trait Deferred: Sized {
    /// The value `get` returns.
    type Output;

    /// Runs the work on this fiber (lazy values; their parallel parts as jobs), or waits for
    /// it (eager handles), and returns its value. Re-raises a panic of the work.
    ///
    /// ```
    /// use jobsys::promise::{Deferred, lazy};
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// assert_eq!(jobs.run(|ctx| lazy(|ctx| ctx.worker_count()).get(ctx)), 1);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    fn get(self, ctx: &Ctx) -> Self::Output;

    /// Applies `f` to the value once it is got (on the getter's fiber). Allocation-free.
    ///
    /// ```
    /// use jobsys::promise::{Deferred, ready};
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// assert_eq!(jobs.run(|ctx| ready(20).map(|v| v + 1).map(|v| v * 2).get(ctx)), 42);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    fn map<U, F>(self, f: F) -> Map<Self, F>
    where
        F: FnOnce(Self::Output) -> U,
    {
        Map { inner: self, f }
    }

    /// Chains a second deferred value made from the first one's value: `get` gets this one,
    /// passes its value to `f`, and gets what `f` returns. Allocation-free.
    ///
    /// ```
    /// use jobsys::promise::{Deferred, lazy};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let v = jobs.run(|ctx| {
    ///     lazy(|_| 6).and_then(|n| lazy(move |_| (1..=n).product::<u64>())).get(ctx)
    /// });
    /// assert_eq!(v, 720);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    fn and_then<D, F>(self, f: F) -> AndThen<Self, F>
    where
        D: Deferred,
        F: FnOnce(Self::Output) -> D,
    {
        AndThen { inner: self, f }
    }

    /// This value, checked against `token` when it would start: if the token was cancelled
    /// by then, the work is dropped unrun and `get` gives `Err(Cancelled)`; otherwise
    /// `Ok(value)`. Work that started runs to its end. Allocation-free.
    ///
    /// ```
    /// use jobsys::promise::{Deferred, lazy};
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// let token = jobsys::CancelToken::new();
    /// jobs.run(|ctx| {
    ///     assert_eq!(lazy(|_| 1).cancellable(&token).get(ctx), Ok(1));
    ///     token.cancel();
    ///     assert_eq!(lazy(|_| 2).cancellable(&token).get(ctx), Err(jobsys::Cancelled));
    /// });
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    fn cancellable(self, token: &CancelToken) -> Cancellable<'_, Self> {
        Cancellable { inner: self, token }
    }

    /// Starts the work now as a job of scope `s` (an eager value): it may borrow what the
    /// scope's jobs may, it is dropped unrun if the scope is cancelled before it starts, and
    /// its handle is itself `Deferred`. No allocation once the scope's pool is warm.
    ///
    /// ```
    /// use jobsys::promise::{Deferred, lazy};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let v = jobs.run(|ctx| {
    ///     ctx.scope(|s| {
    ///         let started = lazy(|_| 40).spawn(s); // running from here on
    ///         let other = 2; // ... meanwhile
    ///         started.map(|v| v + other).get(s)
    ///     })
    /// });
    /// assert_eq!(v, 42);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    fn spawn<'scope, 'env>(self, s: &Scope<'scope, 'env>) -> ScopedJobHandle<'scope, Self::Output>
    where
        Self: Send + 'scope,
        Self::Output: Send + 'scope,
    {
        s.spawn(move |s| self.get(s))
    }

    /// Starts the work now as a detached job (see [`Ctx::spawn_detached`]): one heap
    /// allocation, freed once it finished and its handle is gone.
    ///
    /// ```
    /// use jobsys::promise::{Deferred, lazy};
    /// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
    /// let v = jobs.run(|ctx| lazy(|_| "loaded").spawn_detached(ctx).get(ctx));
    /// assert_eq!(v, "loaded");
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    fn spawn_detached(self, ctx: &Ctx) -> JobHandle<Self::Output>
    where
        Self: Send + 'static,
        Self::Output: Send + 'static,
    {
        ctx.spawn_detached(move |ctx| self.get(ctx))
    }

    /// This value behind one heap allocation, with a nameable type (to store it in a struct
    /// or collect values of different types).
    ///
    /// ```
    /// use jobsys::promise::{BoxDeferred, Deferred, lazy, ready};
    /// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
    /// let steps: Vec<BoxDeferred<'static, u32>> =
    ///     vec![ready(1).boxed(), lazy(|_| 2).boxed(), ready(3).map(|v| v * 10).boxed()];
    /// let v: Vec<u32> = jobs.run(|ctx| steps.into_iter().map(|d| d.get(ctx)).collect());
    /// assert_eq!(v, [1, 2, 30]);
    /// # Ok::<(), jobsys::BuildError>(())
    /// ```
    fn boxed<'a>(self) -> BoxDeferred<'a, Self::Output>
    where
        Self: Send + 'a,
    {
        BoxDeferred(Box::new(move |ctx: &Ctx| self.get(ctx)))
    }
}

/// Lazy work: `f` runs on the getter's fiber when the value is got (see [`lazy`]).
#[derive(Clone, Copy)]
pub struct Lazy<F>(F);

impl<F> fmt::Debug for Lazy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lazy")
    }
}

/// A lazy value: a description of work that runs `f` when it is got (on the getter's fiber)
/// or submitted ([`Deferred::spawn`]). Nothing runs before. Allocation-free.
///
/// ```
/// use jobsys::promise::{Deferred, lazy};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
/// let ran = AtomicBool::new(false);
/// let work = lazy(|_| ran.store(true, Ordering::Relaxed));
/// assert!(!ran.load(Ordering::Relaxed)); // described, not started
/// jobs.run(|ctx| work.get(ctx));
/// assert!(ran.load(Ordering::Relaxed));
/// # Ok::<(), jobsys::BuildError>(())
/// ```
pub fn lazy<T, F>(f: F) -> Lazy<F>
where
    F: FnOnce(&Ctx) -> T,
{
    Lazy(f)
}

impl<T, F> Deferred for Lazy<F>
where
    F: FnOnce(&Ctx) -> T,
{
    type Output = T;
    fn get(self, ctx: &Ctx) -> T {
        (self.0)(ctx)
    }
}

/// A value already there (see [`ready`]).
#[derive(Clone, Copy, Debug)]
pub struct Ready<T>(T);

/// A deferred value that is already there: `get` returns `value`.
///
/// ```
/// use jobsys::promise::{Deferred, ready};
/// let jobs = jobsys::JobSystem::builder().workers(1).build()?;
/// assert_eq!(jobs.run(|ctx| ready("x").get(ctx)), "x");
/// # Ok::<(), jobsys::BuildError>(())
/// ```
pub fn ready<T>(value: T) -> Ready<T> {
    Ready(value)
}

impl<T> Deferred for Ready<T> {
    type Output = T;
    fn get(self, _: &Ctx) -> T {
        self.0
    }
}

/// See [`Deferred::map`].
pub struct Map<D, F> {
    inner: D,
    f: F,
}

impl<D: fmt::Debug, F> fmt::Debug for Map<D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Map").field(&self.inner).finish()
    }
}

impl<D, F, U> Deferred for Map<D, F>
where
    D: Deferred,
    F: FnOnce(D::Output) -> U,
{
    type Output = U;
    fn get(self, ctx: &Ctx) -> U {
        (self.f)(self.inner.get(ctx))
    }
}

/// See [`Deferred::and_then`].
pub struct AndThen<D, F> {
    inner: D,
    f: F,
}

impl<D: fmt::Debug, F> fmt::Debug for AndThen<D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AndThen").field(&self.inner).finish()
    }
}

impl<D, F, E> Deferred for AndThen<D, F>
where
    D: Deferred,
    E: Deferred,
    F: FnOnce(D::Output) -> E,
{
    type Output = E::Output;
    fn get(self, ctx: &Ctx) -> E::Output {
        (self.f)(self.inner.get(ctx)).get(ctx)
    }
}

/// See [`Deferred::cancellable`].
pub struct Cancellable<'t, D> {
    inner: D,
    token: &'t CancelToken,
}

impl<D: fmt::Debug> fmt::Debug for Cancellable<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellable")
            .field("inner", &self.inner)
            .field("token", self.token)
            .finish()
    }
}

impl<D: Deferred> Deferred for Cancellable<'_, D> {
    type Output = Result<D::Output, Cancelled>;
    fn get(self, ctx: &Ctx) -> Self::Output {
        if self.token.is_cancelled() {
            drop(self.inner);
            return Err(Cancelled);
        }
        Ok(self.inner.get(ctx))
    }
}

/// A deferred value behind one heap allocation (see [`Deferred::boxed`]).
pub struct BoxDeferred<'a, T>(Box<dyn FnOnce(&Ctx) -> T + Send + 'a>);

impl<T> fmt::Debug for BoxDeferred<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxDeferred")
    }
}

impl<T> Deferred for BoxDeferred<'_, T> {
    type Output = T;
    fn get(self, ctx: &Ctx) -> T {
        (self.0)(ctx)
    }
}

/// An eager scoped value: `get` is [`join`](ScopedJobHandle::join).
impl<T> Deferred for ScopedJobHandle<'_, T> {
    type Output = T;
    fn get(self, ctx: &Ctx) -> T {
        self.join(ctx)
    }
}

/// An eager detached value: `get` is [`join`](JobHandle::join).
impl<T> Deferred for JobHandle<T> {
    type Output = T;
    fn get(self, ctx: &Ctx) -> T {
        self.join(ctx)
    }
}

/// See [`both`].
#[derive(Debug)]
pub struct Both<A, B>(A, B);

/// Both values, got in parallel (through [`Ctx::join`]: `b` may run on another worker while
/// `a` runs here): `get` gives `(a, b)`. Allocation-free.
///
/// ```
/// use jobsys::promise::{Deferred, both, lazy};
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let (a, b) = jobs.run(|ctx| both(lazy(|_| 1), lazy(|_| "two")).get(ctx));
/// assert_eq!((a, b), (1, "two"));
/// # Ok::<(), jobsys::BuildError>(())
/// ```
pub fn both<A, B>(a: A, b: B) -> Both<A, B>
where
    A: Deferred,
    B: Deferred + Send,
    B::Output: Send,
{
    Both(a, b)
}

impl<A, B> Deferred for Both<A, B>
where
    A: Deferred,
    B: Deferred + Send,
    B::Output: Send,
{
    type Output = (A::Output, B::Output);
    fn get(self, ctx: &Ctx) -> Self::Output {
        let Both(a, b) = self;
        ctx.join(move |ctx| a.get(ctx), move |ctx| b.get(ctx))
    }
}

/// See [`all`].
#[derive(Debug)]
pub struct All<D, const N: usize>([D; N]);

/// All `N` values, got in parallel as jobs of a scope: `get` gives their values in the
/// order of `parts`, once all of them ended (a panic of one is re-raised then).
/// Allocation-free once the system is warm (the array stays on the stack; the jobs' records
/// are pooled).
///
/// ```
/// use jobsys::promise::{Deferred, all, lazy};
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let squares = jobs.run(|ctx| all([1u32, 2, 3].map(|i| lazy(move |_| i * i))).get(ctx));
/// assert_eq!(squares, [1, 4, 9]);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
///
/// # Panics
/// In `get`, if a part was cancelled before it started (an enclosing scope was cancelled).
pub fn all<D, const N: usize>(parts: [D; N]) -> All<D, N>
where
    D: Deferred + Send,
    D::Output: Send,
{
    All(parts)
}

impl<D, const N: usize> Deferred for All<D, N>
where
    D: Deferred + Send,
    D::Output: Send,
{
    type Output = [D::Output; N];
    fn get(self, ctx: &Ctx) -> Self::Output {
        ctx.scope(|s| {
            let mut handles = self.0.map(|d| Some(d.spawn(s)));
            let mut values: [Option<D::Output>; N] = core::array::from_fn(|_| None);
            // Newest first: the last spawned is on top of this worker's ring, so a part
            // nobody took yet runs right here instead of on a fiber of its own.
            for i in (0..N).rev() {
                values[i] = handles[i].take().map(|h| h.join(s));
            }
            values.map(|v| v.expect("every part was joined"))
        })
    }
}

/// See [`join_all`].
#[derive(Debug)]
pub struct JoinAll<D>(Vec<D>);

/// All the values of `parts`, got in parallel as jobs of a scope: `get` gives them in
/// iteration order, once all of them ended (a panic of one is re-raised then).
///
/// Allocates: `parts` is collected into a `Vec` here, and `get` allocates one `Vec` of
/// handles and one of values. For a fixed count without allocation use [`all`].
///
/// ```
/// use jobsys::promise::{Deferred, join_all, lazy};
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let lens = jobs.run(|ctx| {
///     join_all(["a", "bb", "ccc"].into_iter().map(|w| lazy(move |_| w.len()))).get(ctx)
/// });
/// assert_eq!(lens, [1, 2, 3]);
/// # Ok::<(), jobsys::BuildError>(())
/// ```
///
/// # Panics
/// In `get`, if a part was cancelled before it started (an enclosing scope was cancelled).
pub fn join_all<I>(parts: I) -> JoinAll<I::Item>
where
    I: IntoIterator,
    I::Item: Deferred + Send,
    <I::Item as Deferred>::Output: Send,
{
    JoinAll(parts.into_iter().collect())
}

impl<D> Deferred for JoinAll<D>
where
    D: Deferred + Send,
    D::Output: Send,
{
    type Output = Vec<D::Output>;
    fn get(self, ctx: &Ctx) -> Vec<D::Output> {
        ctx.scope(|s| {
            let handles: Vec<_> = self.0.into_iter().map(|d| d.spawn(s)).collect();
            handles.into_iter().map(|h| h.join(s)).collect()
        })
    }
}

/// See [`first`].
#[derive(Debug)]
pub struct First<I>(I);

/// The value of whichever part finishes first (select-any). `get` starts every part as a
/// job of a new scope; the first to finish wins, and the scope is then
/// [cancelled](Scope::cancel): parts that have not started are dropped unrun, and parts
/// still running are left to finish (they may poll [`Ctx::is_cancelled`] to stop early) and
/// their values are dropped. `get` returns the winner's value after every part ended, so the
/// parts may borrow from the caller. A part that panics cancels the others the same way, and
/// `get` re-raises its panic (the first one) once every part ended.
///
/// Allocation-free once warm: `parts` is iterated, not collected, and the handles are not
/// kept.
///
/// ```
/// use jobsys::promise::{Deferred, first, lazy};
/// let jobs = jobsys::JobSystem::builder().workers(2).build()?;
/// let v = jobs.run(|ctx| {
///     let slow = lazy(|ctx: &jobsys::Ctx| {
///         while !ctx.is_cancelled() {
///             ctx.yield_now(); // "searching" until another part wins
///         }
///         "slow"
///     });
///     let fast = lazy(|_: &jobsys::Ctx| "fast");
///     first([slow.boxed(), fast.boxed()]).get(ctx)
/// });
/// assert_eq!(v, "fast");
/// # Ok::<(), jobsys::BuildError>(())
/// ```
///
/// # Panics
/// In `get`, if no part finished: `parts` was empty, or every part was cancelled before it
/// started (an enclosing scope was cancelled).
pub fn first<I>(parts: I) -> First<I>
where
    I: IntoIterator,
    I::Item: Deferred + Send,
    <I::Item as Deferred>::Output: Send,
{
    First(parts)
}

impl<I> Deferred for First<I>
where
    I: IntoIterator,
    I::Item: Deferred + Send,
    <I::Item as Deferred>::Output: Send,
{
    type Output = <I::Item as Deferred>::Output;
    fn get(self, ctx: &Ctx) -> Self::Output {
        let won = AtomicBool::new(false);
        let value = SpinLock::new(None);
        ctx.scope(|s| {
            let (won, value) = (&won, &value);
            for part in self.0 {
                s.spawn(move |s| match catch(move || part.get(s)) {
                    Ok(v) => {
                        if !won.swap(true, Ordering::AcqRel) {
                            *value.lock() = Some(v);
                            s.cancel();
                        }
                    }
                    // A panicking part ends the race too (parts that wait to be cancelled
                    // would otherwise never end); the scope re-raises its panic.
                    Err(payload) => {
                        s.cancel();
                        resume_unwind(payload)
                    }
                });
            }
        });
        value.into_inner().expect(
            "promise::first: no part finished (none given, or all were cancelled before they \
             started)",
        )
    }
}
