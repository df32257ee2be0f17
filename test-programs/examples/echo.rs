//! Streams the request body back as the response body, never holding it whole.
use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let content_type = req
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok(Response::new()
        .with_header("content-type", content_type)
        .with_body(req.into_body()))
}
