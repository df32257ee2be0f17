//! The storage primitives a KV backend provides. They are deliberately few and dumb;
//! every rule about what a write may do lives in [`crate::Kv`], once.

use bytes::Bytes;

/// One stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: Bytes,
    /// Free-form text the app stores beside the value.
    pub metadata: Option<String>,
    /// Unique within a backend and increasing with every write: what compare-and-swap
    /// compares. Assigned by the backend.
    pub generation: u64,
    /// When the item expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
}

impl Record {
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// What an [`Backend::update`] decides to do with a key.
#[derive(Debug, Clone)]
pub enum Change {
    /// Leave it as it is.
    Keep,
    /// Store this (the backend assigns the generation).
    Put {
        value: Bytes,
        metadata: Option<String>,
        expires_at_ms: Option<u64>,
    },
    /// Remove it.
    Delete,
}

/// A storage failure, by what the caller can do about it. Carries no stored data.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The storage cannot be reached now (a server down, a cut link): retry later, or
    /// report "not ready", rather than treat the data as lost.
    #[error("the storage is unavailable: {0}")]
    Unavailable(String),
    /// A conditional write lost to a concurrent writer: re-read, then decide again.
    #[error("a concurrent write won: {0}")]
    Conflict(String),
    /// Anything else: I/O, a full disk, a corrupt file.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl BackendError {
    /// An [`BackendError::Other`] from any error or message.
    pub fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Other(e.into())
    }
}

/// The calls the [`crate::Kv`] makes on its storage. Every call is synchronous and may
/// block on I/O; callers on an async runtime run writes on a blocking thread.
pub trait Backend: Send + Sync + 'static {
    /// The record under `key`, expired or not.
    fn get(&self, ns: &str, key: &str) -> Result<Option<Record>, BackendError>;

    /// Atomically reads `key`, lets `decide` choose a [`Change`] from what is stored
    /// (expired or not), and applies it. An error from `decide` aborts with nothing
    /// written. Returns the record now stored (`None` if there is none).
    fn update(
        &self,
        ns: &str,
        key: &str,
        decide: &mut dyn FnMut(Option<&Record>) -> Result<Change, crate::KvError>,
    ) -> Result<Option<Record>, crate::KvError>;

    /// Up to `limit` keys starting with `prefix` and sorting after `after`, in order,
    /// with their records (expired ones included; the caller filters).
    fn scan(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>, BackendError>;

    /// Removes up to `max` items that expired at or before `now_ms`; returns how many.
    fn purge_expired(&self, now_ms: u64, max: usize) -> Result<usize, BackendError>;
}

/// Where a scan for keys starting with `prefix` after `after` begins.
pub(crate) fn scan_start<'a>(prefix: &'a str, after: Option<&'a str>) -> std::ops::Bound<&'a str> {
    match after {
        Some(after) if after >= prefix => std::ops::Bound::Excluded(after),
        _ => std::ops::Bound::Included(prefix),
    }
}

/// The stored form of a record: a version byte, the generation, the expiry (0 for
/// none), the metadata's length (`u32::MAX` for none) and bytes, then the value.
pub(crate) mod codec {
    use bytes::Bytes;

    use super::{BackendError, Record};

    const VERSION: u8 = 1;
    const HEADER: usize = 1 + 8 + 8 + 4;

    /// The length of `record` encoded.
    pub(crate) fn encoded_len(record: &Record) -> usize {
        HEADER + record.metadata.as_ref().map_or(0, String::len) + record.value.len()
    }

    /// Encodes `record` into `out`, which is exactly [`encoded_len`] long: storage
    /// reserves the space and the value is copied once, straight into it.
    pub(crate) fn encode_into(record: &Record, out: &mut [u8]) {
        out[0] = VERSION;
        out[1..9].copy_from_slice(&record.generation.to_le_bytes());
        out[9..17].copy_from_slice(&record.expires_at_ms.unwrap_or(0).to_le_bytes());
        let value_at = match &record.metadata {
            Some(m) => {
                out[17..21].copy_from_slice(&(m.len() as u32).to_le_bytes());
                out[HEADER..HEADER + m.len()].copy_from_slice(m.as_bytes());
                HEADER + m.len()
            }
            None => {
                out[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
                HEADER
            }
        };
        out[value_at..].copy_from_slice(&record.value);
    }

    #[cfg(test)]
    pub(crate) fn encode(record: &Record) -> Vec<u8> {
        let mut out = vec![0; encoded_len(record)];
        encode_into(record, &mut out);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Record, BackendError> {
        let corrupt = || BackendError::other("a stored record is corrupt");
        if bytes.len() < HEADER || bytes[0] != VERSION {
            return Err(corrupt());
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let generation = u64_at(1);
        let expires = u64_at(9);
        let meta_len = u32::from_le_bytes(bytes[17..21].try_into().unwrap());
        let (metadata, rest) = if meta_len == u32::MAX {
            (None, &bytes[HEADER..])
        } else {
            let end = HEADER
                .checked_add(meta_len as usize)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(corrupt)?;
            let text = std::str::from_utf8(&bytes[HEADER..end]).map_err(|_| corrupt())?;
            (Some(text.to_owned()), &bytes[end..])
        };
        Ok(Record {
            value: Bytes::copy_from_slice(rest),
            metadata,
            generation,
            expires_at_ms: (expires != 0).then_some(expires),
        })
    }

    /// Only the expiry, without copying the value.
    pub(crate) fn expires_at(bytes: &[u8]) -> Option<u64> {
        let at = u64::from_le_bytes(bytes.get(9..17)?.try_into().ok()?);
        (at != 0).then_some(at)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips() {
            for record in [
                Record {
                    value: Bytes::from_static(b"v"),
                    metadata: None,
                    generation: 7,
                    expires_at_ms: None,
                },
                Record {
                    value: Bytes::new(),
                    metadata: Some("{\"a\":1}".into()),
                    generation: u64::MAX,
                    expires_at_ms: Some(1_700_000_000_000),
                },
            ] {
                let encoded = encode(&record);
                assert_eq!(decode(&encoded).unwrap(), record);
                assert_eq!(expires_at(&encoded), record.expires_at_ms);
            }
            assert!(decode(b"\x02garbage-garbage-garbage").is_err());
            let mut bad = encode(&Record {
                value: Bytes::new(),
                metadata: Some("x".into()),
                generation: 1,
                expires_at_ms: None,
            });
            bad[17] = 200;
            assert!(decode(&bad).is_err(), "metadata length past the end");
        }
    }
}
