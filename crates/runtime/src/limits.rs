//! Per-app resource limits, with the platform defaults.

use std::time::Duration;

/// Limits applied to every request an app handles.
///
/// A guest that exceeds one has its own request failed; nothing else is affected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum linear memory of one instance, in bytes.
    pub memory_bytes: u64,
    /// Guest CPU time per request: time spent executing Wasm, not waiting on the host.
    pub cpu_time: Duration,
    /// Wall-clock time per request, from the start of the guest until its last byte.
    pub wall_time: Duration,
    /// Largest request body the guest may read, enforced while streaming.
    pub max_request_body_bytes: u64,
    /// Outbound HTTP requests one request may make.
    pub max_outbound_requests: u32,
    /// Instances of the app that may run at once; `None`: no cap of its own.
    pub max_concurrent: Option<u32>,
}

impl Limits {
    /// 128 MiB of memory, 50 ms of CPU, 60 s of wall time, 100 MiB request bodies,
    /// 32 outbound requests.
    pub const DEFAULT: Limits = Limits {
        memory_bytes: 128 << 20,
        cpu_time: Duration::from_millis(50),
        wall_time: Duration::from_secs(60),
        max_request_body_bytes: 100 << 20,
        max_outbound_requests: 32,
        max_concurrent: None,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
