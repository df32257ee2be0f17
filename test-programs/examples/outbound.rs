//! Outbound HTTP through plain `wasi:http/outgoing-handler` (no SDK), as any
//! component would do it. `/fetch/SCHEME/AUTHORITY/PATH?QUERY` sends the client's
//! method, headers and body there and passes the answer back; both bodies are
//! spliced host-side, never copied through guest memory. A failure answers 502 with
//! `error: CODE`. `/many/N/SCHEME/AUTHORITY/PATH` sends N GET requests one after the
//! other and answers `ok=X failed=Y`.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, IncomingResponse, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

struct Component;
wasip2::http::proxy::export!(Component);

/// Headers Wasmtime refuses in a message a guest builds.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
];

fn copy_headers(entries: Vec<(String, Vec<u8>)>) -> Fields {
    let kept: Vec<_> = entries
        .into_iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str()))
        .collect();
    Fields::from_list(&kept).expect("valid headers")
}

/// Moves everything from `input` to `output` inside the host.
fn splice_all(input: &InputStream, output: &OutputStream) -> Result<(), String> {
    loop {
        match output.blocking_splice(input, 1 << 20) {
            Ok(_) => {}
            Err(StreamError::Closed) => return Ok(()),
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &str) {
    let response = OutgoingResponse::new(Fields::new());
    response.set_status_code(status).unwrap();
    let outgoing = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().unwrap();
    stream.blocking_write_and_flush(body.as_bytes()).unwrap();
    drop(stream);
    OutgoingBody::finish(outgoing, None).unwrap();
}

fn target(rest: &str) -> Option<(Scheme, String, String)> {
    let (scheme, rest) = rest.split_once('/')?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    Some((scheme, authority.to_string(), path.to_string()))
}

fn send(
    request: OutgoingRequest,
    body_from: Option<&InputStream>,
) -> Result<IncomingResponse, ErrorCode> {
    let body = request.body().unwrap();
    let future = outgoing_handler::handle(request, None)?;
    {
        let stream = body.write().unwrap();
        if let Some(input) = body_from {
            if let Err(e) = splice_all(input, &stream) {
                eprintln!("request body failed: {e}");
            }
        }
    }
    OutgoingBody::finish(body, None)?;
    future.subscribe().block();
    future.get().expect("ready").expect("first get")
}

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        if let Some(rest) = path.strip_prefix("/many/") {
            let (n, rest) = rest.split_once('/').unwrap();
            let (scheme, authority, path) = target(rest).unwrap();
            let (mut ok, mut failed) = (0, 0);
            for _ in 0..n.parse::<u32>().unwrap() {
                let req = OutgoingRequest::new(Fields::new());
                req.set_scheme(Some(&scheme)).unwrap();
                req.set_authority(Some(&authority)).unwrap();
                req.set_path_with_query(Some(&path)).unwrap();
                match send(req, None) {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            return respond(out, 200, &format!("ok={ok} failed={failed}"));
        }
        let Some((scheme, authority, path)) = path.strip_prefix("/fetch/").and_then(target) else {
            return respond(out, 404, "not found");
        };
        let req = OutgoingRequest::new(copy_headers(request.headers().entries()));
        req.set_method(&request.method()).unwrap();
        req.set_scheme(Some(&scheme)).unwrap();
        req.set_authority(Some(&authority)).unwrap();
        req.set_path_with_query(Some(&path)).unwrap();
        let client_body = request.consume().unwrap();
        let client_stream = client_body.stream().unwrap();
        let response = match send(req, Some(&client_stream)) {
            Ok(response) => response,
            Err(code) => {
                let code = format!("{code:?}");
                let code = code.trim_start_matches("ErrorCode::");
                return respond(out, 502, &format!("error: {code}"));
            }
        };
        let reply = OutgoingResponse::new(copy_headers(response.headers().entries()));
        reply.set_status_code(response.status()).unwrap();
        let origin_body = response.consume().unwrap();
        let origin_stream = origin_body.stream().unwrap();
        let outgoing = reply.body().unwrap();
        ResponseOutparam::set(out, Ok(reply));
        let result = {
            let stream = outgoing.write().unwrap();
            splice_all(&origin_stream, &stream)
        };
        drop(origin_stream);
        match result {
            Ok(()) => OutgoingBody::finish(outgoing, None).unwrap(),
            // Dropping the body unfinished tells the host the response is cut.
            Err(e) => eprintln!("origin body failed: {e}"),
        }
    }
}
