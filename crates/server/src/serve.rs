//! Accepting connections and turning each request into one app execution.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use verge_runtime::{RequestContext, ResponseBody};

use crate::client_ip::read_proxy_v2;
use crate::config::ServerConfig;
use crate::drain::DrainOnDrop;
use crate::host;
use crate::log::{AccessRecord, LogWriter};
use crate::registry::AppRegistry;
use crate::request_id;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not listen on {addr}; is another server using it? Pick another with --listen")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    config: ServerConfig,
    registry: Arc<dyn AppRegistry>,
    log: LogWriter,
}

const REQUEST_ID_HEADER: &str = "x-request-id";

/// hyper's HTTP/1 read buffer (its default). It also bounds how much of a request
/// body one read yields, and every piece costs the guest a `wasi:io` call: at 64 KiB a
/// 1 GiB upload cost ~30 ms of guest CPU, at 400 KiB ~12 ms. The request head limit
/// (`max_header_bytes`) is enforced in [`handle`] instead.
const HTTP1_READ_BUFFER: usize = 400 << 10;

impl Server {
    /// Binds the listen address. Port 0 picks a free port; see [`Server::local_addr`].
    pub async fn bind(
        config: ServerConfig,
        registry: Arc<dyn AppRegistry>,
        log: LogWriter,
    ) -> Result<Server, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                config,
                registry,
                log,
            }),
        })
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
            let shared = self.shared.clone();
            let needs_proxy_header =
                config.proxy_protocol && config.trusted_proxies.contains(peer.ip());
            if !needs_proxy_header {
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service(shared, peer))
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
                continue;
            }
            // A trusted proxy speaking the PROXY protocol names the client first.
            let (builder, watcher) = (builder.clone(), graceful.watcher());
            let timeout = config.header_read_timeout;
            tokio::spawn(async move {
                let mut stream = stream;
                let header = tokio::time::timeout(timeout, read_proxy_v2(&mut stream)).await;
                let peer = match header {
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
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service(shared, peer))
                    .into_owned();
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
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

/// The service of one connection whose client (as far as the socket or PROXY header
/// says) is `peer`.
fn service(
    shared: Arc<Shared>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ResponseBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<ResponseBody>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, req, peer).await) }
    })
}

async fn handle(
    shared: &Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let request_id: Arc<str> = request_id::next().into();

    if head_bytes(&req) > shared.config.max_header_bytes {
        return plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request head is larger than allowed\n",
            &request_id,
        );
    }
    let raw_host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok());
    let Some(raw_host) = raw_host else {
        return plain(
            StatusCode::BAD_REQUEST,
            "missing Host header\n",
            &request_id,
        );
    };
    let Some(host) = host::normalize(raw_host) else {
        return plain(
            StatusCode::BAD_REQUEST,
            &format!("invalid Host header `{}`\n", raw_host.escape_debug()),
            &request_id,
        );
    };
    let Some(routed) = shared.registry.resolve(Some(&host)) else {
        return plain(
            StatusCode::NOT_FOUND,
            &format!("no app serves host `{host}`\n"),
            &request_id,
        );
    };

    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let ctx = RequestContext {
        request_id: request_id.clone(),
        log: routed.guest_log.clone(),
        client_addr: Some(shared.config.trusted_proxies.client(peer, req.headers())),
        scheme: http::uri::Scheme::HTTP,
    };
    let execution = routed.app.handle(req.map(DrainOnDrop::new), ctx).await;
    let mut response = execution.response;
    let status = response.status().as_u16();
    response.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(&request_id).expect("request ids are hex"),
    );

    // Most guests have finished by the time their response is ready: log now rather
    // than paying for a task that waits for the report.
    let access = move |report: verge_runtime::Report, log: &LogWriter| {
        log.access(&AccessRecord::new(
            &request_id,
            &routed.name,
            method.as_str(),
            &path,
            status,
            started.elapsed().as_micros() as u64,
            &report,
        ));
    };
    match execution.report.try_now() {
        Ok(report) => access(report, &shared.log),
        Err(pending) => {
            let log = shared.log.clone();
            tokio::spawn(async move { access(pending.wait().await, &log) });
        }
    }
    response
}

/// The size of a request's head as sent: request line and header lines.
fn head_bytes<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    let line = req.method().as_str().len() + target + 12;
    req.headers()
        .iter()
        .fold(line, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

fn plain(status: StatusCode, text: &str, request_id: &str) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(text.to_owned()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(request_id).expect("request ids are hex"),
    );
    response
}
