//! Which request thread this is. A server that runs a runtime per core marks each of
//! its threads ([`enter_request_thread`]), so what keeps per-thread state (an
//! origin's connection pool) keeps a request, its subrequests and their connections
//! on one thread.

use std::cell::Cell;

/// The most request threads with state of their own; more share slot 0's.
pub const MAX_REQUEST_THREADS: usize = 64;

thread_local! {
    static REQUEST_THREAD: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as request thread `index` (from 1; 0 is every other
/// thread).
pub fn enter_request_thread(index: usize) {
    REQUEST_THREAD.with(|t| t.set(index));
}

/// The calling thread's request-thread index (0: not a request thread).
pub(crate) fn current() -> usize {
    REQUEST_THREAD.with(Cell::get)
}
