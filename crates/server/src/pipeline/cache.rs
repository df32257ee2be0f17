//! The HTTP cache stage: answers from the cache without running the guest when it
//! can, and otherwise runs it and stores what may be stored.
//!
//! - GET goes through a transaction: concurrent misses of one URL run the guest once.
//! - HEAD is answered from a usable object, or passed to the guest (never stored).
//! - Other methods pass; a successful unsafe one (POST, PUT, DELETE…) invalidates the
//!   URL's objects (RFC 9111 §4.4).
//! - Client `Cache-Control` request directives other than `no-store` are ignored, as
//!   edge caches do: a client cannot make every request reach the guest.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use verge_cache::serving::{self as cached, RangeAnswer};
use verge_cache::{
    CachedBody, Fill, Found, Key, NotStorable, ObjectMeta, PurgeMode, PurgeTarget, Transaction,
    freshness,
};
use verge_runtime::Execution;

use super::{Exchange, Served, execute, log_access};
use crate::body::{ServerBody, Tee};
use crate::drain::DrainOnDrop;
use crate::registry::HttpCache;

/// What the cache did for a request (the access log's `cache` field, and `X-Cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheOutcome {
    /// Answered from a fresh object.
    Hit,
    /// Waited for another request's fetch of the same URL, then answered from it.
    Collapsed,
    /// Ran the guest.
    Miss,
    /// Ran the guest with the stored object's validators; it answered `304`.
    Revalidated,
    /// Answered from a stale object (while a refresh runs, or because the guest
    /// failed).
    Stale,
    /// Not a cacheable request, or a fetch found uncacheable: ran the guest, uncached.
    Pass,
    /// A background refresh the server made for a stale object.
    Refresh,
}

impl CacheOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Collapsed => "collapsed",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Revalidated => "revalidated",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Pass => "pass",
            CacheOutcome::Refresh => "refresh",
        }
    }

    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheOutcome::Hit | CacheOutcome::Collapsed => "HIT",
            CacheOutcome::Miss | CacheOutcome::Refresh => "MISS",
            CacheOutcome::Revalidated => "REVALIDATED",
            CacheOutcome::Stale => "STALE",
            CacheOutcome::Pass => "PASS",
        })
    }
}

const X_CACHE: &str = "x-cache";

pub(super) async fn serve(ex: &Exchange, hc: &Arc<HttpCache>, req: Request<Incoming>) -> Served {
    let method = req.method().clone();
    let key = Key::for_url(hc.namespace.clone(), &ex.host, &ex.target);
    if method != Method::GET && method != Method::HEAD {
        hc.cache.record_pass();
        let executed = execute::run(ex, req.map(DrainOnDrop::new)).await;
        let status = executed.response.status();
        if !matches!(method, Method::OPTIONS | Method::TRACE | Method::CONNECT)
            && (status.is_success() || status.is_redirection())
        {
            hc.cache
                .purge(&hc.namespace, &PurgeTarget::Key(key), PurgeMode::Hard);
        }
        return passed(hc, executed, CacheOutcome::Pass);
    }
    let (parts, body) = req.into_parts();
    if method == Method::HEAD {
        if let Some(found) = hc.cache.lookup(&key, &parts.headers) {
            return from_cache(hc, &found, &parts.headers, true, CacheOutcome::Hit);
        }
        let req = Request::from_parts(parts, DrainOnDrop::new(body));
        return passed(hc, execute::run(ex, req).await, CacheOutcome::Pass);
    }
    match hc.cache.transaction(&key, &parts.headers).await {
        Transaction::Fresh { found, collapsed } => {
            let outcome = if collapsed {
                CacheOutcome::Collapsed
            } else {
                CacheOutcome::Hit
            };
            from_cache(hc, &found, &parts.headers, false, outcome)
        }
        Transaction::Stale { found, refresh } => {
            if let Some(fill) = refresh {
                spawn_refresh(ex.spin_off(), hc.clone(), &parts, found.clone(), fill);
            }
            from_cache(hc, &found, &parts.headers, false, CacheOutcome::Stale)
        }
        Transaction::Pass => {
            let req = Request::from_parts(parts, DrainOnDrop::new(body));
            passed(hc, execute::run(ex, req).await, CacheOutcome::Pass)
        }
        Transaction::Miss { stale, fill } => {
            let (head, headers) = request_head(&parts);
            miss(ex, hc, head, headers, DrainOnDrop::new(body), stale, fill).await
        }
    }
}

/// Method, URI and version of a request (its extensions stay behind), and its headers.
fn request_head(parts: &http::request::Parts) -> (http::request::Builder, HeaderMap) {
    let builder = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone())
        .version(parts.version);
    (builder, parts.headers.clone())
}

/// Runs the guest for a missing (or expired) object and stores its answer if it may.
async fn miss(
    ex: &Exchange,
    hc: &HttpCache,
    head: http::request::Builder,
    client_headers: HeaderMap,
    body: DrainOnDrop,
    stale: Option<Found>,
    fill: Fill,
) -> Served {
    let key = fill.key().clone();
    let mut headers = client_headers.clone();
    cached::strip_conditionals(&mut headers);
    let base = stale
        .as_ref()
        .filter(|s| cached::has_validators(&s.meta().headers));
    if let Some(base) = base {
        cached::add_validators(&mut headers, &base.meta().headers);
    }
    let mut req = head
        .body(body)
        .expect("a request rebuilt from a valid one is valid");
    *req.headers_mut() = headers;
    let executed = execute::run(ex, req).await;
    let status = executed.response.status();

    if status == StatusCode::NOT_MODIFIED
        && let Some(base) = base
    {
        let merged = cached::merge_not_modified(&base.meta().headers, executed.response.headers());
        let meta = storable(hc, &client_headers, base.meta().status, &merged);
        let answer = match meta {
            Ok(meta) => {
                fill.refresh(base, meta);
                hc.cache
                    .find(&key, &client_headers)
                    .unwrap_or_else(|| base.clone())
            }
            Err(_) => {
                fill.uncacheable();
                base.clone()
            }
        };
        let mut served = from_cache(
            hc,
            &answer,
            &client_headers,
            false,
            CacheOutcome::Revalidated,
        );
        served.report = Some(executed.report);
        return served;
    }
    if status.is_server_error()
        && let Some(stale) = stale.filter(Found::usable_on_error)
    {
        // stale-if-error: the failure stays in the access line; the client gets the
        // last good answer. Dropping the fill lets the next request try again.
        drop(fill);
        let mut served = from_cache(hc, &stale, &client_headers, false, CacheOutcome::Stale);
        served.report = Some(executed.report);
        return served;
    }

    let Execution { response, report } = executed;
    let (mut parts, body) = response.into_parts();
    let meta = storable(hc, &client_headers, parts.status, &parts.headers);
    cached::strip_edge_headers(&mut parts.headers);
    if hc.debug_headers {
        parts.headers.insert(X_CACHE, CacheOutcome::Miss.header());
    }
    // hyper sends what Content-Length announces, then stops polling the body.
    let known_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| http_body::Body::size_hint(&body).exact());
    let writer = match meta {
        Ok(meta) => fill.insert(meta, &client_headers, known_length).ok(),
        Err(_) => {
            fill.uncacheable();
            None
        }
    };
    let body = match writer {
        Some(writer) => {
            let tee = Tee::new(body, writer, known_length);
            if parts.status == StatusCode::OK
                && cached::not_modified(&client_headers, &parts.headers)
            {
                // The client has it already; the body still goes into the cache.
                tokio::spawn(tee.drain());
                return Served {
                    response: not_modified(
                        &parts.headers,
                        None,
                        hc.debug_headers.then_some(CacheOutcome::Miss),
                    ),
                    report: Some(report),
                    cache: Some(CacheOutcome::Miss),
                };
            }
            ServerBody::Filling(Box::new(tee))
        }
        None => ServerBody::Guest(body),
    };
    Served {
        response: Response::from_parts(parts, body),
        report: Some(report),
        cache: Some(CacheOutcome::Miss),
    }
}

/// The metadata to store a response with, if it may be stored.
fn storable(
    hc: &HttpCache,
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
) -> Result<ObjectMeta, NotStorable> {
    let s = freshness::evaluate(
        &Method::GET,
        request,
        status,
        response,
        &hc.policy,
        None,
        SystemTime::now(),
    )?;
    let mut headers = cached::stored_headers(response);
    cached::strip_edge_headers(&mut headers);
    Ok(ObjectMeta {
        status,
        headers,
        freshness: s.freshness,
        initial_age: s.initial_age,
        surrogate_keys: s.surrogate_keys,
        vary: s.vary,
        user_metadata: Bytes::new(),
    })
}

/// A guest's response, uncached, with the edge-only headers removed.
fn passed(hc: &HttpCache, executed: Execution, outcome: CacheOutcome) -> Served {
    let Execution { response, report } = executed;
    let (mut parts, body) = response.into_parts();
    cached::strip_edge_headers(&mut parts.headers);
    if hc.debug_headers {
        parts.headers.insert(X_CACHE, outcome.header());
    }
    Served {
        response: Response::from_parts(parts, ServerBody::Guest(body)),
        report: Some(report),
        cache: Some(outcome),
    }
}

/// Answers from a stored object: `304` to a client that has it, `206`/`416` to a
/// `Range` request, otherwise the whole object (headers only for HEAD).
fn from_cache(
    hc: &HttpCache,
    found: &Found,
    request: &HeaderMap,
    head_only: bool,
    outcome: CacheOutcome,
) -> Served {
    let meta = found.meta();
    let age = HeaderValue::from(found.age().as_secs());
    let debug = hc.debug_headers.then_some(outcome);
    let cache = Some(outcome);
    if meta.status == StatusCode::OK && cached::not_modified(request, &meta.headers) {
        return Served {
            response: not_modified(&meta.headers, Some(age), debug),
            report: None,
            cache,
        };
    }
    let len = found.len();
    let answer = if meta.status == StatusCode::OK {
        cached::range(request, &meta.headers, len)
    } else {
        RangeAnswer::Full
    };
    let mut headers = meta.headers.clone();
    headers.insert(header::AGE, age);
    if let Some(outcome) = debug {
        headers.insert(X_CACHE, outcome.header());
    }
    let (status, body, length) = match answer {
        RangeAnswer::Full => {
            if meta.status == StatusCode::OK && !headers.contains_key(header::ACCEPT_RANGES) {
                headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
            (meta.status, CachedBody::new(found.chunks()), len)
        }
        RangeAnswer::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            CachedBody::range(found.chunks(), start, end),
            end + 1 - start,
        ),
        RangeAnswer::Unsatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, CachedBody::empty(), 0),
    };
    if let Some(range) = cached::content_range(answer, len) {
        headers.insert(header::CONTENT_RANGE, range);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let body = if head_only {
        ServerBody::empty()
    } else {
        ServerBody::Cached(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Served {
        response,
        report: None,
        cache,
    }
}

fn not_modified(
    stored: &HeaderMap,
    age: Option<HeaderValue>,
    debug: Option<CacheOutcome>,
) -> Response<ServerBody> {
    let mut response = Response::new(ServerBody::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    *headers = cached::not_modified_headers(stored);
    if let Some(age) = age {
        headers.insert(header::AGE, age);
    }
    if let Some(outcome) = debug {
        headers.insert(X_CACHE, outcome.header());
    }
    response
}

/// Refreshes a stale object in the background (stale-while-revalidate) as its own
/// exchange, with its own access line.
fn spawn_refresh(
    ex: Exchange,
    hc: Arc<HttpCache>,
    parts: &http::request::Parts,
    found: Found,
    fill: Fill,
) {
    let (head, headers) = request_head(parts);
    let head = head.method(Method::GET);
    tokio::spawn(async move {
        let served = miss(
            &ex,
            &hc,
            head,
            headers,
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
