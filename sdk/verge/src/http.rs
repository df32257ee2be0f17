//! Sending requests to origins through the standard `wasi:http/outgoing-handler`.
//!
//! - [`crate::Request::send`] sends to a backend declared in `verge.toml`
//!   (`[backends.NAME]`).
//! - [`fetch`] and [`send`] go to a URL, which must match an `[egress] allow`
//!   pattern.
//!
//! A request the host refuses, or an origin that fails, gives a [`SendError`] naming
//! the `wasi:http` error code.

use std::fmt;

use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Method};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{self as wasi, ErrorCode, OutgoingRequest};

use crate::{Error, Request, Response};

/// `GET url`.
///
/// ```no_run
/// # fn main() -> Result<(), verge::Error> {
/// let status = verge::http::fetch("https://status.example.com/health")?.status();
/// # Ok(()) }
/// ```
pub fn fetch(url: &str) -> Result<Response, Error> {
    send(Request::get(url)?)
}

/// Sends `req` to its own (absolute) URL.
pub fn send(req: Request) -> Result<Response, Error> {
    send_to(req, None)
}

/// Why an outbound request failed.
#[derive(Debug, Clone)]
pub struct SendError {
    destination: String,
    code: ErrorCode,
}

impl SendError {
    /// The `wasi:http` error code: `HttpRequestDenied` when no backend or egress rule
    /// allows the destination, `DestinationIpProhibited` for private addresses,
    /// `ConnectionRefused`, `DnsError`, `HttpResponseTimeout`, ….
    pub fn code(&self) -> &ErrorCode {
        &self.code
    }

    /// Whether the host refused to send it at all (no backend of that name, no egress
    /// rule, or too many outbound requests).
    pub fn is_denied(&self) -> bool {
        matches!(self.code, ErrorCode::HttpRequestDenied)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = format!("{:?}", self.code);
        let code = code.trim_start_matches("ErrorCode::");
        write!(f, "the request to {} failed: {code}", self.destination)
    }
}

impl std::error::Error for SendError {}

pub(crate) fn send_to(req: Request, backend: Option<&str>) -> Result<Response, Error> {
    let (method, uri, mut headers, body) = req.into_parts();
    let (scheme, authority, destination) = match backend {
        Some(name) => (
            wasi::Scheme::Http,
            name.to_owned(),
            format!("backend `{name}`"),
        ),
        None => {
            let scheme = match uri.scheme_str() {
                Some("http") => wasi::Scheme::Http,
                Some("https") => wasi::Scheme::Https,
                Some(other) => wasi::Scheme::Other(other.to_owned()),
                None => anyhow::bail!("`{uri}` is not an absolute URL (https://host/path)"),
            };
            let authority = uri
                .authority()
                .ok_or_else(|| anyhow::anyhow!("`{uri}` has no host"))?
                .to_string();
            (scheme, authority, format!("`{uri}`"))
        }
    };
    if let Some(len) = body.len_hint() {
        if len > 0 || method != Method::GET {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    let outgoing = OutgoingRequest::new(headers.into_fields()?);
    outgoing
        .set_method(&to_wasi_method(&method))
        .map_err(|()| anyhow::anyhow!("the host refused method {method}"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| anyhow::anyhow!("the host refused the scheme of {destination}"))?;
    outgoing
        .set_authority(Some(&authority))
        .map_err(|()| anyhow::anyhow!("the host refused the authority `{authority}`"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|()| anyhow::anyhow!("the host refused the path `{path}`"))?;
    let outgoing_body = outgoing
        .body()
        .map_err(|()| anyhow::anyhow!("the request body was already taken"))?;
    let fail = |code| SendError {
        destination: destination.clone(),
        code,
    };
    // Hand the request over first, so its body streams to the origin while it is
    // written (a large body never waits whole in a buffer).
    let pending = outgoing_handler::handle(outgoing, None).map_err(fail)?;
    // The body's outcome is not the request's: an origin may answer before it has read
    // the whole body (an error, or a GET whose empty body it never waited for), which
    // closes the stream under the writer; a refused or failed request closes it too,
    // and then the response's error code says more than the write error would.
    let _ = body.write_to(outgoing_body);
    pending.subscribe().block();
    let response = pending
        .get()
        .expect("the response is ready after the pollable fired")
        .map_err(|()| anyhow::anyhow!("the response was already taken"))?
        .map_err(fail)?;
    Response::from_wasi(response)
}

fn to_wasi_method(method: &Method) -> wasi::Method {
    match *method {
        Method::GET => wasi::Method::Get,
        Method::HEAD => wasi::Method::Head,
        Method::POST => wasi::Method::Post,
        Method::PUT => wasi::Method::Put,
        Method::DELETE => wasi::Method::Delete,
        Method::CONNECT => wasi::Method::Connect,
        Method::OPTIONS => wasi::Method::Options,
        Method::TRACE => wasi::Method::Trace,
        Method::PATCH => wasi::Method::Patch,
        ref other => wasi::Method::Other(other.as_str().to_owned()),
    }
}
