//! The programmable edge cache: `verge:edge/cache`, Verge's counterpart of Fastly's
//! core cache. Objects live under keys the app chooses, in the app's own namespace of
//! the node's cache (the one the HTTP cache in front of the app uses too).
//!
//! ```no_run
//! use std::time::Duration;
//! use verge::cache::{self, Transaction};
//!
//! # fn expensive() -> Vec<u8> { Vec::new() }
//! # fn run() -> Result<Vec<u8>, verge::Error> {
//! // Concurrent misses of one key compute the value once: the others wait for it.
//! let tx = Transaction::lookup("report:today")?;
//! if let Some(found) = tx.found() {
//!     return Ok(found.to_bytes()?);
//! }
//! let value = expensive();
//! if tx.must_insert() {
//!     tx.insert(Duration::from_secs(60))
//!         .surrogate_keys(["reports"])
//!         .execute(value.clone())?;
//! }
//!
//! // Later, when the data changes (HTTP objects tagged `reports` go too):
//! cache::purge_surrogate_key("reports")?;
//! # Ok(value) }
//! ```
//!
//! A transaction whose handler fails, traps or drops it without inserting hands the
//! key over to one of the waiting requests; nobody is left waiting.
//!
//! Responses from backends are cached too, by their own headers (GET only, unless
//! the backend says `cache = false`); a [`CacheOverride`] on the request changes that
//! for one request:
//!
//! ```no_run
//! use std::time::Duration;
//! use verge::cache::CacheOverride;
//!
//! # fn run(req: verge::Request) -> Result<verge::Response, verge::Error> {
//! let mut req = req;
//! req.set_cache_override(
//!     &CacheOverride::ttl(Duration::from_secs(300)).surrogate_keys(["products"]),
//! );
//! req.send("origin")
//! # }
//! ```

use std::time::Duration;

use crate::edge::cache as wit;
use crate::{HeaderMap, HeaderName, IncomingBody};

/// Why a cache call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// A key, surrogate key, header or option breaks a rule; the text says which.
    Invalid(String),
    /// The object is larger than the node's object limit (in bytes).
    TooLarge(u64),
}

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheError::Invalid(text) => f.write_str(text),
            CacheError::TooLarge(limit) => write!(
                f,
                "the object is larger than the cache's object limit of {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for CacheError {}

impl From<wit::Error> for CacheError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Invalid(t) => CacheError::Invalid(t),
            wit::Error::TooLarge(limit) => CacheError::TooLarge(limit),
        }
    }
}

fn header_list(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// A cached object.
pub struct Found {
    inner: wit::Entry,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("len", &self.len())
            .field("stale", &self.is_stale())
            .finish()
    }
}

impl Found {
    /// Stale, but still usable within its stale-while-revalidate window.
    pub fn is_stale(&self) -> bool {
        self.inner.state() == wit::ObjectState::Stale
    }

    /// How long it has been cached.
    pub fn age(&self) -> Duration {
        Duration::from_millis(self.inner.age_ms())
    }

    /// Freshness left (zero once stale).
    pub fn remaining_ttl(&self) -> Duration {
        Duration::from_millis(self.inner.remaining_ttl_ms())
    }

    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        self.inner.length()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes stored with it by [`Insert::user_metadata`].
    pub fn user_metadata(&self) -> Vec<u8> {
        self.inner.user_metadata()
    }

    pub fn surrogate_keys(&self) -> Vec<String> {
        self.inner.surrogate_keys()
    }

    /// The body as a stream: pass it to a [`crate::Response`] and it goes out from
    /// the cache without passing through guest memory.
    pub fn body(&self) -> IncomingBody {
        IncomingBody::from_stream(self.inner.body())
    }

    /// The whole body, read into memory.
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        self.body().into_bytes()
    }
}

/// The usable object under `key` (fresh, or stale within stale-while-revalidate).
pub fn lookup(key: impl AsRef<[u8]>) -> Result<Option<Found>, CacheError> {
    lookup_varied(key, &HeaderMap::new())
}

/// Like [`lookup`], for objects inserted with [`Insert::vary_by`]: `headers` (a
/// request's) select the variant.
pub fn lookup_varied(
    key: impl AsRef<[u8]>,
    headers: &HeaderMap,
) -> Result<Option<Found>, CacheError> {
    Ok(wit::lookup(key.as_ref(), &header_list(headers))?.map(|inner| Found { inner }))
}

/// An insert, fresh for `ttl`: set options, then [`Insert::execute`].
pub fn insert(key: impl AsRef<[u8]>, ttl: Duration) -> Insert<'static> {
    Insert {
        target: Target::Key(key.as_ref().to_vec()),
        headers: HeaderMap::new(),
        options: options(ttl),
    }
}

fn options(ttl: Duration) -> wit::WriteOptions {
    wit::WriteOptions {
        ttl_ms: ttl.as_millis() as u64,
        stale_while_revalidate_ms: 0,
        surrogate_keys: Vec::new(),
        vary_by: Vec::new(),
        user_metadata: Vec::new(),
        known_length: None,
    }
}

/// Purges the app's objects carrying `key`, HTTP objects included; how many.
pub fn purge_surrogate_key(key: &str) -> Result<u64, CacheError> {
    Ok(wit::purge_surrogate_key(key, false)?)
}

/// Marks the app's objects carrying `key` stale (served within their
/// stale-while-revalidate window while refreshed); how many.
pub fn soft_purge_surrogate_key(key: &str) -> Result<u64, CacheError> {
    Ok(wit::purge_surrogate_key(key, true)?)
}

/// Purges every variant under `key`; how many.
pub fn purge(key: impl AsRef<[u8]>) -> Result<u64, CacheError> {
    Ok(wit::purge(key.as_ref(), false)?)
}

enum Target<'a> {
    Key(Vec<u8>),
    Transaction(&'a wit::Transaction),
}

/// An object about to be stored.
pub struct Insert<'a> {
    target: Target<'a>,
    headers: HeaderMap,
    options: wit::WriteOptions,
}

impl Insert<'_> {
    /// Serve it stale for this long after its TTL while one request refreshes it.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.options.stale_while_revalidate_ms = window.as_millis() as u64;
        self
    }

    /// Keys to purge it by ([`purge_surrogate_key`], `verge purge --key`, the admin
    /// API).
    pub fn surrogate_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options
            .surrogate_keys
            .extend(keys.into_iter().map(Into::into));
        self
    }

    /// Make this a variant chosen by these request headers, whose values come from
    /// [`Insert::headers`] (and, at lookup, from [`lookup_varied`]'s headers).
    pub fn vary_by<I: IntoIterator<Item = HeaderName>>(mut self, names: I) -> Self {
        self.options
            .vary_by
            .extend(names.into_iter().map(|n| n.as_str().to_owned()));
        self
    }

    /// The request headers this variant was made for.
    pub fn headers(mut self, headers: &HeaderMap) -> Self {
        self.headers = headers.clone();
        self
    }

    /// Bytes kept with the object ([`Found::user_metadata`]).
    pub fn user_metadata(mut self, metadata: impl Into<Vec<u8>>) -> Self {
        self.options.user_metadata = metadata.into();
        self
    }

    /// The body's length, when known: too large fails before anything is sent.
    pub fn known_length(mut self, len: u64) -> Self {
        self.options.known_length = Some(len);
        self
    }

    /// Stores `body`: bytes, a reader, or a stream (an origin response's body is
    /// moved into the cache inside the host).
    pub fn execute(self, body: impl Into<crate::Body>) -> Result<(), CacheError> {
        let writer = match self.target {
            Target::Key(key) => wit::insert(&key, &header_list(&self.headers), &self.options)?,
            Target::Transaction(tx) => tx.insert(&self.options)?,
        };
        let mut stream = writer.body()?;
        let written = body.into().write_into(&mut stream);
        drop(stream);
        let finished = wit::Writer::finish(writer);
        if let Err(e) = written {
            // A body over the limit fails its write; `finish` says why.
            finished?;
            return Err(CacheError::Invalid(e.to_string()));
        }
        Ok(finished?)
    }
}

/// A lookup that collapses concurrent misses of one key: one request gets
/// [`Transaction::must_insert`], the others wait for its object.
pub struct Transaction {
    inner: wit::Transaction,
    found: Option<Found>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("found", &self.found)
            .field("must_insert", &self.must_insert())
            .finish()
    }
}

impl Transaction {
    /// Looks `key` up, waiting while another request is fetching it.
    pub fn lookup(key: impl AsRef<[u8]>) -> Result<Transaction, CacheError> {
        Self::lookup_varied(key, &HeaderMap::new())
    }

    /// Like [`Transaction::lookup`], with request headers selecting the variant.
    pub fn lookup_varied(
        key: impl AsRef<[u8]>,
        headers: &HeaderMap,
    ) -> Result<Transaction, CacheError> {
        let inner = wit::Transaction::lookup(key.as_ref(), &header_list(headers))?;
        let found = inner.found().map(|inner| Found { inner });
        Ok(Transaction { inner, found })
    }

    /// The object: fresh, or stale within stale-while-revalidate (then
    /// [`Transaction::must_insert`] may ask this request to refresh it).
    pub fn found(&self) -> Option<&Found> {
        self.found.as_ref()
    }

    /// Whether this request must insert (or [`Transaction::update`]) the object, or
    /// [`Transaction::cancel`].
    pub fn must_insert(&self) -> bool {
        self.inner.must_insert()
    }

    /// Inserts the object, fresh for `ttl`; waiters get it once it is stored.
    pub fn insert(&self, ttl: Duration) -> Insert<'_> {
        Insert {
            target: Target::Transaction(&self.inner),
            headers: HeaderMap::new(),
            options: options(ttl),
        }
    }

    /// The found object is still good: keep its body, fresh for `ttl` again.
    pub fn update(&self, ttl: Duration) -> Result<(), CacheError> {
        Ok(self.inner.update(&options(ttl))?)
    }

    /// Gives the obligation up: a waiting request takes over.
    pub fn cancel(self) {
        self.inner.cancel();
    }
}

/// How one backend request's response is cached, whatever its headers say (Fastly's
/// `set_cache_override`). Set it with [`crate::Request::set_cache_override`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheOverride {
    pass: bool,
    ttl: Option<Duration>,
    stale_while_revalidate: Option<Duration>,
    surrogate_keys: Option<Vec<String>>,
}

impl CacheOverride {
    /// Neither look the request up nor store its response.
    pub fn pass() -> CacheOverride {
        CacheOverride {
            pass: true,
            ..CacheOverride::default()
        }
    }

    /// Store the response (if its status is storable) fresh for `ttl`.
    pub fn ttl(ttl: Duration) -> CacheOverride {
        CacheOverride {
            ttl: Some(ttl),
            ..CacheOverride::default()
        }
    }

    /// Serve it stale this long after its TTL while one request refreshes it.
    pub fn stale_while_revalidate(mut self, window: Duration) -> CacheOverride {
        self.stale_while_revalidate = Some(window);
        self
    }

    /// Tag it with these surrogate keys instead of the response's `Surrogate-Key`.
    pub fn surrogate_keys<I, S>(mut self, keys: I) -> CacheOverride
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.surrogate_keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    /// The `Verge-Cache-Override` header value Verge reads (and removes) on the way
    /// to the backend.
    pub fn header_value(&self) -> String {
        let mut parts = Vec::new();
        if self.pass {
            parts.push("pass".to_string());
        }
        if let Some(ttl) = self.ttl {
            parts.push(format!("ttl={}", ttl.as_secs()));
        }
        if let Some(swr) = self.stale_while_revalidate {
            parts.push(format!("stale-while-revalidate={}", swr.as_secs()));
        }
        if let Some(keys) = &self.surrogate_keys {
            parts.push(format!("surrogate-key=\"{}\"", keys.join(" ")));
        }
        parts.join(", ")
    }
}

/// The request header carrying a [`CacheOverride`].
pub const CACHE_OVERRIDE_HEADER: &str = "verge-cache-override";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_become_the_header_verge_reads() {
        assert_eq!(CacheOverride::pass().header_value(), "pass");
        let o = CacheOverride::ttl(Duration::from_secs(60))
            .stale_while_revalidate(Duration::from_secs(5))
            .surrogate_keys(["a", "b"]);
        assert_eq!(
            o.header_value(),
            "ttl=60, stale-while-revalidate=5, surrogate-key=\"a b\""
        );
    }
}
