//! TLS on the public listener: a certificate per domain, read from a directory of
//! PEM files, chosen by the name the client asks for (SNI), and reloaded when the
//! files change.
//!
//! The directory holds `NAME.crt` + `NAME.key`, or `NAME.pem` with the chain and the
//! key together. Each certificate serves the DNS names in its subjectAltName (its
//! common name when it has none), `*.example.com` included; `NAME` itself is free.
//! When two certificates claim a name, the one valid longest wins, so a renewed
//! certificate can be dropped in beside the old one. The pair named `default` also
//! answers clients that send no SNI or one no certificate names; without it those
//! handshakes fail with the `unrecognized_name` alert (RFC 6066), so a scan by IP
//! address learns nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use verge_runtime::TlsInfo;

/// What went wrong reading the certificate directory; every error names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate directory {}", dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", file.display())]
    ReadFile {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {why}", file.display())]
    Invalid { file: PathBuf, why: String },
    #[error(
        "no certificates in {}: add NAME.crt with NAME.key, or NAME.pem holding both, per domain",
        dir.display()
    )]
    Empty { dir: PathBuf },
}

/// The certificates of one directory, swapped whole when the files change.
pub struct Certificates {
    dir: PathBuf,
    set: ArcSwap<CertSet>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct CertSet {
    exact: HashMap<String, Served>,
    /// `*.example.com` under `example.com`.
    wildcard: HashMap<String, Served>,
    default: Option<Arc<CertifiedKey>>,
    /// What the files looked like when this set was read.
    stamp: Stamp,
    /// How many certificate files were read.
    files: usize,
}

/// A certificate with the time it stops being valid, to pick between two.
#[derive(Clone)]
struct Served {
    key: Arc<CertifiedKey>,
    not_after: i64,
}

/// Names, modification times and sizes of the directory's files (following
/// symlinks, as certbot's `live/` directory is made of them).
type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

impl Certificates {
    /// Reads every certificate of `dir`; a file that cannot be used is an error.
    pub fn load(dir: &Path) -> Result<Arc<Certificates>, TlsError> {
        let set = CertSet::read(dir)?;
        Ok(Arc::new(Certificates {
            dir: dir.to_owned(),
            set: ArcSwap::from_pointee(set),
        }))
    }

    /// How many certificate files are being served.
    pub fn count(&self) -> usize {
        self.set.load().files
    }

    /// Checks the directory every `interval` (on its own thread, for as long as these
    /// certificates are in use) and reloads it when a file changed. A directory that
    /// no longer reads keeps the certificates served before, with a warning.
    ///
    /// Polled rather than watched with inotify: renewal tools replace symlink targets
    /// elsewhere (certbot's `archive/`), which no event on this directory reports.
    pub fn watch(self: &Arc<Self>, interval: Duration) {
        let this: Weak<Certificates> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("verge-tls-reload".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let Some(certs) = this.upgrade() else { return };
                    certs.reload_if_changed();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no thread to watch the certificates; they will not reload");
        }
    }

    fn reload_if_changed(&self) {
        let stamp = match stamp(&self.dir) {
            Ok(stamp) => stamp,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "keeping the certificates served so far");
                return;
            }
        };
        if stamp == self.set.load().stamp {
            return;
        }
        match CertSet::read(&self.dir) {
            Ok(set) => {
                tracing::info!(
                    dir = %self.dir.display(),
                    certificates = set.files,
                    "certificates reloaded"
                );
                self.set.store(Arc::new(set));
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "keeping the certificates served so far");
                // Do not retry until the files change again.
                let mut kept = CertSet::clone_of(&self.set.load());
                kept.stamp = stamp;
                self.set.store(Arc::new(kept));
            }
        }
    }

    /// The certificate for `server_name` (the client's SNI), else the default one.
    fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let set = self.set.load();
        server_name
            .and_then(|name| set.find(&name.to_ascii_lowercase()))
            .or_else(|| set.default.clone())
    }

    /// A rustls server configuration choosing among these certificates, offering
    /// HTTP/2 and HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// A fatal `unrecognized_name` alert (RFC 6066 §3) as a plaintext TLS record: type
/// alert (21), legacy version 1.2, length 2, level fatal (2), description 112.
const UNRECOGNIZED_NAME: [u8; 7] = [21, 3, 3, 0, 2, 2, 112];

/// The handshake of the HTTPS listener. It reads the ClientHello first and refuses a
/// name no certificate serves (when there is no default) with `unrecognized_name`:
/// left to rustls, a resolver that finds nothing makes it send `access_denied`.
#[derive(Clone)]
pub(crate) struct Acceptor {
    certs: Arc<Certificates>,
    config: Arc<rustls::ServerConfig>,
}

impl Acceptor {
    pub(crate) fn new(certs: &Arc<Certificates>) -> Acceptor {
        Acceptor {
            certs: certs.clone(),
            config: certs.server_config(),
        }
    }

    pub(crate) async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let acceptor = rustls::server::Acceptor::default();
        let mut start = LazyConfigAcceptor::new(acceptor, stream).await?;
        let name = start.client_hello().server_name().map(str::to_owned);
        if self.certs.pick(name.as_deref()).is_none() {
            // The client learns why; the connection is over whether it reads it or not.
            let _ = start.io.write_all(&UNRECOGNIZED_NAME).await;
            let _ = start.io.shutdown().await;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                match name {
                    Some(name) => format!("no certificate for {name:?}"),
                    None => "no SNI and no default certificate".to_owned(),
                },
            ));
        }
        start.into_stream(self.config.clone()).await
    }
}

impl CertSet {
    fn find(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(served) = self.exact.get(name) {
            return Some(served.key.clone());
        }
        // A wildcard covers exactly one label.
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).map(|s| s.key.clone())
    }

    fn clone_of(other: &CertSet) -> CertSet {
        CertSet {
            exact: other.exact.clone(),
            wildcard: other.wildcard.clone(),
            default: other.default.clone(),
            stamp: other.stamp.clone(),
            files: other.files,
        }
    }

    fn read(dir: &Path) -> Result<CertSet, TlsError> {
        let stamp = stamp(dir)?;
        let mut set = CertSet::default();
        for (file, _, _) in &stamp {
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let is_cert = matches!(
                file.extension().and_then(|e| e.to_str()),
                Some("crt" | "pem")
            );
            if !is_cert {
                continue;
            }
            let (key, names, not_after) = read_pair(file)?;
            let served = Served { key, not_after };
            for name in names {
                let (table, name) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut set.wildcard, parent.to_owned()),
                    None => (&mut set.exact, name),
                };
                match table.get(&name) {
                    Some(kept) if kept.not_after >= not_after => {}
                    _ => {
                        table.insert(name, served.clone());
                    }
                }
            }
            if stem == "default" {
                set.default = Some(served.key.clone());
            }
            set.files += 1;
        }
        if set.files == 0 {
            return Err(TlsError::Empty {
                dir: dir.to_owned(),
            });
        }
        set.stamp = stamp;
        Ok(set)
    }
}

fn stamp(dir: &Path) -> Result<Stamp, TlsError> {
    let read_dir = |source| TlsError::ReadDir {
        dir: dir.to_owned(),
        source,
    };
    let mut stamp = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        // Following symlinks; a dangling one reads as an empty file.
        let (modified, len) = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => continue,
            Ok(m) => (m.modified().ok(), m.len()),
            Err(_) => (None, 0),
        };
        stamp.push((path, modified, len));
    }
    stamp.sort();
    Ok(stamp)
}

/// The certificate chain of `file` with its key (from the same file or the sibling
/// `.key`), the DNS names it serves, and when it expires.
fn read_pair(file: &Path) -> Result<(Arc<CertifiedKey>, Vec<String>, i64), TlsError> {
    let invalid = |file: &Path, why: String| TlsError::Invalid {
        file: file.to_owned(),
        why,
    };
    let read = |file: &Path| {
        std::fs::read(file).map_err(|source| TlsError::ReadFile {
            file: file.to_owned(),
            source,
        })
    };
    let pem = read(file)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(file, format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(file, "no CERTIFICATE block in it".into()));
    }
    let key_file = file.with_extension("key");
    let key = match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => key,
        Err(_) => {
            let key_pem = match read(&key_file) {
                Ok(pem) => pem,
                Err(_) => {
                    return Err(invalid(
                        file,
                        format!(
                            "no private key in it, and no {} beside it",
                            key_file.display()
                        ),
                    ));
                }
            };
            PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| invalid(&key_file, format!("no private key in it: {e}")))?
        }
    };
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| invalid(file, format!("the key cannot be used: {e}")))?;
    let (names, not_after) = names_of(&chain[0]).map_err(|why| invalid(file, why))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|_| {
        invalid(
            file,
            "the private key does not belong to the certificate".into(),
        )
    })?;
    Ok((Arc::new(certified), names, not_after))
}

/// The lower-cased DNS names a certificate serves, and its expiry (Unix seconds).
fn names_of(cert: &CertificateDer<'_>) -> Result<(Vec<String>, i64), String> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut names: Vec<String> = match parsed.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("its subjectAltName does not parse: {e}")),
    };
    if names.is_empty() {
        names = parsed
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_ascii_lowercase)
            .collect();
    }
    if names.is_empty() {
        return Err("the certificate names no DNS name (subjectAltName or CN)".into());
    }
    Ok((names, parsed.validity().not_after.timestamp()))
}

/// What a finished handshake agreed on, for the guest's `downstream.tls`.
pub(crate) fn info<IO>(stream: &TlsStream<IO>) -> TlsInfo {
    let (_, conn) = stream.get_ref();
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    };
    // rustls names TLS 1.3 suites `TLS13_…`; IANA says `TLS_…`.
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .map_or("unknown", |s| {
            s.strip_prefix("TLS13_").map_or(s, |rest| {
                IANA_TLS13.iter().find(|n| n[4..] == *rest).map_or(s, |n| n)
            })
        });
    TlsInfo {
        protocol,
        cipher_suite,
        server_name: conn.server_name().map(str::to_owned),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    }
}

/// The TLS 1.3 suites by their IANA names (rustls offers these three).
const IANA_TLS13: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
