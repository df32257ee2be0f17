//! Cache purges across a fleet. A purge made here (the admin API, `verge purge`, a
//! guest) is applied here at once by the cache, which hands it to [`FleetPurges`];
//! a task publishes it, in order, on the fleet's purge stream. Another task follows
//! the stream and applies the other nodes' purges (never re-publishing them) and
//! tells each purge's node it did; a third collects what the others say of this
//! node's purges, so a purge call answers once every live node applied it.
//! Nothing here is on the request path: the cache's hand-over is a counter and a
//! channel send.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use verge_cache::{Purge, PurgeSink};

use crate::Node;
use crate::wire::Liveness;

/// How long a step that failed (NATS cut off) waits before it tries again.
const RETRY: Duration = Duration::from_millis(500);
/// How long a node that reconnected may take to apply the purges it missed before
/// it drops its cache instead.
const CATCH_UP: Duration = Duration::from_secs(30);

/// This node's side of the fleet's purges.
pub(crate) struct FleetPurges {
    queue: mpsc::UnboundedSender<Purge>,
    /// Purges made here, handed to the queue.
    issued: AtomicU64,
    /// Purges made here and published: how many, and the sequence of the last.
    published: watch::Sender<(u64, u64)>,
    /// The last of this node's purges each other node said it applied.
    heard: Mutex<HashMap<String, u64>>,
    heard_changed: watch::Sender<()>,
    /// The sequence of the last purge of the stream this node has applied (or
    /// skipped, as its own).
    applied: watch::Sender<u64>,
    node: std::sync::OnceLock<Weak<Node>>,
}

impl PurgeSink for FleetPurges {
    fn purged(&self, purge: Purge) {
        self.issued.fetch_add(1, Ordering::SeqCst);
        let _ = self.queue.send(purge);
    }

    fn settled(&self, wait: Duration) -> verge_cache::Settled<'_> {
        Box::pin(async move {
            verge_server::admin::PurgeFanout::applied_everywhere(self, wait).await;
        })
    }
}

impl FleetPurges {
    /// The relay and the queue its publisher reads.
    pub(crate) fn new() -> (Arc<FleetPurges>, mpsc::UnboundedReceiver<Purge>) {
        let (queue, made) = mpsc::unbounded_channel();
        let purges = Arc::new(FleetPurges {
            queue,
            issued: AtomicU64::new(0),
            published: watch::Sender::new((0, 0)),
            heard: Mutex::default(),
            heard_changed: watch::Sender::new(()),
            applied: watch::Sender::new(0),
            node: std::sync::OnceLock::new(),
        });
        (purges, made)
    }

    /// What each node did with this node's purges so far.
    fn results(&self, node: &Node, sequence: Option<u64>) -> (BTreeMap<String, String>, usize) {
        let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        let mut results = BTreeMap::from([(node.name.clone(), "applied".to_owned())]);
        let mut pending = 0;
        for (beat, status, age) in node.others() {
            let result = match status {
                Liveness::Gone => continue,
                Liveness::Stale => format!(
                    "stale: last heard {}s ago; it applies this when it reconnects",
                    age.as_secs()
                ),
                Liveness::Live => match (sequence, heard.get(&beat.name)) {
                    (Some(sequence), Some(applied)) if *applied >= sequence => "applied".into(),
                    (Some(_), _) => {
                        pending += 1;
                        "pending: not applied yet; it applies it when it hears of it".into()
                    }
                    (None, _) => {
                        pending += 1;
                        "pending: not published yet (the fleet is cut off); \
                         published when it answers"
                            .into()
                    }
                },
            };
            results.insert(beat.name.clone(), result);
        }
        (results, pending)
    }
}

#[async_trait::async_trait]
impl verge_server::admin::PurgeFanout for FleetPurges {
    async fn applied_everywhere(&self, wait: Duration) -> BTreeMap<String, String> {
        let deadline = tokio::time::Instant::now() + wait;
        let Some(node) = self.node.get().and_then(Weak::upgrade) else {
            return BTreeMap::new();
        };
        // Cut off, nothing can be published or heard: say so at once.
        if !node.cluster_link().is_none_or(|link| link.is_connected()) {
            return self.results(&node, None).0;
        }
        let issued = self.issued.load(Ordering::SeqCst);
        let mut published = self.published.subscribe();
        let sequence = match tokio::time::timeout_at(
            deadline,
            published.wait_for(|(count, _)| *count >= issued),
        )
        .await
        {
            Ok(Ok(published)) => published.1,
            _ => return self.results(&node, None).0,
        };
        let mut changed = self.heard_changed.subscribe();
        loop {
            let (results, pending) = self.results(&node, Some(sequence));
            if pending == 0 {
                return results;
            }
            if !matches!(
                tokio::time::timeout_at(deadline, changed.changed()).await,
                Ok(Ok(()))
            ) {
                return results;
            }
        }
    }
}

pub(crate) fn spawn(
    node: &Arc<Node>,
    purges: &Arc<FleetPurges>,
    made: mpsc::UnboundedReceiver<Purge>,
) {
    let _ = purges.node.set(Arc::downgrade(node));
    tokio::spawn(publish(Arc::downgrade(node), purges.clone(), made));
    tokio::spawn(follow(Arc::downgrade(node), purges.clone()));
    tokio::spawn(hear(Arc::downgrade(node), purges.clone()));
    tokio::spawn(gate(Arc::downgrade(node), purges.clone()));
}

/// Publishes this node's purges, in the order they were made; while the fleet does
/// not answer, they wait (in order) and go when it does.
async fn publish(
    node: Weak<Node>,
    purges: Arc<FleetPurges>,
    mut made: mpsc::UnboundedReceiver<Purge>,
) {
    let Some(fleet) = node.upgrade().and_then(|n| n.fleet.clone()) else {
        return;
    };
    fleet.joined().await;
    while let Some(purge) = made.recv().await {
        let Ok(payload) = serde_json::to_vec(&purge) else {
            continue;
        };
        let mut said = false;
        loop {
            let Some(me) = node.upgrade() else { return };
            let Some(stream) = fleet.purges() else { return };
            match stream.publish(&me.name, payload.clone()).await {
                Ok(sequence) => {
                    purges.published.send_modify(|(count, last)| {
                        *count += 1;
                        *last = sequence;
                    });
                    if said {
                        me.report
                            .status("Published", "the purges made while cut off");
                    }
                    break;
                }
                Err(e) => {
                    if !said {
                        me.report.status(
                            "Waiting",
                            &format!(
                                "to publish a purge to the fleet: {e}; it goes when NATS answers"
                            ),
                        );
                        said = true;
                    }
                    drop(me);
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// Applies the other nodes' purges as the stream delivers them, from where this
/// node joined (its cache starts empty: the disk tier too is emptied at start), and
/// tells each purge's node. A gap in the sequence means purges the stream no longer
/// holds (a cut longer than it keeps them): the node drops every service's cached
/// objects rather than guess which were covered.
async fn follow(node: Weak<Node>, purges: Arc<FleetPurges>) {
    let Some(first) = node.upgrade() else { return };
    let Some(fleet) = first.fleet.clone() else {
        return;
    };
    let (me, cache) = (
        first.name.clone(),
        first.runtime.config().node.cache.clone(),
    );
    drop(first);
    fleet.joined().await;
    let Some(stream) = fleet.purges() else { return };
    let mut after = loop {
        match stream.last_sequence().await {
            Ok(last) => break last,
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    };
    purges.applied.send_replace(after);
    loop {
        if let Ok(mut delivered) = stream.follow(after).await {
            // Not raced against anything: dropping the consumer's stream while it
            // is recreating itself left the next consumer of the client hanging.
            while let Some(Ok(remote)) = delivered.next().await {
                if remote.sequence <= after {
                    continue;
                }
                if remote.sequence > after + 1
                    && let Some(node) = node.upgrade()
                {
                    drop_cache(
                        &node,
                        after,
                        &format!(
                            "the fleet's purges {} to {} are no longer kept, so which \
                             objects they covered is unknown",
                            after + 1,
                            remote.sequence - 1
                        ),
                    );
                }
                after = remote.sequence;
                if remote.origin != me {
                    if let Ok(purge) = serde_json::from_slice::<Purge>(&remote.payload) {
                        cache.apply_remote(&purge, remote.sequence);
                    }
                    stream.applied(&remote.origin, &me, remote.sequence).await;
                }
                purges.applied.send_replace(after);
            }
        }
        if node.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Hard-purges everything of every service this node serves: purges it should have
/// applied are gone.
fn drop_cache(node: &Node, applied: u64, why: &str) {
    let cache = node.runtime.config().node.cache.clone();
    for (service, _) in node.reconciler.states() {
        let purge = Purge {
            namespace: service,
            of: verge_cache::PurgeOf::All,
            mode: verge_cache::PurgeMode::Hard,
        };
        cache.apply_remote(&purge, applied);
    }
    node.report
        .status("Dropped", &format!("the cached objects: {why}"));
}

/// Cache hits after a cut: while the node is cut off it serves its cache
/// (availability first), unless `--purge-strict` says for how long at most; once it
/// is connected again, it holds every hit until it has applied the purges made
/// meanwhile (or, when it cannot within [`CATCH_UP`], drops its cache).
async fn gate(node: Weak<Node>, purges: Arc<FleetPurges>) {
    let Some(first) = node.upgrade() else { return };
    let (Some(fleet), Some(mut link)) = (first.fleet.clone(), first.link.clone()) else {
        return;
    };
    let cache = first.runtime.config().node.cache.clone();
    let strict = first.purge_strict;
    drop(first);
    // Not waiting for the fleet: a node that starts cut off fills its cache while
    // purges it cannot hear are made.
    loop {
        if link.wait_for(|l| !l.is_connected()).await.is_err() {
            return;
        }
        if let Some(strict) = strict {
            tokio::select! {
                () = tokio::time::sleep(strict) => {
                    cache.hold_hits(true);
                    if let Some(node) = node.upgrade() {
                        node.report.status(
                            "Holding",
                            &format!(
                                "cache hits: cut off for over {}s (--purge-strict); requests go to the services",
                                strict.as_secs()
                            ),
                        );
                    }
                }
                _ = link.wait_for(|l| l.is_connected()) => {}
            }
        }
        if link.wait_for(|l| l.is_connected()).await.is_err() {
            return;
        }
        cache.hold_hits(true);
        let caught_up = async {
            fleet.joined().await;
            let Some(stream) = fleet.purges() else {
                return;
            };
            let target = loop {
                match stream.last_sequence().await {
                    Ok(last) => break last,
                    Err(_) => tokio::time::sleep(RETRY).await,
                }
            };
            let mut applied = purges.applied.subscribe();
            let _ = applied.wait_for(|a| *a >= target).await;
        };
        if tokio::time::timeout(CATCH_UP, caught_up).await.is_err()
            && let Some(node) = node.upgrade()
        {
            let applied = *purges.applied.borrow();
            drop_cache(
                &node,
                applied,
                &format!(
                    "the purges made while it was cut off were not all applied within {}s",
                    CATCH_UP.as_secs()
                ),
            );
        }
        cache.hold_hits(false);
    }
}

/// Collects what the other nodes say they applied of this node's purges.
async fn hear(node: Weak<Node>, purges: Arc<FleetPurges>) {
    let Some(first) = node.upgrade() else { return };
    let Some(fleet) = first.fleet.clone() else {
        return;
    };
    let me = first.name.clone();
    drop(first);
    fleet.joined().await;
    let Some(stream) = fleet.purges() else { return };
    loop {
        if let Ok(mut said) = stream.applied_by_others(&me).await {
            while let Some((by, sequence)) = said.next().await {
                let mut heard = purges.heard.lock().unwrap_or_else(|e| e.into_inner());
                let applied = heard.entry(by).or_default();
                *applied = (*applied).max(sequence);
                drop(heard);
                purges.heard_changed.send_replace(());
            }
        }
        if node.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}
