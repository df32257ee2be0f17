//! Verge's storage. The KV store's semantics (limits, insert modes, compare-and-swap
//! on generations, TTL, stable prefix listing, counters) live once in [`Kv`], over a
//! small [`Backend`] trait of atomic primitives with two implementations:
//!
//! - [`RedbBackend`]: one redb file per node; a write is acknowledged only once it is
//!   durable (it survives `kill -9` and power loss).
//! - [`MemoryBackend`]: for tests and throwaway stores.
//!
//! A fleet node's backend (in `verge-fleet`) keeps the same trait over a NATS
//! JetStream bucket: it reads from a [`KvReplica`] here, a redb copy whose
//! generations are the bucket's revisions. Callers choose a backend by configuration
//! and never change. [`conformance`] holds the KV rules as
//! public functions, so that backend passes the same tests the built-in ones pass.
//!
//! Stores are addressed by a [`Namespace`] (`app/store`), so two apps that name a
//! store alike never share data.

mod backend;
pub mod conformance;
mod kv;
mod memory;
mod redb_backend;
mod replica;
mod seed;

pub use backend::{Backend, BackendError, Change, Record};
pub use kv::{
    Entry, InsertMode, InsertOptions, Kv, KvError, KvLimits, ListPage, MAX_LIST_LIMIT, Namespace,
    check_key,
};
pub use memory::MemoryBackend;
pub use redb_backend::{OpenError, RedbBackend, RedbOnFirstUse};
pub use replica::{KvReplica, Replicated};
pub use seed::{SeedEntry, SeedError, load_seed, parse_seed};

/// Milliseconds since the Unix epoch: how expiry times are stored.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
