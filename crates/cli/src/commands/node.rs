//! `verge node`: a long-running edge node serving many services, deployed to through
//! its admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use verge_cache::{Cache, CacheConfig};
use verge_control::{ControlState, PackageStore, RedbState};
use verge_manifest::{ByteSize, LimitsSection, Package};
use verge_runtime::{NodeServices, Runtime, RuntimeConfig};
use verge_server::admin::{AdminConfig, AdminServer, RootToken};
use verge_server::{
    Certificates, LazyApp, LogWriter, Metrics, NodeRegistry, RoutedApp, Server, ServerConfig,
};

use crate::commands::serve::{
    KvBackendKind, MAX_PACKAGED_COMPONENT, admin_token, load, open_kv, prepare_packaged,
    shutdown_signal,
};
use crate::node_api::{DeployApi, Node, NodeAuth, TokensApi};
use crate::ui;

/// Run an edge node: many services side by side, each on its domains, deployed and
/// activated through the admin API (`/admin/v1/services`).
///
/// Everything lives in --data-dir: services, versions and domains (control.redb),
/// package bytes (packages/), KV data (kv.redb), compiled code (compile-cache/). A
/// restarted node serves exactly the versions that were active.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    VERGE_ADMIN_TOKEN=$(openssl rand -hex 24) verge node --data-dir /var/lib/verge \\\n      \
    --listen 0.0.0.0:80 --admin-listen 127.0.0.1:9000")]
pub struct Args {
    /// Where the node keeps its state.
    #[arg(
        long,
        value_name = "DIR",
        env = "VERGE_DATA_DIR",
        default_value = "verge-node"
    )]
    pub data_dir: PathBuf,

    /// Address for plain-HTTP client traffic; port 0 picks a free port
    /// [default: 127.0.0.1:7878, or none when --tls-listen is given].
    #[arg(long, env = "VERGE_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Address for HTTPS client traffic (HTTP/2 and HTTP/1.1 by ALPN), with the
    /// certificates of --tls-certs.
    #[arg(
        long,
        value_name = "ADDR",
        env = "VERGE_TLS_LISTEN",
        requires = "tls_certs"
    )]
    pub tls_listen: Option<SocketAddr>,

    /// A directory of PEM certificates: NAME.crt with NAME.key (or NAME.pem holding
    /// both) per certificate, each serving the DNS names it lists, wildcards included;
    /// the one named `default` also answers clients asking for a name no certificate
    /// has (without it, their handshake fails). Changed files are picked up within
    /// two seconds, without a restart.
    #[arg(
        long,
        value_name = "DIR",
        env = "VERGE_TLS_CERTS",
        requires = "tls_listen"
    )]
    pub tls_certs: Option<PathBuf>,

    /// Address of the admin API (deploys, purges, metrics).
    #[arg(long, default_value = "127.0.0.1:7879", env = "VERGE_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,

    /// A file holding the admin API's bearer token [default: $VERGE_ADMIN_TOKEN].
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// The node's name, as guests see it.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "node",
        env = "VERGE_NODE_NAME"
    )]
    pub node_name: String,

    /// Instances that may run at once.
    #[arg(long, default_value_t = RuntimeConfig::default().max_concurrent_instances)]
    pub max_instances: u32,

    /// Memory for the edge cache.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "256MiB")]
    pub edge_cache_memory: ByteSize,

    /// Memory all running instances may claim together, each counting its service's
    /// memory limit [default: half of the machine's memory]. Past it, requests wait
    /// up to a second, then get 503 `overloaded` with Retry-After.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse)]
    pub memory_budget: Option<ByteSize>,

    /// The largest memory limit a service may have (the size of every instance's
    /// memory slot); a package asking for more is refused at upload.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "128MiB")]
    pub max_memory_per_instance: ByteSize,

    /// Instances one service may run at once, unless its package sets
    /// `max_concurrent`: one service's flood leaves room for the others.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_concurrent_per_service: u32,

    /// Services whose code may be loaded at once (0: all). Past it, loading one
    /// unloads the one used least recently; it loads again from the compile cache
    /// (about 2 ms for a small app) on its next request.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_loaded_services: u32,

    /// The largest package an upload may be; a larger one is refused (413) before it
    /// is read, and nothing is recorded.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "128MiB")]
    pub max_package_size: ByteSize,
}

/// Half of the machine's memory (from /proc/meminfo), or 4 GiB if it cannot be read.
fn default_memory_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(4 << 30)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root_token = admin_token(args.admin_token_file.as_deref())?;
    let certs = match &args.tls_certs {
        Some(dir) => {
            let certs = Certificates::load(dir)
                .context("loading the TLS certificates (see `verge node --help`)")?;
            certs.watch(std::time::Duration::from_secs(2));
            Some(certs)
        }
        None => None,
    };
    let listen = match (args.listen, args.tls_listen) {
        (Some(addr), _) => Some(addr),
        (None, Some(_)) => None,
        (None, None) => Some(SocketAddr::from(([127, 0, 0, 1], 7878))),
    };
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let control: Arc<dyn ControlState> = Arc::new(
        RedbState::open(&dir.join("control.redb")).context("opening the node's control state")?,
    );
    let packages = PackageStore::open(&dir.join("packages"))?;
    let log = LogWriter::spawn(std::io::stdout());
    let defaults = RuntimeConfig::default();
    let runtime = Runtime::new(RuntimeConfig {
        node: NodeServices {
            name: args.node_name.clone(),
            kv: open_kv(KvBackendKind::Redb, dir, false)?,
            cache: Cache::new(CacheConfig {
                memory_bytes: args.edge_cache_memory.0,
                ..CacheConfig::default()
            }),
            ..NodeServices::default()
        },
        compile_cache_dir: Some(dir.join("compile-cache")),
        max_concurrent_instances: args.max_instances,
        max_memory_bytes: args.max_memory_per_instance.0,
        memory_budget_bytes: Some(
            args.memory_budget
                .map_or_else(default_memory_budget, |b| b.0),
        ),
        ..defaults
    })
    .context("starting the Wasm runtime")?;
    let node = Arc::new_cyclic(|myself| Node {
        myself: myself.clone(),
        control,
        packages,
        runtime,
        registry: Arc::new(
            NodeRegistry::default().with_max_loaded(args.max_loaded_services as usize),
        ),
        log,
        metrics: Metrics::default(),
        max_concurrent_per_service: args.max_concurrent_per_service,
        max_package_bytes: args.max_package_size.0.min(MAX_PACKAGED_COMPONENT),
    });
    // Serve what was active when the node stopped, each loaded on its first request
    // (from the compile cache): a node with many services is ready at once.
    let mut routed = 0;
    for service in node.control.services()? {
        if let Some(active) = service.active {
            node.serve_lazily(&service, active);
            routed += 1;
        }
    }
    if routed > 0 {
        ui::status(
            "Routing",
            format!("{routed} services, each loaded on its first request"),
        );
    }

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async {
        let bind = |listen| {
            Server::bind(
                ServerConfig {
                    listen,
                    ..ServerConfig::default()
                },
                node.registry.clone(),
                node.log.clone(),
            )
        };
        let https = match (args.tls_listen, &certs) {
            (Some(addr), Some(certs)) => Some(bind(addr).await?.with_tls(certs)),
            _ => None,
        };
        let http = match listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let admin = AdminServer::bind(
            AdminConfig {
                listen: args.admin_listen,
                token: root_token.clone(),
            },
            node.registry.clone(),
            node.runtime.config().node.cache.clone(),
            node.metrics.clone(),
        )
        .await?
        .with_authenticator(Arc::new(NodeAuth {
            root: RootToken(root_token),
            control: node.control.clone(),
        }))
        .with_logs(node.log.tap().clone())
        .with_routes("/admin/v1/services", Arc::new(DeployApi(node.clone())))
        .with_routes("/admin/v1/tokens", Arc::new(TokensApi(node.clone())));
        println!("Admin API on http://{}", admin.local_addr());
        tokio::spawn(admin.run());
        // Both listeners stop on the same signal.
        let (stop, stopping) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        if let Some(https) = &https {
            let certificates = certs.as_ref().map_or(0, |c| c.count());
            println!(
                "Listening on https://{} ({certificates} certificates)",
                https.local_addr()
            );
        }
        if let Some(http) = &http {
            println!("Listening on http://{}", http.local_addr());
        }
        let https = async {
            if let Some(server) = https {
                server.run(stopped(stopping.clone())).await;
            }
        };
        let http = async {
            if let Some(server) = http {
                server.run(stopped(stopping.clone())).await;
            }
        };
        tokio::join!(https, http);
        anyhow::Ok(())
    })?;
    ui::status("Stopped", "all requests finished");
    Ok(())
}

impl Node {
    /// Loads version `number` of `service` (from the compile cache when it was
    /// compiled before) and routes the service's domains to it.
    pub(crate) fn serve_version(
        &self,
        service: &verge_control::Service,
        number: u32,
    ) -> anyhow::Result<()> {
        let app = self.load_version(service, number)?;
        let lazy = LazyApp::loaded(app, self.loader(service, number));
        self.registry
            .set(service.name.as_str(), lazy, &patterns(service));
        Ok(())
    }

    /// Routes the service's domains to version `number`, loaded on its first request.
    pub(crate) fn serve_lazily(self: &Arc<Self>, service: &verge_control::Service, number: u32) {
        let lazy = LazyApp::new(self.loader(service, number));
        self.registry
            .set(service.name.as_str(), lazy, &patterns(service));
    }

    /// Loads version `number` of `service` when the registry asks (on a first
    /// request, or again after it was unloaded).
    fn loader(
        &self,
        service: &verge_control::Service,
        number: u32,
    ) -> impl Fn() -> Result<RoutedApp, String> + Send + Sync + 'static {
        let node = self.myself.clone();
        let service = service.clone();
        move || {
            let node = node.upgrade().ok_or("the node is stopping")?;
            node.load_version(&service, number).map_err(|e| {
                format!(
                    "loading version {number} of service `{}`: {e:#}",
                    service.name.as_str()
                )
            })
        }
    }

    /// Version `number` of `service`, ready to serve.
    fn load_version(
        &self,
        service: &verge_control::Service,
        number: u32,
    ) -> anyhow::Result<RoutedApp> {
        let versions = self.control.versions(&service.name)?;
        let version = versions
            .iter()
            .find(|v| v.number == number)
            .with_context(|| format!("version {number} is not recorded"))?;
        let bytes = self.packages.get(&version.sha256)?;
        let package = Package::read_from(&bytes[..], MAX_PACKAGED_COMPONENT)?;
        let mut prepared = prepare_packaged(
            package,
            std::path::Path::new(&format!("{}@{number}", service.name.as_str())),
            &LimitsSection::default(),
        )?;
        let limits = &mut prepared.config.limits;
        limits.max_concurrent = limits
            .max_concurrent
            .or(Some(self.max_concurrent_per_service));
        // The service's name is its namespace (KV, cache, logs), whatever the
        // package's app is called.
        prepared.config.name = service.name.as_str().to_owned();
        prepared.config.version = Some(number.to_string());
        load(&self.runtime, prepared, &self.log, &self.metrics)
    }
}

/// The host patterns of a service, as the registry takes them.
fn patterns(service: &verge_control::Service) -> Vec<String> {
    service
        .domains
        .iter()
        .map(|d| d.as_str().to_owned())
        .collect()
}
