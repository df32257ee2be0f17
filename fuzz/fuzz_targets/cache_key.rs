//! Cache keys: `Vary` and the normalised secondary keys of request headers, and URLs
//! given to purge (`verge purge --url`, the admin API).
//!
//! Input: response header lines (for `Vary`), `\n\n`, request header lines, `\n\n`,
//! a URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verge_cache::{Key, VaryRule};

fuzz_target!(|data: &[u8]| {
    let (response, rest) = verge_fuzz::split(data, b"\n\n");
    let (request, url) = verge_fuzz::split(rest, b"\n\n");
    let (response, request) = (verge_fuzz::headers(response), verge_fuzz::headers(request));
    if let Some(rule) = VaryRule::from_response(&response) {
        let key = rule.secondary_key(&request);
        // The same request always selects the same variant.
        assert_eq!(key, rule.secondary_key(&request.clone()));
        let _ = VaryRule::new(rule.names().iter().cloned()).secondary_key(&request);
    }
    if let Ok(url) = std::str::from_utf8(url)
        && let Some(key) = Key::for_absolute_url("app", url)
    {
        assert_eq!(key.namespace(), "app");
        assert!(key.primary().starts_with(b"http:"));
    }
});
