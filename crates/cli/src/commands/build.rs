//! `verge build`: cargo for wasm32, then componentize.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use verge_build::Toolchain;
use verge_build::{js, python};
use verge_manifest::{Language, Manifest};

use crate::ui;

/// Build the app in DIR into a wasi:http component (`NAME.wasm`).
///
/// Runs `cargo build --release --target wasm32-wasip1` (with rustup's target, or
/// Debian's toolchain building std from source), then wraps the module into a
/// component with the wasi_snapshot_preview1 proxy adapter. Set CARGO_TARGET_DIR to
/// share build output between apps.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app directory, holding verge.toml.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    build_app(&args.dir)?;
    Ok(())
}

/// A built app: its manifest and the path of its component.
pub struct BuiltApp {
    pub manifest: Manifest,
    pub component: PathBuf,
}

/// The app in `dir` built now, or (`last`) as its last build left it.
pub fn build_or_last(dir: &Path, last: bool) -> anyhow::Result<BuiltApp> {
    if !last {
        return build_app(dir);
    }
    let manifest = Manifest::load_dir(dir)?;
    let component = dir.join(manifest.output());
    Ok(BuiltApp {
        manifest,
        component,
    })
}

/// Builds the app in `dir`, printing progress; returns where the component went.
pub fn build_app(dir: &Path) -> anyhow::Result<BuiltApp> {
    let manifest = Manifest::load_dir(dir)?;
    match manifest.language(dir) {
        Language::Js => return build_js(dir, manifest),
        Language::Python => return build_python(dir, manifest),
        Language::Rust => {}
    }
    let started = Instant::now();
    let toolchain = Toolchain::detect()?;
    let package_dir = dir.join(manifest.package_dir());
    if !package_dir.join("Cargo.toml").exists() {
        bail!(
            "no Cargo.toml in {}; set [build] path in verge.toml to the Rust package's directory",
            package_dir.display()
        );
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| package_dir.join("target"));
    ui::status(
        "Building",
        format!(
            "{} ({:?} toolchain)",
            manifest.name.as_str(),
            toolchain.kind()
        ),
    );

    let module = cargo_build(&toolchain, &package_dir, &target_dir)?;
    let wasm = std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    let component = verge_build::componentize(&wasm)
        .with_context(|| format!("componentizing {}", module.display()))?;
    let output = dir.join(manifest.output());
    std::fs::write(&output, &component).with_context(|| format!("writing {}", output.display()))?;
    built(manifest, output, started)
}

/// Reports the component's size and the build's time.
fn built(manifest: Manifest, output: PathBuf, started: Instant) -> anyhow::Result<BuiltApp> {
    let size = std::fs::metadata(&output)
        .with_context(|| format!("reading {}", output.display()))?
        .len();
    ui::status(
        "Built",
        format!(
            "{} ({}) in {:.1}s",
            output.display(),
            ui::human_bytes(size),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(BuiltApp {
        manifest,
        component: output,
    })
}

/// A JavaScript app: the pinned componentize-js (installed by `npm ci` on first use),
/// a syntax check with file and line, a bundle of its modules with Verge's (when it
/// imports any), then the component.
fn build_js(shown_dir: &Path, manifest: Manifest) -> anyhow::Result<BuiltApp> {
    let started = Instant::now();
    // The tools run in the app's directory; every path they get is absolute.
    let dir = &absolute(shown_dir)?;
    js::check_tools()?;
    if !dir.join("package-lock.json").exists() {
        bail!(
            "no package-lock.json in {}: a JavaScript app pins its build tools \
             (`verge init NAME --lang js` writes one; or run `npm install` there)",
            dir.display()
        );
    }
    if js::needs_install(dir) {
        with_spinner("installing the pinned JavaScript tools (npm ci)", || {
            js::install(dir)
        })?;
        ui::status("Installed", "the app's JavaScript tools (npm ci)");
    }
    let entry = manifest.entry(Language::Js);
    require_entry(dir, &entry)?;
    js::check_syntax(dir, &entry)?;
    ui::status(
        "Building",
        format!("{} (JavaScript, componentize-js)", manifest.name.as_str()),
    );
    let wit = dir.join(".verge/wit-js");
    js::write_wit(&wit).with_context(|| format!("writing the WIT to {}", wit.display()))?;
    let sdk = dir.join(".verge/js-sdk/verge");
    js::write_sdk(&sdk)
        .with_context(|| format!("writing Verge's JavaScript module to {}", sdk.display()))?;
    let module = js::bundle(dir, &entry, &sdk, &dir.join(".verge/bundle.js"))?;
    js::check_handler(dir, &entry, &module)?;
    let output = shown_dir.join(manifest.output());
    let partial = partial_output(dir, &manifest);
    with_spinner("componentize-js", || {
        js::componentize(dir, &module, &wit, &partial)
    })?;
    replace_output(&partial, &output)?;
    built(manifest, output, started)
}

/// A Python app: the pinned componentize-py (installed into `.venv` on first use),
/// a syntax check of every module with file and line, then the component with
/// Verge's Python package.
fn build_python(shown_dir: &Path, manifest: Manifest) -> anyhow::Result<BuiltApp> {
    let started = Instant::now();
    // The tools run in the app's directory; every path they get is absolute.
    let dir = &absolute(shown_dir)?;
    python::check_tools()?;
    if !dir.join("requirements.txt").exists() {
        bail!(
            "no requirements.txt in {}: a Python app pins its build tools there \
             (`verge init NAME --lang python` writes one with componentize-py==0.25.1)",
            dir.display()
        );
    }
    if python::needs_install(dir) {
        with_spinner(
            "installing the pinned Python tools into .venv (pip)",
            || python::install(dir),
        )?;
        ui::status("Installed", "the app's Python tools (.venv)");
    }
    let entry = manifest.entry(Language::Python);
    require_entry(dir, &entry)?;
    let (_, sources) = python::module_of(dir, &entry)?;
    python::check_syntax(dir, &sources)?;
    ui::status(
        "Building",
        format!("{} (Python, componentize-py)", manifest.name.as_str()),
    );
    let wit = dir.join(".verge/wit-py");
    python::write_wit(&wit).with_context(|| format!("writing the WIT to {}", wit.display()))?;
    let sdk = dir.join(".verge/py-sdk");
    let shown = |path: &Path| {
        let relative = path.strip_prefix(dir).unwrap_or(path);
        relative.display().to_string()
    };
    let search_path = [shown(&sources), shown(&sdk)];
    python::write_sdk(&sdk, &search_path)
        .with_context(|| format!("writing Verge's Python package to {}", sdk.display()))?;
    let output = shown_dir.join(manifest.output());
    let partial = partial_output(dir, &manifest);
    with_spinner("componentize-py", || {
        python::componentize(dir, &entry, &sdk, &wit, &partial, &search_path)
    })?;
    replace_output(&partial, &output)?;
    built(manifest, output, started)
}

/// Runs `work` while a spinner says what it is.
fn with_spinner<T, E>(message: &str, work: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let spinner = ui::spinner(message);
    let result = work();
    spinner.finish_and_clear();
    result
}

/// The entry module must exist; the error says which setting names it.
fn require_entry(dir: &Path, entry: &Path) -> anyhow::Result<()> {
    if !dir.join(entry).exists() {
        bail!(
            "no {} in {}; set [build] entry in verge.toml to the handler's module",
            entry.display(),
            dir.display()
        );
    }
    Ok(())
}

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))
}

/// Where a tool writes the component before it replaces the last build, so that a
/// failed build (or one cut short) leaves the last one whole.
fn partial_output(dir: &Path, manifest: &Manifest) -> PathBuf {
    dir.join(".verge")
        .join(format!("{}.partial.wasm", manifest.name.as_str()))
}

fn replace_output(partial: &Path, output: &Path) -> anyhow::Result<()> {
    // A rename replaces the last build at once; another file system needs a copy.
    if std::fs::rename(partial, output).is_err() {
        std::fs::copy(partial, output)
            .with_context(|| format!("copying {} to {}", partial.display(), output.display()))?;
        let _ = std::fs::remove_file(partial);
    }
    Ok(())
}

/// Runs cargo, showing a spinner with its progress; on failure, shows the compiler's
/// output. Returns the `.wasm` core module of the package's cdylib.
fn cargo_build(
    toolchain: &Toolchain,
    package_dir: &Path,
    target_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let mut cmd = toolchain.cargo_build(package_dir, target_dir);
    cmd.args(["--lib", "--message-format=json-render-diagnostics"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    let spinner = ui::spinner("cargo build");

    // Cargo's human output (progress and diagnostics) arrives on stderr; keep all of it
    // to show if the build fails.
    let stderr = child.stderr.take().expect("stderr is piped");
    let progress = spinner.clone();
    let stderr_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let trimmed = line.trim_start();
            if trimmed.starts_with("Compiling") || trimmed.starts_with("Finished") {
                progress.set_message(trimmed.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });

    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_string(&mut stdout)
        .context("reading cargo's output")?;
    let status = child.wait().context("waiting for cargo")?;
    let diagnostics = stderr_reader.join().unwrap_or_default();
    spinner.finish_and_clear();
    if !status.success() {
        eprint!("{diagnostics}");
        bail!("cargo build failed ({status}); the compiler's output is above");
    }
    find_cdylib(&stdout).with_context(|| {
        format!(
            "cargo built no .wasm library in {}; a Verge app needs `[lib] crate-type = [\"cdylib\"]` in Cargo.toml",
            package_dir.display()
        )
    })
}

/// The `.wasm` file of the last `cdylib` artifact in cargo's JSON messages.
fn find_cdylib(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| {
            msg["target"]["crate_types"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "cdylib"))
        })
        .filter_map(|msg| {
            msg["filenames"]
                .as_array()?
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from)
        })
        .next()
}
