//! The control plane's state: services (tenants), their versions (uploaded packages),
//! which version is active, the domains each service answers, admin tokens, and the
//! package bytes.
//!
//! - [`ControlStore`]: the storage a control plane needs: a revisioned key-value map
//!   with compare-and-swap writes and a change feed. [`RedbStore`] keeps it in one
//!   redb file; a fleet puts a JetStream KV bucket behind the same trait.
//! - [`Control`]: the rules (a domain serves one service, versions number up,
//!   activation and rollback), once, over any store; every change a compare-and-swap
//!   on what it read, so concurrent changes on two nodes never overwrite each other.
//! - [`conformance`]: the rules a store and the control state over it keep, as public
//!   functions, so a fleet's store passes the same tests [`RedbStore`] passes.
//! - [`PackageStore`]: package bytes by SHA-256, verified on the way in and out;
//!   [`DiskPackages`] keeps them in a directory (written atomically), and every node
//!   keeps its own copy there; a fleet shares them through JetStream's object store.
//! - [`ReplicatedStore`]: a shared store (a fleet's) with a local [`Replica`] that
//!   answers reads while the shared one is cut off, and refuses changes meanwhile.

pub mod conformance;
mod control;
pub mod keys;
mod model;
mod packages;
mod redb_store;
mod replica;
mod replicated;
mod store;

pub use control::Control;
pub use model::{NewVersion, Service, ServiceName, TokenRecord, Version};
pub use packages::{DiskPackages, PackageStore, PackageStoreError, is_sha256, sha256_hex};
pub use redb_store::{FORMAT, KEPT_CHANGES, RedbStore};
pub use replica::Replica;
pub use replicated::{Link, ReplicatedStore};
pub use store::{Change, Changes, ControlStore, Entry, Expect, advance};

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
    /// The state was written by a newer Verge, whose layout this one cannot read.
    #[error(
        "the control state has format {found}, written by a newer Verge; this one reads up to format {supported}: upgrade Verge"
    )]
    NewerFormat { found: u64, supported: u64 },
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

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_redb_store_keeps_the_store_and_control_rules() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        crate::conformance::run(|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("control-{i}.redb"));
            async move {
                std::sync::Arc::new(crate::RedbStore::open(&path).unwrap())
                    as std::sync::Arc<dyn crate::ControlStore>
            }
        })
        .await;
    }

    #[tokio::test]
    async fn disk_packages_keep_the_package_store_rules() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        crate::conformance::packages::run(|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("packages-{i}"));
            async move {
                std::sync::Arc::new(crate::DiskPackages::open(&path).unwrap())
                    as std::sync::Arc<dyn crate::PackageStore>
            }
        })
        .await;
    }
}
