//! W3C trace context: the incoming `traceparent` (or a new trace), and a child span
//! for every outbound request.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderValue};

/// The trace a request belongs to.
#[derive(Debug, Clone)]
pub(crate) struct TraceContext {
    trace_id: [u8; 16],
    flags: u8,
    tracestate: Option<HeaderValue>,
}

impl TraceContext {
    /// The incoming `traceparent` when it is valid version-00 (or later) syntax with a
    /// non-zero trace id; otherwise a new, sampled trace.
    pub(crate) fn from_headers(headers: &HeaderMap) -> TraceContext {
        let parent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        match parent {
            Some((trace_id, flags)) => TraceContext {
                trace_id,
                flags,
                tracestate: headers.get("tracestate").cloned(),
            },
            None => {
                let mut trace_id = [0; 16];
                trace_id[..8].copy_from_slice(&random_nonzero().to_be_bytes());
                trace_id[8..].copy_from_slice(&random_nonzero().to_be_bytes());
                TraceContext {
                    trace_id,
                    flags: 1,
                    tracestate: None,
                }
            }
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub(crate) fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// A `traceparent` for a new child span (one per outbound request).
    pub(crate) fn child_traceparent(&self) -> HeaderValue {
        let span = random_nonzero().to_be_bytes();
        let text = format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(span),
            self.flags
        );
        HeaderValue::from_str(&text).expect("hex digits and dashes")
    }

    pub(crate) fn tracestate(&self) -> Option<&HeaderValue> {
        self.tracestate.as_ref()
    }
}

fn parse_traceparent(text: &str) -> Option<([u8; 16], u8)> {
    let mut parts = text.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let hex_len = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    // Version ff is invalid; version 00 has exactly four fields.
    if !hex_len(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !hex_len(trace, 32) || !hex_len(span, 16) || !hex_len(flags, 2) {
        return None;
    }
    let mut trace_id = [0; 16];
    hex::decode_to_slice(trace, &mut trace_id).ok()?;
    if trace_id == [0; 16] || span.bytes().all(|b| b == b'0') {
        return None;
    }
    Some((trace_id, u8::from_str_radix(flags, 16).ok()?))
}

/// A random, non-zero 64-bit number: std's per-process random hash keys over a
/// counter (ids need to be unique, not secret).
fn random_nonzero() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incoming_traceparent_is_continued_with_new_spans() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        headers.insert("tracestate", HeaderValue::from_static("congo=t61rcWkgMzE"));
        let trace = TraceContext::from_headers(&headers);
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let a = trace.child_traceparent();
        let b = trace.child_traceparent();
        let a = a.to_str().unwrap();
        assert!(a.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{a}");
        assert!(a.ends_with("-01"));
        assert!(!a.contains("00f067aa0ba902b7"), "a new span id");
        assert_ne!(a, b.to_str().unwrap());
        assert_eq!(trace.tracestate().unwrap(), "congo=t61rcWkgMzE");
    }

    #[test]
    fn a_missing_or_invalid_traceparent_starts_a_new_trace() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_str(bad).unwrap());
            let trace = TraceContext::from_headers(&headers);
            assert_ne!(
                trace.trace_id(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            assert_eq!(trace.trace_id().len(), 32);
            assert_ne!(trace.trace_id(), "0".repeat(32));
        }
        let a = TraceContext::from_headers(&HeaderMap::new()).trace_id();
        let b = TraceContext::from_headers(&HeaderMap::new()).trace_id();
        assert_ne!(a, b);
    }
}
