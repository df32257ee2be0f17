//! Accepting connections; each request then goes through the [`pipeline`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use verge_runtime::TlsInfo;

use crate::body::ServerBody;
use crate::config::ServerConfig;
use crate::log::LogWriter;
use crate::pipeline;
use crate::registry::AppRegistry;
use crate::request_threads::RequestThreads;
use crate::tls::{self, Certificates};
use verge_client_ip::read_proxy_header;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not listen on {addr}; is another server using it? Pick another with --listen")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr`, with an error that says what to do when it is taken.
pub(crate) async fn listen(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    /// Set when this listener speaks HTTPS.
    tls: Option<tls::Acceptor>,
}

/// Who is on the other end of a connection.
#[derive(Clone)]
pub(crate) struct ConnInfo {
    /// The client, as far as the socket or a PROXY header says.
    pub(crate) peer: SocketAddr,
    pub(crate) tls: Option<Arc<TlsInfo>>,
}

pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) registry: Arc<dyn AppRegistry>,
    pub(crate) log: LogWriter,
}

/// hyper's HTTP/1 read buffer (its default). It also bounds how much of a request
/// body one read yields, and every piece costs the guest a `wasi:io` call: at 64 KiB a
/// 1 GiB upload cost ~30 ms of guest CPU, at 400 KiB ~12 ms. The request head limit
/// (`max_header_bytes`) is enforced by the routing stage instead.
const HTTP1_READ_BUFFER: usize = 400 << 10;

impl Server {
    /// Binds the listen address. Port 0 picks a free port; see [`Server::local_addr`].
    pub async fn bind(
        config: ServerConfig,
        registry: Arc<dyn AppRegistry>,
        log: LogWriter,
    ) -> Result<Server, ServerError> {
        let listener = listen(config.listen).await?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                config,
                registry,
                log,
            }),
            tls: None,
        })
    }

    /// Makes this listener speak HTTPS (HTTP/2 or HTTP/1.1 by ALPN) with the
    /// certificate `certs` holds for the name each client asks for.
    pub fn with_tls(mut self, certs: &Arc<Certificates>) -> Server {
        self.tls = Some(tls::Acceptor::new(certs));
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serves until `shutdown` resolves, then waits (up to the configured grace period)
    /// for requests in flight. Failed accepts (out of descriptors, …) are logged and
    /// skipped, so serving itself cannot fail.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let config = &self.shared.config;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_headers(config.max_header_count)
            // hyper refuses a buffer below 8 KiB.
            .max_buf_size(HTTP1_READ_BUFFER);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));

        let graceful = GracefulShutdown::new();
        let threads = RequestThreads::get(config.threads);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    // Out of file descriptors and the like: keep serving the others.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let conn = Conn {
                shared: self.shared.clone(),
                builder: builder.clone(),
                watcher: graceful.watcher(),
                tls: self.tls.clone(),
                peer,
            };
            let Some(threads) = threads else {
                tokio::spawn(conn.serve(stream));
                continue;
            };
            // Handed over as a plain socket: it registers with the request thread's
            // own reactor there.
            let stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "handing a connection over failed");
                    continue;
                }
            };
            threads.run(Box::new(move || match TcpStream::from_std(stream) {
                Ok(stream) => {
                    tokio::spawn(conn.serve(stream));
                }
                Err(e) => tracing::warn!(error = %e, "taking a connection over failed"),
            }));
        }
        drop(self.listener);
        let grace = self.shared.config.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight after {grace:?}; closing them");
        }
    }
}

/// One accepted connection and what serving it needs.
struct Conn {
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    tls: Option<tls::Acceptor>,
    peer: SocketAddr,
}

impl Conn {
    /// Reads a PROXY header when the peer sends one, shakes hands when the listener
    /// speaks TLS (both bounded by the time a client has to send its request head),
    /// then serves the connection's requests.
    async fn serve(self, mut stream: TcpStream) {
        let Conn {
            shared,
            builder,
            watcher,
            tls,
            mut peer,
        } = self;
        let config = &shared.config;
        let timeout = config.header_read_timeout;
        if config.proxy_protocol && config.trusted_proxies.contains(peer.ip()) {
            let header = tokio::time::timeout(timeout, read_proxy_header(&mut stream)).await;
            peer = match header {
                Ok(Ok(client)) => client.unwrap_or(peer),
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "closing a proxied connection");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "no PROXY protocol header in time; closing");
                    return;
                }
            };
        }
        let Some(acceptor) = tls else {
            let conn = builder.serve_connection(
                TokioIo::new(stream),
                service(shared.clone(), ConnInfo { peer, tls: None }),
            );
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        };
        let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "no TLS handshake in time; closing");
                return;
            }
        };
        let tls = Some(Arc::new(tls::info(&stream)));
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service(shared.clone(), ConnInfo { peer, tls }),
        );
        if let Err(e) = watcher.watch(conn.into_owned()).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// The service of one connection.
fn service(
    shared: Arc<Shared>,
    conn: ConnInfo,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ServerBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<ServerBody>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |req| {
        let (shared, conn) = (shared.clone(), conn.clone());
        async move { Ok::<_, Infallible>(pipeline::handle(&shared, req, &conn).await) }
    })
}
