//! Runs a handler for one `wasi:http` request and sends its response.

use std::io::{self, Write};

use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use crate::body::BodyInner;
use crate::{Error, Request, Response};

/// Called by the `#[verge::main]` expansion for every request.
pub fn run(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    handler: fn(Request) -> Result<Response, Error>,
) {
    let response = Request::from_wasi(request).and_then(handler);
    let response = response.unwrap_or_else(|err| {
        eprintln!("handler failed: {err:?}");
        Response::with_status(500).with_body("500 Internal Server Error\n")
    });
    if let Err(err) = send(response, response_out) {
        eprintln!("sending the response failed: {err:?}");
    }
}

fn send(response: Response, response_out: ResponseOutparam) -> Result<(), Error> {
    let (status, headers, body) = response.into_parts();
    let entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let fields = match Fields::from_list(&entries) {
        Ok(fields) => fields,
        Err(e) => {
            ResponseOutparam::set(
                response_out,
                Err(ErrorCode::InternalError(Some(format!(
                    "invalid response header: {e:?}"
                )))),
            );
            anyhow::bail!("the response has a header the host refuses: {e:?}");
        }
    };
    let outgoing = OutgoingResponse::new(fields);
    outgoing
        .set_status_code(status.as_u16())
        .map_err(|()| anyhow::anyhow!("the host refused status {status}"))?;
    let outgoing_body = outgoing
        .body()
        .map_err(|()| anyhow::anyhow!("the response body was already taken"))?;
    ResponseOutparam::set(response_out, Ok(outgoing));

    {
        let mut stream = outgoing_body
            .write()
            .map_err(|()| anyhow::anyhow!("the response body stream was already taken"))?;
        match body.0 {
            BodyInner::Bytes(bytes) => stream.write_all(&bytes)?,
            BodyInner::Reader(mut reader) => {
                io::copy(&mut reader, &mut stream)?;
            }
        }
        stream.flush()?;
    }
    OutgoingBody::finish(outgoing_body, None)?;
    Ok(())
}
