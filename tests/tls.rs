//! HTTPS on `verge node`: a certificate per domain chosen by SNI (exact names and
//! wildcards), HTTP/2 and HTTP/1.1 by ALPN, the TLS parameters reaching the guest,
//! unknown names, and certificates reloaded when their files change. Every
//! certificate is made here with rcgen.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::node::*;
use common::*;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A test CA signing leaf certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Verge test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `names`: its PEM chain, its key's PEM, and its DER (to recognise it).
    fn leaf(&self, names: &[&str]) -> (String, String, CertificateDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    fn client_config(&self, alpn: &[&str]) -> Arc<rustls::ClientConfig> {
        self.client_config_sni(alpn, true)
    }

    /// `sni: false` makes a client that sends no server name (as a scan by IP does).
    fn client_config_sni(&self, alpn: &[&str], sni: bool) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        config.enable_sni = sni;
        Arc::new(config)
    }
}

/// Writes `content` to `path` atomically, as deploy tools do.
fn put(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Opens a TLS connection to `addr` asking for `sni`.
async fn connect(
    ca: &Ca,
    addr: &str,
    sni: &str,
    alpn: &[&str],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(ca.client_config(alpn))
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
        .await
}

/// Opens a TLS connection to `addr` without SNI, verifying the certificate for `name`.
async fn connect_without_sni(
    ca: &Ca,
    addr: &str,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(ca.client_config_sni(&["h2"], false))
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
}

/// The TLS alert a refused handshake ended with, if the server sent one.
fn alert_of(refused: std::io::Result<TlsStream<TcpStream>>) -> Option<rustls::AlertDescription> {
    let Err(e) = refused else {
        panic!("the handshake was not refused");
    };
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        other => panic!("the handshake failed without an alert: {other}"),
    }
}

fn served_cert(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// `GET path` over `stream` with HTTP/2 when ALPN agreed on it, else HTTP/1.1.
async fn get(stream: TlsStream<TcpStream>, host: &str, path: &str) -> (u16, serde_json::Value) {
    let io = hyper_util::rt::TokioIo::new(stream);
    let h2 = io.inner().get_ref().1.alpn_protocol() == Some(b"h2");
    let resp = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get(format!("https://{host}{path}"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get(path)
            .header("host", host)
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        sender.send_request(req).await.unwrap()
    };
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned().into()),
    )
}

/// A node with HTTPS on the certificates of `certs`, plus its plain listener; the
/// node, its admin URL and its HTTPS address.
fn start_https(data: &Path, certs: &Path) -> (Verge, String, String) {
    let (verge, admin) = start_with(
        data,
        &[
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-certs",
            certs.to_str().unwrap(),
        ],
        &[],
    );
    let https = verge
        .stdout
        .wait_for(Duration::from_secs(10), |l| {
            l.starts_with("Listening on https://")
        })
        .trim_start_matches("Listening on https://")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    (verge, admin, https)
}

/// Waits until a handshake for `sni` passes `pred`; panics after 15 s.
async fn wait_for_handshake(
    ca: &Ca,
    addr: &str,
    sni: &str,
    pred: impl Fn(&std::io::Result<TlsStream<TcpStream>>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let result = connect(ca, addr, sni, &["http/1.1"]).await;
        if pred(&result) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not pick up the changed certificates for {sni}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_domain_gets_its_certificate_over_h2_and_http1_and_the_guest_sees_the_tls() {
    let ca = Ca::new();
    let certs = tempfile::tempdir().unwrap();
    let (shop_pem, shop_key, shop_der) = ca.leaf(&["shop.test", "*.shop.test"]);
    std::fs::write(certs.path().join("shop.crt"), &shop_pem).unwrap();
    std::fs::write(certs.path().join("shop.key"), &shop_key).unwrap();
    // A chain and its key in one file.
    let (blog_pem, blog_key, blog_der) = ca.leaf(&["blog.test"]);
    std::fs::write(
        certs.path().join("blog.pem"),
        format!("{blog_pem}{blog_key}"),
    )
    .unwrap();

    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin, https) = start_https(data.path(), certs.path());
    let edge = package_of(packages.path(), "edge", "");
    let (status, body) = create(
        &admin,
        serde_json::json!({"name": "shop", "domains": ["shop.test", "*.shop.test", "blog.test"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &admin,
        "POST",
        "/admin/v1/services/shop/versions",
        Some(edge),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(activate(&admin, "shop", 1).await.0, 200);

    // HTTP/2, exact name.
    let stream = connect(&ca, &https, "shop.test", &["h2", "http/1.1"])
        .await
        .unwrap();
    assert_eq!(served_cert(&stream), shop_der);
    let (status, info) = get(stream, "shop.test", "/info").await;
    assert_eq!(status, 200, "{info}");
    let tls = &info["tls"];
    assert_eq!(tls["protocol"], "TLSv1.3", "{info}");
    assert_eq!(tls["server_name"], "shop.test");
    assert_eq!(tls["alpn"], "h2");
    let suite = tls["cipher_suite"].as_str().unwrap();
    assert!(
        [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256"
        ]
        .contains(&suite),
        "{suite}"
    );
    assert!(
        info["url"].as_str().unwrap().starts_with("https://"),
        "{info}"
    );

    // HTTP/1.1, a name under the wildcard.
    let stream = connect(&ca, &https, "eu.shop.test", &["http/1.1"])
        .await
        .unwrap();
    assert_eq!(served_cert(&stream), shop_der);
    let (status, info) = get(stream, "eu.shop.test", "/info").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["tls"]["alpn"], "http/1.1");
    assert_eq!(info["tls"]["server_name"], "eu.shop.test");
    // A wildcard covers one label only.
    assert!(
        connect(&ca, &https, "a.b.shop.test", &["h2"])
            .await
            .is_err()
    );

    // The other certificate, from the file holding both.
    let stream = connect(&ca, &https, "blog.test", &["h2"]).await.unwrap();
    assert_eq!(served_cert(&stream), blog_der);

    // No certificate names it and there is no default: the handshake fails with
    // `unrecognized_name` (RFC 6066), for an unknown name and for no name at all.
    let refused = connect(&ca, &https, "unknown.test", &["h2"]).await;
    assert_eq!(
        alert_of(refused),
        Some(rustls::AlertDescription::UnrecognisedName)
    );
    let refused = connect_without_sni(&ca, &https, "shop.test").await;
    assert_eq!(
        alert_of(refused),
        Some(rustls::AlertDescription::UnrecognisedName)
    );

    // The plain listener serves the same services, with no TLS for the guest.
    let resp = client()
        .get(verge.url("/info"))
        .header("host", "shop.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let info: serde_json::Value = resp.json().await.unwrap();
    assert!(info["tls"].is_null(), "{info}");
    assert!(
        info["url"].as_str().unwrap().starts_with("http://"),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_reload_when_their_files_change_and_a_broken_file_keeps_the_old_ones() {
    let ca = Ca::new();
    let certs = tempfile::tempdir().unwrap();
    let (pem, key, first) = ca.leaf(&["shop.test"]);
    put(&certs.path().join("shop.crt"), &pem);
    put(&certs.path().join("shop.key"), &key);
    let data = tempfile::tempdir().unwrap();
    let (verge, _admin, https) = start_https(data.path(), certs.path());
    let stream = connect(&ca, &https, "shop.test", &["h2"]).await.unwrap();
    assert_eq!(served_cert(&stream), first);

    // A renewed certificate, dropped in beside the old one: it is valid longer, so
    // it wins. (rcgen's certificates all end in 4096; this one ends later.)
    let renewed_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["shop.test".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(4097, 1, 1);
    let renewed = params.signed_by(&renewed_key, &ca.cert, &ca.key).unwrap();
    put(
        &certs.path().join("shop-renewed.pem"),
        &format!("{}{}", renewed.pem(), renewed_key.serialize_pem()),
    );
    let renewed_der = renewed.der().clone();
    wait_for_handshake(&ca, &https, "shop.test", |r| {
        r.as_ref().is_ok_and(|s| served_cert(s) == renewed_der)
    })
    .await;

    // A default certificate answers names no certificate has.
    let (pem, key, default) = ca.leaf(&["default.test"]);
    put(&certs.path().join("default.key"), &key);
    put(&certs.path().join("default.crt"), &pem);
    let unknown = "unknown.test";
    wait_for_handshake(&ca, &https, unknown, |r| match r {
        // The client refuses it (it names another host), but it was sent.
        Err(e) => e.to_string().contains("invalid peer certificate"),
        Ok(_) => false,
    })
    .await;
    // The server sent the default certificate: seen by a client that trusts it for
    // its own name.
    let stream = connect(&ca, &https, "default.test", &["h2"]).await.unwrap();
    assert_eq!(served_cert(&stream), default);
    // And a client that sends no name gets it too.
    let stream = connect_without_sni(&ca, &https, "default.test")
        .await
        .unwrap();
    assert_eq!(served_cert(&stream), default);

    // A broken file: the node says so and keeps what it served.
    put(&certs.path().join("broken.crt"), "not a certificate\n");
    verge.stderr.wait_for(Duration::from_secs(15), |l| {
        l.contains("keeping the certificates served so far") && l.contains("broken.crt")
    });
    let stream = connect(&ca, &https, "shop.test", &["h2"]).await.unwrap();
    assert_eq!(served_cert(&stream), renewed_der);
}

#[test]
fn a_certificate_directory_that_cannot_be_used_stops_the_node_naming_the_file() {
    let ca = Ca::new();
    let data = tempfile::tempdir().unwrap();
    let run = |certs: &Path| {
        std::process::Command::new(verge_bin())
            .args(["node", "--data-dir", data.path().to_str().unwrap()])
            .args(["--admin-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"])
            .args(["--tls-listen", "127.0.0.1:0", "--tls-certs"])
            .arg(certs)
            .env("VERGE_ADMIN_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let certs = tempfile::tempdir().unwrap();
    let out = run(certs.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no certificates in"), "{stderr}");

    // A key that belongs to another certificate.
    let (pem, _, _) = ca.leaf(&["a.test"]);
    let (_, other_key, _) = ca.leaf(&["b.test"]);
    std::fs::write(certs.path().join("a.crt"), pem).unwrap();
    std::fs::write(certs.path().join("a.key"), other_key).unwrap();
    let out = run(certs.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("a.crt") && stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );

    // A certificate with no key anywhere.
    std::fs::remove_file(certs.path().join("a.key")).unwrap();
    let out = run(certs.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no private key in it, and no") && stderr.contains("a.key"),
        "{stderr}"
    );
}
