//! `Hello, world!` through the SDK, and one log line per request.
use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    println!("hello guest saw {} {}", req.method(), req.path());
    Ok(Response::from_text("Hello, world!\n"))
}
