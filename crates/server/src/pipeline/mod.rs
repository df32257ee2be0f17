//! What happens to one request, in stages: [`route`] finds the app, [`cache`] answers
//! from the HTTP cache when the app has one (or fills it), [`execute`] runs the guest,
//! and [`finish`] tags the response and writes the access line. Every response, a
//! cache hit with no guest run included, leaves through [`finish`].

mod cache;
mod execute;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use verge_runtime::{PendingReport, Report, TlsInfo};

use crate::body::ServerBody;
use crate::drain::DrainOnDrop;
use crate::log::{AccessRecord, LogWriter};
use crate::registry::RoutedApp;
use crate::request_id;
use crate::serve::{ConnInfo, Shared};

pub(crate) use cache::CacheOutcome;

const REQUEST_ID_HEADER: &str = "x-request-id";

/// One request on its way through the stages: who asked, for which app.
#[derive(Clone)]
pub(crate) struct Exchange {
    shared: Arc<Shared>,
    routed: RoutedApp,
    request_id: Arc<str>,
    client_addr: SocketAddr,
    tls: Option<Arc<TlsInfo>>,
    /// The normalised host the request was routed by.
    host: Arc<str>,
    method: http::Method,
    /// Path and query, as sent.
    target: Arc<str>,
    started: Instant,
}

impl Exchange {
    /// An exchange the server starts itself on behalf of this one (a background cache
    /// refresh), with its own request id and clock.
    fn spin_off(&self) -> Exchange {
        Exchange {
            request_id: request_id::next().into(),
            started: Instant::now(),
            method: http::Method::GET,
            ..self.clone()
        }
    }

    fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }
}

/// What a stage answered with.
pub(crate) struct Served {
    pub response: Response<ServerBody>,
    /// The guest's report, when a guest ran for this response.
    pub report: Option<PendingReport>,
    /// What the HTTP cache did, when the app has one.
    pub cache: Option<CacheOutcome>,
}

/// Runs one request through the stages.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    conn: &ConnInfo,
) -> Response<ServerBody> {
    let started = Instant::now();
    let request_id: Arc<str> = request_id::next().into();
    let (routed, host) = match route::route(shared, &req) {
        Ok(found) => found,
        Err(refusal) => return tagged(refusal.into_response(), &request_id),
    };
    let exchange = Exchange {
        client_addr: shared
            .config
            .trusted_proxies
            .client(conn.peer, req.headers()),
        tls: conn.tls.clone(),
        shared: shared.clone(),
        routed,
        request_id,
        host: host.into(),
        method: req.method().clone(),
        target: req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .into(),
        started,
    };
    let served = match exchange.routed.http_cache.clone() {
        Some(http_cache) => cache::serve(&exchange, &http_cache, req).await,
        None => {
            let executed = execute::run(&exchange, req.map(DrainOnDrop::new)).await;
            Served {
                response: executed.response.map(ServerBody::Guest),
                report: Some(executed.report),
                cache: None,
            }
        }
    };
    finish(exchange, served)
}

/// The last stage: adds the request id and writes the access line (now if the guest
/// has finished, which most have by the time their response is ready; otherwise once
/// it does, without holding up the response).
fn finish(exchange: Exchange, served: Served) -> Response<ServerBody> {
    let Served {
        response,
        report,
        cache,
    } = served;
    let response = tagged(response, &exchange.request_id);
    let status = response.status().as_u16();
    match report.map(PendingReport::try_now) {
        None => log_access(&exchange, status, None, cache),
        Some(Ok(report)) => log_access(&exchange, status, Some(&report), cache),
        Some(Err(pending)) => {
            tokio::spawn(async move {
                let report = pending.wait().await;
                log_access(&exchange, status, Some(&report), cache);
            });
        }
    }
    response
}

fn log_access(
    exchange: &Exchange,
    status: u16,
    report: Option<&Report>,
    cache: Option<CacheOutcome>,
) {
    let elapsed = exchange.started.elapsed();
    let cache_hit = match cache {
        Some(CacheOutcome::Served(outcome)) => Some(outcome.is_hit()),
        _ => None,
    };
    exchange
        .routed
        .metrics
        .record(status, elapsed, report, cache_hit);
    let log: &LogWriter = &exchange.shared.log;
    log.access(&AccessRecord::new(
        &exchange.request_id,
        &exchange.routed.name,
        exchange.method.as_str(),
        exchange.path(),
        status,
        elapsed.as_micros() as u64,
        report,
        cache.map(CacheOutcome::as_str),
    ));
}

fn tagged(mut response: Response<ServerBody>, request_id: &str) -> Response<ServerBody> {
    response.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(request_id).expect("request ids are hex"),
    );
    response
}
