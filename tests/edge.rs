//! The `verge:edge` host APIs through a real guest (`test-programs/examples/edge.rs`,
//! built with the SDK): geolocation from a `.mmdb` the test writes and from dev
//! overrides, the client IP through trusted proxies and PROXY protocol v1/v2, runtime
//! facts, and the SDK's `fetch` and `Request::send`.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::geo::*;
use common::origin::Origin;
use common::*;

struct GeoDbs {
    dir: tempfile::TempDir,
    city: std::path::PathBuf,
    asn: std::path::PathBuf,
}

fn geo_dbs() -> GeoDbs {
    let dir = tempfile::tempdir().unwrap();
    let city = write_city_db(dir.path(), &[TOKYO, BERLIN, SINGAPORE, NEW_YORK]);
    let asn = write_asn_db(
        dir.path(),
        &[("203.0.113.0/24", 64500, "Example Net Tokyo")],
    );
    GeoDbs { dir, city, asn }
}

fn serve_edge(manifest: &str, flags: &[&str]) -> (Verge, tempfile::TempDir) {
    let app = app_dir_for(&guest("edge"), manifest);
    let mut args = vec![app.path().to_str().unwrap(), "--no-build"];
    args.extend_from_slice(flags);
    (Verge::serve(&args), app)
}

async fn get_json(verge: &Verge, path: &str, xff: Option<&str>) -> serde_json::Value {
    let mut req = client().get(verge.url(path));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn geolocation_comes_from_the_mmdb_for_the_forwarded_client() {
    let dbs = geo_dbs();
    let (verge, _app) = serve_edge(
        "",
        &[
            "--geoip-db",
            dbs.city.to_str().unwrap(),
            "--geoip-db",
            dbs.asn.to_str().unwrap(),
            "--trusted-proxy",
            "127.0.0.1",
        ],
    );
    let info = get_json(&verge, "/info", Some("203.0.113.7")).await;
    assert_eq!(info["client_ip"], "203.0.113.7");
    let geo = &info["geo"];
    assert_eq!(geo["country_code"], "JP");
    assert_eq!(geo["country_name"], "Japan");
    assert_eq!(geo["continent_code"], "AS");
    assert_eq!(geo["region_code"], "13");
    assert_eq!(geo["region"], "Tokyo");
    assert_eq!(geo["city"], "Tokyo");
    assert_eq!(geo["postal_code"], "100-0001");
    assert_eq!(geo["latitude"], 35.6893);
    assert_eq!(geo["longitude"], 139.6899);
    assert_eq!(geo["time_zone"], "Asia/Tokyo");
    assert_eq!(geo["asn"], 64500, "merged from the ASN database");
    assert_eq!(geo["as_organization"], "Example Net Tokyo");

    let sg = get_json(&verge, "/geo?ip=2001:db8:1::5", None).await;
    assert_eq!(sg["country_code"], "SG");
    assert_eq!(sg["asn"], serde_json::Value::Null);
    // An address the database does not know is "no record", not an error.
    assert_eq!(
        get_json(&verge, "/geo?ip=192.0.2.1", None).await,
        serde_json::Value::Null
    );
    let resp = client()
        .get(verge.url("/geo?ip=not-an-ip"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    drop(dbs.dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (verge, _app) = serve_edge("", &[]);
    let info = get_json(&verge, "/info", Some("203.0.113.7")).await;
    assert_eq!(info["client_ip"], "127.0.0.1");
    assert_eq!(
        info["geo"],
        serde_json::Value::Null,
        "no database, no record"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_protocol_header_names_the_client() {
    let dbs = geo_dbs();
    let (verge, _app) = serve_edge(
        "",
        &[
            "--geoip-db",
            dbs.city.to_str().unwrap(),
            "--trusted-proxy",
            "127.0.0.0/8",
            "--proxy-protocol",
        ],
    );
    // v2 (binary, as AWS NLB and HAProxy send it) and v1 (text, as nginx's stream
    // module sends it).
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend([
        0x21, 0x11, 0, 12, 198, 51, 100, 9, 127, 0, 0, 1, 0xc3, 0x50, 0, 80,
    ]);
    let v1 = b"PROXY TCP4 198.51.100.10 127.0.0.1 50000 80\r\n".to_vec();
    for (header, client) in [(v2, "198.51.100.9"), (v1, "198.51.100.10")] {
        let addr = verge.addr.clone();
        let response = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            stream.write_all(&header).unwrap();
            stream
                .write_all(b"GET /info HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        })
        .await
        .unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        let info: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(info["client_ip"], client);
        assert_eq!(info["geo"]["city"], "Berlin");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_overrides_win_over_the_database() {
    let dbs = geo_dbs();
    let (verge, _app) = serve_edge(
        "[geo.overrides.\"127.0.0.1\"]\ncountry_code = \"JP\"\ncity = \"Tokyo\"\n\
         [geo.overrides.\"198.51.100.0/24\"]\ncountry_code = \"FR\"\ncity = \"Paris\"\n\
         [geo.overrides.\"198.51.100.64/26\"]\ncountry_code = \"GB\"\n",
        &["--geoip-db", dbs.city.to_str().unwrap()],
    );
    let info = get_json(&verge, "/info", None).await;
    assert_eq!(info["client_ip"], "127.0.0.1");
    assert_eq!(info["geo"]["country_code"], "JP");
    assert_eq!(info["geo"]["city"], "Tokyo");
    // The override replaces the database's Berlin, and the most specific one wins.
    let paris = get_json(&verge, "/geo?ip=198.51.100.1", None).await;
    assert_eq!(
        (paris["country_code"].as_str(), paris["city"].as_str()),
        (Some("FR"), Some("Paris"))
    );
    let london = get_json(&verge, "/geo?ip=198.51.100.70", None).await;
    assert_eq!(london["country_code"], "GB");
    // Elsewhere the database answers.
    let tokyo = get_json(&verge, "/geo?ip=203.0.113.9", None).await;
    assert_eq!(tokyo["time_zone"], "Asia/Tokyo");
}

#[test]
fn a_missing_or_corrupt_database_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.mmdb");
    std::fs::write(&corrupt, b"this is not a maxmind database at all").unwrap();
    let missing = dir.path().join("missing.mmdb");
    let component = guest("edge");
    for db in [&missing, &corrupt] {
        let out = verge(
            &[
                "serve",
                component.to_str().unwrap(),
                "--geoip-db",
                db.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            dir.path(),
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(db.to_str().unwrap()) && stderr.contains("geolocation database"),
            "{stderr}"
        );
    }
    let bad_override = app_dir_for(&component, "[geo.overrides.\"300.1.1.1\"]\ncity = \"x\"\n");
    let out = verge(
        &["serve", "--no-build", "--listen", "127.0.0.1:0"],
        bad_override.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("300.1.1.1") && stderr.contains("line"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_facts_match_the_request() {
    let (verge, _app) = serve_edge("", &["--node-name", "edge-tokyo-1"]);
    let resp = client()
        .get(verge.url("/info"))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    let info: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(info["request_id"], id.as_str());
    assert_eq!(info["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(info["node"], "edge-tokyo-1");
    assert_eq!(info["app"], "test-app");
    let version = info["version"].as_str().unwrap();
    assert!(
        version.len() == 12 && version.bytes().all(|b| b.is_ascii_hexdigit()),
        "{version}"
    );
    assert_eq!(info["cpu_limit_us"], 50_000);
    let used = info["cpu_used_us"].as_u64().unwrap();
    assert!(used > 0 && used < 50_000, "{used}");
    assert_eq!(
        verge.access_line(&id)["trace_id"],
        "0af7651916cd43dd8448eb211c80319c"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_fetches_allowed_urls_and_forwards_to_backends() {
    let origin = Origin::start().await;
    let port = origin.port();
    let (verge, _app) = serve_edge(
        &format!(
            "[egress]\nallow = [\"127.0.0.1:{port}\"]\nallow_private = true\n\
             [backends.origin]\nurl = \"http://127.0.0.1:{port}\"\nallow_private = true\n"
        ),
        &[],
    );
    let resp = client()
        .get(verge.url(&format!("/fetch?url=http://127.0.0.1:{port}/hello")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-fetched"], "yes");
    assert_eq!(resp.headers()["x-origin"], "yes");
    assert_eq!(resp.text().await.unwrap(), "hello from origin");

    let resp = client()
        .get(verge.url("/fetch?url=http://127.0.0.2:9/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("HttpRequestDenied") && text.contains("127.0.0.2"),
        "{text}"
    );

    // Request::send forwards the client's request (method, path, query, body).
    let resp = client()
        .post(verge.url("/send/origin?x=1"))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "the origin has no such path");
    assert_eq!(resp.text().await.unwrap(), "no such path: /send/origin?x=1");
}
