//! Finding a Rust toolchain that can build wasm32 guests, and the cargo command for it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target guests are built for; the proxy adapter turns the result into a component.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// Initial linear memory of every guest. Rust's default leaves no heap in the initial
/// memory, so a guest's first allocations grow it, and each growth (and its undoing
/// when the instance's slot is recycled) is an `mprotect` with a TLB shootdown across
/// cores. Starting at 4 MiB avoids that for typical handlers and costs nothing for
/// pages never touched: the SDK's hello went from 44 to 33 µs per request (BENCHMARKS.md).
pub const GUEST_INITIAL_MEMORY_BYTES: u64 = 4 << 20;

/// Debian's web toolchain: a rustc with standard library sources, WASI libc and lld.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_STD_SRC: &str = "/usr/lib/rustlib/src/rust/library";
const DEBIAN_WASI_LIBC: &str = "/usr/lib/wasm32-wasi";
const DEBIAN_WASM_LD: &str = "/usr/bin/wasm-ld";

#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error(
        "no Rust toolchain that can build wasm32 guests was found.\n\
         Install one of:\n  \
         - rustup's target:  rustup target add {WASM_TARGET}\n  \
         - on Debian 12 without rustup targets:  sudo scripts/install-guest-toolchain.sh\n    \
           (apt-get install rustc-web cargo-web rust-web-src wasi-libc lld)\n\
         Missing for the Debian toolchain: {missing}"
    )]
    NotFound { missing: String },
}

/// Which toolchain was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolchainKind {
    /// rustup with the `wasm32-wasip1` target installed.
    Rustup,
    /// Debian's packages, building std from source.
    DebianBuildStd,
}

/// A toolchain able to build `wasm32-wasip1` guests.
#[derive(Debug, Clone)]
pub struct Toolchain {
    kind: ToolchainKind,
}

impl Toolchain {
    /// Finds a toolchain: rustup's target first, then Debian's packages.
    pub fn detect() -> Result<Toolchain, ToolchainError> {
        if rustup_has_target() {
            return Ok(Toolchain {
                kind: ToolchainKind::Rustup,
            });
        }
        let missing: Vec<&str> = [
            DEBIAN_RUSTC,
            DEBIAN_CARGO,
            DEBIAN_STD_SRC,
            DEBIAN_WASI_LIBC,
            DEBIAN_WASM_LD,
        ]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
        if missing.is_empty() {
            Ok(Toolchain {
                kind: ToolchainKind::DebianBuildStd,
            })
        } else {
            Err(ToolchainError::NotFound {
                missing: missing.join(", "),
            })
        }
    }

    pub fn kind(&self) -> ToolchainKind {
        self.kind
    }

    /// `cargo build --release --target wasm32-wasip1` for the package in
    /// `manifest_dir`, writing to `target_dir`. Add more arguments (`--examples`,
    /// `--message-format`, …) before running it.
    pub fn cargo_build(&self, manifest_dir: &Path, target_dir: &Path) -> Command {
        let mut cmd = match self.kind {
            ToolchainKind::Rustup => Command::new("cargo"),
            ToolchainKind::DebianBuildStd => Command::new(DEBIAN_CARGO),
        };
        cmd.current_dir(manifest_dir)
            .args(["build", "--release", "--target", WASM_TARGET])
            .env("CARGO_TARGET_DIR", target_dir);
        // When run from inside another cargo (tests, build scripts), do not inherit
        // its choice of compiler or flags.
        for var in [
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_BUILD_RUSTFLAGS",
            "RUSTDOCFLAGS",
        ] {
            cmd.env_remove(var);
        }
        let initial_memory = format!("-C link-arg=--initial-memory={GUEST_INITIAL_MEMORY_BYTES}");
        match self.kind {
            ToolchainKind::Rustup => {
                // Target-specific, so host build scripts and proc-macros are untouched.
                let mut flags =
                    std::env::var("CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS").unwrap_or_default();
                flags.push(' ');
                flags.push_str(&initial_memory);
                cmd.env("CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS", flags.trim());
            }
            ToolchainKind::DebianBuildStd => {
                cmd.args(["-Zbuild-std=std,panic_abort"])
                    .env("RUSTC", DEBIAN_RUSTC)
                    // build-std is a nightly feature; Debian's stable rustc allows it here.
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env("RUSTUP_TOOLCHAIN", "")
                    .env(
                        "RUSTFLAGS",
                        format!(
                            "-C linker={DEBIAN_WASM_LD} -C link-self-contained=no \
                             -L {DEBIAN_WASI_LIBC} {initial_memory}"
                        ),
                    );
            }
        }
        cmd
    }

    /// Where cargo puts release artifacts for the guest target.
    pub fn release_dir(target_dir: &Path) -> PathBuf {
        target_dir.join(WASM_TARGET).join("release")
    }
}

fn rustup_has_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l.trim() == WASM_TARGET)
        })
}
