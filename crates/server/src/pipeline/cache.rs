//! The HTTP cache stage: answers from the cache without running the guest when it
//! can, and otherwise runs it and stores what may be stored (the flow itself is
//! `verge_cache::through`, shared with the read-through cache of origin fetches).
//!
//! - GET goes through a transaction: concurrent misses of one URL run the guest once.
//! - HEAD is answered from a usable object, or passed to the guest (never stored).
//! - Other methods pass; a successful unsafe one (POST, PUT, DELETE…) invalidates the
//!   URL's objects and those of the same-host URLs its answer's `Location` and
//!   `Content-Location` name (RFC 9111 §4.4).
//! - Client `Cache-Control` request directives other than `no-store` are ignored, as
//!   edge caches do: a client cannot make every request reach the guest.

use std::convert::Infallible;
use std::sync::Arc;

use http::{HeaderMap, Method, Request, Response};
use hyper::body::Incoming;
use verge_cache::through::{self, Answer, Outcome, Through};
use verge_cache::{Fill, Found, Key, PurgeMode, PurgeTarget, Transaction, invalidation};
use verge_runtime::{Execution, PendingReport, ResponseBody};

use super::{Exchange, Served, execute, log_access};
use crate::body::ServerBody;
use crate::drain::DrainOnDrop;
use crate::registry::HttpCache;

/// What the cache did for a request (the access log's `cache` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheOutcome {
    /// How the request was answered.
    Served(Outcome),
    /// A background refresh the server made for a stale object.
    Refresh,
}

impl CacheOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Served(outcome) => outcome.as_str(),
            CacheOutcome::Refresh => "refresh",
        }
    }
}

const X_CACHE: &str = "x-cache";

/// Purges the URL of a request that changed the app's state, and the URLs of the
/// same host its answer's `Location` and `Content-Location` name (RFC 9111 §4.4).
/// The app is the origin for every node, so the purges go to the fleet.
fn invalidate(ex: &Exchange, hc: &HttpCache, key: Key, response: &HeaderMap) {
    hc.cache
        .purge(&hc.namespace, &PurgeTarget::Key(key), PurgeMode::Hard);
    let scheme = if ex.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}{}", ex.host, ex.target);
    for path in invalidation::locations(&url, response, invalidation::Scope::SameHost) {
        let key = Key::for_url(hc.namespace.clone(), &ex.host, &path);
        hc.cache
            .purge(&hc.namespace, &PurgeTarget::Key(key), PurgeMode::Hard);
    }
}

pub(super) async fn serve(ex: &Exchange, hc: &Arc<HttpCache>, req: Request<Incoming>) -> Served {
    let method = req.method().clone();
    let key = Key::for_url(hc.namespace.clone(), &ex.host, &ex.target);
    if method != Method::GET && method != Method::HEAD {
        hc.cache.record_pass();
        let executed = execute::run(ex, req.map(DrainOnDrop::new)).await;
        if invalidation::invalidates(&method, executed.response.status()) {
            invalidate(ex, hc, key, executed.response.headers());
        }
        return passed(hc, executed);
    }
    let (parts, body) = req.into_parts();
    if method == Method::HEAD {
        if let Some(found) = hc.cache.lookup(&key, &parts.headers) {
            return stored(
                hc,
                through::respond(&found, &parts.headers, true),
                Outcome::Hit,
                None,
            );
        }
        let req = Request::from_parts(parts, DrainOnDrop::new(body));
        return passed(hc, execute::run(ex, req).await);
    }
    match hc.cache.transaction(&key, &parts.headers).await {
        Transaction::Fresh { found, collapsed } => {
            let outcome = if collapsed {
                Outcome::Collapsed
            } else {
                Outcome::Hit
            };
            stored(
                hc,
                through::respond(&found, &parts.headers, false),
                outcome,
                None,
            )
        }
        Transaction::Stale { found, refresh } => {
            if let Some(fill) = refresh {
                spawn_refresh(ex.spin_off(), hc.clone(), &parts, key, found.clone(), fill);
            }
            stored(
                hc,
                through::respond(&found, &parts.headers, false),
                Outcome::Stale,
                None,
            )
        }
        Transaction::Pass => {
            let req = Request::from_parts(parts, DrainOnDrop::new(body));
            passed(hc, execute::run(ex, req).await)
        }
        Transaction::Miss { stale, fill } => {
            let head = request_head(&parts);
            miss(
                ex,
                hc,
                &key,
                head,
                &parts.headers,
                DrainOnDrop::new(body),
                stale,
                fill,
            )
            .await
        }
    }
}

/// Method, URI and version of a request (its extensions stay behind).
fn request_head(parts: &http::request::Parts) -> http::request::Builder {
    Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone())
        .version(parts.version)
}

/// Runs the guest for a missing (or expired) object through the shared flow.
#[allow(clippy::too_many_arguments)]
async fn miss(
    ex: &Exchange,
    hc: &HttpCache,
    key: &Key,
    head: http::request::Builder,
    request: &HeaderMap,
    body: DrainOnDrop,
    stale: Option<Found>,
    fill: Fill,
) -> Served {
    let t = Through {
        cache: &hc.cache,
        key,
        policy: &hc.policy,
        overrides: None,
        request,
        strip_edge_headers: true,
    };
    let run_guest = |headers: HeaderMap| async move {
        let mut req = head
            .body(body)
            .expect("a request rebuilt from a valid one is valid");
        *req.headers_mut() = headers;
        let Execution { response, report } = execute::run(ex, req).await;
        Ok::<_, Infallible>((response, report))
    };
    let answer: Answer<ResponseBody, PendingReport> =
        match through::fetch_and_fill(&t, stale, fill, run_guest).await {
            Ok(answer) => answer,
            Err(never) => match never {},
        };
    match answer {
        Answer::Stored {
            response,
            outcome,
            fetched,
        } => stored(hc, response, outcome, fetched),
        Answer::Fetched {
            response,
            outcome,
            fetched,
        } => {
            let mut response = response.map(|body| ServerBody::Filling(Box::new(body)));
            debug_header(hc, response.headers_mut(), outcome);
            Served {
                response,
                report: Some(fetched),
                cache: Some(CacheOutcome::Served(outcome)),
            }
        }
        Answer::NotModified {
            response,
            rest,
            fetched,
        } => {
            // The client has it already; the body still goes into the cache.
            tokio::spawn(rest.drain());
            stored(hc, response, Outcome::Miss, Some(fetched))
        }
    }
}

fn debug_header(hc: &HttpCache, headers: &mut HeaderMap, outcome: Outcome) {
    if hc.debug_headers {
        headers.insert(X_CACHE, outcome.header_value());
    }
}

/// An answer from the cache (with the guest's report when one ran for it).
fn stored(
    hc: &HttpCache,
    response: Response<verge_cache::CachedBody>,
    outcome: Outcome,
    report: Option<PendingReport>,
) -> Served {
    let mut response = response.map(ServerBody::Cached);
    debug_header(hc, response.headers_mut(), outcome);
    Served {
        response,
        report,
        cache: Some(CacheOutcome::Served(outcome)),
    }
}

/// A guest's response, uncached, with the edge-only headers removed.
fn passed(hc: &HttpCache, executed: Execution) -> Served {
    let Execution { response, report } = executed;
    let (mut parts, body) = response.into_parts();
    verge_cache::serving::strip_edge_headers(&mut parts.headers);
    debug_header(hc, &mut parts.headers, Outcome::Pass);
    Served {
        response: Response::from_parts(parts, ServerBody::Guest(body)),
        report: Some(report),
        cache: Some(CacheOutcome::Served(Outcome::Pass)),
    }
}

/// Refreshes a stale object in the background (stale-while-revalidate) as its own
/// exchange, with its own access line.
fn spawn_refresh(
    ex: Exchange,
    hc: Arc<HttpCache>,
    parts: &http::request::Parts,
    key: Key,
    found: Found,
    fill: Fill,
) {
    let head = request_head(parts).method(Method::GET);
    let headers = parts.headers.clone();
    tokio::spawn(async move {
        let served = miss(
            &ex,
            &hc,
            &key,
            head,
            &headers,
            DrainOnDrop::empty(),
            Some(found),
            fill,
        )
        .await;
        let status = served.response.status().as_u16();
        // Reading the body to its end is what stores it.
        let mut body = served.response.into_body();
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            if frame.is_err() {
                break;
            }
        }
        let report = match served.report {
            Some(pending) => Some(pending.wait().await),
            None => None,
        };
        log_access(&ex, status, report.as_ref(), Some(CacheOutcome::Refresh));
    });
}
