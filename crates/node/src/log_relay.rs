//! `verge logs --tail` across a fleet. A tail on this node makes its heartbeat list
//! the service (`tailing`); every other node then publishes that service's lines
//! (and only those, and only then), and this node subscribes while a tail of its
//! own is open, offering the lines it receives to its tails tagged with their node.
//! Nothing here is on the request path: lines reach the relay through the log tap,
//! which drops lines for a watcher that falls behind.

use std::collections::BTreeSet;
use std::sync::Weak;

use futures::StreamExt;
use verge_server::{TapLine, Watched};

use crate::Node;
use crate::wire::Liveness;

impl Node {
    /// The services other live nodes' tails watch.
    fn tailed_elsewhere(&self) -> BTreeSet<String> {
        self.others()
            .into_iter()
            .filter(|(_, status, _)| *status == Liveness::Live)
            .flat_map(|(beat, _, _)| beat.tailing.clone())
            .collect()
    }
}

pub(crate) fn spawn(node: Weak<Node>) {
    tokio::spawn(publish(node.clone()));
    tokio::spawn(receive(node));
}

/// Publishes this node's lines of the services other nodes tail, while they do.
async fn publish(node: Weak<Node>) {
    let Some(first) = node.upgrade() else { return };
    let Some(fleet) = first.fleet.clone() else {
        return;
    };
    drop(first);
    fleet.joined().await;
    let Some(mut heard) = fleet.nodes().map(|d| d.changed()) else {
        return;
    };
    loop {
        let (mut watch, mut wanted) = {
            let Some(node) = node.upgrade() else { return };
            let wanted = node.tailed_elsewhere();
            if wanted.is_empty() {
                drop(node);
                if heard.changed().await.is_err() {
                    return;
                }
                continue;
            }
            (node.log.tap().watch(), wanted)
        };
        while !wanted.is_empty() {
            tokio::select! {
                watched = watch.next() => {
                    let Watched::Line(line) = watched else { continue };
                    if line.node.is_some() || !wanted.contains(&*line.app) {
                        continue;
                    }
                    let Some(node) = node.upgrade() else { return };
                    if let Some(relay) = fleet.logs() {
                        relay
                            .publish(&node.name, &line.app, &line.request_id, line.status, line.json)
                            .await;
                    }
                }
                changed = heard.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let Some(node) = node.upgrade() else { return };
                    wanted = node.tailed_elsewhere();
                }
            }
        }
    }
}

/// Subscribes to the other nodes' lines while a tail here is open, and offers those
/// of the tailed services to the tap.
async fn receive(node: Weak<Node>) {
    let Some(first) = node.upgrade() else { return };
    let Some(fleet) = first.fleet.clone() else {
        return;
    };
    let tap = first.log.tap().clone();
    let me = first.name.clone();
    drop(first);
    fleet.joined().await;
    let mut tailed_changes = tap.tailed_changes();
    loop {
        if tap.tailed().is_empty() {
            if tailed_changes.changed().await.is_err() {
                return;
            }
            continue;
        }
        let Some(relay) = fleet.logs() else { return };
        let Ok(mut lines) = relay.subscribe().await else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        };
        let mut tailed: BTreeSet<String> = tap.tailed().into_iter().collect();
        while !tailed.is_empty() {
            tokio::select! {
                line = lines.next() => {
                    let Some(line) = line else { break };
                    if line.node == me || !tailed.contains(&line.service) {
                        continue;
                    }
                    tap.offer(TapLine {
                        app: line.service.as_str().into(),
                        request_id: line.request_id.as_str().into(),
                        status: line.status,
                        json: line.json,
                        node: Some(line.node.as_str().into()),
                    });
                }
                changed = tailed_changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tailed = tap.tailed().into_iter().collect();
                }
            }
        }
        if node.upgrade().is_none() {
            return;
        }
    }
}
