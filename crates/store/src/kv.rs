//! The KV store's rules, over any [`Backend`]: limits, insert modes, compare-and-swap,
//! TTL, listing, counters.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::backend::{Backend, BackendError, Change, Record};

/// An item as a reader sees it.
pub type Entry = Record;

/// Size limits of one store. Defaults: keys 1 KiB, values 25 MiB, metadata 2 KiB
/// (Fastly's KV store limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_metadata_bytes: usize,
}

impl KvLimits {
    pub const DEFAULT: KvLimits = KvLimits {
        max_key_bytes: 1024,
        max_value_bytes: 25 << 20,
        max_metadata_bytes: 2048,
    };
}

impl Default for KvLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One store of one app: the unit of isolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    id: Arc<str>,
    pub limits: KvLimits,
}

impl Namespace {
    /// The store `store` of app `app`. Names are validated by the manifest; `/`
    /// cannot occur in an app name, so two pairs never collide.
    pub fn new(app: &str, store: &str, limits: KvLimits) -> Namespace {
        Namespace {
            id: format!("{app}/{store}").into(),
            limits,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// How an insert treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsertMode {
    /// Replace it.
    #[default]
    Overwrite,
    /// Only insert when there is no (live) item; otherwise [`KvError::Exists`].
    Add,
    /// Add the value after the existing one (or insert it).
    Append,
    /// Add the value before the existing one (or insert it).
    Prepend,
}

/// How to insert.
#[derive(Debug, Clone, Default)]
pub struct InsertOptions {
    pub mode: InsertMode,
    /// The item expires this long after the write. `None`: never, or, when
    /// appending or prepending, whatever the existing item had.
    pub ttl: Option<Duration>,
    /// `None`: no metadata, or, when appending or prepending, the existing item's.
    pub metadata: Option<String>,
    /// Write only if the live item's generation is this one (compare-and-swap).
    pub if_generation: Option<u64>,
}

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    /// Pass back to get the next page; `None` when this was the last.
    pub cursor: Option<String>,
}

/// Why a KV call failed. Messages name the limit or rule that refused it and never
/// contain stored data.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("the key is empty")]
    EmptyKey,
    #[error("the key is {len} bytes; keys are limited to {limit} bytes")]
    KeyTooLong { len: usize, limit: usize },
    #[error(
        "the key contains a control character (at byte {at}); keys are UTF-8 text without control characters"
    )]
    KeyControlCharacter { at: usize },
    #[error("the value is {len} bytes; values are limited to {limit} bytes")]
    ValueTooLarge { len: usize, limit: usize },
    #[error("the metadata is {len} bytes; metadata is limited to {limit} bytes")]
    MetadataTooLarge { len: usize, limit: usize },
    #[error(
        "compare-and-swap failed: expected generation {expected}, the item is {}",
        match .found { Some(g) => format!("at generation {g}"), None => "absent".into() }
    )]
    GenerationMismatch { expected: u64, found: Option<u64> },
    #[error("the key already exists (insert mode `add`)")]
    Exists,
    #[error("the stored value is not a decimal 64-bit integer, so it cannot be incremented")]
    NotANumber,
    #[error("incrementing overflows a 64-bit integer")]
    Overflow,
    #[error("list limit must be between 1 and {max}")]
    BadListLimit { max: usize },
    #[error("storage failed: {0}")]
    Storage(#[from] BackendError),
}

/// Most keys one list call returns.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Checks a key against the rules every store shares: non-empty, at most `limit`
/// bytes, no control characters.
pub fn check_key(key: &str, limit: usize) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if key.len() > limit {
        return Err(KvError::KeyTooLong {
            len: key.len(),
            limit,
        });
    }
    if let Some((at, _)) = key.char_indices().find(|(_, c)| c.is_control()) {
        return Err(KvError::KeyControlCharacter { at });
    }
    Ok(())
}

/// A KV store service over one backend. Cheap to clone.
#[derive(Clone)]
pub struct Kv {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv").finish_non_exhaustive()
    }
}

impl Kv {
    pub fn new(backend: Arc<dyn Backend>) -> Kv {
        Kv { backend }
    }

    /// The live item under `key`.
    pub fn lookup(&self, ns: &Namespace, key: &str) -> Result<Option<Entry>, KvError> {
        check_key(key, ns.limits.max_key_bytes)?;
        let now = crate::now_ms();
        Ok(self
            .backend
            .get(ns.id(), key)?
            .filter(|r| !r.is_expired(now)))
    }

    /// Writes `value` under `key` as `options` say; returns the new generation.
    pub fn insert(
        &self,
        ns: &Namespace,
        key: &str,
        value: Bytes,
        options: InsertOptions,
    ) -> Result<u64, KvError> {
        let limits = &ns.limits;
        check_key(key, limits.max_key_bytes)?;
        check_value(value.len(), limits)?;
        if let Some(m) = &options.metadata
            && m.len() > limits.max_metadata_bytes
        {
            return Err(KvError::MetadataTooLarge {
                len: m.len(),
                limit: limits.max_metadata_bytes,
            });
        }
        let now = crate::now_ms();
        let new_expiry = options
            .ttl
            .map(|ttl| now.saturating_add(ttl.as_millis().max(1) as u64));
        let stored = self.backend.update(ns.id(), key, &mut |current| {
            let live = current.filter(|r| !r.is_expired(now));
            if let Some(expected) = options.if_generation
                && live.map(|r| r.generation) != Some(expected)
            {
                return Err(KvError::GenerationMismatch {
                    expected,
                    found: live.map(|r| r.generation),
                });
            }
            let joined = |old: &Record, prepend: bool| -> Result<Change, KvError> {
                check_value(old.value.len() + value.len(), limits)?;
                let mut joined = BytesMut::with_capacity(old.value.len() + value.len());
                let (first, second) = if prepend {
                    (&value, &old.value)
                } else {
                    (&old.value, &value)
                };
                joined.extend_from_slice(first);
                joined.extend_from_slice(second);
                Ok(Change::Put {
                    value: joined.freeze(),
                    metadata: options.metadata.clone().or_else(|| old.metadata.clone()),
                    expires_at_ms: new_expiry.or(old.expires_at_ms),
                })
            };
            let fresh = || Change::Put {
                value: value.clone(),
                metadata: options.metadata.clone(),
                expires_at_ms: new_expiry,
            };
            match (options.mode, live) {
                (InsertMode::Add, Some(_)) => Err(KvError::Exists),
                (InsertMode::Append, Some(old)) => joined(old, false),
                (InsertMode::Prepend, Some(old)) => joined(old, true),
                _ => Ok(fresh()),
            }
        })?;
        Ok(stored.map_or(0, |r| r.generation))
    }

    /// Removes `key`; whether a live item was there.
    pub fn delete(&self, ns: &Namespace, key: &str) -> Result<bool, KvError> {
        check_key(key, ns.limits.max_key_bytes)?;
        let now = crate::now_ms();
        let mut existed = false;
        self.backend.update(ns.id(), key, &mut |current| {
            existed = current.is_some_and(|r| !r.is_expired(now));
            Ok(if current.is_some() {
                Change::Delete
            } else {
                Change::Keep
            })
        })?;
        Ok(existed)
    }

    /// Adds `delta` to the decimal integer stored under `key` (absent counts as 0) and
    /// returns the sum. Keeps the item's metadata and expiry.
    pub fn increment(&self, ns: &Namespace, key: &str, delta: i64) -> Result<i64, KvError> {
        check_key(key, ns.limits.max_key_bytes)?;
        let now = crate::now_ms();
        let mut sum = 0;
        self.backend.update(ns.id(), key, &mut |current| {
            let live = current.filter(|r| !r.is_expired(now));
            let old = match live {
                None => 0,
                Some(r) => std::str::from_utf8(&r.value)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or(KvError::NotANumber)?,
            };
            sum = old.checked_add(delta).ok_or(KvError::Overflow)?;
            Ok(Change::Put {
                value: Bytes::from(sum.to_string()),
                metadata: live.and_then(|r| r.metadata.clone()),
                expires_at_ms: live.and_then(|r| r.expires_at_ms),
            })
        })?;
        Ok(sum)
    }

    /// Up to `limit` live keys starting with `prefix`, in byte order, after `cursor`.
    ///
    /// The cursor is the last key of the previous page, so pagination is stable while
    /// keys change: every key present for the whole walk is listed exactly once.
    pub fn list(
        &self,
        ns: &Namespace,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, KvError> {
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(KvError::BadListLimit {
                max: MAX_LIST_LIMIT,
            });
        }
        let now = crate::now_ms();
        let mut keys = Vec::with_capacity(limit.min(64));
        let mut after = cursor.map(str::to_owned);
        loop {
            // One more than needed tells whether another page exists.
            let want = limit + 1 - keys.len();
            let batch = self.backend.scan(ns.id(), prefix, after.as_deref(), want)?;
            let exhausted = batch.len() < want;
            after = batch.last().map(|(k, _)| k.clone()).or(after);
            keys.extend(
                batch
                    .into_iter()
                    .filter(|(_, r)| !r.is_expired(now))
                    .map(|(k, _)| k),
            );
            if keys.len() > limit {
                keys.truncate(limit);
                let cursor = keys.last().cloned();
                return Ok(ListPage { keys, cursor });
            }
            if exhausted {
                return Ok(ListPage { keys, cursor: None });
            }
        }
    }

    /// Removes items that have expired; returns how many. Readers never see expired
    /// items either way; this reclaims their space.
    pub fn purge_expired(&self, max: usize) -> Result<usize, KvError> {
        Ok(self.backend.purge_expired(crate::now_ms(), max)?)
    }

    /// Purges expired items every `every` on a background thread, for as long as the
    /// backend lives (any clone of this `Kv` keeps it).
    pub fn spawn_purger(&self, every: Duration) -> std::io::Result<()> {
        let backend = Arc::downgrade(&self.backend);
        std::thread::Builder::new()
            .name("verge-kv-purge".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(backend) = backend.upgrade() else {
                        return;
                    };
                    // In bounded batches, so a huge backlog never holds the writer long.
                    loop {
                        match backend.purge_expired(crate::now_ms(), 1000) {
                            Ok(1000) => continue,
                            Ok(_) => break,
                            Err(e) => {
                                tracing::warn!("purging expired KV items: {e}");
                                break;
                            }
                        }
                    }
                }
            })
            .map(|_| ())
    }
}

fn check_value(len: usize, limits: &KvLimits) -> Result<(), KvError> {
    if len > limits.max_value_bytes {
        return Err(KvError::ValueTooLarge {
            len,
            limit: limits.max_value_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
