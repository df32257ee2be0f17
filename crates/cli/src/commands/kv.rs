//! `verge kv`: read and write an app's KV stores in development.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::builder::TypedValueParser;
use verge_manifest::{DurationValue, Manifest};
use verge_runtime::AppConfig;
use verge_store::{Kv, Namespace, OpenError, RedbBackend};

use crate::dev_control::ControlFile;
use crate::node_client::{NodeArgs, NodeClient, encode, refused, service_name};
use crate::ui;
use verge_node::app::KV_FILE;
use verge_node::kv_ops::{self, Answer, Mode, Op};

/// Read and write the KV stores of an app (its `[kv_stores]`).
///
/// Works on the app's local store file (`.verge/kv.redb`), or, while `verge serve`
/// runs for the app, through the running server (which holds the file). With
/// --node or --profile (or VERGE_NODE / VERGE_PROFILE), on the service's stores on
/// that node, through its admin API.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    verge kv put --store links home https://example.com/\n  \
    verge kv put --store links logo --file logo.png --ttl 1h --metadata '{\"type\":\"png\"}'\n  \
    echo -n hello | verge kv put --store links greeting -\n  \
    verge kv get --store links home\n  \
    verge kv list --store links --prefix user: --json\n  \
    verge kv delete --store links home
  \
    verge kv get --store links home --node http://127.0.0.1:9000 --service shop")]
pub struct Args {
    #[command(subcommand)]
    action: Action,

    /// The store: one of the app's [kv_stores.NAME].
    #[arg(long, short, global = true, value_name = "NAME")]
    store: Option<String>,

    /// The app directory (holding verge.toml).
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    app: PathBuf,

    /// The data directory [default: .verge/ in the app directory].
    #[arg(long, global = true, value_name = "DIR", env = "VERGE_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Print JSON instead of plain text.
    #[arg(long, global = true)]
    json: bool,

    /// On a node: the service [default: the app's name].
    #[arg(long, global = true, value_name = "NAME")]
    service: Option<String>,

    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print a key's value (raw bytes; --json adds metadata, generation and expiry).
    Get { key: String },
    /// Write a value: VALUE, the contents of --file, or standard input with `-`.
    Put {
        key: String,
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long, short, conflicts_with = "value")]
        file: Option<PathBuf>,
        /// Expire after this long, e.g. 10m.
        #[arg(long, value_parser = DurationValue::parse)]
        ttl: Option<DurationValue>,
        /// Text stored beside the value.
        #[arg(long)]
        metadata: Option<String>,
        /// How to treat an existing value.
        #[arg(
            long,
            default_value = "overwrite",
            value_parser = clap::builder::PossibleValuesParser::new(Mode::NAMES)
                .map(|name| name.parse::<Mode>().expect("a listed mode")),
        )]
        mode: Mode,
        /// Write only if the item is at this generation (compare-and-swap).
        #[arg(long, value_name = "N")]
        if_generation: Option<u64>,
    },
    /// Remove a key.
    Delete { key: String },
    /// List keys in byte order, a page at a time.
    List {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Continue after this key (the previous page's cursor).
        #[arg(long)]
        cursor: Option<String>,
        /// Keys per page (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Every page, not just one.
        #[arg(long)]
        all: bool,
    },
}

/// Where the operations run.
enum Access {
    /// On the store file, opened by this process.
    Direct { kv: Kv, ns: Namespace },
    /// Through a node's admin API.
    Node {
        client: NodeClient,
        /// `/admin/v1/services/{service}/kv/{store}`.
        path: String,
    },
    /// Through a running `verge serve`.
    Remote {
        control: ControlFile,
        store: String,
        runtime: tokio::runtime::Runtime,
        client: reqwest::Client,
    },
}

impl Access {
    fn run(&self, op: Op) -> anyhow::Result<Answer> {
        match self {
            Access::Direct { kv, ns } => Ok(kv_ops::run(kv, ns, op)?),
            Access::Node { client, path } => client.runtime.block_on(async {
                let resp = client
                    .request(reqwest::Method::POST, path)
                    .json(&op)
                    .send()
                    .await
                    .with_context(|| client.unreachable())?;
                let status = resp.status().as_u16();
                if status == 200 {
                    return Ok(resp.json::<Answer>().await?);
                }
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                refused(status, &body)?;
                bail!(
                    "{}",
                    body["error"]
                        .as_str()
                        .unwrap_or("the node refused the operation")
                )
            }),
            Access::Remote {
                control,
                store,
                runtime,
                client,
            } => runtime.block_on(async {
                let resp = client
                    .post(format!("http://{}/v0/kv/{store}", control.addr))
                    .bearer_auth(&control.token)
                    .json(&op)
                    .send()
                    .await
                    .context("reaching the running `verge serve`")?;
                if resp.status().is_success() {
                    Ok(resp.json::<Answer>().await?)
                } else {
                    let error: kv_ops::OpError = resp.json().await?;
                    Err(error.into())
                }
            }),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let access = if args.node.names_a_node() {
        on_node(&args)?
    } else {
        local(&args)?
    };
    let mut out = std::io::stdout().lock();
    match args.action {
        Action::Get { key } => match access.run(Op::Get { key })? {
            Answer::Entry {
                key,
                value_base64,
                metadata,
                generation,
                expires_at_ms,
            } => {
                let value = BASE64.decode(&value_base64)?;
                if args.json {
                    let mut json = serde_json::json!({
                        "key": key, "metadata": metadata, "generation": generation,
                        "expires_at": expires_at_ms.map(rfc3339),
                    });
                    match String::from_utf8(value) {
                        Ok(text) => json["value"] = text.into(),
                        Err(_) => json["value_base64"] = value_base64.into(),
                    }
                    writeln!(out, "{json}")?;
                } else {
                    out.write_all(&value)?;
                }
            }
            Answer::NotFound { key } => bail!(
                "no key `{key}` in store `{}`",
                args.store.as_deref().unwrap_or_default()
            ),
            other => bail!("unexpected answer {other:?}"),
        },
        Action::Put {
            key,
            value,
            file,
            ttl,
            metadata,
            mode,
            if_generation,
        } => {
            let bytes = match (value.as_deref(), &file) {
                (_, Some(file)) => {
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
                }
                (Some("-") | None, None) => {
                    let mut bytes = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut bytes)
                        .context("reading the value from standard input")?;
                    bytes
                }
                (Some(text), None) => text.as_bytes().to_vec(),
            };
            let answer = access.run(Op::Put {
                key: key.clone(),
                value_base64: BASE64.encode(&bytes),
                mode,
                ttl_ms: ttl.map(|t| t.0.as_millis() as u64),
                metadata,
                if_generation,
            })?;
            let Answer::Stored { generation } = answer else {
                bail!("unexpected answer {answer:?}");
            };
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "key": key, "generation": generation })
                )?;
            } else {
                ui::status(
                    "Stored",
                    format!("{key} ({} bytes, generation {generation})", bytes.len()),
                );
            }
        }
        Action::Delete { key } => {
            let Answer::Deleted { deleted } = access.run(Op::Delete { key: key.clone() })? else {
                bail!("unexpected answer");
            };
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "key": key, "deleted": deleted })
                )?;
            } else if deleted {
                ui::status("Deleted", &key);
            } else {
                ui::status("Absent", format!("{key} was not in the store"));
            }
        }
        Action::List {
            prefix,
            mut cursor,
            limit,
            all,
        } => {
            let mut keys = Vec::new();
            loop {
                let answer = access.run(Op::List {
                    prefix: prefix.clone(),
                    cursor: cursor.clone(),
                    limit,
                })?;
                let Answer::Page {
                    keys: page,
                    cursor: next,
                } = answer
                else {
                    bail!("unexpected answer {answer:?}");
                };
                keys.extend(page);
                cursor = next;
                if !all || cursor.is_none() {
                    break;
                }
            }
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "keys": keys, "cursor": cursor })
                )?;
            } else {
                for key in &keys {
                    writeln!(out, "{key}")?;
                }
                if let Some(cursor) = &cursor {
                    ui::status(
                        "More",
                        format!("continue with --cursor {cursor:?}, or pass --all"),
                    );
                }
            }
        }
    }
    Ok(())
}

/// The store of the service on the node the user named.
fn on_node(args: &Args) -> anyhow::Result<Access> {
    let service = service_name(args.service.as_deref(), &args.app)?;
    let Some(store) = &args.store else {
        bail!("pass --store NAME: one of the service's [kv_stores]");
    };
    Ok(Access::Node {
        client: NodeClient::connect(&args.node)?,
        path: format!(
            "/admin/v1/services/{}/kv/{}",
            encode(&service),
            encode(store)
        ),
    })
}

/// The app's store on this machine: through its running `verge serve`, or the file.
fn local(args: &Args) -> anyhow::Result<Access> {
    let manifest = Manifest::load_dir(&args.app)?;
    let config = AppConfig::try_from(&manifest)
        .with_context(|| format!("the settings of app `{}`", manifest.name.as_str()))?;
    let declared: Vec<&str> = config.kv_stores.iter().map(|s| s.name.as_str()).collect();
    let Some(store_name) = &args.store else {
        bail!(
            "pass --store NAME; app `{}` declares {}",
            config.name,
            list_or_none(&declared)
        );
    };
    let Some(store) = config.kv_stores.iter().find(|s| &s.name == store_name) else {
        bail!(
            "app `{}` has no KV store `{store_name}`; it declares {}",
            config.name,
            list_or_none(&declared)
        );
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| args.app.join(".verge"));
    open(&data_dir, &config, store)
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none ([kv_stores.NAME] in verge.toml)".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// Through the running server when there is one, else on the file.
fn open(
    data_dir: &Path,
    config: &AppConfig,
    store: &verge_runtime::KvStoreConfig,
) -> anyhow::Result<Access> {
    if let Some(control) = ControlFile::find(data_dir) {
        return Ok(Access::Remote {
            control,
            store: store.name.clone(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client: reqwest::Client::new(),
        });
    }
    let file = data_dir.join(KV_FILE);
    let backend = RedbBackend::open(&file).map_err(|e| match e {
        OpenError::Locked { path } => anyhow::anyhow!(
            "{} is in use by another process, but no running `verge serve` for this app was \
             found in {}; stop the process holding it and try again",
            path.display(),
            data_dir.display()
        ),
        other => other.into(),
    })?;
    Ok(Access::Direct {
        kv: Kv::new(Arc::new(backend)),
        ns: Namespace::new(&config.name, &store.name, store.limits),
    })
}
