//! `verge serve --watch`: rebuild on source change and swap the app in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use notify::{RecursiveMode, Watcher};
use verge_manifest::Manifest;
use verge_node::Reporter;
use verge_node::app::load;
use verge_runtime::Runtime;
use verge_server::{LogWriter, Metrics, SingleApp};

use crate::commands::source::{Source, prepare};
use crate::ui;

/// Changes closer together than this are one change (editors write several files).
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the app's sources on a background thread. A failed build keeps the running
/// version and prints the compiler's output.
pub fn spawn(
    dir: PathBuf,
    source: Source,
    runtime: Runtime,
    registry: Arc<SingleApp>,
    log: LogWriter,
    metrics: Metrics,
    report: Reporter,
) -> anyhow::Result<()> {
    let manifest = Manifest::load_dir(&dir)?;
    // The watcher reports absolute paths; compare them with absolute ones.
    let root = std::path::absolute(&dir).with_context(|| format!("resolving {}", dir.display()))?;
    let package_dir = root.join(manifest.package_dir());
    let ignored = [package_dir.join("target"), root.join(manifest.output())];
    let (tx, rx) = mpsc::channel();
    let app_root = root.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reads are not changes: the build itself opens every source.
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| is_source(p, &root, &ignored))
        {
            let _ = tx.send(());
        }
    })
    .context("starting the file watcher")?;
    // The app directory and its subdirectories but those that are not sources:
    // installed packages (thousands of files for a JavaScript app), build output and
    // Verge's data.
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() && is_source(&path, &dir, &[]) {
            watcher
                .watch(&path, RecursiveMode::Recursive)
                .with_context(|| format!("watching {}", path.display()))?;
        }
    }
    if !package_dir.starts_with(&app_root) {
        watcher
            .watch(&package_dir, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", package_dir.display()))?;
    }
    ui::status("Watching", format!("{} for changes", dir.display()));

    std::thread::Builder::new()
        .name("verge-watch".into())
        .spawn(move || {
            let _watcher = watcher;
            while rx.recv().is_ok() {
                // Swallow the rest of a burst of events.
                while rx.recv_timeout(DEBOUNCE).is_ok() {}
                let reloaded = prepare(&source, true)
                    .and_then(|app| Ok(load(&runtime, app, &log, &metrics, &report)?));
                match reloaded {
                    Ok(app) => {
                        registry.swap(app);
                        ui::status("Reloaded", "new requests use the new build");
                    }
                    Err(err) => {
                        ui::print_error(&err);
                        ui::status("Keeping", "the previous build running");
                    }
                }
            }
        })
        .context("starting the watch thread")?;
    Ok(())
}

/// Not build output, installed packages, Verge's data or version control (judged
/// inside the app directory `dir`).
fn is_source(path: &Path, dir: &Path, ignored: &[PathBuf]) -> bool {
    !ignored.iter().any(|i| path.starts_with(i))
        && !path
            .strip_prefix(dir)
            .unwrap_or(path)
            .components()
            .any(|c| {
                matches!(
                    c.as_os_str().to_str(),
                    Some(".git" | "target" | "node_modules" | ".venv" | "__pycache__" | ".verge")
                )
            })
}
