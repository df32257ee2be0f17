//! Building every cdylib example of a guest package into components: how Verge's test
//! programs (one crate, many guests, one standard-library build) are built.

use std::path::{Path, PathBuf};

use crate::{ComponentizeError, Toolchain, componentize};

#[derive(Debug, thiserror::Error)]
pub enum ExamplesError {
    #[error("running cargo failed")]
    Spawn(#[source] std::io::Error),
    #[error("cargo build --examples failed:\n{stderr}")]
    Cargo { stderr: String },
    #[error("could not read or write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("componentizing {name}")]
    Componentize {
        name: String,
        #[source]
        source: ComponentizeError,
    },
}

/// Builds the examples in `package_dir/examples/*.rs` (each a cdylib) and writes each
/// as a component to `out_dir/NAME.wasm`. Returns the components' paths.
pub fn build_example_components(
    toolchain: &Toolchain,
    package_dir: &Path,
    target_dir: &Path,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, ExamplesError> {
    let out = toolchain
        .cargo_build(package_dir, target_dir)
        .arg("--examples")
        .output()
        .map_err(ExamplesError::Spawn)?;
    if !out.status.success() {
        return Err(ExamplesError::Cargo {
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExamplesError::Io { path, source }
    };
    let built = Toolchain::release_dir(target_dir).join("examples");
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let sources = package_dir.join("examples");
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&sources).map_err(io(&sources))? {
        let source = entry.map_err(io(&sources))?.path();
        let Some(name) = source.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        // Cargo names the artifact after the crate: dashes become underscores.
        let module_path = built.join(format!("{}.wasm", name.replace('-', "_")));
        let module = std::fs::read(&module_path).map_err(io(&module_path))?;
        let component = componentize(&module).map_err(|source| ExamplesError::Componentize {
            name: name.to_owned(),
            source,
        })?;
        // Write then rename: another process may be reading the previous copy.
        let path = out_dir.join(format!("{name}.wasm"));
        let tmp = out_dir.join(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, component).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}
