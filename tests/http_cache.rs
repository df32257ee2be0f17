//! The HTTP cache in front of a real guest: hits skip the guest, freshness follows the
//! response headers, variants, collapsing, conditional and range requests, stale
//! serving, and what must never be stored.

mod common;

use std::time::Duration;

use common::*;

const CACHE_ON: &str = "[http_cache]\nenabled = true\ndebug_headers = true\n";

fn serve(manifest: &str, extra: &[&str]) -> (Verge, tempfile::TempDir) {
    let app = app_dir_for(&guest("cacheable"), manifest);
    let mut args = vec![app.path().to_str().unwrap(), "--no-build"];
    args.extend_from_slice(extra);
    (Verge::serve(&args), app)
}

/// One answer, with what the test looks at.
struct Got {
    status: u16,
    nonce: String,
    x_cache: String,
    age: Option<u64>,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    access: serde_json::Value,
}

async fn send(verge: &Verge, req: reqwest::RequestBuilder) -> Got {
    let resp = req.send().await.unwrap();
    let id = request_id(&resp);
    let headers = resp.headers().clone();
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap().to_vec();
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    Got {
        status,
        nonce: header("x-nonce"),
        x_cache: header("x-cache"),
        // A guest may send any `Age` (a list, say); the cache's own is a number.
        age: headers
            .get("age")
            .and_then(|v| v.to_str().ok()?.parse().ok()),
        body,
        access: verge.access_line(&id),
        headers,
    }
}

/// `text` as a query parameter's value: everything but letters and digits escaped.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn get(verge: &Verge, path: &str) -> Got {
    send(verge, client().get(verge.url(path))).await
}

async fn get_with(verge: &Verge, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = client().get(verge.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(verge, req).await
}

#[tokio::test]
async fn hits_are_answered_without_running_the_guest() {
    let (verge, _app) = serve(CACHE_ON, &[]);
    let path = "/a?cc=max-age%3D60&sc=max-age%3D600&sk=items%20item-1";
    let miss = get(&verge, path).await;
    assert_eq!(miss.status, 200);
    assert_eq!(miss.x_cache, "MISS");
    assert_eq!(miss.access["cache"], "miss");
    assert!(miss.access["guest_cpu_us"].as_u64().unwrap() > 0);
    // Surrogate-Control and Surrogate-Key are for the edge only.
    assert!(!miss.headers.contains_key("surrogate-control"));
    assert!(!miss.headers.contains_key("surrogate-key"));
    assert_eq!(miss.headers["cache-control"], "max-age=60");

    let hit = get(&verge, path).await;
    assert_eq!(hit.status, 200);
    assert_eq!(hit.nonce, miss.nonce, "the same object");
    assert_eq!(hit.body, miss.body);
    assert_eq!(hit.x_cache, "HIT");
    assert!(hit.age.is_some(), "a hit carries Age");
    assert!(!hit.headers.contains_key("surrogate-control"));
    assert!(!hit.headers.contains_key("surrogate-key"));
    assert_ne!(hit.headers["x-request-id"], miss.headers["x-request-id"]);
    // Logged like any response, with no guest run.
    assert_eq!(hit.access["cache"], "hit");
    assert_eq!(hit.access["status"], 200);
    assert_eq!(hit.access["guest_cpu_us"], 0);
    assert_eq!(hit.access["outcome"], "ok");

    // HEAD is answered from the stored GET, without a body.
    let head = send(&verge, client().head(verge.url(path))).await;
    assert_eq!(
        (head.status, head.nonce.as_str()),
        (200, miss.nonce.as_str())
    );
    assert_eq!(head.headers["content-length"], miss.body.len().to_string());
    assert!(head.body.is_empty());

    // A different query is a different object.
    let other = get(&verge, "/a?cc=max-age%3D60&x=1").await;
    assert_eq!(other.access["cache"], "miss");

    // A successful POST to the URL invalidates it.
    let post = send(&verge, client().post(verge.url(path))).await;
    assert_eq!(post.access["cache"], "pass");
    let after = get(&verge, path).await;
    assert_eq!(after.access["cache"], "miss");
    assert_ne!(after.nonce, miss.nonce);

    // So does one to another URL of the host whose answer names it in Location or
    // Content-Location; a failed one, or one naming another host, changes nothing.
    assert_eq!(get(&verge, path).await.access["cache"], "hit");
    let failed = send(&verge, client().post(verge.url(path)).header("x-fail", "1")).await;
    assert_eq!(failed.status, 500);
    let elsewhere = format!(
        "/made?status=201&location={}",
        query_value(&format!("http://other.test{path}"))
    );
    let made = send(&verge, client().post(verge.url(&elsewhere))).await;
    assert_eq!(made.status, 201);
    assert_eq!(get(&verge, path).await.access["cache"], "hit");
    let relative = path.trim_start_matches('/');
    for named in [
        format!("/made?status=201&location={}", query_value(relative)),
        format!("/made?status=200&cl={}", query_value(path)),
    ] {
        let made = send(&verge, client().put(verge.url(&named))).await;
        assert!(made.status == 200 || made.status == 201, "{named}");
        assert_eq!(get(&verge, path).await.access["cache"], "miss", "{named}");
        assert_eq!(get(&verge, path).await.access["cache"], "hit", "{named}");
    }
}

#[tokio::test]
async fn what_must_not_be_stored_is_not() {
    let (verge, _app) = serve(CACHE_ON, &[]);
    for path in [
        "/no-store?cc=no-store%2C%20max-age%3D60",
        "/private?cc=private%2C%20max-age%3D60",
        "/cookie?cc=max-age%3D60&cookie=session%3D1",
        "/vary-star?cc=max-age%3D60&vary=*",
        "/no-headers",
        "/error?cc=max-age%3D60&status=503",
    ] {
        let first = get(&verge, path).await;
        let second = get(&verge, path).await;
        assert_ne!(first.nonce, second.nonce, "{path} was served from cache");
        assert_eq!(first.access["cache"], "miss", "{path}");
        // Known not to be cacheable now: later requests pass at once (hit-for-pass).
        assert_eq!(second.access["cache"], "pass", "{path}");
        assert_eq!(second.x_cache, "PASS", "{path}");
    }
    // The request may forbid storing too, for itself only: the next request stores.
    let path = "/req-no-store?cc=max-age%3D60";
    get_with(&verge, path, &[("cache-control", "no-store")]).await;
    assert_eq!(get(&verge, path).await.access["cache"], "miss");
    assert_eq!(get(&verge, path).await.access["cache"], "hit");
    // A request with Authorization is stored only when the response says public.
    let path = "/auth?cc=max-age%3D60";
    get_with(&verge, path, &[("authorization", "Bearer x")]).await;
    assert_eq!(get(&verge, path).await.access["cache"], "miss");
    let path = "/auth-public?cc=public%2C%20max-age%3D60";
    get_with(&verge, path, &[("authorization", "Bearer x")]).await;
    assert_eq!(get(&verge, path).await.access["cache"], "hit");
    // CDN-Cache-Control (RFC 9213) takes the place of Cache-Control at the edge,
    // both ways, and reaches the client as it was sent.
    let path = "/cdn-no-store?cdn=no-store&cc=max-age%3D3600";
    let first = get(&verge, path).await;
    assert_eq!(first.headers["cdn-cache-control"], "no-store");
    assert_eq!(get(&verge, path).await.access["cache"], "pass");
    let path = "/cdn-max-age?cdn=max-age%3D60&cc=no-store";
    let first = get(&verge, path).await;
    assert_eq!(first.headers["cdn-cache-control"], "max-age=60");
    assert_eq!(first.headers["cache-control"], "no-store");
    let hit = get(&verge, path).await;
    assert_eq!(hit.access["cache"], "hit");
    assert_eq!(hit.nonce, first.nonce);
    // `Age` with more than one member counts by the first: with max-age=3600,
    // `Age: 7200, 0` is stale from the start, not fresh.
    let path = "/age-list?cc=max-age%3D3600&age=7200%2C%200";
    get(&verge, path).await;
    assert_eq!(get(&verge, path).await.access["cache"], "miss");
    let path = "/age-one?cc=max-age%3D3600&age=0";
    get(&verge, path).await;
    assert_eq!(get(&verge, path).await.access["cache"], "hit");
    // An Expires in the past is stale at once.
    let path = "/expired?expires=Thu%2C%2001%20Jan%201970%2000%3A00%3A00%20GMT";
    get(&verge, path).await;
    assert_eq!(get(&verge, path).await.access["cache"], "miss");
    // A guest answering with an interim status (a 103, or a 101 that would take over
    // the connection) failed: the client gets a 500 that says why; nothing stored.
    for status in [100, 101, 103] {
        let path = format!("/interim-{status}?cc=max-age%3D60&status={status}");
        for _ in 0..2 {
            let got = get(&verge, &path).await;
            assert_eq!(got.status, 500, "{path}");
            let text = String::from_utf8_lossy(&got.body);
            assert!(text.contains("only an interim response"), "{text}");
            assert_eq!(got.access["outcome"], "interim_status", "{path}");
            assert_ne!(got.access["cache"], "hit", "{path}");
        }
    }
}

#[tokio::test]
async fn default_ttl_covers_responses_without_caching_headers_and_cookies_when_allowed() {
    let manifest = format!("{CACHE_ON}default_ttl = \"60s\"\nshare_set_cookie = true\n");
    let (verge, _app) = serve(&manifest, &[]);
    let first = get(&verge, "/plain").await;
    let second = get(&verge, "/plain").await;
    assert_eq!(
        (first.nonce.as_str(), second.x_cache.as_str()),
        (second.nonce.as_str(), "HIT")
    );
    // An explicit no-store still wins; a status not cacheable by default is not stored.
    for path in ["/ns?cc=no-store", "/found?status=302"] {
        let first = get(&verge, path).await;
        let second = get(&verge, path).await;
        assert_ne!(first.nonce, second.nonce, "{path}");
        assert_eq!(second.access["cache"], "pass", "{path}");
    }
    let path = "/cookie?cookie=a%3D1";
    let first = get(&verge, path).await;
    let second = get(&verge, path).await;
    assert_eq!(second.nonce, first.nonce);
    assert_eq!(second.headers["set-cookie"], "a=1");
}

#[tokio::test]
async fn concurrent_misses_run_the_guest_once() {
    let (verge, _app) = serve(CACHE_ON, &[]);
    let path = "/slow?ms=400&cc=max-age%3D60";
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let url = verge.url(path);
            tokio::spawn(async move {
                let resp = client().get(url).send().await.unwrap();
                let nonce = resp.headers()["x-nonce"].to_str().unwrap().to_owned();
                let id = request_id(&resp);
                // Read the body: a client that leaves before the end abandons the
                // fill, and a waiter then runs the guest again.
                resp.bytes().await.unwrap();
                (id, nonce)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let outcomes: Vec<String> = results
        .iter()
        .map(|(id, _)| verge.access_line(id)["cache"].as_str().unwrap().to_owned())
        .collect();
    let nonce = &results[0].1;
    assert!(
        results.iter().all(|(_, n)| n == nonce),
        "{results:?} {outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "miss").count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| o == "miss" || o == "collapsed" || o == "hit"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn variants_of_one_url_are_kept_apart() {
    let (verge, _app) = serve(CACHE_ON, &[]);
    let path = "/greet?cc=max-age%3D60&vary=Accept-Language";
    let en = get_with(&verge, path, &[("accept-language", "en")]).await;
    let de = get_with(&verge, path, &[("accept-language", "de")]).await;
    assert_ne!(en.nonce, de.nonce);
    assert!(String::from_utf8_lossy(&de.body).contains("lang de"));
    let en_again = get_with(&verge, path, &[("accept-language", "EN")]).await;
    assert_eq!(en_again.nonce, en.nonce, "normalised: EN matches en");
    assert_eq!(en_again.x_cache, "HIT");
    let de_again = get_with(&verge, path, &[("accept-language", "de")]).await;
    assert_eq!(de_again.nonce, de.nonce);
    let none = get(&verge, path).await;
    assert_eq!(none.access["cache"], "miss");
}

#[tokio::test]
async fn conditional_and_range_requests_are_answered_from_the_stored_object() {
    let (verge, _app) = serve(CACHE_ON, &[]);
    let path = "/doc?cc=max-age%3D60&etag=v1&size=100";
    let full = get(&verge, path).await;
    assert_eq!(full.body.len(), 100);

    let not_modified = get_with(&verge, path, &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.access["cache"], "hit");
    assert_eq!(not_modified.headers["etag"], "\"v1\"");
    assert!(not_modified.body.is_empty());
    let changed = get_with(&verge, path, &[("if-none-match", "\"v0\"")]).await;
    assert_eq!((changed.status, changed.body.len()), (200, 100));

    let part = get_with(&verge, path, &[("range", "bytes=10-19")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.headers["content-range"], "bytes 10-19/100");
    assert_eq!(part.body, &full.body[10..20]);
    assert_eq!(part.access["cache"], "hit");
    let tail = get_with(&verge, path, &[("range", "bytes=-5")]).await;
    assert_eq!(tail.body, &full.body[95..]);
    let beyond = get_with(&verge, path, &[("range", "bytes=100-")]).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.headers["content-range"], "bytes */100");
    // If-Range with an old validator gets the whole object.
    let old = get_with(
        &verge,
        path,
        &[("range", "bytes=0-1"), ("if-range", "\"v0\"")],
    )
    .await;
    assert_eq!((old.status, old.body.len()), (200, 100));

    // A client's conditional request on a miss: the guest runs, the client gets 304,
    // and the object is stored all the same.
    let fresh_path = "/doc2?cc=max-age%3D60&etag=v2";
    let miss = get_with(&verge, fresh_path, &[("if-none-match", "\"v2\"")]).await;
    assert_eq!(
        (miss.status, miss.access["cache"].as_str()),
        (304, Some("miss"))
    );
    let stored = get(&verge, fresh_path).await;
    assert_eq!((stored.status, stored.x_cache.as_str()), (200, "HIT"));
}

#[tokio::test]
async fn stale_objects_are_revalidated_refreshed_in_the_background_or_served_on_error() {
    let (verge, _app) = serve(CACHE_ON, &[]);
    // `age=100` with max-age=1 stores objects that are stale from the start.

    // Expired with a validator: the guest is asked conditionally and its 304 refreshes
    // the stored object, whose body the client gets.
    let path = "/reval?cc=max-age%3D1&etag=e1&age=100";
    let first = get(&verge, path).await;
    let second = get(&verge, path).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.access["cache"], "revalidated");
    assert_eq!(second.x_cache, "REVALIDATED");
    assert_eq!(
        second.body, first.body,
        "the stored body, confirmed by a 304"
    );

    // stale-while-revalidate: the stale object is served at once, and refreshed by one
    // background run of the guest.
    let path = "/swr?cc=max-age%3D1%2C%20stale-while-revalidate%3D600&age=100";
    let first = get(&verge, path).await;
    let stale = get(&verge, path).await;
    assert_eq!(stale.access["cache"], "stale");
    assert_eq!(stale.x_cache, "STALE");
    assert_eq!(stale.nonce, first.nonce);
    verge.stdout.wait_for(Duration::from_secs(30), |l| {
        l.contains("\"cache\":\"refresh\"") && l.contains("/swr")
    });
    let refreshed = get(&verge, path).await;
    assert_ne!(
        refreshed.nonce, first.nonce,
        "the refresh stored a new object"
    );

    // stale-if-error: the guest fails, the client gets the stale object; the failure
    // is in the access line.
    let path = "/sie?cc=max-age%3D1%2C%20stale-if-error%3D600&age=100";
    let first = get(&verge, path).await;
    let on_error = get_with(&verge, path, &[("x-fail", "1")]).await;
    assert_eq!(on_error.status, 200);
    assert_eq!(on_error.nonce, first.nonce);
    assert_eq!(on_error.access["cache"], "stale");
    assert_eq!(on_error.access["status"], 200);
    // must-revalidate forbids it.
    let path = "/strict?cc=max-age%3D1%2C%20stale-if-error%3D600%2C%20must-revalidate&age=100";
    get(&verge, path).await;
    let failed = get_with(&verge, path, &[("x-fail", "1")]).await;
    assert_eq!(failed.status, 500);
}

#[tokio::test]
async fn large_objects_pass_through_and_a_client_gone_mid_fill_stores_nothing() {
    let (verge, _app) = serve(CACHE_ON, &["--edge-cache-max-object", "64KiB"]);
    let expected = |n: usize| -> Vec<u8> { (0..n).map(|i| b'a' + (i % 26) as u8).collect() };

    let big = "/big?cc=max-age%3D60&size=100000";
    let first = get(&verge, big).await;
    let second = get(&verge, big).await;
    assert_eq!(first.body, expected(100000));
    assert_eq!(second.body, expected(100000));
    assert_ne!(first.nonce, second.nonce, "too large to store");

    // The first client reads the head and a piece of a slowly written body, then
    // closes its connection.
    let slow = "/slow-body?cc=max-age%3D60&size=60000&drip=30";
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(&verge.addr).await.unwrap();
        let head = format!("GET {slow} HTTP/1.1\r\nHost: {}\r\n\r\n", verge.addr);
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut piece = vec![0; 4096];
        let n = conn.read(&mut piece).await.unwrap();
        assert!(String::from_utf8_lossy(&piece[..n]).starts_with("HTTP/1.1 200"));
    }
    verge.stdout.wait_for(Duration::from_secs(30), |l| {
        l.contains("\"path\":\"/slow-body\"")
    });
    let next = get(&verge, slow).await;
    assert_eq!(next.body, expected(60000), "never a truncated object");
    assert_eq!(next.access["cache"], "miss");
    let stored = get(&verge, slow).await;
    assert_eq!((stored.x_cache.as_str(), stored.body.len()), ("HIT", 60000));
}

#[tokio::test]
async fn apps_without_the_cache_run_the_guest_every_time() {
    let (verge, _app) = serve("", &[]);
    let path = "/a?cc=max-age%3D60&sc=max-age%3D60";
    let first = get(&verge, path).await;
    let second = get(&verge, path).await;
    assert_ne!(first.nonce, second.nonce);
    assert!(second.access.get("cache").is_none());
    assert!(second.headers.get("x-cache").is_none());
    // Without a cache there is no edge to strip edge headers for.
    assert_eq!(second.headers["surrogate-control"], "max-age=60");
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

async fn admin(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client().request(method.parse().unwrap(), format!("http://{addr}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if path.ends_with("/purge/url") {
        req = req.json(&serde_json::json!({ "url": "http://127.0.0.1/items/3?cc=max-age%3D60&sk=items%20item-3" }));
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn purges_through_the_admin_api_and_verge_purge() {
    let app = app_dir_for(&guest("cacheable"), CACHE_ON);
    let (verge, addr) = serve_with_admin(&[app.path().to_str().unwrap(), "--no-build"], TOKEN);
    let item = |n: u32| format!("/items/{n}?cc=max-age%3D60&sk=items%20item-{n}");
    let mut nonces = Vec::new();
    for n in 1..=4 {
        nonces.push(get(&verge, &item(n)).await.nonce);
        assert_eq!(get(&verge, &item(n)).await.x_cache, "HIT");
    }

    // Every route wants the token.
    let routes = [
        ("POST", "/admin/v1/apps/test-app/purge/all"),
        ("POST", "/admin/v1/apps/test-app/purge/keys/items"),
        ("POST", "/admin/v1/apps/test-app/purge/url"),
        ("POST", "/admin/v1/services/test-app/purge/all"),
        ("GET", "/metrics"),
        ("GET", "/admin/v1/nothing-here"),
    ];
    for (method, path) in routes {
        assert_eq!(admin(&addr, method, path, None).await.0, 401, "{path}");
        assert_eq!(
            admin(&addr, method, path, Some("wrong-token")).await.0,
            401,
            "{path}"
        );
    }
    assert_eq!(
        get(&verge, &item(1)).await.x_cache,
        "HIT",
        "nothing purged yet"
    );

    // By surrogate key: only the objects carrying it.
    let (status, body) = admin(
        &addr,
        "POST",
        "/admin/v1/services/test-app/purge/keys/item-1",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let purged: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (purged["purged"].as_u64(), purged["soft"].as_bool()),
        (Some(1), Some(false))
    );
    let after = get(&verge, &item(1)).await;
    assert_eq!(after.access["cache"], "miss");
    assert_ne!(after.nonce, nonces[0]);
    assert_eq!(
        get(&verge, &item(2)).await.nonce,
        nonces[1],
        "item 2 stays cached"
    );

    // By URL (through the older spelling of the route, which answers the same).
    let (status, body) = admin(
        &addr,
        "POST",
        "/admin/v1/apps/test-app/purge/url",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&verge, &item(3)).await.access["cache"], "miss");
    assert_eq!(get(&verge, &item(4)).await.nonce, nonces[3]);

    // Refusals name what was wrong.
    let (status, body) = admin(&addr, "POST", "/admin/v1/apps/nope/purge/all", Some(TOKEN)).await;
    assert_eq!(status, 404);
    assert!(body.contains("no app named `nope`"), "{body}");
    let (status, _) = admin(
        &addr,
        "GET",
        "/admin/v1/apps/test-app/purge/all",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 405);

    // Soft: marked stale, so the next request runs the guest.
    let (status, _) = admin(
        &addr,
        "POST",
        "/admin/v1/services/test-app/purge/keys/items?soft=true",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(get(&verge, &item(4)).await.nonce, nonces[3]);

    // The metrics show what happened.
    let (status, metrics) = admin(&addr, "GET", "/metrics", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
    };
    assert!(value("verge_cache_lookups_total{outcome=\"hit\"}") >= 5);
    assert!(value("verge_cache_lookups_total{outcome=\"miss\"}") >= 7);
    assert!(value("verge_cache_purges_total") >= 3);
    assert!(value("verge_cache_memory_bytes") > 0);

    // `verge purge`: through the local server of the app directory, and through the
    // admin API.
    let out = common::verge(&["purge", "--key", "item-2"], app.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 objects"));
    assert_eq!(get(&verge, &item(2)).await.access["cache"], "miss");
    let token_file = app.path().join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let admin_url = format!("http://{addr}");
    let purge_all = || {
        let file = token_file.to_str().unwrap();
        common::verge(
            &[
                "purge",
                "--all",
                "--admin",
                &admin_url,
                "--token-file",
                file,
            ],
            app.path(),
        )
    };
    let out = purge_all();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get(&verge, &item(2)).await.access["cache"], "miss");
    std::fs::write(&token_file, "not-the-token-at-all").unwrap();
    let out = purge_all();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused the token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_admin_listener_without_a_token_is_refused() {
    let app = app_dir_for(&guest("cacheable"), CACHE_ON);
    let out = std::process::Command::new(verge_bin())
        .args(["serve", app.path().to_str().unwrap(), "--no-build"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env_remove("VERGE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--admin-token-file"), "{stderr}");
}

#[tokio::test]
async fn objects_evicted_from_memory_are_served_from_the_disk_tier() {
    let disk = tempfile::tempdir().unwrap();
    let app = app_dir_for(&guest("cacheable"), CACHE_ON);
    let (verge, addr) = serve_with_admin(
        &[
            app.path().to_str().unwrap(),
            "--no-build",
            "--edge-cache-memory",
            "64KiB",
            "--edge-cache-max-object",
            "32KiB",
            "--edge-cache-disk",
            disk.path().to_str().unwrap(),
        ],
        TOKEN,
    );
    let path = |i: u32| format!("/page/{i}?cc=max-age%3D60&size=20000");
    let mut nonces = Vec::new();
    for i in 0..10 {
        nonces.push(get(&verge, &path(i)).await.nonce);
    }
    // The bodies reach the disk in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = admin(&addr, "GET", "/metrics", Some(TOKEN)).await;
        if metrics.lines().any(|l| l == "verge_cache_disk_keys 10") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the disk tier was not written:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Memory holds about three of them; all ten are hits.
    for i in 0..10 {
        let again = get(&verge, &path(i)).await;
        assert_eq!(again.x_cache, "HIT", "page {i}");
        assert_eq!(again.nonce, nonces[i as usize], "page {i}");
        assert_eq!(again.body.len(), 20000);
    }
}
