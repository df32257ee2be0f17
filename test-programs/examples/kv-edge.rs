//! `verge:edge/kv` through the SDK (`verge::kv`), driven over HTTP with JSON
//! answers. Every route takes `?store=NAME` (default `data`).
//!
//! - `PUT /item/KEY?mode=add|append|prepend&ttl_ms=N&metadata=TEXT&if_generation=G`:
//!   the body is the value (read whole, or with `&streamed` spliced into the store
//!   by `Insert::execute_body`); answers `{"generation": G}`
//! - `GET /item/KEY`: `{"value", "metadata", "generation", "expires_in_ms"}` or 404
//! - `GET /stream/KEY`: the value as the body, streamed (`Store::lookup_stream`)
//! - `GET /raw/KEY`: the value as the body, read whole (`Store::lookup`)
//! - `DELETE /item/KEY`: `{"deleted": bool}`
//! - `POST /incr/KEY?delta=N`: `{"value": N}`
//! - `GET /list?prefix=P&cursor=C&limit=N`: `{"keys", "cursor"}`
//! - `GET /keys?prefix=P`: every key, through `Store::keys`
//!
//! Errors answer 409 (exists, generation mismatch), 404 (no such store), 400
//! (invalid, not a number) or 500 (storage) with `{"error": KIND, "message"}`.
use std::time::{Duration, SystemTime};

use verge::kv::{InsertMode, KvError, Store};
use verge::{Error, Request, Response};

fn error(e: KvError) -> Result<Response, Error> {
    let (status, kind) = match &e {
        KvError::NoSuchStore(_) => (404, "no-such-store"),
        KvError::Invalid(_) => (400, "invalid"),
        KvError::Exists => (409, "exists"),
        KvError::GenerationMismatch { .. } => (409, "generation-mismatch"),
        KvError::NotANumber(_) => (400, "not-a-number"),
        KvError::Storage(_) => (500, "storage"),
    };
    let found = match &e {
        KvError::GenerationMismatch { found } => *found,
        _ => None,
    };
    Ok(Response::from_json(&serde_json::json!({
        "error": kind, "message": e.to_string(), "found": found,
    }))?
    .with_status(status))
}

fn handle(req: Request) -> Result<Result<Response, KvError>, Error> {
    let store_name = req.query_param("store").unwrap_or_else(|| "data".into());
    let store = match Store::open(&store_name) {
        Ok(store) => store,
        Err(e) => return Ok(Err(e)),
    };
    let path = req.path().to_owned();
    let key = path.split_once('/').map(|x| x.1).unwrap_or_default();
    let key = key
        .split_once('/')
        .map(|x| x.1)
        .unwrap_or_default()
        .to_owned();
    let q = |name: &str| req.query_param(name);
    let answer = match (req.method().as_str(), path.split('/').nth(1).unwrap_or("")) {
        ("PUT", "item") => {
            let mut insert = store.build_insert(&key);
            insert = match q("mode").as_deref() {
                Some("add") => insert.mode(InsertMode::Add),
                Some("append") => insert.mode(InsertMode::Append),
                Some("prepend") => insert.mode(InsertMode::Prepend),
                _ => insert,
            };
            if let Some(ms) = q("ttl_ms") {
                insert = insert.ttl(Duration::from_millis(ms.parse()?));
            }
            if let Some(m) = q("metadata") {
                insert = insert.metadata(m);
            }
            if let Some(g) = q("if_generation") {
                insert = insert.if_generation(g.parse()?);
            }
            if q("streamed").is_some() {
                insert.execute_body(req.into_body())
            } else {
                insert.execute(req.into_bytes()?)
            }
            .map(|g| serde_json::json!({ "generation": g }))
        }
        ("GET", "item") => match store.lookup(&key) {
            Ok(Some(e)) => Ok(serde_json::json!({
                "value": String::from_utf8_lossy(&e.value),
                "metadata": e.metadata,
                "generation": e.generation,
                "expires_in_ms": e.expires_at.map(|at| at
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .as_millis() as u64),
            })),
            Ok(None) => return Ok(Ok(Response::from_status(404))),
            Err(e) => Err(e),
        },
        ("GET", "stream") => {
            return Ok(match store.lookup_stream(&key) {
                Ok(Some(entry)) => Ok(Response::from_body(entry.body)
                    .with_header("content-length", entry.len.to_string())
                    .with_header("x-generation", entry.generation.to_string())),
                Ok(None) => Ok(Response::from_status(404)),
                Err(e) => Err(e),
            });
        }
        ("GET", "raw") => {
            return Ok(match store.lookup(&key) {
                Ok(Some(entry)) => Ok(Response::from_body(entry.value)),
                Ok(None) => Ok(Response::from_status(404)),
                Err(e) => Err(e),
            });
        }
        ("DELETE", "item") => store
            .delete(&key)
            .map(|deleted| serde_json::json!({ "deleted": deleted })),
        ("POST", "incr") => {
            let delta = q("delta").map_or(Ok(1), |d| d.parse())?;
            store
                .increment(&key, delta)
                .map(|v| serde_json::json!({ "value": v }))
        }
        ("GET", "list") => {
            let limit = q("limit").map_or(Ok(100), |l| l.parse())?;
            store
                .list(
                    &q("prefix").unwrap_or_default(),
                    q("cursor").as_deref(),
                    limit,
                )
                .map(|page| serde_json::json!({ "keys": page.keys, "cursor": page.cursor }))
        }
        ("GET", "keys") => {
            let prefix = q("prefix").unwrap_or_default();
            store
                .keys(&prefix)
                .collect::<Result<Vec<_>, _>>()
                .map(|keys| serde_json::json!({ "keys": keys }))
        }
        _ => return Ok(Ok(Response::from_status(404))),
    };
    Ok(answer.map(|json| Response::from_json(&json).expect("json")))
}

#[verge::main]
fn main(req: Request) -> Result<Response, Error> {
    match handle(req)? {
        Ok(resp) => Ok(resp),
        Err(e) => error(e),
    }
}
