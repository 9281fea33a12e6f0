//! Address-hashed, spin-locked list heads: the process-wide wait tables of the counters
//! (`counter/core.rs`) and of the sync primitives (`park/`).

use crate::shim::SpinLock;
use core::ptr;
use crossbeam_utils::CachePadded;

/// Buckets per table; picked (contention is per bucket and waits are rare next to the
/// operations that do not wait), tune with data.
pub(crate) const BUCKETS: usize = 64;

/// `BUCKETS` intrusive lists of `N`, each under its own spin lock, picked by address.
pub(crate) struct Buckets<N> {
    heads: [CachePadded<SpinLock<*mut N>>; BUCKETS],
}

// SAFETY: the node pointers are only dereferenced under their bucket's lock, by the wait and
// wake protocols that own them (counter/README.md, park/mod.rs).
unsafe impl<N> Send for Buckets<N> {}
// SAFETY: as above.
unsafe impl<N> Sync for Buckets<N> {}

impl<N> Buckets<N> {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            heads: [const { CachePadded::new(SpinLock::new(ptr::null_mut())) }; BUCKETS],
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            heads: core::array::from_fn(|_| CachePadded::new(SpinLock::new(ptr::null_mut()))),
        }
    }

    /// The list that waits on `addr` live in. Addresses in one 8-byte word share a bucket
    /// (`park/` relies on it: a primitive's two keys, `a` and `a + 1`, share one lock).
    #[inline]
    pub(crate) fn bucket(&self, addr: usize) -> &SpinLock<*mut N> {
        // A simulation replays exactly only if nothing depends on addresses or on other
        // simulations: each one keeps all of its keys in a bucket of its own.
        #[cfg(feature = "simulation")]
        if let Some(b) = crate::sim::bucket() {
            return &self.heads[b % BUCKETS];
        }
        let h = (addr >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
        &self.heads[h % BUCKETS]
    }
}

/// Defines `fn $name() -> &'static Buckets<$node>`: a plain static, or under loom a
/// `lazy_static` (loom's locks have no `const` constructor).
macro_rules! static_buckets {
    ($vis:vis fn $name:ident() -> $node:ty) => {
        #[cfg(not(loom))]
        $vis fn $name() -> &'static $crate::counter::Buckets<$node> {
            static TABLE: $crate::counter::Buckets<$node> = $crate::counter::Buckets::new();
            &TABLE
        }

        #[cfg(loom)]
        $vis fn $name() -> &'static $crate::counter::Buckets<$node> {
            loom::lazy_static! {
                static ref TABLE: $crate::counter::Buckets<$node> = $crate::counter::Buckets::new();
            }
            &TABLE
        }
    };
}
pub(crate) use static_buckets;
