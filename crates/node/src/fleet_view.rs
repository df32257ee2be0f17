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

/// A heartbeat as decoded, with the directory revisions (of the heartbeat and of
/// what the node serves) it was decoded from.
pub(crate) type Heard = ((u64, u64), Arc<Heartbeat>);

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

/// A heartbeat as the directory holds it, with what the node serves put back in.
fn decode(beat: &verge_fleet::Heartbeat) -> Option<Heartbeat> {
    let mut decoded: Heartbeat = serde_json::from_slice(&beat.value).ok()?;
    if !beat.serves.is_empty() {
        decoded.services = serde_json::from_slice(&beat.serves).ok()?;
    }
    Some(decoded)
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
                Some((revisions, decoded)) if *revisions == beat.revisions => decoded.clone(),
                _ => match decode(&beat) {
                    Some(decoded) => {
                        let decoded = Arc::new(decoded);
                        heard.insert(name, (beat.revisions, decoded.clone()));
                        decoded
                    }
                    None => continue,
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
            // Each node's say on this one service (not whole heartbeats: with many
            // services and nodes, copying those at every arrival would cost more
            // than the rest of the wait).
            let mine = (
                self.name.clone(),
                Liveness::Live,
                Duration::ZERO,
                self.applied_revision(),
                self.reconciler.state(service).map(ServiceState::from),
            );
            let others = self.others().into_iter().map(|(beat, status, age)| {
                let state = beat.services.get(service).cloned();
                (beat.name.clone(), status, age, beat.applied_revision, state)
            });
            for (name, status, age, applied, state) in std::iter::once(mine).chain(others) {
                let result = match status {
                    Liveness::Gone => continue,
                    Liveness::Stale => format!(
                        "stale: last heard {}s ago; it applies this when it reconnects",
                        age.as_secs()
                    ),
                    Liveness::Live if applied >= revision => verdict(state, number),
                    Liveness::Live => {
                        pending += 1;
                        format!("pending: it has applied revision {applied} of {revision}")
                    }
                };
                results.insert(name, result);
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
        // What this node serves as last written to the directory, and when.
        let mut written: Option<(Vec<u8>, Instant)> = None;
        loop {
            {
                let Some(node) = node.upgrade() else { return };
                if let Some(directory) = node.fleet.as_ref().and_then(|f| f.nodes()) {
                    let mut beat = node.heartbeat();
                    let serves =
                        serde_json::to_vec(&std::mem::take(&mut beat.services)).unwrap_or_default();
                    let unchanged = written.as_ref().is_some_and(|(last, at)| {
                        *last == serves && at.elapsed() < verge_fleet::REWRITE_SERVES
                    });
                    // A heartbeat goes out only after what it reports serving has
                    // (a cut-off node cannot publish either; the next round will).
                    let ready = unchanged
                        || match directory.publish_serves(&node.name, serves.clone()).await {
                            Ok(()) => {
                                written = Some((serves, Instant::now()));
                                true
                            }
                            Err(_) => false,
                        };
                    if ready {
                        let beat = serde_json::to_vec(&beat).unwrap_or_default();
                        let _ = directory.publish(&node.name, beat).await;
                    }
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
            // What it served stays under its own key.
            beat.services.clear();
            let _ = directory
                .publish(&self.name, serde_json::to_vec(&beat).unwrap_or_default())
                .await;
        }
    }
}
