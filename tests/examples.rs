//! The apps in `examples/`, built with `verge build` and served against real origins
//! on 127.0.0.1: each example's own verge.toml, with its backend URLs pointed at the
//! test's origins.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::geo::*;
use common::origin::{Origin, RawOrigin};
use common::*;

/// Builds `examples/NAME` once per test process; returns its component.
fn built(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dir = repo_root().join("examples").join(name);
    let mut done = BUILT.lock().unwrap();
    if !done.iter().any(|n| n == name) {
        let out = verge(&["build"], &dir);
        assert!(
            out.status.success(),
            "verge build {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        done.push(name.to_owned());
    }
    dir.join(format!("{name}.wasm"))
}

/// The example's verge.toml with each named backend sent to a test origin (and
/// allowed to reach loopback), written to `dir`.
fn manifest_for(example: &str, origins: &[(&str, u16)], dir: &Path) -> PathBuf {
    let path = repo_root()
        .join("examples")
        .join(example)
        .join("verge.toml");
    let mut manifest: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    let backends = manifest["backends"].as_table_mut().unwrap();
    for (name, port) in origins {
        let backend = backends[*name].as_table_mut().unwrap();
        backend.insert("url".into(), format!("http://127.0.0.1:{port}").into());
        backend.insert("allow_private".into(), true.into());
    }
    let out = dir.join("verge.toml");
    std::fs::write(&out, toml::to_string(&manifest).unwrap()).unwrap();
    out
}

struct GeoRouter {
    verge: Verge,
    apac: Origin,
    eu: Origin,
    us: Origin,
    _dir: tempfile::TempDir,
}

async fn geo_router(flags: &[&str]) -> GeoRouter {
    let (apac, eu, us) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_for(
        "geo-router",
        &[
            ("origin-apac", apac.port()),
            ("origin-eu", eu.port()),
            ("origin-us", us.port()),
        ],
        dir.path(),
    );
    let component = built("geo-router");
    let mut args = vec![
        component.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    GeoRouter {
        verge: Verge::serve(&args),
        apac,
        eu,
        us,
        _dir: dir,
    }
}

/// Which origin answered `/headers` (by the Host it saw) and the country header.
async fn route_of(router: &GeoRouter, xff: Option<&str>) -> (String, String) {
    let mut req = client().get(router.verge.url("/headers?from=edge"));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let country = resp.headers()["x-edge-country"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(seen["path"], "/headers?from=edge");
    let host = seen["headers"]["host"].as_str().unwrap();
    let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
    let origin = [
        ("apac", router.apac.port()),
        ("eu", router.eu.port()),
        ("us", router.us.port()),
    ]
    .into_iter()
    .find(|(_, p)| *p == port)
    .unwrap()
    .0;
    (origin.to_owned(), country)
}

#[tokio::test(flavor = "multi_thread")]
async fn geo_router_sends_a_local_visitor_to_apac_by_the_dev_override() {
    let router = geo_router(&[]).await;
    assert_eq!(
        route_of(&router, None).await,
        ("apac".to_string(), "JP".to_string())
    );
}

/// The SDK hands a forwarded request's and a passed-through response's headers along
/// inside the host: what the client sent reaches the origin (hop-by-hop headers and
/// credentials for the proxy do not), and the origin's headers reach the client with
/// the one the guest set.
#[tokio::test(flavor = "multi_thread")]
async fn geo_router_forwards_headers_both_ways_without_the_hop_by_hop_ones() {
    let router = geo_router(&[]).await;
    let resp = client()
        .get(router.verge.url("/headers"))
        .header("x-client", "one")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-edge-country", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let countries: Vec<_> = resp.headers().get_all("x-edge-country").iter().collect();
    assert_eq!(countries, ["JP"], "one x-edge-country, the guest's");
    let length = resp.content_length().expect("the origin's content-length");
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len() as u64, length);
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let headers = &seen["headers"];
    assert_eq!(headers["x-client"], "one", "{seen}");
    assert_eq!(headers["x-edge-country"], "forged", "{seen}");
    assert!(headers.get("proxy-authorization").is_none(), "{seen}");
    assert!(headers.get("x-multi").is_some(), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn geo_router_routes_by_the_mmdb_country_of_the_client() {
    let dbs = tempfile::tempdir().unwrap();
    let city = write_city_db(dbs.path(), &[TOKYO, BERLIN, SINGAPORE, NEW_YORK]);
    let router = geo_router(&[
        "--geoip-db",
        city.to_str().unwrap(),
        "--trusted-proxy",
        "127.0.0.1",
    ])
    .await;
    for (client, origin, country) in [
        ("203.0.113.7", "apac", "JP"),
        ("2001:db8:1::9", "apac", "SG"),
        ("198.51.100.20", "eu", "DE"),
        ("192.0.2.200", "us", "US"),
        ("192.0.2.1", "us", "unknown"),
    ] {
        assert_eq!(
            route_of(&router, Some(client)).await,
            (origin.to_string(), country.to_string()),
            "{client}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn geo_router_passes_a_gibibyte_through_within_the_cpu_limit() {
    use futures::StreamExt;
    let router = geo_router(&[]).await;
    let resp = client()
        .get(router.verge.url("/bytes/1073741824"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = request_id(&resp);
    let mut total = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len() as u64;
    }
    assert_eq!(total, 1 << 30);
    let access = router.verge.access_line(&id);
    assert_eq!(access["outcome"], "ok", "{access}");
    assert!(
        access["guest_cpu_us"].as_u64().unwrap() < 50_000,
        "{access}"
    );
}

/// The SDK hands an origin's untouched body to the host (`verge:edge/http-body`):
/// the handler, and its instance, are done while the body still streams.
#[tokio::test(flavor = "multi_thread")]
async fn geo_router_is_done_while_the_origin_body_still_streams() {
    let raw = RawOrigin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = raw.addr.port();
    let manifest = manifest_for(
        "geo-router",
        &[
            ("origin-apac", port),
            ("origin-eu", port),
            ("origin-us", port),
        ],
        dir.path(),
    );
    let component = built("geo-router");
    let verge = Verge::serve(&[
        component.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    // `/stall`: 100 of 1,000 bytes, then nothing for minutes.
    let mut resp = client().get(verge.url("/stall")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-edge-country"], "JP");
    let id = request_id(&resp);
    let mut received = Vec::new();
    while received.len() < 100 {
        received.extend_from_slice(&resp.chunk().await.unwrap().unwrap());
    }
    assert_eq!(received, [b's'; 100]);
    let access = verge.access_line(&id);
    assert_eq!(access["outcome"], "ok", "{access}");
    // The access line is written when the guest has finished; the body is still
    // open (a guest splicing it would still be waiting for the next byte).
    let next = tokio::time::timeout(Duration::from_millis(300), resp.chunk()).await;
    assert!(next.is_err(), "the body ended early: {next:?}");
}

/// `examples/EXAMPLE` (`api-filter`, or its Python twin `api-filter-py`) in front of
/// a test origin.
async fn api_filter(example: &str) -> (Verge, Origin, tempfile::TempDir) {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_for(example, &[("origin", origin.port())], dir.path());
    let component = built(example);
    let verge = Verge::serve(&[
        component.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    (verge, origin, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn api_filter_keeps_only_the_configured_fields() {
    let (verge, origin, _dir) = api_filter("api-filter").await;
    keeps_only_the_configured_fields(&verge, &origin).await;
}

async fn keeps_only_the_configured_fields(verge: &Verge, origin: &Origin) {
    origin.set_json(
        r#"[
            {"id": 1, "name": "verge", "secret": "x", "tags": ["edge", "wasm"],
             "owner": {"login": "ada", "email": "ada@example.com"}},
            {"id": 2, "name": "spine", "owner": {"login": "bob", "token": "t"}, "extra": {"a": 1}}
        ]"#,
    );
    let resp = client().get(verge.url("/api/json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!([
            {"id": 1, "name": "verge", "tags": ["edge", "wasm"], "owner": {"login": "ada"}},
            {"id": 2, "name": "spine", "owner": {"login": "bob"}}
        ])
    );

    origin
        .set_json(r#"{"id": 7, "owner": [{"login": "a", "x": 1}, {"login": "b"}], "drop": true}"#);
    let body: serde_json::Value = client()
        .get(verge.url("/api/json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        serde_json::json!({"id": 7, "owner": [{"login": "a"}, {"login": "b"}]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_filter_passes_non_json_through_with_an_error_header() {
    let (verge, origin, _dir) = api_filter("api-filter").await;
    passes_non_json_through_with_an_error_header(&verge, &origin).await;
}

async fn passes_non_json_through_with_an_error_header(verge: &Verge, origin: &Origin) {
    let resp = client().get(verge.url("/api/hello")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let why = resp.headers()["x-filter-error"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(why.contains("not JSON"), "{why}");
    assert_eq!(resp.text().await.unwrap(), "hello from origin");

    origin.set_json("{\"id\": 1, oops");
    let resp = client().get(verge.url("/api/json")).send().await.unwrap();
    let why = resp.headers()["x-filter-error"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(why.contains("invalid"), "{why}");
    assert_eq!(resp.text().await.unwrap(), "{\"id\": 1, oops");

    // The origin's own errors pass through too.
    let resp = client()
        .get(verge.url("/api/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_filter_answers_404_and_405_elsewhere() {
    let (verge, origin, _dir) = api_filter("api-filter").await;
    answers_404_and_405_elsewhere(&verge, &origin).await;
}

/// The Python twin, built by `verge build` with componentize-py, on one server (its
/// component takes seconds to compile): the Rust example's checks, each as it is.
#[tokio::test(flavor = "multi_thread")]
async fn api_filter_in_python_behaves_as_the_rust_one() {
    let (verge, origin, _dir) = api_filter("api-filter-py").await;
    // First: it counts the origin's connections.
    answers_404_and_405_elsewhere(&verge, &origin).await;
    keeps_only_the_configured_fields(&verge, &origin).await;
    passes_non_json_through_with_an_error_header(&verge, &origin).await;
}

/// Only `GET /api/*` reaches the origin; call it before anything else has.
async fn answers_404_and_405_elsewhere(verge: &Verge, origin: &Origin) {
    let resp = client().get(verge.url("/other")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client().post(verge.url("/api/json")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
    assert_eq!(origin.connections(), 0, "nothing reached the origin");
}

/// `verge serve examples/EXAMPLE` (`url-shortener`, or its JavaScript twin
/// `url-shortener-js`), its data in `data`.
fn url_shortener(example: &str, data: &Path) -> Verge {
    built(example);
    let dir = repo_root().join("examples").join(example);
    Verge::serve(&[
        dir.to_str().unwrap(),
        "--no-build",
        "--data-dir",
        data.to_str().unwrap(),
    ])
}

async fn post_json(verge: &Verge, path: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = client()
        .post(verge.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn url_shortener_shortens_redirects_and_keeps_links_across_restarts() {
    shortens_redirects_and_keeps_links_across_restarts("url-shortener").await;
}

/// The JavaScript twin, bundled with Verge's JavaScript module by `verge build`: the
/// Rust example's checks, each as it is.
#[tokio::test(flavor = "multi_thread")]
async fn url_shortener_in_javascript_behaves_as_the_rust_one() {
    shortens_redirects_and_keeps_links_across_restarts("url-shortener-js").await;
    let data = tempfile::tempdir().unwrap();
    refuses_what_is_not_an_http_url(&url_shortener("url-shortener-js", data.path())).await;
}

async fn shortens_redirects_and_keeps_links_across_restarts(example: &str) {
    let data = tempfile::tempdir().unwrap();
    let verge = url_shortener(example, data.path());
    let health = client().get(verge.url("/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    // Seeded from links.json.
    let resp = no_redirects().get(verge.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "https://docs.example.com/");

    let (status, made) = post_json(
        &verge,
        "/shorten",
        r#"{"url": "https://example.com/a?b=c"}"#,
    )
    .await;
    assert_eq!(status, 201);
    let slug = made["slug"].as_str().unwrap().to_owned();
    assert_eq!(slug.len(), 7);
    assert_eq!(made["short_url"], format!("http://{}/{slug}", verge.addr));
    let (_, other) = post_json(&verge, "/shorten", r#"{"url": "http://example.org/"}"#).await;
    assert_ne!(other["slug"], made["slug"], "every link gets its own slug");

    let resp = no_redirects()
        .get(verge.url(&format!("/{slug}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "https://example.com/a?b=c");

    // A restart (after kill -9) keeps the link.
    drop(verge);
    let verge = url_shortener(example, data.path());
    let resp = no_redirects()
        .get(verge.url(&format!("/{slug}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "https://example.com/a?b=c");
}

#[tokio::test(flavor = "multi_thread")]
async fn url_shortener_refuses_what_is_not_an_http_url() {
    let data = tempfile::tempdir().unwrap();
    refuses_what_is_not_an_http_url(&url_shortener("url-shortener", data.path())).await;
}

async fn refuses_what_is_not_an_http_url(verge: &Verge) {
    for body in [
        r#"{"url": "ftp://example.com/file"}"#,
        r#"{"url": "javascript:alert(1)"}"#,
        r#"{"url": "https://"}"#,
    ] {
        let (status, answer) = post_json(verge, "/shorten", body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], "url must be http(s)");
    }
    let (status, answer) = post_json(verge, "/shorten", "not json").await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("body must be JSON")
    );
    let resp = client().get(verge.url("/nope123")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client().delete(verge.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

mod jwt {
    //! Signs test tokens: HS256 with a shared key, RS256 with a fresh RSA key.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::Mac;
    use rsa::pkcs8::EncodePublicKey;
    use rsa::signature::{SignatureEncoding, Signer};

    pub const HS_KEY: &str = "a-test-hmac-key-of-reasonable-length";

    pub struct RsaKeys {
        pub private: rsa::RsaPrivateKey,
        pub public_pem: String,
    }

    pub fn rsa_keys() -> RsaKeys {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        RsaKeys {
            private,
            public_pem,
        }
    }

    fn signed_part(alg: &str, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({ "alg": alg, "typ": "JWT" });
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    pub fn hs256(key: &str, claims: &serde_json::Value) -> String {
        let signed = signed_part("HS256", claims);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(signed.as_bytes());
        let sig = mac.finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    pub fn rs256(key: &rsa::RsaPrivateKey, claims: &serde_json::Value) -> String {
        let signed = signed_part("RS256", claims);
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
        let sig = signer.sign(signed.as_bytes()).to_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    pub fn unsigned(claims: &serde_json::Value) -> String {
        format!("{}.", signed_part("none", claims))
    }

    pub fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
}

struct JwtAuth {
    verge: Verge,
    rsa: jwt::RsaKeys,
    _origin: Origin,
    _dir: tempfile::TempDir,
}

async fn jwt_auth() -> JwtAuth {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_for("jwt-auth", &[("origin", origin.port())], dir.path());
    let rsa = jwt::rsa_keys();
    std::fs::write(
        dir.path().join("jwt-keys.json"),
        serde_json::json!({ "hs256": jwt::HS_KEY, "rs256": rsa.public_pem }).to_string(),
    )
    .unwrap();
    let component = built("jwt-auth");
    let verge = Verge::serve(&[
        component.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    JwtAuth {
        verge,
        rsa,
        _origin: origin,
        _dir: dir,
    }
}

fn good_claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "user-7", "role": "admin", "iss": "https://auth.example.com/", "aud": "api",
        "exp": jwt::now() + 600, "nbf": jwt::now() - 10,
    })
}

/// `GET /headers` with `token`: the status, `WWW-Authenticate`, and the body.
async fn with_token(app: &JwtAuth, token: Option<&str>) -> (u16, String, String) {
    let mut req = client()
        .get(app.verge.url("/headers"))
        .header("x-user-role", "forged");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_auth_forwards_valid_hs256_and_rs256_tokens_with_claims_as_headers() {
    let app = jwt_auth().await;
    for token in [
        jwt::hs256(jwt::HS_KEY, &good_claims()),
        jwt::rs256(&app.rsa.private, &good_claims()),
    ] {
        let (status, _, body) = with_token(&app, Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
        let headers = &seen["headers"];
        assert_eq!(headers["x-user-id"], "user-7");
        assert_eq!(
            headers["x-user-role"], "admin",
            "the client's own header is replaced"
        );
        assert!(
            headers.get("x-user-email").is_none(),
            "absent claims add nothing"
        );
        assert!(
            headers.get("authorization").is_none(),
            "the token stays at the edge"
        );
    }
    // An audience list that contains ours.
    let mut claims = good_claims();
    claims["aud"] = serde_json::json!(["other", "api"]);
    let (status, _, _) = with_token(&app, Some(&jwt::hs256(jwt::HS_KEY, &claims))).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_auth_refuses_bad_tokens_saying_why() {
    let app = jwt_auth().await;
    let (status, challenge, _) = with_token(&app, None).await;
    assert_eq!((status, challenge.as_str()), (401, "Bearer realm=\"api\""));

    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = good_claims();
        change(&mut claims);
        claims
    };
    let other_rsa = jwt::rsa_keys();
    let cases = [
        (
            jwt::hs256(
                jwt::HS_KEY,
                &with(&|c| c["exp"] = (jwt::now() - 120).into()),
            ),
            "the token has expired",
        ),
        (
            jwt::hs256(
                jwt::HS_KEY,
                &with(&|c| c["nbf"] = (jwt::now() + 600).into()),
            ),
            "the token is not valid yet",
        ),
        (
            jwt::hs256(
                jwt::HS_KEY,
                &with(&|c| c["iss"] = "https://evil.example/".into()),
            ),
            "the token has the wrong issuer",
        ),
        (
            jwt::hs256(jwt::HS_KEY, &with(&|c| c["aud"] = "other".into())),
            "the token is not for this audience",
        ),
        (
            jwt::hs256("the-wrong-key", &good_claims()),
            "the signature does not verify",
        ),
        (
            jwt::rs256(&other_rsa.private, &good_claims()),
            "the signature does not verify",
        ),
        (
            jwt::unsigned(&good_claims()),
            "algorithm none is not accepted",
        ),
        ("not.a.jwt".to_owned(), "the token is not a well-formed JWT"),
    ];
    for (token, reason) in cases {
        let (status, challenge, _) = with_token(&app, Some(&token)).await;
        assert_eq!(status, 401, "{reason}");
        assert_eq!(
            challenge,
            format!(
                "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{reason}\""
            )
        );
    }
    // Within the leeway, a just-expired token still passes.
    let claims = with(&|c| c["exp"] = (jwt::now() - 5).into());
    assert_eq!(
        with_token(&app, Some(&jwt::hs256(jwt::HS_KEY, &claims)))
            .await
            .0,
        200
    );
}

struct AbTest {
    verge: Verge,
    control: Origin,
    experiment: Origin,
    _dir: tempfile::TempDir,
}

async fn ab_test() -> AbTest {
    let control = Origin::start().await;
    let experiment = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_for(
        "ab-test",
        &[
            ("control", control.port()),
            ("experiment", experiment.port()),
        ],
        dir.path(),
    );
    let component = built("ab-test");
    let verge = Verge::serve(&[
        component.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    AbTest {
        verge,
        control,
        experiment,
        _dir: dir,
    }
}

/// `GET /headers` with `cookie`: the variant header, the Set-Cookie, and the port of
/// the origin that answered (from the Host it saw).
async fn visit(
    app: &AbTest,
    client: &reqwest::Client,
    cookie: Option<&str>,
) -> (String, Option<String>, u16) {
    let mut req = client.get(app.verge.url("/headers"));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let variant = resp.headers()["x-ab-variant"].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()["vary"], "Cookie");
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let seen: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(seen["headers"]["x-ab-variant"], variant.as_str());
    let host = seen["headers"]["host"].as_str().unwrap();
    let port = host.rsplit(':').next().unwrap().parse().unwrap();
    (variant, set_cookie, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn ab_test_splits_new_visitors_as_configured_and_keeps_them_on_their_variant() {
    let app = ab_test().await;
    let client = client();
    // 10,000 new visitors from 16 clients at once: 30 % should land in `b`.
    let visitors = 10_000;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (app, client) = (app.clone(), client.clone());
            tokio::spawn(async move {
                let mut b = 0;
                for _ in 0..visitors / 16 {
                    let (variant, set_cookie, port) = visit(&app, &client, None).await;
                    let cookie = set_cookie.expect("a new visitor gets a cookie");
                    assert!(
                        cookie.starts_with(&format!("ab_variant={variant}; ")),
                        "{cookie}"
                    );
                    let expected = if variant == "b" {
                        app.experiment.port()
                    } else {
                        app.control.port()
                    };
                    assert_eq!(port, expected, "variant {variant} goes to its own backend");
                    b += usize::from(variant == "b");
                }
                b
            })
        })
        .collect();
    let mut in_b = 0;
    for task in tasks {
        in_b += task.await.unwrap();
    }
    let share = in_b as f64 / (visitors / 16 * 16) as f64;
    assert!(
        (share - 0.30).abs() <= 0.02,
        "{:.1} % of new visitors in b",
        share * 100.0
    );

    // A returning visitor keeps their variant and gets no new cookie.
    for variant in ["a", "b"] {
        for _ in 0..20 {
            let (seen, set_cookie, _) = visit(
                &app,
                &client,
                Some(&format!("other=1; ab_variant={variant}")),
            )
            .await;
            assert_eq!(seen, variant);
            assert_eq!(set_cookie, None);
        }
    }
    // A cookie with a value that is no variant is replaced.
    let (_, set_cookie, _) = visit(&app, &client, Some("ab_variant=zzz")).await;
    assert!(set_cookie.is_some());
}

mod images {
    //! Test images, made here.
    use std::io::Cursor;

    /// A `w`×`h` gradient, as JPEG or PNG.
    pub fn gradient(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A PNG whose header claims `w`×`h` pixels but holds none: what a decompression
    /// bomb looks like to a decoder that trusts it.
    pub fn claimed_png(w: u32, h: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.finalize().to_be_bytes());
        };
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
        chunk(b"IHDR", &ihdr);
        chunk(b"IEND", &[]);
        out
    }

    pub fn decode(bytes: &[u8]) -> image::DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }
}

struct ImageResize {
    verge: Verge,
    origin: Origin,
    _dir: tempfile::TempDir,
}

/// The example's manifest with `requests_per_second` changed.
async fn image_resize(requests_per_second: u32) -> ImageResize {
    image_resize_with(requests_per_second, "256MiB").await
}

/// ... and the memory limit too.
async fn image_resize_with(requests_per_second: u32, memory: &str) -> ImageResize {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_for("image-resize", &[("origin", origin.port())], dir.path());
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(
            "requests_per_second = 20",
            &format!("requests_per_second = {requests_per_second}"),
        )
        .replace("memory = \"256MiB\"", &format!("memory = \"{memory}\""));
    std::fs::write(&manifest, text).unwrap();
    origin.set_file(
        "/files/photo.jpg",
        "image/jpeg",
        images::gradient(1000, 1000, image::ImageFormat::Jpeg),
    );
    origin.set_file(
        "/files/wide.png",
        "image/png",
        images::gradient(400, 200, image::ImageFormat::Png),
    );
    let component = built("image-resize");
    let verge = Verge::serve(&[
        component.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    ImageResize {
        verge,
        origin,
        _dir: dir,
    }
}

async fn fetch(app: &ImageResize, path: &str, client_ip: &str) -> (u16, String, Vec<u8>) {
    let resp = client()
        .get(app.verge.url(path))
        .header("x-forwarded-for", client_ip)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn image_resize_resizes_a_1_megapixel_jpeg_and_converts_formats() {
    let app = image_resize(1000).await;
    let (status, content_type, body) = fetch(&app, "/files/photo.jpg?w=300", "192.0.2.1").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "image/jpeg");
    let out = images::decode(&body);
    assert_eq!((out.width(), out.height()), (300, 300));

    // Into a 100x100 box the 2:1 image becomes 100x50, as PNG → JPEG.
    let (status, content_type, body) =
        fetch(&app, "/files/wide.png?w=100&h=100&format=jpeg", "192.0.2.1").await;
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    let out = images::decode(&body);
    assert_eq!((out.width(), out.height()), (100, 50));

    let (status, content_type, body) =
        fetch(&app, "/files/photo.jpg?h=64&format=png", "192.0.2.1").await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    assert_eq!(images::decode(&body).height(), 64);
}

#[tokio::test(flavor = "multi_thread")]
async fn image_resize_refuses_bad_input_clearly_and_keeps_serving() {
    let app = image_resize(1000).await;
    app.origin
        .set_file("/files/notes.txt", "text/plain", b"just text".to_vec());
    app.origin.set_file(
        "/files/bomb.png",
        "image/png",
        images::claimed_png(30_000, 30_000),
    );
    let cases = [
        (
            "/files/photo.jpg?w=0",
            400,
            "w must be a whole number from 1 to 4096, not \"0\"",
        ),
        (
            "/files/photo.jpg?w=99999",
            400,
            "w must be a whole number from 1 to 4096",
        ),
        (
            "/files/photo.jpg?format=gif",
            400,
            "format must be png or jpeg, not \"gif\"",
        ),
        (
            "/files/notes.txt?w=10",
            415,
            "the origin's response is not a PNG or JPEG image",
        ),
        (
            "/files/bomb.png?w=10",
            413,
            "the source image is 30000x30000; at most 40000000 pixels",
        ),
        ("/files/missing.jpg?w=10", 502, "the origin answered 404"),
    ];
    for (path, status, message) in cases {
        let (got, _, body) = fetch(&app, path, "192.0.2.2").await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.starts_with(message), "{path}: {body}");
    }
    // The server is still there, and still resizing.
    let (status, _, _) = fetch(&app, "/files/photo.jpg?w=10", "192.0.2.2").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn image_resize_rate_limits_each_client_ip() {
    // 2 per second over 10 s: the 21st request of one client is refused.
    let app = image_resize(2).await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(fetch(&app, "/files/wide.png?w=8", "198.51.100.7").await.0);
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        20,
        "{statuses:?}"
    );
    assert!(statuses[20..].iter().all(|&s| s == 429), "{statuses:?}");
    assert_eq!(
        fetch(&app, "/files/wide.png?w=8", "198.51.100.8").await.0,
        200,
        "another client is not limited"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_too_big_for_the_memory_limit_fails_only_its_own_request() {
    let app = image_resize_with(1000, "32MiB").await;
    app.origin.set_file(
        "/files/big.jpg",
        "image/jpeg",
        images::gradient(3000, 3000, image::ImageFormat::Jpeg),
    );
    let resp = client()
        .get(app.verge.url("/files/big.jpg?w=100"))
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    assert_eq!(resp.status(), 500);
    assert_eq!(app.verge.access_line(&id)["outcome"], "limit:memory");
    let (status, _, _) = fetch(&app, "/files/photo.jpg?w=50", "192.0.2.3").await;
    assert_eq!(status, 200, "the next request is served");
}

/// `GET /items/ID`: the status, the JSON body and the access line's cache outcome.
async fn read_item(
    verge: &Verge,
    path: &str,
) -> (serde_json::Value, String, reqwest::header::HeaderMap) {
    let resp = client().get(verge.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let id = request_id(&resp);
    let headers = resp.headers().clone();
    let body: serde_json::Value = resp.json().await.unwrap();
    let cache = verge.access_line(&id)["cache"].as_str().unwrap().to_owned();
    (body, cache, headers)
}

async fn post(verge: &Verge, path: &str) -> u16 {
    client()
        .post(verge.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn cached_api_serves_reads_from_the_edge_until_a_write_purges_them() {
    built("cached-api");
    let dir = repo_root().join("examples/cached-api");
    let data = tempfile::tempdir().unwrap();
    let verge = Verge::serve(&[
        dir.to_str().unwrap(),
        "--no-build",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let (one, outcome, headers) = read_item(&verge, "/items/1").await;
    assert_eq!(one["id"], "1");
    assert_eq!(outcome, "miss");
    assert!(!headers.contains_key("surrogate-key") && !headers.contains_key("surrogate-control"));
    assert_eq!(headers["cache-control"], "no-cache", "browsers revalidate");
    let (again, outcome, _) = read_item(&verge, "/items/1").await;
    assert_eq!(
        (again["nonce"].clone(), outcome.as_str()),
        (one["nonce"].clone(), "hit")
    );
    let (two, _, _) = read_item(&verge, "/items/2").await;
    // Another URL of item 1, tagged item-1 as well.
    let (one_alt, _, _) = read_item(&verge, "/items/1?view=full").await;

    // Updating item 1 purges its key: both of its URLs, not item 2.
    assert_eq!(post(&verge, "/items/1").await, 204);
    let (after, outcome, _) = read_item(&verge, "/items/1").await;
    assert_ne!(after["nonce"], one["nonce"]);
    assert_eq!(outcome, "miss");
    let (alt_after, outcome, _) = read_item(&verge, "/items/1?view=full").await;
    assert_ne!(
        alt_after["nonce"], one_alt["nonce"],
        "purged by surrogate key"
    );
    assert_eq!(outcome, "miss");
    let (two_again, outcome, _) = read_item(&verge, "/items/2").await;
    assert_eq!(
        (two_again["nonce"].clone(), outcome.as_str()),
        (two["nonce"].clone(), "hit")
    );

    // A bulk change purges every item.
    assert_eq!(post(&verge, "/items").await, 204);
    let (two_after, outcome, _) = read_item(&verge, "/items/2").await;
    assert_ne!(two_after["nonce"], two["nonce"]);
    assert_eq!(outcome, "miss");
    let (one_last, _, _) = read_item(&verge, "/items/1").await;
    assert_ne!(one_last["nonce"], after["nonce"]);

    let resp = client().get(verge.url("/other")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client().put(verge.url("/items/1")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}
