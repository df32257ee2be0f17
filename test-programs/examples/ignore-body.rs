//! Answers at once, never reading the request body.
use verge::{Error, Request, Response};

#[verge::main]
fn main(_req: Request) -> Result<Response, Error> {
    Ok(Response::from_text("ignored\n"))
}
