//! `verge logs --tail`: a service's access and guest lines, live from its node.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use owo_colors::{OwoColorize, Stream};

use crate::node_client::{NodeArgs, NodeClient, encode, refused, service_name};
use crate::ui;

/// Follow a service's log lines live: access lines, guest output, `wasi:logging` and
/// log-endpoint lines, as the node writes them.
///
/// The node keeps no history: lines appear from the moment the tail connects. If the
/// connection drops (the node restarts), the tail reconnects. Ctrl-C stops it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    verge logs --tail                               the app in this directory\n  \
    verge logs --tail -s shop --status 5xx          failing requests, with their lines\n  \
    verge logs --tail --search 'card declined'      lines containing the text\n  \
    verge logs --tail --node-name pop-b             one node of a fleet (all of them by default)\n  \
    verge logs --tail --json | jq .duration_us      the JSON lines as the node writes them")]
pub struct Args {
    /// Follow new lines (the only mode: a node keeps no log history).
    #[arg(long, short = 'f')]
    tail: bool,

    /// The service [default: the app name in --app's verge.toml].
    #[arg(long, short, value_name = "NAME")]
    service: Option<String>,

    /// The app directory, for its name.
    #[arg(long, value_name = "DIR", default_value = ".")]
    app: PathBuf,

    /// Only requests answered with these statuses, with all their lines: `5xx`,
    /// `404`, `4xx,500`.
    #[arg(long, value_name = "LIST")]
    status: Option<String>,

    /// Only lines containing this text.
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,

    /// Only the lines of this node of a fleet (a fleet node's tail shows every
    /// node's lines, each tagged with its node).
    #[arg(long = "node-name", value_name = "NAME")]
    node_name: Option<String>,

    /// Print the JSON lines as the node writes them.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    node: NodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    check(&args)?;
    let service = service_name(args.service.as_deref(), &args.app)?;
    let node = NodeClient::connect(&args.node)?;
    let mut query = Vec::new();
    if let Some(status) = &args.status {
        query.push(format!("status={}", encode(status)));
    }
    if let Some(search) = &args.search {
        query.push(format!("search={}", encode(search)));
    }
    if let Some(name) = &args.node_name {
        query.push(format!("node={}", encode(name)));
    }
    let path = format!(
        "/admin/v1/services/{}/logs?{}",
        encode(&service),
        query.join("&")
    );
    node.runtime.block_on(async {
        let mut connected_once = false;
        loop {
            match follow(&node, &path, &args, &service, &mut connected_once).await {
                Ok(()) => ui::status("Reconnecting", "the node closed the tail"),
                Err(Lost(e)) if connected_once => {
                    ui::status("Reconnecting", format!("lost the node: {e}"));
                }
                Err(Lost(e)) => return Err(e),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// The tail broke; before the first connection this is the command's error.
struct Lost(anyhow::Error);

async fn follow(
    node: &NodeClient,
    path: &str,
    args: &Args,
    service: &str,
    connected_once: &mut bool,
) -> Result<(), Lost> {
    let resp = node
        .request(reqwest::Method::GET, path)
        .send()
        .await
        .with_context(|| node.unreachable())
        .map_err(Lost)?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        refused(status, &body).map_err(Lost)?;
        let why = body["error"].as_str().unwrap_or("no reason given");
        return Err(Lost(anyhow::anyhow!(
            "the node refused the tail ({status}): {why}"
        )));
    }
    let mut events = resp.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = events.next().await {
        let chunk = chunk.context("reading the tail").map_err(Lost)?;
        buffer.extend_from_slice(&chunk);
        while let Some(end) = find(&buffer, b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let mut kind = "message";
            let mut data = String::new();
            for line in text.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = k;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            match kind {
                "ready" => {
                    if !*connected_once {
                        ui::status("Tailing", format!("{service} on {}", node.base));
                    }
                    *connected_once = true;
                }
                "dropped" => {
                    let n: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
                    ui::status(
                        "Dropped",
                        format!(
                            "{} lines: the tail fell behind the node",
                            n["dropped"].as_u64().unwrap_or(0)
                        ),
                    );
                }
                _ if !data.is_empty() => print_line(&data, args.json),
                _ => {}
            }
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One line, as JSON or for people.
fn print_line(json: &str, raw: bool) {
    if raw {
        println!("{json}");
        return;
    }
    let Ok(line) = serde_json::from_str::<serde_json::Value>(json) else {
        println!("{json}");
        return;
    };
    let s = |key: &str| line[key].as_str().unwrap_or("");
    let ts = s("ts");
    let time = ts.get(11..23).unwrap_or(ts);
    let id = format!("[{}]", s("request_id"));
    let id = id.if_supports_color(Stream::Stdout, |t| t.dimmed().to_string());
    let text = match s("type") {
        "access" => {
            let status = line["status"].as_u64().unwrap_or(0);
            let status_text = status.to_string();
            let coloured = status_text.if_supports_color(Stream::Stdout, |t| match status {
                200..=299 => t.green().to_string(),
                300..=399 => t.cyan().to_string(),
                400..=499 => t.yellow().to_string(),
                _ => t.red().bold().to_string(),
            });
            let ms = line["duration_us"].as_u64().unwrap_or(0) as f64 / 1000.0;
            let mut text = format!("{coloured} {} {} {ms:.1} ms", s("method"), s("path"));
            if s("outcome") != "ok" && !s("outcome").is_empty() {
                text.push_str(&format!(" {}", s("outcome")));
            }
            if let Some(error) = line["error"].as_str() {
                text.push_str(&format!(": {error}"));
            }
            if let Some(cache) = line["cache"].as_str() {
                text.push_str(&format!(" (cache {cache})"));
            }
            text
        }
        "guest" => format!("{}: {}", s("stream"), s("message")),
        "log" if s("context").is_empty() => {
            format!("{} {}", s("level").to_uppercase(), s("message"))
        }
        "log" => format!(
            "{} {}: {}",
            s("level").to_uppercase(),
            s("context"),
            s("message")
        ),
        "endpoint" => format!("{}: {}", s("endpoint"), s("message")),
        "host" => format!("{}: {}", s("event"), s("message")),
        _ => json.to_owned(),
    };
    match line["node"].as_str() {
        Some(node) => {
            let node = node.if_supports_color(Stream::Stdout, |t| t.bold().to_string());
            println!("{time} {node} {text}  {id}");
        }
        None => println!("{time} {text}  {id}"),
    }
}

/// `verge logs` without `--tail`: there is nothing else to show yet.
fn check(args: &Args) -> anyhow::Result<()> {
    if !args.tail {
        bail!(
            "a node keeps no log history; `verge logs --tail` follows new lines \
             (the node's JSON lines on stdout are the record: send them to your log store)"
        );
    }
    Ok(())
}
