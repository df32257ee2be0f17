//! Invalidation after unsafe requests (RFC 9111 §4.4). A request that may change
//! the origin's state (POST, PUT, PATCH, DELETE, any method not known to be safe)
//! answered with a non-error status makes a cache drop what it stored for that URL,
//! and for the URLs the answer's `Location` and `Content-Location` name when they
//! are of the same origin: another origin's objects are not this request's to drop.

use http::{HeaderMap, Method, StatusCode, header};

/// Whether a `status` answer to a `method` request invalidates the request's URL.
/// `CONNECT` names no URL; the safe methods change nothing.
pub fn invalidates(method: &Method, status: StatusCode) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::CONNECT
    ) && (status.is_success() || status.is_redirection())
}

/// Which named URLs are the request's to invalidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Same scheme, host and port: an origin fetch, keyed by its whole URL.
    SameOrigin,
    /// Same host: the edge cache, which routes and keys by the host alone.
    SameHost,
}

/// The path and query of each URL that `response`'s `Location` and
/// `Content-Location` name, resolved against `request` (an absolute URL), when it
/// is in `scope` of `request`.
pub fn locations(request: &str, response: &HeaderMap, scope: Scope) -> Vec<String> {
    if !response.contains_key(header::LOCATION) && !response.contains_key(header::CONTENT_LOCATION)
    {
        return Vec::new();
    }
    let Ok(base) = url::Url::parse(request) else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let Some(value) = response.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let Ok(target) = base.join(value.trim()) else {
            continue;
        };
        let in_scope = match scope {
            Scope::SameOrigin => target.origin() == base.origin(),
            Scope::SameHost => {
                matches!(target.scheme(), "http" | "https") && target.host() == base.host()
            }
        };
        if !in_scope {
            continue;
        }
        let path = &target[url::Position::BeforePath..url::Position::AfterQuery];
        if !found.iter().any(|f| f == path) {
            found.push(path.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_methods_with_non_error_answers_invalidate() {
        let unknown = Method::from_bytes(b"FROBNICATE").unwrap();
        for method in [
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            unknown,
        ] {
            for status in [200, 201, 204, 301, 303, 308] {
                let status = StatusCode::from_u16(status).unwrap();
                assert!(invalidates(&method, status), "{method} {status}");
            }
            for status in [100, 400, 404, 409, 500, 503] {
                let status = StatusCode::from_u16(status).unwrap();
                assert!(!invalidates(&method, status), "{method} {status}");
            }
        }
        for method in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::TRACE,
            Method::CONNECT,
        ] {
            assert!(!invalidates(&method, StatusCode::OK), "{method}");
        }
    }

    fn named(request: &str, pairs: &[(&str, &str)]) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        locations(request, &headers, Scope::SameOrigin)
    }

    #[test]
    fn locations_of_the_same_origin_are_resolved() {
        let base = "http://shop.test:8080/items/1?x=1";
        assert_eq!(
            named(
                base,
                &[("location", "/items/2?y=2"), ("content-location", "3")]
            ),
            ["/items/2?y=2", "/items/3"]
        );
        assert_eq!(
            named(base, &[("location", "http://SHOP.test:8080/a#frag")]),
            ["/a"]
        );
        assert_eq!(named(base, &[("location", "../up")]), ["/up"]);
        // The same URL twice counts once.
        assert_eq!(
            named(base, &[("location", "/a"), ("content-location", "/a")]),
            ["/a"]
        );
    }

    #[test]
    fn other_origins_and_garbage_are_left_alone() {
        let base = "http://shop.test:8080/items/1";
        for other in [
            "http://other.test:8080/a",
            "https://shop.test:8080/a",
            "http://shop.test/a",
            "//evil.test/a",
            "mailto:someone@shop.test",
            "http://[::1",
        ] {
            assert_eq!(
                named(base, &[("location", other)]),
                Vec::<String>::new(),
                "{other}"
            );
        }
        assert!(named("not a url", &[("location", "/a")]).is_empty());
    }

    #[test]
    fn the_edge_scope_is_the_host() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LOCATION,
            "https://shop.test:8443/a".parse().unwrap(),
        );
        headers.insert(
            header::CONTENT_LOCATION,
            "http://other.test/b".parse().unwrap(),
        );
        assert_eq!(
            locations("http://shop.test/items", &headers, Scope::SameHost),
            ["/a"]
        );
    }
}
