//! The native baseline: hyper answering `hello` (5 bytes), on two tokio workers, like
//! `verge serve`. Prints `Listening on http://ADDR` once ready. It doubles as the
//! origin of the proxy benchmark: `GET /__connections` answers how many TCP
//! connections it has accepted (that request's own included).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("Listening on http://{}", listener.local_addr()?);
    let accepted = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let body = if req.uri().path() == "/__connections" {
                    Bytes::from(accepted.load(Ordering::Relaxed).to_string())
                } else {
                    Bytes::from_static(b"hello")
                };
                async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
