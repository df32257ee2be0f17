//! The fleet's directory of nodes: a KV bucket `PREFIX-nodes` that every node
//! publishes to and watches, so "which nodes serve version 7" is a lookup in memory,
//! and a change is heard of within a millisecond or two on loopback.
//!
//! A node has two keys. `beat.NAME` is its heartbeat, small and written every few
//! seconds (what it applied, whether NATS answers, requests served). `serves.NAME`
//! is what it serves, one entry per service (40 KB at 1,000 services), written only
//! when that changes, before the heartbeat that reports the revision it belongs to:
//! a watcher, reading the bucket in order, never sees a heartbeat ahead of its
//! services. The bucket forgets a key an hour after it was written, so a node
//! rewrites an unchanged `serves` now and then ([`REWRITE_SERVES`]).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::StreamExt;
use verge_control::ControlError;

use crate::keys;

/// How long the bucket keeps a key no one rewrote.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// How often a node rewrites what it serves when it has not changed, well within
/// [`FORGET_AFTER`].
pub const REWRITE_SERVES: Duration = Duration::from_secs(20 * 60);
/// How long publishing may take.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(2);
/// How long the watch waits before it re-subscribes after losing the server.
const REWATCH: Duration = Duration::from_millis(500);

const BEAT: &str = "beat/";
const SERVES: &str = "serves/";

/// A node's latest heartbeat and services as the bucket holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// What the node published (the node's own encoding); cheap to clone.
    pub value: Bytes,
    /// When the server stored it (the server's clock, so nodes' clocks do not matter).
    pub at: SystemTime,
    /// What the node serves (its own encoding), as last written; empty if never.
    pub serves: Bytes,
    /// The bucket revisions of the heartbeat and of `serves`: equal pairs, equal
    /// contents (to decode each once).
    pub revisions: (u64, u64),
}

#[derive(Default)]
struct Seen {
    beats: BTreeMap<String, (Bytes, SystemTime, u64)>,
    serves: BTreeMap<String, (Bytes, u64)>,
}

/// The nodes of a fleet.
pub struct NodeDirectory {
    kv: kv::Store,
    seen: Arc<RwLock<Seen>>,
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
                description: "Verge nodes: each one's heartbeat and what it serves".into(),
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
        let seen = Arc::new(RwLock::new(Seen::default()));
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
        self.put(&format!("{BEAT}{node}"), value).await
    }

    /// Publishes what `node` serves; before the heartbeat that reports it.
    pub async fn publish_serves(&self, node: &str, value: Vec<u8>) -> Result<(), ControlError> {
        self.put(&format!("{SERVES}{node}"), value).await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), ControlError> {
        let put = self.kv.put(keys::encode(key), Bytes::from(value));
        match tokio::time::timeout(PUBLISH_DEADLINE, put).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(ControlError::Unavailable(format!(
                "publishing `{key}` to the node directory timed out"
            ))),
        }
    }

    /// Every node's latest heartbeat, by name, as last heard.
    pub fn all(&self) -> BTreeMap<String, Heartbeat> {
        let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
        seen.beats
            .iter()
            .map(|(name, (value, at, revision))| {
                let (serves, serves_revision) =
                    seen.serves.get(name).cloned().unwrap_or((Bytes::new(), 0));
                let beat = Heartbeat {
                    value: value.clone(),
                    at: *at,
                    serves,
                    revisions: (*revision, serves_revision),
                };
                (name.clone(), beat)
            })
            .collect()
    }

    /// Moves whenever a heartbeat arrives.
    pub fn changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Keeps `seen` equal to the bucket, for as long as the directory lives.
async fn watch(kv: kv::Store, seen: Arc<RwLock<Seen>>, changed: tokio::sync::watch::Sender<u64>) {
    loop {
        if let Ok(mut updates) = kv.watch_with_history(">").await {
            while let Some(Ok(entry)) = updates.next().await {
                let Some(key) = keys::decode(&entry.key) else {
                    continue;
                };
                let put = matches!(entry.operation, kv::Operation::Put);
                {
                    let mut seen = seen.write().unwrap_or_else(|e| e.into_inner());
                    if let Some(name) = key.strip_prefix(BEAT) {
                        if put {
                            let nanos = entry.created.unix_timestamp_nanos().max(0) as u64;
                            let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
                            seen.beats
                                .insert(name.to_owned(), (entry.value, at, entry.revision));
                        } else {
                            seen.beats.remove(name);
                        }
                    } else if let Some(name) = key.strip_prefix(SERVES) {
                        if put {
                            seen.serves
                                .insert(name.to_owned(), (entry.value, entry.revision));
                        } else {
                            seen.serves.remove(name);
                        }
                    } else {
                        // Not a key this directory writes.
                        continue;
                    }
                }
                changed.send_modify(|n| *n += 1);
            }
        }
        tokio::time::sleep(REWATCH).await;
    }
}
