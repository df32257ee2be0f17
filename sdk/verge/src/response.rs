//! Responses: the one the handler returns, and ones origins send back.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use wasip2::http::types::IncomingResponse;

use crate::body::{Body, IncomingBody};
use crate::fields::Headers;
use crate::Error;

/// A status given as a number (`404`) or a [`StatusCode`].
pub trait IntoStatus {
    /// # Panics
    /// If a number is not between 100 and 999.
    fn into_status(self) -> StatusCode;
}

impl IntoStatus for StatusCode {
    fn into_status(self) -> StatusCode {
        self
    }
}

impl IntoStatus for u16 {
    fn into_status(self) -> StatusCode {
        StatusCode::from_u16(self).expect("an HTTP status between 100 and 999")
    }
}

/// An HTTP response. Defaults to `200 OK` with an empty body.
///
/// Constructors are `from_*`, builders `with_*` (taking and returning the response),
/// setters `set_*` (on `&mut self`):
///
/// ```
/// # fn main() -> Result<(), verge::Error> {
/// use verge::Response;
/// let created = Response::from_json(&["a", "b"])?.with_status(201);
/// let mut missing = Response::from_status(404).with_body("no such page\n");
/// missing.set_header("cache-control", "no-store");
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Response {
    status: StatusCode,
    headers: Headers,
    body: Body,
}

impl Response {
    /// `200 OK`, no headers, empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty response with the given status.
    pub fn from_status(status: impl IntoStatus) -> Self {
        Response {
            status: status.into_status(),
            ..Self::default()
        }
    }

    /// `200 OK` with the given body.
    pub fn from_body(body: impl Into<Body>) -> Self {
        Self::new().with_body(body)
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn from_text(text: impl Into<String>) -> Self {
        Self::new()
            .with_header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .with_body(text.into())
    }

    /// `200 OK` with a `text/html; charset=utf-8` body.
    pub fn from_html(html: impl Into<String>) -> Self {
        Self::new()
            .with_header(CONTENT_TYPE, "text/html; charset=utf-8")
            .with_body(html.into())
    }

    /// `200 OK` with `value` serialised as an `application/json` body.
    #[cfg(feature = "json")]
    pub fn from_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        Ok(Self::new()
            .with_header(CONTENT_TYPE, "application/json")
            .with_body(serde_json::to_vec(value)?))
    }

    pub(crate) fn from_wasi(response: IncomingResponse) -> Result<Self, Error> {
        let status = StatusCode::from_u16(response.status())?;
        let headers = Headers::from_host(response.headers());
        let body = IncomingBody::new(response.consume().ok());
        Ok(Response {
            status,
            headers,
            body: body.into(),
        })
    }

    /// Sets the status.
    pub fn with_status(mut self, status: impl IntoStatus) -> Self {
        self.status = status.into_status();
        self
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: impl IntoStatus) {
        self.status = status.into_status();
    }

    /// Appends a header value.
    ///
    /// # Panics
    /// If the name or value is invalid; use [`Response::headers_mut`] to handle that.
    pub fn with_header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Debug,
    {
        let (name, value) = crate::fields::header_pair(name, value);
        self.headers.append(name, value);
        self
    }

    /// Replaces a header's values.
    ///
    /// # Panics
    /// If the name or value is invalid; use [`Response::headers_mut`] to handle that.
    pub fn set_header<K, V>(&mut self, name: K, value: V)
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Debug,
    {
        let (name, value) = crate::fields::header_pair(name, value);
        self.headers.insert(name, value);
    }

    /// Sets the body: bytes, text, a stream ([`crate::IncomingBody`]), or
    /// [`Body::from_reader`].
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body.
    pub fn set_body(&mut self, body: impl Into<Body>) {
        self.body = body.into();
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        self.headers.get()
    }

    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers.get_mut()
    }

    /// The first value of a header, if it is present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get().get(name)?.to_str().ok()
    }

    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Takes the body, leaving an empty one.
    pub fn take_body(&mut self) -> Body {
        std::mem::take(&mut self.body)
    }

    /// The body (an origin's streams; pass it on or read it).
    pub fn into_body(self) -> Body {
        self.body
    }

    /// Reads the whole body as UTF-8 text.
    pub fn into_string(self) -> Result<String, Error> {
        self.body.into_string()
    }

    /// Reads the whole body and parses it as JSON.
    #[cfg(feature = "json")]
    pub fn into_json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        self.body.into_json()
    }

    pub(crate) fn into_parts(self) -> (StatusCode, Headers, Body) {
        (self.status, self.headers, self.body)
    }
}
