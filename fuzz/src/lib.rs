//! What the fuzz targets share: turning bytes into the header maps and texts the
//! parsers under test receive.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Header lines `name: value` (one per `\n`), as a peer could send them; lines that
/// are not a valid header (hyper would refuse them before Verge saw them) are
/// skipped.
pub fn headers(text: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            map.append(name, value);
        }
    }
    map
}

/// Splits `data` at the first `sep` byte sequence: (before, after); all of it before
/// when `sep` is absent.
pub fn split<'a>(data: &'a [u8], sep: &[u8]) -> (&'a [u8], &'a [u8]) {
    match data.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (&data[..at], &data[at + sep.len()..]),
        None => (data, &[]),
    }
}
