//! Building guests: find a wasm32 Rust toolchain, run cargo with it, and turn the
//! resulting core module into a `wasi:http/proxy` component.
//!
//! Two toolchains are supported, tried in this order:
//! 1. rustup with the `wasm32-wasip1` target installed (what most users have);
//! 2. Debian's `rustc-web`, `rust-web-src`, `wasi-libc` and `lld` packages, building
//!    the standard library from source (`-Zbuild-std`) — for machines that cannot
//!    download rustup targets. `scripts/install-guest-toolchain.sh` installs them.

mod componentize;
mod examples;
pub mod js;
pub mod python;
mod tool;
mod toolchain;
mod wit;

pub use componentize::{ComponentizeError, componentize};
pub use examples::{ExamplesError, build_example_components};
pub use toolchain::{
    GUEST_INITIAL_MEMORY_BYTES, Toolchain, ToolchainError, ToolchainKind, WASM_TARGET,
};
