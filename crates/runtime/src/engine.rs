//! The shared Wasmtime engine: configuration, pooling allocator, epoch ticker, linker.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use verge_cache::{Cache, CacheConfig};
use verge_store::{Kv, MemoryBackend};

use crate::error::LoadError;
use crate::host::geo::GeoProvider;
use crate::host::ratelimit::RateLimiter;
use crate::state::RequestState;

/// Engine-wide settings, fixed for the life of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled code is cached; `None` disables the on-disk cache.
    pub compile_cache_dir: Option<PathBuf>,
    /// Instances (and their memories) that may exist at once across all apps.
    pub max_concurrent_instances: u32,
    /// Largest linear memory any app may ask for (the pooling allocator's slot size).
    pub max_memory_bytes: u64,
    /// Bytes of each memory slot kept resident and reset with `memset` rather than
    /// returned to the kernel with `madvise`: no page faults on the next request.
    pub memory_keep_resident_bytes: usize,
    /// Use Linux's `PAGEMAP_SCAN` (6.7+) to reset only the pages a request dirtied,
    /// instead of the whole keep-resident prefix. Ignored where unsupported.
    pub pagemap_scan: bool,
    /// Epoch tick; CPU limits are checked (and long-running guests yield) once per tick.
    pub epoch_tick: Duration,
    /// Native stack available to Wasm, in bytes.
    pub max_wasm_stack_bytes: usize,
    /// What this node offers every app (its name, geolocation data).
    pub node: NodeServices,
    /// Memory all running instances may claim together, counted by their apps'
    /// memory limits; `None`: no budget beyond the instance pool.
    pub memory_budget_bytes: Option<u64>,
    /// How long a request waits for room (the budget, its app's instance cap) before
    /// it is answered 503 `overloaded`.
    pub admission_wait: Duration,
}

/// Node-wide services the host APIs draw on.
#[derive(Clone)]
pub struct NodeServices {
    /// Shown to guests (`verge:edge/runtime.node-name`) and in logs.
    pub name: String,
    /// Geolocation for `verge:edge/geo`; `None` answers "no record" for every address
    /// not in an app's overrides.
    pub geo: Option<Arc<dyn GeoProvider>>,
    /// The KV service every app's stores live in (each app in its own namespace).
    pub kv: Kv,
    /// Rate counters and penalty boxes of every app (each in its own namespace).
    pub ratelimit: Arc<RateLimiter>,
    /// The edge cache every app's objects live in (each app in its own namespace).
    pub cache: Cache,
}

impl Default for NodeServices {
    fn default() -> Self {
        NodeServices {
            name: "local".into(),
            geo: None,
            kv: Kv::new(Arc::new(MemoryBackend::new())),
            ratelimit: Arc::new(RateLimiter::default()),
            cache: Cache::new(CacheConfig::default()),
        }
    }
}

impl std::fmt::Debug for NodeServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServices")
            .field("name", &self.name)
            .field("geo", &self.geo.is_some())
            .finish()
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            compile_cache_dir: None,
            max_concurrent_instances: 1000,
            max_memory_bytes: 128 << 20,
            memory_keep_resident_bytes: 2 << 20,
            pagemap_scan: true,
            epoch_tick: Duration::from_millis(1),
            max_wasm_stack_bytes: 512 << 10,
            node: NodeServices::default(),
            memory_budget_bytes: None,
            admission_wait: Duration::from_secs(1),
        }
    }
}

/// One Wasmtime engine with its linker and epoch ticker, shared by every app.
///
/// Cheap to clone. The ticker thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<RequestState>,
    pub(crate) config: RuntimeConfig,
    /// The memory budget in MiB permits, if there is one.
    pub(crate) memory_budget: Option<Arc<tokio::sync::Semaphore>>,
    /// One permit per slot of the pooling allocator: a request waits for one
    /// (briefly) instead of failing when all are taken.
    pub(crate) instance_pool: Arc<tokio::sync::Semaphore>,
    /// Code loaded for some app, by compile-cache key: apps of the same component
    /// (one template, many tenants) share its code and pre-instantiation.
    pub(crate) loaded_code: std::sync::Mutex<HashMap<String, Weak<LoadedCode>>>,
    /// Loads of one component take turns, so it is compiled once.
    pub(crate) load_turns: crate::compile_cache::Turns,
    ticker_stop: Arc<AtomicBool>,
}

/// A component's code, linked and ready to instantiate; shared by the apps using it.
pub(crate) struct LoadedCode {
    pub(crate) pre: ProxyPre<RequestState>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine = Engine::new(&wasmtime_config(&config)).map_err(LoadError::Engine)?;
        let linker = crate::state::linker(&engine).map_err(LoadError::Engine)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        crate::meter::calibrate_clock();
        spawn_epoch_ticker(&engine, config.epoch_tick, ticker_stop.clone());
        let memory_budget = config.memory_budget_bytes.map(|bytes| {
            let mib = (bytes >> 20).clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u64);
            Arc::new(tokio::sync::Semaphore::new(mib as usize))
        });
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                memory_budget,
                instance_pool: Arc::new(tokio::sync::Semaphore::new(
                    config.max_concurrent_instances.max(1) as usize,
                )),
                config,
                loaded_code: Default::default(),
                load_turns: Default::default(),
                ticker_stop,
            }),
        })
    }

    /// The underlying Wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The compile cache's name for `wasm`'s code on this engine: the same on every
    /// node with the same Wasmtime build and settings, so nodes can share the code.
    pub fn code_key(&self, wasm: &[u8]) -> String {
        crate::compile_cache::cache_key(self.engine(), wasm)
    }

    /// The compiled code the cache holds under `key` (see [`Runtime::code_key`]),
    /// as Wasmtime serialized it; `None` without a cache or an entry.
    pub fn cached_code(&self, key: &str) -> Option<Vec<u8>> {
        crate::compile_cache::read_entry(self.config().compile_cache_dir.as_deref()?, key)
    }

    /// Whether the compile cache holds code under `key`.
    pub fn has_code(&self, key: &str) -> bool {
        self.config()
            .compile_cache_dir
            .as_deref()
            .is_some_and(|dir| crate::compile_cache::entry_path(dir, key).exists())
    }

    /// Puts compiled code made elsewhere into the compile cache under `key`, so that
    /// loading the component it was made from compiles nothing. Bytes that are not a
    /// compiled component are refused; code of another Wasmtime build or other
    /// settings is refused when loaded, and compiled anew.
    ///
    /// # Safety
    ///
    /// Compiled code runs natively, outside the sandbox's checks: `bytes` must be what
    /// [`Runtime::cached_code`] returned for `key` on a node the caller trusts (e.g.
    /// authenticated by a key only the fleet holds), never bytes from a guest or a user.
    pub unsafe fn install_code(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let Some(dir) = self.config().compile_cache_dir.as_deref() else {
            anyhow::bail!("this runtime has no compile cache");
        };
        crate::compile_cache::write_entry(dir, key, bytes)
    }
}

/// Keep-resident bytes when dirty pages cannot be found with PAGEMAP_SCAN.
const FALLBACK_KEEP_RESIDENT: usize = 64 << 10;

fn wasmtime_config(config: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let n = config.max_concurrent_instances;
    // Without PAGEMAP_SCAN, keep-resident memsets the whole prefix on every reset, dirty
    // or not: 2 MiB per request cost 160 µs. Keep only a small prefix resident then.
    let scan = config.pagemap_scan && PoolingAllocationConfig::is_pagemap_scan_available();
    let keep_resident = if scan {
        config.memory_keep_resident_bytes
    } else {
        config
            .memory_keep_resident_bytes
            .min(FALLBACK_KEEP_RESIDENT)
    };
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_memory_size(config.max_memory_bytes as usize)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(keep_resident.min(64 << 10))
        .pagemap_scan(if scan { Enabled::Auto } else { Enabled::No });

    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack_bytes)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    wasm
}

/// One thread per engine advances the epoch; guests check it at loop heads and calls.
fn spawn_epoch_ticker(engine: &Engine, tick: Duration, stop: Arc<AtomicBool>) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("verge-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawning the epoch ticker thread");
}
