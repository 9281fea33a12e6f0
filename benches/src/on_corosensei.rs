//! W1 on raw corosensei: one fiber whose body loops "suspend back to the caller".

use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::time::{Duration, Instant};

/// A coroutine that yields how many times it has been resumed, forever.
pub struct Switcher {
    coro: Coroutine<(), u64, ()>,
    resumes: u64,
}

impl Switcher {
    /// A fresh coroutine on corosensei's default stack.
    pub fn new() -> Self {
        let coro = Coroutine::new(|y: &Yielder<(), u64>, ()| {
            let mut i = 0u64;
            loop {
                i += 1;
                y.suspend(i);
            }
        });
        Self { coro, resumes: 0 }
    }

    /// Resumes the coroutine `n` times (each a resume + suspend round trip); returns the time
    /// taken. Panics if the coroutine's count disagrees with the caller's.
    pub fn round_trips(&mut self, n: u64) -> Duration {
        let mut last = 0;
        let t = Instant::now();
        for _ in 0..n {
            match self.coro.resume(()) {
                CoroutineResult::Yield(i) => last = i,
                CoroutineResult::Return(()) => unreachable!("the W1 coroutine never returns"),
            }
        }
        let d = t.elapsed();
        self.resumes += n;
        assert_eq!(
            last, self.resumes,
            "W1: the coroutine was resumed a different number of times"
        );
        d
    }
}

impl Default for Switcher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Switcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switcher")
            .field("resumes", &self.resumes)
            .finish()
    }
}
