//! From what a user hands over (a package, or a manifest and a component) to an app
//! the router serves: settings and secrets resolved, KV stores seeded, code loaded
//! (from the compile cache when it was compiled before).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use verge_cache::HttpPolicy;
use verge_manifest::{HttpCacheSection, LimitsSection, Manifest, Package};
use verge_runtime::{App, AppConfig, CacheStatus, LoadError, Runtime, SecretValue, Seed};
use verge_server::{HttpCache, LogWriter, Metrics, RoutedApp};
use verge_store::{
    Backend, InsertMode, InsertOptions, Kv, KvError, MemoryBackend, Namespace, OpenError,
    RedbBackend, RedbOnFirstUse, SeedError,
};

use crate::Reporter;

/// Where an app's component comes from.
pub enum Component {
    File(PathBuf),
    /// From a package (named by its file, for messages).
    Bytes {
        bytes: Vec<u8>,
        from: PathBuf,
    },
}

/// The largest component a package may hold.
pub const MAX_PACKAGED_COMPONENT: u64 = 512 << 20;

/// An app read but not loaded yet.
pub struct Prepared {
    pub component: Component,
    pub config: AppConfig,
    /// The app's `[http_cache]` (off for a bare component without a manifest).
    pub http_cache: HttpCacheSection,
}

/// Why an app could not be prepared or loaded.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the settings of app `{app}`")]
    Settings {
        app: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "secret `{name}` of secret store `{store}` comes from the environment variable {var}, which is not set"
    )]
    SecretNotSet {
        name: String,
        store: String,
        var: String,
    },
    #[error("seeding KV store `{store}`")]
    SeedFile {
        store: String,
        #[source]
        source: SeedError,
    },
    #[error("seeding KV store `{store}` from {from}: key `{key}`")]
    SeedItem {
        store: String,
        from: String,
        key: String,
        #[source]
        source: KvError,
    },
    #[error("loading {what}")]
    Load {
        what: String,
        #[source]
        source: LoadError,
    },
}

/// An app from its manifest (if any) and its built component; secrets come from
/// this machine's environment, `limits` override the manifest's.
pub fn from_manifest(
    manifest: Option<&Manifest>,
    component: PathBuf,
    limits: &LimitsSection,
) -> Result<Prepared, AppError> {
    let mut config = match manifest {
        Some(manifest) => {
            let settings = |source: Box<dyn std::error::Error + Send + Sync>| AppError::Settings {
                app: manifest.name.as_str().to_owned(),
                source,
            };
            let mut config = AppConfig::try_from(manifest).map_err(|e| settings(e.into()))?;
            config.secret_stores = manifest
                .secret_values(|var| std::env::var(var).ok())
                .map_err(|e| settings(e.into()))?
                .into_iter()
                .map(|(store, secrets)| {
                    let secrets = secrets
                        .into_iter()
                        .map(|(name, value)| (name, SecretValue::new(value)))
                        .collect();
                    (store.as_str().to_owned(), secrets)
                })
                .collect();
            config
        }
        None => AppConfig {
            name: component_name(&component),
            ..AppConfig::default()
        },
    };
    config.limits = config.limits.overridden_by(limits);
    let http_cache = manifest.map(|m| m.http_cache.clone()).unwrap_or_default();
    Ok(Prepared {
        component: Component::File(component),
        config,
        http_cache,
    })
}

/// A package's app; its secrets come from this machine's environment. `from` names
/// it in messages; `limits` override its own.
pub fn from_package(
    package: Package,
    from: &Path,
    limits: &LimitsSection,
) -> Result<Prepared, AppError> {
    let manifest = &package.manifest;
    let mut config = AppConfig::try_from(manifest).map_err(|e| AppError::Settings {
        app: manifest.name.as_str().to_owned(),
        source: e.into(),
    })?;
    for (store, declared) in &manifest.secret_stores {
        let mut secrets = BTreeMap::new();
        for (name, var) in &declared.env {
            let value = std::env::var(var).map_err(|_| AppError::SecretNotSet {
                name: name.clone(),
                store: store.as_str().to_owned(),
                var: var.clone(),
            })?;
            secrets.insert(name.clone(), SecretValue::new(value));
        }
        config
            .secret_stores
            .insert(store.as_str().to_owned(), secrets);
    }
    config.limits = config.limits.overridden_by(limits);
    let http_cache = manifest.http_cache.clone();
    Ok(Prepared {
        http_cache,
        component: Component::Bytes {
            bytes: package.component,
            from: from.to_owned(),
        },
        config,
    })
}

/// Loads a prepared app: seeds its stores, loads its code, and reports where the
/// code came from.
pub fn load(
    runtime: &Runtime,
    prepared: Prepared,
    log: &LogWriter,
    metrics: &Metrics,
    report: &Reporter,
) -> Result<RoutedApp, AppError> {
    let Prepared {
        component,
        config,
        http_cache,
    } = prepared;
    seed_stores(&runtime.config().node.kv, &config, report)?;
    let name = config.name.clone();
    let app = match &component {
        Component::File(path) => {
            App::load_file(runtime, path, config).map_err(|source| AppError::Load {
                what: path.display().to_string(),
                source,
            })?
        }
        Component::Bytes { bytes, from } => {
            App::load(runtime, bytes, config).map_err(|source| AppError::Load {
                what: format!("the component of {}", from.display()),
                source,
            })?
        }
    };
    let info = app.load_info();
    let how = match info.cache {
        CacheStatus::Hit => "from the compile cache",
        CacheStatus::Miss => "compiled, and cached for next time",
        CacheStatus::Disabled => "compiled (compile cache off)",
        CacheStatus::Shared => "sharing the code of another app",
    };
    report.status(
        "Loaded",
        &format!("{name} {how} in {} ms", info.elapsed.as_millis()),
    );
    let http_cache = http_cache.enabled.then(|| {
        Arc::new(HttpCache {
            cache: runtime.config().node.cache.clone(),
            namespace: name.as_str().into(),
            policy: HttpPolicy {
                default_ttl: http_cache.default_ttl.map(|d| d.0),
                share_set_cookie: http_cache.share_set_cookie,
            },
            debug_headers: http_cache.debug_headers,
        })
    });
    Ok(RoutedApp {
        guest_log: log.guest_sink(&name),
        metrics: metrics.app(&name),
        name: name.into(),
        app,
        http_cache,
    })
}

/// Where KV data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvBackend {
    /// A redb file in the data directory, kept across restarts.
    Redb,
    /// In memory, gone when the process stops.
    Memory,
}

/// The KV file inside a data directory.
pub const KV_FILE: &str = "kv.redb";

/// How often expired KV items are purged.
const KV_PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the KV service could not start.
#[derive(Debug, thiserror::Error)]
pub enum KvOpenError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("starting the KV purge thread")]
    Purger(#[source] std::io::Error),
}

/// The KV service. The store file is opened (and locked) at start only when the app
/// declares stores; otherwise on first use, so serving a component without stores
/// never touches (or contends for) the data directory.
pub fn open_kv(kind: KvBackend, data_dir: &Path, has_stores: bool) -> Result<Kv, KvOpenError> {
    let file = data_dir.join(KV_FILE);
    let backend: Arc<dyn Backend> = match kind {
        KvBackend::Memory => Arc::new(MemoryBackend::new()),
        KvBackend::Redb if has_stores => Arc::new(RedbBackend::open(&file)?),
        KvBackend::Redb => Arc::new(RedbOnFirstUse::new(&file)),
    };
    kv_over(backend)
}

/// The KV service over `backend` (a fleet node's: [`verge_fleet::FleetKv`]), its
/// expired items purged in the background.
pub fn kv_over(backend: Arc<dyn Backend>) -> Result<Kv, KvOpenError> {
    let kv = Kv::new(backend);
    kv.spawn_purger(KV_PURGE_EVERY)
        .map_err(KvOpenError::Purger)?;
    Ok(kv)
}

/// Adds the seed items each store lacks, so a restart keeps what the app wrote. A
/// node does this once per upload (for its fleet), not on every load.
pub(crate) fn seed_stores(kv: &Kv, config: &AppConfig, report: &Reporter) -> Result<(), AppError> {
    for store in &config.kv_stores {
        let Some(seed) = &store.seed else { continue };
        let (items, from) = match seed {
            Seed::File(file) => {
                let items = verge_store::load_seed(file).map_err(|source| AppError::SeedFile {
                    store: store.name.clone(),
                    source,
                })?;
                (items, file.display().to_string())
            }
            Seed::Items(items) => (items.clone(), "its package".to_owned()),
        };
        let ns = Namespace::new(&config.name, &store.name, store.limits);
        let mut added = 0;
        for item in items {
            let options = InsertOptions {
                mode: InsertMode::Add,
                metadata: item.metadata,
                ..InsertOptions::default()
            };
            match kv.insert(&ns, &item.key, item.value, options) {
                Ok(_) => added += 1,
                Err(KvError::Exists) => {}
                Err(source) => {
                    return Err(AppError::SeedItem {
                        store: store.name.clone(),
                        from: from.clone(),
                        key: item.key,
                        source,
                    });
                }
            }
        }
        if added > 0 {
            report.status(
                "Seeded",
                &format!("KV store `{}` with {added} items from {from}", store.name),
            );
        }
    }
    Ok(())
}

fn component_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("app")
        .to_owned()
}
