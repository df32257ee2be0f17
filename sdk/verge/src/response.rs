//! The outgoing response.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};

use crate::body::Body;

/// An HTTP response under construction. Defaults to `200 OK` with an empty body.
#[derive(Debug, Default)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

impl Response {
    /// `200 OK`, no headers, empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty response with the given status.
    ///
    /// # Panics
    /// If `status` is not between 100 and 999.
    pub fn with_status(status: u16) -> Self {
        let status = StatusCode::from_u16(status).expect("an HTTP status between 100 and 999");
        Response {
            status,
            ..Self::default()
        }
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new()
            .with_header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .with_body(text.into())
    }

    /// `200 OK` with `value` serialised as an `application/json` body.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, crate::Error> {
        Ok(Self::new()
            .with_header(CONTENT_TYPE, "application/json")
            .with_body(serde_json::to_vec(value)?))
    }

    /// Sets the status.
    pub fn set_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Appends a header.
    ///
    /// # Panics
    /// If the name or value is not a valid header name or value; use
    /// [`Response::headers_mut`] to handle that case yourself.
    pub fn with_header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Debug,
    {
        self.headers.append(
            name.try_into().expect("a valid header name"),
            value.try_into().expect("a valid header value"),
        );
        self
    }

    /// Sets the body: bytes, text, a [`crate::RequestBody`], or [`Body::from_reader`].
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    pub fn body(&self) -> &Body {
        &self.body
    }

    pub(crate) fn into_parts(self) -> (StatusCode, HeaderMap, Body) {
        (self.status, self.headers, self.body)
    }
}
