//! Core module → component, with the `wasi_snapshot_preview1` proxy adapter.

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
};
use wit_component::ComponentEncoder;

/// Why a module could not become a component.
#[derive(Debug, thiserror::Error)]
pub enum ComponentizeError {
    #[error("this is not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm,
    #[error(
        "the module could not be turned into a wasi:http/proxy component; does it export \
         `wasi:http/incoming-handler` (e.g. through `#[verge::main]`)?"
    )]
    Encode(#[source] anyhow::Error),
}

/// Turns a wasm32-wasip1 core module into a component. `wasi_snapshot_preview1`
/// imports (what Rust's standard library uses) are served by the proxy adapter, which
/// maps them onto the `wasi:http/proxy` world. A component is returned unchanged.
pub fn componentize(wasm: &[u8]) -> Result<Vec<u8>, ComponentizeError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(ComponentizeError::NotWasm);
    }
    let is_component = wasm[6..8] != [0, 0];
    if is_component {
        return Ok(wasm.to_vec());
    }
    ComponentEncoder::default()
        .module(wasm)
        .and_then(|e| {
            e.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
            )
        })
        .map(|e| e.validate(true))
        .and_then(|mut e| e.encode())
        .map_err(ComponentizeError::Encode)
}
