//! A small router: method and path patterns with `:param` segments and a trailing
//! `*rest`.
//!
//! ```no_run
//! use verge::{Error, Request, Response, Router};
//!
//! #[verge::main]
//! fn handle(req: Request) -> Result<Response, Error> {
//!     Router::new()
//!         .get("/", |_, _| Ok(Response::from_text("home\n")))
//!         .post("/shorten", |req, _| {
//!             let url = req.into_string()?;
//!             Ok(Response::from_text(format!("shortened {url}\n")).with_status(201))
//!         })
//!         .get("/:slug", |_, params| {
//!             Ok(Response::from_text(format!("slug {}\n", params.get("slug").unwrap())))
//!         })
//!         .run(req)
//! }
//! # fn main() {}
//! ```
//!
//! Routes are tried in order. A path that matches no route answers `404`; a path that
//! matches only for other methods answers `405` with an `Allow` header.

use http::Method;

use crate::{Error, Request, Response};

type Handler<'a> = Box<dyn Fn(Request, Params) -> Result<Response, Error> + 'a>;

/// Routes requests to handlers by method and path.
#[derive(Default)]
pub struct Router<'a> {
    routes: Vec<(Method, Vec<Segment>, Handler<'a>)>,
}

/// The values of a route's `:name` and `*name` segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The value of `:name` (percent-decoded), if the route has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find_map(|(k, v)| (k == name).then_some(v.as_str()))
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param(String),
    Rest(String),
}

impl<'a> Router<'a> {
    pub fn new() -> Self {
        Router { routes: Vec::new() }
    }

    /// Adds a route for `method` and `pattern` (`/users/:id`, `/static/*path`).
    ///
    /// # Panics
    /// If the pattern does not start with `/` or has a `*` segment before its end.
    pub fn on(
        mut self,
        method: Method,
        pattern: &str,
        handler: impl Fn(Request, Params) -> Result<Response, Error> + 'a,
    ) -> Self {
        assert!(
            pattern.starts_with('/'),
            "route `{pattern}` must start with `/`"
        );
        let segments: Vec<Segment> = split(pattern)
            .map(|s| {
                if let Some(name) = s.strip_prefix(':') {
                    Segment::Param(name.to_owned())
                } else if let Some(name) = s.strip_prefix('*') {
                    Segment::Rest(name.to_owned())
                } else {
                    Segment::Literal(s.to_owned())
                }
            })
            .collect();
        let rest_at = segments.iter().position(|s| matches!(s, Segment::Rest(_)));
        assert!(
            rest_at.is_none_or(|i| i == segments.len() - 1),
            "in route `{pattern}`, a `*` segment must come last"
        );
        self.routes.push((method, segments, Box::new(handler)));
        self
    }

    pub fn get(self, p: &str, h: impl Fn(Request, Params) -> Result<Response, Error> + 'a) -> Self {
        self.on(Method::GET, p, h)
    }

    pub fn post(
        self,
        p: &str,
        h: impl Fn(Request, Params) -> Result<Response, Error> + 'a,
    ) -> Self {
        self.on(Method::POST, p, h)
    }

    pub fn put(self, p: &str, h: impl Fn(Request, Params) -> Result<Response, Error> + 'a) -> Self {
        self.on(Method::PUT, p, h)
    }

    pub fn patch(
        self,
        p: &str,
        h: impl Fn(Request, Params) -> Result<Response, Error> + 'a,
    ) -> Self {
        self.on(Method::PATCH, p, h)
    }

    pub fn delete(
        self,
        p: &str,
        h: impl Fn(Request, Params) -> Result<Response, Error> + 'a,
    ) -> Self {
        self.on(Method::DELETE, p, h)
    }

    /// Routes `req` to the first matching route. `HEAD` is served by `GET` routes.
    pub fn run(self, req: Request) -> Result<Response, Error> {
        let path = req.path().to_owned();
        let mut allowed: Vec<&Method> = Vec::new();
        for (method, segments, handler) in &self.routes {
            let Some(params) = matches(segments, &path) else {
                continue;
            };
            let method_ok =
                method == req.method() || (*req.method() == Method::HEAD && *method == Method::GET);
            if method_ok {
                return handler(req, params);
            }
            if !allowed.contains(&method) {
                allowed.push(method);
            }
        }
        if allowed.is_empty() {
            return Ok(Response::from_status(404).with_body("not found\n"));
        }
        let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        Ok(Response::from_status(405)
            .with_header("allow", allow.join(", "))
            .with_body("method not allowed\n"))
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn matches(segments: &[Segment], path: &str) -> Option<Params> {
    let parts: Vec<&str> = split(path).collect();
    let mut params = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Rest(name) => {
                params.push((name.clone(), parts.get(i..).unwrap_or(&[]).join("/")));
                return Some(Params(params));
            }
            Segment::Literal(lit) => {
                if parts.get(i) != Some(&lit.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => params.push((name.clone(), decode(parts.get(i)?))),
        }
    }
    (parts.len() == segments.len()).then_some(Params(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(pattern: &str) -> Vec<Segment> {
        let router = Router::new().get(pattern, |_, _| Ok(Response::new()));
        router.routes.into_iter().next().unwrap().1
    }

    #[test]
    fn params_and_rest_segments_match() {
        let p = matches(&route("/users/:id"), "/users/42").unwrap();
        assert_eq!(p.get("id"), Some("42"));
        assert!(matches(&route("/users/:id"), "/users/42/posts").is_none());
        assert!(matches(&route("/users/:id"), "/users").is_none());
        let p = matches(&route("/static/*path"), "/static/css/site.css").unwrap();
        assert_eq!(p.get("path"), Some("css/site.css"));
        let p = matches(&route("/:slug"), "/hello%20world").unwrap();
        assert_eq!(p.get("slug"), Some("hello world"));
        assert!(matches(&route("/"), "/").is_some());
    }
}
