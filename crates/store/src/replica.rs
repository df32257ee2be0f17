//! A node's copy of a KV store that lives elsewhere (a fleet's JetStream bucket): the
//! same records as [`crate::RedbBackend`] keeps, but their generations are the
//! source's revisions, and the copy remembers the revision its feed has applied, so a
//! restart resumes the feed instead of reading everything again.
//!
//! Every key keeps the revision of its last change (a record's generation, or a
//! deletion's revision in the `gone` table), and a change older than that is ignored:
//! a write this node applied as soon as the source acknowledged it is never undone by
//! the feed delivering an older one later, so reads never go backwards.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use crate::backend::{BackendError, Record, codec};
use crate::redb_backend::{OpenError, open_database, read_record, scan_records, table_name};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SOURCE: TableDefinition<&str, &str> = TableDefinition::new("source");
const EXPIRY: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("expiry");
/// The revision of the feed applied up to.
const REVISION: &str = "revision";

/// One change of the source: `record` (its generation is `revision`), or a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicated {
    pub ns: String,
    pub key: String,
    pub revision: u64,
    pub record: Option<Record>,
    /// Where the source keeps the record's value when it is not inline (a large
    /// value's object): kept beside the record, so the write that replaces it can
    /// remove it.
    pub value_ref: Option<String>,
}

/// A copy of a KV store in a redb file.
pub struct KvReplica {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for KvReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvReplica")
            .field("path", &self.path)
            .finish()
    }
}

fn gone(ns: &str) -> String {
    format!("gone:{ns}")
}

fn refs(ns: &str) -> String {
    format!("ref:{ns}")
}

impl KvReplica {
    /// Opens (or creates) the copy of `source` (a fleet's bucket) at `path`. A copy
    /// of another source is emptied: its revisions mean nothing here.
    pub fn open(path: &Path, source: &str) -> Result<KvReplica, OpenError> {
        let db = open_database(path)?;
        let replica = KvReplica {
            db,
            path: path.to_owned(),
        };
        replica.adopt(source).map_err(|e| OpenError::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(replica)
    }

    fn error(&self, e: impl std::fmt::Display) -> BackendError {
        BackendError::other(format!("{}: {e}", self.path.display()))
    }

    fn adopt(&self, source: &str) -> Result<(), BackendError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let same = {
            let sources = txn.open_table(SOURCE).map_err(|e| self.error(e))?;
            sources
                .get("source")
                .map_err(|e| self.error(e))?
                .is_some_and(|s| s.value() == source)
        };
        if !same {
            let tables: Vec<_> = txn.list_tables().map_err(|e| self.error(e))?.collect();
            for table in tables {
                txn.delete_table(table).map_err(|e| self.error(e))?;
            }
            txn.open_table(SOURCE)
                .map_err(|e| self.error(e))?
                .insert("source", source)
                .map_err(|e| self.error(e))?;
        }
        txn.commit().map_err(|e| self.error(e))
    }

    /// The revision of the source this copy has applied every change up to.
    pub fn revision(&self) -> Result<u64, BackendError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        match txn.open_table(META) {
            Ok(meta) => Ok(meta
                .get(REVISION)
                .map_err(|e| self.error(e))?
                .map_or(0, |v| v.value())),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The record under `key`, expired or not.
    pub fn get(&self, ns: &str, key: &str) -> Result<Option<Record>, BackendError> {
        read_record(&self.db, &self.path, ns, key)
    }

    /// Where the source keeps the value of `key`'s record, when not inline.
    pub fn value_ref(&self, ns: &str, key: &str) -> Result<Option<String>, BackendError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let name = refs(ns);
        match txn.open_table(TableDefinition::<&str, &str>::new(&name)) {
            Ok(table) => Ok(table
                .get(key)
                .map_err(|e| self.error(e))?
                .map(|v| v.value().to_owned())),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The revision of the last change to `key` this copy knows of (0: none): what
    /// a conditional write to the source expects.
    pub fn last_revision(&self, ns: &str, key: &str) -> Result<u64, BackendError> {
        if let Some(record) = self.get(ns, key)? {
            return Ok(record.generation);
        }
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let name = gone(ns);
        match txn.open_table(TableDefinition::<&str, u64>::new(&name)) {
            Ok(table) => Ok(table
                .get(key)
                .map_err(|e| self.error(e))?
                .map_or(0, |v| v.value())),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Applies `changes` in one transaction, each only if it is newer than what the
    /// key holds, and, with `revision`, records that the feed has applied everything
    /// up to it. `durable`: the commit waits for the disk (a feed's batch); a write
    /// this node made itself need not, the feed brings it again after a crash.
    /// Returns how many changes were newer.
    pub fn apply(
        &self,
        changes: &[Replicated],
        revision: Option<u64>,
        durable: bool,
    ) -> Result<usize, BackendError> {
        let mut txn = self.db.begin_write().map_err(|e| self.error(e))?;
        if !durable {
            txn.set_durability(Durability::None)
                .map_err(|e| self.error(e))?;
        }
        let mut applied = 0;
        {
            let mut expiry = txn.open_table(EXPIRY).map_err(|e| self.error(e))?;
            for change in changes {
                let (records_name, gone_name) = (table_name(&change.ns), gone(&change.ns));
                let mut table = txn
                    .open_table(TableDefinition::<&str, &[u8]>::new(&records_name))
                    .map_err(|e| self.error(e))?;
                let mut deleted = txn
                    .open_table(TableDefinition::<&str, u64>::new(&gone_name))
                    .map_err(|e| self.error(e))?;
                let refs_name = refs(&change.ns);
                let mut value_refs = txn
                    .open_table(TableDefinition::<&str, &str>::new(&refs_name))
                    .map_err(|e| self.error(e))?;
                let key = change.key.as_str();
                let current = match table.get(key).map_err(|e| self.error(e))? {
                    Some(bytes) => {
                        let bytes = bytes.value();
                        let generation = u64::from_le_bytes(
                            bytes
                                .get(1..9)
                                .and_then(|b| b.try_into().ok())
                                .ok_or_else(|| self.error("a stored record is corrupt"))?,
                        );
                        Some((generation, codec::expires_at(bytes)))
                    }
                    None => None,
                };
                let last = match current {
                    Some((generation, _)) => generation,
                    None => deleted
                        .get(key)
                        .map_err(|e| self.error(e))?
                        .map_or(0, |v| v.value()),
                };
                if change.revision <= last {
                    continue;
                }
                applied += 1;
                match (&change.record, &change.value_ref) {
                    (Some(_), Some(value_ref)) => {
                        value_refs
                            .insert(key, value_ref.as_str())
                            .map_err(|e| self.error(e))?;
                    }
                    _ => {
                        value_refs.remove(key).map_err(|e| self.error(e))?;
                    }
                }
                if let Some((_, Some(at))) = current {
                    expiry
                        .remove((at, change.ns.as_str(), key))
                        .map_err(|e| self.error(e))?;
                }
                match &change.record {
                    Some(record) => {
                        let record = Record {
                            generation: change.revision,
                            ..record.clone()
                        };
                        let mut slot = table
                            .insert_reserve(key, codec::encoded_len(&record))
                            .map_err(|e| self.error(e))?;
                        codec::encode_into(&record, slot.as_mut());
                        drop(slot);
                        deleted.remove(key).map_err(|e| self.error(e))?;
                        if let Some(at) = record.expires_at_ms {
                            expiry
                                .insert((at, change.ns.as_str(), key), ())
                                .map_err(|e| self.error(e))?;
                        }
                    }
                    None => {
                        table.remove(key).map_err(|e| self.error(e))?;
                        deleted
                            .insert(key, change.revision)
                            .map_err(|e| self.error(e))?;
                    }
                }
            }
            if let Some(revision) = revision {
                let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
                let before = meta
                    .get(REVISION)
                    .map_err(|e| self.error(e))?
                    .map_or(0, |v| v.value());
                meta.insert(REVISION, revision.max(before))
                    .map_err(|e| self.error(e))?;
            }
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(applied)
    }

    /// Forgets that `key` was deleted at `revision` (the source no longer holds the
    /// deletion), so a conditional write expects nothing there.
    pub fn forget_deletion(&self, ns: &str, key: &str, revision: u64) -> Result<(), BackendError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let name = gone(ns);
            let mut deleted = txn
                .open_table(TableDefinition::<&str, u64>::new(&name))
                .map_err(|e| self.error(e))?;
            let holds = deleted
                .get(key)
                .map_err(|e| self.error(e))?
                .is_some_and(|v| v.value() == revision);
            if holds {
                deleted.remove(key).map_err(|e| self.error(e))?;
            }
        }
        txn.commit().map_err(|e| self.error(e))
    }

    /// Up to `limit` keys starting with `prefix` after `after`, in order, with their
    /// records (expired ones included).
    pub fn scan(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>, BackendError> {
        scan_records(&self.db, &self.path, ns, prefix, after, limit)
    }

    /// Removes from this copy up to `max` records that expired at or before `now_ms`
    /// (readers never see them anyway; the source drops its own); each leaves a
    /// deletion at its generation, the revision the source still has for the key.
    pub fn purge_expired(&self, now_ms: u64, max: usize) -> Result<usize, BackendError> {
        let mut due = Vec::new();
        {
            let txn = self.db.begin_read().map_err(|e| self.error(e))?;
            let expiry = match txn.open_table(EXPIRY) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(0),
                Err(e) => return Err(self.error(e)),
            };
            for item in expiry
                .range::<(u64, &str, &str)>(..(now_ms.saturating_add(1), "", ""))
                .map_err(|e| self.error(e))?
                .take(max)
            {
                let (k, _) = item.map_err(|e| self.error(e))?;
                let (_, ns, key) = k.value();
                due.push((ns.to_owned(), key.to_owned()));
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        let mut changes = Vec::with_capacity(due.len());
        for (ns, key) in due {
            // Re-read: the feed may have replaced the record since.
            if let Some(record) = self.get(&ns, &key)?
                && record.is_expired(now_ms)
            {
                changes.push(Replicated {
                    revision: record.generation + 1,
                    ns,
                    key,
                    record: None,
                    value_ref: None,
                });
            }
        }
        self.remove_expired(&changes, now_ms)?;
        Ok(changes.len())
    }

    /// Removes the expired records `changes` name (their revision is the record's
    /// generation + 1), leaving a deletion at the record's generation.
    fn remove_expired(&self, changes: &[Replicated], now_ms: u64) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(|e| self.error(e))?;
        txn.set_durability(Durability::None)
            .map_err(|e| self.error(e))?;
        {
            let mut expiry = txn.open_table(EXPIRY).map_err(|e| self.error(e))?;
            for change in changes {
                let generation = change.revision - 1;
                let (records_name, gone_name) = (table_name(&change.ns), gone(&change.ns));
                let mut table = txn
                    .open_table(TableDefinition::<&str, &[u8]>::new(&records_name))
                    .map_err(|e| self.error(e))?;
                let still = match table.get(change.key.as_str()).map_err(|e| self.error(e))? {
                    Some(bytes) => {
                        let record = codec::decode(bytes.value())?;
                        (record.generation == generation && record.is_expired(now_ms))
                            .then_some(record.expires_at_ms)
                    }
                    None => None,
                };
                let Some(at) = still else { continue };
                table
                    .remove(change.key.as_str())
                    .map_err(|e| self.error(e))?;
                if let Some(at) = at {
                    expiry
                        .remove((at, change.ns.as_str(), change.key.as_str()))
                        .map_err(|e| self.error(e))?;
                }
                txn.open_table(TableDefinition::<&str, u64>::new(&gone_name))
                    .map_err(|e| self.error(e))?
                    .insert(change.key.as_str(), generation)
                    .map_err(|e| self.error(e))?;
            }
        }
        txn.commit().map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(value: &str, expires_at_ms: Option<u64>) -> Option<Record> {
        Some(Record {
            value: Bytes::from(value.to_owned()),
            metadata: None,
            generation: 0,
            expires_at_ms,
        })
    }

    fn change(key: &str, revision: u64, record: Option<Record>) -> Replicated {
        Replicated {
            ns: "app/links".into(),
            key: key.into(),
            revision,
            record,
            value_ref: None,
        }
    }

    fn value(replica: &KvReplica, key: &str) -> Option<String> {
        replica
            .get("app/links", key)
            .unwrap()
            .map(|r| String::from_utf8(r.value.to_vec()).unwrap())
    }

    #[test]
    fn older_changes_never_undo_newer_ones_and_the_revision_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv-replica.redb");
        {
            let replica = KvReplica::open(&path, "fleet-kv").unwrap();
            assert_eq!(replica.revision().unwrap(), 0);
            // This node's own write, applied as soon as it was acknowledged (5) ...
            replica
                .apply(&[change("a", 5, record("mine", None))], None, false)
                .unwrap();
            // ... then the feed delivers an older write and, later, the same one.
            let newer = replica
                .apply(
                    &[
                        change("a", 3, record("older", None)),
                        change("b", 4, record("b", None)),
                        change("a", 5, record("mine", None)),
                    ],
                    Some(5),
                    true,
                )
                .unwrap();
            assert_eq!(newer, 1, "only `b` was news");
            assert_eq!(value(&replica, "a").as_deref(), Some("mine"));
            assert_eq!(
                replica.get("app/links", "a").unwrap().unwrap().generation,
                5
            );
            // A deletion is remembered, so an older put cannot bring the key back.
            replica.apply(&[change("b", 7, None)], None, false).unwrap();
            replica
                .apply(&[change("b", 6, record("zombie", None))], Some(6), true)
                .unwrap();
            assert_eq!(value(&replica, "b"), None);
            assert_eq!(replica.last_revision("app/links", "b").unwrap(), 7);
            replica.forget_deletion("app/links", "b", 7).unwrap();
            assert_eq!(replica.last_revision("app/links", "b").unwrap(), 0);
            assert_eq!(replica.revision().unwrap(), 6);
        }
        let replica = KvReplica::open(&path, "fleet-kv").unwrap();
        assert_eq!(replica.revision().unwrap(), 6, "resumes where it was");
        assert_eq!(value(&replica, "a").as_deref(), Some("mine"));
        drop(replica);
        let other = KvReplica::open(&path, "another-fleet-kv").unwrap();
        assert_eq!(other.revision().unwrap(), 0, "another source starts empty");
        assert_eq!(value(&other, "a"), None);
    }

    #[test]
    fn expired_records_are_purged_leaving_their_revision_and_listing_is_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let replica = KvReplica::open(&dir.path().join("r.redb"), "fleet-kv").unwrap();
        replica
            .apply(
                &[
                    change("k/2", 1, record("x", Some(1_000))),
                    change("k/1", 2, record("y", None)),
                    change("j", 3, record("z", None)),
                ],
                Some(3),
                true,
            )
            .unwrap();
        let keys: Vec<String> = replica
            .scan("app/links", "k/", None, 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["k/1", "k/2"]);
        assert_eq!(replica.purge_expired(999, 10).unwrap(), 0);
        assert_eq!(replica.purge_expired(1_000, 10).unwrap(), 1);
        assert_eq!(value(&replica, "k/2"), None);
        assert_eq!(replica.last_revision("app/links", "k/2").unwrap(), 1);
        assert_eq!(replica.purge_expired(5_000, 10).unwrap(), 0, "nothing left");
    }
}
