//! Deploys without HTTP: checking and storing an uploaded package as a service's
//! next version, and activating (or rolling back) a version. The admin API's
//! service routes are a thin layer over these.

use std::io::Seek;

use verge_control::{ControlError, NewVersion, PackageStoreError, Service, ServiceName, Version};
use verge_manifest::{LimitsSection, Package, PackageError};
use verge_runtime::LoadError;

use crate::app::{self, Component};
use crate::node::{Node, VersionLoadError};
use crate::report::chain;

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
}

impl Node {
    /// The largest package an upload may be.
    pub fn max_package_bytes(&self) -> u64 {
        self.max_package_bytes
    }

    /// Reads `spool` (an uploaded package) as a package, compiles it (so a component
    /// that does not compile or serve wasi:http is refused now, and activating it
    /// later is quick), stores it by its SHA-256 and records it as the service's next
    /// version. Blocking: compiling takes a while.
    pub fn add_version(
        &self,
        name: &ServiceName,
        mut spool: std::fs::File,
        uploaded_by: &str,
    ) -> Result<Version, DeployError> {
        if self.control.service(name)?.is_none() {
            return Err(ControlError::NoSuchService(name.as_str().to_owned()).into());
        }
        spool.rewind().map_err(DeployError::Spool)?;
        let package = Package::read_from(std::io::BufReader::new(&spool), self.max_package_bytes)
            .map_err(DeployError::InvalidPackage)?;
        let prepared = app::from_package(
            package,
            std::path::Path::new("the upload"),
            &LimitsSection::default(),
        )
        .map_err(DeployError::Settings)?;
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
        }
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
        let version = NewVersion {
            sha256,
            size,
            uploaded_by: uploaded_by.to_owned(),
        };
        Ok(self.control.add_version(name, version)?)
    }

    /// Activates `version` of the service (or rolls back to the one active before
    /// when `None`): the app is loaded and routed first, then recorded, so a version
    /// that fails to load is never the active one. Blocking: loading may compile.
    pub fn activate(
        &self,
        name: &ServiceName,
        version: Option<u32>,
    ) -> Result<Service, DeployError> {
        let service = self
            .control
            .service(name)?
            .ok_or_else(|| ControlError::NoSuchService(name.as_str().to_owned()))?;
        let number = match version {
            Some(n) => n,
            None => *service
                .history
                .last()
                .ok_or_else(|| ControlError::NothingToRollBack(name.as_str().to_owned()))?,
        };
        if !self
            .control
            .versions(name)?
            .iter()
            .any(|v| v.number == number)
        {
            return Err(ControlError::NoSuchVersion {
                service: name.as_str().to_owned(),
                version: number,
            }
            .into());
        }
        self.serve_version(&service, number)
            .map_err(DeployError::Activation)?;
        Ok(match version {
            Some(n) => self.control.activate(name, n)?,
            None => self.control.rollback(name)?,
        })
    }

    /// Deletes a service and stops serving it.
    pub fn delete_service(&self, name: &ServiceName) -> Result<(), ControlError> {
        self.control.delete_service(name)?;
        self.registry.remove(name.as_str());
        Ok(())
    }
}
