//! `verge:edge/cache` through the SDK, for the host's tests.
//!
//! - `GET /tx/KEY?ms=N&ttl=S&sk=K`: a transaction. A hit answers `hit VALUE`; the
//!   request that must insert sleeps N ms, stores `v-NONCE` and answers `miss VALUE`;
//!   a pass answers `pass`. `/tx-trap/KEY` panics instead of inserting, and
//!   `/tx-cancel/KEY` cancels (each after printing `filling KEY` and sleeping N ms).
//! - `GET /get/KEY`: a lookup with the request's headers (for variants): `found
//!   BODY` with `x-meta`, `x-keys`, `x-stale`, `x-len` headers, or 404.
//! - `PUT /put/KEY?ttl=S&swr=S&sk=K1,K2&vary=H1,H2&meta=M`: stores the request body
//!   (streamed) made for the request's headers: 201, 413 too large, 400 invalid.
//! - `GET /update/KEY?ttl=S`: a transaction on a stale object: `update`s it fresh.
//! - `POST /purge/SKEY?soft=1`, `POST /purge-key/KEY`: purges; answers the count.
use std::time::Duration;

use verge::cache::{self, CacheError, Transaction};
use verge::{Error, HeaderName, Request, Response};

fn secs(req: &Request, name: &str, default: u64) -> Duration {
    Duration::from_secs(
        req.query_param(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn list(req: &Request, name: &str) -> Vec<String> {
    req.query_param(name)
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

fn refusal(e: CacheError) -> Response {
    let status = match e {
        CacheError::TooLarge(_) => 413,
        CacheError::Invalid(_) => 400,
    };
    Response::from_text(format!("{e}\n")).with_status(status)
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    let path = req.path().to_owned();
    let (route, key) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path.as_str(), ""));
    let pause = Duration::from_millis(
        req.query_param("ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    match route {
        "tx" | "tx-trap" | "tx-cancel" => {
            let tx = match Transaction::lookup(key) {
                Ok(tx) => tx,
                Err(e) => return Ok(refusal(e)),
            };
            if let Some(found) = tx.found() {
                let value = String::from_utf8(found.to_bytes()?)?;
                return Ok(Response::from_text(format!("hit {value}")));
            }
            if !tx.must_insert() {
                return Ok(Response::from_text("pass"));
            }
            println!("filling {key}");
            std::thread::sleep(pause);
            match route {
                "tx-trap" => panic!("the winner fails before inserting {key}"),
                "tx-cancel" => {
                    tx.cancel();
                    Ok(Response::from_text("cancelled"))
                }
                _ => {
                    let value = format!("v-{:016x}", wasip2::random::random::get_random_u64());
                    tx.insert(secs(&req, "ttl", 60))
                        .surrogate_keys(list(&req, "sk"))
                        .execute(value.clone())?;
                    Ok(Response::from_text(format!("miss {value}")))
                }
            }
        }
        "get" => match cache::lookup_varied(key, req.headers()) {
            Ok(Some(found)) => Ok(Response::from_body(found.body())
                .with_header("x-meta", String::from_utf8(found.user_metadata())?)
                .with_header("x-keys", found.surrogate_keys().join(","))
                .with_header("x-stale", found.is_stale().to_string())
                .with_header("x-len", found.len().to_string())),
            Ok(None) => Ok(Response::from_status(404)),
            Err(e) => Ok(refusal(e)),
        },
        "put" => {
            let vary: Vec<HeaderName> = list(&req, "vary")
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect();
            let insert = cache::insert(key, secs(&req, "ttl", 60))
                .stale_while_revalidate(secs(&req, "swr", 0))
                .surrogate_keys(list(&req, "sk"))
                .vary_by(vary)
                .headers(&req.headers().clone())
                .user_metadata(req.query_param("meta").unwrap_or_default());
            match insert.execute(req.into_body()) {
                Ok(()) => Ok(Response::from_status(201)),
                Err(e) => Ok(refusal(e)),
            }
        }
        "update" => {
            let tx = Transaction::lookup(key)?;
            match (tx.found(), tx.must_insert()) {
                (Some(found), true) if found.is_stale() => {
                    tx.update(secs(&req, "ttl", 60))?;
                    Ok(Response::from_text("updated"))
                }
                (Some(_), _) => Ok(Response::from_text("fresh")),
                (None, _) => Ok(Response::from_status(404)),
            }
        }
        "purge" => {
            let soft = req.query_param("soft").is_some();
            let purged = if soft {
                cache::soft_purge_surrogate_key(key)
            } else {
                cache::purge_surrogate_key(key)
            };
            match purged {
                Ok(n) => Ok(Response::from_text(format!("purged {n}"))),
                Err(e) => Ok(refusal(e)),
            }
        }
        "purge-key" => Ok(Response::from_text(format!(
            "purged {}",
            cache::purge(key)?
        ))),
        _ => Ok(Response::from_status(404)),
    }
}
