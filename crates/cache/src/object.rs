//! Stored objects and what a lookup hands back.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::freshness::Freshness;
use crate::vary::{SecondaryKey, VaryRule};

/// Bookkeeping charged per object on top of its body and headers.
const OBJECT_OVERHEAD: u64 = 256;

/// Everything stored with an object besides its body.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    /// The HTTP status (200 for objects of the programmable cache).
    pub status: StatusCode,
    /// The HTTP headers (empty for objects of the programmable cache).
    pub headers: HeaderMap,
    pub freshness: Freshness,
    /// The object's age when it was stored.
    pub initial_age: Duration,
    pub surrogate_keys: Vec<String>,
    pub vary: VaryRule,
    /// Bytes the app attached (the programmable cache's user metadata).
    pub user_metadata: Bytes,
}

impl ObjectMeta {
    /// Metadata with these freshness rules and nothing else.
    pub fn new(freshness: Freshness) -> ObjectMeta {
        ObjectMeta {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            freshness,
            initial_age: Duration::ZERO,
            surrogate_keys: Vec::new(),
            vary: VaryRule::default(),
            user_metadata: Bytes::new(),
        }
    }
}

/// Where a variant's body is.
#[derive(Debug, Clone)]
pub(crate) enum Stored {
    Memory(Arc<[Bytes]>),
    Disk(Arc<crate::disk::DiskFile>),
}

impl Stored {
    /// The body's chunks; a body on disk is read (only the disk tier's own objects
    /// have one, and they are promoted to memory before anyone reads them).
    pub(crate) fn chunks(&self) -> Arc<[Bytes]> {
        match self {
            Stored::Memory(chunks) => chunks.clone(),
            Stored::Disk(file) => match file.read() {
                Ok(bytes) => Arc::new([bytes]),
                Err(_) => Arc::new([]),
            },
        }
    }
}

/// One stored variant.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) meta: ObjectMeta,
    pub(crate) secondary: SecondaryKey,
    pub(crate) body: Stored,
    pub(crate) len: u64,
    pub(crate) stored_at: Instant,
    /// Set by a soft purge: stale from then on.
    pub(crate) soft_purged: OnceLock<Instant>,
}

impl Object {
    /// The same object with its body elsewhere; its age and soft purge carry over.
    pub(crate) fn moved_to(&self, body: Stored) -> Object {
        let soft_purged = OnceLock::new();
        if let Some(&at) = self.soft_purged.get() {
            let _ = soft_purged.set(at);
        }
        Object {
            meta: self.meta.clone(),
            secondary: self.secondary.clone(),
            body,
            len: self.len,
            stored_at: self.stored_at,
            soft_purged,
        }
    }

    /// Bytes charged against its tier's budget.
    pub(crate) fn weight(&self) -> u64 {
        if let Stored::Disk(_) = self.body {
            return self.len + OBJECT_OVERHEAD;
        }
        let headers: usize = self
            .meta
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        self.len
            + headers as u64
            + self.meta.user_metadata.len() as u64
            + self
                .meta
                .surrogate_keys
                .iter()
                .map(|k| k.len() as u64 + 24)
                .sum::<u64>()
            + OBJECT_OVERHEAD
    }

    /// When it went (or goes) stale.
    pub(crate) fn stale_at(&self) -> Instant {
        let fresh_for = self
            .meta
            .freshness
            .ttl
            .saturating_sub(self.meta.initial_age);
        let natural = self.stored_at + fresh_for;
        match self.soft_purged.get() {
            Some(&purged) => natural.min(purged),
            None => natural,
        }
    }

    /// How long it stays worth keeping: fresh, then usable stale, then as a base for
    /// a conditional revalidation when it has validators.
    pub(crate) fn keep_until(&self) -> Instant {
        let f = &self.meta.freshness;
        let mut stale_use = f.stale_while_revalidate.max(f.stale_if_error);
        let h = &self.meta.headers;
        if h.contains_key(http::header::ETAG) || h.contains_key(http::header::LAST_MODIFIED) {
            stale_use = stale_use.max(REVALIDATION_KEEP);
        }
        self.stale_at() + stale_use
    }
}

/// How long an expired object with validators is kept for a conditional refresh.
const REVALIDATION_KEEP: Duration = Duration::from_secs(600);

/// Whether a found object may be served as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    Fresh,
    /// Stale, but inside `stale-while-revalidate`: serve it and refresh in the
    /// background.
    StaleWhileRevalidate,
    /// Stale; only a failed refresh may fall back on it (inside `stale-if-error`).
    StaleIfError,
    /// Stale, and good only as a base for a conditional refresh.
    Expired,
}

/// An object a lookup found. Cheap to clone; the body is shared, never copied.
#[derive(Debug, Clone)]
pub struct Found {
    pub(crate) object: Arc<Object>,
    pub(crate) now: Instant,
}

impl Found {
    pub fn meta(&self) -> &ObjectMeta {
        &self.object.meta
    }

    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        self.object.len
    }

    pub fn is_empty(&self) -> bool {
        self.object.len == 0
    }

    /// The body, as the chunks it was stored in.
    pub fn chunks(&self) -> Arc<[Bytes]> {
        self.object.body.chunks()
    }

    /// The object's current age (its `Age` header).
    pub fn age(&self) -> Duration {
        self.meta().initial_age + self.now.saturating_duration_since(self.object.stored_at)
    }

    /// Freshness left (zero once stale).
    pub fn remaining_ttl(&self) -> Duration {
        self.object.stale_at().saturating_duration_since(self.now)
    }

    pub fn usability(&self) -> Usability {
        let stale_at = self.object.stale_at();
        if self.now < stale_at {
            return Usability::Fresh;
        }
        let f = &self.meta().freshness;
        if f.must_revalidate {
            return Usability::Expired;
        }
        let stale_for = self.now.saturating_duration_since(stale_at);
        if stale_for < f.stale_while_revalidate {
            Usability::StaleWhileRevalidate
        } else if stale_for < f.stale_if_error {
            Usability::StaleIfError
        } else {
            Usability::Expired
        }
    }

    /// Usable within `stale-if-error` (or better)?
    pub fn usable_on_error(&self) -> bool {
        let stale_at = self.object.stale_at();
        let f = &self.meta().freshness;
        self.now < stale_at
            || (!f.must_revalidate
                && self.now.saturating_duration_since(stale_at) < f.stale_if_error)
    }

    /// Whether a soft purge marked it stale.
    pub fn soft_purged(&self) -> bool {
        self.object.soft_purged.get().is_some()
    }
}
