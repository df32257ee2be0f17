//! Per-request meters: guest CPU time (the instance's polls, checked at epoch ticks)
//! and linear memory.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, UpdateDeadline};

/// A limit a guest ran into; raised as the trap's error so the outcome names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("guest CPU time limit of {limit_ms} ms exceeded")]
    CpuTime { limit_ms: u128 },
    #[error("memory limit of {limit} bytes exceeded (the guest asked for {requested} bytes)")]
    Memory { limit: u64, requested: u64 },
}

/// Counts the CPU time of one request's instance: the time its future is being
/// polled (instantiation, the guest's code, and the host calls it makes without
/// waiting), not the time it waits for I/O, a timer or its turn on the thread.
///
/// Polls are timed by [`PollTimer`] around the instance's future rather than by
/// Wasmtime's call hooks: a hook costs two clock reads on every host call (a hello
/// makes about 25), a poll boundary two per wait, and the time the hooks left out
/// was the host's own work on the guest's behalf, which the guest did cause.
pub(crate) struct CpuMeter {
    clock: Arc<PollClock>,
    limit: Duration,
}

impl CpuMeter {
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            clock: Arc::new(PollClock::new()),
            limit,
        }
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    pub(crate) fn used(&self) -> Duration {
        self.clock.used()
    }

    /// What times the instance's future for this meter (taken before the future
    /// borrows the store this meter lives in).
    pub(crate) fn timer(&self) -> PollTimer {
        PollTimer(self.clock.clone())
    }

    /// Called once per epoch tick while the guest runs. Traps past the limit, otherwise
    /// yields so a busy guest cannot hog an executor thread. The time spent yielded
    /// is between polls, so it is (rightly) not charged.
    pub(crate) fn on_epoch_tick(&mut self) -> wasmtime::Result<UpdateDeadline> {
        if self.used() > self.limit {
            return Err(LimitExceeded::CpuTime {
                limit_ms: self.limit.as_millis(),
            }
            .into());
        }
        Ok(UpdateDeadline::Yield(1))
    }
}

/// Time spent inside polls of one future. Atomics rather than a `Cell` because
/// the future may move between threads (`--threads 0`); a poll runs on one thread
/// at a time, so plain loads and stores suffice.
struct PollClock {
    origin: Instant,
    /// Nanoseconds inside completed polls.
    used: AtomicU64,
    /// Nanoseconds from `origin` to the start of the running poll, plus one;
    /// 0 between polls.
    running_since: AtomicU64,
}

impl PollClock {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            used: AtomicU64::new(0),
            running_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64 + 1
    }

    fn used(&self) -> Duration {
        let mut used = self.used.load(Ordering::Relaxed);
        let since = self.running_since.load(Ordering::Relaxed);
        if since != 0 {
            used += self.now().saturating_sub(since);
        }
        Duration::from_nanos(used)
    }
}

/// Charges the polls of one future to a [`CpuMeter`].
pub(crate) struct PollTimer(Arc<PollClock>);

impl PollTimer {
    pub(crate) fn time<F: Future + Unpin>(self, future: F) -> Metered<F> {
        Metered {
            inner: future,
            clock: self.0,
        }
    }
}

/// A future whose polls are charged to a [`CpuMeter`]. `F` is `Unpin` (pin an
/// `async` block with `std::pin::pin!` first), which spares a pin projection.
pub(crate) struct Metered<F> {
    inner: F,
    clock: Arc<PollClock>,
}

impl<F: Future + Unpin> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = self.clock.now();
        self.clock.running_since.store(start, Ordering::Relaxed);
        let result = Pin::new(&mut self.inner).poll(cx);
        let clock = &self.clock;
        let end = clock.now();
        clock.running_since.store(0, Ordering::Relaxed);
        clock
            .used
            .fetch_add(end.saturating_sub(start), Ordering::Relaxed);
        result
    }
}

/// Enforces the per-app memory limit and remembers the peak.
pub(crate) struct MemoryMeter {
    limit: u64,
    pub(crate) peak: u64,
}

impl MemoryMeter {
    pub(crate) fn new(limit: u64) -> Self {
        Self { limit, peak: 0 }
    }
}

/// Tables are small in practice; this only stops a guest from growing one without end.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryMeter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.limit {
            return Err(LimitExceeded::Memory {
                limit: self.limit,
                requested: desired,
            }
            .into());
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `future` once with a waker that does nothing.
    fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        Pin::new(future).poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn cpu_time_counts_polls_and_not_the_waits_between_them() {
        let meter = CpuMeter::new(Duration::from_secs(10));
        let mut polls = 0;
        let mut future = meter.timer().time(std::future::poll_fn(|_| {
            polls += 1;
            // Busy inside the poll: 20 ms, then 5 ms.
            std::thread::sleep(Duration::from_millis(if polls == 1 { 20 } else { 5 }));
            if polls == 1 {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }));
        assert!(poll_once(&mut future).is_pending());
        let first = meter.used();
        assert!(first >= Duration::from_millis(20), "{first:?}");
        // Waiting between polls is not counted.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(meter.used(), first);
        assert!(poll_once(&mut future).is_ready());
        assert!(meter.used() >= first + Duration::from_millis(5));
        assert!(meter.used() < first + Duration::from_millis(25));
    }

    #[test]
    fn an_epoch_tick_inside_a_poll_traps_past_the_limit() {
        let meter = CpuMeter::new(Duration::from_millis(20));
        // What the epoch callback sees from inside the instance's poll.
        let mut inside = CpuMeter {
            clock: meter.clock.clone(),
            limit: meter.limit,
        };
        let mut future = meter.timer().time(std::future::poll_fn(|_| {
            for _ in 0..50 {
                assert!(matches!(
                    inside.on_epoch_tick(),
                    Ok(UpdateDeadline::Yield(1))
                ));
            }
            // Fifty ticks in a few microseconds charge a few microseconds.
            assert!(
                inside.used() < Duration::from_millis(5),
                "{:?}",
                inside.used()
            );
            std::thread::sleep(Duration::from_millis(25));
            Poll::Ready(inside.on_epoch_tick())
        }));
        let Poll::Ready(Err(err)) = poll_once(&mut future) else {
            panic!("25 ms inside a poll is past the 20 ms limit");
        };
        assert_eq!(
            err.downcast_ref::<LimitExceeded>(),
            Some(&LimitExceeded::CpuTime { limit_ms: 20 })
        );
    }

    #[test]
    fn memory_growth_past_the_limit_fails_and_the_peak_is_kept() {
        let mut meter = MemoryMeter::new(1 << 20);
        assert!(meter.memory_growing(0, 64 << 10, None).unwrap());
        assert!(meter.memory_growing(64 << 10, 1 << 20, None).unwrap());
        let err = meter.memory_growing(1 << 20, 2 << 20, None).unwrap_err();
        assert_eq!(
            err.downcast_ref::<LimitExceeded>(),
            Some(&LimitExceeded::Memory {
                limit: 1 << 20,
                requested: 2 << 20
            })
        );
        assert_eq!(meter.peak, 1 << 20);
    }
}
