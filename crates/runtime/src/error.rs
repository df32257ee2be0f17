//! Errors raised while loading an app.

use std::path::PathBuf;

/// Why a component could not be turned into a runnable app.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("log endpoint `{endpoint}`: could not open {path}")]
    LogFile {
        endpoint: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("this is not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component; build it with `verge build`, \
         or turn it into a component with `wasm-tools component new --adapt` and the \
         wasi_snapshot_preview1 proxy adapter"
    )]
    CoreModule,
    #[error("the component failed to compile")]
    Compile(#[source] wasmtime::Error),
    #[error(
        "the component imports something Verge does not provide (Verge offers the \
         wasi:http/proxy world plus the rest of WASI 0.2)"
    )]
    UnsatisfiedImport(#[source] wasmtime::Error),
    #[error(
        "the component does not export `wasi:http/incoming-handler@0.2.x`, so it cannot \
         handle requests; target the `wasi:http/proxy` world"
    )]
    MissingHandlerExport(#[source] wasmtime::Error),
    #[error("the engine could not be configured")]
    Engine(#[source] wasmtime::Error),
    #[error(
        "memory limit {requested} bytes is above the engine's per-instance maximum of {max} \
         bytes (the memory slot size is fixed when the server starts, from the largest \
         configured app: restart it to raise the limit)"
    )]
    MemoryLimitTooLarge { requested: u64, max: u64 },
    #[error("TLS could not be set up: {0}")]
    Tls(String),
    #[error("could not use a backend's CA certificates (ca_file): {why}")]
    CaCertificates { why: String },
    #[error("invalid app settings")]
    Config(#[from] crate::config::ConfigError),
}
