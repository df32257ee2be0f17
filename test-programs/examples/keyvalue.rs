//! The standard `wasi:keyvalue` (0.2.0-draft2) with bindings generated from the WIT
//! by wit-bindgen, no SDK: a component as written for Spin. Routes:
//!
//! - `GET|PUT|DELETE /kv/STORE/KEY`: get (404 when absent), set (the body), delete
//! - `GET /exists/STORE/KEY`: `true` or `false`
//! - `POST /incr/STORE/KEY?DELTA`: the new value
//! - `GET /keys/STORE`: every key, one per line, following cursors
//! - `POST /cas/STORE/KEY`: appends the body to the value with compare-and-swap; a
//!   write between reading and swapping (made by this guest on `?race`) makes the
//!   swap fail, and the retry with the fresh handle succeeds. Answers
//!   `attempts=N value=V`.
//! - `POST /batch/STORE`: `set-many` of the JSON object in the body, then `get-many`
//!   of its keys plus `missing`, answered as JSON; `DELETE /batch/STORE?k1,k2`
//!   deletes many.
//!
//! Errors answer 404 `no-such-store`, or 500 with the store's message.

use std::io::{Read, Write};

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    path: "../wit",
    world: "wasi:keyvalue/imports@0.2.0-draft2",
});

use wasi::keyvalue0_2_0_draft2::{atomics, batch, store};

struct Handler;

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    response.set_status_code(status).expect("status");
    let outgoing = response.body().expect("body");
    ResponseOutparam::set(out, Ok(response));
    {
        let mut stream = outgoing.write().expect("stream");
        stream.write_all(body).expect("write");
        stream.flush().expect("flush");
    }
    OutgoingBody::finish(outgoing, None).expect("finish");
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let body = request.consume().expect("body");
    let mut bytes = Vec::new();
    body.stream()
        .expect("stream")
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

fn error_answer(e: store::Error) -> (u16, Vec<u8>) {
    match e {
        store::Error::NoSuchStore => (404, b"no-such-store".to_vec()),
        store::Error::AccessDenied => (403, b"access-denied".to_vec()),
        store::Error::Other(text) => (500, text.into_bytes()),
    }
}

fn handle(request: &IncomingRequest) -> Result<(u16, Vec<u8>), store::Error> {
    let path_query = request.path_with_query().unwrap_or_default();
    let (path, query) = path_query.split_once('?').unwrap_or((&path_query, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    let method = request.method();
    match (method, parts.as_slice()) {
        (Method::Get, ["kv", name, key]) => Ok(match store::open(name)?.get(key)? {
            Some(value) => (200, value),
            None => (404, b"absent".to_vec()),
        }),
        (Method::Put, ["kv", name, key]) => {
            let bucket = store::open(name)?;
            bucket.set(key, &read_body(request))?;
            Ok((200, b"stored".to_vec()))
        }
        (Method::Delete, ["kv", name, key]) => {
            store::open(name)?.delete(key)?;
            Ok((200, b"deleted".to_vec()))
        }
        (Method::Get, ["exists", name, key]) => Ok((
            200,
            store::open(name)?.exists(key)?.to_string().into_bytes(),
        )),
        (Method::Post, ["incr", name, key]) => {
            let delta = query.parse().unwrap_or(1);
            let bucket = store::open(name)?;
            Ok((
                200,
                atomics::increment(&bucket, key, delta)?
                    .to_string()
                    .into_bytes(),
            ))
        }
        (Method::Get, ["keys", name]) => {
            let bucket = store::open(name)?;
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let page = bucket.list_keys(cursor.as_deref())?;
                all.extend(page.keys);
                match page.cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            Ok((200, all.join("\n").into_bytes()))
        }
        (Method::Post, ["cas", name, key]) => {
            let bucket = store::open(name)?;
            let suffix = read_body(request);
            let mut cas = atomics::Cas::new(&bucket, key)?;
            let mut attempts = 0;
            loop {
                attempts += 1;
                let mut value = cas.current()?.unwrap_or_default();
                value.extend_from_slice(&suffix);
                if query == "race" && attempts == 1 {
                    bucket.set(key, b"raced-")?;
                }
                match atomics::swap(cas, &value) {
                    Ok(()) => {
                        let now = bucket.get(key)?.unwrap_or_default();
                        let text = format!(
                            "attempts={attempts} value={}",
                            String::from_utf8_lossy(&now)
                        );
                        return Ok((200, text.into_bytes()));
                    }
                    Err(atomics::CasError::CasFailed(fresh)) => cas = fresh,
                    Err(atomics::CasError::StoreError(e)) => return Err(e),
                }
            }
        }
        (Method::Post, ["batch", name]) => {
            let bucket = store::open(name)?;
            let items: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&read_body(request)).unwrap_or_default();
            let pairs: Vec<(String, Vec<u8>)> = items
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().unwrap_or_default().as_bytes().to_vec(),
                    )
                })
                .collect();
            batch::set_many(&bucket, &pairs)?;
            let mut keys: Vec<String> = items.keys().cloned().collect();
            keys.push("missing".into());
            let got = batch::get_many(&bucket, &keys)?;
            let json: serde_json::Map<String, serde_json::Value> = got
                .into_iter()
                .map(|(k, v)| {
                    let v = v.map_or(serde_json::Value::Null, |v| {
                        serde_json::Value::String(String::from_utf8_lossy(&v).into_owned())
                    });
                    (k, v)
                })
                .collect();
            Ok((200, serde_json::to_vec(&json).expect("json")))
        }
        (Method::Delete, ["batch", name]) => {
            let bucket = store::open(name)?;
            let keys: Vec<String> = query.split(',').map(str::to_owned).collect();
            batch::delete_many(&bucket, &keys)?;
            Ok((200, b"deleted".to_vec()))
        }
        _ => Ok((404, b"no such route".to_vec())),
    }
}

impl Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let (status, body) = handle(&request).unwrap_or_else(error_answer);
        respond(out, status, &body);
    }
}

wasip2::http::proxy::export!(Handler);
