//! Commands that drive a node's admin API: `verge deploy`, `verge services`,
//! `verge versions`, `verge activate`, `verge rollback`, `verge nodes`.

use std::path::PathBuf;

use anyhow::Context;
use futures::StreamExt;
use verge_node::wire::{
    Activate, Activated, CreateService, CreateToken, Liveness, NewToken, Nodes, ServiceInfo,
    TokenInfo, VersionInfo,
};

use crate::commands::build::{BuiltApp, build_or_last};
use crate::node_client::{NodeArgs, NodeClient, json, service_name};
use crate::ui;

/// The service a command is about.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// The service [default: the app name in DIR's verge.toml].
    #[arg(long, short, value_name = "NAME")]
    service: Option<String>,

    /// The app directory, for its name.
    #[arg(long, value_name = "DIR", default_value = ".")]
    app: PathBuf,
}

impl ServiceArgs {
    fn name(&self) -> anyhow::Result<String> {
        service_name(self.service.as_deref(), &self.app)
    }
}

/// A path under `/admin/v1/services`.
/// A service name as the API takes it, checked here so a bad one is told before any
/// upload.
fn verge_control_name(name: &str) -> anyhow::Result<verge_manifest::AppName> {
    verge_manifest::AppName::new(name).map_err(|why| anyhow::anyhow!("{why}"))
}

fn services_path(rest: impl std::fmt::Display) -> String {
    format!("/admin/v1/services{rest}")
}

/// How long an activation waits for every node of a fleet to serve it.
#[derive(Debug, clap::Args)]
struct WaitArgs {
    /// Seconds to wait for every live node of a fleet to serve the version before
    /// answering with what each serves (0: answer at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    wait: f64,
}

impl WaitArgs {
    fn query(&self) -> String {
        format!("?wait={}", self.wait)
    }
}

/// Posts an activation (`action`: `activate` or `rollback`) and prints what each node
/// serves when any did not simply serve it, or when there are several.
fn activate_on(
    node: &NodeClient,
    service: &str,
    action: &str,
    body: Option<reqwest::Body>,
    wait: &WaitArgs,
) -> anyhow::Result<Activated> {
    let activated: Activated = node.typed(
        reqwest::Method::POST,
        &services_path(format!("/{service}/{action}{}", wait.query())),
        body,
    )?;
    let all_serving = activated.nodes.values().all(|r| r == "serving");
    if activated.nodes.len() > 1 || !all_serving {
        node_table(&activated.nodes);
    }
    if !all_serving {
        ui::status(
            "Warning",
            "not every node serves it yet; `verge nodes` shows what each one serves",
        );
    }
    Ok(activated)
}

/// Build, pack and upload the app to a node, then activate it.
///
/// Creates the service (named after the app, with the manifest's `domains`) if the
/// node has none of that name.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    VERGE_NODE=http://127.0.0.1:9000 VERGE_ADMIN_TOKEN=… verge deploy")]
pub struct DeployArgs {
    /// The app directory.
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// Upload only; activate later with `verge activate`.
    #[arg(long)]
    no_activate: bool,

    /// Deploy the app's last build instead of building it first.
    #[arg(long)]
    no_build: bool,

    /// The service [default: the app's name].
    #[arg(long, short, value_name = "NAME")]
    service: Option<String>,

    #[command(flatten)]
    wait: WaitArgs,

    #[command(flatten)]
    node: NodeArgs,
}

pub fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let node = NodeClient::connect(&args.node)?;
    let BuiltApp {
        manifest,
        component,
    } = build_or_last(&args.dir, args.no_build)?;
    let service = args
        .service
        .clone()
        .unwrap_or_else(|| manifest.name.as_str().to_owned());
    let package = crate::commands::pack::package_of(
        &manifest,
        std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?,
    )?;
    let mut bytes = Vec::new();
    let sha256 = package.write_to(&mut bytes)?;

    let (status, _) = node.call(
        reqwest::Method::GET,
        &services_path(format!("/{service}")),
        None,
    )?;
    if status == 404 {
        let create = CreateService {
            name: verge_control_name(&service)?,
            domains: manifest.domains.clone(),
        };
        node.typed::<ServiceInfo>(
            reqwest::Method::POST,
            &services_path(""),
            Some(json(&create)),
        )?;
        ui::status("Created", format!("service {service}"));
    }
    let version = upload(&node, &service, bytes)?;
    let number = version.number;
    ui::status(
        "Uploaded",
        format!("{service} version {number} (sha256 {})", &sha256[..16]),
    );
    if !args.no_activate {
        activate_on(
            &node,
            &service,
            "activate",
            Some(json(&Activate { version: number })),
            &args.wait,
        )?;
        let hosts: Vec<&str> = manifest.domains.iter().map(|d| d.as_str()).collect();
        let where_ = if hosts.is_empty() {
            "no domains yet (add `domains = [...]` to verge.toml)".to_string()
        } else {
            hosts.join(", ")
        };
        ui::status("Active", format!("{service} version {number} on {where_}"));
    }
    println!("{number}");
    Ok(())
}

/// Uploads with a progress bar (on a terminal).
fn upload(node: &NodeClient, service: &str, bytes: Vec<u8>) -> anyhow::Result<VersionInfo> {
    let total = bytes.len() as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner:.green} uploading {bytes}/{total_bytes} {bar:30.cyan/blue}",
        )
        .expect("a valid template"),
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(256 << 10).map(|c| Ok(c.to_vec())).collect();
    let progress = bar.clone();
    let stream = futures::stream::iter(chunks).map(move |chunk| {
        if let Ok(c) = &chunk {
            progress.inc(c.len() as u64);
        }
        chunk
    });
    let result = node.typed(
        reqwest::Method::POST,
        &services_path(format!("/{service}/versions")),
        Some(reqwest::Body::wrap_stream(stream)),
    );
    bar.finish_and_clear();
    result
}

/// List the node's services.
#[derive(Debug, clap::Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn services(args: ServicesArgs) -> anyhow::Result<()> {
    let node = NodeClient::connect(&args.node)?;
    let list: Vec<ServiceInfo> = node.typed(reqwest::Method::GET, &services_path(""), None)?;
    if args.json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    for s in &list {
        let active = s.active.map_or("none".to_string(), |v| v.to_string());
        println!("{}\tactive {active}\t{}", s.name, s.domains.join(","));
    }
    Ok(())
}

/// List a service's versions; the active one is marked.
#[derive(Debug, clap::Args)]
pub struct VersionsArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    node: NodeArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Delete this version instead (never the active one; it stops being a rollback
    /// target).
    #[arg(long, value_name = "VERSION")]
    delete: Option<u32>,
}

pub fn versions(args: VersionsArgs) -> anyhow::Result<()> {
    let node = NodeClient::connect(&args.node)?;
    let name = args.service.name()?;
    if let Some(number) = args.delete {
        node.ok(
            reqwest::Method::DELETE,
            &services_path(format!("/{name}/versions/{number}")),
            None,
        )?;
        ui::status("Deleted", format!("{name} version {number}"));
        return Ok(());
    }
    let service: ServiceInfo = node.typed(
        reqwest::Method::GET,
        &services_path(format!("/{name}")),
        None,
    )?;
    let list: Vec<VersionInfo> = node.typed(
        reqwest::Method::GET,
        &services_path(format!("/{name}/versions")),
        None,
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    for v in &list {
        let mark = if Some(v.number) == service.active {
            "*"
        } else {
            " "
        };
        let when = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(v.uploaded_at_ms),
        );
        println!(
            "{mark} {}\t{}\t{}\t{when}\t{}",
            v.number,
            v.sha256.get(..16).unwrap_or(&v.sha256),
            ui::human_bytes(v.size),
            v.uploaded_by
        );
    }
    Ok(())
}

/// Serve a version of a service.
#[derive(Debug, clap::Args)]
pub struct ActivateArgs {
    /// The version number (see `verge versions`).
    #[arg(value_name = "VERSION")]
    number: u32,
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    node: NodeArgs,
}

pub fn activate(args: ActivateArgs) -> anyhow::Result<()> {
    let node = NodeClient::connect(&args.node)?;
    let name = args.service.name()?;
    activate_on(
        &node,
        &name,
        "activate",
        Some(json(&Activate {
            version: args.number,
        })),
        &args.wait,
    )?;
    ui::status("Active", format!("{name} version {}", args.number));
    Ok(())
}

/// Serve the version that was active before the current one.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    node: NodeArgs,
}

pub fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let node = NodeClient::connect(&args.node)?;
    let name = args.service.name()?;
    let service = activate_on(&node, &name, "rollback", None, &args.wait)?.service;
    let active = service.active.map_or("none".to_string(), |v| v.to_string());
    ui::status("Active", format!("{name} version {active}"));
    Ok(())
}

/// Make, list and revoke a node's admin tokens (needs a node token with write).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    verge token create ci --service shop --write     a CI token that deploys `shop`\n  \
    verge token create grafana                       read-only, the whole node (metrics)\n  \
    verge token create contractor --service shop --expires 7d\n  \
    verge token list\n  \
    verge token revoke 3f9a2c4b1d0e")]
pub struct TokenArgs {
    #[command(subcommand)]
    action: TokenAction,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, clap::Subcommand)]
enum TokenAction {
    /// Make a token; its secret is printed once.
    Create {
        /// A name for people (shown as "uploaded by").
        name: String,
        /// Scope it to one service [default: the whole node].
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// Let it change things [default: read only].
        #[arg(long)]
        write: bool,
        /// Let it stop working after this long, e.g. 30d or 12h [default: never].
        #[arg(long, value_name = "DURATION", value_parser = verge_manifest::DurationValue::parse)]
        expires: Option<verge_manifest::DurationValue>,
    },
    /// The tokens, without their secrets.
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
}

pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    let node = NodeClient::connect(&args.node)?;
    match args.action {
        TokenAction::Create {
            name,
            service,
            write,
            expires,
        } => {
            let expires_in_s = expires.map(|d| d.0.as_secs().max(1));
            let create = CreateToken {
                name,
                service: service.as_deref().map(verge_control_name).transpose()?,
                write,
                expires_in_s,
            };
            let made: NewToken = node.typed(
                reqwest::Method::POST,
                "/admin/v1/tokens",
                Some(json(&create)),
            )?;
            ui::status(
                "Created",
                format!(
                    "token {} ({}, {}); keep it secret, it is not shown again",
                    made.info.id,
                    service.map_or("the whole node".to_string(), |s| format!("service {s}")),
                    if write { "read and write" } else { "read only" }
                ),
            );
            println!("{}", made.token);
        }
        TokenAction::List => {
            let list: Vec<TokenInfo> =
                node.typed(reqwest::Method::GET, "/admin/v1/tokens", None)?;
            for t in &list {
                let expires = t.expires_at_ms.map_or("never".into(), |ms| {
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                    )
                    .to_string()
                });
                println!(
                    "{}\t{}\t{}\t{}\texpires {expires}",
                    t.id,
                    t.name,
                    t.service.as_deref().unwrap_or("(node)"),
                    if t.write { "write" } else { "read" }
                );
            }
        }
        TokenAction::Revoke { id } => {
            node.ok(
                reqwest::Method::DELETE,
                &format!("/admin/v1/tokens/{id}"),
                None,
            )?;
            ui::status("Revoked", format!("token {id}"));
        }
    }
    Ok(())
}

/// List the fleet's nodes from their heartbeats: live, stale (not heard of lately)
/// or gone (stopped), the control revision each serves, and what each serves.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "A node that lags shows a lower REVISION than the others; \
    one cut off from NATS shows `no` under CONNECTED and goes stale."
)]
pub struct NodesArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn nodes(args: NodesArgs) -> anyhow::Result<()> {
    let node = NodeClient::connect(&args.node)?;
    let Nodes { nodes, .. } = node.typed(reqwest::Method::GET, "/admin/v1/nodes", None)?;
    if args.json {
        println!("{}", serde_json::to_string(&nodes)?);
        return Ok(());
    }
    let width = nodes
        .iter()
        .map(|n| n.heartbeat.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:width$}  {:8}  {:6}  {:>8}  {:9}  {:>9}  SERVICES",
        "NAME", "POP", "STATUS", "REVISION", "CONNECTED", "LAST SEEN"
    );
    for n in &nodes {
        let beat = &n.heartbeat;
        let status = match n.status {
            Liveness::Live => "live",
            Liveness::Stale => "stale",
            Liveness::Gone => "gone",
        };
        let services: Vec<String> = beat
            .services
            .iter()
            .map(|(name, s)| match &s.failed {
                None => format!("{name}@{}", s.version),
                Some(_) => format!("{name}@{} (failed)", s.version),
            })
            .collect();
        println!(
            "{:width$}  {:8}  {:6}  {:>8}  {:9}  {:>8}s  {}",
            beat.name,
            beat.pop.as_deref().unwrap_or("-"),
            status,
            beat.applied_revision,
            if beat.connected { "yes" } else { "no" },
            n.last_seen_ms_ago / 1000,
            services.join(" ")
        );
    }
    Ok(())
}

/// What each node of a fleet did, as a table on stderr.
pub(crate) fn node_table(results: &std::collections::BTreeMap<String, String>) {
    let width = results.keys().map(|n| n.len()).max().unwrap_or(4).max(4);
    eprintln!("  {:width$}  RESULT", "NODE");
    for (name, result) in results {
        eprintln!("  {name:width$}  {result}");
    }
}
