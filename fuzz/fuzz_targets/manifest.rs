//! `verge.toml`, as an app directory or an uploaded package's manifest carries it,
//! and the names and values inside it parsed on their own (they come from admin API
//! bodies and CLI flags too).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use verge_manifest::{
    AppName, BackendName, BackendUrl, ByteSize, DomainPattern, DurationValue, Host, HostPattern,
    Manifest, StoreName,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(text, Path::new("verge.toml")) {
        Ok(manifest) => {
            let _ = manifest.env_pairs();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // Short texts: each value parser on its own.
    if text.len() <= 256 {
        let _ = AppName::new(text);
        let _ = StoreName::new(text);
        let _ = BackendName::new(text);
        let _ = BackendUrl::parse(text);
        let _ = Host::parse(text);
        let _ = HostPattern::parse(text);
        if let Ok(pattern) = DomainPattern::parse(text) {
            let _ = pattern.matches(text);
        }
        let _ = ByteSize::parse(text);
        let _ = DurationValue::parse(text);
    }
});
