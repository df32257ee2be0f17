//! KV stores: `verge:edge/kv`, the stores the app declares in `verge.toml`.
//!
//! ```no_run
//! use std::time::Duration;
//! use verge::kv::{InsertMode, Store};
//!
//! # fn run() -> Result<(), verge::kv::KvError> {
//! let links = Store::open("links")?;
//! links.insert("home", "https://example.com/")?;
//! if let Some(entry) = links.lookup("home")? {
//!     assert_eq!(entry.text(), Some("https://example.com/"));
//! }
//!
//! // Options: a TTL, metadata, add-only (fails with KvError::Exists if present).
//! links
//!     .build_insert("session:42")
//!     .ttl(Duration::from_secs(3600))
//!     .metadata(r#"{"user":"ana"}"#)
//!     .mode(InsertMode::Add)
//!     .execute(b"...")?;
//!
//! // Compare-and-swap: write only if nobody wrote since we read.
//! let entry = links.lookup("home")?.expect("present");
//! match links.build_insert("home").if_generation(entry.generation).execute("https://example.org/") {
//!     Ok(_) | Err(verge::kv::KvError::GenerationMismatch { .. }) => {}
//!     Err(e) => return Err(e),
//! }
//!
//! let hits = Store::open("counters")?.increment("hits", 1)?;
//! for key in links.keys("user:") {
//!     let key = key?;
//! #   let _ = key;
//! }
//! # let _ = hits;
//! # Ok(()) }
//! ```
//!
//! Writes are durable when they return. Keys are 1–1024 bytes of UTF-8 without
//! control characters; values up to 25 MiB; metadata up to 2 KiB (per-store limits
//! in `verge.toml` may differ). The same stores are reachable through the standard
//! `wasi:keyvalue` interfaces.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::edge::kv as wit;

/// Why a KV call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The app declares no store of that name (the text lists those it declares).
    NoSuchStore(String),
    /// A key, value, metadata or argument breaks a rule or limit; the text says which.
    Invalid(String),
    /// [`InsertMode::Add`] and the key exists.
    Exists,
    /// The generation given to [`Insert::if_generation`] did not match; `found` is the
    /// item's generation now (`None`: absent).
    GenerationMismatch { found: Option<u64> },
    /// [`Store::increment`] on a value that is not a decimal integer, or overflow.
    NotANumber(String),
    /// The storage failed; nothing was written.
    Storage(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NoSuchStore(text)
            | KvError::Invalid(text)
            | KvError::NotANumber(text)
            | KvError::Storage(text) => f.write_str(text),
            KvError::Exists => f.write_str("the key already exists"),
            KvError::GenerationMismatch { found: Some(g) } => {
                write!(f, "the item changed (it is at generation {g})")
            }
            KvError::GenerationMismatch { found: None } => f.write_str("the item is gone"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<wit::Error> for KvError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::NoSuchStore(t) => KvError::NoSuchStore(t),
            wit::Error::Invalid(t) => KvError::Invalid(t),
            wit::Error::Exists => KvError::Exists,
            wit::Error::GenerationMismatch(found) => KvError::GenerationMismatch { found },
            wit::Error::NotANumber(t) => KvError::NotANumber(t),
            wit::Error::Storage(t) => KvError::Storage(t),
        }
    }
}

/// How an insert treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsertMode {
    /// Replace it.
    #[default]
    Overwrite,
    /// Insert only if absent; else [`KvError::Exists`].
    Add,
    /// Add the value after the existing one.
    Append,
    /// Add the value before the existing one.
    Prepend,
}

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    pub metadata: Option<String>,
    /// Changes with every write; pass it to [`Insert::if_generation`].
    pub generation: u64,
    pub expires_at: Option<SystemTime>,
}

impl Entry {
    /// The value as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// An item read with [`Store::lookup_stream`]: its details, and its value as a body
/// that is passed on inside the host (or read in pieces) rather than held whole.
#[derive(Debug)]
pub struct StreamedEntry {
    pub metadata: Option<String>,
    pub generation: u64,
    pub expires_at: Option<SystemTime>,
    /// The value's length in bytes.
    pub len: u64,
    pub body: crate::IncomingBody,
}

/// One page of [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub keys: Vec<String>,
    /// Pass to the next [`Store::list`]; `None` after the last page.
    pub cursor: Option<String>,
}

/// An open KV store.
#[derive(Debug)]
pub struct Store {
    inner: wit::Store,
}

impl Store {
    /// Opens a store declared in `verge.toml` (`[kv_stores.NAME]`).
    pub fn open(name: &str) -> Result<Store, KvError> {
        Ok(Store {
            inner: wit::Store::open(name)?,
        })
    }

    /// The item under `key`; `None` when absent or expired.
    pub fn lookup(&self, key: &str) -> Result<Option<Entry>, KvError> {
        Ok(self.inner.lookup(key)?.map(|e| Entry {
            value: e.value,
            metadata: e.metadata,
            generation: e.generation,
            expires_at: e
                .expires_at_ms
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        }))
    }

    /// The item under `key` with its value as a stream: pass `body` to a response
    /// and a value of any size goes out without sitting in guest memory.
    ///
    /// ```no_run
    /// # fn run() -> Result<verge::Response, verge::Error> {
    /// let assets = verge::kv::Store::open("assets")?;
    /// Ok(match assets.lookup_stream("logo.png")? {
    ///     Some(entry) => verge::Response::from_body(entry.body)
    ///         .with_header("content-length", entry.len.to_string())
    ///         .with_header("content-type", "image/png"),
    ///     None => verge::Response::from_status(404),
    /// })
    /// # }
    /// ```
    pub fn lookup_stream(&self, key: &str) -> Result<Option<StreamedEntry>, KvError> {
        Ok(self
            .inner
            .lookup_stream(key)?
            .map(|(info, stream)| StreamedEntry {
                metadata: info.metadata,
                generation: info.generation,
                expires_at: info
                    .expires_at_ms
                    .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
                len: info.length,
                body: crate::IncomingBody::from_stream(stream),
            }))
    }

    /// Writes `value` under `key`, replacing any item; returns its generation.
    pub fn insert(&self, key: &str, value: impl AsRef<[u8]>) -> Result<u64, KvError> {
        self.build_insert(key).execute(value)
    }

    /// An insert with options: TTL, metadata, mode, compare-and-swap.
    pub fn build_insert<'a>(&'a self, key: &'a str) -> Insert<'a> {
        Insert {
            store: self,
            key,
            options: wit::InsertOptions {
                mode: wit::InsertMode::Overwrite,
                ttl_ms: None,
                metadata: None,
                if_generation: None,
            },
        }
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.inner.delete(key)?)
    }

    /// Adds `delta` to the decimal integer under `key` (absent counts as 0); returns
    /// the sum.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        Ok(self.inner.increment(key, delta)?)
    }

    /// Up to `limit` (1–1000) keys starting with `prefix`, in byte order, after
    /// `cursor` (the previous page's).
    pub fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page, KvError> {
        let page = self.inner.list(prefix, cursor, limit)?;
        Ok(Page {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    /// Every key starting with `prefix`, fetched a page at a time.
    pub fn keys<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = Result<String, KvError>> + 'a {
        let mut page: std::vec::IntoIter<String> = Vec::new().into_iter();
        let mut cursor: Option<String> = None;
        let mut done = false;
        std::iter::from_fn(move || loop {
            if let Some(key) = page.next() {
                return Some(Ok(key));
            }
            if done {
                return None;
            }
            match self.list(prefix, cursor.as_deref(), 1000) {
                Ok(next) => {
                    done = next.cursor.is_none();
                    cursor = next.cursor;
                    page = next.keys.into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        })
    }
}

/// An insert being built by [`Store::build_insert`].
#[derive(Debug)]
#[must_use = "an insert does nothing until `execute`"]
pub struct Insert<'a> {
    store: &'a Store,
    key: &'a str,
    options: wit::InsertOptions,
}

impl Insert<'_> {
    pub fn mode(mut self, mode: InsertMode) -> Self {
        self.options.mode = match mode {
            InsertMode::Overwrite => wit::InsertMode::Overwrite,
            InsertMode::Add => wit::InsertMode::Add,
            InsertMode::Append => wit::InsertMode::Append,
            InsertMode::Prepend => wit::InsertMode::Prepend,
        };
        self
    }

    /// Expire this long after the write (millisecond precision).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl_ms = Some(ttl.as_millis().max(1) as u64);
        self
    }

    /// Text stored beside the value (up to 2 KiB).
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.options.metadata = Some(metadata.into());
        self
    }

    /// Write only if the item is at `generation` (from [`Entry::generation`]).
    pub fn if_generation(mut self, generation: u64) -> Self {
        self.options.if_generation = Some(generation);
        self
    }

    /// Writes a body as the value (a request body, an origin's response, a reader):
    /// an incoming body is moved into the store inside the host, so a large upload
    /// never sits in guest memory. Returns the item's new generation.
    ///
    /// ```no_run
    /// # fn handler(req: verge::Request) -> Result<verge::Response, verge::Error> {
    /// let uploads = verge::kv::Store::open("uploads")?;
    /// let generation = uploads.build_insert("report.pdf").execute_body(req.into_body())?;
    /// # let _ = generation;
    /// # Ok(verge::Response::new()) }
    /// ```
    pub fn execute_body(self, body: impl Into<crate::Body>) -> Result<u64, KvError> {
        let writer = self.store.inner.insert_stream(self.key, &self.options)?;
        let mut stream = writer.body()?;
        let written = body.into().write_into(&mut stream);
        drop(stream);
        if let Err(e) = written {
            return Err(KvError::Invalid(e.to_string()));
        }
        Ok(wit::Writer::finish(writer)?)
    }

    /// Writes; returns the item's new generation.
    pub fn execute(self, value: impl AsRef<[u8]>) -> Result<u64, KvError> {
        Ok(self
            .store
            .inner
            .insert(self.key, value.as_ref(), &self.options)?)
    }
}
