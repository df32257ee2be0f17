//! Uploaded packages (`POST /admin/v1/services/{name}/versions`, the fleet's package
//! store): zstd, tar, the manifest JSON and the SHA-256 that binds them.
//!
//! The first byte picks what the rest is: the package's bytes as uploaded; a tar
//! stream (compressed here, so the tar reader sees the mutations); or a manifest
//! JSON and a component (`\0` between) packed with the right digest, so the
//! manifest reader sees them past the digest check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verge_manifest::Package;

const MAX_COMPONENT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let package = match mode % 3 {
        0 => rest.to_vec(),
        1 => match zstd::encode_all(rest, 1) {
            Ok(bytes) => bytes,
            Err(_) => return,
        },
        _ => {
            let (json, component) = verge_fuzz::split(rest, b"\0");
            let mut out = Vec::new();
            if Package::write_raw(json, component, &mut out).is_err() {
                return;
            }
            out
        }
    };
    match Package::read_from(&package[..], MAX_COMPONENT) {
        Ok(read) => {
            // What was read packs again and reads back the same.
            let mut again = Vec::new();
            read.write_to(&mut again).unwrap();
            let back = Package::read_from(&again[..], MAX_COMPONENT).unwrap();
            assert_eq!(back.component, read.component);
            assert_eq!(
                format!("{:?}", back.manifest),
                format!("{:?}", read.manifest)
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
