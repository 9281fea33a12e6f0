//! Non-unix targets: no handler; an overflow faults on the guard page as the OS reports it.

/// Nothing to install here.
pub(crate) fn on_worker_start() {}
