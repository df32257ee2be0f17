//! `verge serve`: run an app locally, one fresh instance per request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use verge_manifest::Manifest;
use verge_runtime::{App, AppSettings, Limits, Runtime, RuntimeConfig};
use verge_server::{LogWriter, RoutedApp, Server, ServerConfig, SingleApp};

use crate::commands::build::build_app;
use crate::ui;

/// Serve an app on 127.0.0.1 for development.
///
/// PATH is an app directory (holding verge.toml; it is built first unless --no-build)
/// or a component file (`.wasm`) built by any toolchain targeting wasi:http/proxy.
/// Prints `Listening on http://ADDR` once ready. Access and guest logs are JSON lines
/// on stdout; diagnostics go to stderr.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// App directory or component file.
    #[arg(default_value = ".")]
    pub path: PathBuf,

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
}

/// What is being served: a manifest-described app, or a bare component.
pub enum Source {
    AppDir { dir: PathBuf },
    Component { path: PathBuf },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let source = if args.path.is_dir() {
        Source::AppDir {
            dir: args.path.clone(),
        }
    } else if args.path.is_file() {
        Source::Component {
            path: args.path.clone(),
        }
    } else {
        anyhow::bail!(
            "{} does not exist; pass an app directory (with verge.toml) or a .wasm component",
            args.path.display()
        );
    };
    if args.watch && matches!(source, Source::Component { .. }) {
        anyhow::bail!("--watch needs an app directory (with verge.toml), not a .wasm file");
    }

    let runtime = Runtime::new(RuntimeConfig {
        compile_cache_dir: compile_cache_dir(&args)?,
        max_concurrent_instances: args.max_instances,
        memory_keep_resident_bytes: args.memory_keep_resident,
        pagemap_scan: !args.no_pagemap_scan,
        ..RuntimeConfig::default()
    })
    .context("starting the Wasm runtime")?;
    let log = LogWriter::spawn(std::io::stdout());
    let first = load(&runtime, &source, !args.no_build, &log)?;
    let registry = Arc::new(SingleApp::new(first));

    let server_config = ServerConfig {
        listen: args.listen,
        max_header_count: args.max_header_count,
        max_header_bytes: args.max_header_bytes,
        ..ServerConfig::default()
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async {
        let server = Server::bind(server_config, registry.clone(), log.clone()).await?;
        if let Source::AppDir { dir } = &source
            && args.watch
        {
            crate::commands::watch::spawn(
                dir.clone(),
                runtime.clone(),
                registry.clone(),
                log.clone(),
            )?;
        }
        println!("Listening on http://{}", server.local_addr());
        server.run(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    ui::status("Stopped", "all requests finished");
    Ok(())
}

/// Builds (if asked) and loads the app, printing where its code came from.
pub fn load(
    runtime: &Runtime,
    source: &Source,
    build: bool,
    log: &LogWriter,
) -> anyhow::Result<RoutedApp> {
    let (name, component, settings) = match source {
        Source::AppDir { dir } => {
            let (manifest, component) = if build {
                let built = build_app(dir)?;
                (built.manifest, built.component)
            } else {
                let manifest = Manifest::load_dir(dir)?;
                let component = dir.join(manifest.output());
                (manifest, component)
            };
            let settings = app_settings(&manifest);
            (manifest.name.as_str().to_owned(), component, settings)
        }
        Source::Component { path } => {
            let name = component_name(path);
            let settings = AppSettings {
                name: name.clone(),
                ..AppSettings::default()
            };
            (name, path.clone(), settings)
        }
    };
    let app = App::load_file(runtime, &component, settings)
        .with_context(|| format!("loading {}", component.display()))?;
    let info = app.load_info();
    let how = match info.cache {
        verge_runtime::CacheStatus::Hit => "from the compile cache".to_string(),
        verge_runtime::CacheStatus::Miss => "compiled, and cached for next time".to_string(),
        verge_runtime::CacheStatus::Disabled => "compiled (compile cache off)".to_string(),
    };
    ui::status(
        "Loaded",
        format!("{name} {how} in {} ms", info.elapsed.as_millis()),
    );
    Ok(RoutedApp {
        guest_log: log.guest_sink(&name),
        name: name.into(),
        app,
    })
}

/// Manifest limits over the platform defaults.
fn app_settings(manifest: &Manifest) -> AppSettings {
    let d = Limits::DEFAULT;
    let l = &manifest.limits;
    AppSettings {
        name: manifest.name.as_str().to_owned(),
        limits: Limits {
            memory_bytes: l.memory.map_or(d.memory_bytes, |v| v.0),
            cpu_time: l.cpu_time.map_or(d.cpu_time, |v| v.0),
            wall_time: l.wall_time.map_or(d.wall_time, |v| v.0),
            max_request_body_bytes: l.max_request_body.map_or(d.max_request_body_bytes, |v| v.0),
        },
        env: manifest.env_pairs(),
    }
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

async fn shutdown_signal() {
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
