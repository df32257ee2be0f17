//! Building JavaScript apps with `@bytecodealliance/componentize-js`, pinned in the
//! app's `package.json` and installed into the app by `npm ci`.
//!
//! What componentize-js needs and does not bring, supplied here:
//! - the WIT: `wasi:http/proxy` and Verge's APIs from the vendored WIT (`wit/`; WASI 0.2.12),
//!   relabelled to 0.2.10, the version componentize-js 0.23's engine is built
//!   against, with the items added after 0.2.10 left out (its WIT resolver refuses
//!   them);
//! - a syntax check with file and line (`node --check`): componentize-js only says
//!   that parsing failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VENDORED: &str = "0.2.12";
const ENGINE: &str = "0.2.10";

/// The world a JavaScript app is built against, and its id: the proxy world, Verge's
/// APIs, and the standard KV (0.2.0-draft2), config (0.2.0-rc.1) and logging
/// interfaces. A module imports them by interface (`import { open } from
/// "wasi:keyvalue/store@0.2.0-draft2"`).
pub const WORLD_ID: &str = "verge:js-app/app";
const WORLD: &str = "package verge:js-app;

world app {
  include wasi:http/proxy@0.2.10;
  include verge:edge/imports@0.1.0;
  import wasi:keyvalue/store@0.2.0-draft2;
  import wasi:keyvalue/atomics@0.2.0-draft2;
  import wasi:keyvalue/batch@0.2.0-draft2;
  import wasi:config/store@0.2.0-rc.1;
  import wasi:logging/logging@0.1.0-draft;
}
";
pub const WORLD_NAME: &str = "app";

/// Why a JavaScript build failed.
#[derive(Debug, thiserror::Error)]
pub enum JsBuildError {
    #[error(
        "JavaScript apps need Node.js (18 or later) and npm, and `{0}` was not found; \
         install them (Debian: apt install nodejs npm) and build again"
    )]
    Missing(&'static str),
    #[error(
        "`npm ci` failed in {dir}:\n{output}\ncheck package.json and package-lock.json, or the network"
    )]
    Install { dir: PathBuf, output: String },
    #[error("the JavaScript does not parse:\n{output}")]
    Syntax { output: String },
    #[error(
        "{entry} registers no request handler: add \
         `addEventListener(\"fetch\", (event) => event.respondWith(handle(event.request)))`, \
         or use Verge's `serve(handler)` or `new Router()…listen()`"
    )]
    NoHandler { entry: PathBuf },
    #[error("bundling the app's modules (esbuild) failed:\n{output}")]
    Bundle { output: String },
    #[error("componentize-js failed:\n{output}")]
    Componentize { output: String },
    #[error("running {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the WIT for componentize-js into `dir` (replacing what is there).
pub fn write_wit(dir: &Path) -> std::io::Result<()> {
    crate::wit::write(dir, WORLD, relabel)
}

/// `text` at the engine's version: package versions rewritten, and items marked
/// `@since` a later version dropped (each is one line after its gate).
fn relabel(text: &str) -> String {
    let later = format!("@since(version = {VENDORED})");
    let mut out = String::with_capacity(text.len());
    let mut skip_next = false;
    for line in text.lines() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if line.trim() == later {
            skip_next = true;
            continue;
        }
        out.push_str(&line.replace(&format!("@{VENDORED}"), &format!("@{ENGINE}")));
        out.push('\n');
    }
    out
}

/// Whether the app's pinned tools need installing: no `node_modules`, or a lock file
/// newer than what npm installed.
pub fn needs_install(app: &Path) -> bool {
    let installed = app.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(&installed),
        modified(&app.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => lock > installed,
        _ => true,
    }
}

fn run(command: &mut Command, what: &str) -> Result<Output, JsBuildError> {
    command.output().map_err(|source| JsBuildError::Io {
        what: what.to_owned(),
        source,
    })
}

/// Checks that `node` and `npm` run.
pub fn check_tools() -> Result<(), JsBuildError> {
    for tool in ["node", "npm"] {
        if !crate::tool::runs(tool) {
            return Err(JsBuildError::Missing(tool));
        }
    }
    Ok(())
}

/// `npm ci` in the app: the versions of its lock file, from npm's cache when it has
/// them.
pub fn install(app: &Path) -> Result<(), JsBuildError> {
    let output = run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefer-offline"])
            .current_dir(app),
        "npm ci",
    )?;
    if !output.status.success() {
        return Err(JsBuildError::Install {
            dir: app.to_owned(),
            output: crate::tool::output_text(&output),
        });
    }
    Ok(())
}

/// Checks `entry`'s syntax; the error is node's, with file and line.
pub fn check_syntax(app: &Path, entry: &Path) -> Result<(), JsBuildError> {
    let output = run(
        Command::new("node")
            .arg("--check")
            .arg(entry)
            .current_dir(app),
        "node --check",
    )?;
    if !output.status.success() {
        // node's report: `FILE:LINE`, the line, a caret, the error; not its stack.
        let report: Vec<String> = crate::tool::output_text(&output)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| !l.trim_start().starts_with("at ") && !l.starts_with("Node.js v"))
            .map(str::to_owned)
            .collect();
        return Err(JsBuildError::Syntax {
            output: report.join("\n"),
        });
    }
    Ok(())
}

/// Verge's JavaScript module (`sdk/js`), as `verge build` writes it beside the app for
/// the bundler (`import { kv } from "verge"`).
const SDK: &[(&str, &str)] = &[
    ("index.js", include_str!("../../../sdk/js/index.js")),
    ("index.d.ts", include_str!("../../../sdk/js/index.d.ts")),
    ("package.json", include_str!("../../../sdk/js/package.json")),
    ("README.md", include_str!("../../../sdk/js/README.md")),
];

/// Writes Verge's JavaScript module into `dir` (replacing what is there).
pub fn write_sdk(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for (file, text) in SDK {
        std::fs::write(dir.join(file), text)?;
    }
    Ok(())
}

/// The app's pinned esbuild, if its `package.json` has one.
fn esbuild(app: &Path) -> Option<PathBuf> {
    Some(app.join("node_modules/esbuild/bin/esbuild")).filter(|p| p.exists())
}

/// What componentize-js should build: `entry` itself when it imports nothing but
/// the world's interfaces (so stack traces name the app's own file and line), else
/// a bundle of `entry`, its modules, its npm packages and Verge's module (`sdk`),
/// written to `bundle`. An app without esbuild is built from `entry` alone.
pub fn bundle(
    app: &Path,
    entry: &Path,
    sdk: &Path,
    bundle: &Path,
) -> Result<PathBuf, JsBuildError> {
    let Some(esbuild) = esbuild(app) else {
        return Ok(entry.to_owned());
    };
    let metafile = bundle.with_extension("meta.json");
    let relative_sdk = sdk.strip_prefix(app).unwrap_or(sdk);
    let output = run(
        Command::new(esbuild)
            .arg(entry)
            .args([
                "--bundle",
                "--format=esm",
                "--platform=browser",
                "--log-level=error",
                // The world's interfaces are the component's imports, not modules.
                "--external:wasi:*",
                "--external:verge:*",
            ])
            .arg(format!("--alias:verge=./{}", relative_sdk.display()))
            .arg(format!("--outfile={}", bundle.display()))
            .arg(format!("--metafile={}", metafile.display()))
            .current_dir(app),
        "esbuild",
    )?;
    if !output.status.success() {
        return Err(JsBuildError::Bundle {
            output: crate::tool::output_text(&output),
        });
    }
    let inputs = std::fs::read(&metafile)
        .ok()
        .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
        .and_then(|m| m["inputs"].as_object().map(|i| i.len()));
    Ok(if inputs == Some(1) {
        entry.to_owned()
    } else {
        bundle.to_owned()
    })
}

/// Checks that `module` (what componentize-js will build) can answer requests: it
/// registers a fetch event listener or exports `incomingHandler`. Without either,
/// componentize-js builds a component that answers every request with 500.
pub fn check_handler(app: &Path, entry: &Path, module: &Path) -> Result<(), JsBuildError> {
    let text = std::fs::read_to_string(app.join(module)).map_err(|source| JsBuildError::Io {
        what: format!("reading {}", module.display()),
        source,
    })?;
    if text.contains("addEventListener") || text.contains("incomingHandler") {
        Ok(())
    } else {
        Err(JsBuildError::NoHandler {
            entry: entry.to_owned(),
        })
    }
}

/// Builds `entry` into the component `output` against the WIT in `wit`.
pub fn componentize(
    app: &Path,
    entry: &Path,
    wit: &Path,
    output: &Path,
) -> Result<(), JsBuildError> {
    let cli = app.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
    let result = run(
        Command::new("node")
            .arg(cli)
            .arg(entry)
            .arg("--wit")
            .arg(wit)
            .args(["--world-name", WORLD_NAME, "-o"])
            .arg(output)
            .current_dir(app),
        "componentize-js",
    )?;
    if !result.status.success() {
        return Err(JsBuildError::Componentize {
            output: crate::tool::output_text(&result),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wit_is_relabelled_to_the_engines_version_without_later_items() {
        let cli = relabel(crate::wit::VENDORED_WIT[0].1);
        assert!(cli.contains("package wasi:cli@0.2.10;"));
        assert!(!cli.contains("0.2.12"));
        assert!(!cli.contains("exit-with-code"));
        // Only the gated item went.
        assert!(cli.contains("exit: func("));
    }
}
