//! Headers between the `http` crate and `wasi:http` fields.

use std::cell::OnceCell;
use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use wasip2::http::types::{Fields, HeaderError};

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
pub(crate) fn from_fields_ref(fields: &Fields) -> HeaderMap {
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

/// A message's headers. Those of a message from the host (the client's request, an
/// origin's response) stay in the host until the guest reads them: passed on
/// untouched, or with headers set or appended, they never cross into guest memory
/// and back (a proxying handler's common case).
pub(crate) struct Headers {
    /// The guest's copy, made on first read.
    map: OnceCell<HeaderMap>,
    /// The host's copy, while it says the same as `map` would.
    host: Option<HostFields>,
}

struct HostFields {
    fields: Fields,
    /// Fields the host hands out are immutable; the first change makes a mutable
    /// clone.
    mutable: bool,
}

impl Headers {
    pub(crate) fn new(map: HeaderMap) -> Self {
        Headers {
            map: OnceCell::from(map),
            host: None,
        }
    }

    pub(crate) fn from_host(fields: Fields) -> Self {
        Headers {
            map: OnceCell::new(),
            host: Some(HostFields {
                fields,
                mutable: false,
            }),
        }
    }

    pub(crate) fn get(&self) -> &HeaderMap {
        self.map.get_or_init(|| match &self.host {
            Some(host) => from_fields_ref(&host.fields),
            None => HeaderMap::new(),
        })
    }

    /// The guest's copy, which from now on is the only one.
    pub(crate) fn get_mut(&mut self) -> &mut HeaderMap {
        self.get();
        self.host = None;
        self.map.get_mut().expect("read above")
    }

    pub(crate) fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        let set = self.change_in_host(&name, &value, |fields, name, value| {
            fields.set(name, &[value.to_vec()])
        });
        if !set {
            self.get_mut().insert(name, value);
        }
    }

    pub(crate) fn append(&mut self, name: HeaderName, value: HeaderValue) {
        let appended = self.change_in_host(&name, &value, |fields, name, value| {
            fields.append(name, value)
        });
        if !appended {
            self.get_mut().append(name, value);
        }
    }

    /// Makes a change in the host's copy when the guest has none; false when the
    /// change is the guest's to make.
    fn change_in_host(
        &mut self,
        name: &HeaderName,
        value: &HeaderValue,
        change: impl FnOnce(&Fields, &str, &[u8]) -> Result<(), HeaderError>,
    ) -> bool {
        // A host-owned header is kept in the guest's copy (and never sent), as it
        // would be had the guest read the headers first.
        if self.map.get().is_some() || HOST_OWNED.contains(&name.as_str()) {
            return false;
        }
        let Some(host) = &mut self.host else {
            return false;
        };
        if !host.mutable {
            host.fields = host.fields.clone();
            host.mutable = true;
        }
        change(&host.fields, name.as_str(), value.as_bytes()).is_ok()
    }

    /// The headers as `wasi:http` fields for an outgoing message.
    pub(crate) fn into_fields(self) -> Result<Fields, Error> {
        match self.host {
            Some(host) => Ok(host.fields),
            None => to_fields(self.get()),
        }
    }
}

impl Default for Headers {
    fn default() -> Self {
        Headers::new(HeaderMap::new())
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}
