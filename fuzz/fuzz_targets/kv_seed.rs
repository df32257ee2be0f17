//! KV seed files (`[kv_stores.NAME] seed = "seed.json"`), as a package carries them.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `file` items name files relative to the seed; none exist here.
    let path = Path::new("/nonexistent/verge-fuzz/seed.json");
    match verge_store::parse_seed(text, path) {
        Ok(items) => {
            for item in items {
                let _ = format!("{item:?}");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
