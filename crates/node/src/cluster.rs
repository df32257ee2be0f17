//! Joining a fleet: the node's control state and packages on NATS JetStream instead
//! of its own files. Without a cluster a node is exactly the single, embedded node.

use std::sync::Arc;

use verge_control::{ControlStore, PackageStore};
use verge_fleet::{BucketConfig, JetStreamStore, ObjectPackages};

/// Where the fleet's state is.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS servers to connect to (`nats://HOST:PORT`); any one will do.
    pub urls: Vec<String>,
    /// Names the buckets (`PREFIX-control`, `PREFIX-packages`), so two fleets can
    /// share a NATS system.
    pub prefix: String,
    /// Create the fleet's buckets (once per fleet). Without it, a node that finds no
    /// fleet state says so instead of starting a new, empty fleet.
    pub init: bool,
    /// Copies the cluster keeps of every write (3 on a 3-server cluster).
    pub replicas: usize,
}

/// Why the node could not join its fleet.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("connecting to NATS at {urls}: {reason}")]
    Connect { urls: String, reason: String },
    #[error("opening the fleet's state")]
    State(#[source] verge_control::ControlError),
    #[error("opening the fleet's packages")]
    Packages(#[source] verge_control::PackageStoreError),
}

/// The fleet's shared stores.
pub(crate) struct Fleet {
    pub(crate) control: Arc<dyn ControlStore>,
    pub(crate) packages: Arc<dyn PackageStore>,
}

pub(crate) async fn join(config: &ClusterConfig, node_name: &str) -> Result<Fleet, ClusterError> {
    let urls = config.urls.join(",");
    let client = async_nats::ConnectOptions::new()
        .name(format!("verge-node {node_name}"))
        .connect(config.urls.as_slice())
        .await
        .map_err(|e| ClusterError::Connect {
            urls: urls.clone(),
            reason: e.to_string(),
        })?;
    let js = async_nats::jetstream::new(client);
    let control_bucket = format!("{}-control", config.prefix);
    let packages_bucket = format!("{}-packages", config.prefix);
    let (control, packages) = if config.init {
        let bucket = BucketConfig {
            bucket: control_bucket,
            replicas: config.replicas,
        };
        (
            JetStreamStore::create(js.clone(), &bucket)
                .await
                .map_err(ClusterError::State)?,
            ObjectPackages::create(&js, &packages_bucket, config.replicas)
                .await
                .map_err(ClusterError::Packages)?,
        )
    } else {
        (
            JetStreamStore::open(js.clone(), &control_bucket)
                .await
                .map_err(ClusterError::State)?,
            ObjectPackages::open(&js, &packages_bucket)
                .await
                .map_err(ClusterError::Packages)?,
        )
    };
    Ok(Fleet {
        control: Arc::new(control),
        packages: Arc::new(packages),
    })
}
