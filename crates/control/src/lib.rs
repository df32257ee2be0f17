//! The control plane's state: services (tenants), their versions (uploaded packages),
//! which version is active, the domains each service answers, and the package bytes.
//!
//! - [`ControlState`]: the calls the node and its admin API make. [`RedbState`] keeps
//!   them in one redb file (every change one durable transaction); a fleet will put
//!   NATS JetStream behind the same trait, with no change in the callers.
//! - [`conformance`]: the rules a [`ControlState`] keeps, as public functions, so a
//!   fleet's implementation passes the same tests [`RedbState`] passes.
//! - [`PackageStore`]: package bytes on disk, content-addressed by SHA-256, written
//!   atomically.

pub mod conformance;
mod model;
mod packages;
mod redb_state;

pub use model::{NewVersion, Service, ServiceName, TokenRecord, Version};
pub use packages::{PackageStore, PackageStoreError};
pub use redb_state::RedbState;

use verge_manifest::DomainPattern;

/// Why a control-plane call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no service named `{0}`")]
    NoSuchService(String),
    #[error("a service named `{0}` exists already")]
    ServiceExists(String),
    #[error("service `{service}` has no version {version}")]
    NoSuchVersion { service: String, version: u32 },
    #[error("the domain `{domain}` belongs to service `{owner}`; a domain serves one service")]
    DomainTaken { domain: String, owner: String },
    #[error(
        "version {version} of service `{service}` is the active one; activate another version first"
    )]
    VersionActive { service: String, version: u32 },
    #[error("service `{0}` has no earlier active version to roll back to")]
    NothingToRollBack(String),
    #[error("an admin token with id `{0}` exists already")]
    TokenExists(String),
    /// The state's storage cannot be reached now (in a fleet: NATS is cut off). Reads
    /// of the local copy may still answer; a change must wait.
    #[error("the control state is unavailable: {0}")]
    Unavailable(String),
    /// A change lost a compare-and-swap to a concurrent change; nothing was written.
    #[error("a concurrent change won: {0}")]
    Conflict(String),
    /// Anything else: I/O, a full disk, a corrupt file.
    #[error("the control state could not be read or written: {0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl ControlError {
    /// A [`ControlError::Other`] from any error or message.
    pub fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Other(e.into())
    }
}

/// What the node and its admin API do with services and versions.
pub trait ControlState: Send + Sync + 'static {
    /// Creates a service answering `domains`, none of which another service has.
    fn create_service(
        &self,
        name: &ServiceName,
        domains: &[DomainPattern],
    ) -> Result<Service, ControlError>;
    /// Deletes a service, its versions' records and its domains.
    fn delete_service(&self, name: &ServiceName) -> Result<(), ControlError>;
    fn services(&self) -> Result<Vec<Service>, ControlError>;
    fn service(&self, name: &ServiceName) -> Result<Option<Service>, ControlError>;
    /// Replaces the domains a service answers.
    fn set_domains(
        &self,
        name: &ServiceName,
        domains: &[DomainPattern],
    ) -> Result<Service, ControlError>;
    /// Records an uploaded package as the service's next version (not active yet).
    fn add_version(&self, name: &ServiceName, version: NewVersion)
    -> Result<Version, ControlError>;
    /// The service's versions, oldest first.
    fn versions(&self, name: &ServiceName) -> Result<Vec<Version>, ControlError>;
    /// Deletes a version that is not the active one (and forgets it as a rollback
    /// target); the record it was.
    fn delete_version(&self, name: &ServiceName, number: u32) -> Result<Version, ControlError>;
    /// Makes `number` the active version.
    fn activate(&self, name: &ServiceName, number: u32) -> Result<Service, ControlError>;
    /// Makes the version active before the current one active again.
    fn rollback(&self, name: &ServiceName) -> Result<Service, ControlError>;
    /// Records an admin token (its id must be new).
    fn add_token(&self, token: TokenRecord) -> Result<(), ControlError>;
    fn token(&self, id: &str) -> Result<Option<TokenRecord>, ControlError>;
    fn tokens(&self) -> Result<Vec<TokenRecord>, ControlError>;
    /// Revokes a token; whether it existed.
    fn revoke_token(&self, id: &str) -> Result<bool, ControlError>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_redb_state_keeps_the_control_rules() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::cell::Cell::new(0);
        crate::conformance::run(|| {
            n.set(n.get() + 1);
            let path = dir.path().join(format!("control-{}.redb", n.get()));
            Box::new(crate::RedbState::open(&path).unwrap())
        });
    }
}
