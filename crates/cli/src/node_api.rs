//! The node's deploy API, under `/admin/v1/services` on the admin listener (the
//! server checks the token first):
//!
//! | route | what |
//! |---|---|
//! | `GET /admin/v1/services` | the services |
//! | `POST /admin/v1/services` `{"name", "domains"}` | create one |
//! | `GET /admin/v1/services/{name}` | one service |
//! | `DELETE /admin/v1/services/{name}` | delete one (stops serving it) |
//! | `GET /admin/v1/services/{name}/versions` | its versions |
//! | `DELETE /admin/v1/services/{name}/versions/{number}` | delete a version that is not active |
//! | `POST /admin/v1/services/{name}/versions` (body: a `.vpkg`) | upload a version: stored by SHA-256, read, compiled; refused with the reason if any step fails |
//! | `POST /admin/v1/services/{name}/activate` `{"version"}` | serve that version |
//! | `POST /admin/v1/services/{name}/rollback` | serve the one active before |
//! | `POST /admin/v1/services/{name}/kv/{store}` (an operation, as `verge kv` sends it) | get, put, delete or list in a KV store of the active version |
//! | `GET /admin/v1/tokens` | the tokens (never their secrets) |
//! | `POST /admin/v1/tokens` `{"name", "service", "write"}` | make one: its secret is shown once |
//! | `DELETE /admin/v1/tokens/{id}` | revoke one |
//!
//! Tokens are scoped to the node or to one service, read or read-write; the node's
//! root token (`--admin-token-file`) can do everything. A route outside a token's
//! scope answers 403 with the reason.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::http::{Method, Request, StatusCode};
use serde::Deserialize;
use verge_control::{
    ControlError, ControlState, NewVersion, PackageStore, PackageStoreError, ServiceName,
    TokenRecord,
};
use verge_manifest::{DomainPattern, Package};
use verge_runtime::Runtime;
use verge_server::admin::{
    AdminRoutes, Authenticator, Denied, Need, Principal, Reply, Right, RootToken, Scope, forbidden,
};
use verge_server::{AppRegistry, LogWriter, Metrics, NodeRegistry};
use verge_store::Namespace;

use crate::kv_ops::{self, Op};

/// What the node runs on.
pub(crate) struct Node {
    /// The node itself, for loaders the registry calls later.
    pub(crate) myself: std::sync::Weak<Node>,
    pub(crate) control: Arc<dyn ControlState>,
    pub(crate) packages: PackageStore,
    pub(crate) runtime: Runtime,
    pub(crate) registry: Arc<NodeRegistry>,
    pub(crate) log: LogWriter,
    pub(crate) metrics: Metrics,
    /// The instance cap of services whose packages set none.
    pub(crate) max_concurrent_per_service: u32,
    /// The largest package an upload may be.
    pub(crate) max_package_bytes: u64,
}

pub(crate) struct DeployApi(pub(crate) Arc<Node>);

fn reply(status: StatusCode, body: &impl serde::Serialize) -> Reply {
    verge_server::admin::json(status, body)
}

fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Reply {
    reply(status, &serde_json::json!({ "error": message.to_string() }))
}

fn control_error(e: ControlError) -> Reply {
    let status = match e {
        ControlError::NoSuchService(_) | ControlError::NoSuchVersion { .. } => {
            StatusCode::NOT_FOUND
        }
        ControlError::ServiceExists(_)
        | ControlError::DomainTaken { .. }
        | ControlError::NothingToRollBack(_)
        | ControlError::VersionActive { .. }
        | ControlError::TokenExists(_)
        | ControlError::Conflict(_) => StatusCode::CONFLICT,
        ControlError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    refuse(status, e)
}

async fn json_body<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Reply> {
    let body = http_body_util::Limited::new(req.into_body(), 64 << 10)
        .collect()
        .await
        .map_err(|e| refuse(StatusCode::PAYLOAD_TOO_LARGE, e))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| refuse(StatusCode::BAD_REQUEST, e))
}

impl AdminRoutes for DeployApi {
    fn handle(
        &self,
        req: Request<Incoming>,
        principal: Principal,
    ) -> Pin<Box<dyn std::future::Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            let path = req.uri().path().trim_end_matches('/').to_owned();
            let rest = path.strip_prefix("/admin/v1/services").unwrap_or("");
            let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
            let node = &self.0;
            let method = req.method().clone();
            let name = match parts.first().map(|n| ServiceName::new(n)) {
                Some(Ok(name)) => Some(name),
                Some(Err(e)) => return refuse(StatusCode::BAD_REQUEST, e),
                None => None,
            };
            let action = parts.get(1).copied();
            if let (Some(name), Some("kv")) = (&name, action) {
                return match (parts.get(2), parts.len(), &method) {
                    (Some(store), 3, &Method::POST) => kv(node, &principal, name, store, req).await,
                    (_, _, &Method::POST) => refuse(StatusCode::NOT_FOUND, "no such route"),
                    _ => refuse(StatusCode::METHOD_NOT_ALLOWED, "KV operations are POST"),
                };
            }
            // Service routes are the service's; listing and creating are the node's.
            let need = Need {
                service: if method == Method::DELETE && action.is_none() {
                    None
                } else {
                    name.as_ref().map(|n| n.as_str())
                },
                write: method != Method::GET,
            };
            if let Err(why) = principal.check(need) {
                return forbidden(&why);
            }
            match (method, name, action) {
                (Method::GET, None, None) => match node.control.services() {
                    Ok(services) => reply(StatusCode::OK, &services),
                    Err(e) => control_error(e),
                },
                (Method::POST, None, None) => {
                    #[derive(Deserialize)]
                    #[serde(deny_unknown_fields)]
                    struct Create {
                        name: ServiceName,
                        #[serde(default)]
                        domains: Vec<DomainPattern>,
                    }
                    let create: Create = match json_body(req).await {
                        Ok(c) => c,
                        Err(reply) => return reply,
                    };
                    match node.control.create_service(&create.name, &create.domains) {
                        Ok(service) => reply(StatusCode::CREATED, &service),
                        Err(e) => control_error(e),
                    }
                }
                (Method::GET, Some(name), None) => match node.control.service(&name) {
                    Ok(Some(service)) => reply(StatusCode::OK, &service),
                    Ok(None) => {
                        control_error(ControlError::NoSuchService(name.as_str().to_owned()))
                    }
                    Err(e) => control_error(e),
                },
                (Method::DELETE, Some(name), None) => match node.control.delete_service(&name) {
                    Ok(()) => {
                        node.registry.remove(name.as_str());
                        reply(
                            StatusCode::OK,
                            &serde_json::json!({ "deleted": name.as_str() }),
                        )
                    }
                    Err(e) => control_error(e),
                },
                (Method::DELETE, Some(name), Some("versions")) => {
                    let Some(Ok(number)) = parts.get(2).map(|n| n.parse::<u32>()) else {
                        return refuse(
                            StatusCode::BAD_REQUEST,
                            "say which version: DELETE /admin/v1/services/{name}/versions/{number}",
                        );
                    };
                    match node.control.delete_version(&name, number) {
                        Ok(version) => reply(StatusCode::OK, &version),
                        Err(e) => control_error(e),
                    }
                }
                (Method::GET, Some(name), Some("versions")) => match node.control.versions(&name) {
                    Ok(versions) => reply(StatusCode::OK, &versions),
                    Err(e) => control_error(e),
                },
                (Method::POST, Some(name), Some("versions")) => {
                    upload(node, &name, req, &principal.name).await
                }
                (Method::POST, Some(name), Some("activate")) => {
                    #[derive(Deserialize)]
                    #[serde(deny_unknown_fields)]
                    struct Activate {
                        version: u32,
                    }
                    let activate: Activate = match json_body(req).await {
                        Ok(a) => a,
                        Err(reply) => return reply,
                    };
                    activate_version(node, &name, Some(activate.version)).await
                }
                (Method::POST, Some(name), Some("rollback")) => {
                    activate_version(node, &name, None).await
                }
                _ => refuse(StatusCode::NOT_FOUND, "no such route"),
            }
        })
    }
}

/// One KV operation (`verge kv`) on a store of the service's active version: reads
/// need the service's read right, writes its write right.
async fn kv(
    node: &Arc<Node>,
    principal: &Principal,
    name: &ServiceName,
    store: &str,
    req: Request<Incoming>,
) -> Reply {
    // The scope first, so a token outside it learns nothing from the body's errors.
    let need = |write| Need {
        service: Some(name.as_str()),
        write,
    };
    if let Err(why) = principal.check(need(false)) {
        return forbidden(&why);
    }
    let op: Op = match json_body(req).await {
        Ok(op) => op,
        Err(reply) => return reply,
    };
    if matches!(op, Op::Put { .. } | Op::Delete { .. })
        && let Err(why) = principal.check(need(true))
    {
        return forbidden(&why);
    }
    let Some(routed) = node.registry.by_name(name.as_str()) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "service `{}` has no active version: its KV stores are those its package declares",
                name.as_str()
            ),
        );
    };
    let config = routed.app.config();
    let Some(declared) = config.kv_stores.iter().find(|s| s.name == store) else {
        let names: Vec<&str> = config.kv_stores.iter().map(|s| s.name.as_str()).collect();
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "service `{}` declares no KV store `{store}` (it declares: {})",
                name.as_str(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        );
    };
    let ns = Namespace::new(&config.name, &declared.name, declared.limits);
    let kv = node.runtime.config().node.kv.clone();
    match tokio::task::spawn_blocking(move || kv_ops::run(&kv, &ns, op)).await {
        Ok(Ok(answer)) => reply(StatusCode::OK, &answer),
        Ok(Err(e)) => refuse(StatusCode::UNPROCESSABLE_ENTITY, e.error),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Streams an upload to disk while hashing it, reads the package, compiles it, and
/// records the version. Any failure leaves no version behind.
async fn upload(
    node: &Arc<Node>,
    name: &ServiceName,
    req: Request<Incoming>,
    uploaded_by: &str,
) -> Reply {
    if let Err(e) = node
        .control
        .service(name)
        .and_then(|s| s.ok_or_else(|| ControlError::NoSuchService(name.as_str().to_owned())))
    {
        return control_error(e);
    }
    let mut spool = match tempfile::tempfile() {
        Ok(file) => file,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let mut body = req.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the upload broke: {e}")),
        };
        if let Some(data) = frame.data_ref() {
            received += data.len() as u64;
            if received > node.max_package_bytes {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "packages on this node are limited to {} bytes (--max-package-size); nothing was recorded",
                        node.max_package_bytes
                    ),
                );
            }
            if let Err(e) = spool.write_all(data) {
                return refuse(StatusCode::INTERNAL_SERVER_ERROR, e);
            }
        }
    }
    let node2 = node.clone();
    let checked = tokio::task::spawn_blocking(move || check_and_store(&node2, spool)).await;
    let (sha256, size) = match checked {
        Ok(Ok(stored)) => stored,
        Ok(Err((status, why))) => return refuse(status, why),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let version = NewVersion {
        sha256,
        size,
        uploaded_by: uploaded_by.to_owned(),
    };
    match node.control.add_version(name, version) {
        Ok(version) => reply(StatusCode::CREATED, &version),
        Err(e) => control_error(e),
    }
}

/// Activates `version` (or rolls back when `None`): the app is loaded and routed
/// first, then recorded, so a version that fails to load is never the active one.
async fn activate_version(node: &Arc<Node>, name: &ServiceName, version: Option<u32>) -> Reply {
    let service = match node.control.service(name) {
        Ok(Some(service)) => service,
        Ok(None) => return control_error(ControlError::NoSuchService(name.as_str().to_owned())),
        Err(e) => return control_error(e),
    };
    let number = match version {
        Some(n) => n,
        None => match service.history.last() {
            Some(&n) => n,
            None => {
                return control_error(ControlError::NothingToRollBack(name.as_str().to_owned()));
            }
        },
    };
    if let Err(e) = node.control.versions(name).and_then(|vs| {
        vs.iter()
            .any(|v| v.number == number)
            .then_some(())
            .ok_or(ControlError::NoSuchVersion {
                service: name.as_str().to_owned(),
                version: number,
            })
    }) {
        return control_error(e);
    }
    let node2 = node.clone();
    let loaded = tokio::task::spawn_blocking(move || node2.serve_version(&service, number)).await;
    match loaded {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
    let recorded = match version {
        Some(n) => node.control.activate(name, n),
        None => node.control.rollback(name),
    };
    match recorded {
        Ok(service) => reply(StatusCode::OK, &service),
        Err(e) => control_error(e),
    }
}

/// Reads the spooled upload as a package, compiles it (so a component that does not
/// compile or serve wasi:http is refused now, and activating it later is quick),
/// then stores it by its SHA-256. The error is the status and the reason.
fn check_and_store(
    node: &Node,
    mut spool: std::fs::File,
) -> Result<(String, u64), (StatusCode, String)> {
    use std::io::Seek;
    let internal = |e: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    spool.rewind().map_err(internal)?;
    let package = Package::read_from(std::io::BufReader::new(&spool), node.max_package_bytes)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("not a valid package: {e}")))?;
    let prepared = crate::commands::serve::prepare_packaged(
        package,
        std::path::Path::new("the upload"),
        &verge_manifest::LimitsSection::default(),
    )
    .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))?;
    if let crate::commands::serve::Component::Bytes { bytes, .. } = &prepared.component {
        verge_runtime::App::load(&node.runtime, bytes, prepared.config.clone()).map_err(|e| {
            let hint = match e {
                verge_runtime::LoadError::MemoryLimitTooLarge { .. } => {
                    "; start the node with a larger --max-memory-per-instance"
                }
                _ => "",
            };
            let why = anyhow::Error::from(e);
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the package does not load: {why:#}{hint}"),
            )
        })?;
    }
    spool.rewind().map_err(internal)?;
    node.packages
        .put(&spool, node.max_package_bytes, None)
        .map_err(|e| match e {
            PackageStoreError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        })
}

/// The node's tokens: its root token, and the scoped ones in the control state
/// (`vrg_ID_SECRET`, found by id, the secret compared by its SHA-256).
pub(crate) struct NodeAuth {
    pub(crate) root: RootToken,
    pub(crate) control: Arc<dyn ControlState>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Authenticator for NodeAuth {
    fn authenticate(&self, token: &str) -> Result<Principal, Denied> {
        if let Ok(root) = self.root.authenticate(token) {
            return Ok(root);
        }
        let (id, secret) = token
            .strip_prefix("vrg_")
            .and_then(|t| t.split_once('_'))
            .ok_or(Denied::Unknown)?;
        let record = self
            .control
            .token(id)
            .ok()
            .flatten()
            .ok_or(Denied::Unknown)?;
        let presented = sha256_hex(secret.as_bytes());
        if !verge_server::admin::constant_time_eq(
            presented.as_bytes(),
            record.secret_sha256.as_bytes(),
        ) {
            return Err(Denied::Unknown);
        }
        // Expiry is told only to whoever holds the secret.
        if let Some(at) = record.expires_at_ms
            && now_ms() >= at
        {
            return Err(Denied::Expired {
                name: record.name,
                at: humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(at),
                )
                .to_string(),
            });
        }
        Ok(Principal {
            name: record.name,
            scope: record.service.map_or(Scope::Node, Scope::Service),
            right: if record.write {
                Right::Write
            } else {
                Right::Read
            },
        })
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `/admin/v1/tokens`.
pub(crate) struct TokensApi(pub(crate) Arc<Node>);

fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl AdminRoutes for TokensApi {
    fn handle(
        &self,
        req: Request<Incoming>,
        principal: Principal,
    ) -> Pin<Box<dyn std::future::Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            let node = &self.0;
            let path = req.uri().path().trim_end_matches('/').to_owned();
            let id = path
                .strip_prefix("/admin/v1/tokens")
                .unwrap_or("")
                .trim_start_matches('/')
                .to_owned();
            let method = req.method().clone();
            if let Err(why) = principal.check(Need {
                service: None,
                write: method != Method::GET,
            }) {
                return forbidden(&why);
            }
            /// A token as listed: never its secret.
            fn listed(t: &TokenRecord) -> serde_json::Value {
                serde_json::json!({
                    "id": t.id, "name": t.name, "service": t.service,
                    "write": t.write, "created_at_ms": t.created_at_ms,
                    "expires_at_ms": t.expires_at_ms,
                })
            }
            match (method, id.is_empty()) {
                (Method::GET, true) => match node.control.tokens() {
                    Ok(tokens) => reply(
                        StatusCode::OK,
                        &tokens.iter().map(listed).collect::<Vec<_>>(),
                    ),
                    Err(e) => control_error(e),
                },
                (Method::POST, true) => {
                    #[derive(Deserialize)]
                    #[serde(deny_unknown_fields)]
                    struct Create {
                        name: String,
                        #[serde(default)]
                        service: Option<ServiceName>,
                        #[serde(default)]
                        write: bool,
                        /// Seconds until the token stops working.
                        #[serde(default)]
                        expires_in_s: Option<u64>,
                    }
                    let create: Create = match json_body(req).await {
                        Ok(c) => c,
                        Err(reply) => return reply,
                    };
                    let name = create.name.trim();
                    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                        return refuse(
                            StatusCode::BAD_REQUEST,
                            "a token's name is 1 to 64 characters",
                        );
                    }
                    if let Some(service) = &create.service {
                        match node.control.service(service) {
                            Ok(Some(_)) => {}
                            Ok(None) => {
                                return control_error(ControlError::NoSuchService(
                                    service.as_str().to_owned(),
                                ));
                            }
                            Err(e) => return control_error(e),
                        }
                    }
                    let (id, secret) = match (random_hex(6), random_hex(24)) {
                        (Ok(id), Ok(secret)) => (id, secret),
                        (Err(e), _) | (_, Err(e)) => {
                            return refuse(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                format!("no randomness for a token: {e}"),
                            );
                        }
                    };
                    let record = TokenRecord {
                        id: id.clone(),
                        name: name.to_owned(),
                        service: create.service.map(|s| s.as_str().to_owned()),
                        write: create.write,
                        secret_sha256: sha256_hex(secret.as_bytes()),
                        created_at_ms: now_ms(),
                        expires_at_ms: create
                            .expires_in_s
                            .map(|s| now_ms().saturating_add(s.saturating_mul(1000))),
                    };
                    if let Err(e) = node.control.add_token(record.clone()) {
                        return control_error(e);
                    }
                    let mut body = listed(&record);
                    body["token"] = format!("vrg_{id}_{secret}").into();
                    reply(StatusCode::CREATED, &body)
                }
                (Method::DELETE, false) => match node.control.revoke_token(&id) {
                    Ok(true) => reply(StatusCode::OK, &serde_json::json!({ "revoked": id })),
                    Ok(false) => refuse(StatusCode::NOT_FOUND, format!("no token with id `{id}`")),
                    Err(e) => control_error(e),
                },
                _ => refuse(StatusCode::NOT_FOUND, "no such route"),
            }
        })
    }
}
