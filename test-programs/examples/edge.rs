//! The `verge:edge` APIs and the SDK's outbound calls, reported as JSON:
//! `/info` (client IP, its location, request/trace id, node, app, version, CPU, the
//! URL as the guest sees it, TLS parameters),
//! `/geo?ip=IP` (a lookup; 400 for text that is not an address),
//! `/fetch?url=URL` (`verge::http::fetch`, passed through with `x-fetched: yes`, or
//! 502 naming the error), `/send/BACKEND` (the request forwarded with
//! `Request::send`).
use verge::{Error, Request, Response};

fn geo_json(geo: Option<verge::geo::Geo>) -> serde_json::Value {
    match geo {
        None => serde_json::Value::Null,
        Some(g) => serde_json::json!({
            "country_code": g.country_code, "country_name": g.country_name,
            "continent_code": g.continent_code, "region_code": g.region_code,
            "region": g.region, "city": g.city, "postal_code": g.postal_code,
            "latitude": g.latitude, "longitude": g.longitude, "time_zone": g.time_zone,
            "asn": g.asn, "as_organization": g.as_organization,
        }),
    }
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    match req.path() {
        "/info" => {
            let client = req.client_ip();
            Response::from_json(&serde_json::json!({
                "client_ip": client.map(|ip| ip.to_string()),
                "geo": geo_json(client.and_then(verge::geo::lookup)),
                "request_id": verge::runtime::request_id(),
                "trace_id": verge::runtime::trace_id(),
                "node": verge::runtime::node_name(),
                "app": verge::runtime::app_name(),
                "version": verge::runtime::app_version(),
                "cpu_used_us": verge::runtime::cpu_used().as_micros() as u64,
                "cpu_limit_us": verge::runtime::cpu_limit().as_micros() as u64,
                "url": req.uri().to_string(),
                "tls": req.tls().map(|tls| serde_json::json!({
                    "protocol": tls.protocol, "cipher_suite": tls.cipher_suite,
                    "server_name": tls.server_name, "alpn": tls.alpn,
                })),
            }))
        }
        "/geo" => {
            let text = req.query_param("ip").unwrap_or_default();
            match text.parse() {
                Ok(ip) => Response::from_json(&geo_json(verge::geo::lookup(ip))),
                Err(_) => Ok(Response::from_status(400).with_body(format!("bad ip {text:?}"))),
            }
        }
        "/fetch" => {
            let url = req.query_param("url").unwrap_or_default();
            match verge::http::fetch(&url) {
                Ok(resp) => Ok(resp.with_header("x-fetched", "yes")),
                Err(e) => Ok(Response::from_status(502).with_body(e.to_string())),
            }
        }
        p if p.starts_with("/send/") => {
            let backend = p["/send/".len()..].to_owned();
            req.send(&backend)
        }
        _ => Ok(Response::from_status(404)),
    }
}
