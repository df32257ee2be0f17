//! `verge:edge/ratelimit` through the SDK.
//!
//! - `POST /hit/ENTRY?delta=N`: increments counter `hits`
//! - `GET /count/ENTRY?seconds=N`, `GET /rate/ENTRY?window=1|10|60`
//! - `POST /check/ENTRY?limit=N&window=10&ttl=S`: 429 when blocked, else 200
//! - `POST /penalize/ENTRY?ttl=S`, `GET /penalized/ENTRY`
//!
//! Invalid arguments answer 400 with the host's message.
use std::time::Duration;

use verge::ratelimit::{Erl, PenaltyBox, RateCounter, RateLimitError, Window};
use verge::{Error, Request, Response};

fn window(text: Option<String>) -> Window {
    match text.as_deref() {
        Some("1") => Window::OneSecond,
        Some("60") => Window::SixtySeconds,
        _ => Window::TenSeconds,
    }
}

fn run(req: &Request) -> Result<Result<Response, RateLimitError>, Error> {
    let counter = RateCounter::open("hits");
    let penalty_box = PenaltyBox::open("blocked");
    let num = |name: &str, default: u64| -> Result<u64, Error> {
        Ok(req.query_param(name).map_or(Ok(default), |v| v.parse())?)
    };
    let parts: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    let text = |v: String| Response::from_text(v);
    Ok(match (req.method().as_str(), parts.as_slice()) {
        ("POST", ["hit", entry]) => counter
            .increment(entry, num("delta", 1)? as u32)
            .map(|()| text("ok".into())),
        ("GET", ["count", entry]) => counter
            .lookup_count(entry, Duration::from_secs(num("seconds", 60)?))
            .map(|c| text(c.to_string())),
        ("GET", ["rate", entry]) => counter
            .lookup_rate(entry, window(req.query_param("window")))
            .map(|r| text(r.to_string())),
        ("POST", ["check", entry]) => Erl::new(counter, penalty_box)
            .check_rate(
                entry,
                num("delta", 1)? as u32,
                window(req.query_param("window")),
                num("limit", 10)? as u32,
                Duration::from_secs(num("ttl", 60)?),
            )
            .map(|blocked| {
                if blocked {
                    Response::from_status(429).with_body("blocked")
                } else {
                    text("allowed".into())
                }
            }),
        ("POST", ["penalize", entry]) => penalty_box
            .add(entry, Duration::from_secs(num("ttl", 60)?))
            .map(|()| text("ok".into())),
        ("GET", ["penalized", entry]) => penalty_box.has(entry).map(|b| text(b.to_string())),
        _ => Ok(Response::from_status(404)),
    })
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    Ok(match run(&req)? {
        Ok(resp) => resp,
        Err(e) => Response::from_status(400).with_body(e.to_string()),
    })
}
