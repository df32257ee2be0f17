//! A response whose caching headers the request chooses, for the HTTP cache's tests.
//! Every run draws a new nonce (body and `x-nonce`), so a test can tell a cached
//! answer from a fresh guest run.
//!
//! Query parameters set response headers: `cc` Cache-Control, `sc` Surrogate-Control,
//! `sk` Surrogate-Key, `etag` ETag (quoted here), `lm` Last-Modified, `vary` Vary,
//! `age` Age, `cookie` Set-Cookie, `expires` Expires, `location` Location, `cl`
//! Content-Location; `status` the status; `size` a
//! body of that many bytes (`abc…z` repeated) instead of the nonce text, written in
//! 8 KiB pieces `drip` ms apart when given; `ms` sleeps first. A request header `x-fail: 1` answers 500; an `If-None-Match` equal to the
//! configured ETag answers 304 with `x-revalidated: 1`.
use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let param = |name: &str| req.query_param(name);
    if let Some(ms) = param("ms").and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let nonce = wasip2::random::random::get_random_u64();
    if req.header("x-fail") == Some("1") {
        return Ok(Response::from_text(format!("failed {nonce:016x}\n")).with_status(500));
    }
    let etag = param("etag").map(|e| format!("\"{e}\""));
    let revalidated = etag.is_some() && req.header("if-none-match") == etag.as_deref();
    let mut response = if revalidated {
        Response::from_status(304).with_header("x-revalidated", "1")
    } else if let Some(size) = param("size").and_then(|v| v.parse::<usize>().ok()) {
        let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        match param("drip").and_then(|v| v.parse().ok()) {
            Some(pause_ms) => Response::from_body(verge::Body::from_reader(Drip {
                body,
                sent: 0,
                pause_ms,
            })),
            None => Response::from_body(body),
        }
    } else {
        let lang = req.header("accept-language").unwrap_or("-");
        Response::from_text(format!("nonce {nonce:016x} lang {lang}\n"))
    };
    if let Some(status) = param("status").and_then(|v| v.parse::<u16>().ok()) {
        response.set_status(status);
    }
    response.set_header("x-nonce", format!("{nonce:016x}"));
    for (param_name, header) in [
        ("cc", "cache-control"),
        ("cdn", "cdn-cache-control"),
        ("sc", "surrogate-control"),
        ("sk", "surrogate-key"),
        ("lm", "last-modified"),
        ("vary", "vary"),
        ("age", "age"),
        ("cookie", "set-cookie"),
        ("expires", "expires"),
        ("location", "location"),
        ("cl", "content-location"),
    ] {
        if let Some(value) = param(param_name) {
            response.set_header(header, value);
        }
    }
    if let Some(etag) = etag {
        response.set_header("etag", etag);
    }
    Ok(response)
}

/// A body written slowly: a pause before every 8 KiB.
struct Drip {
    body: Vec<u8>,
    sent: usize,
    pause_ms: u64,
}

impl std::io::Read for Drip {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.body[self.sent..];
        if rest.is_empty() {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(self.pause_ms));
        let n = rest.len().min(buf.len()).min(8 << 10);
        buf[..n].copy_from_slice(&rest[..n]);
        self.sent += n;
        Ok(n)
    }
}
