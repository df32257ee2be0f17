//! Compiled code cached on disk, so starting an app again compiles nothing.
//!
//! The key covers the component's bytes and `Engine::precompile_compatibility_hash`,
//! which itself covers the Wasmtime version and every engine setting that affects
//! code generation. A changed component, engine setting or Wasmtime release therefore
//! misses the cache instead of loading incompatible code.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

/// Where the compiled code of an app came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Loaded from the on-disk cache: nothing was compiled.
    Hit,
    /// Compiled now, and stored for next time.
    Miss,
    /// Compiled now; the cache is disabled (or could not be written).
    Disabled,
    /// Already loaded for another app of the same component: shared, nothing read.
    Shared,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Disabled => "disabled",
            CacheStatus::Shared => "shared",
        }
    }
}

/// Compiles `wasm`, or loads its compiled form from `dir`.
#[cfg(test)]
pub(crate) fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> Result<(Component, CacheStatus), LoadError> {
    load_or_compile_keyed(engine, wasm, &cache_key(engine, wasm), dir)
}

/// [`load_or_compile`] for a component whose [`cache_key`] is `key`.
pub(crate) fn load_or_compile_keyed(
    engine: &Engine,
    wasm: &[u8],
    key: &str,
    dir: Option<&Path>,
) -> Result<(Component, CacheStatus), LoadError> {
    let Some(dir) = dir else {
        return Ok((compile(engine, wasm)?, CacheStatus::Disabled));
    };
    let path = entry_path(dir, key);
    if path.exists() {
        // SAFETY: the file sits in Verge's private cache directory, was written by
        // `Component::serialize` of this same engine configuration and Wasmtime
        // version (both are in the file name), and is renamed into place only once
        // complete. Wasmtime also checks the header and refuses incompatible code.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok((component, CacheStatus::Hit)),
            Err(e) => tracing::warn!(path = %path.display(), error = %e,
                "ignoring unusable compile cache entry; recompiling"),
        }
    }
    let component = compile(engine, wasm)?;
    let status = match store(&component, dir, &path) {
        Ok(()) => CacheStatus::Miss,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "could not write the compile cache");
            CacheStatus::Disabled
        }
    };
    Ok((component, status))
}

/// Loads of the same component take turns: the second waits for the first, then
/// finds its code in the cache instead of compiling it again. (A fleet node
/// precompiles an uploaded version in the background; an activation arriving
/// meanwhile would otherwise compile it a second time on the same cores.)
#[derive(Default)]
pub(crate) struct Turns(Mutex<HashMap<String, Arc<Mutex<()>>>>);

impl Turns {
    /// The lock that loads of the component keyed `key` take in turn.
    pub(crate) fn of(&self, key: &str) -> Arc<Mutex<()>> {
        let mut turns = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Locks no load holds any more go, so the map stays as small as the loads
        // in progress.
        turns.retain(|_, lock| Arc::strong_count(lock) > 1);
        turns.entry(key.to_owned()).or_default().clone()
    }
}

/// Where the compiled code of `key` lives in `dir`.
pub(crate) fn entry_path(dir: &Path, key: &str) -> std::path::PathBuf {
    dir.join(format!("{key}.cwasm"))
}

/// The cached code of `key` in `dir`, as Wasmtime serialized it.
pub(crate) fn read_entry(dir: &Path, key: &str) -> Option<Vec<u8>> {
    std::fs::read(entry_path(dir, key)).ok()
}

/// Puts `bytes` into `dir` as the compiled code of `key`, after checking that they are
/// code for this engine. Whoever calls it vouches for the bytes' origin (see
/// `Runtime::install_code`).
pub(crate) fn write_entry(dir: &Path, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!("`{key}` is not a compile cache key");
    }
    match Engine::detect_precompiled(bytes) {
        Some(wasmtime::Precompiled::Component) => {}
        _ => anyhow::bail!("not a compiled component"),
    }
    // Wasmtime checks its version and settings when loading: an entry made by
    // another build is ignored then and compiled anew.
    std::fs::create_dir_all(dir)?;
    write_atomically(dir, &entry_path(dir, key), bytes)
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, wasm).map_err(LoadError::Compile)
}

fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomically(dir, path, &component.serialize()?)
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    // Write to a temporary file of this write's own and rename, so a reader never
    // sees half a file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Hex SHA-256 of the component bytes and the engine's compatibility hash.
pub(crate) fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(wasm);
    hex::encode(hasher.0.finalize())
}

/// Feeds `Hash` impls into SHA-256, which (unlike `DefaultHasher`) is stable across
/// processes and releases.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is read")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    fn component(name: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component (core module (func (export "{name}"))))"#
        ))
        .unwrap()
    }

    #[test]
    fn a_second_load_hits_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, wasm) = (engine(), component("a"));
        let (_, first) = load_or_compile(&engine, &wasm, Some(dir.path())).unwrap();
        assert_eq!(first, CacheStatus::Miss);
        let (_, second) = load_or_compile(&engine, &wasm, Some(dir.path())).unwrap();
        assert_eq!(second, CacheStatus::Hit);
    }

    #[test]
    fn keys_differ_by_content_and_by_engine_settings() {
        let engine = engine();
        assert_eq!(
            cache_key(&engine, &component("a")),
            cache_key(&engine, &component("a"))
        );
        assert_ne!(
            cache_key(&engine, &component("a")),
            cache_key(&engine, &component("b"))
        );
        let mut config = wasmtime::Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        let other = Engine::new(&config).unwrap();
        assert_ne!(
            cache_key(&engine, &component("a")),
            cache_key(&other, &component("a"))
        );
    }

    #[test]
    fn a_corrupt_entry_is_recompiled_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, wasm) = (engine(), component("a"));
        let path = dir
            .path()
            .join(format!("{}.cwasm", cache_key(&engine, &wasm)));
        std::fs::write(&path, b"definitely not compiled code").unwrap();
        let (_, status) = load_or_compile(&engine, &wasm, Some(dir.path())).unwrap();
        assert_eq!(status, CacheStatus::Miss);
        let (_, again) = load_or_compile(&engine, &wasm, Some(dir.path())).unwrap();
        assert_eq!(
            again,
            CacheStatus::Hit,
            "the entry was replaced by a good one"
        );
    }

    #[test]
    fn concurrent_loads_of_one_component_compile_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, wasm) = (engine(), component("a"));
        let key = cache_key(&engine, &wasm);
        let turns = Turns::default();
        let statuses: Vec<CacheStatus> = std::thread::scope(|scope| {
            let loads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let turn = turns.of(&key);
                        let _turn = turn.lock().unwrap();
                        load_or_compile_keyed(&engine, &wasm, &key, Some(dir.path()))
                            .unwrap()
                            .1
                    })
                })
                .collect();
            loads.into_iter().map(|l| l.join().unwrap()).collect()
        });
        let compiled = statuses.iter().filter(|s| **s == CacheStatus::Miss).count();
        assert_eq!(
            compiled, 1,
            "one compile, the rest from the cache: {statuses:?}"
        );
        drop(turns.of("another component"));
        let left: Vec<String> = turns.0.lock().unwrap().keys().cloned().collect();
        assert_eq!(left, ["another component"], "finished turns do not pile up");
    }

    #[test]
    fn code_read_from_one_cache_loads_from_another_without_compiling() {
        let (made, taken) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (engine, wasm) = (engine(), component("a"));
        let key = cache_key(&engine, &wasm);
        assert!(read_entry(made.path(), &key).is_none());
        load_or_compile(&engine, &wasm, Some(made.path())).unwrap();
        let code = read_entry(made.path(), &key).expect("the compile left its code");
        write_entry(taken.path(), &key, &code).unwrap();
        let (_, status) = load_or_compile(&engine, &wasm, Some(taken.path())).unwrap();
        assert_eq!(status, CacheStatus::Hit);
    }

    #[test]
    fn what_is_not_compiled_code_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, wasm) = (engine(), component("a"));
        let key = cache_key(&engine, &wasm);
        let refused = write_entry(dir.path(), &key, &wasm).unwrap_err();
        assert!(
            refused.to_string().contains("not a compiled component"),
            "{refused}"
        );
        let refused = write_entry(dir.path(), "../../etc/passwd", b"x").unwrap_err();
        assert!(
            refused.to_string().contains("not a compile cache key"),
            "{refused}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn no_cache_dir_means_disabled() {
        let (_, status) = load_or_compile(&engine(), &component("a"), None).unwrap();
        assert_eq!(status, CacheStatus::Disabled);
    }
}
