//! `verge fleet dev`: a whole fleet on this machine in one command: a 3-server NATS
//! cluster with JetStream on loopback (the harness the fleet's tests use) and three
//! nodes, `pop-a`, `pop-b` and `pop-c`, until Ctrl-C. `scripts/fleet.sh up` runs it
//! in the background; `bench/fleet.sh` runs it with `--nodes 0` for its NATS.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use verge_fleet::NatsCluster;
use verge_node::{ClusterConfig, Node, NodeConfig, Reporter};

use crate::commands::serve::shutdown_signal;
use crate::ui;

/// Run a local fleet for development: NATS JetStream and three nodes.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    verge fleet dev\n  \
    export VERGE_NODE=http://127.0.0.1:8102 VERGE_ADMIN_TOKEN=…   (as printed)\n  \
    verge deploy                          deployed through pop-a, served by all three\n  \
    curl -H 'host: hello.local' http://127.0.0.1:8121/\n\n\
    Needs nats-server 2.11 or later: what `bash scripts/install-nats-server.sh` \
    installs, else $NATS_SERVER, else the one on PATH. The fleet's state lives in --dir until it \
    stops; the next start begins a new fleet.")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Start NATS and three nodes on loopback; Ctrl-C stops them all.
    Dev(DevArgs),
}

#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Where the NATS servers and the nodes keep their state (emptied at start).
    #[arg(long, value_name = "DIR", default_value = ".verge/fleet-dev")]
    dir: PathBuf,

    /// Node N (0, 1, 2…) serves HTTP on PORT+10N+1 and its admin API on PORT+10N+2
    /// (pop-a: 8101 and 8102); 0 picks free ports.
    #[arg(long, value_name = "PORT", default_value_t = 8100)]
    port_base: u16,

    /// How many nodes (pop-a, pop-b, …); 0 runs NATS only, for nodes started
    /// elsewhere (`--cluster` with the printed URLs; the first with --cluster-init).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(0..=26))]
    nodes: u16,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Command::Dev(args) = args.command;
    let token = match std::env::var("VERGE_ADMIN_TOKEN") {
        Ok(token) => token,
        Err(_) => random_token()?,
    };
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("emptying {}", args.dir.display()))?;
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async {
        let spinner = ui::spinner("Starting a 3-server NATS cluster with JetStream");
        let nats = NatsCluster::start(3, &args.dir.join("nats")).await;
        spinner.finish_and_clear();
        let nats = nats.context("starting NATS (see `verge fleet dev --help`)")?;
        ui::status("NATS", nats.url_list());
        // The nodes share compiled code, signed with a key of this fleet's own; nodes
        // started elsewhere join with `--code-key DIR/code-key`.
        let code_key_file = args.dir.join("code-key");
        std::fs::write(&code_key_file, random_token()?)
            .with_context(|| format!("writing {}", code_key_file.display()))?;
        let code_key = verge_fleet::CodeKey::from_file(&code_key_file)?;
        ui::status("Code key", code_key_file.display());
        let mut running = Vec::new();
        let names: Vec<String> = (0..args.nodes)
            .map(|i| format!("pop-{}", char::from(b'a' + i as u8)))
            .collect();
        for (i, name) in names.iter().enumerate() {
            let port = |offset: u16| match args.port_base {
                0 => 0,
                base => base + 10 * i as u16 + offset,
            };
            let cluster = ClusterConfig {
                init: i == 0,
                code_key: Some(code_key.clone()),
                ..ClusterConfig::new(nats.urls(), "verge")
            };
            let config = NodeConfig {
                name: name.clone(),
                pop: Some(name.trim_start_matches("pop-").to_owned()),
                listen: Some(SocketAddr::from(([127, 0, 0, 1], port(1)))),
                admin_listen: SocketAddr::from(([127, 0, 0, 1], port(2))),
                report: Reporter::new(|word, message| ui::status(word, message)),
                cluster: Some(cluster),
                ..NodeConfig::new(args.dir.join(name), token.clone())
            };
            let node = Node::start(config)
                .await
                .with_context(|| format!("starting {name}"))?;
            let http = node.http_addr().map_or(String::new(), |a| a.to_string());
            println!("{name}: http://{http}  admin http://{}", node.admin_addr());
            running.push(node);
        }
        if let Some(first) = running.first() {
            println!(
                "export VERGE_NODE=http://{} VERGE_ADMIN_TOKEN={token}",
                first.admin_addr()
            );
            println!("Console on http://{}/console", first.admin_addr());
        }
        println!("Fleet ready");
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let mut serving = Vec::new();
        for node in running {
            let mut stopped = stop.subscribe();
            serving.push(tokio::spawn(node.serve(async move {
                let _ = stopped.recv().await;
            })));
        }
        shutdown_signal().await;
        let _ = stop.send(());
        for node in serving {
            let _ = node.await;
        }
        drop(nats);
        anyhow::Ok(())
    })?;
    ui::status("Stopped", "the fleet and its NATS servers");
    Ok(())
}

/// 24 random bytes in hex (48 characters), from the kernel.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for an admin token (or set VERGE_ADMIN_TOKEN)")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
