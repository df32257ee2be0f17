//! Reads the whole request body (in chunks) and answers with its length.
use std::io::Read;

use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let mut body = req.into_body();
    let mut buf = vec![0; 64 << 10];
    let mut total: u64 = 0;
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok(Response::from_text(format!("{total}\n")))
}
