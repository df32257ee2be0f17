//! What a node is started with.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{EdgeOptions, Reporter};

/// Everything `verge node` takes, as the library takes it.
#[derive(Clone)]
pub struct NodeConfig {
    /// Where the node keeps its state: control.redb, packages/, kv.redb,
    /// compile-cache/.
    pub data_dir: PathBuf,
    /// The node's name, as guests, logs and the fleet's directory see it.
    pub name: String,
    /// The point of presence it is in (`--pop`), as the fleet's directory shows it.
    pub pop: Option<String>,
    /// Plain-HTTP client traffic; `None` with `tls_listen` serves HTTPS only.
    pub listen: Option<SocketAddr>,
    /// HTTPS client traffic, with the certificates of `tls_certs`.
    pub tls_listen: Option<SocketAddr>,
    /// A directory of PEM certificates (see `verge node --help`).
    pub tls_certs: Option<PathBuf>,
    /// The admin API's address.
    pub admin_listen: SocketAddr,
    /// The root token: may do everything.
    pub root_token: String,
    /// What the node shares with `verge serve`.
    pub edge: EdgeOptions,
    /// Memory all running instances may claim together; `None`: half the machine's.
    pub memory_budget: Option<u64>,
    /// The largest memory limit a service may have (every instance's slot size).
    pub max_memory_per_instance: u64,
    /// Instances one service may run at once unless its package sets a cap.
    pub max_concurrent_per_service: u32,
    /// Services whose code may be loaded at once (0: all).
    pub max_loaded_services: u32,
    /// The largest package an upload may be.
    pub max_package_bytes: u64,
    /// Where progress lines go.
    pub report: Reporter,
    /// The fleet this node joins; `None`: a single node on its own files.
    pub cluster: Option<crate::ClusterConfig>,
    /// A fleet node cut off for longer than this passes every request to its
    /// services instead of serving cache hits (which may miss purges made
    /// meanwhile), until it has caught up; `None`: it serves its cache while cut off.
    pub purge_strict: Option<std::time::Duration>,
    /// Serve the web console at `/console` on the admin listener.
    pub console: bool,
}

impl NodeConfig {
    /// A node keeping its state in `data_dir`, with `root_token`, and the CLI's
    /// defaults for the rest.
    pub fn new(data_dir: impl Into<PathBuf>, root_token: impl Into<String>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            name: "node".into(),
            pop: None,
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 7878))),
            tls_listen: None,
            tls_certs: None,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 7879)),
            root_token: root_token.into(),
            edge: EdgeOptions::default(),
            memory_budget: None,
            max_memory_per_instance: 128 << 20,
            max_concurrent_per_service: 64,
            max_loaded_services: 0,
            max_package_bytes: 128 << 20,
            report: Reporter::silent(),
            cluster: None,
            purge_strict: None,
            console: true,
        }
    }
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("data_dir", &self.data_dir)
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("tls_listen", &self.tls_listen)
            .field("admin_listen", &self.admin_listen)
            .field("root_token", &"[redacted]")
            .field("edge", &self.edge)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// Half of the machine's memory (from /proc/meminfo), or 4 GiB if it cannot be read.
pub(crate) fn default_memory_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(4 << 30)
}
