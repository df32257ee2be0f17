//! Request threads: one single-threaded runtime per core, each serving the connections
//! handed to it. A connection, its requests, their guests, their subrequests and the
//! origin connections those use (each thread has its own pools) stay on one thread,
//! so a request never wakes another thread; on a multi-threaded runtime a proxied
//! request hopped between workers about once per request (BENCHMARKS.md).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// Tasks a request thread runs between two looks for new socket events (tokio's
/// default is 61). A guest computing for long yields every epoch tick (1 ms) and is
/// at once runnable again, so the run queue never empties: at 61, requests on the
/// thread's other connections waited ~61 of its slices to be noticed (a cheap request
/// beside two 40 ms guests: p99 41 ms, 1,700 req/s); at 16, p99 7.6 ms and 24,000
/// req/s, with plain traffic costing the same (`bench/reqcost.sh`, mixed load).
const EVENT_INTERVAL: u32 = 16;

/// Work for a request thread, run in its runtime (it spawns the connection's task).
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The process's request threads, started on first use and kept for its lifetime;
/// every listener shares them.
pub(crate) struct RequestThreads {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

static THREADS: OnceLock<RequestThreads> = OnceLock::new();

impl RequestThreads {
    /// The request threads, `n` of them (the first call decides); `None` for 0: serve
    /// on the caller's runtime.
    pub(crate) fn get(n: usize) -> Option<&'static RequestThreads> {
        if n == 0 {
            return None;
        }
        Some(THREADS.get_or_init(|| start(n.min(verge_runtime::MAX_REQUEST_THREADS))))
    }

    /// Runs `job` on the next thread, in turn.
    pub(crate) fn run(&self, job: Job) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        // A thread's receiver lives as long as the process.
        let _ = self.senders[i].send(job);
    }
}

fn start(n: usize) -> RequestThreads {
    let senders = (0..n)
        .map(|i| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            std::thread::Builder::new()
                .name(format!("verge-request-{i}"))
                .spawn(move || {
                    verge_runtime::enter_request_thread(i + 1);
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .event_interval(EVENT_INTERVAL)
                        .build()
                        .expect("a single-threaded tokio runtime starts");
                    runtime.block_on(async move {
                        while let Some(job) = rx.recv().await {
                            job();
                        }
                    });
                })
                .expect("starting a request thread");
            tx
        })
        .collect();
    RequestThreads {
        senders,
        next: AtomicUsize::new(0),
    }
}
