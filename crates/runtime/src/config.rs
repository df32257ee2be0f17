//! An app's configuration as the runtime uses it: validated, normalised, defaults
//! applied. Built from a `verge.toml` manifest with `TryFrom`, or by hand.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use verge_manifest::{BackendUrl, HostPattern, Manifest, ManifestError, PackageManifest};
use verge_store::KvLimits;

use crate::guest_log::LogLevel;
use crate::host::geo::GeoRecord;
use crate::limits::Limits;

/// Everything about an app the runtime needs, already validated and normalised.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    /// Shown in logs.
    pub name: String,
    pub limits: Limits,
    /// The only environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// Named origins.
    pub backends: Vec<BackendConfig>,
    /// Which hosts a guest may reach by URL.
    pub egress: EgressConfig,
    /// Geolocation answers that win over the node's database (IP or CIDR → record).
    pub geo_overrides: Vec<(ipnet::IpNet, GeoRecord)>,
    /// The app's version as guests see it; `None` uses the first 12 hex digits of the
    /// component's SHA-256.
    pub version: Option<String>,
    /// KV stores the app may open.
    pub kv_stores: Vec<KvStoreConfig>,
    /// What `wasi:config` answers. Filled from [`Manifest::config_values`] by whoever
    /// loads the app (reading files is not the runtime's business).
    pub config: BTreeMap<String, String>,
    /// Secret store → secret name → value, for `verge:edge/secrets`. Filled from
    /// [`Manifest::secret_values`].
    pub secret_stores: BTreeMap<String, BTreeMap<String, SecretValue>>,
    /// The lowest `wasi:logging` level kept.
    pub log_level: LogLevel,
    /// Named log endpoints for `verge:edge/logs`.
    pub log_endpoints: Vec<LogEndpointConfig>,
}

/// A named log endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEndpointConfig {
    pub name: String,
    pub target: LogTarget,
}

/// Where an endpoint's lines go.
#[derive(Debug, Clone, PartialEq)]
pub enum LogTarget {
    /// Verge's own log stream, as `type: "endpoint"` lines.
    Stream,
    /// A JSON-lines file, rotated when it would pass `max_bytes`, keeping `keep` old
    /// files.
    File {
        path: PathBuf,
        max_bytes: u64,
        keep: u32,
    },
}

/// A secret's value. Its `Debug` never shows it, so it cannot leak through a
/// debug-printed configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Arc<[u8]>);

impl SecretValue {
    pub fn new(value: impl Into<Vec<u8>>) -> SecretValue {
        SecretValue(value.into().into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A KV store an app declares.
#[derive(Debug, Clone, PartialEq)]
pub struct KvStoreConfig {
    pub name: String,
    pub limits: KvLimits,
    /// What fills the store where it lacks keys.
    pub seed: Option<Seed>,
}

/// Where a store's seed items come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Seed {
    /// A JSON seed file, read when the app loads (a development server; see
    /// `verge_store::load_seed`).
    File(PathBuf),
    /// The items a package carries (`verge pack` read the seed file).
    Items(Vec<verge_store::SeedEntry>),
}

/// A named origin.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub name: String,
    pub url: BackendUrl,
    /// Sent as `Host` and used as the TLS server name instead of the url's host.
    pub override_host: Option<String>,
    pub timeouts: OriginTimeouts,
    /// Requests in flight to this backend at once; more wait for a free one.
    pub max_connections: u32,
    pub tls: TlsConfig,
    /// Allow loopback, private and link-local addresses.
    pub allow_private: bool,
    /// Cache the backend's GET responses by their headers.
    pub cache: bool,
}

/// How long to wait on an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginTimeouts {
    pub connect: Duration,
    /// From sending the request to the response head.
    pub first_byte: Duration,
    /// The longest pause inside the response body.
    pub between_bytes: Duration,
}

impl OriginTimeouts {
    /// Fastly's defaults: 1 s to connect, 15 s to the first byte, 10 s between bytes.
    pub const DEFAULT: OriginTimeouts = OriginTimeouts {
        connect: Duration::from_secs(1),
        first_byte: Duration::from_secs(15),
        between_bytes: Duration::from_secs(10),
    };
}

impl Default for OriginTimeouts {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// TLS to an origin.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Verify the certificate chain and name (against the webpki roots and `ca_pem`).
    pub verify: bool,
    /// Extra CA certificates to trust, PEM.
    pub ca_pem: Option<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            verify: true,
            ca_pem: None,
        }
    }
}

/// Requests to URLs rather than named backends.
#[derive(Debug, Clone, Default)]
pub struct EgressConfig {
    /// Hosts a guest may reach; none by default.
    pub allow: Vec<HostPattern>,
    /// Allow loopback, private and link-local addresses.
    pub allow_private: bool,
}

/// Default for `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 100;

/// Why a manifest does not make a runnable configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("backend `{backend}`: max_connections must be at least 1")]
    NoConnections { backend: String },
    #[error("backend `{backend}`: override_host `{host}` is not a valid host name")]
    OverrideHost { backend: String, host: String },
    #[error("KV store `{store}`: the seed item `{key}` is not valid base64: {message}")]
    SeedItem {
        store: String,
        key: String,
        message: String,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// A package's seed items, decoded; `None` when it has none.
fn packaged_seed(
    store: &str,
    items: &[verge_manifest::PackagedSeedItem],
) -> Result<Option<Seed>, ConfigError> {
    use base64::Engine;
    if items.is_empty() {
        return Ok(None);
    }
    items
        .iter()
        .map(|item| {
            let value = base64::engine::general_purpose::STANDARD
                .decode(&item.value_base64)
                .map_err(|e| ConfigError::SeedItem {
                    store: store.to_owned(),
                    key: item.key.clone(),
                    message: e.to_string(),
                })?;
            Ok(verge_store::SeedEntry {
                key: item.key.clone(),
                value: value.into(),
                metadata: item.metadata.clone(),
            })
        })
        .collect::<Result<_, _>>()
        .map(|items| Some(Seed::Items(items)))
}

impl TryFrom<&PackageManifest> for AppConfig {
    type Error = ConfigError;

    /// The configuration of a package: what a node runs.
    fn try_from(package: &PackageManifest) -> Result<Self, Self::Error> {
        let backends = package
            .backends
            .iter()
            .map(|(name, b)| {
                let backend = name.as_str().to_owned();
                let d = OriginTimeouts::DEFAULT;
                let max_connections = b.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
                if max_connections == 0 {
                    return Err(ConfigError::NoConnections { backend });
                }
                if let Some(host) = &b.override_host
                    && (host.parse::<http::uri::Authority>().is_err() || host.contains('@'))
                {
                    return Err(ConfigError::OverrideHost {
                        backend,
                        host: host.clone(),
                    });
                }
                Ok(BackendConfig {
                    name: backend,
                    url: b.url.clone(),
                    override_host: b.override_host.clone(),
                    timeouts: OriginTimeouts {
                        connect: b.connect_timeout.map_or(d.connect, |v| v.0),
                        first_byte: b.first_byte_timeout.map_or(d.first_byte, |v| v.0),
                        between_bytes: b.between_bytes_timeout.map_or(d.between_bytes, |v| v.0),
                    },
                    max_connections,
                    tls: TlsConfig {
                        verify: b.tls_verify.unwrap_or(true),
                        ca_pem: b.ca_pem.clone(),
                    },
                    allow_private: b.allow_private,
                    cache: b.cache.unwrap_or(true),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AppConfig {
            name: package.name.as_str().to_owned(),
            limits: Limits::DEFAULT.overridden_by(&package.limits),
            env: package
                .env
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect(),
            backends,
            egress: EgressConfig {
                allow: package.egress.allow.clone(),
                allow_private: package.egress.allow_private,
            },
            geo_overrides: package
                .geo_overrides
                .iter()
                .map(|(net, record)| (net.0, record.clone()))
                .collect(),
            version: None,
            kv_stores: package
                .kv_stores
                .iter()
                .map(|(name, s)| {
                    let d = KvLimits::DEFAULT;
                    Ok(KvStoreConfig {
                        name: name.as_str().to_owned(),
                        limits: KvLimits {
                            max_key_bytes: s.max_key_size.map_or(d.max_key_bytes, |v| v.0 as usize),
                            max_value_bytes: s
                                .max_value_size
                                .map_or(d.max_value_bytes, |v| v.0 as usize),
                            max_metadata_bytes: s
                                .max_metadata_size
                                .map_or(d.max_metadata_bytes, |v| v.0 as usize),
                        },
                        seed: packaged_seed(name.as_str(), &s.seed)?,
                    })
                })
                .collect::<Result<_, ConfigError>>()?,
            config: package.config.clone(),
            secret_stores: BTreeMap::new(),
            log_level: package.log_level,
            log_endpoints: package
                .log_endpoints
                .iter()
                .map(|name| LogEndpointConfig {
                    name: name.as_str().to_owned(),
                    target: LogTarget::Stream,
                })
                .collect(),
        })
    }
}

impl TryFrom<&Manifest> for AppConfig {
    type Error = ConfigError;

    /// The configuration of an app in development: its package's, plus what only the
    /// developer's machine has (KV seed files, log files).
    fn try_from(manifest: &Manifest) -> Result<Self, Self::Error> {
        let mut config = AppConfig::try_from(&PackageManifest::from_manifest(manifest)?)?;
        for store in &mut config.kv_stores {
            store.seed = manifest
                .kv_stores
                .iter()
                .find(|(name, _)| name.as_str() == store.name)
                .and_then(|(_, s)| s.file.as_ref())
                .map(|f| Seed::File(manifest.dir.join(f)));
        }
        for endpoint in &mut config.log_endpoints {
            let section = manifest
                .log_endpoints
                .iter()
                .find(|(name, _)| name.as_str() == endpoint.name)
                .map(|(_, e)| e);
            if let Some(e) = section
                && let Some(file) = &e.file
            {
                endpoint.target = LogTarget::File {
                    path: manifest.dir.join(file),
                    max_bytes: e.max_size.map_or(10 << 20, |s| s.0),
                    keep: e.keep.unwrap_or(5),
                };
            }
        }
        Ok(config)
    }
}

impl Limits {
    /// These limits with every limit the manifest section sets replaced.
    pub fn overridden_by(&self, section: &verge_manifest::LimitsSection) -> Limits {
        Limits {
            memory_bytes: section.memory.map_or(self.memory_bytes, |v| v.0),
            cpu_time: section.cpu_time.map_or(self.cpu_time, |v| v.0),
            wall_time: section.wall_time.map_or(self.wall_time, |v| v.0),
            max_request_body_bytes: section
                .max_request_body
                .map_or(self.max_request_body_bytes, |v| v.0),
            max_outbound_requests: section
                .max_outbound_requests
                .unwrap_or(self.max_outbound_requests),
            max_concurrent: section.max_concurrent.or(self.max_concurrent),
        }
    }
}
