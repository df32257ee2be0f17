//! The fleet's directory of nodes: a KV bucket `PREFIX-nodes` with one key per node
//! holding its latest heartbeat (what it serves, what it has applied). Every node
//! publishes its own and watches all of them, so "which nodes serve version 7" is a
//! lookup in memory, and a change is heard of within a millisecond or two on
//! loopback. The bucket forgets a node an hour after its last heartbeat.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::StreamExt;
use verge_control::ControlError;

use crate::keys;

/// How long the bucket keeps a node that stopped sending heartbeats.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// How long publishing a heartbeat may take.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(2);
/// How long the watch waits before it re-subscribes after losing the server.
const REWATCH: Duration = Duration::from_millis(500);

/// A node's latest heartbeat as the bucket holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// What the node published (the node's own encoding); cheap to clone.
    pub value: Bytes,
    /// When the server stored it (the server's clock, so nodes' clocks do not matter).
    pub at: SystemTime,
}

/// The nodes of a fleet.
pub struct NodeDirectory {
    kv: kv::Store,
    seen: Arc<RwLock<BTreeMap<String, Heartbeat>>>,
    changed: tokio::sync::watch::Sender<u64>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for NodeDirectory {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

fn unavailable(e: impl std::fmt::Display) -> ControlError {
    ControlError::Unavailable(e.to_string())
}

impl NodeDirectory {
    /// Creates the bucket (with `--cluster-init`) and opens it.
    pub async fn create(
        js: &jetstream::Context,
        bucket: &str,
        replicas: usize,
    ) -> Result<Self, ControlError> {
        let kv = js
            .create_key_value(kv::Config {
                bucket: bucket.to_owned(),
                description: "Verge nodes: one heartbeat per node".into(),
                history: 1,
                max_age: FORGET_AFTER,
                num_replicas: replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(Self::watching(kv))
    }

    /// Opens the bucket a fleet made.
    pub async fn open(js: &jetstream::Context, bucket: &str) -> Result<Self, ControlError> {
        let kv = js.get_key_value(bucket).await.map_err(|e| {
            ControlError::Unavailable(format!(
                "no node bucket `{bucket}` ({e}); a fleet made by an older Verge: \
                 start one node with --cluster-init to add it"
            ))
        })?;
        Ok(Self::watching(kv))
    }

    fn watching(kv: kv::Store) -> Self {
        let seen = Arc::new(RwLock::new(BTreeMap::new()));
        let changed = tokio::sync::watch::Sender::new(0);
        let watcher = tokio::spawn(watch(kv.clone(), seen.clone(), changed.clone()));
        NodeDirectory {
            kv,
            seen,
            changed,
            watcher,
        }
    }

    /// Publishes `node`'s heartbeat.
    pub async fn publish(&self, node: &str, value: Vec<u8>) -> Result<(), ControlError> {
        let put = self.kv.put(keys::encode(node), Bytes::from(value));
        match tokio::time::timeout(PUBLISH_DEADLINE, put).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(ControlError::Unavailable(
                "publishing the heartbeat timed out".into(),
            )),
        }
    }

    /// Every node's latest heartbeat, by name, as last heard.
    pub fn all(&self) -> BTreeMap<String, Heartbeat> {
        self.seen.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Moves whenever a heartbeat arrives.
    pub fn changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Keeps `seen` equal to the bucket, for as long as the directory lives.
async fn watch(
    kv: kv::Store,
    seen: Arc<RwLock<BTreeMap<String, Heartbeat>>>,
    changed: tokio::sync::watch::Sender<u64>,
) {
    loop {
        if let Ok(mut updates) = kv.watch_with_history(">").await {
            while let Some(Ok(entry)) = updates.next().await {
                let Some(name) = keys::decode(&entry.key) else {
                    continue;
                };
                {
                    let mut seen = seen.write().unwrap_or_else(|e| e.into_inner());
                    match entry.operation {
                        kv::Operation::Put => {
                            let nanos = entry.created.unix_timestamp_nanos().max(0) as u64;
                            seen.insert(
                                name,
                                Heartbeat {
                                    value: entry.value,
                                    at: SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos),
                                },
                            );
                        }
                        kv::Operation::Delete | kv::Operation::Purge => {
                            seen.remove(&name);
                        }
                    }
                }
                changed.send_modify(|n| *n += 1);
            }
        }
        tokio::time::sleep(REWATCH).await;
    }
}
