//! Cache keys: an app's namespace plus the bytes that name an object.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

/// What an object is stored under. The namespace keeps apps apart: two apps caching
/// the same URL never see each other's objects.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Key {
    namespace: Arc<str>,
    primary: Bytes,
}

impl Key {
    /// A key of the programmable cache: any bytes the app chooses.
    pub fn new(namespace: impl Into<Arc<str>>, primary: impl Into<Bytes>) -> Key {
        Key {
            namespace: namespace.into(),
            primary: primary.into(),
        }
    }

    /// The key of an HTTP object: host (lower-cased, without port, as the server
    /// normalised it)
    /// and the path with its query, exactly as sent. GET and HEAD share it.
    pub fn for_url(namespace: impl Into<Arc<str>>, host: &str, path_and_query: &str) -> Key {
        let mut primary = BytesMut::with_capacity(5 + host.len() + path_and_query.len());
        primary.put_slice(b"http:");
        primary.put_slice(host.as_bytes());
        primary.put_slice(path_and_query.as_bytes());
        Key::new(namespace, primary.freeze())
    }

    /// The key of a URL given as text (`https://host/path?q`), for purging by URL.
    /// `None` when it is not an absolute http(s) URL.
    pub fn for_absolute_url(namespace: impl Into<Arc<str>>, url: &str) -> Option<Key> {
        let uri: http::Uri = url.parse().ok()?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return None,
        }
        // The server routes and keys by the host alone (no port, no trailing dot).
        let host = uri.host()?.to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Some(Key::for_url(namespace, host, path))
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn namespace_arc(&self) -> &Arc<str> {
        &self.namespace
    }

    pub fn primary(&self) -> &[u8] {
        &self.primary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_same_key_as_requests() {
        let from_request = Key::for_url("app", "example.com", "/a?b=1");
        assert_eq!(
            Key::for_absolute_url("app", "http://Example.COM:8080/a?b=1"),
            Some(from_request.clone())
        );
        assert_eq!(
            Key::for_absolute_url("app", "https://example.com/a?b=1"),
            Some(from_request.clone())
        );
        assert_ne!(
            Key::for_absolute_url("other", "https://example.com/a?b=1"),
            Some(from_request)
        );
        assert_eq!(Key::for_absolute_url("app", "/relative"), None);
        assert_eq!(Key::for_absolute_url("app", "ftp://x/y"), None);
    }
}
