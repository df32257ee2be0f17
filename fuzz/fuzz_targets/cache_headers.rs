//! An origin's or guest's response headers (and a client's request headers) as the
//! HTTP cache reads them: `Cache-Control`, `CDN-Cache-Control`,
//! `Surrogate-Control`, `Age`, `Expires`, dates, `Vary`, `Surrogate-Key`,
//! validators, ranges, `Location`, and the guest's `Verge-Cache-Override`.
//!
//! Input: request header lines, `\n\n`, response header lines; the first two bytes
//! pick the status.
#![no_main]

use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use verge_cache::freshness::{self, HttpPolicy, Override};
use verge_cache::{invalidation, serving};

fuzz_target!(|data: &[u8]| {
    let Some((status, data)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = StatusCode::from_u16(100 + u16::from_be_bytes(*status) % 500).unwrap();
    let (request, response) = verge_fuzz::split(data, b"\n\n");
    let (request, response) = (verge_fuzz::headers(request), verge_fuzz::headers(response));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let policy = HttpPolicy::default();
    let overrides = request
        .get("verge-cache-override")
        .and_then(|v| Override::parse(v).ok());
    if let Ok(storable) = freshness::evaluate(
        &Method::GET,
        &request,
        status,
        &response,
        &policy,
        overrides.as_ref(),
        now,
    ) {
        let _ = format!("{storable:?}");
    }
    let _ = freshness::surrogate_keys(&response);
    let stored = serving::stored_headers(&response);
    let merged = serving::merge_not_modified(&stored, &request);
    let _ = serving::not_modified(&request, &merged);
    let _ = serving::not_modified_headers(&merged);
    for len in [0, 1, 1000, u64::MAX] {
        let answer = serving::range(&request, &stored, len);
        if let serving::RangeAnswer::Partial { start, end } = answer {
            assert!(start <= end && end < len, "{start}-{end} of {len}");
        }
        let _ = serving::content_range(answer, len);
    }
    let mut conditional = request.clone();
    serving::add_validators(&mut conditional, &stored);
    serving::strip_conditionals(&mut conditional);
    let _ = invalidation::locations(
        "http://shop.test:8080/items/1?x=1",
        &response,
        invalidation::Scope::SameOrigin,
    );
    let _ = invalidation::locations(
        "https://shop.test/a",
        &response,
        invalidation::Scope::SameHost,
    );
    if let Some(value) = response.get("x-override") {
        let _ = Override::parse(value);
    }
    let _ = Override::parse(&HeaderValue::from_static("ttl=60"));
});
