//! Building Python apps with componentize-py, pinned in the app's `requirements.txt`
//! and installed into the app's own virtualenv (`.venv`) on first use.
//!
//! What componentize-py needs and does not bring, supplied here:
//! - the WIT: `wasi:http/proxy` (WASI 0.2.12, which componentize-py 0.25 takes as is),
//!   Verge's APIs and the standard KV, config and logging interfaces;
//! - Verge's Python SDK (`sdk/python/verge`, embedded in the binary): the handler
//!   base class, `fetch` and a module per API, over the bindings componentize-py
//!   generates;
//! - a syntax check of every module with file and line (componentize-py reports a
//!   syntax error as a stack of its own).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::tool::output_text;

/// The world a Python app is built against, and its id: the proxy world, Verge's
/// APIs, and the standard KV (0.2.0-draft2), config (0.2.0-rc.1) and logging
/// interfaces. componentize-py generates the `wit_world` bindings the SDK wraps.
pub const WORLD_ID: &str = "verge:py-app/app";
const WORLD: &str = "package verge:py-app;

world app {
  include wasi:http/proxy@0.2.12;
  include verge:edge/imports@0.1.0;
  import wasi:keyvalue/store@0.2.0-draft2;
  import wasi:keyvalue/atomics@0.2.0-draft2;
  import wasi:keyvalue/batch@0.2.0-draft2;
  import wasi:config/store@0.2.0-rc.1;
  import wasi:logging/logging@0.1.0-draft;
}
";

/// The export componentize-py looks up in the app's module.
const HANDLER_CLASS: &str = "IncomingHandler";

/// Verge's Python package, as `verge build` writes it beside the app.
const SDK: &[(&str, &str)] = &[
    (
        "verge/__init__.py",
        include_str!("../../../sdk/python/verge/__init__.py"),
    ),
    (
        "verge/http.py",
        include_str!("../../../sdk/python/verge/http.py"),
    ),
    (
        "verge/cache.py",
        include_str!("../../../sdk/python/verge/cache.py"),
    ),
    (
        "verge/config.py",
        include_str!("../../../sdk/python/verge/config.py"),
    ),
    (
        "verge/geo.py",
        include_str!("../../../sdk/python/verge/geo.py"),
    ),
    (
        "verge/kv.py",
        include_str!("../../../sdk/python/verge/kv.py"),
    ),
    (
        "verge/log.py",
        include_str!("../../../sdk/python/verge/log.py"),
    ),
    (
        "verge/ratelimit.py",
        include_str!("../../../sdk/python/verge/ratelimit.py"),
    ),
    (
        "verge/runtime.py",
        include_str!("../../../sdk/python/verge/runtime.py"),
    ),
    (
        "verge/secrets.py",
        include_str!("../../../sdk/python/verge/secrets.py"),
    ),
];

/// Why a Python build failed.
#[derive(Debug, thiserror::Error)]
pub enum PyBuildError {
    #[error(
        "Python apps need Python 3 (3.10 or later) and `python3` was not found; \
         install it (Debian: apt install python3 python3-venv) and build again"
    )]
    Missing,
    #[error(
        "could not create the virtualenv {dir}:\n{output}\n\
         Debian's python3 needs the venv module: apt install python3-venv"
    )]
    Venv { dir: PathBuf, output: String },
    #[error(
        "`pip install -r requirements.txt` failed in {dir}:\n{output}\n\
         check requirements.txt, or the network"
    )]
    Install { dir: PathBuf, output: String },
    #[error(
        "requirements.txt in {dir} installs no componentize-py; pin it there \
         (componentize-py==0.25.1), as `verge init --lang python` does"
    )]
    NoComponentizePy { dir: PathBuf },
    #[error("the Python does not compile:\n{output}")]
    Syntax { output: String },
    #[error(
        "{entry} defines no `{HANDLER_CLASS}` class: name the handler class \
         `{HANDLER_CLASS}` (`class {HANDLER_CLASS}(verge.Handler):` with a \
         `handle_request` method)"
    )]
    MissingHandler { entry: PathBuf },
    #[error(
        "importing {entry} failed: componentize-py runs the app's module at build time \
         (to snapshot it), and it raised:\n{traceback}"
    )]
    Import { entry: PathBuf, traceback: String },
    #[error("componentize-py failed:\n{output}")]
    Componentize { output: String },
    #[error("the entry {0} is not a Python module (NAME.py)")]
    Entry(PathBuf),
    #[error("running {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn run(command: &mut Command, what: &str) -> Result<Output, PyBuildError> {
    command.output().map_err(|source| PyBuildError::Io {
        what: what.to_owned(),
        source,
    })
}

/// Checks that `python3` runs.
pub fn check_tools() -> Result<(), PyBuildError> {
    if crate::tool::runs("python3") {
        Ok(())
    } else {
        Err(PyBuildError::Missing)
    }
}

fn venv(app: &Path) -> PathBuf {
    app.join(".venv")
}

fn componentize_py(app: &Path) -> PathBuf {
    venv(app).join("bin/componentize-py")
}

/// Written into the virtualenv after a successful install: the requirements it
/// installed, so a changed `requirements.txt` installs again.
fn stamp(app: &Path) -> PathBuf {
    venv(app).join(".verge-installed")
}

/// Whether the app's pinned tools need installing: no virtualenv with
/// componentize-py, or requirements other than those last installed.
pub fn needs_install(app: &Path) -> bool {
    let installed = std::fs::read(stamp(app)).ok();
    let wanted = std::fs::read(app.join("requirements.txt")).ok();
    !componentize_py(app).exists() || installed.is_none() || installed != wanted
}

/// Creates the app's virtualenv (when it has none) and installs `requirements.txt`
/// into it. A failed install leaves no stamp, so the next build tries again.
pub fn install(app: &Path) -> Result<(), PyBuildError> {
    let venv = venv(app);
    if !venv.join("bin/python").exists() {
        let output = run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        )?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(&venv);
            return Err(PyBuildError::Venv {
                dir: venv,
                output: output_text(&output),
            });
        }
    }
    let _ = std::fs::remove_file(stamp(app));
    let output = run(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
                "-r",
                "requirements.txt",
            ])
            .current_dir(app),
        "pip install",
    )?;
    if !output.status.success() {
        return Err(PyBuildError::Install {
            dir: app.to_owned(),
            output: output_text(&output),
        });
    }
    if !componentize_py(app).exists() {
        return Err(PyBuildError::NoComponentizePy {
            dir: app.to_owned(),
        });
    }
    let requirements =
        std::fs::read(app.join("requirements.txt")).map_err(|source| PyBuildError::Io {
            what: "reading requirements.txt".into(),
            source,
        })?;
    std::fs::write(stamp(app), requirements).map_err(|source| PyBuildError::Io {
        what: "writing the install stamp".into(),
        source,
    })
}

/// Every `.py` file under `dir`, relative to `app`, sorted.
fn modules(app: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && name != "__pycache__" && !name.to_string_lossy().starts_with('.') {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "py") {
                found.push(path.strip_prefix(app).unwrap_or(&path).to_owned());
            }
        }
    }
    found.sort();
    found
}

/// Compiles (without running or writing anything) each module, reporting syntax
/// errors as Python does: `File "src/app.py", line 3`, the line, a caret, the error.
const SYNTAX_CHECK: &str = "
import sys, traceback
bad = False
for path in sys.argv[1:]:
    try:
        with open(path, 'rb') as f:
            compile(f.read(), path, 'exec', dont_inherit=True)
    except SyntaxError as e:
        sys.stderr.write(''.join(traceback.format_exception_only(e)))
        bad = True
sys.exit(1 if bad else 0)
";

/// Checks the syntax of every module under `sources`.
pub fn check_syntax(app: &Path, sources: &Path) -> Result<(), PyBuildError> {
    let output = run(
        Command::new("python3")
            .args(["-B", "-c", SYNTAX_CHECK])
            .args(modules(app, sources))
            .current_dir(app),
        "python3 (syntax check)",
    )?;
    if !output.status.success() {
        return Err(PyBuildError::Syntax {
            output: output_text(&output),
        });
    }
    Ok(())
}

/// Writes Verge's Python package into `dir` (replacing what is there), with a
/// `_build` module mapping the directories componentize-py names `/0`, `/1` in
/// tracebacks back to `search_path`'s, shown relative to the app.
pub fn write_sdk(dir: &Path, search_path: &[String]) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    for (file, text) in SDK {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a file in the package"))?;
        std::fs::write(path, text)?;
    }
    let mut paths = String::from("BUILD_PATHS = {\n");
    for (i, shown) in search_path.iter().enumerate() {
        paths.push_str(&format!("    \"/{i}/\": {:?},\n", format!("{shown}/")));
    }
    paths.push_str("}\n");
    std::fs::write(dir.join("verge/_build.py"), paths)
}

/// Writes the WIT for componentize-py into `dir` (replacing what is there).
pub fn write_wit(dir: &Path) -> std::io::Result<()> {
    crate::wit::write(dir, WORLD, str::to_owned)
}

/// The module name of `entry` (`src/app.py` → `app`) and the directory it is in.
pub fn module_of(app: &Path, entry: &Path) -> Result<(String, PathBuf), PyBuildError> {
    let module = entry
        .file_stem()
        .filter(|_| entry.extension().is_some_and(|e| e == "py"))
        .and_then(|s| s.to_str())
        .ok_or_else(|| PyBuildError::Entry(entry.to_owned()))?;
    let dir = app.join(entry.parent().unwrap_or(Path::new("")));
    Ok((module.to_owned(), dir))
}

/// Builds the app's `module` (found in `sources`, with the SDK in `sdk`) into the
/// component `output` against the WIT in `wit`. Pure-Python packages installed into
/// the app's virtualenv are included as they are imported.
pub fn componentize(
    app: &Path,
    entry: &Path,
    sdk: &Path,
    wit: &Path,
    output: &Path,
    search_path: &[String],
) -> Result<(), PyBuildError> {
    let (module, sources) = module_of(app, entry)?;
    let result = run(
        Command::new(componentize_py(app))
            .arg("-d")
            .arg(wit)
            .args(["-w", WORLD_ID, "componentize", &module, "-p"])
            .arg(&sources)
            .arg("-p")
            .arg(sdk)
            .arg("-o")
            .arg(output)
            .env("VIRTUAL_ENV", venv(app))
            .env_remove("RUST_BACKTRACE")
            .current_dir(app),
        "componentize-py",
    )?;
    if !result.status.success() {
        let text = output_text(&result);
        if text.contains(&format!("has no attribute '{HANDLER_CLASS}'")) {
            return Err(PyBuildError::MissingHandler {
                entry: entry.to_owned(),
            });
        }
        if let Some(traceback) = app_traceback(&text, search_path) {
            return Err(PyBuildError::Import {
                entry: entry.to_owned(),
                traceback,
            });
        }
        return Err(PyBuildError::Componentize {
            output: without_backtrace(&text),
        });
    }
    Ok(())
}

/// The app's own traceback when importing it raised (componentize-py wraps it in
/// one of its own), with the directories it calls `/0`, `/1` shown as `search_path`'s.
fn app_traceback(text: &str, search_path: &[String]) -> Option<String> {
    const INNER: &str = "AssertionError: Traceback (most recent call last):";
    let start = text.find(INNER)? + "AssertionError: ".len();
    let rest = &text[start..];
    let end = rest.find("\n\nCaused by:").unwrap_or(rest.len());
    let mut traceback = rest[..end].trim_end().to_owned();
    for (i, shown) in search_path.iter().enumerate() {
        traceback = traceback.replace(&format!("File \"/{i}/"), &format!("File \"{shown}/"));
    }
    Some(traceback)
}

/// componentize-py's report without the Rust backtrace it appends.
fn without_backtrace(text: &str) -> String {
    let end = text.find("\nStack backtrace:").unwrap_or(text.len());
    text[..end].trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_is_the_entrys_file_name_and_its_directory_the_search_path() {
        let (module, dir) = module_of(Path::new("/app"), Path::new("src/app.py")).unwrap();
        assert_eq!(module, "app");
        assert_eq!(dir, Path::new("/app/src"));
        assert!(matches!(
            module_of(Path::new("/app"), Path::new("src/app.js")),
            Err(PyBuildError::Entry(_))
        ));
    }

    #[test]
    fn an_import_error_shows_the_apps_traceback_with_its_paths() {
        let text = "Traceback (most recent call last):\n  File \"/x/bin/componentize-py\", line 8\n\
            AssertionError: Traceback (most recent call last):\n  File \"/0/app.py\", line 2, in <module>\n\
            NameError: name 'x' is not defined\n\n\nCaused by:\n    NameError";
        let shown = app_traceback(text, &["src".into(), ".verge/py-sdk".into()]).unwrap();
        assert_eq!(
            shown,
            "Traceback (most recent call last):\n  File \"src/app.py\", line 2, in <module>\n\
             NameError: name 'x' is not defined"
        );
        assert_eq!(app_traceback("error: something else", &[]), None);
    }

    #[test]
    fn componentize_pys_backtrace_is_left_out() {
        let text = "AssertionError: boom\n\nCaused by:\n    boom\n\nStack backtrace:\n   0: anyhow";
        assert_eq!(
            without_backtrace(text),
            "AssertionError: boom\n\nCaused by:\n    boom"
        );
    }
}
