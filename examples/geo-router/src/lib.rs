//! Routes every visitor to the origin nearest them: the country of the client's IP
//! picks `origin-apac`, `origin-eu` or `origin-us`, and the origin's response is
//! passed through (its body forwarded inside the host) with `X-Edge-Country` added.

use verge::{Error, Request, Response};

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let country = req
        .client_ip()
        .and_then(verge::geo::lookup)
        .and_then(|geo| geo.country_code)
        .unwrap_or_else(|| "unknown".into());
    let backend = match country.as_str() {
        "JP" | "KR" | "SG" => "origin-apac",
        "DE" | "FR" | "GB" => "origin-eu",
        _ => "origin-us",
    };
    let mut resp = req.send(backend)?;
    resp.set_header("x-edge-country", &country);
    Ok(resp)
}
