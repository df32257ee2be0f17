//! One app, written in each language with Verge's SDK for it
//! (`tests/guests/py-app/app.py`, `tests/guests/js-app/sdk.js`), checked the same
//! way: KV, config, secrets, geolocation, the runtime, logging, a named backend and
//! a refused URL, rate limiting, the cache, and a handler that raises.
//!
//! The protocol both answer:
//! - `PUT /kv/KEY` stores the body with metadata `from the sdk` (201, `stored at
//!   generation N`); `GET /kv/KEY` answers it with `x-metadata`, or 404;
//! - `GET /count` increments `counter`;
//! - `GET /info?…` answers `{greeting, secret, requestId, app, country, query}`
//!   (`query`: each name with its values) and logs `info was asked for` at warn
//!   in context `api`;
//! - `GET /fetch/PATH` fetches PATH from the backend `origin` with `x-from: sdk` and
//!   answers `fetched: BODY` with its status; `GET /fetch-denied` fetches
//!   `http://example.invalid/` and answers 502 with the error;
//! - `GET /limited`: at most 1 request per second over 10 s per client, then 429;
//! - `GET /cached` answers `filled N` from the cache (60 s, surrogate key
//!   `reports`), N counting fills in KV; `POST /purge` purges `reports`;
//! - `GET /throw` raises `the handler gave up: card declined`.

use std::path::Path;
use std::time::Duration;

use super::origin::Origin;
use super::{Verge, client, request_id};

/// What `verge.toml` of the app needs, appended to the template's.
pub fn add_to_manifest(app: &Path, origin: &Origin) {
    std::fs::write(app.join("secrets.json"), r#"{"token": "s3cret"}"#).unwrap();
    let manifest = std::fs::read_to_string(app.join("verge.toml")).unwrap();
    std::fs::write(
        app.join("verge.toml"),
        format!(
            "{manifest}
[kv_stores.data]

[config]
greeting = \"hello from config\"

[secret_stores.keys]
file = \"secrets.json\"

[backends.origin]
url = \"http://127.0.0.1:{port}\"
allow_private = true

[geo.overrides.\"127.0.0.1\"]
country_code = \"JP\"
",
            port = origin.port()
        ),
    )
    .unwrap();
}

/// Checks every API of the app `name` served by `server`; returns the body of the
/// refused fetch and the request id of `/throw`, whose 500 it checked.
pub async fn check(server: &Verge, name: &str) -> (String, String) {
    let url = |path: &str| server.url(path);
    let resp = client()
        .put(url("/kv/greeting"))
        .body("stored by the sdk")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("stored at generation "), "{text}");
    let resp = client().get(url("/kv/greeting")).send().await.unwrap();
    assert_eq!(resp.headers()["x-metadata"], "from the sdk");
    assert_eq!(resp.text().await.unwrap(), "stored by the sdk");
    let resp = client().get(url("/kv/other")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    for expected in ["1", "2"] {
        let resp = client().get(url("/count")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), expected);
    }

    let resp = client().get(url("/info?a=1&a=2")).send().await.unwrap();
    let id = request_id(&resp);
    let info: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        info,
        serde_json::json!({
            "greeting": "hello from config", "secret": "s3cret", "requestId": id,
            "app": name, "country": "JP", "query": {"a": ["1", "2"]}
        })
    );
    let line = server.stdout.wait_for(Duration::from_secs(10), |l| {
        l.contains(r#""type":"log""#) && l.contains(&id)
    });
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (&line["level"], &line["context"], &line["message"]),
        (&"warn".into(), &"api".into(), &"info was asked for".into())
    );

    // A backend, by name, with the app's headers; a URL no rule allows is refused.
    let resp = client().get(url("/fetch/hello")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "fetched: hello from origin");
    let resp = client().get(url("/fetch/headers")).send().await.unwrap();
    let text = resp.text().await.unwrap();
    let seen: serde_json::Value =
        serde_json::from_str(text.strip_prefix("fetched: ").unwrap()).unwrap();
    assert_eq!(seen["headers"]["x-from"], "sdk", "{seen}");
    let resp = client().get(url("/fetch/missing")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client().get(url("/fetch-denied")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    let refused = resp.text().await.unwrap();

    // Rate limiting: 1 per second over 10 s lets the first requests through, then
    // the client is in the penalty box.
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(client().get(url("/limited")).send().await.unwrap().status());
    }
    assert_eq!(statuses[0], 200);
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");

    // The cache: filled once, served until purged, then filled again.
    for _ in 0..2 {
        let resp = client().get(url("/cached")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "filled 1");
    }
    let resp = client().post(url("/purge")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "purged 1\n");
    let resp = client().get(url("/cached")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "filled 2");

    // A handler that raises: 500, and the exception in the request's log lines.
    let resp = client().get(url("/throw")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let raised = request_id(&resp);
    server.stdout.wait_for(Duration::from_secs(10), |l| {
        l.contains(r#""stream":"stderr""#)
            && l.contains(&raised)
            && l.contains("the handler gave up: card declined")
    });
    (refused, raised)
}
