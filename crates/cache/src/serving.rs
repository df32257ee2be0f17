//! Answering requests from stored objects: conditional requests (RFC 9110 §13),
//! single byte ranges (§14), revalidation requests and `304` merges (RFC 9111 §4.3).

use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::freshness::{SURROGATE_CONTROL, SURROGATE_KEY, http_date};

/// Headers that describe a connection, not the object: never stored.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers of a `304` that must not replace the stored ones (they describe a body
/// the `304` does not have).
const KEPT_ON_REFRESH: [HeaderName; 4] = [
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
    header::CONTENT_RANGE,
];

/// The response headers worth storing: no hop-by-hop fields (nor those `Connection`
/// names), no `Age` (recomputed on every hit), no `Content-Length` (set from the
/// stored body).
pub fn stored_headers(response: &HeaderMap) -> HeaderMap {
    let mut out = response.clone();
    strip_hop_by_hop(&mut out);
    out.remove(header::AGE);
    out.remove(header::CONTENT_LENGTH);
    out
}

/// Removes what describes one connection rather than the message (RFC 9110 §7.6.1):
/// the headers `Connection` names, `Connection` itself and the other hop-by-hop
/// fields. An intermediary neither stores nor forwards them.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP.iter().copied() {
        headers.remove(name);
    }
}

/// Removes the headers meant for the edge only.
pub fn strip_edge_headers(headers: &mut HeaderMap) {
    headers.remove(SURROGATE_CONTROL);
    headers.remove(SURROGATE_KEY);
}

/// The stored headers updated by a `304`'s (RFC 9111 §3.2).
pub fn merge_not_modified(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut merged = stored.clone();
    let fresh = stored_headers(not_modified);
    let mut replaced: Vec<&HeaderName> = Vec::new();
    for (name, value) in &fresh {
        if KEPT_ON_REFRESH.contains(name) {
            continue;
        }
        if !replaced.contains(&name) {
            merged.remove(name);
            replaced.push(name);
        }
        merged.append(name.clone(), value.clone());
    }
    merged
}

/// The validators to send when refreshing an object with these headers.
pub fn add_validators(request: &mut HeaderMap, stored: &HeaderMap) {
    request.remove(header::IF_MODIFIED_SINCE);
    request.remove(header::IF_NONE_MATCH);
    request.remove(header::IF_RANGE);
    request.remove(header::RANGE);
    if let Some(etag) = stored.get(header::ETAG) {
        request.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(modified) = stored.get(header::LAST_MODIFIED) {
        request.insert(header::IF_MODIFIED_SINCE, modified.clone());
    }
}

/// Whether a refresh can be conditional at all.
pub fn has_validators(stored: &HeaderMap) -> bool {
    stored.contains_key(header::ETAG) || stored.contains_key(header::LAST_MODIFIED)
}

/// Removes what would make the origin answer with less than the whole object.
pub fn strip_conditionals(request: &mut HeaderMap) {
    for name in [
        header::IF_MODIFIED_SINCE,
        header::IF_NONE_MATCH,
        header::IF_RANGE,
        header::RANGE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
    ] {
        request.remove(name);
    }
}

/// Whether a request with these headers already holds the object whose response
/// headers are `response`: answer `304 Not Modified` (GET/HEAD only).
pub fn not_modified(request: &HeaderMap, response: &HeaderMap) -> bool {
    if let Some(inm) = request.get(header::IF_NONE_MATCH) {
        let Some(etag) = response.get(header::ETAG).and_then(|e| e.to_str().ok()) else {
            return false;
        };
        let Ok(inm) = inm.to_str() else { return false };
        return inm
            .split(',')
            .map(str::trim)
            .any(|candidate| candidate == "*" || weak_eq(candidate, etag));
    }
    match (
        http_date(request, header::IF_MODIFIED_SINCE),
        http_date(response, header::LAST_MODIFIED),
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Weak comparison: the opaque tags match, `W/` or not.
fn weak_eq(a: &str, b: &str) -> bool {
    let opaque = |t: &str| t.trim().strip_prefix("W/").unwrap_or(t.trim()).to_owned();
    opaque(a) == opaque(b)
}

/// Headers a `304` carries (RFC 9110 §15.4.5).
pub fn not_modified_headers(response: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::VARY,
        header::LAST_MODIFIED,
    ] {
        for value in response.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// How to answer a `Range` request from a stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No (usable) range: the whole object, `200`.
    Full,
    /// `206` with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// `416`: no byte of the range exists.
    Unsatisfiable,
}

/// Reads a request's `Range` (one `bytes=` range; several ranges, other units or a
/// failed `If-Range` get the whole object, as RFC 9110 allows).
pub fn range(request: &HeaderMap, response: &HeaderMap, len: u64) -> RangeAnswer {
    let Some(spec) = request.get(header::RANGE).and_then(|r| r.to_str().ok()) else {
        return RangeAnswer::Full;
    };
    if let Some(if_range) = request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let if_range = if_range.trim();
        let current = if if_range.starts_with('"') {
            // Strong comparison only.
            response
                .get(header::ETAG)
                .and_then(|e| e.to_str().ok())
                .is_some_and(|e| !e.starts_with("W/") && e.trim() == if_range)
        } else {
            httpdate::parse_http_date(if_range)
                .ok()
                .is_some_and(|d| http_date(response, header::LAST_MODIFIED).is_some_and(|m| m == d))
        };
        if !current {
            return RangeAnswer::Full;
        }
    }
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if set.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let number = |t: &str| -> Option<u64> {
        let t = t.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `bytes=-N`: the last N bytes.
        return match number(last) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(suffix) => RangeAnswer::Partial {
                start: len.saturating_sub(suffix),
                end: len - 1,
            },
            None => RangeAnswer::Full,
        };
    }
    let Some(start) = number(first) else {
        return RangeAnswer::Full;
    };
    let last = if last.is_empty() {
        None
    } else {
        match number(last) {
            Some(l) if l >= start => Some(l),
            _ => return RangeAnswer::Full,
        }
    };
    if start >= len {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial {
        start,
        end: last.map_or(len - 1, |l| l.min(len - 1)),
    }
}

/// `Content-Range` for a partial answer, or for a `416` (`start`/`end` ignored).
pub fn content_range(answer: RangeAnswer, len: u64) -> Option<HeaderValue> {
    let text = match answer {
        RangeAnswer::Full => return None,
        RangeAnswer::Partial { start, end } => format!("bytes {start}-{end}/{len}"),
        RangeAnswer::Unsatisfiable => format!("bytes */{len}"),
    };
    HeaderValue::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_headers as headers;

    #[test]
    fn if_none_match_uses_weak_comparison_and_wins_over_if_modified_since() {
        let resp = headers(&[
            ("etag", "W/\"v1\""),
            ("last-modified", "Tue, 15 Nov 1994 12:45:26 GMT"),
        ]);
        assert!(not_modified(
            &headers(&[("if-none-match", "\"x\", \"v1\"")]),
            &resp
        ));
        assert!(not_modified(&headers(&[("if-none-match", "*")]), &resp));
        assert!(!not_modified(
            &headers(&[
                ("if-none-match", "\"v2\""),
                ("if-modified-since", "Tue, 15 Nov 1994 12:45:26 GMT")
            ]),
            &resp
        ));
        assert!(not_modified(
            &headers(&[("if-modified-since", "Wed, 16 Nov 1994 12:45:26 GMT")]),
            &resp
        ));
        assert!(!not_modified(
            &headers(&[("if-modified-since", "Mon, 14 Nov 1994 12:45:26 GMT")]),
            &resp
        ));
    }

    #[test]
    fn byte_ranges() {
        let resp = headers(&[("etag", "\"v1\"")]);
        let r = |spec: &str| range(&headers(&[("range", spec)]), &resp, 100);
        assert_eq!(r("bytes=0-9"), RangeAnswer::Partial { start: 0, end: 9 });
        assert_eq!(r("bytes=90-"), RangeAnswer::Partial { start: 90, end: 99 });
        assert_eq!(
            r("bytes=90-500"),
            RangeAnswer::Partial { start: 90, end: 99 }
        );
        assert_eq!(r("bytes=-10"), RangeAnswer::Partial { start: 90, end: 99 });
        assert_eq!(r("bytes=-500"), RangeAnswer::Partial { start: 0, end: 99 });
        assert_eq!(r("bytes=100-"), RangeAnswer::Unsatisfiable);
        assert_eq!(r("bytes=-0"), RangeAnswer::Unsatisfiable);
        assert_eq!(r("bytes=5-1"), RangeAnswer::Full);
        assert_eq!(r("bytes=0-1,5-6"), RangeAnswer::Full);
        assert_eq!(r("items=0-1"), RangeAnswer::Full);
        assert_eq!(r("bytes=x-"), RangeAnswer::Full);
        let stale_if_range = headers(&[("range", "bytes=0-9"), ("if-range", "\"v0\"")]);
        assert_eq!(range(&stale_if_range, &resp, 100), RangeAnswer::Full);
        let current = headers(&[("range", "bytes=0-9"), ("if-range", "\"v1\"")]);
        assert_eq!(
            range(&current, &resp, 100),
            RangeAnswer::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            content_range(RangeAnswer::Partial { start: 0, end: 9 }, 100).unwrap(),
            "bytes 0-9/100"
        );
    }

    #[test]
    fn a_304_updates_headers_but_not_the_body_description() {
        let stored = headers(&[
            ("content-type", "text/plain"),
            ("cache-control", "max-age=1"),
            ("content-encoding", "gzip"),
        ]);
        let fresh = headers(&[
            ("cache-control", "max-age=60"),
            ("content-encoding", "br"),
            ("connection", "close"),
        ]);
        let merged = merge_not_modified(&stored, &fresh);
        assert_eq!(merged["cache-control"], "max-age=60");
        assert_eq!(merged["content-encoding"], "gzip");
        assert_eq!(merged["content-type"], "text/plain");
        assert!(!merged.contains_key("connection"));
    }

    #[test]
    fn stored_headers_drop_hop_by_hop_and_named_ones() {
        let h = stored_headers(&headers(&[
            ("connection", "x-private"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("age", "3"),
            ("etag", "\"a\""),
        ]));
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("etag"));
    }
}
