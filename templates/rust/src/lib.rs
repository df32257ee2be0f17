//! A Verge app. `verge serve` builds it and serves it on http://127.0.0.1:7878.

use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    // Lines printed to stdout or stderr become log lines tagged with the request id.
    println!("{} {}", req.method(), req.path());

    match req.path() {
        "/" => {
            let greeting = verge::env::var("GREETING").unwrap_or_else(|| "Hello".into());
            Ok(Response::from_text(format!("{greeting} from {{name}}!\n")))
        }
        // Streams the request body back without holding it in memory.
        "/echo" => Ok(Response::new().with_body(req.into_body())),
        _ => Ok(Response::from_status(404).with_body("not found\n")),
    }
}
