//! What `verge serve` and `verge node` share: the request front (header limits,
//! trusted proxies, PROXY protocol), the engine's instance pool, geolocation and the
//! edge cache. One struct, so both get every setting and the same defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use verge_cache::{Cache, CacheConfig};
use verge_client_ip::TrustedProxies;
use verge_runtime::{GeoDbError, GeoProvider, MaxmindGeo, NodeServices, RuntimeConfig};
use verge_server::ServerConfig;

/// The settings both kinds of server take.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// Most request headers accepted; more gets 431.
    pub max_header_count: usize,
    /// Largest request head in bytes; more gets 431.
    pub max_header_bytes: usize,
    /// Proxies whose `X-Forwarded-For` (or PROXY header) names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Connections from trusted proxies start with a PROXY protocol v2 header.
    pub proxy_protocol: bool,
    /// Request threads, each with a runtime of its own (`ServerConfig::threads`; 0:
    /// the shared runtime).
    pub threads: usize,
    /// Instances that may run at once (the pooling allocator's size).
    pub max_instances: u32,
    /// Bytes of each instance's memory kept resident between requests.
    pub memory_keep_resident: usize,
    /// Find dirtied pages with Linux's PAGEMAP_SCAN when recycling a memory.
    pub pagemap_scan: bool,
    /// MaxMind-format databases for `verge:edge/geo`; none: no geolocation.
    pub geoip_db: Vec<PathBuf>,
    /// The edge cache: memory, largest object, disk tier.
    pub cache: CacheConfig,
}

impl EdgeOptions {
    /// One request thread per core (as the OS reports them; 1 when it cannot say).
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    }
}

impl Default for EdgeOptions {
    fn default() -> Self {
        let server = ServerConfig::default();
        let runtime = RuntimeConfig::default();
        EdgeOptions {
            max_header_count: server.max_header_count,
            max_header_bytes: server.max_header_bytes,
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            threads: server.threads,
            max_instances: runtime.max_concurrent_instances,
            memory_keep_resident: runtime.memory_keep_resident_bytes,
            pagemap_scan: runtime.pagemap_scan,
            geoip_db: Vec::new(),
            cache: CacheConfig::default(),
        }
    }
}

/// A setting that cannot work, or a file it names that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error(
        "--edge-cache-max-object ({max_object} bytes) must not exceed --edge-cache-memory ({memory} bytes) or 4GiB"
    )]
    CacheObjectTooLarge { max_object: u64, memory: u64 },
    #[error("--proxy-protocol needs at least one --trusted-proxy to take the header from")]
    ProxyProtocolWithoutProxy,
    #[error(transparent)]
    Geo(#[from] GeoDbError),
    #[error("preparing the edge cache's disk tier in {}", dir.display())]
    CacheDisk {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl EdgeOptions {
    /// Checks the settings against each other before anything starts.
    pub fn validate(&self) -> Result<(), EdgeError> {
        let memory = self.cache.memory_bytes;
        if self.cache.max_object_bytes > memory.min(u64::from(u32::MAX)) {
            return Err(EdgeError::CacheObjectTooLarge {
                max_object: self.cache.max_object_bytes,
                memory,
            });
        }
        if self.proxy_protocol && self.trusted_proxies.is_empty() {
            return Err(EdgeError::ProxyProtocolWithoutProxy);
        }
        Ok(())
    }

    /// The server settings for a listener on `listen`.
    pub fn server_config(&self, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            listen,
            max_header_count: self.max_header_count,
            max_header_bytes: self.max_header_bytes,
            trusted_proxies: TrustedProxies(self.trusted_proxies.clone()),
            proxy_protocol: self.proxy_protocol,
            threads: self.threads,
            ..ServerConfig::default()
        }
    }

    /// The geolocation databases, opened; `None` when none is configured.
    pub fn geo(&self) -> Result<Option<Arc<dyn GeoProvider>>, EdgeError> {
        if self.geoip_db.is_empty() {
            return Ok(None);
        }
        let db = MaxmindGeo::open(&self.geoip_db)?;
        Ok(Some(Arc::new(db) as Arc<dyn GeoProvider>))
    }

    /// The edge cache, its disk tier (if any) prepared.
    pub fn open_cache(&self) -> Result<Cache, EdgeError> {
        Cache::open(self.cache.clone()).map_err(|source| EdgeError::CacheDisk {
            dir: self
                .cache
                .disk
                .as_ref()
                .map(|d| d.dir.clone())
                .unwrap_or_default(),
            source,
        })
    }

    /// The runtime's settings for these options and `node`'s services; the caller
    /// sets what differs between a dev server and a node (memory slot, budget, code
    /// cache).
    pub fn runtime_config(&self, node: NodeServices) -> RuntimeConfig {
        RuntimeConfig {
            node,
            max_concurrent_instances: self.max_instances,
            memory_keep_resident_bytes: self.memory_keep_resident,
            pagemap_scan: self.pagemap_scan,
            ..RuntimeConfig::default()
        }
    }
}
