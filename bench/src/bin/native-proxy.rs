//! The native reverse proxy baseline: a hyper server on two tokio workers (like
//! `verge serve`) forwarding every request to one origin through the same pooled
//! hyper-util client Verge's backends use, answering with the origin's response
//! streamed through. What a proxied request costs without Wasm, a guest or a cache.
//!
//! Usage: `native-proxy LISTEN_ADDR ORIGIN_ADDR`. Prints `Listening on http://ADDR`
//! once ready.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, combinators::BoxBody};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;

type Body = BoxBody<bytes::Bytes, hyper::Error>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()?;
    let origin: SocketAddr = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: native-proxy LISTEN_ADDR ORIGIN_ADDR"))?
        .parse()?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, hyper::body::Incoming> =
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .pool_timer(TokioTimer::new())
            .build(connector);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("Listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let client = client.clone();
                    async move {
                        let (mut parts, body) = req.into_parts();
                        let path = parts
                            .uri
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_owned();
                        parts.uri = format!("http://{origin}{path}").parse()?;
                        let resp = client
                            .request(hyper::Request::from_parts(parts, body))
                            .await?;
                        Ok::<_, anyhow::Error>(resp.map(|b| -> Body { b.boxed() }))
                    }
                });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
