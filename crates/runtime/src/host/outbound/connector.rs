//! Opening a connection to an origin: name resolution, the SSRF guard applied to every
//! resolved address at connect time, and the connect timeout.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::address::private_kind;

/// Connects hyper's pooled client to origins. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct GuardedConnector {
    /// A named backend's address; `None` connects to the request URI's host (dynamic
    /// backends). A named backend's URI carries its `override_host` instead, which is
    /// what TLS and the `Host` header should see, not where to connect.
    pub(crate) target: Option<(String, u16)>,
    pub(crate) allow_private: bool,
    pub(crate) connect_timeout: Duration,
}

/// Why no connection was made. Walked from hyper's error to pick a `wasi:http` code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("DNS lookup of `{host}` failed: {source}")]
    Dns {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },
    #[error(
        "`{host}` is {ip}, a {kind} address; a backend must say `allow_private = true` to \
         reach it (or `[egress] allow_private = true` for URLs)"
    )]
    Prohibited {
        host: String,
        ip: IpAddr,
        kind: &'static str,
    },
    #[error("connecting to {addr} timed out after {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("connecting to {addr} failed: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the request has no host to connect to")]
    NoHost,
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(&uri).await.map(TokioIo::new) })
    }
}

impl GuardedConnector {
    async fn connect(&self, uri: &Uri) -> Result<TcpStream, ConnectError> {
        let (host, port) = match &self.target {
            Some((host, port)) => (host.clone(), *port),
            None => {
                let host = uri.host().ok_or(ConnectError::NoHost)?;
                let default = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
                    443
                } else {
                    80
                };
                (host.to_owned(), uri.port_u16().unwrap_or(default))
            }
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let timeout = || ConnectError::Timeout {
            addr: format!("{host}:{port}"),
            timeout: self.connect_timeout,
        };
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout_at(deadline, tokio::net::lookup_host((bare, port)))
                .await
                .map_err(|_| timeout())?
                .map_err(|source| ConnectError::Dns {
                    host: host.clone(),
                    source,
                })?
                .collect(),
        };
        // Checked on the resolved addresses, so a name pointing at 127.0.0.1 is
        // refused like the literal address.
        let mut refused = None;
        let allowed: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|addr| match private_kind(addr.ip()) {
                Some(kind) if !self.allow_private => {
                    refused.get_or_insert((addr.ip(), kind));
                    false
                }
                _ => true,
            })
            .collect();
        if allowed.is_empty() {
            return Err(match refused {
                Some((ip, kind)) => ConnectError::Prohibited { host, ip, kind },
                None => ConnectError::NoAddress { host },
            });
        }
        let mut last_error = None;
        for addr in allowed {
            match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_) => return Err(timeout()),
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(source)) => last_error = Some(ConnectError::Io { addr, source }),
            }
        }
        Err(last_error.expect("at least one address was tried"))
    }
}
