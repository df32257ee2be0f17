//! The incoming request.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use wasip2::http::types::{self as wasi, IncomingRequest};

use crate::body::RequestBody;
use crate::Error;

/// An incoming HTTP request: method, URI, headers and a streaming body.
#[derive(Debug)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RequestBody,
}

impl Request {
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
        let path = req.path_with_query().unwrap_or_else(|| "/".into());
        let mut uri = Uri::builder().path_and_query(path.as_str());
        if let Some(authority) = req.authority() {
            let scheme = match req.scheme() {
                Some(wasi::Scheme::Https) => "https".to_string(),
                Some(wasi::Scheme::Other(s)) => s,
                Some(wasi::Scheme::Http) | None => "http".to_string(),
            };
            uri = uri.scheme(scheme.as_str()).authority(authority.as_str());
        }
        let mut headers = HeaderMap::new();
        for (name, value) in req.headers().entries() {
            headers.append(
                HeaderName::from_bytes(name.as_bytes())?,
                HeaderValue::from_bytes(&value)?,
            );
        }
        let body = RequestBody::new(req.consume().ok());
        Ok(Request {
            method,
            uri: uri.build()?,
            headers,
            body,
        })
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The full URI, including scheme and authority when the host provided them.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The path, without the query string.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of a header, if it is present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body as a stream. It can be passed on as a response body with
    /// [`crate::Response::with_body`] to stream it back without buffering.
    pub fn into_body(self) -> RequestBody {
        self.body
    }

    /// Reads the whole body into memory.
    pub fn into_bytes(self) -> Result<Vec<u8>, Error> {
        Ok(self.body.into_bytes()?)
    }

    /// Reads the whole body as UTF-8 text.
    pub fn into_string(self) -> Result<String, Error> {
        Ok(String::from_utf8(self.into_bytes()?)?)
    }

    /// Reads the whole body and parses it as JSON.
    #[cfg(feature = "json")]
    pub fn into_json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        Ok(serde_json::from_reader(self.body)?)
    }
}
