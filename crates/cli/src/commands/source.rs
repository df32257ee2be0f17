//! What `verge serve` serves: an app directory (built first unless asked not to),
//! a bare component with an optional manifest, or a package; and the limit flags that
//! override its settings. `serve` and `watch` both prepare apps through here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use verge_manifest::{LimitsSection, Manifest, Package};
use verge_node::app::{self, MAX_PACKAGED_COMPONENT, Prepared};

use crate::commands::build::build_app;

/// What is being served, and the limits given on the command line.
#[derive(Clone)]
pub struct Source {
    pub kind: SourceKind,
    /// Limit flags; they override the manifest's.
    pub limits: LimitsSection,
}

#[derive(Clone)]
pub enum SourceKind {
    AppDir {
        dir: PathBuf,
    },
    Component {
        path: PathBuf,
        manifest: Option<PathBuf>,
    },
    /// A package made by `verge pack`: component and settings in one file.
    Package {
        path: PathBuf,
    },
}

/// Builds the app (if asked) and turns its manifest and the limit flags into its
/// configuration.
pub fn prepare(source: &Source, build: bool) -> anyhow::Result<Prepared> {
    match &source.kind {
        SourceKind::Package { path } => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let package = Package::read_from(std::io::BufReader::new(file), MAX_PACKAGED_COMPONENT)
                .with_context(|| format!("reading the package {}", path.display()))?;
            Ok(app::from_package(package, path, &source.limits)?)
        }
        SourceKind::AppDir { dir } => {
            let (manifest, component) = if build {
                let built = build_app(dir)?;
                (built.manifest, built.component)
            } else {
                let manifest = Manifest::load_dir(dir)?;
                let component = dir.join(manifest.output());
                (manifest, component)
            };
            Ok(app::from_manifest(
                Some(&manifest),
                component,
                &source.limits,
            )?)
        }
        SourceKind::Component { path, manifest } => {
            let manifest = manifest.as_deref().map(Manifest::load_file).transpose()?;
            Ok(app::from_manifest(
                manifest.as_ref(),
                path.clone(),
                &source.limits,
            )?)
        }
    }
}

/// The data directory: `explicit` (`--data-dir`), or `.verge` beside the app.
pub fn data_dir(explicit: Option<&Path>, source: &Source) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_owned();
    }
    let base = match &source.kind {
        SourceKind::AppDir { dir } => dir.clone(),
        SourceKind::Component { path, manifest } => manifest
            .as_deref()
            .unwrap_or(path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        SourceKind::Package { path } => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    base.join(".verge")
}
