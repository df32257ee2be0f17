//! The embedded backend: one redb file per node. redb gives ACID transactions with
//! copy-on-write pages and a checksummed commit, so a commit that returned survives
//! `kill -9` and power loss, and one that did not leaves the previous state intact.
//!
//! Layout: one table per namespace (`kv:APP/STORE`, key → encoded record), one
//! expiry index for all namespaces (`(expires_at_ms, namespace, key)`), and a meta
//! table holding the generation counter.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use crate::backend::{Backend, BackendError, Change, Record, codec};
use crate::kv::KvError;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EXPIRY: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("expiry");
const GENERATION: &str = "generation";

/// Why the store file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path} is in use by another process (another `verge serve` or `verge node` on the \
         same data directory?); stop it, or use its `verge kv` commands, which go through it"
    )]
    Locked { path: PathBuf },
    #[error("could not create the directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not open the KV store file {path}: {message}")]
    Open { path: PathBuf, message: String },
}

/// KV data in a redb file.
pub struct RedbBackend {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("path", &self.path)
            .finish()
    }
}

impl RedbBackend {
    /// Opens (or creates) the store file, taking an exclusive lock on it.
    pub fn open(path: &Path) -> Result<RedbBackend, OpenError> {
        let db = open_database(path)?;
        Ok(RedbBackend {
            db,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, e: impl std::fmt::Display) -> BackendError {
        file_error(&self.path, e)
    }
}

/// Opens (or creates) a redb file, taking an exclusive lock on it.
pub(crate) fn open_database(path: &Path) -> Result<Database, OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked {
            path: path.to_owned(),
        },
        other => OpenError::Open {
            path: path.to_owned(),
            message: other.to_string(),
        },
    })
}

/// The table of namespace `ns`: key → encoded record (the layout [`RedbBackend`] and
/// [`crate::KvReplica`] share).
pub(crate) fn table_name(ns: &str) -> String {
    format!("kv:{ns}")
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> BackendError {
    BackendError::other(format!("{}: {e}", path.display()))
}

/// The record under `key` in namespace `ns` of `db` (the file at `path`).
pub(crate) fn read_record(
    db: &Database,
    path: &Path,
    ns: &str,
    key: &str,
) -> Result<Option<Record>, BackendError> {
    let txn = db.begin_read().map_err(|e| file_error(path, e))?;
    let name = table_name(ns);
    let table = match txn.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(file_error(path, e)),
    };
    match table.get(key).map_err(|e| file_error(path, e))? {
        Some(bytes) => Ok(Some(codec::decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// Up to `limit` keys of namespace `ns` starting with `prefix` after `after`, in
/// order, with their records.
pub(crate) fn scan_records(
    db: &Database,
    path: &Path,
    ns: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Record)>, BackendError> {
    let txn = db.begin_read().map_err(|e| file_error(path, e))?;
    let name = table_name(ns);
    let table = match txn.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(file_error(path, e)),
    };
    let start = crate::backend::scan_start(prefix, after);
    let mut out = Vec::new();
    for item in table
        .range::<&str>((start, Bound::Unbounded))
        .map_err(|e| file_error(path, e))?
    {
        let (k, v) = item.map_err(|e| file_error(path, e))?;
        let k = k.value();
        if !k.starts_with(prefix) || out.len() == limit {
            break;
        }
        out.push((k.to_owned(), codec::decode(v.value())?));
    }
    Ok(out)
}

impl Backend for RedbBackend {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Record>, BackendError> {
        read_record(&self.db, &self.path, ns, key)
    }

    fn update(
        &self,
        ns: &str,
        key: &str,
        decide: &mut dyn FnMut(Option<&Record>) -> Result<Change, KvError>,
    ) -> Result<Option<Record>, KvError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let name = table_name(ns);
        let stored = {
            let mut table = txn
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .map_err(|e| self.error(e))?;
            let current = match table.get(key).map_err(|e| self.error(e))? {
                Some(bytes) => Some(codec::decode(bytes.value())?),
                None => None,
            };
            let change = decide(current.as_ref())?;
            if matches!(change, Change::Keep) {
                // Nothing to write: dropping the transaction aborts it.
                return Ok(current);
            }
            let mut expiry = txn.open_table(EXPIRY).map_err(|e| self.error(e))?;
            if let Some(at) = current.as_ref().and_then(|r| r.expires_at_ms) {
                expiry.remove((at, ns, key)).map_err(|e| self.error(e))?;
            }
            match change {
                Change::Keep => unreachable!("returned above"),
                Change::Delete => {
                    table.remove(key).map_err(|e| self.error(e))?;
                    None
                }
                Change::Put {
                    value,
                    metadata,
                    expires_at_ms,
                } => {
                    let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
                    let generation = meta
                        .get(GENERATION)
                        .map_err(|e| self.error(e))?
                        .map_or(0, |g| g.value())
                        + 1;
                    meta.insert(GENERATION, generation)
                        .map_err(|e| self.error(e))?;
                    let record = Record {
                        value,
                        metadata,
                        generation,
                        expires_at_ms,
                    };
                    // Reserved in the page and written once: no second copy of the value.
                    let mut slot = table
                        .insert_reserve(key, codec::encoded_len(&record))
                        .map_err(|e| self.error(e))?;
                    codec::encode_into(&record, slot.as_mut());
                    drop(slot);
                    if let Some(at) = expires_at_ms {
                        expiry
                            .insert((at, ns, key), ())
                            .map_err(|e| self.error(e))?;
                    }
                    Some(record)
                }
            }
        };
        txn.commit().map_err(|e| self.error(e))?;
        Ok(stored)
    }

    fn scan(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>, BackendError> {
        scan_records(&self.db, &self.path, ns, prefix, after, limit)
    }

    fn purge_expired(&self, now_ms: u64, max: usize) -> Result<usize, BackendError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let mut due = Vec::new();
        {
            let mut expiry = txn.open_table(EXPIRY).map_err(|e| self.error(e))?;
            for item in expiry
                .range::<(u64, &str, &str)>(..(now_ms.saturating_add(1), "", ""))
                .map_err(|e| self.error(e))?
                .take(max)
            {
                let (k, _) = item.map_err(|e| self.error(e))?;
                let (at, ns, key) = k.value();
                due.push((at, ns.to_owned(), key.to_owned()));
            }
            for (at, ns, key) in &due {
                expiry
                    .remove((*at, ns.as_str(), key.as_str()))
                    .map_err(|e| self.error(e))?;
                let name = table_name(ns);
                let mut table = txn
                    .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                    .map_err(|e| self.error(e))?;
                // The index and the item agree unless the item was rewritten in the
                // same millisecond; only remove what really expired.
                let expired = table
                    .get(key.as_str())
                    .map_err(|e| self.error(e))?
                    .is_some_and(|v| codec::expires_at(v.value()).is_some_and(|x| x <= now_ms));
                if expired {
                    table.remove(key.as_str()).map_err(|e| self.error(e))?;
                }
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(due.len())
    }
}

/// A redb backend that opens its file on first use: for a server whose app declares
/// no stores yet (it may after a reload), so it neither creates nor locks a file it
/// does not need. An open failure is a storage error for the call that needed it.
pub struct RedbOnFirstUse {
    path: PathBuf,
    backend: std::sync::OnceLock<Result<RedbBackend, String>>,
}

impl RedbOnFirstUse {
    pub fn new(path: &Path) -> RedbOnFirstUse {
        RedbOnFirstUse {
            path: path.to_owned(),
            backend: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&RedbBackend, BackendError> {
        self.backend
            .get_or_init(|| RedbBackend::open(&self.path).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| BackendError::other(e.clone()))
    }
}

impl Backend for RedbOnFirstUse {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Record>, BackendError> {
        self.get()?.get(ns, key)
    }

    fn update(
        &self,
        ns: &str,
        key: &str,
        decide: &mut dyn FnMut(Option<&Record>) -> Result<Change, KvError>,
    ) -> Result<Option<Record>, KvError> {
        self.get()?.update(ns, key, decide)
    }

    fn scan(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>, BackendError> {
        self.get()?.scan(ns, prefix, after, limit)
    }

    fn purge_expired(&self, now_ms: u64, max: usize) -> Result<usize, BackendError> {
        match self.backend.get() {
            // Never opened: nothing to purge, and no reason to open it.
            None => Ok(0),
            Some(_) => self.get()?.purge_expired(now_ms, max),
        }
    }
}
