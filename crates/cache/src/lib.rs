//! Verge's edge cache engine. Plain Rust, no Wasm: the server puts it in front of the
//! runtime (HTTP responses), the runtime uses it for origin fetches and exposes it to
//! guests (`verge:edge/cache`).
//!
//! - [`Key`]: an app's namespace plus the bytes naming an object; apps never share.
//! - [`freshness`]: whether an HTTP response may be stored and for how long
//!   (`Cache-Control`, `Surrogate-Control`, `Expires`, heuristics, RFC 5861 stale
//!   extensions), with an app's defaults and a guest's overrides.
//! - [`VaryRule`]: variants of one key, chosen by normalised request headers.
//! - [`Cache`]: lookups; [`Cache::transaction`] collapses concurrent misses into one
//!   fetch whose [`Fill`] must insert or abandon; streamed [`Writer`]s; purges by key,
//!   surrogate key or namespace, hard or soft.
//! - [`purge`]: purges as values ([`Purge`], serializable, raw keys included) and the
//!   seam a fleet attaches to: local purges go to a [`PurgeSink`], remote ones are
//!   applied without echo, with a sequence to resume from.
//! - [`serving`]: conditional requests, byte ranges, revalidation, `304` merges.
//! - [`through`]: the HTTP flow over a fetch (the guest, or an origin): conditional
//!   refreshes, `stale-if-error`, storing a body as it streams past ([`through::Filling`]).
//! - [`CachedBody`]: a stored body (or a range of it) as an `http_body::Body`.

mod body;
mod cache;
mod directives;
mod disk;
pub mod freshness;
pub mod invalidation;
mod key;
mod object;
pub mod purge;
pub mod serving;
pub mod through;
mod tier;
mod vary;

pub use body::CachedBody;
pub use cache::{
    Cache, CacheConfig, CacheError, Fill, PurgeMode, PurgeTarget, Stats, Transaction, Writer,
};
pub use directives::Directives;
pub use disk::DiskConfig;
pub use freshness::{Freshness, HttpPolicy, NotStorable, Override, Storable};
pub use key::Key;
pub use object::{Found, ObjectMeta, Usability};
pub use purge::{Purge, PurgeOf, PurgeSink, Settled};
pub use vary::{SecondaryKey, VaryRule};

/// Headers from name/value pairs, for the unit tests.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&str, &str)]) -> ::http::HeaderMap {
    let mut map = ::http::HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            ::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    map
}
