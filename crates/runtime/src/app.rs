//! A loaded app: compiled, linked and pre-instantiated once, instantiated per request.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::compile_cache::{self, CacheStatus};
use crate::config::AppConfig;
use crate::engine::{LoadedCode, Runtime};
use crate::error::LoadError;
use crate::host::AppHost;

/// How loading went.
#[derive(Debug, Clone, Copy)]
pub struct LoadInfo {
    pub cache: CacheStatus,
    pub elapsed: Duration,
}

/// A runnable app. Cheap to clone; requests in flight keep the version they started on.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<AppInner>,
}

pub(crate) struct AppInner {
    pub(crate) runtime: Runtime,
    pub(crate) code: Arc<LoadedCode>,
    pub(crate) config: AppConfig,
    /// Each host API's per-app state.
    pub(crate) host: Arc<AppHost>,
    pub(crate) load_info: LoadInfo,
    /// The app's own cap on concurrent instances (`limits.max_concurrent`).
    pub(crate) instances: Option<Arc<tokio::sync::Semaphore>>,
}

impl App {
    /// Reads a component from disk and loads it.
    pub fn load_file(runtime: &Runtime, path: &Path, config: AppConfig) -> Result<App, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::load(runtime, &bytes, config)
    }

    /// Compiles (or loads from the compile cache), links and pre-instantiates a
    /// `wasi:http/proxy` component.
    pub fn load(runtime: &Runtime, wasm: &[u8], config: AppConfig) -> Result<App, LoadError> {
        let started = Instant::now();
        check_is_component(wasm)?;
        let max = runtime.config().max_memory_bytes;
        if config.limits.memory_bytes > max {
            return Err(LoadError::MemoryLimitTooLarge {
                requested: config.limits.memory_bytes,
                max,
            });
        }
        let (code, cache) = load_code(runtime, wasm)?;
        let version = match &config.version {
            Some(v) => v.clone(),
            None => {
                use sha2::Digest;
                hex::encode(&sha2::Sha256::digest(wasm)[..6])
            }
        };
        let host = Arc::new(AppHost::new(&config, &runtime.config().node, version)?);
        let instances = config
            .limits
            .max_concurrent
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1) as usize)));
        Ok(App {
            inner: Arc::new(AppInner {
                runtime: runtime.clone(),
                instances,
                code,
                config,
                host,
                load_info: LoadInfo {
                    cache,
                    elapsed: started.elapsed(),
                },
            }),
        })
    }

    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    pub fn load_info(&self) -> LoadInfo {
        self.inner.load_info
    }
}

/// The component's code: shared with another app of the same component if one is
/// loaded, else compiled (or read from the compile cache), linked and pre-instantiated.
fn load_code(runtime: &Runtime, wasm: &[u8]) -> Result<(Arc<LoadedCode>, CacheStatus), LoadError> {
    let key = compile_cache::cache_key(runtime.engine(), wasm);
    let loaded = &runtime.inner.loaded_code;
    let shared = loaded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .and_then(Weak::upgrade);
    if let Some(code) = shared {
        return Ok((code, CacheStatus::Shared));
    }
    let turn = runtime.inner.load_turns.of(&key);
    let _turn = turn.lock().unwrap_or_else(|e| e.into_inner());
    // A load that held the turn before this one may have left the code loaded.
    let shared = loaded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .and_then(Weak::upgrade);
    if let Some(code) = shared {
        return Ok((code, CacheStatus::Shared));
    }
    let (component, cache) = compile_cache::load_or_compile_keyed(
        runtime.engine(),
        wasm,
        &key,
        runtime.config().compile_cache_dir.as_deref(),
    )?;
    let instance_pre = runtime
        .inner
        .linker
        .instantiate_pre(&component)
        .map_err(LoadError::UnsatisfiedImport)?;
    let pre = ProxyPre::new(instance_pre).map_err(LoadError::MissingHandlerExport)?;
    let code = Arc::new(LoadedCode { pre });
    let mut loaded = loaded.lock().unwrap_or_else(|e| e.into_inner());
    loaded.retain(|_, code| code.strong_count() > 0);
    loaded.insert(key, Arc::downgrade(&code));
    Ok((code, cache))
}

/// Component binaries are `\0asm` followed by version 0x0d and layer 1; core modules
/// have layer 0.
fn check_is_component(wasm: &[u8]) -> Result<(), LoadError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    if wasm[6..8] == [0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}
