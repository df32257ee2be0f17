//! `verge serve`: run an app locally, one fresh instance per request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use verge_manifest::{ByteSize, DurationValue, LimitsSection};
use verge_node::Reporter;
use verge_node::app::{KvBackend, load, open_kv};
use verge_runtime::{NodeServices, Runtime, RuntimeConfig};
use verge_server::admin::{AdminApi, AdminServer};
use verge_server::{Console, LogWriter, Metrics, Server, SingleApp};

use crate::commands::source::{Source, SourceKind, data_dir, prepare};
use crate::dev_control;
use crate::flags::{EdgeFlags, admin_token};
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

    /// The node's name, as guests see it (verge:edge/runtime).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "local",
        env = "VERGE_NODE_NAME"
    )]
    pub node_name: String,

    /// Where KV stores keep their data [default: .verge/ in the app directory, or
    /// beside the component].
    #[arg(long, value_name = "DIR", env = "VERGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Where KV data lives: `redb` (a file in the data directory, kept across
    /// restarts) or `memory` (gone when the server stops).
    #[arg(long, value_enum, default_value_t = KvBackendKind::Redb)]
    pub kv_backend: KvBackendKind,

    /// Serve the admin API (purge, /metrics) on this address; off unless set. Needs a
    /// token: --admin-token-file or VERGE_ADMIN_TOKEN.
    #[arg(long, value_name = "ADDR", env = "VERGE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// A file holding the admin API's bearer token (at least 16 characters).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    #[command(flatten)]
    pub edge: EdgeFlags,
}

/// The KV backends `verge serve` can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KvBackendKind {
    Redb,
    Memory,
}

/// What `args` ask to serve.
fn source(args: &Args) -> anyhow::Result<Source> {
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let source = source(&args)?;
    let edge = args.edge.options()?;
    let mut log = LogWriter::spawn(std::io::stdout());
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // A person is watching: show the app's log lines as they come.
        log = log.with_console(Console {
            colour: std::env::var_os("NO_COLOR").is_none(),
        });
    }
    let report = Reporter::new(|word, message| ui::status(word, message));
    // The app's configuration decides the engine's memory slot size, so it is read
    // (and the app built) before the engine exists.
    let first = prepare(&source, !args.no_build)?;
    let has_stores = !first.config.kv_stores.is_empty();
    let data_dir = data_dir(args.data_dir.as_deref(), &source);
    let kv_backend = match args.kv_backend {
        KvBackendKind::Redb => KvBackend::Redb,
        KvBackendKind::Memory => KvBackend::Memory,
    };
    let services = NodeServices {
        name: args.node_name.clone(),
        geo: edge.geo()?,
        kv: open_kv(kv_backend, &data_dir, has_stores)?,
        cache: edge.open_cache()?,
        ..NodeServices::default()
    };
    let defaults = RuntimeConfig::default();
    let runtime = Runtime::new(RuntimeConfig {
        compile_cache_dir: compile_cache_dir(&args)?,
        max_memory_bytes: defaults
            .max_memory_bytes
            .max(first.config.limits.memory_bytes),
        memory_budget_bytes: args.memory_budget.map(|b| b.0),
        ..edge.runtime_config(services)
    })
    .context("starting the Wasm runtime")?;
    let admin_token = match args.admin_listen {
        Some(_) => Some(admin_token(args.admin_token_file.as_deref())?),
        None => None,
    };
    let cache_enabled = first.http_cache.enabled;
    let metrics = Metrics::default();
    let first = load(&runtime, first, &log, &metrics, &report)?;
    let registry = Arc::new(SingleApp::new(first));

    let server_config = edge.server_config(args.listen);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async {
        let server = Server::bind(server_config, registry.clone(), log.clone()).await?;
        // `verge kv` reaches the stores through this while the file is locked (an app
        // without stores at start has neither file nor listener), and `verge purge`
        // the cache of an app that has one.
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
        if let (Some(listen), Some(token)) = (args.admin_listen, admin_token) {
            let api = AdminApi::new(
                token,
                registry.clone(),
                runtime.config().node.cache.clone(),
                metrics.clone(),
            )
            .with_logs(log.tap().clone());
            let admin = AdminServer::bind(listen, Arc::new(api)).await?;
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
                report,
            )?;
        }
        println!("Listening on http://{}", server.local_addr());
        server.run(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    ui::status("Stopped", "all requests finished");
    Ok(())
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
