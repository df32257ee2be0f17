//! Talking to a node's admin API from the CLI: which node, which token, and errors
//! that say what to do next.
//!
//! The node and token come from flags (`--node`, `--token-file`), else the
//! environment (`VERGE_NODE`, `VERGE_ADMIN_TOKEN`), else a profile saved by
//! `verge login` (`--profile NAME` or `VERGE_PROFILE`, else the default one).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Where the node is and how to prove who you are.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// The node's admin API, e.g. http://127.0.0.1:9000 [default: from the profile].
    #[arg(long, value_name = "URL", env = "VERGE_NODE", alias = "admin")]
    pub node: Option<String>,

    /// A file holding the admin token [default: $VERGE_ADMIN_TOKEN, else the profile's].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// A profile saved by `verge login` [default: the one logged in last].
    #[arg(long, value_name = "NAME", env = "VERGE_PROFILE")]
    pub profile: Option<String>,
}

impl NodeArgs {
    /// Whether the user named a node (a flag, the environment or a profile), as
    /// opposed to leaving it to the default profile: commands that also work
    /// locally (`verge kv`, `verge purge`) go to a node only then.
    pub fn names_a_node(&self) -> bool {
        self.node.is_some() || self.profile.is_some()
    }
}

/// The profiles file: `$VERGE_CONFIG_DIR/profiles.toml`, or `verge/profiles.toml` in
/// the user's configuration directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Profiles {
    /// The profile used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub node: String,
    pub token: String,
}

impl Profiles {
    pub fn path() -> anyhow::Result<PathBuf> {
        if let Some(dir) = std::env::var_os("VERGE_CONFIG_DIR") {
            return Ok(PathBuf::from(dir).join("profiles.toml"));
        }
        let dirs = directories::BaseDirs::new()
            .context("no home directory for the profiles file; set VERGE_CONFIG_DIR")?;
        Ok(dirs.config_dir().join("verge").join("profiles.toml"))
    }

    /// The saved profiles; none when the file does not exist.
    pub fn load() -> anyhow::Result<Profiles> {
        let path = Profiles::path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!(
                    "reading {} (fix it, or delete it and `verge login` again)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profiles::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the file readable by its owner only (it holds tokens), atomically.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let path = Profiles::path()?;
        let dir = path.parent().expect("the profiles file is in a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("writing in {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        std::io::Write::write_all(&mut file, toml::to_string(self)?.as_bytes())?;
        file.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// A blocking client of one node's admin API.
pub struct NodeClient {
    /// The admin API's root, without a trailing slash.
    pub base: String,
    token: String,
    pub client: reqwest::Client,
    pub runtime: tokio::runtime::Runtime,
}

impl NodeClient {
    pub fn connect(args: &NodeArgs) -> anyhow::Result<NodeClient> {
        let profile = || -> anyhow::Result<Option<Profile>> {
            let profiles = Profiles::load()?;
            let name = args.profile.clone().or(profiles.default.clone());
            match name {
                None => Ok(None),
                Some(name) => match profiles.profiles.get(&name) {
                    Some(p) => Ok(Some(p.clone())),
                    None => bail!(
                        "no profile `{name}` in {}; `verge login --profile {name}` saves one",
                        Profiles::path()?.display()
                    ),
                },
            }
        };
        let token_from_flags = match &args.token_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading the token from {}", file.display()))?,
            ),
            None => std::env::var("VERGE_ADMIN_TOKEN").ok(),
        };
        let (node, token) = match (&args.node, token_from_flags) {
            (Some(node), Some(token)) if args.profile.is_none() => (node.clone(), token),
            (node, token) => {
                let saved = profile()?;
                let node = node
                    .clone()
                    .or_else(|| saved.as_ref().map(|p| p.node.clone()));
                let Some(node) = node else {
                    bail!(
                        "say which node: --node URL (its admin API), VERGE_NODE, or `verge login`"
                    );
                };
                let token = token.or_else(|| saved.map(|p| p.token));
                let Some(token) = token else {
                    bail!(
                        "the node needs a token: --token-file FILE, VERGE_ADMIN_TOKEN, or `verge login`"
                    );
                };
                (node, token)
            }
        };
        NodeClient::new(&node, &token)
    }

    /// A client of the admin API at `node` using `token`.
    pub fn new(node: &str, token: &str) -> anyhow::Result<NodeClient> {
        Ok(NodeClient {
            base: node.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            client: reqwest::Client::new(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// A request to `path` (from the admin API's root) with the token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends a request; the JSON answer, or an error that says what to do.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<reqwest::Body>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        self.runtime.block_on(async {
            let mut req = self.request(method, path);
            if let Some(body) = body {
                req = req.body(body);
            }
            let resp = req.send().await.with_context(|| self.unreachable())?;
            let status = resp.status().as_u16();
            let value: serde_json::Value = resp.json().await.unwrap_or_default();
            refused(status, &value)?;
            Ok((status, value))
        })
    }

    /// Like [`NodeClient::call`], with any answer but 2xx an error.
    pub fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<reqwest::Body>,
    ) -> anyhow::Result<serde_json::Value> {
        let (status, value) = self.call(method, path, body)?;
        if !(200..300).contains(&status) {
            bail!(
                "{}",
                value["error"]
                    .as_str()
                    .unwrap_or("the node refused the request")
            );
        }
        Ok(value)
    }

    /// [`NodeClient::ok`], read as the API type `T`.
    pub fn typed<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<reqwest::Body>,
    ) -> anyhow::Result<T> {
        let value = self.ok(method, path, body)?;
        serde_json::from_value(value).with_context(|| {
            format!(
                "the node at {} answered {path} in a form this verge does not know; \
                 are the node and the CLI the same version?",
                self.base
            )
        })
    }

    pub fn unreachable(&self) -> String {
        format!(
            "reaching the node at {}; is it running, and is --node right?",
            self.base
        )
    }
}

/// The error for a refused token (401) or scope (403), saying what to do.
pub fn refused(status: u16, body: &serde_json::Value) -> anyhow::Result<()> {
    match status {
        401 => bail!(
            "the node refused the token; check --token-file, VERGE_ADMIN_TOKEN or `verge login`"
        ),
        403 => bail!(
            "{}; use a token with that scope (see `verge token`)",
            body["error"]
                .as_str()
                .unwrap_or("the token may not do this")
        ),
        _ => Ok(()),
    }
}

/// The service a command is about: `--service NAME`, else the app name in `app`'s
/// verge.toml.
pub fn service_name(service: Option<&str>, app: &std::path::Path) -> anyhow::Result<String> {
    match service {
        Some(name) => Ok(name.to_owned()),
        None => Ok(verge_manifest::Manifest::load_dir(app)
            .context("finding the service's name (or pass --service NAME)")?
            .name
            .as_str()
            .to_owned()),
    }
}

/// The body of a JSON request.
pub fn json(value: &impl serde::Serialize) -> reqwest::Body {
    reqwest::Body::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Percent-encodes a path segment.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
