//! What the control plane records.

use serde::{Deserialize, Serialize};
use verge_manifest::{AppName, DomainPattern};

/// A service's name: like an app's, 1–63 of `a-z`, `0-9` and `-`, starting with a
/// letter. It is the namespace of the service's KV data and cache objects.
pub type ServiceName = AppName;

/// A service: a tenant of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: ServiceName,
    pub domains: Vec<DomainPattern>,
    /// The version requests go to; `None` until one is activated.
    pub active: Option<u32>,
    /// Versions active before the current one, most recent last (for rollback).
    pub history: Vec<u32>,
    /// The number the next uploaded version gets.
    pub next_version: u32,
    pub created_at_ms: u64,
    /// The store's revision of this record when it was read: what a change made
    /// from it expects to find (compare-and-swap); the stored copy's is ignored.
    #[serde(default)]
    pub revision: u64,
}

/// An uploaded package, about to be recorded as a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVersion {
    /// The package's SHA-256 (hex): where its bytes are in the [`crate::PackageStore`].
    pub sha256: String,
    pub size: u64,
    /// Who uploaded it (the token's name).
    pub uploaded_by: String,
}

/// An admin token as stored: its secret only as a SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public part of the token (`vrg_ID_SECRET`), 12 hex digits.
    pub id: String,
    pub name: String,
    /// `None`: the whole node; `Some(service)`: that service only.
    pub service: Option<String>,
    /// Read and write, or read only.
    pub write: bool,
    /// SHA-256 of the secret part, hex.
    pub secret_sha256: String,
    pub created_at_ms: u64,
    /// When the token stops working; `None`: when revoked.
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
}

/// A version of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub number: u32,
    pub sha256: String,
    pub size: u64,
    pub uploaded_by: String,
    pub uploaded_at_ms: u64,
}
