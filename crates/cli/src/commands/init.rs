//! `verge init`: a new app from `templates/rust`, `templates/js` or `templates/python`,
//! ready to build and serve.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use verge_manifest::AppName;

use crate::ui;

/// Create a new app in a new directory.
///
/// The app builds and serves as it is: `cd NAME && verge serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    verge init hello                 a Rust app (the Verge SDK)\n  \
    verge init hello --lang js       a JavaScript app (fetch event handler; needs Node.js and npm)\n  \
    verge init hello --lang python   a Python app (handler class; needs python3 with venv)")]
pub struct Args {
    /// The app's name: lowercase letters, digits and `-`, starting with a letter.
    pub name: String,

    /// Directory to create [default: ./NAME].
    #[arg(long)]
    pub path: Option<PathBuf>,

    /// The language of the app.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Js,
    Python,
}

const PYTHON_TEMPLATE: &[(&str, &str)] = &[
    (
        "requirements.txt",
        include_str!("../../../../templates/python/requirements.txt"),
    ),
    (
        "verge.toml",
        include_str!("../../../../templates/python/verge.toml.tmpl"),
    ),
    (
        "src/app.py",
        include_str!("../../../../templates/python/src/app.py"),
    ),
    (
        "README.md",
        include_str!("../../../../templates/python/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../../templates/python/gitignore.tmpl"),
    ),
];

const JS_TEMPLATE: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../../templates/js/package.json.tmpl"),
    ),
    (
        "package-lock.json",
        include_str!("../../../../templates/js/package-lock.json.tmpl"),
    ),
    (
        "verge.toml",
        include_str!("../../../../templates/js/verge.toml.tmpl"),
    ),
    (
        "src/index.js",
        include_str!("../../../../templates/js/src/index.js"),
    ),
    (
        "README.md",
        include_str!("../../../../templates/js/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../../templates/js/gitignore.tmpl"),
    ),
    (
        "jsconfig.json",
        include_str!("../../../../templates/js/jsconfig.json"),
    ),
];

const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../../templates/rust/Cargo.toml.tmpl"),
    ),
    (
        "verge.toml",
        include_str!("../../../../templates/rust/verge.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../templates/rust/src/lib.rs"),
    ),
    (
        ".gitignore",
        include_str!("../../../../templates/rust/gitignore.tmpl"),
    ),
];

/// The SDK sources this verge was built from, used while the SDK is not on crates.io.
const SDK_SOURCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/verge");

pub fn run(args: Args) -> anyhow::Result<()> {
    let name = AppName::new(&args.name).map_err(anyhow::Error::msg)?;
    let dir = args.path.unwrap_or_else(|| PathBuf::from(name.as_str()));
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} already exists and is not empty; choose another name or --path",
            dir.display()
        );
    }
    let sdk = sdk_dependency();
    let files = match args.lang {
        Lang::Rust => TEMPLATE,
        Lang::Js => JS_TEMPLATE,
        Lang::Python => PYTHON_TEMPLATE,
    };
    for (file, template) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = template
            .replace("{{name}}", name.as_str())
            .replace("{{sdk}}", &sdk);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    ui::status(
        "Created",
        format!("app `{}` in {}", name.as_str(), dir.display()),
    );
    eprintln!(
        "\nNext:\n  cd {}\n  verge serve\n  curl http://127.0.0.1:7878/",
        dir.display()
    );
    Ok(())
}

/// `VERGE_SDK_PATH`, else the SDK sources this binary was built from, else crates.io.
fn sdk_dependency() -> String {
    let local = std::env::var_os("VERGE_SDK_PATH")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(SDK_SOURCE_DIR)))
        .filter(|p| p.join("Cargo.toml").exists())
        .and_then(|p| p.canonicalize().ok());
    match local {
        Some(path) => format!("{{ path = {} }}", toml_string(&path)),
        None => "\"0.1\"".to_string(),
    }
}

fn toml_string(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}
