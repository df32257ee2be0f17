//! Requests: the one the handler receives, and ones it sends to origins.

use std::cell::OnceCell;
use std::fmt;
use std::net::IpAddr;

use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use wasip2::http::types::{self as wasi, IncomingRequest};

use crate::body::{Body, IncomingBody};
use crate::fields::Headers;
use crate::{Error, Response};

/// An HTTP request: method, URI, headers and a body.
///
/// The handler receives the client's request; [`Request::get`], [`Request::post`] and
/// [`Request::new`] build one to send. Either kind goes to a named backend with
/// [`Request::send`], or to its own URL with [`crate::http::send`].
///
/// The client's request is read from the host as the handler asks: its method at
/// once, its path, headers and body only when first used, so a handler pays only for
/// what it looks at.
pub struct Request {
    method: Method,
    /// Set when built, or from the host on the first [`Request::uri`].
    uri: OnceCell<Uri>,
    /// The client request's path and query, read on the first [`Request::path`] or
    /// [`Request::query`] (these need no scheme or authority).
    path: OnceCell<PathAndQuery>,
    /// Read (as the host's fields, not yet copied) on first use.
    headers: OnceCell<Headers>,
    /// `None` until the client request's body is first asked for.
    body: Option<Body>,
    /// The client's request, for what has not been read yet.
    incoming: Option<IncomingRequest>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", self.uri())
            .field("headers", self.headers())
            .field("body", &self.body)
            .finish()
    }
}

impl Request {
    /// A request to `url` (absolute, like `https://api.example.com/v1/items`, or just
    /// a path when it will go to a backend).
    pub fn new(method: Method, url: impl AsRef<str>) -> Result<Self, Error> {
        Ok(Request {
            method,
            uri: OnceCell::from(url.as_ref().parse::<Uri>()?),
            path: OnceCell::new(),
            headers: OnceCell::from(Headers::new(HeaderMap::new())),
            body: Some(Body::empty()),
            incoming: None,
        })
    }

    /// `GET url`.
    pub fn get(url: impl AsRef<str>) -> Result<Self, Error> {
        Self::new(Method::GET, url)
    }

    /// `POST url`.
    pub fn post(url: impl AsRef<str>) -> Result<Self, Error> {
        Self::new(Method::POST, url)
    }

    pub(crate) fn from_wasi(req: IncomingRequest) -> Result<Self, Error> {
        let method = match req.method() {
            wasi::Method::Get => Method::GET,
            wasi::Method::Head => Method::HEAD,
            wasi::Method::Post => Method::POST,
            wasi::Method::Put => Method::PUT,
            wasi::Method::Delete => Method::DELETE,
            wasi::Method::Connect => Method::CONNECT,
            wasi::Method::Options => Method::OPTIONS,
            wasi::Method::Trace => Method::TRACE,
            wasi::Method::Patch => Method::PATCH,
            wasi::Method::Other(m) => Method::from_bytes(m.as_bytes())?,
        };
        Ok(Request {
            method,
            uri: OnceCell::new(),
            path: OnceCell::new(),
            headers: OnceCell::new(),
            body: None,
            incoming: Some(req),
        })
    }

    /// The client request, which every field not yet set is read from.
    fn incoming(&self) -> &IncomingRequest {
        self.incoming
            .as_ref()
            .expect("a request built in the guest has every field set")
    }

    /// The client request's path and query, read from the host once.
    fn incoming_path(&self) -> &PathAndQuery {
        self.path.get_or_init(|| {
            let path = self.incoming().path_with_query().unwrap_or_default();
            // The host parsed it from the request line already.
            PathAndQuery::try_from(path).unwrap_or_else(|_| PathAndQuery::from_static("/"))
        })
    }

    fn body_mut(&mut self) -> &mut Body {
        if self.body.is_none() {
            let body = self.incoming.as_ref().and_then(|r| r.consume().ok());
            self.body = Some(IncomingBody::new(body).into());
        }
        self.body.as_mut().expect("set above")
    }

    fn take_body(mut self) -> Body {
        self.body_mut();
        self.body.take().expect("set by body_mut")
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The full URI, including scheme and authority when known.
    pub fn uri(&self) -> &Uri {
        self.uri.get_or_init(|| {
            let req = self.incoming();
            let mut uri = Uri::builder().path_and_query(self.incoming_path().clone());
            if let Some(authority) = req.authority() {
                let scheme = match req.scheme() {
                    Some(wasi::Scheme::Https) => "https".to_string(),
                    Some(wasi::Scheme::Other(s)) => s,
                    Some(wasi::Scheme::Http) | None => "http".to_string(),
                };
                uri = uri.scheme(scheme.as_str()).authority(authority.as_str());
            }
            // The host checked the authority; should it not parse here, the path
            // alone is still the request's.
            uri.build()
                .unwrap_or_else(|_| Uri::from(self.incoming_path().clone()))
        })
    }

    /// The path, without the query string.
    pub fn path(&self) -> &str {
        match self.uri.get() {
            Some(uri) => uri.path(),
            None => self.incoming_path().path(),
        }
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        match self.uri.get() {
            Some(uri) => uri.query(),
            None => self.incoming_path().query(),
        }
    }

    /// The first value of query parameter `name`, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query()?.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The query string parsed into `T` (with serde): `?limit=10&tag=a` into
    /// `struct Query { limit: u32, tag: String }`. An absent query parses as empty.
    #[cfg(feature = "json")]
    pub fn query_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_urlencoded::from_str(self.query().unwrap_or(""))?)
    }

    pub fn headers(&self) -> &HeaderMap {
        self.header_store().get()
    }

    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.header_store_mut().get_mut()
    }

    fn header_store(&self) -> &Headers {
        self.headers
            .get_or_init(|| Headers::from_host(self.incoming().headers()))
    }

    fn header_store_mut(&mut self) -> &mut Headers {
        self.header_store();
        self.headers.get_mut().expect("read above")
    }

    /// The first value of a header, if it is present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().get(name)?.to_str().ok()
    }

    /// Replaces a header's values.
    ///
    /// # Panics
    /// If the name or value is invalid; use [`Request::headers_mut`] to handle that.
    pub fn set_header<K, V>(&mut self, name: K, value: V)
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Debug,
    {
        let (name, value) = crate::fields::header_pair(name, value);
        self.header_store_mut().insert(name, value);
    }

    /// Appends a header value.
    ///
    /// # Panics
    /// If the name or value is invalid; use [`Request::headers_mut`] to handle that.
    pub fn with_header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Debug,
    {
        let (name, value) = crate::fields::header_pair(name, value);
        self.header_store_mut().append(name, value);
        self
    }

    /// How the backend's response to this request is cached, whatever its headers
    /// say (see [`crate::cache::CacheOverride`]).
    pub fn set_cache_override(&mut self, cache: &crate::cache::CacheOverride) {
        match HeaderValue::from_str(&cache.header_value()) {
            Ok(value) => {
                self.header_store_mut().insert(
                    HeaderName::from_static(crate::cache::CACHE_OVERRIDE_HEADER),
                    value,
                );
            }
            // Surrogate keys that are not header-safe: leave the response to its
            // own headers rather than fail the request.
            Err(_) => {
                self.headers_mut()
                    .remove(crate::cache::CACHE_OVERRIDE_HEADER);
            }
        }
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the body.
    pub fn set_body(&mut self, body: impl Into<Body>) {
        self.body = Some(body.into());
    }

    /// The client's IP address (for the request the handler received): the socket
    /// peer, or what a trusted proxy said it was.
    pub fn client_ip(&self) -> Option<IpAddr> {
        crate::edge::downstream::client_ip()?.parse().ok()
    }

    /// The TLS parameters of the client's connection (for the request the handler
    /// received); `None` when it came over plain HTTP.
    ///
    /// ```no_run
    /// # fn handle(req: verge::Request) -> verge::Response {
    /// match req.tls() {
    ///     Some(tls) => verge::Response::from_text(format!("{} via {}", tls.protocol, tls.cipher_suite)),
    ///     None => verge::Response::from_text("plain HTTP"),
    /// }
    /// # }
    /// ```
    pub fn tls(&self) -> Option<TlsInfo> {
        let tls = crate::edge::downstream::tls()?;
        Some(TlsInfo {
            protocol: tls.protocol,
            cipher_suite: tls.cipher_suite,
            server_name: tls.server_name,
            alpn: tls.alpn,
        })
    }

    /// The body as a stream. Passed on as a body ([`crate::Response::with_body`],
    /// [`Request::with_body`]) it is forwarded inside the host without buffering.
    pub fn into_body(self) -> Body {
        self.take_body()
    }

    /// Reads the whole body into memory.
    pub fn into_bytes(self) -> Result<Vec<u8>, Error> {
        Ok(self.take_body().into_bytes()?)
    }

    /// Reads the whole body as UTF-8 text.
    pub fn into_string(self) -> Result<String, Error> {
        self.take_body().into_string()
    }

    /// Reads the whole body and parses it as JSON.
    #[cfg(feature = "json")]
    pub fn into_json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        self.take_body().into_json()
    }

    /// Sends this request to the backend `backend` declared in `verge.toml`: its
    /// method, path, query, headers and body go to the backend's URL (the client's
    /// request is forwarded as is; the body streams without buffering). Returns the
    /// backend's response, its body streaming.
    ///
    /// ```no_run
    /// # use verge::{Request, Response, Error};
    /// # fn handler(req: Request) -> Result<Response, Error> {
    /// let mut resp = req.send("origin-eu")?;
    /// resp.set_header("x-served-by", "verge");
    /// Ok(resp)
    /// # }
    /// ```
    pub fn send(self, backend: &str) -> Result<Response, Error> {
        crate::http::send_to(self, Some(backend))
    }

    pub(crate) fn into_parts(mut self) -> (Method, Uri, Headers, Body) {
        self.uri();
        self.header_store();
        self.body_mut();
        let uri = self.uri.take().expect("read above");
        let headers = self.headers.take().expect("read above");
        let body = self.body.take().expect("read above");
        (self.method, uri, headers, body)
    }
}

/// What the edge agreed on with the client over TLS: see [`Request::tls`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
    /// The IANA name of the cipher suite: `TLS_AES_128_GCM_SHA256`.
    pub cipher_suite: String,
    /// The server name the client asked for (SNI).
    pub server_name: Option<String>,
    /// The HTTP protocol agreed on by ALPN: `h2` or `http/1.1`.
    pub alpn: Option<String>,
}
