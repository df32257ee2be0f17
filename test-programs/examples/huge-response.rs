//! Streams `?mib=N` MiB (default 64) of a repeating pattern, never holding it whole.
use std::io::Read;

use verge::{Body, Error, Request, Response};

struct Pattern {
    remaining: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.remaining as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = b'a' + (i % 26) as u8;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let mib: u64 = req
        .query()
        .and_then(|q| q.strip_prefix("mib="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    Ok(Response::new().with_body(Body::from_reader(Pattern {
        remaining: mib << 20,
    })))
}
