//! The stepped backend (feature `simulation`): std's atomics with a simulation step before
//! every operation — the points where the deterministic scheduler of `crate::sim` may switch
//! threads — and parks, unparks, spins, yields and spawns that go to the simulation when the
//! calling thread belongs to one, to std's otherwise. Outside a simulation a step is one
//! thread-local read. `compare_exchange_weak` also fails spuriously now and then under
//! simulation, as the hardware may.

#![allow(
    dead_code,
    reason = "mirrors std's atomics; each type is used through a different subset"
)]

use std::sync::atomic;
pub(crate) use std::sync::atomic::Ordering;

#[inline]
fn step() {
    crate::sim::step();
}

/// Whether this weak CAS fails spuriously (a seeded 1 in 16, only under simulation).
#[inline]
fn spurious() -> bool {
    crate::sim::random().is_some_and(|r| r.is_multiple_of(16))
}

/// A fence, after a step.
#[inline]
pub(crate) fn fence(order: Ordering) {
    step();
    atomic::fence(order);
}

macro_rules! stepped_common {
    ($name:ident, $t:ty) => {
        impl $name {
            #[inline]
            pub(crate) fn load(&self, order: Ordering) -> $t {
                step();
                self.0.load(order)
            }

            #[inline]
            pub(crate) fn store(&self, value: $t, order: Ordering) {
                step();
                self.0.store(value, order)
            }

            #[inline]
            pub(crate) fn swap(&self, value: $t, order: Ordering) -> $t {
                step();
                self.0.swap(value, order)
            }

            #[inline]
            pub(crate) fn compare_exchange(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                step();
                self.0.compare_exchange(current, new, success, failure)
            }

            #[inline]
            pub(crate) fn compare_exchange_weak(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                step();
                if spurious() {
                    return Err(self.0.load(failure));
                }
                self.0.compare_exchange_weak(current, new, success, failure)
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

macro_rules! stepped_int {
    ($($name:ident $t:ty),*) => {$(
        /// A std atomic whose every operation is a simulation step.
        #[repr(transparent)]
        #[derive(Default)]
        pub(crate) struct $name(atomic::$name);

        impl $name {
            #[inline]
            pub(crate) const fn new(value: $t) -> Self {
                Self(atomic::$name::new(value))
            }

            #[inline]
            pub(crate) fn fetch_add(&self, value: $t, order: Ordering) -> $t {
                step();
                self.0.fetch_add(value, order)
            }

            #[inline]
            pub(crate) fn fetch_sub(&self, value: $t, order: Ordering) -> $t {
                step();
                self.0.fetch_sub(value, order)
            }

            #[inline]
            pub(crate) fn fetch_or(&self, value: $t, order: Ordering) -> $t {
                step();
                self.0.fetch_or(value, order)
            }

            #[inline]
            pub(crate) fn fetch_and(&self, value: $t, order: Ordering) -> $t {
                step();
                self.0.fetch_and(value, order)
            }

            /// As std's: a loop of weak CASes, each a step.
            pub(crate) fn fetch_update(
                &self,
                set_order: Ordering,
                fetch_order: Ordering,
                mut f: impl FnMut($t) -> Option<$t>,
            ) -> Result<$t, $t> {
                let mut prev = self.load(fetch_order);
                while let Some(next) = f(prev) {
                    match self.compare_exchange_weak(prev, next, set_order, fetch_order) {
                        Ok(x) => return Ok(x),
                        Err(now) => prev = now,
                    }
                }
                Err(prev)
            }

            #[inline]
            pub(crate) fn fetch_max(&self, value: $t, order: Ordering) -> $t {
                step();
                self.0.fetch_max(value, order)
            }

            #[inline]
            pub(crate) fn fetch_min(&self, value: $t, order: Ordering) -> $t {
                step();
                self.0.fetch_min(value, order)
            }
        }

        stepped_common!($name, $t);
    )*};
}

stepped_int!(AtomicIsize isize, AtomicU8 u8, AtomicU32 u32, AtomicU64 u64, AtomicUsize usize);

/// A std `AtomicBool` whose every operation is a simulation step.
#[repr(transparent)]
#[derive(Default)]
pub(crate) struct AtomicBool(atomic::AtomicBool);

impl AtomicBool {
    #[inline]
    pub(crate) const fn new(value: bool) -> Self {
        Self(atomic::AtomicBool::new(value))
    }

    #[inline]
    pub(crate) fn fetch_or(&self, value: bool, order: Ordering) -> bool {
        step();
        self.0.fetch_or(value, order)
    }

    #[inline]
    pub(crate) fn fetch_and(&self, value: bool, order: Ordering) -> bool {
        step();
        self.0.fetch_and(value, order)
    }
}

stepped_common!(AtomicBool, bool);

/// A std `AtomicPtr` whose every operation is a simulation step.
#[repr(transparent)]
pub(crate) struct AtomicPtr<T>(atomic::AtomicPtr<T>);

impl<T> AtomicPtr<T> {
    #[inline]
    pub(crate) const fn new(value: *mut T) -> Self {
        Self(atomic::AtomicPtr::new(value))
    }

    #[inline]
    pub(crate) fn load(&self, order: Ordering) -> *mut T {
        step();
        self.0.load(order)
    }

    #[inline]
    pub(crate) fn store(&self, value: *mut T, order: Ordering) {
        step();
        self.0.store(value, order)
    }

    #[inline]
    pub(crate) fn swap(&self, value: *mut T, order: Ordering) -> *mut T {
        step();
        self.0.swap(value, order)
    }

    #[inline]
    pub(crate) fn compare_exchange(
        &self,
        current: *mut T,
        new: *mut T,
        success: Ordering,
        failure: Ordering,
    ) -> Result<*mut T, *mut T> {
        step();
        self.0.compare_exchange(current, new, success, failure)
    }

    #[inline]
    pub(crate) fn compare_exchange_weak(
        &self,
        current: *mut T,
        new: *mut T,
        success: Ordering,
        failure: Ordering,
    ) -> Result<*mut T, *mut T> {
        step();
        if spurious() {
            return Err(self.0.load(failure));
        }
        self.0.compare_exchange_weak(current, new, success, failure)
    }
}

impl<T> core::fmt::Debug for AtomicPtr<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.0, f)
    }
}

impl<T> Default for AtomicPtr<T> {
    fn default() -> Self {
        Self::new(core::ptr::null_mut())
    }
}

/// Spin hint used by every busy-wait in the crate: in a simulation, the baton moves on.
#[inline]
pub(crate) fn spin_loop() {
    if crate::sim::spin() {
        return;
    }
    std::hint::spin_loop();
}

/// The simulation's threads, parking and yielding for the threads of a simulation; std's for
/// the others (see `shim::thread`).
pub(crate) mod thread {
    pub(crate) use std::thread::{Thread, current};
    use std::time::Duration;

    /// Parks until unparked (spuriously too: callers loop).
    #[inline]
    pub(crate) fn park() {
        if crate::sim::park(None) {
            return;
        }
        std::thread::park();
    }

    /// Parks until unparked or `timeout` passes (virtual time in a simulation).
    #[inline]
    pub(crate) fn park_timeout(timeout: Duration) {
        if crate::sim::park(Some(timeout)) {
            return;
        }
        std::thread::park_timeout(timeout);
    }

    /// A sleeping worker's park: at most `timeout`, which is the watchdog unless `timer`
    /// (a timer is armed). A simulation has no watchdog, so a lost wake-up there is a
    /// deadlock it reports instead of a stall it hides.
    #[inline]
    pub(crate) fn park_sleeper(timeout: Duration, timer: bool) {
        if crate::sim::park(timer.then_some(timeout)) {
            return;
        }
        park_timeout(timeout);
    }

    /// Wakes `thread` if it is parked, or makes its next park return at once.
    #[inline]
    pub(crate) fn unpark(thread: &Thread) {
        if crate::sim::unpark(thread) {
            return;
        }
        thread.unpark();
    }

    /// [`unpark`] for a worker's thread.
    #[inline]
    pub(crate) fn unpark_worker(thread: &std::thread::Thread) {
        unpark(thread);
    }

    /// Lets other threads run (the simulation's scheduler picks one of its others).
    #[inline]
    pub(crate) fn yield_now() {
        if crate::sim::spin() {
            return;
        }
        std::thread::yield_now();
    }

    /// Spawns a thread: one of the caller's simulation, if it belongs to one.
    pub(crate) fn spawn<F: FnOnce() + Send + 'static>(
        builder: std::thread::Builder,
        f: F,
    ) -> std::io::Result<JoinHandle> {
        crate::sim::spawn_with(builder, f)
    }

    /// A spawned thread's handle.
    pub(crate) type JoinHandle = crate::sim::JoinHandle<()>;
}
