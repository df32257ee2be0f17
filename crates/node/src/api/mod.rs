//! The node's admin routes, on top of the server's (purge, logs, metrics, whoami):
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
//! | `POST /admin/v1/services/{name}/activate[?wait=S]` `{"version"}` | serve that version; answers once every live node serves it (or after `wait`, 30 s by default), with what each node serves |
//! | `POST /admin/v1/services/{name}/rollback[?wait=S]` | serve the one active before, the same way |
//! | `GET /admin/v1/traffic[?service=NAME]` | the last hour of traffic at 10 s resolution, per service and node (the server's route, over the node's history) |
//! | `GET /admin/v1/nodes` | the fleet's nodes, from their heartbeats: live, stale or gone, what each serves |
//! | `GET /admin/v1/services/{name}/kv` | the KV stores its active version declares |
//! | `POST /admin/v1/services/{name}/kv/{store}` (an operation, as `verge kv` sends it) | get, put, delete or list in a KV store of the active version |
//! | `GET /admin/v1/tokens` | the tokens (never their secrets) |
//! | `POST /admin/v1/tokens` `{"name", "service", "write"}` | make one: its secret is shown once |
//! | `DELETE /admin/v1/tokens/{id}` | revoke one |
//!
//! Tokens are scoped to the node or to one service, read or read-write; the node's
//! root token can do everything. A route outside a token's scope answers 403 with
//! the reason.

mod kv;
mod nodes;
mod services;
mod tokens;

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::http::StatusCode;
use verge_control::ControlError;
use verge_server::admin::{AdminApi, AdminRequest, Reply, RootToken};
use verge_store::{BackendError, KvError};

use crate::Node;
use crate::app;
use crate::auth::NodeAuth;
use crate::deploy::DeployError;

impl Node {
    /// The node's whole admin API (with the web console unless `--no-console`),
    /// callable in process ([`AdminApi::handle`]) or
    /// served by an [`verge_server::admin::AdminServer`].
    pub fn admin_api(self: &Arc<Self>, root_token: String) -> AdminApi {
        let api = AdminApi::new(
            root_token.clone(),
            self.registry.clone(),
            self.runtime.config().node.cache.clone(),
            self.metrics.clone(),
        )
        .with_authenticator(Arc::new(NodeAuth {
            root: RootToken(root_token),
            control: self.control.clone(),
        }))
        .with_logs(self.log.tap().clone())
        .with_traffic(self.traffic.clone())
        .with_routes(
            "/admin/v1/services",
            Arc::new(services::ServicesApi(self.clone())),
        )
        .with_routes(
            "/admin/v1/tokens",
            Arc::new(tokens::TokensApi(self.clone())),
        )
        .with_routes("/admin/v1/nodes", Arc::new(nodes::NodesApi(self.clone())));
        let api = match self.console {
            true => api.with_console(),
            false => api,
        };
        let api = match &self.purges {
            Some(purges) => api.with_purge_fanout(purges.clone()),
            None => api,
        };
        match self.link {
            Some(_) => api
                .with_status(Arc::new(crate::status::FleetStatus(Arc::downgrade(self))))
                .with_log_node(&self.name),
            None => api,
        }
    }
}

fn reply(status: StatusCode, body: &impl serde::Serialize) -> Reply {
    verge_server::admin::json(status, body)
}

fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Reply {
    reply(
        status,
        &crate::wire::ApiError {
            error: message.to_string(),
        },
    )
}

fn control_status(e: &ControlError) -> StatusCode {
    match e {
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
        ControlError::NewerFormat { .. } | ControlError::Other(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn control_error(e: ControlError) -> Reply {
    refuse(control_status(&e), e)
}

fn deploy_error(e: DeployError) -> Reply {
    let status = match &e {
        DeployError::Control(e) => control_status(e),
        DeployError::InvalidPackage(_) => StatusCode::BAD_REQUEST,
        DeployError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DeployError::Seed(app::AppError::SeedItem {
            source: KvError::Storage(BackendError::Unavailable(_)),
            ..
        }) => StatusCode::SERVICE_UNAVAILABLE,
        DeployError::Settings(_)
        | DeployError::Seed(_)
        | DeployError::DoesNotLoad { .. }
        | DeployError::Activation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DeployError::Packages(verge_control::PackageStoreError::Unavailable(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        DeployError::Packages(_) | DeployError::Spool(_) => StatusCode::INTERNAL_SERVER_ERROR,
        DeployError::NotApplied { .. } => StatusCode::GATEWAY_TIMEOUT,
        DeployError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
    };
    refuse(status, e)
}

/// The request's JSON body (at most 64 KiB).
async fn json_body<T: serde::de::DeserializeOwned>(req: AdminRequest) -> Result<T, Reply> {
    json_body_within(req, 64 << 10).await
}

/// The request's JSON body, at most `limit` bytes.
async fn json_body_within<T: serde::de::DeserializeOwned>(
    req: AdminRequest,
    limit: usize,
) -> Result<T, Reply> {
    let body = http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| refuse(StatusCode::PAYLOAD_TOO_LARGE, e))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| refuse(StatusCode::BAD_REQUEST, e))
}

#[cfg(test)]
mod contract;
#[cfg(test)]
mod tests;
