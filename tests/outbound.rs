//! Outbound HTTP from a plain `wasi:http` guest (`test-programs/examples/outbound.rs`)
//! to real origins on 127.0.0.1: named backends, the egress allow-list, the SSRF
//! guard, pooling, streaming both ways, timeouts, broken origins, trace context.

mod common;

use std::time::Duration;

use common::origin::{Origin, RawOrigin};
use common::*;

/// Serves the outbound guest with `manifest` appended to its verge.toml.
fn serve(manifest: &str) -> (Verge, tempfile::TempDir) {
    let app = app_dir_for(&guest("outbound"), manifest);
    let verge = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);
    (verge, app)
}

fn backend(name: &str, url: &str, extra: &str) -> String {
    format!("[backends.{name}]\nurl = \"{url}\"\n{extra}\n")
}

/// GETs `path`, whose response the guest passes on before the origin's body breaks:
/// the client must never see a clean end. Its body is cut short, or, when the failure
/// comes before hyper flushed the head, the connection is reset. Returns the request
/// id.
async fn get_cut_response(verge: &Verge, path: &str) -> String {
    match client().get(verge.url(path)).send().await {
        Ok(resp) => {
            assert_eq!(resp.status(), 200);
            let id = request_id(&resp);
            assert!(resp.bytes().await.is_err(), "the body must not end cleanly");
            id
        }
        Err(e) => {
            assert!(!e.is_timeout(), "{e}");
            let line = verge.stdout.wait_for(Duration::from_secs(30), |l| {
                l.contains("\"type\":\"access\"") && l.contains(path)
            });
            let access: serde_json::Value = serde_json::from_str(&line).unwrap();
            access["request_id"].as_str().unwrap().to_owned()
        }
    }
}

/// The `host` log line of a request about `event`.
fn host_line(verge: &Verge, request_id: &str, event: &str) -> serde_json::Value {
    let line = verge.stdout.wait_for(Duration::from_secs(30), |l| {
        l.contains("\"type\":\"host\"")
            && l.contains(request_id)
            && l.contains(&format!("\"event\":\"{event}\""))
    });
    serde_json::from_str(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_backend_gets_its_prefix_host_and_a_child_traceparent() {
    let origin = Origin::start().await;
    let url = format!("http://127.0.0.1:{}/api/v1", origin.port());
    let (verge, _app) = serve(&backend(
        "origin",
        &url,
        "allow_private = true\noverride_host = \"api.internal\"",
    ));
    let resp = client()
        .get(verge.url("/fetch/http/origin/headers?x=1"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("x-client", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = request_id(&resp);
    let seen: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(seen["path"], "/api/v1/headers?x=1");
    assert_eq!(seen["headers"]["host"], "api.internal");
    assert_eq!(seen["headers"]["x-client"], "kept");
    assert_eq!(seen["headers"]["tracestate"], "congo=t61rcWkgMzE");
    let traceparent = seen["headers"]["traceparent"].as_str().unwrap();
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
            && !traceparent.contains("00f067aa0ba902b7"),
        "{traceparent}"
    );
    let access = verge.access_line(&id);
    assert_eq!(access["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(access["subrequests"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_traceparent_starts_a_trace_the_origin_sees() {
    let origin = Origin::start().await;
    let url = format!("http://127.0.0.1:{}", origin.port());
    let (verge, _app) = serve(&backend("origin", &url, "allow_private = true"));
    let resp = client()
        .get(verge.url("/fetch/http/origin/headers"))
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    let seen: serde_json::Value = resp.json().await.unwrap();
    let trace_id = verge.access_line(&id)["trace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(trace_id.len(), 32);
    let traceparent = seen["headers"]["traceparent"].as_str().unwrap();
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_backends_are_refused_unless_allow_private() {
    let origin = Origin::start().await;
    let (verge, _app) = serve(&format!(
        "{}{}[egress]\nallow = [\"localhost:*\"]\n",
        backend(
            "literal",
            &format!("http://127.0.0.1:{}", origin.port()),
            ""
        ),
        backend("named", &format!("http://localhost:{}", origin.port()), ""),
    ));
    // The literal address, a name that resolves to it, and a URL to that name.
    for path in [
        "/fetch/http/literal/hello".to_string(),
        "/fetch/http/named/hello".to_string(),
        format!("/fetch/http/localhost:{}/hello", origin.port()),
    ] {
        let resp = client().get(verge.url(&path)).send().await.unwrap();
        let id = request_id(&resp);
        assert_eq!(resp.status(), 502, "{path}");
        assert_eq!(
            resp.text().await.unwrap(),
            "error: DestinationIpProhibited",
            "{path}"
        );
        let line = host_line(&verge, &id, "origin");
        let message = line["message"].as_str().unwrap();
        assert!(
            message.contains("127.0.0.1") || message.contains("::1"),
            "{message}"
        );
        assert!(message.contains("allow_private"), "{message}");
    }
    assert_eq!(origin.connections(), 0, "nothing reached the origin");
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_must_match_the_egress_allow_list() {
    let origin = Origin::start().await;
    let port = origin.port();
    let (verge, _app) = serve(&format!(
        "[egress]\nallow = [\"127.0.0.1:{port}\"]\nallow_private = true\n"
    ));
    let (status, body, _) =
        get_logged(&verge, &format!("/fetch/http/127.0.0.1:{port}/hello")).await;
    assert_eq!((status, body.as_str()), (200, "hello from origin"));

    // Another port, another host, an unknown backend name: refused before connecting.
    for target in [
        format!("127.0.0.1:{}", port + 1),
        format!("127.0.0.2:{port}"),
        "nosuchbackend".to_string(),
    ] {
        let resp = client()
            .get(verge.url(&format!("/fetch/http/{target}/hello")))
            .send()
            .await
            .unwrap();
        let id = request_id(&resp);
        assert_eq!(resp.status(), 502);
        assert_eq!(
            resp.text().await.unwrap(),
            "error: HttpRequestDenied",
            "{target}"
        );
        let message = host_line(&verge, &id, "egress")["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains("refused") && message.contains("[egress] allow"),
            "{message}"
        );
    }
    assert_eq!(origin.connections(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_to_a_backend_are_pooled() {
    let origin = Origin::start().await;
    let url = format!("http://127.0.0.1:{}", origin.port());
    let (verge, _app) = serve(&backend("origin", &url, "allow_private = true"));
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (c, url) = (c.clone(), verge.url("/fetch/http/origin/hello"));
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let resp = c.get(&url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                assert_eq!(resp.text().await.unwrap(), "hello from origin");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let opened = origin.connections();
    assert!(
        (1..=8).contains(&opened),
        "{opened} connections for 200 requests"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gibibyte_streams_through_both_ways_within_the_cpu_limit() {
    use futures::StreamExt;
    let origin = Origin::start().await;
    let url = format!("http://127.0.0.1:{}", origin.port());
    let (verge, _app) = serve(&format!(
        "[limits]\nmax_request_body = \"2GiB\"\n{}",
        backend("origin", &url, "allow_private = true")
    ));
    let before = verge.peak_rss();

    // Origin → client.
    let resp = client()
        .get(verge.url("/fetch/http/origin/bytes/1073741824"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = request_id(&resp);
    let mut stream = resp.bytes_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len() as u64;
    }
    assert_eq!(total, 1 << 30);
    let access = verge.access_line(&id);
    assert_eq!(access["outcome"], "ok", "{access}");

    // Client → origin.
    let chunk = bytes::Bytes::from(vec![7u8; 1 << 20]);
    let upload =
        futures::stream::iter((0..1024).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let resp = client()
        .post(verge.url("/fetch/http/origin/count"))
        .body(reqwest::Body::wrap_stream(upload))
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    assert_eq!(resp.status(), 200, "{}", verge.access_line(&id));
    assert_eq!(resp.text().await.unwrap(), (1u64 << 30).to_string());
    let access = verge.access_line(&id);
    assert_eq!(access["outcome"], "ok", "{access}");

    let growth = verge.peak_rss().saturating_sub(before);
    assert!(growth < 256 << 20, "RSS grew by {} MiB", growth >> 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_on_a_slow_origin_is_wall_time_not_cpu_time() {
    let origin = Origin::start().await;
    let url = format!("http://127.0.0.1:{}", origin.port());
    let (verge, _app) = serve(&backend("origin", &url, "allow_private = true"));
    let (status, body, access) = get_logged(&verge, "/fetch/http/origin/slow/2000").await;
    assert_eq!((status, body.as_str()), (200, "slow"), "{access}");
    assert!(
        access["guest_cpu_us"].as_u64().unwrap() < 50_000,
        "{access}"
    );
    assert!(
        access["origin_wait_us"].as_u64().unwrap() >= 2_000_000,
        "{access}"
    );
    assert!(
        access["duration_us"].as_u64().unwrap() >= 2_000_000,
        "{access}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_failures_map_to_wasi_http_error_codes_and_log_lines() {
    let raw = RawOrigin::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let raw_url = format!("http://127.0.0.1:{}", raw.addr.port());
    let (verge, _app) = serve(&format!(
        "{}{}",
        backend(
            "raw",
            &raw_url,
            "allow_private = true\nfirst_byte_timeout = \"500ms\""
        ),
        backend(
            "closed",
            &format!("http://127.0.0.1:{closed_port}"),
            "allow_private = true"
        ),
    ));
    for (path, code) in [
        ("/fetch/http/raw/garbage", "HttpProtocolError"),
        ("/fetch/http/raw/silent", "HttpResponseTimeout"),
        ("/fetch/http/closed/hello", "ConnectionRefused"),
    ] {
        let resp = client().get(verge.url(path)).send().await.unwrap();
        let id = request_id(&resp);
        assert_eq!(resp.status(), 502, "{path}");
        assert_eq!(
            resp.text().await.unwrap(),
            format!("error: {code}"),
            "{path}"
        );
        let line = host_line(&verge, &id, "origin");
        assert!(line["message"].as_str().unwrap().contains(code), "{line}");
    }

    // An origin that closes mid-body after the guest passed its head on.
    let id = get_cut_response(&verge, "/fetch/http/raw/cut").await;
    verge.stdout.wait_for(Duration::from_secs(30), |l| {
        l.contains(&id) && l.contains("origin body failed")
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_that_never_accepts_hits_the_connect_timeout() {
    // A listener that never accepts, with its accept queue filled: further SYNs are
    // dropped and a connect hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            fillers.push(stream);
        }
    }
    let (verge, _app) = serve(&backend(
        "blackhole",
        &format!("http://{addr}"),
        "allow_private = true\nconnect_timeout = \"300ms\"",
    ));
    let started = std::time::Instant::now();
    let resp = client()
        .get(verge.url("/fetch/http/blackhole/"))
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.text().await.unwrap(), "error: ConnectionTimeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    let line = host_line(&verge, &id, "origin");
    assert!(
        line["message"].as_str().unwrap().contains("timed out"),
        "{line}"
    );
    drop(listener);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_pausing_mid_body_hits_the_between_bytes_timeout() {
    let raw = RawOrigin::start().await;
    let (verge, _app) = serve(&backend(
        "raw",
        &format!("http://127.0.0.1:{}", raw.addr.port()),
        "allow_private = true\nbetween_bytes_timeout = \"300ms\"",
    ));
    let started = std::time::Instant::now();
    let id = get_cut_response(&verge, "/fetch/http/raw/stall").await;
    // The guest saw the body fail with the read-timeout code, well before the
    // client's own 120 s timeout, and the host logged it once.
    verge.stdout.wait_for(Duration::from_secs(30), |l| {
        l.contains(&id) && l.contains("origin body failed: connection read timeout")
    });
    let line = host_line(&verge, &id, "origin");
    let message = line["message"].as_str().unwrap();
    assert!(
        message.contains("after 100 bytes") && message.contains("ConnectionReadTimeout"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_may_send_at_most_32_outbound_requests() {
    let origin = Origin::start().await;
    let url = format!("http://127.0.0.1:{}", origin.port());
    let (verge, _app) = serve(&backend("origin", &url, "allow_private = true"));
    let (status, body, access) = get_logged(&verge, "/many/40/http/origin/hello").await;
    assert_eq!((status, body.as_str()), (200, "ok=32 failed=8"));
    assert_eq!(access["subrequests"], 40);
    let id = access["request_id"].as_str().unwrap();
    let line = host_line(&verge, id, "egress");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("max_outbound_requests")
    );
}

#[test]
fn bad_backend_settings_are_refused_at_start_naming_the_problem() {
    let component = guest("outbound");
    for (manifest, expected) in [
        (
            "[backends.origin]\nurl = \"origin.example.com\"\n",
            "expected scheme://host",
        ),
        (
            "[backends.origin]\nurl = \"http://x.com:99999\"\n",
            "invalid port",
        ),
        (
            "[backends.\"Bad.Name\"]\nurl = \"http://x.com\"\n",
            "invalid backend name",
        ),
        (
            "[egress]\nallow = [\"foo.*.com\"]\n",
            "invalid egress pattern `foo.*.com`",
        ),
        (
            "[backends.origin]\nurl = \"https://x.com\"\nca_file = \"missing.pem\"\n",
            "missing.pem",
        ),
        (
            "[backends.origin]\nurl = \"https://x.com\"\nmax_connections = 0\n",
            "max_connections",
        ),
    ] {
        let app = app_dir_for(&component, manifest);
        let out = verge(
            &["serve", "--no-build", "--listen", "127.0.0.1:0"],
            app.path(),
        );
        assert!(!out.status.success(), "{manifest} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{manifest}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_backends_verify_certificates_and_speak_http2() {
    use common::origin::TestCa;
    let ca = TestCa::new();
    let origin = Origin::start_tls(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca.ca_pem).unwrap();
    let ca_file = dir.path().join("ca.pem");
    let url = format!("https://localhost:{}", origin.port());
    let (verge, _app) = serve(&format!(
        "{}{}{}",
        backend(
            "trusted",
            &url,
            &format!(
                "allow_private = true\nca_file = {:?}",
                ca_file.display().to_string()
            )
        ),
        backend("untrusted", &url, "allow_private = true"),
        backend(
            "unverified",
            &url,
            "allow_private = true\ntls_verify = false"
        ),
    ));

    let (status, body, _) = get_logged(&verge, "/fetch/http/trusted/headers").await;
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["version"], "HTTP/2.0", "ALPN picks HTTP/2");

    let (status, body, access) = get_logged(&verge, "/fetch/http/untrusted/hello").await;
    assert_eq!((status, body.as_str()), (502, "error: TlsCertificateError"));
    let line = host_line(&verge, access["request_id"].as_str().unwrap(), "origin");
    assert!(
        line["message"].as_str().unwrap().contains("certificate"),
        "{line}"
    );

    let (status, body, _) = get_logged(&verge, "/fetch/http/unverified/hello").await;
    assert_eq!((status, body.as_str()), (200, "hello from origin"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_does_not_resolve_is_a_dns_error() {
    let (verge, _app) = serve("[egress]\nallow = [\"*.invalid:*\"]\n");
    let (status, body, access) = get_logged(&verge, "/fetch/http/no-such-host.invalid/").await;
    assert_eq!(
        (status, body.as_str()),
        (
            502,
            "error: DnsError(DnsErrorPayload { rcode: None, info-code: None })"
        )
    );
    let line = host_line(&verge, access["request_id"].as_str().unwrap(), "origin");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("no-such-host.invalid"),
        "{line}"
    );
}
