//! [`ControlStore`] in a JetStream KV bucket, so that every node of a fleet reads and
//! changes one control state. Revisions are the bucket stream's sequences; a write
//! expecting something is a publish with `Nats-Expected-Last-Subject-Sequence`, which
//! the stream's leader checks, so two nodes racing on one key never both win. The
//! change feed is a consumer from a sequence; a watch of the bucket moves the
//! revision as writes from anywhere land.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    context::{GetStreamErrorKind, PublishErrorKind},
    kv,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use verge_control::{Change, Changes, ControlError, ControlStore, Entry, Expect};

use crate::keys;

/// How long a read of the change feed waits for the next message before it takes
/// what it has.
const FEED_WAIT: Duration = Duration::from_secs(2);
/// How long the revision watch waits before it re-subscribes after losing the server.
const REWATCH: Duration = Duration::from_millis(500);

/// How the bucket is made by `--cluster-init`.
#[derive(Debug, Clone)]
pub struct BucketConfig {
    /// The bucket's name: `PREFIX-control`.
    pub bucket: String,
    /// Copies of every write the cluster keeps (R3 on a 3-server cluster).
    pub replicas: usize,
}

/// The control state in a JetStream KV bucket.
pub struct JetStreamStore {
    kv: kv::Store,
    js: jetstream::Context,
    revision: tokio::sync::watch::Sender<u64>,
    /// Every change since the store was opened (the last [`KEPT`]), as the one
    /// long-lived watch of the bucket delivered them: the change feed is read from
    /// here, not from a new consumer per call.
    feed: std::sync::Arc<Feed>,
    watcher: tokio::task::JoinHandle<()>,
}

/// Changes kept in memory for the feed.
const KEPT: usize = 10_000;
/// Entries a listing fetches at a time.
const LIST_BATCH: usize = 1024;

/// The bucket's changes as this node's watch heard them, gap-free from `start`.
struct Feed {
    log: std::sync::Mutex<std::collections::VecDeque<Change>>,
    /// The revision the log is complete up to.
    heard: tokio::sync::watch::Sender<u64>,
    /// Changes after this revision are all in the log (or were dropped from its
    /// front, which moves `start` up).
    start: std::sync::atomic::AtomicU64,
    /// Told when the log fell behind a revision the server has: the watch may have
    /// stalled without an error, so the watcher subscribes again from what it heard.
    rewatch: tokio::sync::Notify,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("bucket", &self.kv.name)
            .finish_non_exhaustive()
    }
}

impl Drop for JetStreamStore {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

fn unavailable(e: impl std::fmt::Display) -> ControlError {
    ControlError::Unavailable(e.to_string())
}

impl JetStreamStore {
    /// Creates the bucket (once per fleet: `--cluster-init`) and opens it.
    pub async fn create(
        js: jetstream::Context,
        config: &BucketConfig,
    ) -> Result<Self, ControlError> {
        let kv = js
            .create_key_value(kv::Config {
                bucket: config.bucket.clone(),
                description: "Verge's control state: services, versions, domains, tokens".into(),
                history: 1,
                num_replicas: config.replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        // Direct gets may be answered by a replica that lags the leader; a control
        // read that a compare-and-swap will build on must see the leader's state.
        let mut stream = js.get_stream(&kv.stream_name).await.map_err(unavailable)?;
        let mut stream_config = stream.info().await.map_err(unavailable)?.config.clone();
        if stream_config.allow_direct {
            stream_config.allow_direct = false;
            js.update_stream(stream_config).await.map_err(unavailable)?;
        }
        let kv = js
            .get_key_value(&config.bucket)
            .await
            .map_err(unavailable)?;
        Self::from_kv(js, kv).await
    }

    /// Opens the bucket a fleet made. A bucket that does not exist is an error that
    /// says so, never a new, empty fleet.
    pub async fn open(js: jetstream::Context, bucket: &str) -> Result<Self, ControlError> {
        // Asking for the stream first tells "there is no such bucket" (an answer)
        // from "JetStream does not answer" (a cut, worth waiting out).
        if let Err(e) = js.get_stream(format!("KV_{bucket}")).await {
            return Err(match e.kind() {
                GetStreamErrorKind::JetStream(e)
                    if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    ControlError::other(format!(
                        "no control bucket `{bucket}` in this NATS system; \
                         start one node with --cluster-init to create the fleet's state"
                    ))
                }
                GetStreamErrorKind::Request => {
                    ControlError::Unavailable(format!("opening the bucket `{bucket}`: {e}"))
                }
                _ => ControlError::other(format!("opening the bucket `{bucket}`: {e}")),
            });
        }
        let kv = js.get_key_value(bucket).await.map_err(unavailable)?;
        Self::from_kv(js, kv).await
    }

    async fn from_kv(js: jetstream::Context, kv: kv::Store) -> Result<Self, ControlError> {
        let last = last_sequence(&kv).await?;
        let revision = tokio::sync::watch::Sender::new(last);
        let feed = std::sync::Arc::new(Feed {
            log: Default::default(),
            heard: tokio::sync::watch::Sender::new(last),
            start: std::sync::atomic::AtomicU64::new(last),
            rewatch: tokio::sync::Notify::new(),
        });
        let watcher = tokio::spawn(watch_revisions(
            kv.clone(),
            revision.clone(),
            feed.clone(),
            last,
        ));
        Ok(JetStreamStore {
            kv,
            js,
            revision,
            feed,
            watcher,
        })
    }

    /// The changes after `since` from the in-memory log, once it has heard of
    /// `latest`; `None` when the log does not reach back to `since`, or has not heard
    /// of `latest` within [`FEED_WAIT`].
    async fn changes_heard(&self, since: u64, latest: u64, limit: usize) -> Option<Changes> {
        use std::sync::atomic::Ordering;
        if since < self.feed.start.load(Ordering::Acquire) {
            return None;
        }
        let mut heard = self.feed.heard.subscribe();
        // A write acknowledged to this node is announced before the watch delivers it.
        let _ = tokio::time::timeout(FEED_WAIT, heard.wait_for(|h| *h >= latest)).await;
        let log = self.feed.log.lock().unwrap_or_else(|e| e.into_inner());
        if since < self.feed.start.load(Ordering::Acquire) {
            return None;
        }
        let complete = *self.feed.heard.borrow();
        if complete < latest {
            // The watch has not delivered what the server holds: read the bucket
            // instead, and have the watch renewed.
            self.feed.rewatch.notify_one();
            return None;
        }
        let changes: Vec<Change> = log
            .iter()
            .filter(|c| c.revision > since)
            .take(limit)
            .cloned()
            .collect();
        let revision = if changes.len() >= limit {
            changes.last().map_or(complete, |c| c.revision)
        } else {
            complete
        };
        Some(Changes::Since {
            changes,
            revision: revision.max(since),
        })
    }

    fn subject(&self, key: &str) -> String {
        format!("$KV.{}.{}", self.kv.name, keys::encode(key))
    }

    /// Publishes `value` (a delete marker when `None`) on the key's subject, expecting
    /// its last message to be `expected` (0: none); the write's revision.
    async fn publish(
        &self,
        key: &str,
        value: Option<Vec<u8>>,
        expected: Option<u64>,
    ) -> Result<u64, ControlError> {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(expected) = expected {
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                expected.to_string().as_str(),
            );
        }
        if value.is_none() {
            headers.insert("KV-Operation", "DEL");
        }
        let payload = Bytes::from(value.unwrap_or_default());
        let sequence = again(|| async {
            let ack = self
                .js
                .publish_with_headers(self.subject(key), headers.clone(), payload.clone())
                .await
                .map_err(|e| publish_error(key, e))?
                .await
                .map_err(|e| publish_error(key, e))?;
            Ok(ack.sequence)
        })
        .await?;
        self.announce(sequence);
        Ok(sequence)
    }

    fn announce(&self, revision: u64) {
        verge_control::advance(&self.revision, revision);
    }

    /// The key's last message: `Some(Ok(entry))` if it holds a value, `Some(Err(rev))`
    /// for a deletion at `rev`, `None` if nothing was ever written.
    async fn last(&self, key: &str) -> Result<Option<Result<Entry, u64>>, ControlError> {
        let found =
            again(|| async { self.kv.entry(keys::encode(key)).await.map_err(unavailable) }).await?;
        Ok(found.map(|e| match e.operation {
            kv::Operation::Put => Ok(Entry {
                value: e.value.to_vec(),
                revision: e.revision,
            }),
            kv::Operation::Delete | kv::Operation::Purge => Err(e.revision),
        }))
    }
}

/// Runs `op` again (twice at most, 100 ms apart) when JetStream had no responder
/// for it (status 503): the moment of a leader election, or a consumer just made
/// and not yet listening, when the request reached no one and so did nothing
/// (nats.go's publish retries the same way).
async fn again<T, F, Fut>(op: F) -> Result<T, ControlError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ControlError>>,
{
    let mut tries = 0;
    loop {
        match op().await {
            Err(ControlError::Unavailable(why))
                if tries < 2
                    && ["no responders", "no stream found", "503"]
                        .iter()
                        .any(|sign| why.contains(sign)) =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answer => return answer,
        }
    }
}

fn publish_error(key: &str, e: jetstream::context::PublishError) -> ControlError {
    // The server answers a failed subject-sequence check with error code 10071 or,
    // for a subject with no message yet, 10164; async-nats names only the first.
    let wrong_sequence = e.kind() == PublishErrorKind::WrongLastSequence
        || e.to_string().contains("wrong last sequence");
    if wrong_sequence {
        return ControlError::Conflict(format!("`{key}` changed since it was read"));
    }
    match e.kind() {
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::StreamNotFound => {
            // A write that timed out may have landed: callers re-read before retrying.
            ControlError::Unavailable(format!("writing `{key}`: {e}"))
        }
        _ => ControlError::other(format!("writing `{key}`: {e}")),
    }
}

/// The bucket's latest revision, asked of the server (`kv::Store::status` answers
/// what it saw when the bucket was opened).
async fn last_sequence(kv: &kv::Store) -> Result<u64, ControlError> {
    again(|| async {
        let info = kv.stream.get_info().await.map_err(unavailable)?;
        Ok(info.state.last_sequence)
    })
    .await
}

/// Follows every write to the bucket, from anywhere, for as long as the store lives:
/// moves `revision` and appends the change to `feed`; re-subscribes from the last
/// change heard after the server is lost, so the log has no gaps.
async fn watch_revisions(
    kv: kv::Store,
    revision: tokio::sync::watch::Sender<u64>,
    feed: std::sync::Arc<Feed>,
    mut last: u64,
) {
    loop {
        if let Ok(mut watch) = kv.watch_all_from_revision(last + 1).await {
            loop {
                let entry = tokio::select! {
                    entry = watch.next() => entry,
                    () = feed.rewatch.notified() => break,
                };
                let Some(Ok(entry)) = entry else { break };
                if entry.revision <= last {
                    continue;
                }
                last = entry.revision;
                if let Some(key) = keys::decode(&entry.key) {
                    let value = match entry.operation {
                        kv::Operation::Put => Some(entry.value.to_vec()),
                        kv::Operation::Delete | kv::Operation::Purge => None,
                    };
                    let mut log = feed.log.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_back(Change {
                        revision: last,
                        key,
                        value,
                    });
                    if log.len() > KEPT
                        && let Some(dropped) = log.pop_front()
                    {
                        feed.start
                            .store(dropped.revision, std::sync::atomic::Ordering::Release);
                    }
                }
                verge_control::advance(&feed.heard, last);
                verge_control::advance(&revision, last);
            }
        }
        tokio::time::sleep(REWATCH).await;
    }
}

impl JetStreamStore {
    /// The last value of every key under `prefix`, read as one consumer of the
    /// bucket's stream filtered by subject (a prefix ending in `/` is a subject
    /// wildcard, see [`keys`]): one request however many keys. `None` for a prefix
    /// that is not a whole segment.
    async fn list_by_subject(
        &self,
        prefix: &str,
    ) -> Option<Result<Vec<(String, Entry)>, ControlError>> {
        let filter = match prefix {
            "" => format!("$KV.{}.>", self.kv.name),
            p if p.ends_with('/') => {
                format!("$KV.{}.{}.>", self.kv.name, keys::encode(&p[..p.len() - 1]))
            }
            _ => return None,
        };
        Some(self.read_last_per_subject(filter, prefix).await)
    }

    async fn read_last_per_subject(
        &self,
        filter: String,
        prefix: &str,
    ) -> Result<Vec<(String, Entry)>, ControlError> {
        // An ephemeral consumer, in memory, deleted once read (and by the server a
        // few seconds after, should this node vanish first): a node lists often.
        let consumer = self
            .kv
            .stream
            .create_consumer(jetstream::consumer::pull::Config {
                filter_subject: filter,
                deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
                ack_policy: jetstream::consumer::AckPolicy::None,
                memory_storage: true,
                num_replicas: 1,
                inactive_threshold: Duration::from_secs(5),
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let name = consumer.cached_info().name.clone();
        let listed = Self::read_listing(consumer, &self.kv.name, prefix).await;
        let _ = self.kv.stream.delete_consumer(&name).await;
        listed
    }

    async fn read_listing(
        consumer: jetstream::consumer::Consumer<jetstream::consumer::pull::Config>,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Entry)>, ControlError> {
        let mut out = Vec::new();
        let subject_prefix = format!("$KV.{bucket}.");
        // Fetches that take what the consumer has now (no waiting), until one comes
        // back empty: the end is the server's, not a count read at creation.
        loop {
            let batch = tokio::time::timeout(FEED_WAIT, async {
                let mut batch = consumer
                    .fetch()
                    .max_messages(LIST_BATCH)
                    .messages()
                    .await
                    .map_err(unavailable)?;
                let mut messages = Vec::new();
                while let Some(message) = batch.next().await {
                    messages.push(message.map_err(unavailable)?);
                }
                Ok::<_, ControlError>(messages)
            })
            .await
            .map_err(|_| unavailable(format!("listing `{prefix}` stalled")))??;
            if batch.is_empty() {
                break;
            }
            for message in batch {
                let revision = message.info().map_err(unavailable)?.stream_sequence;
                let deleted = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("KV-Operation"))
                    .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
                let key = message
                    .subject
                    .as_str()
                    .strip_prefix(&subject_prefix)
                    .and_then(keys::decode);
                if let (Some(key), false) = (key, deleted)
                    && key.starts_with(prefix)
                {
                    out.push((
                        key,
                        Entry {
                            value: message.payload.to_vec(),
                            revision,
                        },
                    ));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every key under `prefix`, from the bucket's key list and a read of each.
    async fn list_by_keys(&self, prefix: &str) -> Result<Vec<(String, Entry)>, ControlError> {
        let mut names = Vec::new();
        let mut all = self.kv.keys().await.map_err(unavailable)?;
        while let Some(key) = all.next().await {
            let key = key.map_err(unavailable)?;
            if let Some(key) = keys::decode(&key)
                && key.starts_with(prefix)
            {
                names.push(key);
            }
        }
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(entry) = self.get(&name).await? {
                out.push((name, entry));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ControlStore for JetStreamStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, ControlError> {
        Ok(self.last(key).await?.and_then(Result::ok))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, ControlError> {
        again(|| async {
            match self.list_by_subject(prefix).await {
                Some(listed) => listed,
                None => self.list_by_keys(prefix).await,
            }
        })
        .await
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, ControlError> {
        let expected = match expect {
            Expect::Any => None,
            Expect::Revision(r) => Some(r),
            Expect::Absent => match self.last(key).await? {
                None => Some(0),
                Some(Err(deleted_at)) => Some(deleted_at),
                Some(Ok(e)) => {
                    return Err(ControlError::Conflict(format!(
                        "`{key}` exists (revision {})",
                        e.revision
                    )));
                }
            },
        };
        self.publish(key, Some(value), expected).await
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<u64, ControlError> {
        match (expect, self.last(key).await?) {
            (Expect::Any | Expect::Absent, None | Some(Err(_))) => Ok(*self.revision.borrow()),
            (Expect::Revision(want), None | Some(Err(_))) => Err(ControlError::Conflict(format!(
                "`{key}` no longer exists (expected revision {want})"
            ))),
            (Expect::Absent, Some(Ok(e))) => Err(ControlError::Conflict(format!(
                "`{key}` exists (revision {})",
                e.revision
            ))),
            (Expect::Any, Some(Ok(_))) => self.publish(key, None, None).await,
            (Expect::Revision(want), Some(Ok(_))) => self.publish(key, None, Some(want)).await,
        }
    }

    async fn changes(&self, since: u64, limit: usize) -> Result<Changes, ControlError> {
        let latest = (*self.revision.borrow()).max(since);
        if let Some(changes) = self.changes_heard(since, latest, limit).await {
            return Ok(changes);
        }
        // Further back than this node has heard: read the bucket from `since`.
        let latest = last_sequence(&self.kv).await?;
        self.announce(latest);
        if since >= latest {
            return Ok(Changes::Since {
                changes: Vec::new(),
                revision: latest,
            });
        }
        let mut watch = self
            .kv
            .watch_all_from_revision(since + 1)
            .await
            .map_err(unavailable)?;
        let mut changes = Vec::new();
        let mut reached = false;
        while changes.len() < limit {
            let next = tokio::time::timeout(FEED_WAIT, watch.next()).await;
            let Ok(Some(entry)) = next else { break };
            let entry = entry.map_err(unavailable)?;
            reached = entry.revision >= latest;
            let Some(key) = keys::decode(&entry.key) else {
                continue;
            };
            let value = match entry.operation {
                kv::Operation::Put => Some(entry.value.to_vec()),
                kv::Operation::Delete | kv::Operation::Purge => None,
            };
            let revision = entry.revision;
            changes.push(Change {
                revision,
                key,
                value,
            });
            if revision >= latest {
                break;
            }
        }
        // The last message of the bucket is always some key's last write, so a feed
        // that stops short of it was cut (or is a full page): it is complete only up
        // to what it delivered.
        let revision = match (reached, changes.last()) {
            (true, _) => latest,
            (false, Some(last)) => last.revision,
            (false, None) => {
                return Err(ControlError::Unavailable(format!(
                    "the change feed from revision {since} gave nothing within {}s",
                    FEED_WAIT.as_secs()
                )));
            }
        };
        Ok(Changes::Since { changes, revision })
    }

    fn revision(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// A JetStream API request (the stream's info), answered by the stream's leader:
    /// a node behind a leaf that lost the hub stays connected to the leaf, but this
    /// gets no answer.
    async fn probe(&self) -> Result<u64, ControlError> {
        let latest = last_sequence(&self.kv).await?;
        self.announce(latest);
        Ok(latest)
    }
}
