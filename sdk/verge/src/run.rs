//! Runs a handler for one `wasi:http` request and sends its response.

use http::header::CONTENT_LENGTH;
use http::HeaderValue;
use wasip2::http::types::{ErrorCode, IncomingRequest, OutgoingResponse, ResponseOutparam};

use crate::body::{Body, BodyInner};
use crate::{Error, Request, Response};

/// Called by the `#[verge::main]` expansion for every request.
pub fn run(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    handler: fn(Request) -> Result<Response, Error>,
) {
    crate::log::init();
    let response = Request::from_wasi(request).and_then(handler);
    let response = response.unwrap_or_else(|err| {
        eprintln!("handler failed: {err:?}");
        Response::from_status(500).with_body("500 Internal Server Error\n")
    });
    if let Err(err) = send(response, response_out) {
        eprintln!("sending the response failed: {err:?}");
    }
}

fn send(response: Response, response_out: ResponseOutparam) -> Result<(), Error> {
    let (status, mut headers, body) = response.into_parts();
    // A body of known length goes out with content-length, not chunked.
    if let Some(len) = body.len_hint() {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    let fields = match headers.into_fields() {
        Ok(fields) => fields,
        Err(e) => {
            ResponseOutparam::set(
                response_out,
                Err(ErrorCode::InternalError(Some(e.to_string()))),
            );
            return Err(e);
        }
    };
    let outgoing = OutgoingResponse::new(fields);
    // A new response is 200 already; one host call fewer for most.
    if status != http::StatusCode::OK {
        outgoing
            .set_status_code(status.as_u16())
            .map_err(|()| anyhow::anyhow!("the host refused status {status}"))?;
    }
    // A stream passed on untouched (an origin's body) is forwarded by the host itself
    // once the response is set: the instance can end without waiting for it.
    let body = match body.0 {
        BodyInner::Incoming(incoming) => {
            let passed = incoming.pass_through(&outgoing);
            let response = match passed {
                Ok(()) => Ok(outgoing),
                Err(_) => Err(ErrorCode::InternalError(None)),
            };
            ResponseOutparam::set(response_out, response);
            return passed;
        }
        other => Body(other),
    };
    let outgoing_body = outgoing
        .body()
        .map_err(|()| anyhow::anyhow!("the response body was already taken"))?;
    ResponseOutparam::set(response_out, Ok(outgoing));
    body.write_to(outgoing_body)
}
