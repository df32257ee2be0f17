//! One origin's pooled client (keep-alive, HTTP/1.1 and HTTP/2 by ALPN, rustls), and
//! sending a request to it with timeouts and `wasi:http` error codes.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{Error as Code, WasiBody};

use super::connector::{ConnectError, GuardedConnector};
use crate::coalesce::Coalesced;
use crate::config::{OriginTimeouts, TlsConfig};
use crate::error::LoadError;

/// Connections idle longer than this are closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type OriginClient = Client<HttpsConnector<GuardedConnector>, WasiBody>;

/// A pooled client for one origin (a named backend, or all URL requests of an app).
///
/// Each request thread ([`crate::enter_request_thread`]) has a pool of its own, made on
/// its first request: a connection's task then runs on the thread that uses it, and a
/// subrequest never wakes another thread. Threads outside the request threads share
/// one pool.
pub(crate) struct Origin {
    https: HttpsConnector<GuardedConnector>,
    max_idle: usize,
    clients: Box<[std::sync::OnceLock<OriginClient>]>,
    /// Requests in flight at once, over every thread's pool (held until the response
    /// body ends).
    permits: Arc<Semaphore>,
}

/// Why a request to an origin failed: the guest's error code and a line for the log.
#[derive(Debug)]
pub(crate) struct OriginError {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl Origin {
    pub(crate) fn new(
        connector: GuardedConnector,
        tls: &TlsConfig,
        max_in_flight: u32,
    ) -> Result<Origin, LoadError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(tls)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        Ok(Origin {
            https,
            max_idle: max_in_flight as usize,
            clients: (0..=crate::threads::MAX_REQUEST_THREADS)
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            permits: Arc::new(Semaphore::new(max_in_flight as usize)),
        })
    }

    /// This thread's pool.
    fn client(&self) -> &OriginClient {
        let slot = &self.clients[crate::threads::current().min(self.clients.len() - 1)];
        slot.get_or_init(|| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_max_idle_per_host(self.max_idle)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(self.https.clone())
        })
    }

    /// Sends `req` (an absolute URI) and returns the response once its head is in;
    /// the body streams afterwards, each pause bounded by `between_bytes`.
    ///
    /// `on_body_error` is told (once) if the body then fails.
    pub(crate) async fn send(
        &self,
        req: http::Request<WasiBody>,
        timeouts: OriginTimeouts,
        on_body_error: impl FnOnce(String) + Send + 'static,
    ) -> Result<http::Response<WasiBody>, OriginError> {
        let deadline = tokio::time::Instant::now() + timeouts.first_byte;
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
                .await
                .map_err(|_| OriginError {
                    code: Code::ConnectionLimitReached,
                    message: format!(
                        "every connection stayed busy for {:?} (max_connections)",
                        timeouts.first_byte
                    ),
                })?
                .expect("the semaphore is never closed"),
        };
        let mut response = match tokio::time::timeout_at(deadline, self.client().request(req)).await
        {
            Err(_) => {
                return Err(OriginError {
                    code: Code::HttpResponseTimeout,
                    message: format!(
                        "no response within {:?} (first_byte_timeout)",
                        timeouts.first_byte
                    ),
                });
            }
            Ok(Err(err)) => {
                return Err(OriginError {
                    code: classify(&err),
                    message: error_text(&err),
                });
            }
            Ok(Ok(response)) => response,
        };
        // Headers the origin's `Connection` names are for this hop only (RFC 9110
        // §7.6.1): neither the guest nor the cache sees them. Wasmtime drops the
        // standard hop-by-hop fields from what reaches a guest itself.
        if response.headers().contains_key(http::header::CONNECTION) {
            verge_cache::serving::strip_hop_by_hop(response.headers_mut());
        }
        Ok(response.map(|incoming| {
            OriginBody {
                incoming: Coalesced::new(incoming),
                between_bytes: timeouts.between_bytes,
                pause: None,
                _permit: permit,
                received: 0,
                on_error: Some(Box::new(on_body_error)),
            }
            .boxed_unsync()
        }))
    }
}

/// rustls with the webpki roots, plus the backend's CA file; or no verification.
fn tls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, LoadError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| LoadError::Tls(e.to_string()))?;
    if !tls.verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = &tls.ca_pem {
        let bad = |why: String| LoadError::CaCertificates { why };
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("it holds no PEM certificate".into()));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `tls_verify = false`: any certificate is accepted, but the handshake signature is
/// still checked (so the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An origin's response body as the guest reads it: each pause bounded, errors as
/// `wasi:http` codes, the connection slot held until the body ends.
struct OriginBody {
    incoming: Coalesced<Incoming>,
    between_bytes: Duration,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    _permit: OwnedSemaphorePermit,
    received: u64,
    on_error: Option<Box<dyn FnOnce(String) + Send>>,
}

impl OriginBody {
    fn failed(&mut self, code: Code) -> Poll<Option<Result<Frame<Bytes>, Code>>> {
        self.pause = None;
        if let Some(report) = self.on_error.take() {
            report(format!(
                "the response body failed after {} bytes: {code} ({code:?})",
                self.received
            ));
        }
        Poll::Ready(Some(Err(code)))
    }
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = Code;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Code>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Err(err))) => self.failed(classify(&err)),
            Poll::Ready(other) => {
                self.pause = None;
                if let Some(Ok(frame)) = &other {
                    self.received += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                Poll::Ready(other.map(|frame| frame.map_err(|e| classify(&e))))
            }
            Poll::Pending => {
                let between = self.between_bytes;
                let pause = self
                    .pause
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(between)));
                ready!(pause.as_mut().poll(cx));
                self.failed(Code::ConnectionReadTimeout)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

/// The `wasi:http` error code for a failure anywhere in an error's chain.
pub(crate) fn classify(err: &(dyn StdError + 'static)) -> Code {
    find_code(err).unwrap_or(Code::HttpProtocolError)
}

fn find_code(err: &(dyn StdError + 'static)) -> Option<Code> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(connect) = e.downcast_ref::<ConnectError>() {
            return Some(match connect {
                ConnectError::Dns { .. } => Code::DnsError {
                    rcode: None,
                    info_code: None,
                },
                ConnectError::NoAddress { .. } => Code::DestinationNotFound,
                ConnectError::Prohibited { .. } => Code::DestinationIpProhibited,
                ConnectError::Timeout { .. } => Code::ConnectionTimeout,
                ConnectError::Io { source, .. } => io_code(source),
                ConnectError::NoHost => Code::HttpRequestUriInvalid,
            });
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls_code(tls));
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            // TLS and connector errors travel inside io::Errors (`get_ref`, which
            // `source()` skips).
            if let Some(inner) = io.get_ref() {
                let inner: &(dyn StdError + 'static) = inner;
                if let Some(code) = find_code(inner) {
                    return Some(code);
                }
            }
            return Some(io_code(io));
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            if hyper.is_parse() || hyper.is_parse_status() {
                return Some(Code::HttpProtocolError);
            }
            if hyper.is_incomplete_message() {
                return Some(Code::HttpResponseIncomplete);
            }
            if hyper.is_timeout() {
                return Some(Code::ConnectionReadTimeout);
            }
        }
        current = e.source();
    }
    None
}

fn io_code(err: &io::Error) -> Code {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => Code::ConnectionRefused,
        io::ErrorKind::TimedOut => Code::ConnectionTimeout,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            Code::DestinationUnavailable
        }
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Code::ConnectionTerminated,
        _ => Code::InternalError(Some(err.to_string())),
    }
}

fn tls_code(err: &rustls::Error) -> Code {
    match err {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            Code::TlsCertificateError
        }
        rustls::Error::AlertReceived(alert) => Code::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Code::TlsProtocolError,
    }
}

/// An error and its causes on one line.
pub(crate) fn error_text(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = e.source();
    }
    text
}
