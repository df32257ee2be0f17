//! Benchmark support: locating (and building) the guest components the benchmarks run.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The test programs as components, built with the guest toolchain if needed, in
/// `$CARGO_TARGET_DIR/guests` (or `target/guests`), shared with the tests.
pub fn guest_components() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("guests");
    let out = target.join("components");
    let toolchain = verge_build::Toolchain::detect()?;
    verge_build::build_example_components(
        &toolchain,
        &repo_root().join("test-programs"),
        &target,
        &out,
    )?;
    Ok(out)
}
