//! Read-through caching of a guest's origin fetches: responses stored by their own
//! headers, per-request overrides, collapsing, revalidation, stale-if-error, backends
//! that opt out, and purges reaching fetched objects.

mod common;

use common::origin::{Origin, RawOrigin};
use common::*;

const TOKEN: &str = "fedcba9876543210fedcba9876543210";

/// Serves the plain `wasi:http` outbound guest with backends `origin` (cached) and
/// `nocache` (`cache = false`), both the test origin, and an admin listener.
fn serve(origin: &Origin) -> (Verge, String, tempfile::TempDir) {
    let url = format!("http://127.0.0.1:{}", origin.port());
    let manifest = format!(
        "[backends.origin]\nurl = \"{url}\"\nallow_private = true\n\
         [backends.nocache]\nurl = \"{url}\"\nallow_private = true\ncache = false\n"
    );
    let app = app_dir_for(&guest("outbound"), &manifest);
    let (verge, admin) = serve_with_admin(&[app.path().to_str().unwrap(), "--no-build"], TOKEN);
    (verge, admin, app)
}

/// Fetches `path` of backend `backend` through the guest: the status, the body and
/// the access line.
async fn fetch(
    verge: &Verge,
    backend: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, serde_json::Value) {
    let mut req = client().get(verge.url(&format!("/fetch/http/{backend}{path}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let id = request_id(&resp);
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (status, body, verge.access_line(&id))
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_responses_are_cached_by_their_own_headers() {
    let origin = Origin::start().await;
    let (verge, _admin, _app) = serve(&origin);
    let path = "/cached/a?cc=max-age%3D60";
    let (status, first, access) = fetch(&verge, "origin", path, &[]).await;
    assert_eq!((status, first.as_str()), (200, "a #1"));
    assert!(access.get("subrequests_cached").is_none());
    let (_, second, access) = fetch(&verge, "origin", path, &[]).await;
    assert_eq!(second, "a #1", "answered from the cache");
    assert_eq!(access["subrequests"], 1);
    assert_eq!(access["subrequests_cached"], 1);
    assert_eq!(origin.hits("a"), 1);

    // No caching headers: fetched every time.
    for n in 1..=2 {
        let (_, body, _) = fetch(&verge, "origin", "/cached/b", &[]).await;
        assert_eq!(body, format!("b #{n}"));
    }
    // A backend that opts out.
    for n in 1..=2 {
        let (_, body, _) = fetch(&verge, "nocache", "/cached/c?cc=max-age%3D60", &[]).await;
        assert_eq!(body, format!("c #{n}"));
    }
    // Non-GET requests are never answered from the cache.
    let resp = client()
        .post(verge.url("/fetch/http/origin/cached/a?cc=max-age%3D60"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "a #2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_overrides_caching_per_request() {
    let origin = Origin::start().await;
    let (verge, admin, _app) = serve(&origin);
    let ttl = [("verge-cache-override", "ttl=60, surrogate-key=\"prod\"")];
    let (_, first, _) = fetch(&verge, "origin", "/cached/d", &ttl).await;
    let (_, second, _) = fetch(&verge, "origin", "/cached/d", &ttl).await;
    assert_eq!((first.as_str(), second.as_str()), ("d #1", "d #1"));
    // The override never reaches the origin.
    let (_, seen, _) = fetch(&verge, "origin", "/headers", &ttl).await;
    assert!(!seen.contains("verge-cache-override"), "{seen}");

    let pass = [("verge-cache-override", "pass")];
    fetch(&verge, "origin", "/cached/e?cc=max-age%3D60", &pass).await;
    let (_, body, _) = fetch(&verge, "origin", "/cached/e?cc=max-age%3D60", &pass).await;
    assert_eq!(body, "e #2", "pass skips the cache");

    let bad = [("verge-cache-override", "ttl=soon")];
    let (status, body, access) = fetch(&verge, "origin", "/cached/f", &bad).await;
    assert_eq!(status, 502, "{body}");
    let id = access["request_id"].as_str().unwrap();
    let line = verge
        .stdout
        .wait_for(std::time::Duration::from_secs(10), |l| {
            l.contains(id) && l.contains("\"type\":\"host\"")
        });
    assert!(line.contains("`ttl` wants a number of seconds"), "{line}");

    // The override's surrogate key purges the object (here through the admin API).
    let resp = client()
        .post(format!(
            "http://{admin}/admin/v1/apps/test-app/purge/keys/prod"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, after, _) = fetch(&verge, "origin", "/cached/d", &ttl).await;
    assert_eq!(after, "d #2");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_fetches_of_one_url_reach_the_origin_once() {
    let origin = Origin::start().await;
    let (verge, _admin, _app) = serve(&origin);
    let url = verge.url("/fetch/http/origin/cached/slow?cc=max-age%3D60&ms=300");
    for answer in concurrent_texts(url, 8).await {
        assert_eq!(answer, "slow #1");
    }
    assert_eq!(origin.hits("slow"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_objects_are_revalidated_and_served_when_the_origin_fails() {
    let origin = Origin::start().await;
    let (verge, _admin, _app) = serve(&origin);
    // max-age=0 with an ETag: stored, and revalidated on every use; the origin's 304
    // keeps the stored body.
    let path = "/cached/r?cc=max-age%3D0&etag=v1";
    assert_eq!(fetch(&verge, "origin", path, &[]).await.1, "r #1");
    assert_eq!(fetch(&verge, "origin", path, &[]).await.1, "r #1");
    assert_eq!(
        origin.hits("r"),
        2,
        "the second fetch was a conditional one"
    );

    let path = "/cached/s?cc=max-age%3D0%2C%20stale-if-error%3D600";
    assert_eq!(fetch(&verge, "origin", path, &[]).await.1, "s #1");
    origin.set_failing(true);
    let (status, body, _) = fetch(&verge, "origin", path, &[]).await;
    assert_eq!((status, body.as_str()), (200, "s #1"), "stale-if-error");
    // Without stale-if-error the failure shows.
    let path = "/cached/t?cc=max-age%3D0";
    origin.set_failing(false);
    fetch(&verge, "origin", path, &[]).await;
    origin.set_failing(true);
    let (status, body, _) = fetch(&verge, "origin", path, &[]).await;
    assert_eq!((status, body.as_str()), (503, "failing"));
}

/// Sends `method` to `path` of the cached backend through the guest; the status and
/// the body.
async fn send(verge: &Verge, method: &str, path: &str) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = client()
        .request(method, verge.url(&format!("/fetch/http/origin{path}")))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_requests_invalidate_what_they_change() {
    let origin = Origin::start().await;
    let (verge, _admin, _app) = serve(&origin);
    let ttl = [("verge-cache-override", "ttl=60")];
    let body = |path: &'static str| {
        let verge = &verge;
        async move { fetch(verge, "origin", path, &ttl).await.1 }
    };
    let names = [
        "posted",
        "located",
        "content-located",
        "elsewhere",
        "failed",
    ];
    for name in names {
        let path = format!("/cached/{name}");
        let first = fetch(&verge, "origin", &path, &ttl).await.1;
        assert_eq!(first, format!("{name} #1"));
        assert_eq!(
            fetch(&verge, "origin", &path, &ttl).await.1,
            first,
            "stored"
        );
    }

    // A successful POST to a URL drops what was stored for it; so does a method
    // Verge does not know (it might change anything).
    assert_eq!(
        send(&verge, "POST", "/cached/posted").await,
        (200, "posted #2".into())
    );
    assert_eq!(body("/cached/posted").await, "posted #3");
    assert_eq!(body("/cached/posted").await, "posted #3", "stored again");
    send(&verge, "FROBNICATE", "/cached/posted").await;
    assert_eq!(body("/cached/posted").await, "posted #5");

    // The same origin's URLs named in Location and Content-Location go too; another
    // origin's (here `localhost` instead of `127.0.0.1`) are not this request's.
    let port = origin.port();
    let named = "/cached/made?location=%2Fcached%2Flocated&cl=content-located";
    let elsewhere =
        format!("/cached/moved?location=http%3A%2F%2Flocalhost%3A{port}%2Fcached%2Felsewhere");
    assert_eq!(send(&verge, "PUT", named).await.0, 200);
    assert_eq!(send(&verge, "DELETE", &elsewhere).await.0, 200);
    assert_eq!(body("/cached/located").await, "located #2");
    assert_eq!(body("/cached/content-located").await, "content-located #2");
    assert_eq!(body("/cached/elsewhere").await, "elsewhere #1");

    // A failed one changed nothing: the stored answer stays.
    origin.set_failing(true);
    assert_eq!(send(&verge, "POST", "/cached/failed").await.0, 503);
    origin.set_failing(false);
    assert_eq!(body("/cached/failed").await, "failed #1");
    // Nor do safe methods.
    send(&verge, "OPTIONS", "/cached/failed").await;
    assert_eq!(body("/cached/failed").await, "failed #1");
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_headers_and_interim_responses_stay_on_their_hop() {
    let origin = Origin::start().await;
    let raw = RawOrigin::start().await;
    let manifest = format!(
        "[backends.origin]\nurl = \"http://127.0.0.1:{}\"\nallow_private = true\n\
         [backends.nocache]\nurl = \"http://127.0.0.1:{}\"\nallow_private = true\ncache = false\n\
         [backends.raw]\nurl = \"http://127.0.0.1:{}\"\nallow_private = true\n",
        origin.port(),
        origin.port(),
        raw.addr.port()
    );
    let app = app_dir_for(&guest("outbound"), &manifest);
    let verge = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);

    // Headers the origin's Connection names reach neither the guest (so not its
    // client) nor the cache: on a miss, on the hit after it, and on a pass.
    let path = "/cached/hop?cc=max-age%3D60&connection=x-secret%2C%20x-also";
    for (backend, cache, answer) in [
        ("origin", "miss", "hop #1"),
        ("origin", "hit", "hop #1"),
        ("nocache", "pass", "hop #2"),
    ] {
        let resp = client()
            .get(verge.url(&format!("/fetch/http/{backend}{path}")))
            .send()
            .await
            .unwrap();
        let id = request_id(&resp);
        let headers = resp.headers().clone();
        assert_eq!(resp.text().await.unwrap(), answer);
        for name in ["x-secret", "x-also"] {
            assert!(
                !headers.contains_key(name),
                "{backend} ({cache}): {headers:?}"
            );
        }
        assert_eq!(
            headers["cache-control"], "max-age=60",
            "end-to-end headers stay"
        );
        let access = verge.access_line(&id);
        let cached = access.get("subrequests_cached").is_some();
        assert_eq!(cached, cache == "hit", "{access}");
    }

    // A 103 Early Hints before the answer: the guest gets the 200, and the cache
    // stores the 200, never the interim response.
    for _ in 0..2 {
        let resp = client()
            .get(verge.url("/fetch/http/raw/early-hints"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "hints #1");
    }

    // A client that asks first (`Expect: 100-continue`) gets `100 Continue` once the
    // guest reads the body, then the final answer.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(&verge.addr).await.unwrap();
    conn.write_all(
        format!(
            "POST /fetch/http/nocache/echo HTTP/1.1\r\nhost: {}\r\nexpect: 100-continue\r\n\
             content-length: 5\r\nconnection: close\r\n\r\n",
            verge.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        conn.read_exact(&mut byte).await.unwrap();
        interim.push(byte[0]);
    }
    let interim = String::from_utf8_lossy(&interim);
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{interim}"
    );
    conn.write_all(b"hello").await.unwrap();
    let mut rest = String::new();
    conn.read_to_string(&mut rest).await.unwrap();
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
    assert!(rest.ends_with("\r\n\r\nhello"), "{rest}");
}
