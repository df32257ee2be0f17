//! `verge login`: save a node's address and a token as a profile.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::node_client::{NodeClient, Profile, Profiles};
use crate::ui;

/// Save a node's admin API address and a token as a profile, so that `verge deploy`,
/// `logs`, `versions` … need neither.
///
/// The token is checked with the node first. It comes from --token-file, else
/// VERGE_ADMIN_TOKEN, else standard input. Profiles live in
/// ~/.config/verge/profiles.toml (or $VERGE_CONFIG_DIR/profiles.toml), readable by
/// you only; the one saved last is the default.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    verge login --node https://edge-1.example.com:9000 --token-file ci.token\n  \
    verge token create alice --service shop --write | verge login --node http://127.0.0.1:9000 --profile shop\n  \
    verge deploy --profile shop")]
pub struct Args {
    /// The node's admin API, e.g. http://127.0.0.1:9000.
    #[arg(long, value_name = "URL", env = "VERGE_NODE")]
    node: String,

    /// A file holding the token [default: $VERGE_ADMIN_TOKEN, else standard input].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,

    /// The profile's name.
    #[arg(long, value_name = "NAME", default_value = "default")]
    profile: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let token = match &args.token_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the token from {}", file.display()))?,
        None => match std::env::var("VERGE_ADMIN_TOKEN") {
            Ok(token) => token,
            Err(_) => {
                let stdin = std::io::stdin();
                if stdin.is_terminal() {
                    eprint!("Token (from `verge token create` or the node's operator): ");
                }
                let mut line = String::new();
                stdin.lock().read_line(&mut line)?;
                line
            }
        },
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("no token given: --token-file FILE, VERGE_ADMIN_TOKEN, or paste it");
    }
    let node = NodeClient::new(&args.node, &token)?;
    let who = node.ok(reqwest::Method::GET, "/admin/v1/whoami", None)?;
    let mut profiles = Profiles::load()?;
    profiles.profiles.insert(
        args.profile.clone(),
        Profile {
            node: node.base.clone(),
            token,
        },
    );
    profiles.default = Some(args.profile.clone());
    let path = profiles.save()?;
    let scope = match who["service"].as_str() {
        Some(service) => format!("service {service}"),
        None => "the whole node".to_owned(),
    };
    let right = if who["write"].as_bool() == Some(true) {
        "read and write"
    } else {
        "read only"
    };
    ui::status(
        "Logged in",
        format!(
            "to {} as {} ({scope}, {right}); profile `{}` saved in {}",
            node.base,
            who["name"].as_str().unwrap_or("?"),
            args.profile,
            path.display()
        ),
    );
    Ok(())
}
