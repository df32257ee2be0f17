//! Read-through caching of a guest's origin fetches: GET responses are stored by
//! their own headers (or the guest's `Verge-Cache-Override`) in the app's namespace of
//! the node's cache, keyed by the URL the request goes to. Concurrent fetches of one
//! URL reach the origin once; stale objects are refreshed in the background
//! (`stale-while-revalidate`) or answer when the origin fails (`stale-if-error`).
//! A request that changes the origin's state (a successful POST, PUT, DELETE…)
//! drops what this node stored for its URL (RFC 9111 §4.4).
//! The flow is `verge_cache::through`, the same as the HTTP cache in front of apps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Empty};
use verge_cache::through::{self, Answer, Through};
use verge_cache::{Cache, Fill, Found, HttpPolicy, Key, Override, Transaction, invalidation};
use wasmtime_wasi_http::{Error as Code, WasiBody};

use super::Sender;

/// The node's cache, as one app's origin fetches use it.
#[derive(Clone)]
pub(super) struct ReadThrough {
    cache: Cache,
    namespace: Arc<str>,
    policy: Arc<HttpPolicy>,
}

fn boxed(body: impl http_body::Body<Data = Bytes, Error = Code> + Send + 'static) -> WasiBody {
    body.boxed_unsync()
}

fn from_cache(response: http::Response<verge_cache::CachedBody>) -> http::Response<WasiBody> {
    response.map(|body| boxed(body.map_err(|never| match never {})))
}

impl ReadThrough {
    pub(super) fn new(cache: &Cache, app: &str) -> ReadThrough {
        ReadThrough {
            cache: cache.clone(),
            namespace: app.into(),
            policy: Arc::new(HttpPolicy::default()),
        }
    }

    pub(super) fn record_pass(&self) {
        self.cache.record_pass();
    }

    /// What a fetch of `uri` is stored under.
    fn key(&self, uri: &http::Uri) -> Key {
        Key::new(self.namespace.clone(), format!("fetch:{uri}"))
    }

    /// Drops, on this node, what was stored for `uri` and for the same-origin URLs
    /// `response` names in `Location` and `Content-Location`: a request to `uri`
    /// changed the origin's state (RFC 9111 §4.4).
    pub(super) fn invalidate(&self, uri: &http::Uri, response: &HeaderMap) {
        self.cache.invalidate(&self.key(uri));
        let url = uri.to_string();
        for path in invalidation::locations(&url, response, invalidation::Scope::SameOrigin) {
            // The same origin: the request's scheme and authority as it spelt them.
            let named = http::Uri::builder()
                .scheme(uri.scheme_str().unwrap_or("http"))
                .authority(uri.authority().map_or("", |a| a.as_str()))
                .path_and_query(path)
                .build();
            if let Ok(named) = named {
                self.cache.invalidate(&self.key(&named));
            }
        }
    }

    /// Answers a GET from the cache, or sends it and stores the response.
    pub(super) async fn send(
        self,
        sender: Sender,
        request: http::Request<WasiBody>,
        overrides: Option<Override>,
        cached: Arc<AtomicU32>,
    ) -> Result<http::Response<WasiBody>, Code> {
        let key = self.key(request.uri());
        let (parts, body) = request.into_parts();
        let headers = parts.headers.clone();
        let count = || cached.fetch_add(1, Ordering::Relaxed);
        match self.cache.transaction(&key, &headers).await {
            Transaction::Fresh { found, .. } => {
                count();
                Ok(from_cache(through::respond(&found, &headers, false)))
            }
            Transaction::Stale { found, refresh } => {
                count();
                if let Some(fill) = refresh {
                    let head = head_of(&parts);
                    let this = self.clone();
                    let (key, stale) = (key.clone(), found.clone());
                    tokio::spawn(async move {
                        this.refresh(sender, head, key, overrides, stale, fill)
                            .await;
                    });
                }
                Ok(from_cache(through::respond(&found, &headers, false)))
            }
            Transaction::Pass => sender.send(http::Request::from_parts(parts, body)).await,
            Transaction::Miss { stale, fill } => {
                let (head, _) = head_of(&parts);
                let answer = self
                    .fill(
                        &sender,
                        head,
                        body,
                        &key,
                        &headers,
                        overrides.as_ref(),
                        stale,
                        fill,
                    )
                    .await?;
                Ok(match answer {
                    Answer::Stored {
                        response, fetched, ..
                    } => {
                        if fetched.is_none() {
                            // stale-if-error: the origin was not reached.
                            count();
                        }
                        from_cache(response)
                    }
                    Answer::Fetched { response, .. } => response.map(boxed),
                    Answer::NotModified { response, rest, .. } => {
                        tokio::spawn(rest.drain());
                        from_cache(response)
                    }
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fill(
        &self,
        sender: &Sender,
        head: http::request::Builder,
        body: WasiBody,
        key: &Key,
        request: &HeaderMap,
        overrides: Option<&Override>,
        stale: Option<Found>,
        fill: Fill,
    ) -> Result<Answer<WasiBody, ()>, Code> {
        let t = Through {
            cache: &self.cache,
            key,
            policy: &self.policy,
            overrides,
            request,
            strip_edge_headers: false,
        };
        let fetch = |headers: HeaderMap| async move {
            let mut req = head
                .body(body)
                .expect("a request rebuilt from a valid one is valid");
            *req.headers_mut() = headers;
            sender.send(req).await.map(|response| (response, ()))
        };
        through::fetch_and_fill(&t, stale, fill, fetch).await
    }

    /// Refreshes a stale object in the background; reading the body stores it.
    async fn refresh(
        self,
        sender: Sender,
        head: (http::request::Builder, HeaderMap),
        key: Key,
        overrides: Option<Override>,
        stale: Found,
        fill: Fill,
    ) {
        let (builder, headers) = head;
        let empty = boxed(Empty::new().map_err(|never| match never {}));
        let answer = self
            .fill(
                &sender,
                builder,
                empty,
                &key,
                &headers,
                overrides.as_ref(),
                Some(stale),
                fill,
            )
            .await;
        if let Ok(Answer::Fetched { response, .. }) = answer {
            let mut body = response.into_body();
            while let Some(Ok(_)) = body.frame().await {}
        } else if let Ok(Answer::NotModified { rest, .. }) = answer {
            rest.drain().await;
        }
    }
}

/// A request's method, URI and version, and its headers.
fn head_of(parts: &http::request::Parts) -> (http::request::Builder, HeaderMap) {
    (
        http::Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone())
            .version(parts.version),
        parts.headers.clone(),
    )
}
