//! Read-through caching of a guest's origin fetches: responses stored by their own
//! headers, per-request overrides, collapsing, revalidation, stale-if-error, backends
//! that opt out, and purges reaching fetched objects.

mod common;

use common::origin::Origin;
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
