//! `verge serve` with well-behaved guests: responses, logs, headers, env and sandbox,
//! streaming both ways, body limits, the compile cache.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread")]
async fn hello_answers_and_logs_with_the_request_id() {
    let verge = Verge::serve(&[guest("hello").to_str().unwrap()]);
    let resp = client().get(verge.url("/some/path")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = request_id(&resp);
    assert_eq!(resp.text().await.unwrap(), "Hello, world!\n");

    let access = verge.access_line(&id);
    assert_eq!(access["method"], "GET");
    assert_eq!(access["path"], "/some/path");
    assert_eq!(access["status"], 200);
    assert_eq!(access["outcome"], "ok");
    assert_eq!(access["app"], "hello");
    assert!(access["duration_us"].as_u64().unwrap() > 0);
    assert!(access["guest_cpu_us"].as_u64().unwrap() > 0, "{access}");
    assert!(
        access["peak_memory_bytes"].as_u64().unwrap() >= 64 << 10,
        "{access}"
    );

    let guest_line = verge.stdout.wait_for(Duration::from_secs(10), |l| {
        l.contains("\"type\":\"guest\"") && l.contains(&id)
    });
    let guest_line: serde_json::Value = serde_json::from_str(&guest_line).unwrap();
    assert_eq!(guest_line["stream"], "stdout");
    assert_eq!(guest_line["message"], "hello guest saw GET /some/path");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_wasi_component_runs_unmodified() {
    let verge = Verge::serve(&[guest("raw-hello").to_str().unwrap()]);
    let resp = client().get(verge.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.text().await.unwrap(), "hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_gets_a_fresh_instance_and_http2_works() {
    let verge = Verge::serve(&[guest("hello").to_str().unwrap()]);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let resp = h2.get(verge.url("/")).send().await.unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        ids.insert(request_id(&resp));
        assert_eq!(resp.text().await.unwrap(), "Hello, world!\n");
    }
    assert_eq!(ids.len(), 20, "request ids are unique");
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_method_and_query_round_trip() {
    let verge = Verge::serve(&[guest("headers").to_str().unwrap()]);
    let resp = client()
        .put(verge.url("/a/b?x=1&y=two"))
        .header("x-multi", "one")
        .header("x-multi", "two")
        .header("x-set-token", "abc123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["x-got-token"], "abc123");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/a/b");
    assert_eq!(body["query"], "x=1&y=two");
    assert_eq!(
        body["headers"]["x-multi"],
        serde_json::json!(["one", "two"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guests_see_only_declared_env_and_no_files_sockets_or_egress() {
    let app = app_dir_for(
        &guest("env"),
        "[env]\nGREETING = \"hi there\"\nMODE = \"test\"\n",
    );
    let verge = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);
    let resp = client().get(verge.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["env"],
        serde_json::json!({"GREETING": "hi there", "MODE": "test"}),
        "only declared variables; the host's (PATH, HOME…) must not leak"
    );
    assert_eq!(body["greeting"], "hi there");
    assert_eq!(body["args"], serde_json::json!([]));
    assert_eq!(body["preopens"], 0, "no directories are preopened");
    let tcp = body["tcp"].as_str().unwrap();
    assert!(tcp.contains("access-denied"), "tcp: {tcp}");
    // A refused lookup looks like a failed one, so a guest cannot probe host names.
    let lookup = body["name_lookup"].as_str().unwrap();
    assert!(
        lookup.contains("permanent-resolver-failure"),
        "lookup: {lookup}"
    );
    assert!(
        body["http"].as_str().unwrap().contains("HttpRequestDenied"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_response_streams() {
    let app = app_dir_for(&guest("huge-response"), "[limits]\ncpu_time = \"20s\"\n");
    let verge = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);
    let resp = client().get(verge.url("/?mib=256")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut total = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        total += chunk.unwrap().len() as u64;
    }
    assert_eq!(total, 256 << 20);
    assert!(verge.peak_rss() < 256 << 20, "the response was buffered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_cut_short_by_a_guest_fault_is_not_a_complete_response() {
    // 256 MiB of pattern takes far more than the default 50 ms of guest CPU.
    let verge = Verge::serve(&[guest("huge-response").to_str().unwrap()]);
    let resp = client().get(verge.url("/?mib=256")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the head went out before the limit hit");
    let id = request_id(&resp);
    let mut body = resp.bytes_stream();
    let mut total = 0u64;
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => total += chunk.len() as u64,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "the client must see an error, not a clean end after {total} bytes"
    );
    assert!(total < 256 << 20);
    assert_eq!(verge.access_line(&id)["outcome"], "limit:cpu");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_over_the_cap_get_413() {
    let app = app_dir_for(
        &guest("body-length"),
        "[limits]\nmax_request_body = \"1KiB\"\n",
    );
    let verge = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);
    let c = client();

    let ok = c
        .post(verge.url("/"))
        .body(vec![7u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1024\n");

    // Declared too large: refused before the guest runs.
    let declared = c
        .post(verge.url("/"))
        .body(vec![7u8; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    let id = request_id(&declared);
    assert!(declared.text().await.unwrap().contains(&id));
    assert_eq!(verge.access_line(&id)["outcome"], "limit:request_body");

    // Chunked, no length: cut off while streaming, the guest gets a body error.
    let chunked = c
        .post(verge.url("/"))
        .body(reqwest::Body::wrap_stream(pattern_stream(4096)))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
    assert_eq!(
        verge.access_line(&request_id(&chunked))["outcome"],
        "limit:request_body"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_never_reads_its_body_does_not_hang() {
    let verge = Verge::serve(&[guest("ignore-body").to_str().unwrap()]);
    let c = client();
    for _ in 0..3 {
        let resp = c
            .post(verge.url("/"))
            .body(reqwest::Body::wrap_stream(pattern_stream(8 << 20)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "ignored\n");
    }
    let resp = c.get(verge.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_request_heads_get_431() {
    let verge = Verge::serve(&[
        guest("hello").to_str().unwrap(),
        "--max-header-count",
        "20",
        "--max-header-bytes",
        "16384",
    ]);
    let c = client();
    let mut many = c.get(verge.url("/"));
    for i in 0..40 {
        many = many.header(format!("x-h{i}"), "v");
    }
    assert_eq!(many.send().await.unwrap().status(), 431);
    let big = c
        .get(verge.url("/"))
        .header("x-big", "a".repeat(32 << 10))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 431);
    assert_eq!(c.get(verge.url("/")).send().await.unwrap().status(), 200);
}

#[test]
fn a_second_start_compiles_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let component = guest("hello");
    let args = [component.to_str().unwrap(), "--cache-dir", cache_dir];

    let first = Verge::serve_with(&args);
    first.stderr.wait_for(Duration::from_secs(10), |l| {
        l.contains("compiled, and cached for next time")
    });
    drop(first);

    let second = Verge::serve_with(&args);
    second.stderr.wait_for(Duration::from_secs(10), |l| {
        l.contains("from the compile cache")
    });
    assert!(
        !second.stderr.all().iter().any(|l| l.contains("compiled")),
        "the second start compiled again: {:?}",
        second.stderr.all()
    );
    let entries = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(entries, 1, "one compiled artifact in the cache");
}
