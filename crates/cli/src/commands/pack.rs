//! `verge pack`: the app as one deployable file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use verge_manifest::{Package, PackageManifest};

use crate::commands::build::{BuiltApp, build_or_last};
use crate::ui;

/// Build the app and write its package: the component, its normalised settings and a
/// SHA-256 over both, in one file (tar + zstd) that `verge serve FILE.vpkg` (and a
/// node) runs.
///
/// Files the manifest names are read in (`config_file`, backends' `ca_file`); what
/// only your machine has stays out: KV seed files, secret files and values (a
/// package's secret stores take their values from the environment variables named
/// in `env`), log files.
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
    let package = Package {
        manifest: PackageManifest::from_manifest(&manifest)
            .with_context(|| format!("the settings of app `{}`", manifest.name.as_str()))?,
        component: bytes,
    };
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
