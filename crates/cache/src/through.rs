//! Serving HTTP requests through the cache with a fetch behind it. One flow for both
//! HTTP caches: the one in front of an app (the fetch runs the guest) and the
//! read-through cache of a guest's origin fetches (the fetch goes to the origin).
//!
//! The caller runs the transaction (so it can tell hits, stale answers and passes
//! apart for its logs) and hands a miss to [`fetch_and_fill`], which makes the
//! request conditional when a stored object has validators, answers from the stored
//! object on a `304` or (within `stale-if-error`) on a failure, and otherwise stores
//! the fetched response as its body streams past ([`Filling`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};

use crate::body::CachedBody;
use crate::cache::{Cache, Fill, Writer};
use crate::freshness::{self, HttpPolicy, NotStorable, Override};
use crate::key::Key;
use crate::object::{Found, ObjectMeta};
use crate::serving::{self, RangeAnswer};

/// What the cache did for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from a fresh object.
    Hit,
    /// Waited for another request's fetch of the same key, then answered from it.
    Collapsed,
    /// Fetched.
    Miss,
    /// Fetched with the stored object's validators; the answer was `304`.
    Revalidated,
    /// Answered from a stale object (while a refresh runs, or because the fetch
    /// failed).
    Stale,
    /// Fetched, uncached: not a cacheable request, or a key known not to be.
    Pass,
}

impl Outcome {
    /// Answered from a stored object (fresh, collapsed onto another fetch, stale, or
    /// revalidated with a `304`), for hit ratios.
    pub fn is_hit(self) -> bool {
        !matches!(self, Outcome::Miss | Outcome::Pass)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Collapsed => "collapsed",
            Outcome::Miss => "miss",
            Outcome::Revalidated => "revalidated",
            Outcome::Stale => "stale",
            Outcome::Pass => "pass",
        }
    }

    /// The `X-Cache` debug header's value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Outcome::Hit | Outcome::Collapsed => "HIT",
            Outcome::Miss => "MISS",
            Outcome::Revalidated => "REVALIDATED",
            Outcome::Stale => "STALE",
            Outcome::Pass => "PASS",
        })
    }
}

/// A request going through the cache.
#[derive(Debug, Clone, Copy)]
pub struct Through<'a> {
    pub cache: &'a Cache,
    pub key: &'a Key,
    pub policy: &'a HttpPolicy,
    pub overrides: Option<&'a Override>,
    /// The request's headers as the client sent them.
    pub request: &'a HeaderMap,
    /// Remove `Surrogate-Control` and `Surrogate-Key` from what is passed on.
    pub strip_edge_headers: bool,
}

/// How a request was answered.
pub enum Answer<B, X> {
    /// From a stored object; `fetched` is what the fetch gave back when one ran (a
    /// revalidation, or a failure answered with a stale object).
    Stored {
        response: Response<CachedBody>,
        outcome: Outcome,
        fetched: Option<X>,
    },
    /// The fetched response, stored (or not) as its body streams past.
    Fetched {
        response: Response<Filling<B>>,
        outcome: Outcome,
        fetched: X,
    },
    /// The client already holds the fetched object: send `response` (a `304`) and
    /// read `rest` to its end, which stores it.
    NotModified {
        response: Response<CachedBody>,
        rest: Filling<B>,
        fetched: X,
    },
}

/// Answers from a stored object: `304` to a request that holds it already, `206` or
/// `416` to a `Range`, else the whole object (headers only for HEAD). Sets `Age`.
pub fn respond(found: &Found, request: &HeaderMap, head_only: bool) -> Response<CachedBody> {
    let meta = found.meta();
    let age = HeaderValue::from(found.age().as_secs());
    if meta.status == StatusCode::OK && serving::not_modified(request, &meta.headers) {
        let mut response = not_modified(&meta.headers);
        response.headers_mut().insert(header::AGE, age);
        return response;
    }
    let len = found.len();
    let answer = if meta.status == StatusCode::OK {
        serving::range(request, &meta.headers, len)
    } else {
        RangeAnswer::Full
    };
    let mut headers = meta.headers.clone();
    headers.insert(header::AGE, age);
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
    if let Some(range) = serving::content_range(answer, len) {
        headers.insert(header::CONTENT_RANGE, range);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let mut response = Response::new(if head_only { CachedBody::empty() } else { body });
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A `304` for a stored object with these headers.
fn not_modified(stored: &HeaderMap) -> Response<CachedBody> {
    let mut response = Response::new(CachedBody::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    *response.headers_mut() = serving::not_modified_headers(stored);
    response
}

/// The metadata to store a response with, if it may be stored.
pub fn storable(
    t: &Through<'_>,
    status: StatusCode,
    response: &HeaderMap,
) -> Result<ObjectMeta, NotStorable> {
    let s = freshness::evaluate(
        &Method::GET,
        t.request,
        status,
        response,
        t.policy,
        t.overrides,
        SystemTime::now(),
    )?;
    let mut headers = serving::stored_headers(response);
    if t.strip_edge_headers {
        serving::strip_edge_headers(&mut headers);
    }
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

/// Fetches for a miss (or an expired object, or a background refresh) and stores
/// what may be stored. `fetch` gets the headers to send: the client's without its
/// conditionals and ranges, plus the stored object's validators when there is one.
/// It answers with a response and whatever the caller wants back (a guest's report),
/// or fails; a failure or a `5xx` is answered with `stale` within `stale-if-error`.
pub async fn fetch_and_fill<B, X, E, F, Fut>(
    t: &Through<'_>,
    stale: Option<Found>,
    fill: Fill,
    fetch: F,
) -> Result<Answer<B, X>, E>
where
    B: Body<Data = Bytes> + Unpin,
    F: FnOnce(HeaderMap) -> Fut,
    Fut: Future<Output = Result<(Response<B>, X), E>>,
{
    let mut headers = t.request.clone();
    serving::strip_conditionals(&mut headers);
    let base = stale
        .as_ref()
        .filter(|s| serving::has_validators(&s.meta().headers));
    if let Some(base) = base {
        serving::add_validators(&mut headers, &base.meta().headers);
    }
    let (response, fetched) = match fetch(headers).await {
        Ok(fetched) => fetched,
        Err(e) => {
            return match stale.filter(Found::usable_on_error) {
                // Dropping the fill lets the next request try again.
                Some(stale) => Ok(Answer::Stored {
                    response: respond(&stale, t.request, false),
                    outcome: Outcome::Stale,
                    fetched: None,
                }),
                None => Err(e),
            };
        }
    };
    let status = response.status();

    if status == StatusCode::NOT_MODIFIED
        && let Some(base) = base
    {
        let merged = serving::merge_not_modified(&base.meta().headers, response.headers());
        let answer = match storable(t, base.meta().status, &merged) {
            Ok(meta) => {
                fill.refresh(base, meta);
                t.cache
                    .find(t.key, t.request)
                    .unwrap_or_else(|| base.clone())
            }
            Err(_) => {
                fill.uncacheable();
                base.clone()
            }
        };
        return Ok(Answer::Stored {
            response: respond(&answer, t.request, false),
            outcome: Outcome::Revalidated,
            fetched: Some(fetched),
        });
    }
    if status.is_server_error()
        && let Some(stale) = stale.filter(Found::usable_on_error)
    {
        drop(fill);
        return Ok(Answer::Stored {
            response: respond(&stale, t.request, false),
            outcome: Outcome::Stale,
            fetched: Some(fetched),
        });
    }

    let (mut parts, body) = response.into_parts();
    let meta = storable(t, parts.status, &parts.headers);
    if t.strip_edge_headers {
        serving::strip_edge_headers(&mut parts.headers);
    }
    // hyper sends what Content-Length announces, then stops polling the body.
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| body.size_hint().exact());
    let writer = match meta {
        Ok(meta) => fill.insert(meta, t.request, length).ok(),
        Err(why) if why.is_about_the_request() => {
            fill.pass();
            None
        }
        Err(_) => {
            fill.uncacheable();
            None
        }
    };
    let stored = writer.is_some();
    let body = Filling {
        inner: body,
        writer,
        length,
    };
    if stored && parts.status == StatusCode::OK && serving::not_modified(t.request, &parts.headers)
    {
        return Ok(Answer::NotModified {
            response: not_modified(&parts.headers),
            rest: body,
            fetched,
        });
    }
    Ok(Answer::Fetched {
        response: Response::from_parts(parts, body),
        outcome: Outcome::Miss,
        fetched,
    })
}

/// A fetched body passed on while a copy goes into the cache. The object is stored
/// when the body ends cleanly; an error, or the body being dropped first (the client
/// went away), stores nothing and hands the key over to a waiting request.
pub struct Filling<B> {
    inner: B,
    writer: Option<Writer>,
    /// The body's length when known.
    length: Option<u64>,
}

impl<B: Body<Data = Bytes> + Unpin> Filling<B> {
    /// Reads the rest of the body, storing it.
    pub async fn drain(mut self) {
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_frame(cx)).await
        {
            if frame.is_err() {
                return;
            }
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Filling<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(writer)) = (frame.data_ref(), self.writer.as_mut())
                    && writer.write(data.clone()).is_err()
                {
                    // Too large to cache: the reader still gets all of it.
                    self.writer = None;
                }
                // hyper stops polling a body that has ended or sent all it announced.
                let complete = self.inner.is_end_stream()
                    || self
                        .writer
                        .as_ref()
                        .is_some_and(|w| Some(w.written()) == self.length);
                if complete && let Some(writer) = self.writer.take() {
                    writer.finish();
                }
            }
            Poll::Ready(None) => {
                if let Some(writer) = self.writer.take() {
                    writer.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => self.writer = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
