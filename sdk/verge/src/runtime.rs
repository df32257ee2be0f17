//! Facts about this execution: `verge:edge/runtime`.

use std::time::Duration;

use crate::edge::runtime as wit;

/// This request's id (also in the `x-request-id` response header and every log line).
pub fn request_id() -> String {
    wit::request_id()
}

/// The W3C trace id this request belongs to (32 hex digits): the client's
/// `traceparent`, or a new trace. Outbound requests carry it.
pub fn trace_id() -> String {
    wit::trace_id()
}

/// The name of the node running this request.
pub fn node_name() -> String {
    wit::node_name()
}

/// The app's name, from its manifest.
pub fn app_name() -> String {
    wit::app_name()
}

/// The app's version (its deployed version, or a hash of the component).
pub fn app_version() -> String {
    wit::app_version()
}

/// Guest CPU time this request has used so far.
pub fn cpu_used() -> Duration {
    Duration::from_micros(wit::guest_cpu_used_us())
}

/// This request's guest CPU time limit.
pub fn cpu_limit() -> Duration {
    Duration::from_micros(wit::guest_cpu_limit_us())
}
