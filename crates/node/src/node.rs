//! The node: its state, its runtime and its router, and the listeners it serves on.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use verge_control::{
    Control, ControlError, ControlStore, DiskPackages, Link, PackageStore, PackageStoreError,
    RedbStore, Service, Version,
};
use verge_manifest::{LimitsSection, Package, PackageError};
use verge_runtime::{LoadError, NodeServices, Runtime};
use verge_server::admin::AdminServer;
use verge_server::{
    Certificates, LogWriter, Metrics, NodeRegistry, RoutedApp, Server, ServerError, TlsError,
};

use crate::app::{self, AppError, KvBackend, KvOpenError, MAX_PACKAGED_COMPONENT};
use crate::cluster::FleetStores;
use crate::config::default_memory_budget;
use crate::edge::EdgeError;
use crate::reconcile::{self, Reconciler, ServeState};
use crate::{NodeConfig, Reporter};

/// A node: services side by side, each on its domains, deployed through its admin
/// API ([`Node::admin_api`]).
pub struct Node {
    /// The node itself, for loaders the registry calls later.
    pub(crate) myself: Weak<Node>,
    pub(crate) control: Control,
    pub(crate) reconciler: Reconciler,
    /// This node's verified copy of every package it serves.
    pub(crate) packages: DiskPackages,
    /// The fleet's packages, which other nodes upload to, and its nodes' heartbeats;
    /// `None` on a single node.
    pub(crate) fleet: Option<FleetStores>,
    /// This node's side of the fleet's purges; `None` on a single node.
    pub(crate) purges: Option<Arc<crate::purge_relay::FleetPurges>>,
    pub(crate) name: String,
    /// The point of presence it is in, for the fleet's directory.
    pub(crate) pop: Option<String>,
    pub(crate) started_at_ms: u64,
    /// Whether the admin API serves the web console (`--no-console` turns it off).
    pub(crate) console: bool,
    /// Other nodes' heartbeats, decoded, by name.
    pub(crate) heard: std::sync::Mutex<std::collections::HashMap<String, crate::fleet_view::Heard>>,
    /// Whether the fleet's state answers; `None` on a single node.
    pub(crate) link: Option<tokio::sync::watch::Receiver<Link>>,
    pub(crate) runtime: Runtime,
    pub(crate) registry: Arc<NodeRegistry>,
    pub(crate) log: LogWriter,
    pub(crate) metrics: Metrics,
    /// The last hour of traffic, this node's and (on a fleet) the others'.
    pub(crate) traffic: Arc<verge_server::traffic::Traffic>,
    /// The instance cap of services whose packages set none.
    max_concurrent_per_service: u32,
    pub(crate) max_package_bytes: u64,
    pub(crate) report: Reporter,
    /// Cut off from the fleet for longer than this, the node holds its cache hits.
    pub(crate) purge_strict: Option<std::time::Duration>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("creating the data directory {}", dir.display())]
    DataDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the node's control state")]
    Control(#[source] ControlError),
    #[error("opening the node's package store")]
    Packages(#[source] PackageStoreError),
    #[error("opening the node's KV stores")]
    Kv(#[source] KvOpenError),
    #[error(transparent)]
    Edge(#[from] EdgeError),
    #[error("starting the Wasm runtime")]
    Runtime(#[source] LoadError),
    #[error("loading the TLS certificates (see `verge node --help`)")]
    Certificates(#[source] TlsError),
    #[error(transparent)]
    Listen(#[from] ServerError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Why a recorded version could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum VersionLoadError {
    #[error(transparent)]
    Packages(#[from] PackageStoreError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    App(#[from] AppError),
}

impl Node {
    /// Opens the node's state in `config.data_dir`, routes every service's active
    /// version, each loaded on its first request (from the compile cache), so a
    /// node with many services is ready at once, and starts following the control
    /// state's changes. Binds nothing; see [`Node::start`].
    pub async fn open(config: &NodeConfig) -> Result<Arc<Node>, NodeError> {
        config.edge.validate()?;
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| NodeError::DataDir {
            dir: dir.clone(),
            source,
        })?;
        let (store, fleet, link, kv): (Arc<dyn ControlStore>, _, _, _) = match &config.cluster {
            Some(cluster) => {
                let fleet =
                    crate::cluster::join(cluster, &config.name, dir, &config.report).await?;
                let link = fleet.control.link();
                let kv = app::kv_over(fleet.kv).map_err(NodeError::Kv)?;
                (fleet.control, Some(fleet.stores), Some(link), kv)
            }
            None => (
                Arc::new(RedbStore::open(&dir.join("control.redb")).map_err(NodeError::Control)?),
                None,
                None,
                app::open_kv(KvBackend::Redb, dir, false).map_err(NodeError::Kv)?,
            ),
        };
        let control = Control::new(store);
        let packages = DiskPackages::open(&dir.join("packages")).map_err(NodeError::Packages)?;
        let services = NodeServices {
            name: config.name.clone(),
            geo: config.edge.geo()?,
            kv,
            cache: config.edge.open_cache()?,
            ..NodeServices::default()
        };
        let runtime = Runtime::new(verge_runtime::RuntimeConfig {
            compile_cache_dir: Some(dir.join("compile-cache")),
            max_memory_bytes: config.max_memory_per_instance,
            memory_budget_bytes: Some(config.memory_budget.unwrap_or_else(default_memory_budget)),
            ..config.edge.runtime_config(services)
        })
        .map_err(NodeError::Runtime)?;
        // A fleet node's purges go to the others (and theirs come here).
        let purges = fleet.as_ref().map(|_| {
            let (purges, made) = crate::purge_relay::FleetPurges::new();
            runtime.config().node.cache.set_purge_sink(purges.clone());
            (purges, made)
        });
        let (purges, made) = match purges {
            Some((purges, made)) => (Some(purges), Some(made)),
            None => (None, None),
        };
        let metrics = Metrics::default();
        let traffic = verge_server::traffic::Traffic::new(&config.name, metrics.clone());
        let node = Arc::new_cyclic(|myself| Node {
            myself: myself.clone(),
            purges,
            control,
            reconciler: Reconciler::new(),
            packages,
            fleet,
            name: config.name.clone(),
            pop: config.pop.clone(),
            started_at_ms: crate::auth::now_ms(),
            console: config.console,
            heard: Default::default(),
            link,
            runtime,
            registry: Arc::new(
                NodeRegistry::default().with_max_loaded(config.max_loaded_services as usize),
            ),
            log: LogWriter::spawn(std::io::stdout()),
            metrics,
            traffic,
            max_concurrent_per_service: config.max_concurrent_per_service,
            max_package_bytes: config.max_package_bytes.min(MAX_PACKAGED_COMPONENT),
            report: config.report.clone(),
            purge_strict: config.purge_strict,
        });
        let revision = *node.control.store().revision().borrow();
        let routed = node.resync(revision).await.map_err(NodeError::Control)?;
        if routed > 0 {
            node.report.status(
                "Routing",
                &format!("{routed} services, each loaded on its first request"),
            );
        }
        reconcile::spawn(Arc::downgrade(&node), node.control.store().revision());
        crate::traffic_relay::spawn(Arc::downgrade(&node));
        if node.fleet.is_some() {
            crate::fleet_view::spawn(Arc::downgrade(&node));
            crate::log_relay::spawn(Arc::downgrade(&node));
            if let (Some(purges), Some(made)) = (&node.purges, made) {
                crate::purge_relay::spawn(&node, purges, made);
            }
        }
        Ok(node)
    }

    /// Opens the node and binds its listeners (client HTTP, HTTPS, admin); the admin
    /// API is served at once, client traffic by [`RunningNode::serve`].
    pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
        let certs = match &config.tls_certs {
            Some(dir) => {
                let certs = Certificates::load(dir).map_err(NodeError::Certificates)?;
                certs.watch(std::time::Duration::from_secs(2));
                Some(certs)
            }
            None => None,
        };
        let node = Node::open(&config).await?;
        let bind = |listen| {
            Server::bind(
                config.edge.server_config(listen),
                node.registry.clone(),
                node.log.clone(),
            )
        };
        let https = match (config.tls_listen, &certs) {
            (Some(addr), Some(certs)) => Some(bind(addr).await?.with_tls(certs)),
            _ => None,
        };
        let http = match config.listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let admin = AdminServer::bind(
            config.admin_listen,
            Arc::new(node.admin_api(config.root_token.clone())),
        )
        .await?;
        let admin_addr = admin.local_addr();
        let admin = tokio::spawn(admin.run());
        Ok(RunningNode {
            node,
            http,
            https,
            admin_addr,
            admin,
            certificates: certs.as_ref().map_or(0, |c| c.count()),
        })
    }

    /// What this node serves for `service`: the version, or why the active one
    /// failed to load here.
    pub fn serving(&self, service: &str) -> Option<ServeState> {
        self.reconciler.state(service)
    }

    /// The control revision this node has applied.
    pub fn applied_revision(&self) -> u64 {
        self.reconciler.applied()
    }

    /// Whether this node's fleet answers; `None` for a single node.
    pub fn cluster_link(&self) -> Option<Link> {
        self.link.as_ref().map(|l| l.borrow().clone())
    }

    /// Whether a change can be recorded now: not while the fleet is cut off (a
    /// short cut, such as a NATS server's death, is waited out).
    pub(crate) async fn writable(&self) -> Result<(), ControlError> {
        self.control.store().writable().await
    }

    /// Makes sure this node has its own verified copy of `version`'s package,
    /// fetching it from the fleet's store when it has not.
    pub(crate) async fn ensure_package(&self, version: &Version) -> Result<(), PackageStoreError> {
        if self.packages.contains(&version.sha256) {
            return Ok(());
        }
        let Some(fleet) = &self.fleet else {
            return Err(PackageStoreError::Missing(version.sha256.clone()));
        };
        let shared = fleet.packages()?;
        // A damaged copy is refused by the store; one more fetch may find a good one
        // (another replica, or a repaired object) before the version counts as failed.
        let bytes = match PackageStore::get(shared, &version.sha256).await {
            Err(PackageStoreError::Mismatch { .. }) => {
                PackageStore::get(shared, &version.sha256).await?
            }
            other => other?,
        };
        PackageStore::put(&self.packages, &version.sha256, bytes).await
    }

    /// Compiles `version`'s component into the compile cache, so that activating it
    /// later only switches. Blocking.
    pub(crate) fn precompile(&self, version: &Version) -> Result<(), VersionLoadError> {
        let bytes = self.packages.get(&version.sha256)?;
        let package = Package::read_from(&bytes[..], MAX_PACKAGED_COMPONENT)?;
        let prepared = app::from_package(
            package,
            std::path::Path::new(&format!("version {}", version.number)),
            &LimitsSection::default(),
        )?;
        if let app::Component::Bytes { bytes, from } = &prepared.component {
            self.fetch_shared_code(bytes, &format!("version {}", version.number));
            verge_runtime::App::load(&self.runtime, bytes, prepared.config.clone()).map_err(
                |source| AppError::Load {
                    what: format!("the component of {}", from.display()),
                    source,
                },
            )?;
        }
        Ok(())
    }

    /// `version` of `service`, ready to serve. Blocking: it may compile. With
    /// `fetch_code`, the fleet's compiled code is fetched first when there is some
    /// (not on a request's thread, which must not wait for the network).
    pub(crate) fn load_version(
        &self,
        service: &Service,
        version: &Version,
        fetch_code: bool,
    ) -> Result<RoutedApp, VersionLoadError> {
        let number = version.number;
        let bytes = self.packages.get(&version.sha256)?;
        let package = Package::read_from(&bytes[..], MAX_PACKAGED_COMPONENT)?;
        let mut prepared = app::from_package(
            package,
            std::path::Path::new(&format!("{}@{number}", service.name.as_str())),
            &LimitsSection::default(),
        )?;
        if let (true, app::Component::Bytes { bytes, .. }) = (fetch_code, &prepared.component) {
            self.fetch_shared_code(
                bytes,
                &format!("version {number} of `{}`", service.name.as_str()),
            );
        }
        let limits = &mut prepared.config.limits;
        limits.max_concurrent = limits
            .max_concurrent
            .or(Some(self.max_concurrent_per_service));
        // The service's name is its namespace (KV, cache, logs), whatever the
        // package's app is called.
        prepared.config.name = service.name.as_str().to_owned();
        // Seeded once, by the node that took the upload, not on every load here.
        for store in &mut prepared.config.kv_stores {
            store.seed = None;
        }
        prepared.config.version = Some(number.to_string());
        Ok(app::load(
            &self.runtime,
            prepared,
            &self.log,
            &self.metrics,
            &self.report,
        )?)
    }
}

/// A node with its listeners bound.
pub struct RunningNode {
    node: Arc<Node>,
    http: Option<Server>,
    https: Option<Server>,
    admin_addr: SocketAddr,
    admin: tokio::task::JoinHandle<()>,
    certificates: usize,
}

impl RunningNode {
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(Server::local_addr)
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().map(Server::local_addr)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Certificates the HTTPS listener has.
    pub fn certificates(&self) -> usize {
        self.certificates
    }

    /// Serves client traffic until `shutdown` completes, then lets requests in flight
    /// finish; the admin API stops with it, and a fleet hears that the node left.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        // Both listeners stop on the same signal.
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let https = async {
            if let Some(server) = self.https {
                server.run(stopped(stopping.clone())).await;
            }
        };
        let http = async {
            if let Some(server) = self.http {
                server.run(stopped(stopping.clone())).await;
            }
        };
        let signal = async {
            shutdown.await;
            let _ = stop.send(true);
        };
        tokio::join!(https, http, signal);
        self.admin.abort();
        self.node.leave().await;
    }
}
