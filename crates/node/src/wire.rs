//! What the admin API sends and takes, as types both ends share: the node serialises
//! these, `verge` deserialises them. They are the API's contract (see
//! `docs/admin-api.openapi.json`), kept apart from the control state's records so
//! that storage can change without changing the API.

use serde::{Deserialize, Serialize};
use verge_control::{Service, ServiceName, TokenRecord, Version};
use verge_manifest::DomainPattern;

/// A service, as listed and returned by changes to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Service"))]
pub struct ServiceInfo {
    pub name: String,
    /// Host names, or `*.suffix` wildcards.
    pub domains: Vec<String>,
    /// The version requests go to; `None` until one is activated.
    pub active: Option<u32>,
    /// Versions active before, most recent last.
    pub history: Vec<u32>,
    pub next_version: u32,
    pub created_at_ms: u64,
    /// The control state's revision of the service: it grows with every change.
    pub revision: u64,
}

impl From<&Service> for ServiceInfo {
    fn from(s: &Service) -> Self {
        ServiceInfo {
            name: s.name.as_str().to_owned(),
            domains: s.domains.iter().map(|d| d.as_str().to_owned()).collect(),
            active: s.active,
            history: s.history.clone(),
            next_version: s.next_version,
            created_at_ms: s.created_at_ms,
            revision: s.revision,
        }
    }
}

/// An uploaded version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Version"))]
pub struct VersionInfo {
    pub number: u32,
    /// The package's SHA-256, hex.
    pub sha256: String,
    pub size: u64,
    /// The name of the token that uploaded it.
    pub uploaded_by: String,
    pub uploaded_at_ms: u64,
}

impl From<&Version> for VersionInfo {
    fn from(v: &Version) -> Self {
        VersionInfo {
            number: v.number,
            sha256: v.sha256.clone(),
            size: v.size,
            uploaded_by: v.uploaded_by.clone(),
            uploaded_at_ms: v.uploaded_at_ms,
        }
    }
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Token"))]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    /// The one service it may act on; `None`: the whole node.
    pub service: Option<String>,
    pub write: bool,
    pub created_at_ms: u64,
    pub expires_at_ms: Option<u64>,
}

impl From<&TokenRecord> for TokenInfo {
    fn from(t: &TokenRecord) -> Self {
        TokenInfo {
            id: t.id.clone(),
            name: t.name.clone(),
            service: t.service.clone(),
            write: t.write,
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms,
        }
    }
}

/// A token just made: its secret is in `token`, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct NewToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub token: String,
}

/// `POST /admin/v1/services`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    #[cfg_attr(test, schemars(with = "String"))]
    pub name: ServiceName,
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Vec<String>"))]
    pub domains: Vec<DomainPattern>,
}

/// `POST /admin/v1/services/{name}/activate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Activate {
    pub version: u32,
}

/// `POST /admin/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub service: Option<ServiceName>,
    #[serde(default)]
    pub write: bool,
    /// Seconds until the token stops working.
    #[serde(default)]
    pub expires_in_s: Option<u64>,
}

/// `DELETE /admin/v1/services/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Deleted {
    pub deleted: String,
}

/// `DELETE /admin/v1/tokens/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Revoked {
    pub revoked: String,
}

/// `GET /admin/v1/services/{name}/kv`: the KV stores its active version declares
/// (none without an active version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct KvStores {
    pub stores: Vec<String>,
}

/// Any refusal: 4xx or 5xx with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Error"))]
pub struct ApiError {
    pub error: String,
}

/// What a node serves for one service, as its heartbeat tells the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ServiceState {
    /// The active version as this node last applied it.
    pub version: u32,
    /// Why this node could not load that version (the one before still serves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// A node's heartbeat: what it publishes every few seconds and whenever what it
/// serves changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Heartbeat {
    pub name: String,
    /// The point of presence it is in (`--pop`).
    #[serde(default)]
    pub pop: Option<String>,
    pub verge_version: String,
    /// Whether the fleet's state answered it when it wrote this.
    pub connected: bool,
    /// The control revision it serves.
    pub applied_revision: u64,
    /// What it serves, by service. (The fleet's directory keeps this apart from the
    /// heartbeat proper and writes it only when it changes.)
    #[serde(default)]
    pub services: std::collections::BTreeMap<String, ServiceState>,
    /// Responses it has served since it started.
    pub requests: u64,
    pub started_at_ms: u64,
    /// It stopped (cleanly); this was its last heartbeat.
    #[serde(default)]
    pub left: bool,
    /// Services a `verge logs --tail` on it watches: the other nodes send it their
    /// lines of those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tailing: Vec<String>,
}

/// How recently a node was heard of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// A heartbeat within the last 7 seconds.
    Live,
    /// Heard of before, not lately: cut off, or stopped without saying so.
    Stale,
    /// Stopped cleanly.
    Gone,
}

/// A node, as `GET /admin/v1/nodes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "Node"))]
pub struct NodeInfo {
    #[serde(flatten)]
    pub heartbeat: Heartbeat,
    pub status: Liveness,
    /// Milliseconds since its last heartbeat (by the NATS server's clock).
    pub last_seen_ms_ago: u64,
}

/// `GET /admin/v1/nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Nodes {
    pub nodes: Vec<NodeInfo>,
    /// The latest control revision this node knows of: a node whose
    /// `applied_revision` is below it lags by the difference.
    pub revision: u64,
}

/// An activation or rollback: the service as recorded, and what each live node
/// serves now (`serving`, `failed: …`, `pending: …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Activated {
    #[serde(flatten)]
    pub service: ServiceInfo,
    pub nodes: std::collections::BTreeMap<String, String>,
}
