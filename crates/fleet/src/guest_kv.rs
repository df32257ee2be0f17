//! The guests' KV stores on a fleet: one JetStream KV bucket (`PREFIX-kv`, R3) holds
//! every store of every service, and each node keeps a [`KvReplica`] of it.
//!
//! - **Reads** are the replica's: no network on a request's read path, and a node cut
//!   off from NATS still answers them.
//! - **Writes** are publishes to the key's subject expecting the revision the node
//!   read (`Nats-Expected-Last-Subject-Sequence`), so the stream's leader settles
//!   every race: two nodes doing a compare-and-swap on one key never both win. A
//!   write returns once the stream's quorum has it, and the writing node's replica
//!   has it before the call returns. One that cannot be acknowledged within
//!   [`WRITE_DEADLINE`] fails as unavailable; nothing is ever written locally only.
//! - **The feed**: one watch of the bucket per node, from the revision its replica
//!   applied (persisted with the data), so a restart resumes it.
//! - **Expiry** is kept in the record and enforced on read (so an expired key reads
//!   as absent on every node at the same moment, give or take clock skew); each
//!   replica's sweeper drops expired records, and the message carries a per-message
//!   TTL (`Nats-TTL`, a second or more past the expiry) so the bucket drops it too.
//! - **Large values** (beyond what fits in one message) go to the object store
//!   `PREFIX-kv-large` under a name used once; the message names the object and the
//!   value's SHA-256. The write that replaces or deletes it removes the object.
//!
//! One bucket rather than one per store: a node follows one watch (one consumer)
//! whatever the number of stores, and a new store needs no bucket made first.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, object_store::ObjectStore, stream::Stream};
use bytes::Bytes;
use futures::StreamExt;
use sha2::Digest;
use verge_store::{Backend, BackendError, Change, KvError, KvReplica, Record, Replicated};

use crate::keys;

/// The longest a write may wait for the fleet's acknowledgement before it fails as
/// unavailable: well within a request's budget, so a cut-off node answers at once.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(2);
/// How often a write waiting for a reconnect looks at the connection.
const RECONNECT_POLL: Duration = Duration::from_millis(20);
/// Changes the feed applies in one replica transaction at most.
const BATCH: usize = 512;
/// How long the feed waits before it watches again after losing the server.
const REWATCH: Duration = Duration::from_millis(500);
/// Room left in a message for the record's header, metadata and NATS headers.
const MESSAGE_OVERHEAD: usize = 8 << 10;

/// The bucket holding every guest store of the fleet `prefix`.
pub fn kv_bucket_name(prefix: &str) -> String {
    format!("{prefix}-kv")
}

fn unavailable(e: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

/// A fleet node's KV backend: reads from its replica, writes through the bucket once
/// the node has joined its fleet ([`FleetKv::attach`]); until then writes fail as
/// unavailable and reads answer what the replica holds.
pub struct FleetKv {
    replica: Arc<KvReplica>,
    bucket: OnceLock<Arc<KvBucket>>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for FleetKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetKv")
            .field("replica", &self.replica)
            .field("joined", &self.bucket.get().is_some())
            .finish()
    }
}

impl FleetKv {
    /// A backend over `replica`; writes run their network part on `runtime`.
    pub fn new(replica: Arc<KvReplica>, runtime: tokio::runtime::Handle) -> FleetKv {
        FleetKv {
            replica,
            bucket: OnceLock::new(),
            runtime,
        }
    }

    /// Writes go to `bucket` from now on.
    pub fn attach(&self, bucket: Arc<KvBucket>) {
        let _ = self.bucket.set(bucket);
    }

    /// Runs `work` to its end from synchronous code: on a blocking thread as the KV
    /// callers use, or, from a runtime's worker, with the worker handed over first.
    fn wait<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.runtime.block_on(work))
            }
            _ => self.runtime.block_on(work),
        }
    }
}

impl Backend for FleetKv {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Record>, BackendError> {
        self.replica.get(ns, key)
    }

    fn update(
        &self,
        ns: &str,
        key: &str,
        decide: &mut dyn FnMut(Option<&Record>) -> Result<Change, KvError>,
    ) -> Result<Option<Record>, KvError> {
        let Some(bucket) = self.bucket.get() else {
            return Err(KvError::Storage(unavailable(
                "this node has not joined its fleet yet, so it cannot write \
                 (reads answer from its copy); retry once it has",
            )));
        };
        self.wait(bucket.update(ns, key, decide))
    }

    fn scan(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>, BackendError> {
        self.replica.scan(ns, prefix, after, limit)
    }

    fn purge_expired(&self, now_ms: u64, max: usize) -> Result<usize, BackendError> {
        self.replica.purge_expired(now_ms, max)
    }
}

/// What the bucket's writer and its feed share.
struct Shared {
    kv: kv::Store,
    js: jetstream::Context,
    large: ObjectStore,
    large_stream: Stream,
    replica: Arc<KvReplica>,
    /// The revision the replica has applied the feed up to.
    applied: tokio::sync::watch::Sender<u64>,
    /// The largest record sent inline.
    max_inline: usize,
}

/// The fleet's guest KV bucket, followed into this node's replica.
pub struct KvBucket {
    shared: Arc<Shared>,
    feed: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for KvBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvBucket")
            .field("bucket", &self.shared.kv.name)
            .finish_non_exhaustive()
    }
}

impl Drop for KvBucket {
    fn drop(&mut self) {
        self.feed.abort();
    }
}

impl KvBucket {
    /// Creates the bucket and its large-value store (once per fleet), then opens them.
    pub async fn create(
        js: &jetstream::Context,
        prefix: &str,
        replicas: usize,
        replica: Arc<KvReplica>,
    ) -> Result<KvBucket, BackendError> {
        let bucket = kv_bucket_name(prefix);
        if js.get_key_value(&bucket).await.is_ok() {
            // Made by an earlier `--cluster-init` (its settings changed since, below).
            return Self::open(js, prefix, replica).await;
        }
        let max_payload = js.client().server_info().max_payload;
        js.create_key_value(kv::Config {
            bucket: bucket.clone(),
            description: "Verge guest KV stores (every service's, one key per item)".into(),
            history: 1,
            num_replicas: replicas,
            storage: jetstream::stream::StorageType::File,
            max_value_size: max_payload.min(i32::MAX as usize) as i32,
            // Per-message TTLs, and a marker when one expires so every replica hears.
            limit_markers: Some(Duration::from_secs(3600)),
            ..Default::default()
        })
        .await
        .map_err(unavailable)?;
        // A write that lost a race reads the key again; it must see the leader's
        // state, and direct gets may be answered by a replica that lags it.
        let mut stream = js
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(unavailable)?;
        let mut config = stream.info().await.map_err(unavailable)?.config.clone();
        if config.allow_direct {
            config.allow_direct = false;
            js.update_stream(config).await.map_err(unavailable)?;
        }
        js.create_object_store(jetstream::object_store::Config {
            bucket: format!("{bucket}-large"),
            description: Some("Verge guest KV values too large for one message".into()),
            num_replicas: replicas,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(unavailable)?;
        Self::open(js, prefix, replica).await
    }

    /// Opens the fleet's bucket and starts following it from the revision `replica`
    /// applied.
    pub async fn open(
        js: &jetstream::Context,
        prefix: &str,
        replica: Arc<KvReplica>,
    ) -> Result<KvBucket, BackendError> {
        let bucket = kv_bucket_name(prefix);
        let kv = js.get_key_value(&bucket).await.map_err(|e| {
            unavailable(format!(
                "no guest KV bucket `{bucket}` in this NATS system ({e}); \
                 start one node with --cluster-init to create the fleet's state"
            ))
        })?;
        let large_name = format!("{bucket}-large");
        let large = js
            .get_object_store(&large_name)
            .await
            .map_err(unavailable)?;
        let large_stream = js
            .get_stream(format!("OBJ_{large_name}"))
            .await
            .map_err(unavailable)?;
        let max_payload = js.client().server_info().max_payload;
        let from = replica.revision()?;
        let shared = Arc::new(Shared {
            kv,
            js: js.clone(),
            large,
            large_stream,
            replica,
            applied: tokio::sync::watch::Sender::new(from),
            max_inline: max_payload.saturating_sub(MESSAGE_OVERHEAD).max(1024),
        });
        let feed = tokio::spawn(follow(shared.clone(), from));
        Ok(KvBucket { shared, feed })
    }

    /// The revision this node's replica has applied the feed up to, as it moves.
    pub fn applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.applied.subscribe()
    }

    /// The bucket's latest revision, asked of the server.
    pub async fn last_revision(&self) -> Result<u64, BackendError> {
        let info = self
            .shared
            .kv
            .stream
            .get_info()
            .await
            .map_err(unavailable)?;
        Ok(info.state.last_sequence)
    }

    /// Atomically reads `key`, lets `decide` choose a change, and has the bucket
    /// apply it only if the key is still as read; a lost race reads again and decides
    /// again. Fails as unavailable when the bucket does not acknowledge within
    /// [`WRITE_DEADLINE`].
    pub async fn update(
        &self,
        ns: &str,
        key: &str,
        decide: &mut dyn FnMut(Option<&Record>) -> Result<Change, KvError>,
    ) -> Result<Option<Record>, KvError> {
        let deadline = Instant::now() + WRITE_DEADLINE;
        // A publish made while disconnected waits in the client's buffer and may land
        // long after this call gave up: write only on a live connection, waiting out
        // a reconnect (a server restarting) within the deadline.
        let client = self.shared.js.client();
        while client.connection_state() != async_nats::connection::State::Connected {
            if Instant::now() + RECONNECT_POLL > deadline {
                return Err(KvError::Storage(unavailable(format!(
                    "this node has not been connected to its fleet's NATS servers for the \
                     last {} s, so it cannot write (reads answer from its copy); retry later",
                    WRITE_DEADLINE.as_secs()
                ))));
            }
            tokio::time::sleep(RECONNECT_POLL).await;
        }
        match tokio::time::timeout_at(
            deadline.into(),
            self.update_until(ns, key, decide, deadline),
        )
        .await
        {
            Ok(answer) => answer,
            Err(_) => Err(KvError::Storage(unavailable(format!(
                "the fleet's KV bucket did not acknowledge the write within {} s \
                 (is this node cut off?); it may or may not have been applied: \
                 read it back, or retry later",
                WRITE_DEADLINE.as_secs()
            )))),
        }
    }

    async fn update_until(
        &self,
        ns: &str,
        key: &str,
        decide: &mut dyn FnMut(Option<&Record>) -> Result<Change, KvError>,
        deadline: Instant,
    ) -> Result<Option<Record>, KvError> {
        let shared = &self.shared;
        let subject = format!("$KV.{}.{}", shared.kv.name, subject_key(ns, key));
        let mut current = Current {
            record: shared.replica.get(ns, key)?,
            revision: shared.replica.last_revision(ns, key)?,
            value_ref: shared.replica.value_ref(ns, key)?,
        };
        loop {
            let change = decide(current.record.as_ref())?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                current.revision.to_string().as_str(),
            );
            let (payload, written) = match change {
                Change::Keep => return Ok(current.record),
                Change::Delete => {
                    headers.insert("KV-Operation", "DEL");
                    (Bytes::new(), None)
                }
                Change::Put {
                    value,
                    metadata,
                    expires_at_ms,
                } => {
                    if let Some(at) = expires_at_ms {
                        let left = at.saturating_sub(verge_store::now_ms());
                        let seconds = left.div_ceil(1000) + 1;
                        headers.insert("Nats-TTL", format!("{seconds}s").as_str());
                    }
                    let inline = metadata.as_ref().map_or(0, String::len) + value.len();
                    let body = if inline <= shared.max_inline {
                        Body::Inline(value.clone())
                    } else {
                        let object = new_object_name();
                        shared
                            .large
                            .put(object.as_str(), &mut value.as_ref())
                            .await
                            .map_err(|e| unavailable(format!("storing a large value: {e}")))?;
                        Body::Large {
                            sha256: sha2::Sha256::digest(&value).into(),
                            object,
                        }
                    };
                    let payload = payload::encode(&metadata, expires_at_ms, &body);
                    let record = Record {
                        value,
                        metadata,
                        generation: 0,
                        expires_at_ms,
                    };
                    (payload, Some((record, body)))
                }
            };
            let published = async {
                shared
                    .js
                    .publish_with_headers(subject.clone(), headers, payload)
                    .await?
                    .await
            }
            .await;
            let new_object = match &written {
                Some((_, Body::Large { object, .. })) => Some(object.clone()),
                _ => None,
            };
            match published {
                Ok(ack) => {
                    let revision = ack.sequence;
                    let record = written.map(|(record, _)| Record {
                        generation: revision,
                        ..record
                    });
                    shared.replica.apply(
                        &[Replicated {
                            ns: ns.to_owned(),
                            key: key.to_owned(),
                            revision,
                            record: record.clone(),
                            value_ref: new_object,
                        }],
                        None,
                        false,
                    )?;
                    if let Some(old) = current.value_ref {
                        self.forget_object(old);
                    }
                    return Ok(record);
                }
                Err(e) => {
                    if let Some(object) = new_object {
                        self.forget_object(object);
                    }
                    let text = e.to_string();
                    let wrong_sequence = e.kind()
                        == jetstream::context::PublishErrorKind::WrongLastSequence
                        || text.contains("wrong last sequence");
                    if wrong_sequence {
                        // Someone wrote since: decide again on what the leader holds.
                        current = self.read_from_bucket(ns, key).await?;
                        continue;
                    }
                    let no_responders = e.kind()
                        == jetstream::context::PublishErrorKind::StreamNotFound
                        || text.contains("no responders")
                        || text.contains("503");
                    if no_responders && Instant::now() + Duration::from_millis(100) < deadline {
                        // A leader election (a server lost): the request reached no
                        // one, so did nothing; the stream answers again once elected.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    return Err(KvError::Storage(unavailable(format!(
                        "the fleet's KV bucket did not take the write: {text}"
                    ))));
                }
            }
        }
    }

    /// The key as the bucket's leader holds it, applied to the replica too.
    async fn read_from_bucket(&self, ns: &str, key: &str) -> Result<Current, KvError> {
        let shared = &self.shared;
        let entry = shared
            .kv
            .entry(subject_key(ns, key))
            .await
            .map_err(|e| unavailable(format!("reading `{key}` again: {e}")))?;
        let Some(entry) = entry else {
            let known = shared.replica.last_revision(ns, key)?;
            shared.replica.forget_deletion(ns, key, known)?;
            return Ok(Current {
                record: None,
                revision: 0,
                value_ref: None,
            });
        };
        let revision = entry.revision;
        let change = match change_of(shared, ns.to_owned(), key.to_owned(), &entry).await? {
            Some(change) => change,
            // The value's object is gone: a newer write replaced it since.
            None => {
                return Err(KvError::Storage(BackendError::Conflict(format!(
                    "`{key}` changed while it was being read"
                ))));
            }
        };
        shared
            .replica
            .apply(std::slice::from_ref(&change), None, false)?;
        Ok(Current {
            record: change.record,
            revision,
            value_ref: change.value_ref,
        })
    }

    /// Removes a large value's object nobody refers to any more, in the background.
    fn forget_object(&self, object: String) {
        let large = self.shared.large.clone();
        tokio::spawn(async move {
            if let Err(e) = large.delete(&object).await {
                tracing::debug!("removing the replaced KV object `{object}`: {e}");
            }
        });
    }
}

/// What a write builds on: the record, the revision the bucket must still hold for
/// the key, and the record's object if its value is large.
struct Current {
    record: Option<Record>,
    revision: u64,
    value_ref: Option<String>,
}

/// A key of store `ns` (`app/store`) in the bucket: `app.store.key`, each one token.
fn subject_key(ns: &str, key: &str) -> String {
    let (app, store) = ns.split_once('/').unwrap_or((ns, ""));
    format!(
        "{}.{}.{}",
        keys::token(app),
        keys::token(store),
        keys::token(key)
    )
}

/// The reverse of [`subject_key`]: `(ns, key)`.
fn parse_subject_key(subject_key: &str) -> Option<(String, String)> {
    let mut tokens = subject_key.split('.');
    let (app, store, key) = (tokens.next()?, tokens.next()?, tokens.next()?);
    if tokens.next().is_some() {
        return None;
    }
    Some((
        format!("{}/{}", keys::untoken(app)?, keys::untoken(store)?),
        keys::untoken(key)?,
    ))
}

fn new_object_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let digest = sha2::Sha256::digest(seed.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The change an entry of the bucket makes, its large value fetched; `None` when the
/// value's object is gone (a newer write replaced it, and the feed brings that).
async fn change_of(
    shared: &Shared,
    ns: String,
    key: String,
    entry: &kv::Entry,
) -> Result<Option<Replicated>, BackendError> {
    let revision = entry.revision;
    let (record, value_ref) = match entry.operation {
        kv::Operation::Delete | kv::Operation::Purge => (None, None),
        kv::Operation::Put => {
            let stored = payload::decode(&entry.value).ok_or_else(|| {
                BackendError::other(format!(
                    "revision {revision} of `{key}` in the fleet's KV bucket is not a Verge record"
                ))
            })?;
            let (value, value_ref) = match stored.body {
                Body::Inline(value) => (value, None),
                Body::Large { sha256, object } => {
                    let Some(bytes) = crate::objects::read(
                        &shared.js.client(),
                        &shared.large,
                        &shared.large_stream,
                        &object,
                    )
                    .await
                    .map_err(unavailable)?
                    else {
                        return Ok(None);
                    };
                    if <[u8; 32]>::from(sha2::Sha256::digest(&bytes)) != sha256 {
                        return Err(BackendError::other(format!(
                            "the large value of `{key}` (object `{object}`) does not match its SHA-256"
                        )));
                    }
                    (Bytes::from(bytes), Some(object))
                }
            };
            (
                Some(Record {
                    value,
                    metadata: stored.metadata,
                    generation: revision,
                    expires_at_ms: stored.expires_at_ms,
                }),
                value_ref,
            )
        }
    };
    Ok(Some(Replicated {
        ns,
        key,
        revision,
        record,
        value_ref,
    }))
}

/// Follows every write to the bucket into the replica, in batches, for as long as
/// the bucket is open; watches again from the last revision applied after losing
/// the server.
async fn follow(shared: Arc<Shared>, mut last: u64) {
    loop {
        if let Ok(mut watch) = shared.kv.watch_all_from_revision(last + 1).await {
            // The watch is read by a task of its own and never dropped mid-read:
            // cancelling an ordered consumer's read while it re-subscribes left the
            // client hanging.
            let (tx, mut rx) = tokio::sync::mpsc::channel(4 * BATCH);
            tokio::spawn(async move {
                while let Some(entry) = watch.next().await {
                    let failed = entry.is_err();
                    if tx.send(entry).await.is_err() || failed {
                        return;
                    }
                }
            });
            'feed: while let Some(first) = rx.recv().await {
                let mut entries = vec![first];
                while entries.len() < BATCH {
                    match rx.try_recv() {
                        Ok(entry) => entries.push(entry),
                        Err(_) => break,
                    }
                }
                let mut changes = Vec::with_capacity(entries.len());
                let mut upto = last;
                let mut broken = false;
                for entry in entries {
                    let Ok(entry) = entry else {
                        broken = true;
                        break;
                    };
                    if entry.revision <= upto {
                        continue;
                    }
                    if let Some((ns, key)) = parse_subject_key(&entry.key) {
                        match fetch_change(&shared, ns, key, &entry).await {
                            Some(change) => changes.extend(change),
                            None => {
                                broken = true;
                                break;
                            }
                        }
                    }
                    upto = entry.revision;
                }
                if upto > last {
                    let replica = shared.replica.clone();
                    let applied = tokio::task::spawn_blocking(move || {
                        replica.apply(&changes, Some(upto), true)
                    })
                    .await;
                    match applied {
                        Ok(Ok(_)) => {
                            last = upto;
                            shared.applied.send_if_modified(|at| {
                                let newer = upto > *at;
                                *at = (*at).max(upto);
                                newer
                            });
                        }
                        Ok(Err(e)) => {
                            tracing::warn!("applying the fleet's KV changes: {e}");
                            break 'feed;
                        }
                        Err(e) => {
                            tracing::warn!("applying the fleet's KV changes: {e}");
                            break 'feed;
                        }
                    }
                }
                if broken {
                    break;
                }
            }
        }
        tokio::time::sleep(REWATCH).await;
    }
}

/// [`change_of`], trying again while the large value cannot be read; `None` when the
/// feed should start over (the server is gone).
async fn fetch_change(
    shared: &Shared,
    ns: String,
    key: String,
    entry: &kv::Entry,
) -> Option<Option<Replicated>> {
    for _ in 0..3 {
        match change_of(shared, ns.clone(), key.clone(), entry).await {
            Ok(change) => return Some(change),
            Err(BackendError::Unavailable(e)) => {
                tracing::debug!("reading a large KV value: {e}");
                tokio::time::sleep(REWATCH).await;
            }
            Err(e) => {
                // A record this node cannot read is skipped, loudly, never retried
                // forever: the key keeps what the replica had.
                tracing::warn!("{e}");
                return Some(None);
            }
        }
    }
    None
}

/// A stored value: inline, or in an object of the large-value store.
enum Body {
    Inline(Bytes),
    Large { sha256: [u8; 32], object: String },
}

struct Stored {
    metadata: Option<String>,
    expires_at_ms: Option<u64>,
    body: Body,
}

/// A record in a message: a kind byte (1 inline, 2 large), the expiry (0 for none),
/// the metadata's length (`u32::MAX` for none) and bytes, then the value, or for a
/// large one its SHA-256 and its object's name.
mod payload {
    use bytes::{BufMut, Bytes, BytesMut};

    use super::{Body, Stored};

    const INLINE: u8 = 1;
    const LARGE: u8 = 2;
    const HEADER: usize = 1 + 8 + 4;

    pub(super) fn encode(
        metadata: &Option<String>,
        expires_at_ms: Option<u64>,
        body: &Body,
    ) -> Bytes {
        let meta = metadata.as_deref().unwrap_or("");
        let tail = match body {
            Body::Inline(value) => value.len(),
            Body::Large { object, .. } => 32 + object.len(),
        };
        let mut out = BytesMut::with_capacity(HEADER + meta.len() + tail);
        out.put_u8(match body {
            Body::Inline(_) => INLINE,
            Body::Large { .. } => LARGE,
        });
        out.put_u64_le(expires_at_ms.unwrap_or(0));
        out.put_u32_le(metadata.as_ref().map_or(u32::MAX, |m| m.len() as u32));
        out.put_slice(meta.as_bytes());
        match body {
            Body::Inline(value) => out.put_slice(value),
            Body::Large { sha256, object } => {
                out.put_slice(sha256);
                out.put_slice(object.as_bytes());
            }
        }
        out.freeze()
    }

    pub(super) fn decode(bytes: &Bytes) -> Option<Stored> {
        let kind = *bytes.first()?;
        let expires = u64::from_le_bytes(bytes.get(1..9)?.try_into().ok()?);
        let meta_len = u32::from_le_bytes(bytes.get(9..13)?.try_into().ok()?);
        let (metadata, rest) = if meta_len == u32::MAX {
            (None, HEADER)
        } else {
            let end = HEADER.checked_add(meta_len as usize)?;
            let text = std::str::from_utf8(bytes.get(HEADER..end)?).ok()?;
            (Some(text.to_owned()), end)
        };
        let body = match kind {
            INLINE => Body::Inline(bytes.slice(rest..)),
            LARGE => {
                let sha256 = bytes.get(rest..rest + 32)?.try_into().ok()?;
                let object = std::str::from_utf8(bytes.get(rest + 32..)?)
                    .ok()?
                    .to_owned();
                Body::Large { sha256, object }
            }
            _ => return None,
        };
        Some(Stored {
            metadata,
            expires_at_ms: (expires != 0).then_some(expires),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_any_text_name_one_subject_each() {
        for (ns, key) in [
            ("shop/links", "a//b"),
            ("shop/links", "/x.y"),
            ("a-b/c_d", "ü "),
        ] {
            let subject = subject_key(ns, key);
            assert_eq!(subject.split('.').count(), 3, "{subject}");
            assert_eq!(
                parse_subject_key(&subject),
                Some((ns.to_owned(), key.to_owned()))
            );
        }
        assert_eq!(parse_subject_key("a.b"), None);
        assert_eq!(parse_subject_key("a.b.c.d"), None);
    }

    #[test]
    fn records_round_trip_through_a_message() {
        let inline = payload::encode(
            &Some("{\"m\":1}".into()),
            Some(1_700_000_000_000),
            &Body::Inline(Bytes::from_static(b"value")),
        );
        let stored = payload::decode(&inline).unwrap();
        assert_eq!(stored.metadata.as_deref(), Some("{\"m\":1}"));
        assert_eq!(stored.expires_at_ms, Some(1_700_000_000_000));
        assert!(matches!(stored.body, Body::Inline(v) if v == "value"));
        let large = payload::encode(
            &None,
            None,
            &Body::Large {
                sha256: [7; 32],
                object: "abc".into(),
            },
        );
        let stored = payload::decode(&large).unwrap();
        assert_eq!(stored.metadata, None);
        assert!(
            matches!(stored.body, Body::Large { sha256, object } if sha256 == [7; 32] && object == "abc")
        );
        assert!(payload::decode(&Bytes::from_static(b"\x09garbage-garbage")).is_none());
        assert!(payload::decode(&Bytes::from_static(b"\x01\0\0\0\0\0\0\0\0\x10\0\0\0x")).is_none());
    }
}
