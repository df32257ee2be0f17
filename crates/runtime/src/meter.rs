//! Per-request meters: guest CPU time (via call hooks and epoch ticks) and linear memory.

use std::sync::LazyLock;
use std::time::Duration;

use wasmtime::{CallHook, ResourceLimiter, UpdateDeadline};

/// A limit a guest ran into; raised as the trap's error so the outcome names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("guest CPU time limit of {limit_ms} ms exceeded")]
    CpuTime { limit_ms: u128 },
    #[error("memory limit of {limit} bytes exceeded (the guest asked for {requested} bytes)")]
    Memory { limit: u64, requested: u64 },
}

/// The clock of every CPU meter: the CPU's time-stamp counter where it is invariant
/// (an `rdtsc` and no `clock_gettime`: the hooks below read it twice per host call,
/// which with the OS clock was ~5 % of a proxied request's server CPU), the OS's
/// monotonic clock elsewhere.
static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// Calibrates the clock (a few milliseconds, once per process), so the first request
/// does not.
pub(crate) fn calibrate_clock() {
    LazyLock::force(&CLOCK);
}

/// Counts time spent executing Wasm: from entering Wasm (or returning to it from the
/// host) until leaving it (or calling the host). Time the guest waits on host I/O is
/// not counted.
pub(crate) struct CpuMeter {
    /// Clock ticks inside Wasm, converted to time when read.
    used_ticks: u64,
    /// The clock's raw reading when the guest last entered Wasm, if it is inside.
    entered: Option<u64>,
    limit: Duration,
}

impl CpuMeter {
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            used_ticks: 0,
            entered: None,
            limit,
        }
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    pub(crate) fn used(&self) -> Duration {
        let running = self.entered.map_or(0, |t| CLOCK.raw().saturating_sub(t));
        CLOCK.delta(0, self.used_ticks + running)
    }

    pub(crate) fn on_call_hook(&mut self, hook: CallHook) {
        match hook {
            CallHook::CallingWasm | CallHook::ReturningFromHost => self.entered = Some(CLOCK.raw()),
            CallHook::ReturningFromWasm | CallHook::CallingHost => {
                if let Some(t) = self.entered.take() {
                    self.used_ticks += CLOCK.raw().saturating_sub(t);
                }
            }
        }
    }

    /// Called once per epoch tick while the guest runs. Traps past the limit, otherwise
    /// yields so a busy guest cannot hog an executor thread.
    ///
    /// Charges nothing itself: Wasmtime runs this callback inside the `CallingHost` /
    /// `ReturningFromHost` hooks of the epoch libcall, so the interval up to the tick
    /// is already closed and counted, and the time spent yielded is (rightly) not.
    /// Charging a tick here billed busy guests about twice their real CPU time.
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

    #[test]
    fn cpu_time_counts_only_time_inside_wasm() {
        let mut meter = CpuMeter::new(Duration::from_secs(10));
        meter.on_call_hook(CallHook::CallingWasm);
        std::thread::sleep(Duration::from_millis(20));
        meter.on_call_hook(CallHook::CallingHost);
        let in_wasm = meter.used();
        assert!(in_wasm >= Duration::from_millis(20));
        // Waiting on the host is not counted.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(meter.used(), in_wasm);
        meter.on_call_hook(CallHook::ReturningFromHost);
        std::thread::sleep(Duration::from_millis(5));
        meter.on_call_hook(CallHook::ReturningFromWasm);
        assert!(meter.used() >= in_wasm + Duration::from_millis(5));
        assert!(meter.used() < in_wasm + Duration::from_millis(25));
    }

    #[test]
    fn epoch_ticks_charge_nothing_and_trap_past_the_limit() {
        let mut meter = CpuMeter::new(Duration::from_millis(20));
        // As Wasmtime calls them: the epoch libcall is wrapped in host-call hooks.
        let tick = |meter: &mut CpuMeter| {
            meter.on_call_hook(CallHook::CallingHost);
            let result = meter.on_epoch_tick();
            meter.on_call_hook(CallHook::ReturningFromHost);
            result
        };
        meter.on_call_hook(CallHook::CallingWasm);
        for _ in 0..50 {
            assert!(matches!(tick(&mut meter), Ok(UpdateDeadline::Yield(1))));
        }
        // Fifty ticks in a few microseconds of real time charge a few microseconds.
        assert!(
            meter.used() < Duration::from_millis(5),
            "{:?}",
            meter.used()
        );
        std::thread::sleep(Duration::from_millis(25));
        let Err(err) = tick(&mut meter) else {
            panic!("25 ms inside Wasm is past the 20 ms limit");
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
