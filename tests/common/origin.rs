//! Origin servers for outbound tests, on 127.0.0.1:0, stopped when dropped.
//!
//! [`Origin`] is a real hyper HTTP/1.1 server:
//! (under an optional `/api/v1` prefix)
//! - `/hello`: `hello from origin`
//! - `/headers`: the request's HTTP version, method, path and headers as JSON
//! - `/echo`: the request body back, streamed
//! - `/count`: the number of request body bytes, counted as they stream
//! - `/bytes/N`: N bytes, streamed in 64 KiB chunks
//! - `/json`: the body of the last `set_json` call, as application/json
//! - `/slow/MS`: waits MS milliseconds, then answers `slow`
//! - `/cached/NAME?cc=…&etag=…&sk=…&ms=…&location=…&cl=…&connection=…`: `NAME #N`
//!   (N counts requests for that path, any method) with `Cache-Control`, `ETag`
//!   (quoted), `Surrogate-Key`, `Location` and `Content-Location` from the query,
//!   and `Connection` with each header it names, after waiting `ms`; `304` to a
//!   matching `If-None-Match`; `503` while [`Origin::set_failing`] is on
//!
//! [`RawOrigin`] speaks broken HTTP on purpose: `/garbage` answers with something
//! that is not HTTP, `/cut` promises 1000 bytes and closes after 100, `/stall`
//! sends 100 of 1000 bytes and then nothing, `/silent` never answers,
//! `/early-hints` sends a `103 Early Hints` before its `200` (`hints #N`, fresh for
//! a minute).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|e| match e {}).boxed()
}

#[derive(Default)]
struct Shared {
    connections: AtomicUsize,
    json: Mutex<String>,
    /// Path → content type and bytes, served by `GET /files/…`.
    files: Mutex<BTreeMap<String, (&'static str, Bytes)>>,
    /// Path → requests received, for `/cached/…`.
    hits: Mutex<BTreeMap<String, usize>>,
    /// `/cached/…` answers 503.
    failing: std::sync::atomic::AtomicBool,
}

/// A real HTTP origin.
pub struct Origin {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// A certificate authority and a server certificate it signed for `localhost` and
/// 127.0.0.1, made fresh for a test.
pub struct TestCa {
    /// The CA certificate, PEM: what a backend's `ca_file` holds.
    pub ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Verge test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TestCa {
            ca_pem: ca.pem(),
            server_config: Arc::new(config),
        }
    }
}

impl Origin {
    /// Plain HTTP (HTTP/1.1, or HTTP/2 with prior knowledge).
    pub async fn start() -> Origin {
        Self::start_with(None).await
    }

    /// HTTPS with HTTP/2 and HTTP/1.1 offered by ALPN, with a certificate from `ca`.
    pub async fn start_tls(ca: &TestCa) -> Origin {
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(
            ca.server_config.clone(),
        )))
        .await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                state.connections.fetch_add(1, Ordering::Relaxed);
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(route(req, &state).await) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Origin { addr, shared, task }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// What `/json` answers.
    pub fn set_json(&self, json: &str) {
        *self.shared.json.lock().unwrap() = json.to_owned();
    }

    /// Serves `bytes` at `path` (which starts with `/files/`).
    pub fn set_file(&self, path: &str, content_type: &'static str, bytes: Vec<u8>) {
        self.shared
            .files
            .lock()
            .unwrap()
            .insert(path.to_owned(), (content_type, Bytes::from(bytes)));
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests `/cached/NAME` received so far.
    pub fn hits(&self, name: &str) -> usize {
        let path = format!("/cached/{name}");
        self.shared
            .hits
            .lock()
            .unwrap()
            .get(&path)
            .copied()
            .unwrap_or(0)
    }

    /// Makes `/cached/…` answer 503 (or stop doing so).
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::Relaxed);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Decodes `%XX` and `+` in a query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn route(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    // Backends may add a path prefix; `/api/v1/hello` is `/hello`.
    let path = req.uri().path();
    let path = path.strip_prefix("/api/v1").unwrap_or(path).to_owned();
    if let Some(n) = path.strip_prefix("/bytes/") {
        let total: u64 = n.parse().unwrap();
        let chunk = Bytes::from(vec![b'x'; 64 << 10]);
        let stream = futures::stream::unfold(total, move |left| {
            let chunk = chunk.clone();
            async move {
                (left > 0).then(|| {
                    let n = left.min(chunk.len() as u64);
                    (
                        Ok::<_, BoxError>(Frame::data(chunk.slice(..n as usize))),
                        left - n,
                    )
                })
            }
        });
        return Response::builder()
            .header("content-length", total)
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap();
    }
    if path.starts_with("/files/") {
        let file = shared.files.lock().unwrap().get(&path).cloned();
        return match file {
            Some((content_type, bytes)) => Response::builder()
                .header("content-type", content_type)
                .body(full(bytes))
                .unwrap(),
            None => Response::builder()
                .status(404)
                .body(full("no such file"))
                .unwrap(),
        };
    }
    if path.starts_with("/cached/") {
        let query: BTreeMap<String, String> = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), percent_decode(v)))
            .collect();
        if let Some(ms) = query.get("ms") {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        }
        let n = {
            let mut hits = shared.hits.lock().unwrap();
            let n = hits.entry(path.clone()).or_default();
            *n += 1;
            *n
        };
        if shared.failing.load(Ordering::Relaxed) {
            return Response::builder()
                .status(503)
                .body(full("failing"))
                .unwrap();
        }
        let etag = query.get("etag").map(|e| format!("\"{e}\""));
        let mut builder = Response::builder();
        if let Some(cc) = query.get("cc") {
            builder = builder.header("cache-control", cc.as_str());
        }
        if let Some(sk) = query.get("sk") {
            builder = builder.header("surrogate-key", sk.as_str());
        }
        if let Some(location) = query.get("location") {
            builder = builder.header("location", location.as_str());
        }
        if let Some(cl) = query.get("cl") {
            builder = builder.header("content-location", cl.as_str());
        }
        if let Some(connection) = query.get("connection") {
            builder = builder.header("connection", connection.as_str());
            for name in connection.split(',') {
                builder = builder.header(name.trim(), "for this hop only");
            }
        }
        if let Some(etag) = &etag {
            builder = builder.header("etag", etag.as_str());
            if req
                .headers()
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                == Some(etag.as_str())
            {
                return builder.status(304).body(full("")).unwrap();
            }
        }
        let name = path.trim_start_matches("/cached/");
        return builder.body(full(format!("{name} #{n}"))).unwrap();
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        return Response::new(full("slow"));
    }
    match path.as_str() {
        "/hello" => Response::builder()
            .header("x-origin", "yes")
            .body(full("hello from origin"))
            .unwrap(),
        "/headers" => {
            let headers: BTreeMap<String, String> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            let info = serde_json::json!({
                "version": format!("{:?}", req.version()),
                "method": req.method().as_str(),
                "path": req.uri().path_and_query().map(|p| p.as_str()),
                "headers": headers,
            });
            Response::new(full(info.to_string()))
        }
        "/echo" => Response::new(req.into_body().map_err(BoxError::from).boxed()),
        "/count" => {
            let mut body = req.into_body();
            let mut total = 0u64;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => total += frame.data_ref().map_or(0, |d| d.len() as u64),
                    Err(_) => return Response::builder().status(400).body(full("cut")).unwrap(),
                }
            }
            Response::new(full(total.to_string()))
        }
        "/json" => Response::builder()
            .header("content-type", "application/json")
            .body(full(shared.json.lock().unwrap().clone()))
            .unwrap(),
        _ => Response::builder()
            .status(404)
            .body(full(format!("no such path: {}", req.uri())))
            .unwrap(),
    }
}

/// An origin that breaks HTTP on purpose.
pub struct RawOrigin {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RawOrigin {
    pub async fn start() -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hinted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let hinted = hinted.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    match path.as_str() {
                        "/garbage" => {
                            let _ = stream.write_all(b"SMTP READY, NOT HTTP\r\n\r\n").await;
                        }
                        "/stall" => {
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                                .await;
                            let _ = stream.write_all(&[b's'; 100]).await;
                            let _ = stream.flush().await;
                            tokio::time::sleep(Duration::from_secs(600)).await;
                        }
                        "/early-hints" => {
                            let n = hinted.fetch_add(1, Ordering::SeqCst) + 1;
                            let body = format!("hints #{n}");
                            let answer = format!(
                                "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n\
                                 HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\n\
                                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = stream.write_all(answer.as_bytes()).await;
                            let _ = stream.flush().await;
                        }
                        "/cut" => {
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                                .await;
                            let _ = stream.write_all(&[b'c'; 100]).await;
                            let _ = stream.flush().await;
                        }
                        _ => {
                            // `/silent`: hold the connection open, never answer.
                            tokio::time::sleep(Duration::from_secs(600)).await;
                        }
                    }
                });
            }
        });
        RawOrigin { addr, task }
    }
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
