//! A node's own copy of a shared control state, in a redb file: every entry with the
//! revision the shared store gave it, and the revision the copy is complete up to.
//! It is what a node cut off from its fleet reads, and what a node that restarts
//! while the fleet's store is unreachable serves from.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::ControlError;
use crate::redb_store::{ENTRIES, encode_entry, read_entry, read_prefix, storage};
use crate::store::{Change, Entry};

/// `applied`: the revision the copy is complete up to; `format`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `source`: which shared state this is a copy of.
const SOURCE: TableDefinition<&str, &str> = TableDefinition::new("source");

/// The layout this code writes; a file with a higher one is refused.
const FORMAT: u64 = 1;

/// A local copy of a shared control state.
pub struct Replica {
    db: Database,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").finish_non_exhaustive()
    }
}

impl Replica {
    /// Opens (or creates) the copy of the state named `source` (a fleet's bucket).
    /// A copy of another source is emptied: its revisions mean nothing here.
    pub fn open(path: &Path, source: &str) -> Result<Replica, ControlError> {
        let db = Database::create(path).map_err(storage)?;
        let txn = db.begin_write().map_err(storage)?;
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let format = meta.get("format").map_err(storage)?.map(|v| v.value());
            if let Some(found) = format
                && found > FORMAT
            {
                return Err(ControlError::NewerFormat {
                    found,
                    supported: FORMAT,
                });
            }
            meta.insert("format", FORMAT).map_err(storage)?;
            let mut sources = txn.open_table(SOURCE).map_err(storage)?;
            let same = sources
                .get("source")
                .map_err(storage)?
                .is_some_and(|s| s.value() == source);
            if !same {
                sources.insert("source", source).map_err(storage)?;
                meta.insert("applied", 0).map_err(storage)?;
                txn.delete_table(ENTRIES).map_err(storage)?;
            }
            txn.open_table(ENTRIES).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(Replica { db })
    }

    /// The revision the copy is complete up to (0: it holds nothing yet).
    pub fn applied(&self) -> Result<u64, ControlError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let meta = txn.open_table(META).map_err(storage)?;
        Ok(meta
            .get("applied")
            .map_err(storage)?
            .map_or(0, |v| v.value()))
    }

    pub fn get(&self, key: &str) -> Result<Option<Entry>, ControlError> {
        read_entry(&self.db, key)
    }

    /// Every key starting with `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, ControlError> {
        read_prefix(&self.db, prefix)
    }

    /// Applies a page of the change feed and records the copy complete up to
    /// `revision`, in one durable transaction.
    pub fn apply(&self, changes: &[Change], revision: u64) -> Result<(), ControlError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut table = txn.open_table(ENTRIES).map_err(storage)?;
            for change in changes {
                match &change.value {
                    Some(value) => {
                        let bytes = encode_entry(change.revision, value);
                        table
                            .insert(change.key.as_str(), bytes.as_slice())
                            .map_err(storage)?;
                    }
                    None => {
                        table.remove(change.key.as_str()).map_err(storage)?;
                    }
                }
            }
            set_applied(&txn, revision)?;
        }
        txn.commit().map_err(storage)
    }

    /// Replaces the whole copy with `entries`, complete up to `revision` (after the
    /// shared store's history was too short to catch up from).
    pub fn replace(&self, entries: &[(String, Entry)], revision: u64) -> Result<(), ControlError> {
        let txn = self.db.begin_write().map_err(storage)?;
        txn.delete_table(ENTRIES).map_err(storage)?;
        {
            let mut table = txn.open_table(ENTRIES).map_err(storage)?;
            for (key, entry) in entries {
                let bytes = encode_entry(entry.revision, &entry.value);
                table
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(storage)?;
            }
            set_applied(&txn, revision)?;
        }
        txn.commit().map_err(storage)
    }
}

fn set_applied(txn: &redb::WriteTransaction, revision: u64) -> Result<(), ControlError> {
    let mut meta = txn.open_table(META).map_err(storage)?;
    let applied = meta
        .get("applied")
        .map_err(storage)?
        .map_or(0, |v| v.value());
    meta.insert("applied", applied.max(revision))
        .map_err(storage)?;
    Ok(())
}
