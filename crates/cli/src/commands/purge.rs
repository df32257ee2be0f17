//! `verge purge`: remove (or mark stale) an app's objects in the edge cache.

use std::path::PathBuf;

use anyhow::{Context, bail};
use verge_manifest::Manifest;
use verge_server::admin::{PurgeRequest, PurgeTarget, Purged};

use crate::dev_control::ControlFile;
use crate::node_client::{NodeArgs, NodeClient, encode, refused};
use crate::ui;

/// Purge an app's objects from the edge cache: by surrogate key, by URL, or all.
///
/// Goes to the admin API named with --node or --profile (a node, or a
/// `verge serve --admin-listen`), or else to the `verge serve` running for the app
/// in --app. Returns once the
/// server no longer serves the purged objects.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    verge purge --key item-42                 objects tagged Surrogate-Key: item-42\n  \
    verge purge --url http://localhost/items  one URL's objects\n  \
    verge purge --all --soft                  mark everything stale\n  \
    verge purge --key items --node http://127.0.0.1:9000 --token-file admin.token")]
pub struct Args {
    /// Objects carrying this surrogate key. Repeatable.
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,

    /// Objects of this URL (`https://host/path?query`). Repeatable.
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,

    /// Everything of the app.
    #[arg(long, conflicts_with_all = ["keys", "urls"])]
    all: bool,

    /// Mark the objects stale instead of removing them: they may still be served
    /// within stale-while-revalidate / stale-if-error while refreshed.
    #[arg(long)]
    soft: bool,

    /// The app directory (holding verge.toml).
    #[arg(long, value_name = "DIR", default_value = ".")]
    app: PathBuf,

    /// The app's name on the server [default: the name in the app's verge.toml].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    #[command(flatten)]
    node: NodeArgs,

    /// The data directory of a local `verge serve` [default: .verge/ in the app directory].
    #[arg(long, value_name = "DIR", env = "VERGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut targets: Vec<PurgeTarget> = Vec::new();
    targets.extend(args.keys.iter().cloned().map(PurgeTarget::SurrogateKey));
    targets.extend(args.urls.iter().cloned().map(PurgeTarget::Url));
    if args.all {
        targets.push(PurgeTarget::All);
    }
    if targets.is_empty() {
        bail!("say what to purge: --key KEY, --url URL or --all");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    let node = match args.node.names_a_node() {
        true => Some(NodeClient::connect(&args.node)?),
        false => None,
    };
    for target in targets {
        let request = PurgeRequest {
            target: target.clone(),
            soft: args.soft,
        };
        let purged = runtime.block_on(send(&args, node.as_ref(), &client, &request))?;
        let what = match &target {
            PurgeTarget::SurrogateKey(k) => format!("key {k}"),
            PurgeTarget::Url(u) => u.clone(),
            PurgeTarget::All => "everything".into(),
        };
        let how = if args.soft { "Marked stale" } else { "Purged" };
        ui::status(
            how,
            format!("{what} of {}: {} objects", purged.app, purged.purged),
        );
        // On a fleet: what each node did with it.
        if let Some(nodes) = purged.nodes.as_ref().filter(|n| n.len() > 1) {
            crate::commands::remote::node_table(nodes);
        }
    }
    Ok(())
}

async fn send(
    args: &Args,
    node: Option<&NodeClient>,
    client: &reqwest::Client,
    request: &PurgeRequest,
) -> anyhow::Result<Purged> {
    let resp = match node {
        Some(node) => {
            let app = match &args.name {
                Some(name) => name.clone(),
                None => Manifest::load_dir(&args.app)?.name.as_str().to_owned(),
            };
            let app_path = format!("/admin/v1/services/{}", encode(&app));
            let soft = if request.soft { "?soft=true" } else { "" };
            let post = |path: String| node.request(reqwest::Method::POST, &path);
            let req = match &request.target {
                PurgeTarget::All => post(format!("{app_path}/purge/all{soft}")),
                PurgeTarget::SurrogateKey(key) => {
                    post(format!("{app_path}/purge/keys/{}{soft}", encode(key)))
                }
                PurgeTarget::Url(url) => post(format!("{app_path}/purge/url{soft}"))
                    .json(&serde_json::json!({ "url": url })),
            };
            req.send().await.with_context(|| node.unreachable())?
        }
        None => {
            let data_dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| args.app.join(".verge"));
            let Some(control) = ControlFile::find(&data_dir) else {
                bail!(
                    "no running `verge serve` with an edge cache found for {} (looked in {}); \
                     start one, or pass --node URL for a node or another server's admin API",
                    args.app.display(),
                    data_dir.display()
                );
            };
            client
                .post(format!("http://{}/v0/purge", control.addr))
                .bearer_auth(&control.token)
                .json(request)
                .send()
                .await
                .context("reaching the running `verge serve`")?
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(resp.json().await?);
    }
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    refused(status.as_u16(), &body)?;
    let message = body["error"].as_str().unwrap_or("no reason given");
    bail!("the purge failed ({status}): {message}")
}
