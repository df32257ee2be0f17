//! Per-request meters: guest CPU time (via call hooks and epoch ticks) and linear memory.

use std::time::{Duration, Instant};

use wasmtime::{CallHook, ResourceLimiter, UpdateDeadline};

/// A limit a guest ran into; raised as the trap's error so the outcome names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("guest CPU time limit of {limit_ms} ms exceeded")]
    CpuTime { limit_ms: u128 },
    #[error("memory limit of {limit} bytes exceeded (the guest asked for {requested} bytes)")]
    Memory { limit: u64, requested: u64 },
}

/// Counts time spent executing Wasm: from entering Wasm (or returning to it from the
/// host) until leaving it (or calling the host). Time the guest waits on host I/O is
/// not counted.
pub(crate) struct CpuMeter {
    used: Duration,
    entered: Option<Instant>,
    limit: Duration,
    tick: Duration,
}

impl CpuMeter {
    pub(crate) fn new(limit: Duration, tick: Duration) -> Self {
        Self {
            used: Duration::ZERO,
            entered: None,
            limit,
            tick,
        }
    }

    pub(crate) fn used(&self) -> Duration {
        self.used + self.entered.map_or(Duration::ZERO, |t| t.elapsed())
    }

    pub(crate) fn on_call_hook(&mut self, hook: CallHook) {
        match hook {
            CallHook::CallingWasm | CallHook::ReturningFromHost => {
                self.entered = Some(Instant::now())
            }
            CallHook::ReturningFromWasm | CallHook::CallingHost => {
                if let Some(t) = self.entered.take() {
                    self.used += t.elapsed();
                }
            }
        }
    }

    /// Called once per epoch tick while the guest runs. Traps past the limit, otherwise
    /// yields so a busy guest cannot hog an executor thread.
    pub(crate) fn on_epoch_tick(&mut self) -> wasmtime::Result<UpdateDeadline> {
        // After a yield we cannot know when the guest resumed; it resumed within the
        // last tick, so charge one tick.
        self.used += self.entered.take().map_or(self.tick, |t| t.elapsed());
        if self.used > self.limit {
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
