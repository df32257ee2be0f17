//! The admin listener: a small REST surface under `/admin/v1/` and Prometheus
//! `/metrics`, on its own address, every route behind a bearer token.
//!
//! | route | what |
//! |---|---|
//! | `POST /admin/v1/services/{name}/purge/all` | purge everything of a service |
//! | `POST /admin/v1/services/{name}/purge/keys/{surrogate_key}` | purge objects by surrogate key |
//! | `POST /admin/v1/services/{name}/purge/url` | purge a URL's objects; body `{"url": "https://host/path?q"}` |
//! | `GET /admin/v1/services/{name}/logs?status=5xx&search=TEXT` | the service's lines, live (server-sent events; see [`logs`]) |
//! | `GET /admin/v1/whoami` | the token's name and scope (any valid token) |
//! | `GET /admin/v1/traffic[?service=NAME]` | the last hour at 10 s resolution, per service and node ([`crate::traffic`]) |
//! | `GET /metrics` | per-app request metrics, cache counters and size (Prometheus) |
//! | `GET /console`, `GET /console/{file}` | the web console, when on ([`AdminApi::with_console`]; no token: the page asks for one) |
//! | `GET /healthz` | 200 while the process serves (no token needed) |
//! | `GET /readyz` | 200 when an app is loaded, else 503 (no token needed) |
//!
//! A purge is hard unless `?soft=true` (soft marks objects stale). It answers
//! `{"app", "purged", "soft"}` once no lookup can find the purged objects. The
//! health routes are for load balancers and say nothing about the apps. Under
//! `verge serve` the one app is the service; `/admin/v1/apps/{name}/…` is the older
//! spelling of the service routes and answers the same.
//!
//! [`AdminApi`] is the whole API as a value: [`AdminApi::handle`] answers a request
//! without a listener (tests call it in process), and [`AdminServer`] serves it on
//! an address.

mod auth;
mod console;
mod logs;
mod metrics;
mod purge;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use verge_cache::Cache;

use crate::log_tap::LogTap;
use crate::metrics::Metrics;
use crate::registry::AppRegistry;
use crate::serve::ServerError;

pub use auth::{Authenticator, Denied, Need, Principal, Right, RootToken, Scope, constant_time_eq};
pub use logs::HELD_REQUESTS;
pub use purge::{PurgeError, PurgeRequest, PurgeTarget, PurgeUrl, Purged, purge};
pub use routes::Route;

/// A bound admin listener.
pub struct AdminServer {
    listener: TcpListener,
    api: Arc<AdminApi>,
}

/// The admin API: its token check, its built-in routes and the routes added to it.
pub struct AdminApi {
    auth: Arc<dyn Authenticator>,
    registry: Arc<dyn AppRegistry>,
    cache: Cache,
    metrics: Metrics,
    /// More routes, each under a path prefix (the node's deploy API).
    extra: Vec<(&'static str, Arc<dyn AdminRoutes>)>,
    /// Where `logs` routes watch the lines; none: no such route.
    logs: Option<Arc<LogTap>>,
    /// What the node adds to `/readyz` and `/metrics` (its fleet link).
    status: Option<Arc<dyn NodeStatus>>,
    /// A fleet node's name, which tails tag its lines with.
    log_node: Option<Arc<str>>,
    /// A fleet node's purges reach the other nodes; a purge call waits for them.
    purge_fanout: Option<Arc<dyn PurgeFanout>>,
    /// Serve the web console at `/console`.
    console: bool,
    /// The traffic history `/admin/v1/traffic` answers from.
    traffic: Option<Arc<crate::traffic::Traffic>>,
}

/// Where a node's purges go beyond it (a fleet): a purge call answers once the other
/// nodes applied it, saying what each did.
#[async_trait::async_trait]
pub trait PurgeFanout: Send + Sync + 'static {
    /// Waits (at most `wait`) until every live node has applied every purge made
    /// here so far; what each node did, by name (this node included).
    async fn applied_everywhere(
        &self,
        wait: std::time::Duration,
    ) -> std::collections::BTreeMap<String, String>;
}

/// What a node reports beyond its apps: a line for `/readyz`'s body and gauges for
/// `/metrics` (a fleet node's link to NATS).
pub trait NodeStatus: Send + Sync + 'static {
    /// Lines appended to `/readyz`'s body, each ending in a newline.
    fn readiness(&self) -> String;
    /// Prometheus text appended to `/metrics`.
    fn metrics(&self, out: &mut String);
}

/// How long a purge call waits for the other nodes of a fleet to apply it.
const PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a client may take to send a request head, and the largest head taken
/// (hyper answers 431 past it): an admin listener is not for slow or huge requests.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_HEAD: usize = 16 << 10;

/// The body of an admin answer: whole, or streamed (a log tail).
pub type AdminBody = UnsyncBoxBody<Bytes, std::convert::Infallible>;
/// The answer of an admin route.
pub type Reply = Response<AdminBody>;

/// Why a request body could not be read. A concrete type rather than a boxed trait
/// object: `Limited` wraps errors in a `Box<dyn Error>` itself, and a boxed one inside
/// trips the compiler's `Send` check on the spawned connection future.
#[derive(Debug)]
pub struct BodyError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
/// The body of a request to the admin API: from a connection, or built in process.
pub type RequestBody = UnsyncBoxBody<Bytes, BodyError>;
/// A request to the admin API.
pub type AdminRequest = Request<RequestBody>;

/// A request body from any body (a connection's, or `Full` bytes in a test).
pub fn request_body<B>(body: B) -> RequestBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    body.map_err(|e| BodyError(e.into())).boxed_unsync()
}

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> AdminBody {
    Full::new(bytes.into()).boxed_unsync()
}
/// Admin routes served by someone else (the node's control plane, which the server
/// does not know), for an authenticated principal; they check what each route needs
/// with [`Principal::check`].
pub trait AdminRoutes: Send + Sync + 'static {
    /// The routes this serves; a request reaches [`AdminRoutes::handle`] only with a
    /// path and method of one of them.
    fn routes(&self) -> &'static [Route];

    fn handle(
        &self,
        req: AdminRequest,
        principal: Principal,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send + '_>>;
}

/// The 403 for a principal that may not do what a route needs.
pub fn forbidden(why: &str) -> Reply {
    error(StatusCode::FORBIDDEN, why)
}

/// Largest request body the admin API reads.
const MAX_BODY: usize = 64 << 10;

impl AdminApi {
    /// The API with one bearer token, `token`, that may do everything.
    pub fn new(
        token: String,
        registry: Arc<dyn AppRegistry>,
        cache: Cache,
        metrics: Metrics,
    ) -> Self {
        AdminApi {
            auth: Arc::new(RootToken(token)),
            registry,
            cache,
            metrics,
            extra: Vec::new(),
            logs: None,
            status: None,
            log_node: None,
            purge_fanout: None,
            console: false,
            traffic: None,
        }
    }

    /// Serves `traffic` at `/admin/v1/traffic`.
    pub fn with_traffic(mut self, traffic: Arc<crate::traffic::Traffic>) -> Self {
        self.traffic = Some(traffic);
        self
    }

    /// Serves the web console (`verge-console`) at `/console`.
    pub fn with_console(mut self) -> Self {
        self.console = true;
        self
    }

    /// Tags the lines tails show with `node`, this node's name in a fleet (whose
    /// other nodes' lines arrive on the same tap, tagged with theirs).
    pub fn with_log_node(mut self, node: &str) -> Self {
        self.log_node = Some(node.into());
        self
    }

    /// Adds `status` to `/readyz` and `/metrics`.
    /// Purge calls wait for `fanout` (see [`PurgeFanout`]).
    pub fn with_purge_fanout(mut self, fanout: Arc<dyn PurgeFanout>) -> Self {
        self.purge_fanout = Some(fanout);
        self
    }

    pub fn with_status(mut self, status: Arc<dyn NodeStatus>) -> Self {
        self.status = Some(status);
        self
    }

    /// Serves `routes` for every path under `prefix` (after the token check).
    pub fn with_routes(mut self, prefix: &'static str, routes: Arc<dyn AdminRoutes>) -> Self {
        self.extra.push((prefix, routes));
        self
    }

    /// Serves the apps' log lines, live, from `tap`.
    pub fn with_logs(mut self, tap: Arc<LogTap>) -> Self {
        self.logs = Some(tap);
        self
    }

    /// Authenticates tokens with `auth` instead of the one configured token.
    pub fn with_authenticator(mut self, auth: Arc<dyn Authenticator>) -> Self {
        self.auth = auth;
        self
    }
}

impl AdminServer {
    pub async fn bind(listen: SocketAddr, api: Arc<AdminApi>) -> Result<AdminServer, ServerError> {
        let listener = crate::serve::listen(listen).await?;
        Ok(AdminServer { listener, api })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serves until the task is dropped.
    pub async fn run(self) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let api = self.api.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let api = api.clone();
                    async move {
                        // A body a route did not read (refused before it) is read
                        // and discarded after the answer, so the connection stays
                        // usable for the client's next request.
                        let req =
                            req.map(|body| request_body(crate::drain::DrainOnDrop::new(body)));
                        Ok::<_, std::convert::Infallible>(api.handle(req).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(MAX_HEAD)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

/// Every error's body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// `GET /admin/v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Whoami {
    pub name: String,
    /// The one service the token may touch; `None`: the whole node.
    pub service: Option<String>,
    pub write: bool,
}

/// A JSON answer.
pub fn json(status: StatusCode, body: &impl Serialize) -> Reply {
    let mut resp = Response::new(full(serde_json::to_vec(body).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut resp = Response::new(full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}

fn error(status: StatusCode, message: &str) -> Reply {
    json(status, &ErrorBody { error: message })
}

/// `405` with the methods the route takes.
fn method_not_allowed(route: &Route) -> Reply {
    let allow = route.allow();
    let mut reply = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("{} takes {allow}", route.path),
    );
    if let Ok(value) = http::HeaderValue::from_str(&allow) {
        reply.headers_mut().insert(header::ALLOW, value);
    }
    reply
}

impl AdminApi {
    /// Every route this API serves: the health checks, the server's own, the log
    /// tail when it has one, and those added with [`AdminApi::with_routes`].
    pub fn routes(&self) -> Vec<Route> {
        self.all_routes().copied().collect()
    }

    fn all_routes(&self) -> impl Iterator<Item = &Route> {
        let logs = if self.logs.is_some() {
            routes::LOGS
        } else {
            &[]
        };
        let console = if self.console { routes::CONSOLE } else { &[] };
        let traffic = if self.traffic.is_some() {
            routes::TRAFFIC
        } else {
            &[]
        };
        routes::PUBLIC
            .iter()
            .chain(console)
            .chain(routes::SERVER)
            .chain(logs)
            .chain(traffic)
            .chain(self.extra.iter().flat_map(|(_, r)| r.routes()))
    }

    fn route_of(&self, path: &str) -> Option<Route> {
        self.all_routes().find(|route| route.matches(path)).copied()
    }

    /// Answers one request: the health routes, then the token check, then `404` for
    /// a path no route has and `405` for a method the route does not take, then the
    /// route.
    pub async fn handle(&self, req: AdminRequest) -> Reply {
        let route = self.route_of(req.uri().path());
        if let Some(route) = route.filter(|r| r.public)
            && !route.methods.contains(req.method())
        {
            return method_not_allowed(&route);
        }
        if route.is_some_and(|r| r.public && r.path.starts_with("/console")) {
            return console::serve(&req);
        }
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => return text(StatusCode::OK, "ok\n"),
            (&Method::GET, "/readyz") => {
                // Readiness is whether this node can serve; a fleet node cut off
                // from NATS still can, and says so in the body.
                let (status, body) = match self.registry.is_ready() {
                    true => (StatusCode::OK, "ready\n"),
                    false => (StatusCode::SERVICE_UNAVAILABLE, "no app loaded\n"),
                };
                let Some(node) = &self.status else {
                    return text(status, body);
                };
                let mut resp = Response::new(full(format!("{body}{}", node.readiness())));
                *resp.status_mut() = status;
                return resp;
            }
            _ => {}
        }
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "))
            .map(|token| token.trim().to_owned());
        let principal = match token {
            Some(token) => self.auth.authenticate(&token).await,
            None => Err(Denied::Unknown),
        };
        let principal = match principal {
            Ok(principal) => principal,
            Err(denied) => {
                let mut reply = error(StatusCode::UNAUTHORIZED, &denied.to_string());
                reply.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
                return reply;
            }
        };
        let Some(route) = route else {
            return error(StatusCode::NOT_FOUND, "no such route");
        };
        if !route.methods.contains(req.method()) {
            return method_not_allowed(&route);
        }
        let path = req.uri().path().to_owned();
        if route.path == "/admin/v1/whoami" {
            let whoami = Whoami {
                service: match &principal.scope {
                    Scope::Node => None,
                    Scope::Service(s) => Some(s.clone()),
                },
                write: principal.right == Right::Write,
                name: principal.name,
            };
            return json(StatusCode::OK, &whoami);
        }
        // A service's purges and log tail are the server's, under the service noun;
        // `/admin/v1/apps/{name}/…` is the older spelling of the same routes.
        let service_route = path
            .strip_prefix("/admin/v1/services/")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(_, action)| *action == "logs" || action.starts_with("purge/"))
            .or_else(|| {
                path.strip_prefix("/admin/v1/apps/")
                    .and_then(|rest| rest.split_once('/'))
            })
            .map(|(app, action)| (app.to_owned(), action.to_owned()));
        if let Some((app, action)) = service_route {
            return self.service_route(req, &principal, &app, &action).await;
        }
        if let Some((_, routes)) = self
            .extra
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
        {
            return routes.handle(req, principal).await;
        }
        if route.path == "/admin/v1/traffic"
            && let Some(traffic) = &self.traffic
        {
            return traffic_history(traffic, &req, &principal);
        }
        if path == "/metrics" {
            if let Err(why) = principal.check(Need {
                service: None,
                write: false,
            }) {
                return forbidden(&why);
            }
            return match *req.method() {
                Method::GET => metrics::render(&self.metrics, &self.cache, self.status.as_deref()),
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
            };
        }
        error(StatusCode::NOT_FOUND, "no such route")
    }

    /// `…/{app}/logs` and `…/{app}/purge/{all | url | keys/KEY}`.
    async fn service_route(
        &self,
        req: AdminRequest,
        principal: &Principal,
        app: &str,
        action: &str,
    ) -> Reply {
        if action == "logs" {
            return self.tail(&req, app, principal);
        }
        let Some(action) = action.strip_prefix("purge/") else {
            return error(StatusCode::NOT_FOUND, "no such route");
        };
        let soft = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "soft=true" || p == "soft=1"));
        if req.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "purges are POST");
        }
        if let Err(why) = principal.check(Need {
            service: Some(app),
            write: true,
        }) {
            return forbidden(&why);
        }
        let target = match action {
            "all" => PurgeTarget::All,
            "url" => {
                let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(e) => return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
                };
                match serde_json::from_slice::<PurgeUrl>(&body) {
                    Ok(b) => PurgeTarget::Url(b.url),
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("expected {{\"url\": \"https://host/path\"}}: {e}"),
                        );
                    }
                }
            }
            other => match other.strip_prefix("keys/") {
                Some(key) if !key.is_empty() => match percent_decode(key) {
                    Some(key) => PurgeTarget::SurrogateKey(key),
                    None => return error(StatusCode::BAD_REQUEST, "the key is not valid UTF-8"),
                },
                _ => return error(StatusCode::NOT_FOUND, "no such route"),
            },
        };
        let request = PurgeRequest { target, soft };
        match purge(&*self.registry, &self.cache, app, &request) {
            Ok(mut purged) => {
                if let Some(fanout) = &self.purge_fanout {
                    purged.nodes = Some(fanout.applied_everywhere(PURGE_WAIT).await);
                }
                json(StatusCode::OK, &purged)
            }
            Err(e @ PurgeError::NoSuchApp { .. }) => error(StatusCode::NOT_FOUND, &e.to_string()),
            Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    }
}

impl AdminApi {
    fn tail(&self, req: &AdminRequest, app: &str, principal: &Principal) -> Reply {
        let Some(tap) = &self.logs else {
            return error(StatusCode::NOT_FOUND, "this listener serves no logs");
        };
        if req.method() != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "use GET");
        }
        if let Err(why) = principal.check(Need {
            service: Some(app),
            write: false,
        }) {
            return forbidden(&why);
        }
        match logs::TailFilter::from_query(req.uri().query()) {
            Ok(filter) => logs::tail(tap, app, filter, self.log_node.clone()),
            Err(why) => logs::bad_filter(&why),
        }
    }
}

/// `GET /admin/v1/traffic[?service=NAME]`: one service's series (a service's token
/// gets its own without asking), or every series with each node's total.
fn traffic_history(
    traffic: &crate::traffic::Traffic,
    req: &AdminRequest,
    principal: &Principal,
) -> Reply {
    let mut service = None;
    for pair in req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("service", value)) => match percent_decode(value) {
                Some(name) if !name.is_empty() => service = Some(name),
                _ => return error(StatusCode::BAD_REQUEST, "`service` names no service"),
            },
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown parameter `{pair}`: the one parameter is service"),
                );
            }
        }
    }
    if service.is_none()
        && let Scope::Service(own) = &principal.scope
    {
        service = Some(own.clone());
    }
    if let Err(why) = principal.check(Need {
        service: service.as_deref(),
        write: false,
    }) {
        return forbidden(&why);
    }
    json(StatusCode::OK, &traffic.history(service.as_deref()))
}

/// Decodes `%XX` escapes in a path segment; `None` if one is malformed or the
/// result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
