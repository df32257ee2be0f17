//! Deploys without HTTP: checking and storing an uploaded package as a service's
//! next version, and activating (or rolling back) a version. The admin API's
//! service routes are a thin layer over these.
//!
//! A change is recorded in the control state first and applied by the node's
//! reconciler, like a change made through any other node; the call returns once
//! this node serves what was recorded.

use std::io::Seek;
use std::time::Duration;

use verge_control::{
    ControlError, NewVersion, PackageStore, PackageStoreError, Service, ServiceName, Version,
};
use verge_manifest::{LimitsSection, Package, PackageError};
use verge_runtime::LoadError;

use crate::app::{self, Component};
use crate::node::{Node, VersionLoadError};
use crate::report::chain;

/// How long a change may take to be applied on this node before the call says so.
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// An upload checked and stored: its SHA-256, its size, and its compiled code
/// (named) when the fleet shares code.
type Checked = (String, u64, Option<(String, Vec<u8>)>);

/// Why a deploy step was refused. Nothing is recorded when one is.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("not a valid package: {0}")]
    InvalidPackage(PackageError),
    /// The package's settings cannot be used (e.g. a secret's variable is not set).
    #[error("{}", chain(.0))]
    Settings(app::AppError),
    /// Adding the package's seed items to its stores failed; nothing was recorded.
    #[error("{}", chain(.0))]
    Seed(app::AppError),
    #[error("the package does not load: {why}{hint}")]
    DoesNotLoad { why: String, hint: &'static str },
    #[error(
        "packages on this node are limited to {limit} bytes (--max-package-size); nothing was recorded"
    )]
    TooLarge { limit: u64 },
    #[error("storing the package: {}", chain(.0))]
    Packages(PackageStoreError),
    #[error("spooling the upload: {0}")]
    Spool(std::io::Error),
    /// The version could not be loaded, so it was not activated.
    #[error("{}", chain(.0))]
    Activation(VersionLoadError),
    /// Recorded, but this node had not applied it when the call gave up waiting.
    #[error("recorded at revision {revision}, but this node had not applied it after {waited:?}")]
    NotApplied { revision: u64, waited: Duration },
    #[error("the node is stopping")]
    Stopping,
}

impl Node {
    /// The largest package an upload may be.
    pub fn max_package_bytes(&self) -> u64 {
        self.max_package_bytes
    }

    /// Reads `spool` (an uploaded package) as a package, compiles it (so a component
    /// that does not compile or serve wasi:http is refused now, and activating it
    /// later is quick), stores it by its SHA-256 and records it as the service's next
    /// version.
    pub async fn add_version(
        &self,
        name: &ServiceName,
        spool: std::fs::File,
        uploaded_by: &str,
    ) -> Result<Version, DeployError> {
        // A node cut off from its fleet could not record the version: say so before
        // compiling it.
        self.writable().await?;
        if self.control.service(name).await?.is_none() {
            return Err(ControlError::NoSuchService(name.as_str().to_owned()).into());
        }
        let node = self.myself.upgrade().ok_or(DeployError::Stopping)?;
        let service = name.clone();
        let (sha256, size, code) =
            tokio::task::spawn_blocking(move || node.check_and_store(&service, spool))
                .await
                .map_err(|_| DeployError::Stopping)??;
        // In a fleet, the other nodes fetch it from there, with its code when the
        // fleet shares code: before the version is recorded, so a node that hears of
        // it finds both.
        if let Some(fleet) = &self.fleet {
            let bytes = self.packages.get(&sha256).map_err(DeployError::Packages)?;
            let shared = fleet.packages().map_err(DeployError::Packages)?;
            PackageStore::put(shared, &sha256, bytes)
                .await
                .map_err(DeployError::Packages)?;
            if let Some((key, code)) = code {
                self.share_code(&key, &code).await;
            }
        }
        let version = NewVersion {
            sha256,
            size,
            uploaded_by: uploaded_by.to_owned(),
        };
        Ok(self.control.add_version(name, version).await?)
    }

    /// The blocking part of an upload: read, compile, seed the service's stores with
    /// the items they lack (here once, for the whole fleet; nodes do not seed when they
    /// load a version), store. Returns the package's SHA-256 and size, and its
    /// compiled code when the fleet shares code.
    fn check_and_store(
        &self,
        service: &ServiceName,
        mut spool: std::fs::File,
    ) -> Result<Checked, DeployError> {
        spool.rewind().map_err(DeployError::Spool)?;
        let package = Package::read_from(std::io::BufReader::new(&spool), self.max_package_bytes)
            .map_err(DeployError::InvalidPackage)?;
        let prepared = app::from_package(
            package,
            std::path::Path::new("the upload"),
            &LimitsSection::default(),
        )
        .map_err(DeployError::Settings)?;
        let mut code = None;
        if let Component::Bytes { bytes, .. } = &prepared.component {
            verge_runtime::App::load(&self.runtime, bytes, prepared.config.clone()).map_err(
                |e| DeployError::DoesNotLoad {
                    hint: match e {
                        LoadError::MemoryLimitTooLarge { .. } => {
                            "; start the node with a larger --max-memory-per-instance"
                        }
                        _ => "",
                    },
                    why: chain(&e),
                },
            )?;
            code = self.code_to_share(bytes);
        }
        let mut config = prepared.config;
        config.name = service.as_str().to_owned();
        app::seed_stores(&self.runtime.config().node.kv, &config, &self.report)
            .map_err(DeployError::Seed)?;
        spool.rewind().map_err(DeployError::Spool)?;
        let (sha256, size) = self
            .packages
            .put(&spool, self.max_package_bytes, None)
            .map_err(|e| match e {
                PackageStoreError::TooLarge { .. } => DeployError::TooLarge {
                    limit: self.max_package_bytes,
                },
                other => DeployError::Packages(other),
            })?;
        Ok((sha256, size, code))
    }

    /// Activates `version` of the service (or rolls back to the one active before
    /// when `None`). The version is loaded here first, so one that fails to load is
    /// refused and never recorded as active; then the activation is recorded (a
    /// compare-and-swap: a concurrent activation elsewhere makes this one a
    /// conflict), and the call returns once this node's reconciler serves it.
    pub async fn activate(
        &self,
        name: &ServiceName,
        version: Option<u32>,
    ) -> Result<Service, DeployError> {
        self.writable().await?;
        let service = self
            .control
            .service(name)
            .await?
            .ok_or_else(|| ControlError::NoSuchService(name.as_str().to_owned()))?;
        let number = match version {
            Some(n) => n,
            None => *service
                .history
                .last()
                .ok_or_else(|| ControlError::NothingToRollBack(name.as_str().to_owned()))?,
        };
        let record = self.control.version(name, number).await?.ok_or_else(|| {
            ControlError::NoSuchVersion {
                service: name.as_str().to_owned(),
                version: number,
            }
        })?;
        self.ensure_package(&record)
            .await
            .map_err(DeployError::Packages)?;
        let node = self.myself.upgrade().ok_or(DeployError::Stopping)?;
        let service2 = service.clone();
        let app = tokio::task::spawn_blocking(move || node.load_version(&service2, &record, true))
            .await
            .map_err(|_| DeployError::Stopping)?
            .map_err(DeployError::Activation)?;
        self.reconciler.preload(name.as_str(), number, app);
        let recorded = match version {
            Some(n) => self.control.activate(name, n).await,
            None => self.control.rollback(name).await,
        };
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(e) => {
                self.reconciler.forget_preloaded(name.as_str(), number);
                return Err(e.into());
            }
        };
        self.applied(recorded.revision).await?;
        Ok(recorded)
    }

    /// Deletes a service; it stops being served before the call returns.
    pub async fn delete_service(&self, name: &ServiceName) -> Result<(), DeployError> {
        let revision = self.control.delete_service(name).await?;
        self.applied(revision).await
    }

    /// Waits until this node has applied `revision`.
    async fn applied(&self, revision: u64) -> Result<(), DeployError> {
        if self.reconciler.wait_applied(revision, APPLY_TIMEOUT).await {
            Ok(())
        } else {
            Err(DeployError::NotApplied {
                revision,
                waited: APPLY_TIMEOUT,
            })
        }
    }
}
