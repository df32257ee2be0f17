//! Outbound HTTP through the standard `wasi:http/outgoing-handler`.
//!
//! - A request to `http://NAME/...` (any scheme or port) goes to the backend NAME
//!   declared in the manifest: its scheme, address and path prefix, its
//!   `override_host` as `Host`, its timeouts, TLS settings and connection pool.
//! - A request to any other URL must match an `[egress] allow` pattern, or the guest
//!   gets `HTTP-request-denied`.
//! - Every connection is checked on the resolved address: loopback, private,
//!   link-local and similar addresses are refused (`destination-IP-prohibited`)
//!   unless the backend (or `[egress]`) says `allow_private = true`.
//! - Each refusal and origin failure writes one log line; every request carries a
//!   child `traceparent`.
//! - GET responses are cached by their own headers in the app's namespace of the
//!   node's cache (read-through, `cache.rs`), unless the backend says `cache = false`;
//!   a guest overrides per request with a `Verge-Cache-Override` header.

mod cache;

mod address;
mod connector;
mod origin;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use verge_manifest::{Host, UrlScheme};
use wasmtime_wasi_http::{Error as Code, RequestOptions, WasiBody, WasiHttpHooks};

use self::connector::GuardedConnector;
use self::origin::Origin;
use crate::config::{AppConfig, BackendConfig, EgressConfig, OriginTimeouts, TlsConfig};
use crate::error::LoadError;
use crate::guest_log::GuestLogSink;
use crate::trace::TraceContext;

/// Built once per app: a pooled client per backend, and one for URL requests.
pub(crate) struct AppState {
    backends: HashMap<String, Backend>,
    /// The node's cache and the app's namespace, for read-through caching.
    cache: cache::ReadThrough,
    egress: EgressConfig,
    /// `None` when no egress pattern is declared: URL requests are all refused.
    dynamic: Option<Arc<Origin>>,
    max_requests: u32,
}

struct Backend {
    config: BackendConfig,
    origin: Arc<Origin>,
    /// `scheme://authority` of every request: the override host, else the url's.
    scheme: Scheme,
    authority: Authority,
}

impl AppState {
    pub(crate) fn new(
        config: &AppConfig,
        node_cache: &verge_cache::Cache,
    ) -> Result<Arc<AppState>, LoadError> {
        let mut backends = HashMap::new();
        for b in &config.backends {
            let connector = GuardedConnector {
                target: Some((b.url.host.to_string(), b.url.port)),
                allow_private: b.allow_private,
                connect_timeout: b.timeouts.connect,
            };
            let origin = Arc::new(Origin::new(connector, &b.tls, b.max_connections)?);
            let authority = match &b.override_host {
                Some(host) => host.clone(),
                None if b.url.port == b.url.scheme.default_port() => b.url.host.to_string(),
                None => format!("{}:{}", b.url.host, b.url.port),
            };
            let backend = Backend {
                config: b.clone(),
                origin,
                scheme: scheme(b.url.scheme),
                authority: authority.parse().map_err(|_| {
                    LoadError::Config(crate::config::ConfigError::OverrideHost {
                        backend: b.name.clone(),
                        host: authority.clone(),
                    })
                })?,
            };
            backends.insert(b.name.clone(), backend);
        }
        let dynamic = if config.egress.allow.is_empty() {
            None
        } else {
            let connector = GuardedConnector {
                target: None,
                allow_private: config.egress.allow_private,
                connect_timeout: OriginTimeouts::DEFAULT.connect,
            };
            Some(Arc::new(Origin::new(
                connector,
                &TlsConfig::default(),
                crate::config::DEFAULT_MAX_CONNECTIONS,
            )?))
        };
        Ok(Arc::new(AppState {
            backends,
            cache: cache::ReadThrough::new(node_cache, &config.name),
            egress: config.egress.clone(),
            dynamic,
            max_requests: config.limits.max_outbound_requests,
        }))
    }
}

/// Built for every request: a handle on the app's clients and counters.
pub(crate) struct RequestState {
    app: Arc<AppState>,
    /// Requests the guest sent (refused ones included).
    pub(crate) subrequests: u32,
    /// Of those, answered by the cache without reaching the origin; shared with the
    /// send futures, allocated by the first cached answer's request.
    cached: Option<Arc<std::sync::atomic::AtomicU32>>,
    /// Time waiting for origins and failed sends; shared with the send futures,
    /// allocated by the first request that sends.
    origin: Option<Arc<OriginStats>>,
    pub(crate) trace: TraceContext,
    log: HostLog,
}

/// What a request's sends to origins add up to.
#[derive(Default)]
struct OriginStats {
    /// Microseconds from sending each request to its response head, summed.
    wait_us: AtomicU64,
    /// Sends that got no response from their origin (refused, reset, timed out).
    errors: std::sync::atomic::AtomicU32,
}

/// Writes Verge's own lines about a request (refusals, origin failures).
#[derive(Clone)]
pub(crate) struct HostLog {
    pub(crate) request_id: Arc<str>,
    pub(crate) sink: Arc<dyn GuestLogSink>,
}

impl HostLog {
    fn write(&self, kind: &str, message: &str) {
        self.sink.host_line(&self.request_id, kind, message);
    }
}

impl RequestState {
    pub(crate) fn new(app: &Arc<AppState>, trace: TraceContext, log: HostLog) -> RequestState {
        RequestState {
            app: app.clone(),
            subrequests: 0,
            cached: None,
            origin: None,
            trace,
            log,
        }
    }

    /// Time spent waiting for origins' response heads so far.
    pub(crate) fn origin_wait(&self) -> Duration {
        let us = self
            .origin
            .as_ref()
            .map_or(0, |o| o.wait_us.load(Ordering::Relaxed));
        Duration::from_micros(us)
    }

    /// Sends that got no response from their origin so far.
    pub(crate) fn origin_errors(&self) -> u32 {
        self.origin
            .as_ref()
            .map_or(0, |o| o.errors.load(Ordering::Relaxed))
    }

    /// Requests the cache answered without reaching the origin.
    pub(crate) fn cached_subrequests(&self) -> u32 {
        self.cached
            .as_ref()
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Decides where a guest's request goes, rewriting its URI and `Host`.
    fn route(&self, request: &mut http::Request<WasiBody>) -> Result<Route, Refusal> {
        let uri = request.uri().clone();
        let authority = uri.authority().ok_or_else(|| Refusal {
            code: Code::HttpRequestUriInvalid,
            message: format!("outbound request to `{uri}` refused: it has no host"),
        })?;
        let host = authority.host().to_ascii_lowercase();
        let path = uri
            .path_and_query()
            .map_or("/", PathAndQuery::as_str)
            .to_owned();

        if let Some(backend) = self.app.backends.get(&host) {
            let prefix = &backend.config.url.path_prefix;
            let target = Uri::builder()
                .scheme(backend.scheme.clone())
                .authority(backend.authority.clone())
                .path_and_query(format!("{prefix}{path}"))
                .build()
                .map_err(|e| Refusal {
                    code: Code::HttpRequestUriInvalid,
                    message: format!("outbound request to backend `{host}` refused: {e}"),
                })?;
            *request.uri_mut() = target;
            let host_header = HeaderValue::from_str(backend.authority.as_str())
                .expect("an authority is a valid header value");
            request
                .headers_mut()
                .insert(http::header::HOST, host_header);
            return Ok(Route {
                origin: backend.origin.clone(),
                timeouts: backend.config.timeouts,
                label: format!("backend `{}`", backend.config.name),
                cache: backend.config.cache,
            });
        }

        let scheme = match uri.scheme_str() {
            Some("http") => UrlScheme::Http,
            Some("https") | None => UrlScheme::Https,
            Some(other) => {
                return Err(Refusal {
                    code: Code::HttpProtocolError,
                    message: format!(
                        "outbound request to `{uri}` refused: scheme `{other}` is not http or https"
                    ),
                });
            }
        };
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        let parsed = Host::parse(&host).map_err(|e| Refusal {
            code: Code::HttpRequestUriInvalid,
            message: format!("outbound request to `{uri}` refused: {e}"),
        })?;
        let destination = format!("{}://{parsed}:{port}", scheme.as_str());
        let allowed = self
            .app
            .egress
            .allow
            .iter()
            .find(|p| p.matches(scheme, &parsed, port));
        match (allowed, &self.app.dynamic) {
            (Some(pattern), Some(origin)) => Ok(Route {
                origin: origin.clone(),
                timeouts: OriginTimeouts::DEFAULT,
                label: format!("{destination} (allowed by `{}`)", pattern.as_str()),
                cache: true,
            }),
            _ => {
                let backends = if self.app.backends.is_empty() {
                    "no backends are declared".to_string()
                } else {
                    let mut names: Vec<&str> =
                        self.app.backends.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    format!("backends: {}", names.join(", "))
                };
                Err(Refusal {
                    code: Code::HttpRequestDenied,
                    message: format!(
                        "outbound request to {destination} refused: no backend is named `{host}` \
                         ({backends}) and no [egress] allow pattern matches it"
                    ),
                })
            }
        }
    }
}

struct Route {
    origin: Arc<Origin>,
    timeouts: OriginTimeouts,
    /// Names the destination in log lines.
    label: String,
    /// Whether its GET responses may be cached.
    cache: bool,
}

struct Refusal {
    code: Code,
    message: String,
}

fn scheme(s: UrlScheme) -> Scheme {
    match s {
        UrlScheme::Http => Scheme::HTTP,
        UrlScheme::Https => Scheme::HTTPS,
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Code>> + Send>,
)>;

impl WasiHttpHooks for RequestState {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Code>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        self.subrequests += 1;
        if self.subrequests > self.app.max_requests {
            self.log.write(
                "egress",
                &format!(
                    "outbound request refused: this request already sent {} (limits.max_outbound_requests)",
                    self.app.max_requests
                ),
            );
            return Box::new(async { Err(Code::HttpRequestDenied) });
        }
        let route = match self.route(&mut request) {
            Ok(route) => route,
            Err(refusal) => {
                self.log.write("egress", &refusal.message);
                return Box::new(async move { Err(refusal.code) });
            }
        };
        // The guest's cache override is for Verge, not for the origin.
        let overrides = match request
            .headers_mut()
            .remove(verge_cache::freshness::CACHE_OVERRIDE)
        {
            None => None,
            Some(value) => match verge_cache::Override::parse(&value) {
                Ok(o) => Some(o),
                Err(why) => {
                    self.log.write(
                        "egress",
                        &format!("outbound request refused: Verge-Cache-Override: {why}"),
                    );
                    return Box::new(async { Err(Code::HttpRequestDenied) });
                }
            },
        };
        let headers = request.headers_mut();
        headers.insert("traceparent", self.trace.child_traceparent());
        if let Some(state) = self.trace.tracestate()
            && !headers.contains_key("tracestate")
        {
            headers.insert("tracestate", state.clone());
        }
        let timeouts = with_guest_options(route.timeouts, options);
        let sender = Sender {
            origin: route.origin,
            timeouts,
            label: route.label.into(),
            stats: self.origin.get_or_insert_with(Arc::default).clone(),
            log: self.log.clone(),
        };
        let cacheable = route.cache
            && request.method() == http::Method::GET
            && !overrides.as_ref().is_some_and(|o| o.pass);
        if !cacheable {
            if route.cache && request.method() == http::Method::GET {
                self.app.cache.record_pass();
            }
            if route.cache && request.method() != http::Method::GET {
                let read_through = self.app.cache.clone();
                return Box::new(async move {
                    let (method, uri) = (request.method().clone(), request.uri().clone());
                    let result = sender.send(request).await;
                    if let Ok(response) = &result
                        && verge_cache::invalidation::invalidates(&method, response.status())
                    {
                        read_through.invalidate(&uri, response.headers());
                    }
                    finished(result)
                });
            }
            return Box::new(async move { finished(sender.send(request).await) });
        }
        let cached = self.cached.get_or_insert_with(Arc::default).clone();
        let read_through = self.app.cache.clone();
        Box::new(
            async move { finished(read_through.send(sender, request, overrides, cached).await) },
        )
    }
}

/// What `send_request` hands back: the response, and a future for the body's end
/// that Verge does not need (the body reports its own failures).
fn finished(result: Result<http::Response<WasiBody>, Code>) -> SendResult {
    result.map(|response| {
        (
            response,
            Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
        )
    })
}

/// Sends requests to one route's origin, timing and logging them.
#[derive(Clone)]
struct Sender {
    origin: Arc<Origin>,
    timeouts: OriginTimeouts,
    label: Arc<str>,
    stats: Arc<OriginStats>,
    log: HostLog,
}

impl Sender {
    async fn send(
        &self,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, Code> {
        let started = Instant::now();
        let body_log = (self.log.clone(), self.label.clone());
        let on_body_error = move |why: String| {
            let (log, label) = body_log;
            log.write("origin", &format!("request to {label}: {why}"));
        };
        let result = self
            .origin
            .send(request, self.timeouts, on_body_error)
            .await;
        self.stats
            .wait_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        result.map_err(|err| {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            self.log.write(
                "origin",
                &format!(
                    "request to {} failed: {} ({:?})",
                    self.label, err.message, err.code
                ),
            );
            err.code
        })
    }
}

/// Timeouts the guest set in `request-options` take precedence over the route's.
fn with_guest_options(route: OriginTimeouts, options: Option<RequestOptions>) -> OriginTimeouts {
    let Some(o) = options else { return route };
    let pick = |guest: Option<Duration>, default| guest.filter(|d| !d.is_zero()).unwrap_or(default);
    OriginTimeouts {
        connect: pick(o.connect_timeout, route.connect),
        first_byte: pick(o.first_byte_timeout, route.first_byte),
        between_bytes: pick(o.between_bytes_timeout, route.between_bytes),
    }
}
