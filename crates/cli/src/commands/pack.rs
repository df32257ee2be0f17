//! `verge pack`: the app as one deployable file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use verge_manifest::{MAX_MANIFEST, Manifest, Package, PackageManifest, PackagedSeedItem};

use crate::commands::build::{BuiltApp, build_or_last};
use crate::ui;

/// Build the app and write its package: the component, its normalised settings and a
/// SHA-256 over both, in one file (tar + zstd) that `verge serve FILE.vpkg` (and a
/// node) runs.
///
/// Files the manifest names are read in (`config_file`, backends' `ca_file`, the
/// items of KV seed files, which the node taking the upload adds to its stores where
/// they lack them, once for a whole fleet); what only your machine has stays out:
/// secret files and values (a package's secret stores take their values from the
/// environment variables named in `env`), log files.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    verge pack                       build and write NAME.vpkg in this directory\n  \
    verge pack --no-build -o /tmp/app.vpkg")]
pub struct Args {
    /// The app directory (holding verge.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// Where to write the package [default: NAME.vpkg in the app directory].
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Package the app's last build instead of building it first.
    #[arg(long)]
    no_build: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let BuiltApp {
        manifest,
        component,
    } = build_or_last(&args.dir, args.no_build)?;
    let bytes = std::fs::read(&component).with_context(|| {
        format!(
            "reading {}; build the app first (drop --no-build)",
            component.display()
        )
    })?;
    let package = package_of(&manifest, bytes)?;
    let output = args
        .output
        .unwrap_or_else(|| args.dir.join(format!("{}.vpkg", manifest.name.as_str())));
    // Written beside the target and renamed into place: never a half-written package.
    let dir = output.parent().filter(|p| !p.as_os_str().is_empty());
    let mut file = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
        .with_context(|| format!("creating a file beside {}", output.display()))?;
    let sha256 = package.write_to(std::io::BufWriter::new(&mut file))?;
    file.flush()?;
    file.persist(&output)
        .with_context(|| format!("writing {}", output.display()))?;
    let size = std::fs::metadata(&output)?.len();
    ui::status(
        "Packed",
        format!(
            "{} ({}, sha256 {})",
            output.display(),
            ui::human_bytes(size),
            &sha256[..16]
        ),
    );
    println!("{sha256}");
    Ok(())
}

/// The package of `manifest`'s app with `component`: its normalised settings and its
/// KV stores' seed items.
pub fn package_of(manifest: &Manifest, component: Vec<u8>) -> anyhow::Result<Package> {
    let mut settings = PackageManifest::from_manifest(manifest)
        .with_context(|| format!("the settings of app `{}`", manifest.name.as_str()))?;
    for (name, store) in &manifest.kv_stores {
        let Some(file) = &store.file else { continue };
        let items = verge_store::load_seed(&manifest.dir.join(file))
            .with_context(|| format!("the seed file of KV store `{}`", name.as_str()))?;
        if let Some(packaged) = settings.kv_stores.get_mut(name) {
            packaged.seed = items
                .into_iter()
                .map(|item| PackagedSeedItem {
                    key: item.key,
                    value_base64: base64::engine::general_purpose::STANDARD.encode(&item.value),
                    metadata: item.metadata,
                })
                .collect();
        }
    }
    let size = serde_json::to_vec_pretty(&settings)?.len() as u64;
    if size > MAX_MANIFEST {
        anyhow::bail!(
            "the app's settings and KV seed items take {} in a package, over its limit of {}; \
             seed less (put the rest with `verge kv put` once deployed)",
            ui::human_bytes(size),
            ui::human_bytes(MAX_MANIFEST)
        );
    }
    Ok(Package {
        manifest: settings,
        component,
    })
}
