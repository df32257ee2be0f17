//! The fleet as heartbeats show it. Every fleet node publishes a heartbeat (what it
//! serves, the revision it applied, whether NATS answers) every few seconds and at
//! once whenever what it serves changes; every node watches all of them. So an
//! activation can wait until every live node serves the new version and say what
//! each does, and `GET /admin/v1/nodes` lists who lags.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::Node;
use crate::reconcile::ServeState;
use crate::wire::{Heartbeat, Liveness, NodeInfo, ServiceState};

/// How often a node publishes its heartbeat when nothing changes.
const EVERY: Duration = Duration::from_secs(2);
/// A node heard of within this is live; after it, stale.
const LIVE_FOR: Duration = Duration::from_secs(7);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What `state` says of `number`: `serving`, `failed: …`, or what it serves instead.
fn verdict(state: Option<ServiceState>, number: u32) -> String {
    match state {
        Some(ServiceState {
            version,
            failed: None,
        }) if version == number => "serving".into(),
        Some(ServiceState {
            version,
            failed: Some(reason),
        }) if version == number => format!("failed: {reason}"),
        Some(other) => format!("serving version {}", other.version),
        None => "not serving it".into(),
    }
}

impl From<ServeState> for ServiceState {
    fn from(state: ServeState) -> Self {
        match state {
            ServeState::Serving(version) => ServiceState {
                version,
                failed: None,
            },
            ServeState::Failed { version, reason } => ServiceState {
                version,
                failed: Some(reason),
            },
        }
    }
}

impl Node {
    /// This node's heartbeat, now.
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            name: self.name.clone(),
            pop: self.pop.clone(),
            verge_version: env!("CARGO_PKG_VERSION").into(),
            connected: self.cluster_link().is_none_or(|l| l.is_connected()),
            applied_revision: self.applied_revision(),
            services: self
                .reconciler
                .states()
                .into_iter()
                .map(|(name, state)| (name, state.into()))
                .collect(),
            requests: self.metrics.requests_total(),
            started_at_ms: self.started_at_ms,
            left: false,
            tailing: self.log.tap().tailed(),
        }
    }

    /// The other nodes' latest heartbeats, each decoded once when it arrives (they
    /// are read at every arrival, by the log relay, and hold one entry per service),
    /// with how live each is and how long ago it was heard of.
    pub(crate) fn others(&self) -> Vec<(Arc<Heartbeat>, Liveness, Duration)> {
        let Some(directory) = self.fleet.as_ref().and_then(|f| f.nodes()) else {
            return Vec::new();
        };
        let now = SystemTime::now();
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        let mut others = Vec::new();
        for (name, beat) in directory.all() {
            if name == self.name {
                continue;
            }
            let heartbeat = match heard.get(&name) {
                Some((at, decoded)) if *at == beat.at => decoded.clone(),
                _ => match serde_json::from_slice::<Heartbeat>(&beat.value) {
                    Ok(decoded) => {
                        let decoded = Arc::new(decoded);
                        heard.insert(name, (beat.at, decoded.clone()));
                        decoded
                    }
                    Err(_) => continue,
                },
            };
            let age = now.duration_since(beat.at).unwrap_or_default();
            let status = match (heartbeat.left, age < LIVE_FOR) {
                (true, _) => Liveness::Gone,
                (false, true) => Liveness::Live,
                (false, false) => Liveness::Stale,
            };
            others.push((heartbeat, status, age));
        }
        others
    }

    /// Every node of the fleet as last heard of (a single node: itself).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let mine = NodeInfo {
            heartbeat: self.heartbeat(),
            status: Liveness::Live,
            last_seen_ms_ago: 0,
        };
        let mut all = vec![mine];
        all.extend(
            self.others()
                .into_iter()
                .map(|(beat, status, age)| NodeInfo {
                    heartbeat: (*beat).clone(),
                    status,
                    last_seen_ms_ago: ms(age),
                }),
        );
        all.sort_by(|a, b| a.heartbeat.name.cmp(&b.heartbeat.name));
        all
    }

    /// What each node serves of `service` once it has applied `revision` (the
    /// activation of `number`), waiting up to `wait` for every live node to say.
    /// Stale nodes are named, not waited for: they apply it when they reconnect.
    pub async fn rollout(
        &self,
        service: &str,
        number: u32,
        revision: u64,
        wait: Duration,
    ) -> BTreeMap<String, String> {
        let deadline = Instant::now() + wait;
        let mut changed = self
            .fleet
            .as_ref()
            .and_then(|f| f.nodes())
            .map(|d| d.changed());
        loop {
            let mut results = BTreeMap::new();
            let mut pending = 0;
            for node in self.nodes() {
                let beat = &node.heartbeat;
                let result = match node.status {
                    Liveness::Gone => continue,
                    Liveness::Stale => format!(
                        "stale: last heard {}s ago; it applies this when it reconnects",
                        node.last_seen_ms_ago / 1000
                    ),
                    Liveness::Live if beat.applied_revision >= revision => {
                        verdict(beat.services.get(service).cloned(), number)
                    }
                    Liveness::Live => {
                        pending += 1;
                        format!(
                            "pending: it has applied revision {} of {revision}",
                            beat.applied_revision
                        )
                    }
                };
                results.insert(beat.name.clone(), result);
            }
            let Some(changed) = changed.as_mut().filter(|_| pending > 0) else {
                return results;
            };
            let waited = tokio::time::timeout_at(deadline.into(), changed.changed()).await;
            if !matches!(waited, Ok(Ok(()))) {
                return results;
            }
        }
    }
}

/// Publishes the node's heartbeat every [`EVERY`], and at once when the revision it
/// applied or its link to NATS changes; a last one saying it left when the node
/// stops cleanly ([`Node::leave`]).
pub(crate) fn spawn(node: Weak<Node>) {
    let Some(first) = node.upgrade() else { return };
    let mut applied = first.reconciler.subscribe_applied();
    let mut link = first.link.clone();
    let mut tails = first.log.tap().tailed_changes();
    drop(first);
    tokio::spawn(async move {
        loop {
            {
                let Some(node) = node.upgrade() else { return };
                if let Some(directory) = node.fleet.as_ref().and_then(|f| f.nodes()) {
                    let beat = serde_json::to_vec(&node.heartbeat()).unwrap_or_default();
                    // A cut-off node cannot publish; the next beat will.
                    let _ = directory.publish(&node.name, beat).await;
                }
            }
            let link_changed = async {
                let heard = match link.as_mut() {
                    Some(link) => link.changed().await.is_ok(),
                    None => false,
                };
                if !heard {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                changed = applied.changed() => if changed.is_err() { return },
                _ = link_changed => {}
                changed = tails.changed() => if changed.is_err() { return },
            }
        }
    });
}

impl Node {
    /// Tells the fleet this node stops: its last heartbeat says it left.
    pub async fn leave(&self) {
        if let Some(directory) = self.fleet.as_ref().and_then(|f| f.nodes()) {
            let mut beat = self.heartbeat();
            beat.left = true;
            let _ = directory
                .publish(&self.name, serde_json::to_vec(&beat).unwrap_or_default())
                .await;
        }
    }
}
