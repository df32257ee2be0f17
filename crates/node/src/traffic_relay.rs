//! The traffic history's rounds: every 10 s this node samples its counters
//! (`verge_server::traffic`), and on a fleet publishes the round and keeps the
//! other nodes' rounds, so every node's console charts the whole fleet. Nothing
//! here is on the request path.

use std::sync::Weak;

use futures::StreamExt;
use verge_server::traffic::{Round, STEP};

use crate::Node;

pub(crate) fn spawn(node: Weak<Node>) {
    tokio::spawn(sample(node.clone()));
    tokio::spawn(receive(node));
}

/// Samples every [`STEP`] while the node lives; publishes each round on a fleet.
async fn sample(node: Weak<Node>) {
    let mut every = tokio::time::interval(STEP);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(node) = node.upgrade() else { return };
        let round = node.traffic.sample(crate::auth::now_ms());
        if round.samples.is_empty() {
            continue;
        }
        if let Some(relay) = node.fleet.as_ref().and_then(|f| f.traffic())
            && let Ok(json) = serde_json::to_vec(&round)
        {
            // A round that cannot be handed over is a gap in the others' charts.
            relay.publish(json.into()).await;
        }
    }
}

/// Keeps the other nodes' rounds (a fleet node's only).
async fn receive(node: Weak<Node>) {
    let Some(first) = node.upgrade() else { return };
    let Some(fleet) = first.fleet.clone() else {
        return;
    };
    drop(first);
    fleet.joined().await;
    loop {
        let Some(relay) = fleet.traffic() else { return };
        let Ok(mut rounds) = relay.subscribe().await else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        };
        while let Some(json) = rounds.next().await {
            let Some(node) = node.upgrade() else { return };
            if let Ok(round) = serde_json::from_slice::<Round>(&json) {
                node.traffic.insert(&round, crate::auth::now_ms());
            }
        }
        if node.strong_count() == 0 {
            return;
        }
    }
}
