//! How a request ended, and what it cost.

use std::time::Duration;

use wasmtime::Trap;

use crate::meter::LimitExceeded;

/// Why a request failed. Each kind maps to one HTTP status (see [`Failure::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The guest trapped: a panic, an `unreachable`, a stack overflow, an out-of-bounds
    /// access… → 500.
    Trap { reason: String },
    /// The guest asked for more linear memory than its limit → 500.
    MemoryLimit,
    /// The guest used up its CPU time → 503.
    CpuLimit,
    /// The request took longer than its wall-time limit → 504.
    WallTimeLimit,
    /// The request body was larger than allowed → 413.
    RequestBodyTooLarge,
    /// The guest answered with a `wasi:http` error code instead of a response → 500.
    GuestError { code: String },
    /// The guest returned without setting a response → 500.
    NoResponse,
    /// The guest answered with a `1xx` status, which only an interim response may
    /// have (HTTP has no final `1xx`; a `101` would hand the client's connection
    /// over) → 500.
    InterimStatus { status: u16 },
    /// Every instance slot was busy; the guest never started → 503.
    Overloaded,
}

impl Failure {
    /// The status the client gets, if the response had not started yet.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Failure::CpuLimit | Failure::Overloaded => S::SERVICE_UNAVAILABLE,
            Failure::WallTimeLimit => S::GATEWAY_TIMEOUT,
            Failure::RequestBodyTooLarge => S::PAYLOAD_TOO_LARGE,
            Failure::Trap { .. }
            | Failure::MemoryLimit
            | Failure::GuestError { .. }
            | Failure::NoResponse
            | Failure::InterimStatus { .. } => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// Short machine-readable name, as written in the access log's `outcome`.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Trap { .. } => "trap",
            Failure::MemoryLimit => "limit:memory",
            Failure::CpuLimit => "limit:cpu",
            Failure::WallTimeLimit => "limit:wall_time",
            Failure::RequestBodyTooLarge => "limit:request_body",
            Failure::GuestError { .. } => "guest_error",
            Failure::NoResponse => "no_response",
            Failure::InterimStatus { .. } => "interim_status",
            Failure::Overloaded => "overloaded",
        }
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            Failure::Trap { reason } => format!("the guest trapped: {reason}"),
            Failure::MemoryLimit => "the guest exceeded its memory limit".into(),
            Failure::CpuLimit => "the guest exceeded its CPU time limit".into(),
            Failure::WallTimeLimit => "the request exceeded its wall-time limit".into(),
            Failure::RequestBodyTooLarge => "the request body is larger than allowed".into(),
            Failure::GuestError { code } => format!("the guest answered with an error: {code}"),
            Failure::NoResponse => "the guest returned without sending a response".into(),
            Failure::InterimStatus { status } => format!(
                "the guest answered with status {status}, which only an interim response may have; a response's status is 200 to 599"
            ),
            Failure::Overloaded => {
                "the node is running as many instances as it may; try again shortly".into()
            }
        }
    }

    /// Classifies an error raised by instantiating or calling the guest.
    pub(crate) fn from_guest_error(err: &wasmtime::Error) -> Failure {
        if let Some(limit) = err.downcast_ref::<LimitExceeded>() {
            return match limit {
                LimitExceeded::CpuTime { .. } => Failure::CpuLimit,
                LimitExceeded::Memory { .. } => Failure::MemoryLimit,
            };
        }
        if err
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            return Failure::Overloaded;
        }
        let reason = match err.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => "stack overflow".to_string(),
            Some(Trap::UnreachableCodeReached) => {
                "unreachable code reached (a Rust guest panicked or aborted)".to_string()
            }
            Some(trap) => trap.to_string(),
            None => format!("{err:#}"),
        };
        Failure::Trap { reason }
    }
}

/// An error and its causes, one per line, with the Wasm backtrace (which Wasmtime
/// attaches as a cause) but never a host Rust backtrace: those say nothing about the
/// guest, run to tens of kilobytes, and capturing one costs milliseconds.
pub(crate) fn error_chain(err: &wasmtime::Error) -> String {
    use std::fmt::Write;
    let mut text = err.to_string();
    for (i, cause) in err.chain().skip(1).enumerate() {
        if i == 0 {
            text.push_str("\n\nCaused by:");
        }
        let _ = write!(text, "\n    {i}: {cause}");
    }
    text
}

/// What a request cost and how it ended; written to the access log.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcome: Result<(), Failure>,
    /// Time spent executing guest code.
    pub guest_cpu: Duration,
    /// Largest linear memory the instance reached, in bytes.
    pub peak_memory_bytes: u64,
    /// The full error chain with the Wasm backtrace, when the guest failed.
    pub detail: Option<String>,
    /// The W3C trace id (incoming, or new), once the guest was started.
    pub trace_id: Option<String>,
    /// Outbound requests the guest sent, refused ones included.
    pub subrequests: u32,
    /// Of those, answered by the read-through cache without reaching the origin.
    pub cached_subrequests: u32,
    /// Time spent waiting for origins' response heads, summed over subrequests.
    pub origin_wait: Duration,
    /// Subrequests that got no response from their origin (refused connections,
    /// resets, timeouts), whatever the guest then answered.
    pub origin_errors: u32,
}

impl Report {
    pub(crate) fn failed_before_start(failure: Failure) -> Report {
        Report {
            outcome: Err(failure),
            guest_cpu: Duration::ZERO,
            peak_memory_bytes: 0,
            detail: None,
            trace_id: None,
            subrequests: 0,
            cached_subrequests: 0,
            origin_wait: Duration::ZERO,
            origin_errors: 0,
        }
    }

    /// `"ok"` or the failure's code.
    pub fn outcome_code(&self) -> &'static str {
        match &self.outcome {
            Ok(()) => "ok",
            Err(f) => f.code(),
        }
    }
}
