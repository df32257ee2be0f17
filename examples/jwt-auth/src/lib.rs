//! JWT authentication at the edge.
//!
//! Every request needs `Authorization: Bearer <JWT>`, signed with HS256 (the shared
//! key `hs256` of the secret store `jwt`) or RS256 (the RSA public key `rs256`, PEM).
//! `exp` and `nbf` are checked with `[config] leeway` seconds of clock skew, `iss`
//! against `[config] issuer`, `aud` (a string or a list) against `[config] audience`.
//!
//! A missing or bad token answers 401 with `WWW-Authenticate` saying why (RFC 6750).
//! A good one is forwarded to the backend `origin` without the `Authorization`
//! header, with the claims listed in `[config] claim_headers` as headers; headers of
//! those names sent by the client are removed first, so they cannot be forged.

mod jwt;

use verge::{Error, Request, Response};

use crate::jwt::{Keys, Policy, Rejection};

fn unauthorized(rejection: &Rejection) -> Response {
    let challenge = match rejection {
        // RFC 6750 §3.1: no error code when the request had no credentials.
        Rejection::Missing => "Bearer realm=\"api\"".to_owned(),
        other => {
            format!("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{other}\"")
        }
    };
    Response::from_status(401)
        .with_header("www-authenticate", challenge)
        .with_header("cache-control", "no-store")
        .with_body(format!("unauthorized: {rejection}\n"))
}

/// `claim:header` pairs from `[config] claim_headers`.
fn claim_headers() -> Vec<(String, String)> {
    verge::config::get("claim_headers")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.trim().split_once(':'))
        .map(|(claim, header)| (claim.trim().to_owned(), header.trim().to_ascii_lowercase()))
        .collect()
}

#[verge::main]
fn main(mut req: Request) -> Result<Response, Error> {
    let policy = Policy {
        issuer: verge::config::get("issuer"),
        audience: verge::config::get("audience"),
        leeway_secs: verge::config::get("leeway")
            .and_then(|l| l.parse().ok())
            .unwrap_or(30),
    };
    let keys = Keys {
        hs256: verge::secrets::get("jwt", "hs256")?.map(|s| s.plaintext()),
        rs256_pem: verge::secrets::get("jwt", "rs256")?.and_then(|s| s.text()),
    };
    let token = req
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_owned);
    let claims = match token {
        None => return Ok(unauthorized(&Rejection::Missing)),
        Some(token) => match jwt::verify(&token, &keys, &policy, jwt::now()) {
            Ok(claims) => claims,
            Err(rejection) => return Ok(unauthorized(&rejection)),
        },
    };
    req.headers_mut().remove("authorization");
    for (claim, header) in claim_headers() {
        req.headers_mut().remove(header.as_str());
        let value = match claims.get(&claim) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => continue,
            Some(other) => other.to_string(),
        };
        req.set_header(header.as_str(), value);
    }
    req.send("origin")
}
