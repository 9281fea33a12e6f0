//! `UnsafeCell` with loom's closure-shaped API, so the same code compiles under both.

/// A cell whose contents are accessed through raw pointers inside closures.
///
/// Under loom every access is tracked; under std this is `core::cell::UnsafeCell`.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))] core::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    crate::shim::loom_const! {
        pub(crate) fn new(v: T) -> Self {
            #[cfg(loom)]
            {
                Self(loom::cell::UnsafeCell::new(v))
            }
            #[cfg(not(loom))]
            {
                Self(core::cell::UnsafeCell::new(v))
            }
        }
    }

    /// Reads through a shared pointer.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(loom)]
        {
            self.0.with(f)
        }
        #[cfg(not(loom))]
        {
            f(self.0.get())
        }
    }

    /// Writes through a unique pointer.
    /// Unwraps the value.
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }

    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        {
            self.0.with_mut(f)
        }
        #[cfg(not(loom))]
        {
            f(self.0.get())
        }
    }
}
