//! Reflects the request: method, path, query and every header as JSON; sets a
//! response header per `x-set-*` request header.
use std::collections::BTreeMap;

use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str()?.to_owned());
    }
    let reflected = serde_json::json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query(),
        "headers": headers,
    });
    let mut response = Response::from_json(&reflected)?.with_status(verge::StatusCode::ACCEPTED);
    for (name, value) in req.headers() {
        if let Some(rest) = name.as_str().strip_prefix("x-set-") {
            response = response.with_header(format!("x-got-{rest}"), value.clone());
        }
    }
    Ok(response)
}
