//! The storage a control plane needs, and no more: a map from keys to values where
//! every write has a revision, writes are conditional on what the writer saw
//! (compare-and-swap), and the history of changes can be read back from a revision.
//! That is exactly a JetStream KV bucket (revisions are stream sequences, `create`
//! and `update` take an expected revision, a watch starts at a revision), and a
//! redb file can keep it too ([`RedbStore`](crate::RedbStore)). The rules of
//! services, domains and versions live once above it, in [`Control`](crate::Control).

use async_trait::async_trait;

use crate::ControlError;

/// A value and the revision that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    pub revision: u64,
}

/// What a write expects to find, or it is refused with [`ControlError::Conflict`]
/// and writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there.
    Any,
    /// The key holds nothing (create).
    Absent,
    /// The key's current value was written by this revision.
    Revision(u64),
}

/// One write in the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub revision: u64,
    pub key: String,
    /// The new value; `None` when the key was deleted.
    pub value: Option<Vec<u8>>,
}

/// The change feed from a revision. It is level-triggered: every key written after
/// the revision appears with its latest value (or its deletion), in revision order,
/// but a key written several times may appear only at its last write (a JetStream
/// bucket keeps one message per key). Readers apply the state a change names, not
/// the difference it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// The changes after the revision asked for, oldest first, and the revision the
    /// store was at when they were read.
    Since { changes: Vec<Change>, revision: u64 },
    /// The history that far back is gone: read the whole state instead
    /// ([`ControlStore::list`] of everything), which is at `revision`.
    Resync { revision: u64 },
}

/// A revisioned key-value map. Keys are printable ASCII (`service/shop`,
/// `domain/*.shop.example`); an implementation encodes them as its storage needs.
#[async_trait]
pub trait ControlStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Entry>, ControlError>;
    /// Every key starting with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, ControlError>;
    /// Writes `value` if `expect` holds; the write's revision.
    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, ControlError>;
    /// Deletes `key` if `expect` holds; the deletion's revision. Deleting a key that
    /// holds nothing with [`Expect::Any`] changes nothing and answers the store's
    /// revision.
    async fn delete(&self, key: &str, expect: Expect) -> Result<u64, ControlError>;
    /// The changes after `since`, at most `limit` of them.
    async fn changes(&self, since: u64, limit: usize) -> Result<Changes, ControlError>;
    /// The store's latest revision, updated as writes land (from this process, or
    /// from any other writer the store hears of).
    fn revision(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Asks the store, not a cache, for its latest revision: whether it can be
    /// reached now. A local store always can.
    async fn probe(&self) -> Result<u64, ControlError> {
        Ok(*self.revision().borrow())
    }
    /// Whether a change can be made now; a store that may be cut off waits out a
    /// short cut first. A local store always can.
    async fn writable(&self) -> Result<(), ControlError> {
        Ok(())
    }
}

/// Moves `watch` forward to `revision`, never back: writes land, and are heard of,
/// out of order.
pub fn advance(watch: &tokio::sync::watch::Sender<u64>, revision: u64) {
    watch.send_if_modified(|seen| {
        let newer = revision > *seen;
        if newer {
            *seen = revision;
        }
        newer
    });
}
