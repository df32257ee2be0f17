//! `verge node`: a long-running edge node serving many services, deployed to through
//! its admin API. The node itself is `verge-node`; this maps flags to its config and
//! prints what it does.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use verge_manifest::ByteSize;
use verge_node::{ClusterConfig, NatsAuth, Node, NodeConfig, Reporter};

use crate::commands::serve::shutdown_signal;
use crate::flags::{EdgeFlags, admin_token};
use crate::ui;

/// Run an edge node: many services side by side, each on its domains, deployed and
/// activated through the admin API (`/admin/v1/services`).
///
/// Everything lives in --data-dir: services, versions and domains (control.redb),
/// package bytes (packages/), KV data (kv.redb), compiled code (compile-cache/). A
/// restarted node serves exactly the versions that were active.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    VERGE_ADMIN_TOKEN=$(openssl rand -hex 24) verge node --data-dir /var/lib/verge \\\n      \
    --listen 0.0.0.0:80 --admin-listen 127.0.0.1:9000\n\n  \
    A fleet (the first node creates its state, the others join it):\n  \
    verge node --node-name pop-a --cluster nats://10.0.0.1:4222,nats://10.0.0.2:4222 --cluster-init\n  \
    verge node --node-name pop-b --cluster nats://10.0.0.1:4222,nats://10.0.0.2:4222")]
pub struct Args {
    /// Where the node keeps its state.
    #[arg(
        long,
        value_name = "DIR",
        env = "VERGE_DATA_DIR",
        default_value = "verge-node"
    )]
    pub data_dir: PathBuf,

    /// Address for plain-HTTP client traffic; port 0 picks a free port
    /// [default: 127.0.0.1:7878, or none when --tls-listen is given].
    #[arg(long, env = "VERGE_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Address for HTTPS client traffic (HTTP/2 and HTTP/1.1 by ALPN), with the
    /// certificates of --tls-certs.
    #[arg(
        long,
        value_name = "ADDR",
        env = "VERGE_TLS_LISTEN",
        requires = "tls_certs"
    )]
    pub tls_listen: Option<SocketAddr>,

    /// A directory of PEM certificates: NAME.crt with NAME.key (or NAME.pem holding
    /// both) per certificate, each serving the DNS names it lists, wildcards included;
    /// the one named `default` also answers clients asking for a name no certificate
    /// has (without it, their handshake fails). Changed files are picked up within
    /// two seconds, without a restart.
    #[arg(
        long,
        value_name = "DIR",
        env = "VERGE_TLS_CERTS",
        requires = "tls_listen"
    )]
    pub tls_certs: Option<PathBuf>,

    /// Address of the admin API (deploys, purges, metrics).
    #[arg(long, default_value = "127.0.0.1:7879", env = "VERGE_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,

    /// A file holding the admin API's bearer token [default: $VERGE_ADMIN_TOKEN].
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Do not serve the web console at `/console` on the admin listener. The console
    /// is a page for a browser (services, deploys, the fleet) over the same API and
    /// tokens; it adds nothing to the request path.
    #[arg(long)]
    pub no_console: bool,

    /// The node's name, as guests see it.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "node",
        env = "VERGE_NODE_NAME"
    )]
    pub node_name: String,

    /// The point of presence this node is in, as `verge nodes` shows it.
    #[arg(long, value_name = "POP", env = "VERGE_POP")]
    pub pop: Option<String>,

    /// Memory all running instances may claim together, each counting its service's
    /// memory limit [default: half of the machine's memory]. Past it, requests wait
    /// up to a second, then get 503 `overloaded` with Retry-After.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse)]
    pub memory_budget: Option<ByteSize>,

    /// The largest memory limit a service may have (the size of every instance's
    /// memory slot); a package asking for more is refused at upload.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "128MiB")]
    pub max_memory_per_instance: ByteSize,

    /// Instances one service may run at once, unless its package sets
    /// `max_concurrent`: one service's flood leaves room for the others.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_concurrent_per_service: u32,

    /// Services whose code may be loaded at once (0: all). Past it, loading one
    /// unloads the one used least recently; it loads again from the compile cache
    /// (about 2 ms for a small app) on its next request.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_loaded_services: u32,

    /// The largest package an upload may be; a larger one is refused (413) before it
    /// is read, and nothing is recorded.
    #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse, default_value = "128MiB")]
    pub max_package_size: ByteSize,

    /// Join a fleet: the NATS servers (JetStream) holding its state, comma-separated
    /// nats://HOST:PORT. Services, versions and tokens are the fleet's, and a change
    /// made through any node is served by every node. Without it the node is on its
    /// own, its state in --data-dir.
    #[arg(
        long,
        value_name = "URLS",
        env = "VERGE_CLUSTER",
        value_delimiter = ','
    )]
    pub cluster: Vec<String>,

    /// Names the fleet's buckets (PREFIX-control, PREFIX-packages), so two fleets can
    /// share one NATS system.
    #[arg(long, value_name = "PREFIX", default_value = "verge")]
    pub cluster_prefix: String,

    /// Create the fleet's buckets: once, on the first node. Without it a node that
    /// finds no fleet state stops and says so, rather than start an empty fleet.
    #[arg(long, requires = "cluster")]
    pub cluster_init: bool,

    /// Copies the cluster keeps of every write, when --cluster-init creates the
    /// buckets (3 on a 3-server cluster; at most the number of servers).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub cluster_replicas: usize,

    /// A NATS credentials file (`.creds`: a user JWT and its NKey seed, as `nsc`
    /// makes them) for the node to connect with.
    #[arg(
        long,
        value_name = "FILE",
        requires = "cluster",
        conflicts_with = "nats_user"
    )]
    pub nats_creds: Option<PathBuf>,

    /// A NATS user name to connect with (the password from --nats-password-file).
    #[arg(long, value_name = "USER", requires_all = ["cluster", "nats_password_file"])]
    pub nats_user: Option<String>,

    /// A file holding the password of --nats-user (its first line).
    #[arg(long, value_name = "FILE", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,

    /// Connect to NATS with TLS, trusting the CA in this PEM file.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub nats_tls_ca: Option<PathBuf>,

    /// The JetStream domain holding the fleet's state, for a node connected to a
    /// PoP's leaf server with a JetStream domain of its own (see docs/fleet.md).
    #[arg(long, value_name = "DOMAIN", requires = "cluster")]
    pub js_domain: Option<String>,

    /// A secret the fleet's nodes share (a file of at least 32 bytes, e.g.
    /// `head -c 32 /dev/urandom | base64`). With it, the node that takes an upload
    /// shares the code it compiled, signed with this key, and the others load it
    /// instead of compiling each version themselves (when their Verge build matches).
    /// Code signed with another key is never loaded. Without it, every node compiles.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub code_key: Option<PathBuf>,

    /// Cut off from the fleet for longer than SECONDS, pass every request to the
    /// services instead of serving cache hits, which may miss purges made meanwhile
    /// elsewhere, until the node has caught up. Without it a cut-off node serves its
    /// cache (availability first); either way, once reconnected it applies the purges
    /// it missed before it serves another hit.
    #[arg(long, value_name = "SECONDS", requires = "cluster")]
    pub purge_strict: Option<u64>,

    #[command(flatten)]
    pub edge: EdgeFlags,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let prefix_ok = !args.cluster_prefix.is_empty()
        && args
            .cluster_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !prefix_ok {
        anyhow::bail!(
            "--cluster-prefix `{}` cannot name a bucket: use letters, digits, `-` and `_`",
            args.cluster_prefix
        );
    }
    let auth = match (&args.nats_creds, &args.nats_user, &args.nats_password_file) {
        (Some(creds), _, _) => NatsAuth::Creds(creds.clone()),
        (None, Some(user), Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading --nats-password-file {}", file.display()))?;
            let password = text.lines().next().unwrap_or("").to_owned();
            if password.is_empty() {
                anyhow::bail!("--nats-password-file {} is empty", file.display());
            }
            NatsAuth::UserPassword {
                user: user.clone(),
                password,
            }
        }
        _ => NatsAuth::None,
    };
    let code_key = args
        .code_key
        .as_deref()
        .map(verge_fleet::CodeKey::from_file)
        .transpose()?;
    let cluster = (!args.cluster.is_empty()).then(|| ClusterConfig {
        code_key,
        init: args.cluster_init,
        replicas: args.cluster_replicas,
        auth,
        tls_ca: args.nats_tls_ca.clone(),
        js_domain: args.js_domain.clone(),
        ..ClusterConfig::new(args.cluster.clone(), args.cluster_prefix.clone())
    });
    let config = NodeConfig {
        data_dir: args.data_dir.clone(),
        name: args.node_name.clone(),
        pop: args.pop.clone(),
        listen: match (args.listen, args.tls_listen) {
            (Some(addr), _) => Some(addr),
            (None, Some(_)) => None,
            (None, None) => Some(SocketAddr::from(([127, 0, 0, 1], 7878))),
        },
        tls_listen: args.tls_listen,
        tls_certs: args.tls_certs.clone(),
        admin_listen: args.admin_listen,
        root_token: admin_token(args.admin_token_file.as_deref())?,
        edge: args.edge.options()?,
        memory_budget: args.memory_budget.map(|b| b.0),
        max_memory_per_instance: args.max_memory_per_instance.0,
        max_concurrent_per_service: args.max_concurrent_per_service,
        max_loaded_services: args.max_loaded_services,
        max_package_bytes: args.max_package_size.0,
        purge_strict: args.purge_strict.map(std::time::Duration::from_secs),
        console: !args.no_console,
        report: Reporter::new(|word, message| ui::status(word, message)),
        cluster,
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let console = config.console;
    tokio.block_on(async {
        let node = Node::start(config).await?;
        println!("Admin API on http://{}", node.admin_addr());
        if console {
            println!("Console on http://{}/console", node.admin_addr());
        }
        if let Some(addr) = node.https_addr() {
            println!(
                "Listening on https://{addr} ({} certificates)",
                node.certificates()
            );
        }
        if let Some(addr) = node.http_addr() {
            println!("Listening on http://{addr}");
        }
        node.serve(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    ui::status("Stopped", "all requests finished");
    Ok(())
}
