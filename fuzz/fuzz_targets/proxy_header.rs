//! PROXY protocol v1/v2 headers from a trusted proxy's connection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verge_client_ip::{Parsed, parse_proxy_header};

fuzz_target!(|data: &[u8]| {
    match parse_proxy_header(data) {
        Ok(Parsed::Complete(header)) => {
            // Never past the bytes given, and the header alone parses the same.
            assert!(header.len <= data.len());
            assert_eq!(
                parse_proxy_header(&data[..header.len]).unwrap(),
                Parsed::Complete(header)
            );
        }
        Ok(Parsed::Incomplete { needed }) => {
            assert!(needed > 0);
            // What was not enough stays not enough, or fails, with fewer bytes.
            if let Some(shorter) = data.len().checked_sub(1) {
                assert!(!matches!(
                    parse_proxy_header(&data[..shorter]),
                    Ok(Parsed::Complete(_))
                ));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
