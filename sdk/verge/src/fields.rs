//! Headers between the `http` crate and `wasi:http` fields.

use http::{HeaderMap, HeaderName, HeaderValue};
use wasip2::http::types::Fields;

use crate::Error;

/// Headers the host sets itself and refuses from a guest (hop-by-hop, and `host`,
/// which comes from the request's authority).
const HOST_OWNED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
];

/// A header name and value from anything convertible, for the `with_header` and
/// `set_header` methods of requests and responses.
///
/// # Panics
/// If the name or value is invalid.
pub(crate) fn header_pair<K, V>(name: K, value: V) -> (HeaderName, HeaderValue)
where
    K: TryInto<HeaderName>,
    K::Error: std::fmt::Debug,
    V: TryInto<HeaderValue>,
    V::Error: std::fmt::Debug,
{
    (
        name.try_into().expect("a valid header name"),
        value.try_into().expect("a valid header value"),
    )
}

pub(crate) fn to_fields(headers: &HeaderMap) -> Result<Fields, Error> {
    let entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|(name, _)| !HOST_OWNED.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    Fields::from_list(&entries).map_err(|e| anyhow::anyhow!("the host refused a header: {e:?}"))
}

/// The headers of `fields`. Those the host holds were checked when they arrived, so
/// none fails to convert; one that did would be left out rather than fail a request.
pub(crate) fn from_fields(fields: Fields) -> HeaderMap {
    let entries = fields.entries();
    let mut headers = HeaderMap::with_capacity(entries.len());
    for (name, value) in entries {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}
