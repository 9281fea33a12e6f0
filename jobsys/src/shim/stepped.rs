//! std's atomics with a simulation step before every operation (feature `simulation`): the
//! points where the deterministic scheduler of `crate::sim` may switch threads. Outside a
//! simulation a step is one thread-local read. `compare_exchange_weak` also fails spuriously
//! now and then under simulation, as the hardware may.

#![allow(
    dead_code,
    reason = "mirrors std's atomics; each type is used through a different subset"
)]

use std::sync::atomic::{self, Ordering};

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
