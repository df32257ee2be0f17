//! The admin API's routes as data: each path template (as the OpenAPI document
//! writes it) with its methods. The dispatcher answers a known path with a method
//! it does not take `405` and an `Allow` header, and an unknown path `404`, before
//! any handler runs; the tests check the document against these tables.

use http::Method;

/// One path of the admin API and the methods it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The path, with `{param}` for one segment (`/admin/v1/services/{name}`).
    pub path: &'static str,
    pub methods: &'static [Method],
    /// Answers without a token (the health checks).
    pub public: bool,
}

impl Route {
    pub const fn new(path: &'static str, methods: &'static [Method]) -> Route {
        Route {
            path,
            methods,
            public: false,
        }
    }

    /// Whether `path` (without its query) is this route's, a parameter matching
    /// any one non-empty segment. A trailing `/` is ignored.
    pub fn matches(&self, path: &str) -> bool {
        let path = match path.strip_suffix('/') {
            Some(trimmed) if !trimmed.is_empty() => trimmed,
            _ => path,
        };
        let mut given = path.split('/');
        for want in self.path.split('/') {
            match given.next() {
                Some(segment) if want.starts_with('{') => {
                    if segment.is_empty() {
                        return false;
                    }
                }
                Some(segment) if segment == want => {}
                _ => return false,
            }
        }
        given.next().is_none()
    }

    /// The `Allow` header's value.
    pub fn allow(&self) -> String {
        let names: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        names.join(", ")
    }
}

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];

/// The health checks, which need no token.
pub(super) const PUBLIC: &[Route] = &[
    Route {
        path: "/healthz",
        methods: GET,
        public: true,
    },
    Route {
        path: "/readyz",
        methods: GET,
        public: true,
    },
];

/// The web console's page and files, public like the health checks (the page asks
/// for a token and sends it with each call).
pub(super) const CONSOLE: &[Route] = &[
    Route {
        path: "/console",
        methods: GET,
        public: true,
    },
    Route {
        path: "/console/{file}",
        methods: GET,
        public: true,
    },
];

/// The server's own routes behind a token (a node adds its own).
pub(super) const SERVER: &[Route] = &[
    Route::new("/metrics", GET),
    Route::new("/admin/v1/whoami", GET),
    Route::new("/admin/v1/services/{name}/purge/all", POST),
    Route::new("/admin/v1/services/{name}/purge/keys/{key}", POST),
    Route::new("/admin/v1/services/{name}/purge/url", POST),
    Route::new("/admin/v1/apps/{app}/purge/all", POST),
    Route::new("/admin/v1/apps/{app}/purge/keys/{key}", POST),
    Route::new("/admin/v1/apps/{app}/purge/url", POST),
];

/// The traffic history, served when the API has one.
pub(super) const TRAFFIC: &[Route] = &[Route::new("/admin/v1/traffic", GET)];

/// The live log tail, served when the API has a log tap.
pub(super) const LOGS: &[Route] = &[
    Route::new("/admin/v1/services/{name}/logs", GET),
    Route::new("/admin/v1/apps/{app}/logs", GET),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment_per_parameter() {
        let route = Route::new("/admin/v1/services/{name}/purge/keys/{key}", POST);
        assert!(route.matches("/admin/v1/services/shop/purge/keys/item-1"));
        assert!(route.matches("/admin/v1/services/shop/purge/keys/a%2Fb/"));
        assert!(!route.matches("/admin/v1/services/shop/purge/keys/"));
        assert!(!route.matches("/admin/v1/services/shop/purge/keys/a/b"));
        assert!(!route.matches("/admin/v1/services//purge/keys/a"));
        assert!(!route.matches("/admin/v1/services/shop/purge/keys"));
        let root = Route::new("/admin/v1/services", GET);
        assert!(root.matches("/admin/v1/services/"));
        assert!(!root.matches("/admin/v1/services/shop"));
        assert!(!root.matches("/admin/v1/servicesx"));
    }

    #[test]
    fn no_two_routes_share_a_path() {
        let all: Vec<&Route> = PUBLIC
            .iter()
            .chain(CONSOLE)
            .chain(SERVER)
            .chain(LOGS)
            .chain(TRAFFIC)
            .collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                // A template with its parameters filled in matches itself only.
                let concrete = a.path.replace('{', "x").replace('}', "");
                assert!(!b.matches(&concrete), "{} and {}", a.path, b.path);
            }
        }
    }
}
