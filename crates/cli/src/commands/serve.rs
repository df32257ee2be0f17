//! `verge serve`: run an app locally, one fresh instance per request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use verge_cache::{Cache, CacheConfig, DiskConfig, HttpPolicy};
use verge_manifest::{ByteSize, DurationValue, HttpCacheSection, LimitsSection, Manifest, Package};
use verge_runtime::{
    App, AppConfig, GeoProvider, MaxmindGeo, NodeServices, Runtime, RuntimeConfig, SecretValue,
};
use verge_server::admin::{AdminConfig, AdminServer};
use verge_server::client_ip::TrustedProxies;
use verge_server::{
    Console, HttpCache, LogWriter, Metrics, RoutedApp, Server, ServerConfig, SingleApp,
};
use verge_store::{
    InsertMode, InsertOptions, Kv, KvError, MemoryBackend, Namespace, RedbBackend, RedbOnFirstUse,
};

use crate::commands::build::build_app;
use crate::dev_control;
use crate::ui;

/// Serve an app on 127.0.0.1 for development.
///
/// PATH is an app directory (holding verge.toml; it is built first unless --no-build),
/// a component file (`.wasm`) built by any toolchain targeting wasi:http/proxy, or a
/// package (`.vpkg`) made by `verge pack`.
/// Prints `Listening on http://ADDR` once ready. Access and guest logs are JSON lines
/// on stdout; diagnostics go to stderr.
///
/// A bare component takes its settings from `--manifest FILE` (a verge.toml whose
/// [build] section is ignored) and the limit flags; the limit flags also override an
/// app directory's verge.toml.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  verge serve                          the app in this directory\n  \
    verge serve --watch                  rebuild and swap on every save\n  \
    verge serve app.wasm --memory 512MiB --cpu-time 200ms\n  \
    verge serve app.wasm --manifest verge.toml"
)]
pub struct Args {
    /// App directory or component file.
    #[arg(default_value = ".")]
    pub path: PathBuf,

    /// Settings for a bare component: a verge.toml ([build] is ignored).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Linear memory per instance, e.g. 256MiB [default: 128MiB, or verge.toml's].
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse)]
    pub memory: Option<ByteSize>,

    /// Guest CPU time per request, e.g. 200ms [default: 50ms, or verge.toml's].
    #[arg(long, value_name = "DURATION", value_parser = DurationValue::parse)]
    pub cpu_time: Option<DurationValue>,

    /// Wall time per request, e.g. 30s [default: 60s, or verge.toml's].
    #[arg(long, value_name = "DURATION", value_parser = DurationValue::parse)]
    pub wall_time: Option<DurationValue>,

    /// Largest request body, e.g. 1GiB [default: 100MiB, or verge.toml's].
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse)]
    pub max_request_body: Option<ByteSize>,

    /// Instances of the app that may run at once; more requests wait up to a second,
    /// then get 503 with Retry-After [default: no cap, or verge.toml's].
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u32>,

    /// Memory all running instances may claim together (each counts its memory
    /// limit), e.g. 2GiB; past it, requests wait up to a second, then get 503.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse)]
    pub memory_budget: Option<ByteSize>,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7878", env = "VERGE_LISTEN")]
    pub listen: SocketAddr,

    /// Rebuild and swap in the app when its sources change; requests in flight finish
    /// on the old version.
    #[arg(long)]
    pub watch: bool,

    /// Serve the app's last build instead of building it first.
    #[arg(long)]
    pub no_build: bool,

    /// Where compiled code is cached [default: the user cache dir, e.g. ~/.cache/verge].
    #[arg(long, env = "VERGE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not read or write the compile cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Most request headers accepted; more gets 431.
    #[arg(long, default_value_t = ServerConfig::default().max_header_count)]
    pub max_header_count: usize,

    /// Largest request head in bytes; more gets 431.
    #[arg(long, default_value_t = ServerConfig::default().max_header_bytes)]
    pub max_header_bytes: usize,

    /// Instances that may run at once (the pooling allocator's size).
    #[arg(long, default_value_t = RuntimeConfig::default().max_concurrent_instances)]
    pub max_instances: u32,

    /// Bytes of each instance's memory kept resident between requests and reset in
    /// place instead of being returned to the kernel (fewer page faults).
    #[arg(long, default_value_t = RuntimeConfig::default().memory_keep_resident_bytes)]
    pub memory_keep_resident: usize,

    /// Reset every page of a recycled memory with memset/madvise instead of scanning
    /// for the dirtied ones with Linux's PAGEMAP_SCAN.
    #[arg(long)]
    pub no_pagemap_scan: bool,

    /// A MaxMind-format geolocation database (.mmdb: GeoIP2/GeoLite2 City, ASN, or
    /// compatible) for verge:edge/geo. Repeat to combine a City and an ASN database.
    #[arg(long, value_name = "FILE", env = "VERGE_GEOIP_DB")]
    pub geoip_db: Vec<PathBuf>,

    /// The node's name, as guests see it (verge:edge/runtime).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "local",
        env = "VERGE_NODE_NAME"
    )]
    pub node_name: String,

    /// A proxy (IP or CIDR) whose X-Forwarded-For names the client. Repeatable.
    #[arg(long, value_name = "CIDR", value_parser = parse_net)]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// Connections from trusted proxies start with a PROXY protocol v2 header.
    #[arg(long, requires = "trusted_proxy")]
    pub proxy_protocol: bool,

    /// Where KV stores keep their data [default: .verge/ in the app directory, or
    /// beside the component].
    #[arg(long, value_name = "DIR", env = "VERGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Where KV data lives: `redb` (a file in the data directory, kept across
    /// restarts) or `memory` (gone when the server stops).
    #[arg(long, value_enum, default_value_t = KvBackendKind::Redb)]
    pub kv_backend: KvBackendKind,

    /// Memory for the edge cache (HTTP objects, origin fetches and the programmable
    /// cache of every app), e.g. 1GiB.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "256MiB")]
    pub edge_cache_memory: ByteSize,

    /// The largest object the edge cache stores; larger responses pass through.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "32MiB")]
    pub edge_cache_max_object: ByteSize,

    /// Keep edge-cache objects on disk too, in this directory (for the cache alone;
    /// emptied at start), so objects evicted from memory are not lost.
    #[arg(long, value_name = "DIR", env = "VERGE_EDGE_CACHE_DISK")]
    pub edge_cache_disk: Option<PathBuf>,

    /// Bytes of objects the disk tier keeps.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "1GiB")]
    pub edge_cache_disk_size: ByteSize,

    /// Serve the admin API (purge, /metrics) on this address; off unless set. Needs a
    /// token: --admin-token-file or VERGE_ADMIN_TOKEN.
    #[arg(long, value_name = "ADDR", env = "VERGE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// A file holding the admin API's bearer token (at least 16 characters).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// The KV backends `verge serve` can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KvBackendKind {
    Redb,
    Memory,
}

/// The KV file inside a data directory.
pub const KV_FILE: &str = "kv.redb";

/// How often expired KV items are purged.
const KV_PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    verge_manifest::IpNetKey::parse(text).map(|k| k.0)
}

/// What is being served, and the limits given on the command line.
#[derive(Clone)]
pub struct Source {
    pub kind: SourceKind,
    /// Limit flags; they override the manifest's.
    pub limits: LimitsSection,
}

#[derive(Clone)]
pub enum SourceKind {
    AppDir {
        dir: PathBuf,
    },
    Component {
        path: PathBuf,
        manifest: Option<PathBuf>,
    },
    /// A package made by `verge pack`: component and settings in one file.
    Package {
        path: PathBuf,
    },
}

impl Source {
    fn from_args(args: &Args) -> anyhow::Result<Source> {
        let kind = if args.path.is_dir() {
            if args.manifest.is_some() {
                anyhow::bail!(
                    "--manifest is for a bare .wasm component; {} is an app directory, \
                     whose verge.toml is used",
                    args.path.display()
                );
            }
            SourceKind::AppDir {
                dir: args.path.clone(),
            }
        } else if args.path.is_file() && args.path.extension().is_some_and(|e| e == "vpkg") {
            if args.watch || args.manifest.is_some() {
                anyhow::bail!(
                    "a package carries its own settings and cannot be rebuilt: drop --watch \
                     and --manifest"
                );
            }
            SourceKind::Package {
                path: args.path.clone(),
            }
        } else if args.path.is_file() {
            if args.watch {
                anyhow::bail!("--watch needs an app directory (with verge.toml), not a .wasm file");
            }
            SourceKind::Component {
                path: args.path.clone(),
                manifest: args.manifest.clone(),
            }
        } else {
            anyhow::bail!(
                "{} does not exist; pass an app directory (with verge.toml) or a .wasm component",
                args.path.display()
            );
        };
        Ok(Source {
            kind,
            limits: LimitsSection {
                memory: args.memory,
                cpu_time: args.cpu_time,
                wall_time: args.wall_time,
                max_request_body: args.max_request_body,
                max_outbound_requests: None,
                max_concurrent: args.max_concurrent,
            },
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let source = Source::from_args(&args)?;
    if args.edge_cache_max_object.0 > args.edge_cache_memory.0.min(u64::from(u32::MAX)) {
        anyhow::bail!(
            "--edge-cache-max-object ({} bytes) must not exceed --edge-cache-memory ({} bytes) or 4GiB",
            args.edge_cache_max_object.0,
            args.edge_cache_memory.0
        );
    }
    let mut log = LogWriter::spawn(std::io::stdout());
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // A person is watching: show the app's log lines as they come.
        log = log.with_console(Console {
            colour: std::env::var_os("NO_COLOR").is_none(),
        });
    }
    // The app's configuration decides the engine's memory slot size, so it is read
    // (and the app built) before the engine exists.
    let first = prepare(&source, !args.no_build)?;
    let has_stores = !first.config.kv_stores.is_empty();
    let geo = if args.geoip_db.is_empty() {
        None
    } else {
        let db = MaxmindGeo::open(&args.geoip_db)?;
        Some(Arc::new(db) as Arc<dyn GeoProvider>)
    };
    let defaults = RuntimeConfig::default();
    let data_dir = data_dir(&args, &source);
    let runtime = Runtime::new(RuntimeConfig {
        node: NodeServices {
            name: args.node_name.clone(),
            geo,
            kv: open_kv(args.kv_backend, &data_dir, has_stores)?,
            cache: Cache::open(CacheConfig {
                memory_bytes: args.edge_cache_memory.0,
                max_object_bytes: args.edge_cache_max_object.0,
                disk: args.edge_cache_disk.as_ref().map(|dir| DiskConfig {
                    dir: dir.clone(),
                    bytes: args.edge_cache_disk_size.0,
                }),
            })
            .with_context(|| match &args.edge_cache_disk {
                Some(dir) => format!("preparing the edge cache's disk tier in {}", dir.display()),
                None => "starting the edge cache".to_string(),
            })?,
            ..NodeServices::default()
        },
        compile_cache_dir: compile_cache_dir(&args)?,
        max_concurrent_instances: args.max_instances,
        max_memory_bytes: defaults
            .max_memory_bytes
            .max(first.config.limits.memory_bytes),
        memory_keep_resident_bytes: args.memory_keep_resident,
        pagemap_scan: !args.no_pagemap_scan,
        memory_budget_bytes: args.memory_budget.map(|b| b.0),
        ..defaults
    })
    .context("starting the Wasm runtime")?;
    let admin = admin_config(&args)?;
    let cache_enabled = first.http_cache.enabled;
    let metrics = Metrics::default();
    let first = load(&runtime, first, &log, &metrics)?;
    let registry = Arc::new(SingleApp::new(first));

    let server_config = ServerConfig {
        listen: args.listen,
        max_header_count: args.max_header_count,
        max_header_bytes: args.max_header_bytes,
        trusted_proxies: TrustedProxies(args.trusted_proxy.clone()),
        proxy_protocol: args.proxy_protocol,
        ..ServerConfig::default()
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async {
        let server = Server::bind(server_config, registry.clone(), log.clone()).await?;
        // `verge kv` reaches the stores through this while the file is locked (an app
        // without stores at start has neither file nor listener).
        // (and `verge purge` the cache of an app that has one).
        let needs_control = (args.kv_backend == KvBackendKind::Redb && has_stores) || cache_enabled;
        let _control = if needs_control {
            Some(
                dev_control::start(
                    runtime.config().node.kv.clone(),
                    runtime.config().node.cache.clone(),
                    registry.clone(),
                    &data_dir,
                )
                .await?,
            )
        } else {
            None
        };
        if let Some(admin) = admin {
            let admin = AdminServer::bind(
                admin,
                registry.clone(),
                runtime.config().node.cache.clone(),
                metrics.clone(),
            )
            .await?
            .with_logs(log.tap().clone());
            println!("Admin API on http://{}", admin.local_addr());
            tokio::spawn(admin.run());
        }
        if let SourceKind::AppDir { dir } = &source.kind
            && args.watch
        {
            crate::commands::watch::spawn(
                dir.clone(),
                source.clone(),
                runtime.clone(),
                registry.clone(),
                log.clone(),
                metrics.clone(),
            )?;
        }
        println!("Listening on http://{}", server.local_addr());
        server.run(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    ui::status("Stopped", "all requests finished");
    Ok(())
}

/// The admin listener's settings, if `--admin-listen` asks for one.
fn admin_config(args: &Args) -> anyhow::Result<Option<AdminConfig>> {
    let Some(listen) = args.admin_listen else {
        return Ok(None);
    };
    admin_token(args.admin_token_file.as_deref()).map(|token| Some(AdminConfig { listen, token }))
}

/// The admin token: from `file`, or `VERGE_ADMIN_TOKEN`; at least 16 characters.
pub fn admin_token(file: Option<&Path>) -> anyhow::Result<String> {
    let token = match (file, std::env::var("VERGE_ADMIN_TOKEN")) {
        (Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the admin token from {}", file.display()))?,
        (None, Ok(token)) => token,
        (None, Err(_)) => anyhow::bail!(
            "--admin-listen needs a token: put one in a file and pass --admin-token-file FILE, \
             or set VERGE_ADMIN_TOKEN"
        ),
    };
    let token = token.trim().to_owned();
    if token.len() < 16 || token.contains(char::is_whitespace) {
        anyhow::bail!(
            "the admin token must be at least 16 characters without spaces (try `openssl rand -hex 24`)"
        );
    }
    Ok(token)
}

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

/// An app read (and built, if asked) but not loaded yet.
pub struct Prepared {
    pub component: Component,
    pub config: AppConfig,
    /// The app's `[http_cache]` (off for a bare component without a manifest).
    pub http_cache: HttpCacheSection,
}

/// Builds the app (if asked) and turns its manifest and the limit flags into its
/// configuration.
pub fn prepare(source: &Source, build: bool) -> anyhow::Result<Prepared> {
    if let SourceKind::Package { path } = &source.kind {
        return prepare_package(source, path);
    }
    let (manifest, component) = match &source.kind {
        SourceKind::Package { .. } => unreachable!("handled above"),
        SourceKind::AppDir { dir } => {
            if build {
                let built = build_app(dir)?;
                (Some(built.manifest), built.component)
            } else {
                let manifest = Manifest::load_dir(dir)?;
                let component = dir.join(manifest.output());
                (Some(manifest), component)
            }
        }
        SourceKind::Component { path, manifest } => {
            let manifest = manifest.as_deref().map(Manifest::load_file).transpose()?;
            (manifest, path.clone())
        }
    };
    let mut config = match &manifest {
        Some(manifest) => {
            let context = || format!("the settings of app `{}`", manifest.name.as_str());
            let mut config = AppConfig::try_from(manifest).with_context(context)?;
            config.secret_stores = manifest
                .secret_values(|var| std::env::var(var).ok())
                .with_context(context)?
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
    config.limits = config.limits.overridden_by(&source.limits);
    let http_cache = manifest.map(|m| m.http_cache).unwrap_or_default();
    Ok(Prepared {
        component: Component::File(component),
        config,
        http_cache,
    })
}

/// A package file's configuration.
fn prepare_package(source: &Source, path: &Path) -> anyhow::Result<Prepared> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let package = Package::read_from(std::io::BufReader::new(file), MAX_PACKAGED_COMPONENT)
        .with_context(|| format!("reading the package {}", path.display()))?;
    prepare_packaged(package, path, &source.limits)
}

/// A package's configuration; its secrets come from this machine's environment.
/// `from` names it in messages; `limits` override its own.
pub fn prepare_packaged(
    package: Package,
    from: &Path,
    limits: &LimitsSection,
) -> anyhow::Result<Prepared> {
    let manifest = &package.manifest;
    let context = || format!("the settings of app `{}`", manifest.name.as_str());
    let mut config = AppConfig::try_from(manifest).with_context(context)?;
    for (store, declared) in &manifest.secret_stores {
        let mut secrets = BTreeMap::new();
        for (name, var) in &declared.env {
            let value = std::env::var(var).map_err(|_| {
                anyhow::anyhow!(
                    "secret `{name}` of secret store `{}` comes from the environment variable \
                     {var}, which is not set",
                    store.as_str()
                )
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

/// Loads a prepared app, printing where its code came from.
pub fn load(
    runtime: &Runtime,
    prepared: Prepared,
    log: &LogWriter,
    metrics: &Metrics,
) -> anyhow::Result<RoutedApp> {
    let Prepared {
        component,
        config,
        http_cache,
    } = prepared;
    seed_stores(&runtime.config().node.kv, &config)?;
    let name = config.name.clone();
    let app = match &component {
        Component::File(path) => App::load_file(runtime, path, config)
            .with_context(|| format!("loading {}", path.display()))?,
        Component::Bytes { bytes, from } => App::load(runtime, bytes, config)
            .with_context(|| format!("loading the component of {}", from.display()))?,
    };
    let info = app.load_info();
    let how = match info.cache {
        verge_runtime::CacheStatus::Hit => "from the compile cache".to_string(),
        verge_runtime::CacheStatus::Miss => "compiled, and cached for next time".to_string(),
        verge_runtime::CacheStatus::Disabled => "compiled (compile cache off)".to_string(),
        verge_runtime::CacheStatus::Shared => "sharing the code of another app".to_string(),
    };
    ui::status(
        "Loaded",
        format!("{name} {how} in {} ms", info.elapsed.as_millis()),
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

/// The data directory: `--data-dir`, or `.verge` beside the app.
pub fn data_dir(args: &Args, source: &Source) -> PathBuf {
    if let Some(dir) = &args.data_dir {
        return dir.clone();
    }
    let base = match &source.kind {
        SourceKind::AppDir { dir } => dir.clone(),
        SourceKind::Component { path, manifest } => manifest
            .as_deref()
            .unwrap_or(path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        SourceKind::Package { path } => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    base.join(".verge")
}

/// The KV service. The store file is opened (and locked) at start only when the app
/// declares stores; otherwise only if a reload adds some, so serving a component
/// without stores never touches (or contends for) the data directory.
pub fn open_kv(kind: KvBackendKind, data_dir: &Path, has_stores: bool) -> anyhow::Result<Kv> {
    let file = data_dir.join(KV_FILE);
    let backend: Arc<dyn verge_store::Backend> = match kind {
        KvBackendKind::Memory => Arc::new(MemoryBackend::new()),
        KvBackendKind::Redb if has_stores => Arc::new(RedbBackend::open(&file)?),
        KvBackendKind::Redb => Arc::new(RedbOnFirstUse::new(&file)),
    };
    let kv = Kv::new(backend);
    kv.spawn_purger(KV_PURGE_EVERY)
        .context("starting the KV purge thread")?;
    Ok(kv)
}

/// Adds the items of each store's seed file that the store lacks, so a restart
/// keeps what the app wrote.
fn seed_stores(kv: &Kv, config: &AppConfig) -> anyhow::Result<()> {
    for store in &config.kv_stores {
        let Some(file) = &store.seed else { continue };
        let items = verge_store::load_seed(file)
            .with_context(|| format!("seeding KV store `{}`", store.name))?;
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
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "seeding KV store `{}` from {}: key `{}`",
                            store.name,
                            file.display(),
                            item.key
                        )
                    });
                }
            }
        }
        if added > 0 {
            ui::status(
                "Seeded",
                format!(
                    "KV store `{}` with {added} items from {}",
                    store.name,
                    file.display()
                ),
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

fn compile_cache_dir(args: &Args) -> anyhow::Result<Option<PathBuf>> {
    if args.no_cache {
        return Ok(None);
    }
    if let Some(dir) = &args.cache_dir {
        return Ok(Some(dir.clone()));
    }
    let dirs = directories::BaseDirs::new()
        .context("no home directory to put the compile cache in; pass --cache-dir or --no-cache")?;
    Ok(Some(dirs.cache_dir().join("verge").join("compiled")))
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    ui::status("Stopping", "waiting for requests in flight");
}
