//! Logging through the SDK: the `log` crate's macros (to `wasi:logging`) and named
//! endpoints.
//!
//! - `GET /levels`: one line per level, `debug` to `error`, plus a `critical`
//! - `GET /endpoint/NAME?lines=N`: N lines to the endpoint (404 naming the declared
//!   ones if there is none)
//! - `GET /secret`: logs the secret `keys/token` in a `log` line and an endpoint line
//! - `GET /say?text=T&status=N`: prints T to stdout, logs it at `warn`, and answers
//!   status N (200 by default): whatever a guest may write, for the console's tests
use std::io::Write;

use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let parts: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["levels"] => {
            log::trace!("a trace line");
            log::debug!("a debug line");
            log::info!("an info line");
            log::warn!(target: "checkout", "card declined for order {}", 42);
            log::error!("an error line");
            verge::log::critical("db", "a critical line");
            Ok(Response::from_text("logged"))
        }
        ["endpoint", name] => {
            let lines: usize = req.query_param("lines").map_or(Ok(1), |n| n.parse())?;
            let mut endpoint = match verge::log::Endpoint::open(name) {
                Ok(endpoint) => endpoint,
                Err(e) => return Ok(Response::from_status(404).with_body(e.to_string())),
            };
            for i in 0..lines {
                writeln!(endpoint, "event {i} of {lines}")?;
            }
            Ok(Response::from_text("written"))
        }
        ["secret"] => {
            let token = verge::secrets::get("keys", "token")?
                .and_then(|s| s.text())
                .unwrap_or_default();
            log::info!("calling the API with token {token}");
            verge::log::Endpoint::open("audit")?.write_line(&format!("token={token}"));
            Ok(Response::from_text("logged"))
        }
        ["say"] => {
            let text = req.query_param("text").unwrap_or_default();
            let status: u16 = req.query_param("status").map_or(Ok(200), |n| n.parse())?;
            println!("{text}");
            log::warn!("{text}");
            Ok(Response::from_status(status).with_body(text))
        }
        _ => Ok(Response::from_status(404)),
    }
}
