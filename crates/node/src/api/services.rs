//! `/admin/v1/services`: services, versions, activation, and the KV route.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::http::{Method, StatusCode};
use verge_control::{ControlError, ServiceName};
use verge_server::admin::{AdminRequest, AdminRoutes, Need, Principal, Reply, Route, forbidden};

use super::{control_error, deploy_error, json_body, refuse, reply};
use crate::Node;
use crate::deploy::DeployError;
use crate::wire::{Activate, Activated, CreateService, Deleted, ServiceInfo, VersionInfo};

pub(super) struct ServicesApi(pub(super) Arc<Node>);

impl AdminRoutes for ServicesApi {
    fn routes(&self) -> &'static [Route] {
        const ROUTES: &[Route] = &[
            Route::new("/admin/v1/services", &[Method::GET, Method::POST]),
            Route::new("/admin/v1/services/{name}", &[Method::GET, Method::DELETE]),
            Route::new(
                "/admin/v1/services/{name}/versions",
                &[Method::GET, Method::POST],
            ),
            Route::new(
                "/admin/v1/services/{name}/versions/{number}",
                &[Method::DELETE],
            ),
            Route::new("/admin/v1/services/{name}/activate", &[Method::POST]),
            Route::new("/admin/v1/services/{name}/rollback", &[Method::POST]),
            Route::new("/admin/v1/services/{name}/kv", &[Method::GET]),
            Route::new("/admin/v1/services/{name}/kv/{store}", &[Method::POST]),
        ];
        ROUTES
    }

    fn handle(
        &self,
        req: AdminRequest,
        principal: Principal,
    ) -> Pin<Box<dyn std::future::Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            let path = req.uri().path().trim_end_matches('/').to_owned();
            let rest = path.strip_prefix("/admin/v1/services").unwrap_or("");
            let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
            let node = &self.0;
            let method = req.method().clone();
            let name = match parts.first().map(|segment| service_name(segment)) {
                Some(Ok(name)) => Some(name),
                Some(Err(e)) => return refuse(StatusCode::BAD_REQUEST, e),
                None => None,
            };
            let action = parts.get(1).copied();
            if let (Some(name), Some("kv")) = (&name, action) {
                return match (parts.get(2), parts.len(), &method) {
                    (None, 2, &Method::GET) => super::kv::stores(node, &principal, name),
                    (Some(store), 3, &Method::POST) => {
                        super::kv::kv(node, &principal, name, store, req).await
                    }
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
                (Method::GET, None, None) => match node.control.services().await {
                    Ok(services) => reply(
                        StatusCode::OK,
                        &services.iter().map(ServiceInfo::from).collect::<Vec<_>>(),
                    ),
                    Err(e) => control_error(e),
                },
                (Method::POST, None, None) => {
                    let create: CreateService = match json_body(req).await {
                        Ok(c) => c,
                        Err(reply) => return reply,
                    };
                    match node
                        .control
                        .create_service(&create.name, &create.domains)
                        .await
                    {
                        Ok(service) => reply(StatusCode::CREATED, &ServiceInfo::from(&service)),
                        Err(e) => control_error(e),
                    }
                }
                (Method::GET, Some(name), None) => match node.control.service(&name).await {
                    Ok(Some(service)) => reply(StatusCode::OK, &ServiceInfo::from(&service)),
                    Ok(None) => {
                        control_error(ControlError::NoSuchService(name.as_str().to_owned()))
                    }
                    Err(e) => control_error(e),
                },
                (Method::DELETE, Some(name), None) => match node.delete_service(&name).await {
                    Ok(()) => reply(
                        StatusCode::OK,
                        &Deleted {
                            deleted: name.as_str().to_owned(),
                        },
                    ),
                    Err(e) => deploy_error(e),
                },
                (Method::DELETE, Some(name), Some("versions")) => {
                    let Some(Ok(number)) = parts.get(2).map(|n| n.parse::<u32>()) else {
                        return refuse(
                            StatusCode::BAD_REQUEST,
                            "say which version: DELETE /admin/v1/services/{name}/versions/{number}",
                        );
                    };
                    match node.control.delete_version(&name, number).await {
                        Ok(version) => reply(StatusCode::OK, &VersionInfo::from(&version)),
                        Err(e) => control_error(e),
                    }
                }
                (Method::GET, Some(name), Some("versions")) => {
                    match node.control.versions(&name).await {
                        Ok(versions) => reply(
                            StatusCode::OK,
                            &versions.iter().map(VersionInfo::from).collect::<Vec<_>>(),
                        ),
                        Err(e) => control_error(e),
                    }
                }
                (Method::POST, Some(name), Some("versions")) => {
                    upload(node, name, req, principal.name).await
                }
                (Method::POST, Some(name), Some("activate")) => {
                    let wait = match wait(&req) {
                        Ok(wait) => wait,
                        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
                    };
                    let body: Activate = match json_body(req).await {
                        Ok(a) => a,
                        Err(reply) => return reply,
                    };
                    activate(node, name, Some(body.version), wait).await
                }
                (Method::POST, Some(name), Some("rollback")) => match wait(&req) {
                    Ok(wait) => activate(node, name, None, wait).await,
                    Err(why) => refuse(StatusCode::BAD_REQUEST, why),
                },
                _ => refuse(StatusCode::NOT_FOUND, "no such route"),
            }
        })
    }
}

/// The service a path segment names, percent-decoded (`%73hop` is `shop`).
fn service_name(segment: &str) -> Result<ServiceName, String> {
    let name = verge_server::admin::percent_decode(segment)
        .ok_or_else(|| format!("the service name `{segment}` has a malformed %-escape"))?;
    ServiceName::named(&name, "service")
}

/// Streams an upload to a temporary file (refused past the node's package limit
/// before more is read), then checks, stores and records it.
async fn upload(node: &Arc<Node>, name: ServiceName, req: AdminRequest, by: String) -> Reply {
    // A missing service is told before the body is read.
    match node.control.service(&name).await {
        Ok(Some(_)) => {}
        Ok(None) => return control_error(ControlError::NoSuchService(name.as_str().to_owned())),
        Err(e) => return control_error(e),
    }
    let mut spool = match tempfile::tempfile() {
        Ok(file) => file,
        Err(e) => return deploy_error(DeployError::Spool(e)),
    };
    let limit = node.max_package_bytes();
    let mut body = req.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the upload broke: {e}")),
        };
        if let Some(data) = frame.data_ref() {
            received += data.len() as u64;
            if received > limit {
                return deploy_error(DeployError::TooLarge { limit });
            }
            if let Err(e) = spool.write_all(data) {
                return deploy_error(DeployError::Spool(e));
            }
        }
    }
    match node.add_version(&name, spool, &by).await {
        Ok(version) => reply(StatusCode::CREATED, &VersionInfo::from(&version)),
        Err(e) => deploy_error(e),
    }
}

/// How long an activation waits for every live node to serve it: `?wait=SECONDS`
/// (decimals allowed, at most 300), 30 s by default.
fn wait(req: &AdminRequest) -> Result<Duration, String> {
    let Some(value) = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("wait="))
    else {
        return Ok(DEFAULT_WAIT);
    };
    match value.parse::<f64>() {
        Ok(s) if (0.0..=300.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "`wait={value}`: give the seconds to wait, from 0 to 300"
        )),
    }
}

const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Activates (or rolls back), then waits until every live node serves the version
/// or `wait` ends, and answers what each node serves.
async fn activate(
    node: &Arc<Node>,
    name: ServiceName,
    version: Option<u32>,
    wait: Duration,
) -> Reply {
    match node.activate(&name, version).await {
        Ok(service) => {
            let number = service.active.unwrap_or_default();
            let nodes = node
                .rollout(name.as_str(), number, service.revision, wait)
                .await;
            reply(
                StatusCode::OK,
                &Activated {
                    service: ServiceInfo::from(&service),
                    nodes,
                },
            )
        }
        Err(e) => deploy_error(e),
    }
}
