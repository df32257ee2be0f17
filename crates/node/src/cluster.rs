//! Joining a fleet: the node's control state and packages on NATS JetStream instead
//! of its own files. Without a cluster a node is exactly the single, embedded node.
//!
//! The node keeps a copy of the fleet's control state (`fleet-control.redb`, a
//! [`Replica`]) and of every package it serves (`packages/`): a node that starts
//! while NATS is unreachable serves what it last applied and joins when NATS
//! answers; one that has never joined refuses to start.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use verge_control::{PackageStoreError, Replica, ReplicatedStore};
use verge_fleet::{
    BucketConfig, CodeKey, FleetKv, JetStreamStore, KvBucket, LogRelay, NodeDirectory,
    ObjectPackages, PurgeStream, SharedCode, TrafficRelay,
};
use verge_store::KvReplica;

use crate::Reporter;
use crate::report::chain;

/// How long a node waits between attempts to join a fleet it could not reach.
const REJOIN: Duration = Duration::from_secs(1);
/// How long connecting to one NATS server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// How the node proves who it is to NATS.
    pub auth: NatsAuth,
    /// A PEM file of the CA that signed the servers' certificates: connect with TLS
    /// and trust it.
    pub tls_ca: Option<PathBuf>,
    /// The JetStream domain the fleet's state lives in, for a node connected to a
    /// PoP's leaf server whose own JetStream is another domain.
    pub js_domain: Option<String>,
    /// The fleet's code key (`--code-key`): with it, compiled code is shared between
    /// nodes of the same Wasmtime build, signed, instead of each node compiling every
    /// version. Every node of the fleet needs the same key to use the others' code.
    pub code_key: Option<CodeKey>,
}

impl ClusterConfig {
    /// A fleet on `urls` under `prefix`, with no credentials, no TLS and the local
    /// JetStream domain.
    pub fn new(urls: Vec<String>, prefix: impl Into<String>) -> Self {
        ClusterConfig {
            urls,
            prefix: prefix.into(),
            init: false,
            replicas: 3,
            auth: NatsAuth::None,
            tls_ca: None,
            js_domain: None,
            code_key: None,
        }
    }
}

/// A node's credentials for NATS.
#[derive(Clone, Default)]
pub enum NatsAuth {
    #[default]
    None,
    /// A `.creds` file (a user JWT and its NKey seed, as `nsc` makes them).
    Creds(PathBuf),
    /// A user name and password.
    UserPassword { user: String, password: String },
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::Creds(path) => f.debug_tuple("Creds").field(path).finish(),
            NatsAuth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"[redacted]")
                .finish(),
        }
    }
}

/// Why the node could not join its fleet.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server answered (refused, timed out, no route); worth waiting out.
    #[error("no NATS server at {urls} answers: {reason}")]
    Unreachable { urls: String, reason: String },
    /// A server answered and refused the node (credentials, TLS, a bad address).
    #[error("NATS at {urls} refused the node: {reason}")]
    Refused { urls: String, reason: String },
    #[error("opening the fleet's state")]
    State(#[source] verge_control::ControlError),
    #[error("opening the fleet's packages")]
    Packages(#[source] PackageStoreError),
    #[error("opening the node's copy of the fleet's state")]
    Replica(#[source] verge_control::ControlError),
    #[error("opening the fleet's guest KV stores")]
    Kv(#[source] verge_store::BackendError),
    #[error("opening the node's copy of the fleet's guest KV stores")]
    KvReplica(#[source] verge_store::OpenError),
    #[error("reading the NATS credentials in {}", path.display())]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ClusterError {
    /// Whether NATS (or JetStream behind it) did not answer, as opposed to answering no.
    fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClusterError::Unreachable { .. }
                | ClusterError::State(verge_control::ControlError::Unavailable(_))
                | ClusterError::Packages(PackageStoreError::Unavailable(_))
                | ClusterError::Kv(verge_store::BackendError::Unavailable(_))
        )
    }
}

/// The fleet's packages, node directory and log relay, once the node has joined.
#[derive(Clone, Default)]
pub(crate) struct FleetStores(Arc<OnceLock<Joined>>);

impl FleetStores {
    /// The fleet's package store, or why there is none yet.
    pub(crate) fn packages(&self) -> Result<&ObjectPackages, PackageStoreError> {
        self.0.get().map(|j| &j.packages).ok_or_else(|| {
            PackageStoreError::Unavailable("cluster unavailable: not joined yet".into())
        })
    }

    /// The fleet's compiled code; `None` without a code key or until the node has
    /// joined.
    pub(crate) fn code(&self) -> Option<&SharedCode> {
        self.0.get().and_then(|j| j.code.as_ref())
    }

    /// Every node's heartbeat; `None` until the node has joined.
    pub(crate) fn nodes(&self) -> Option<&NodeDirectory> {
        self.0.get().map(|j| &j.nodes)
    }

    /// The fleet's purges; `None` until the node has joined.
    pub(crate) fn purges(&self) -> Option<&PurgeStream> {
        self.0.get().map(|j| &j.purges)
    }

    /// Log lines across the fleet; `None` until the node has joined.
    pub(crate) fn logs(&self) -> Option<&LogRelay> {
        self.0.get().map(|j| &j.logs)
    }

    /// Traffic samples across the fleet; `None` until the node has joined.
    pub(crate) fn traffic(&self) -> Option<&TrafficRelay> {
        self.0.get().map(|j| &j.traffic)
    }

    /// Waits until the node has joined.
    pub(crate) async fn joined(&self) {
        while self.0.get().is_none() {
            tokio::time::sleep(REJOIN).await;
        }
    }
}

/// The fleet's stores as this node sees them.
pub(crate) struct Fleet {
    pub(crate) control: Arc<ReplicatedStore>,
    pub(crate) stores: FleetStores,
    /// The guests' KV stores: this node's copy, written through the fleet once joined.
    pub(crate) kv: Arc<FleetKv>,
}

/// The fleet's stores on NATS.
pub(crate) struct Joined {
    control: Option<JetStreamStore>,
    kv: Option<KvBucket>,
    packages: ObjectPackages,
    code: Option<SharedCode>,
    nodes: NodeDirectory,
    purges: PurgeStream,
    logs: LogRelay,
    traffic: TrafficRelay,
}

pub(crate) async fn join(
    config: &ClusterConfig,
    node_name: &str,
    data_dir: &Path,
    report: &Reporter,
) -> Result<Fleet, ClusterError> {
    let bucket = format!("{}-control", config.prefix);
    let replica = Replica::open(&data_dir.join("fleet-control.redb"), &bucket)
        .map_err(ClusterError::Replica)?;
    let copied = replica.applied().map_err(ClusterError::Replica)?;
    let control =
        Arc::new(ReplicatedStore::new(replica, "not joined yet").map_err(ClusterError::Replica)?);
    let stores = FleetStores::default();
    let kv_replica = Arc::new(
        KvReplica::open(
            &data_dir.join("fleet-kv.redb"),
            &verge_fleet::kv_bucket_name(&config.prefix),
        )
        .map_err(ClusterError::KvReplica)?,
    );
    let kv = Arc::new(FleetKv::new(
        kv_replica.clone(),
        tokio::runtime::Handle::current(),
    ));
    let fleet = Fleet {
        control: control.clone(),
        stores: stores.clone(),
        kv: kv.clone(),
    };
    match connect(config, node_name, &kv_replica).await {
        Ok(joined) => {
            attach(&fleet, joined);
            Ok(fleet)
        }
        Err(e) if e.is_unreachable() && copied > 0 => {
            report.status(
                "Offline",
                &format!(
                    "{}; serving the fleet state this node last applied (revision {copied}) \
                     and joining when NATS answers",
                    chain(&e)
                ),
            );
            let (config, name, report) = (config.clone(), node_name.to_owned(), report.clone());
            let waiting = Fleet {
                control,
                stores,
                kv,
            };
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(REJOIN).await;
                    match connect(&config, &name, &kv_replica).await {
                        Ok(joined) => {
                            attach(&waiting, joined);
                            report.status("Joined", "the fleet; catching up on what changed");
                            return;
                        }
                        Err(e) if e.is_unreachable() => {}
                        Err(e) => report.status("Retrying", &format!("to join: {}", chain(&e))),
                    }
                }
            });
            Ok(fleet)
        }
        Err(e) => Err(e),
    }
}

fn attach(fleet: &Fleet, mut joined: Joined) {
    let control = joined.control.take();
    if let Some(kv) = joined.kv.take() {
        fleet.kv.attach(Arc::new(kv));
    }
    let _ = fleet.stores.0.set(joined);
    if let Some(control) = control {
        fleet.control.attach(Arc::new(control));
    }
}

async fn connect(
    config: &ClusterConfig,
    node_name: &str,
    kv_replica: &Arc<KvReplica>,
) -> Result<Joined, ClusterError> {
    let urls = config.urls.join(",");
    let mut options = match &config.auth {
        NatsAuth::None => async_nats::ConnectOptions::new(),
        NatsAuth::Creds(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|source| ClusterError::Credentials {
                path: path.clone(),
                source,
            })?,
        NatsAuth::UserPassword { user, password } => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
    };
    if let Some(ca) = &config.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let client = options
        .name(format!("verge-node {node_name}"))
        .connection_timeout(CONNECT_TIMEOUT)
        // Back on a healed network within a second or two (the default waits up to 4 s).
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64 * 250).min(2_000))
        })
        .connect(config.urls.as_slice())
        .await
        .map_err(|e| {
            use async_nats::ConnectErrorKind as Kind;
            let reason = e.to_string();
            // A certificate the node does not trust arrives as an I/O error.
            let tls = reason.contains("certificate") || reason.contains("TLS");
            match e.kind() {
                Kind::Io | Kind::TimedOut | Kind::Dns | Kind::MaxReconnects if !tls => {
                    ClusterError::Unreachable {
                        urls: urls.clone(),
                        reason,
                    }
                }
                _ if tls => ClusterError::Refused {
                    urls: urls.clone(),
                    reason: format!(
                        "{reason} (--nats-tls-ca names the CA that signed the servers' certificates)"
                    ),
                },
                _ => ClusterError::Refused {
                    urls: urls.clone(),
                    reason,
                },
            }
        })?;
    let js = match &config.js_domain {
        Some(domain) => async_nats::jetstream::with_domain(client, domain),
        None => async_nats::jetstream::new(client),
    };
    let control_bucket = format!("{}-control", config.prefix);
    let packages_bucket = format!("{}-packages", config.prefix);
    let nodes_bucket = format!("{}-nodes", config.prefix);
    let (control, packages, nodes) = if config.init {
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
            NodeDirectory::create(&js, &nodes_bucket, config.replicas)
                .await
                .map_err(ClusterError::State)?,
        )
    } else {
        (
            JetStreamStore::open(js.clone(), &control_bucket)
                .await
                .map_err(ClusterError::State)?,
            ObjectPackages::open(&js, &packages_bucket)
                .await
                .map_err(ClusterError::Packages)?,
            NodeDirectory::open(&js, &nodes_bucket)
                .await
                .map_err(ClusterError::State)?,
        )
    };
    let kv = if config.init {
        KvBucket::create(&js, &config.prefix, config.replicas, kv_replica.clone()).await
    } else {
        KvBucket::open(&js, &config.prefix, kv_replica.clone()).await
    }
    .map_err(ClusterError::Kv)?;
    Ok(Joined {
        control: Some(control),
        kv: Some(kv),
        code: config.code_key.clone().map(|key| packages.shared_code(key)),
        packages,
        nodes,
        purges: PurgeStream::open(&js, &config.prefix, config.replicas)
            .await
            .map_err(ClusterError::State)?,
        logs: LogRelay::new(js.client(), &config.prefix),
        traffic: TrafficRelay::new(js.client(), &config.prefix),
    })
}
