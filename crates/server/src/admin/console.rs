//! `GET /console` and `/console/{file}`: the web console's embedded files
//! (`verge-console`), served without a token (the page asks for one and sends it
//! with each API call), with their security headers and `ETag`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::{AdminRequest, Reply, full};

pub(super) fn serve(req: &AdminRequest) -> Reply {
    let name = req
        .uri()
        .path()
        .strip_prefix("/console")
        .unwrap_or_default()
        .trim_matches('/');
    let mut reply = match verge_console::asset(name) {
        Some(asset) => {
            let etag = verge_console::etag(asset);
            let fresh = req
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
            let mut reply = if fresh {
                let mut reply = Response::new(full(Bytes::new()));
                *reply.status_mut() = StatusCode::NOT_MODIFIED;
                reply
            } else {
                let mut reply = Response::new(full(Bytes::from_static(asset.bytes)));
                reply.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                );
                reply
            };
            reply
                .headers_mut()
                .insert(header::ETAG, HeaderValue::from_static(etag));
            reply
        }
        None => {
            let mut reply = Response::new(full(Bytes::from_static(b"no such console file\n")));
            *reply.status_mut() = StatusCode::NOT_FOUND;
            reply.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            reply
        }
    };
    for (name, value) in verge_console::HEADERS {
        reply
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    reply
}
