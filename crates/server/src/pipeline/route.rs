//! The first stage: checks the request head and finds the app for its host.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::ServerBody;
use crate::host;
use crate::registry::RoutedApp;
use crate::serve::Shared;

/// The app and the normalised host, or the response refusing the request.
pub(super) fn route(
    shared: &Shared,
    req: &Request<Incoming>,
) -> Result<(RoutedApp, String), Refusal> {
    if head_bytes(req) > shared.config.max_header_bytes {
        return Err(plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request head is larger than allowed\n".into(),
        ));
    }
    let raw_host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok());
    let Some(raw_host) = raw_host else {
        return Err(plain(
            StatusCode::BAD_REQUEST,
            "missing Host header\n".into(),
        ));
    };
    let Some(host) = host::normalize(raw_host) else {
        return Err(plain(
            StatusCode::BAD_REQUEST,
            format!("invalid Host header `{}`\n", raw_host.escape_debug()),
        ));
    };
    match shared.registry.resolve(Some(&host)) {
        Some(routed) => Ok((routed, host)),
        None => Err(plain(
            StatusCode::NOT_FOUND,
            format!("no app serves host `{host}`\n"),
        )),
    }
}

/// The size of a request's head as sent: request line and header lines.
fn head_bytes<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    let line = req.method().as_str().len() + target + 12;
    req.headers()
        .iter()
        .fold(line, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

/// A request refused before any app saw it.
pub(super) struct Refusal {
    status: StatusCode,
    text: String,
}

impl Refusal {
    pub(super) fn into_response(self) -> Response<ServerBody> {
        let mut response = Response::new(ServerBody::text(self.text));
        *response.status_mut() = self.status;
        response
    }
}

fn plain(status: StatusCode, text: String) -> Refusal {
    Refusal { status, text }
}
