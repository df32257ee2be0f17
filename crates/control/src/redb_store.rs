//! [`ControlStore`] in one redb file: each write one durable transaction (a node
//! killed with `kill -9` restarts with exactly what it had confirmed), the last
//! [`KEPT_CHANGES`] changes kept for the change feed.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{
    Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};

use crate::store::{Change, Changes, ControlStore, Entry, Expect};
use crate::{ControlError, Service, TokenRecord, Version};

/// Key → 8-byte big-endian revision, then the value.
pub(crate) const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
/// Revision → the change (see `encode_change`).
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
/// `revision`, `format`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The layout this code writes; a file with a higher one is refused.
pub const FORMAT: u64 = 1;
/// Changes kept for the feed; a reader further behind resyncs.
pub const KEPT_CHANGES: u64 = 10_000;

/// The control state's storage in a redb file.
pub struct RedbStore {
    db: Arc<Database>,
    revision: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

pub(crate) fn storage(e: impl std::fmt::Display) -> ControlError {
    ControlError::other(e.to_string())
}

/// `key`'s entry in a file's `entries` table (a store's, or a replica's).
pub(crate) fn read_entry(db: &Database, key: &str) -> Result<Option<Entry>, ControlError> {
    let txn = db.begin_read().map_err(storage)?;
    let table = txn.open_table(ENTRIES).map_err(storage)?;
    let found = table.get(key).map_err(storage)?;
    found.map(|v| decode_entry(v.value())).transpose()
}

/// Every entry whose key starts with `prefix`, in key order.
pub(crate) fn read_prefix(
    db: &Database,
    prefix: &str,
) -> Result<Vec<(String, Entry)>, ControlError> {
    let txn = db.begin_read().map_err(storage)?;
    let table = txn.open_table(ENTRIES).map_err(storage)?;
    let mut out = Vec::new();
    for row in table.range(prefix..).map_err(storage)? {
        let (key, value) = row.map_err(storage)?;
        if !key.value().starts_with(prefix) {
            break;
        }
        out.push((key.value().to_owned(), decode_entry(value.value())?));
    }
    Ok(out)
}

pub(crate) fn encode_entry(revision: u64, value: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + value.len());
    bytes.extend_from_slice(&revision.to_be_bytes());
    bytes.extend_from_slice(value);
    bytes
}

pub(crate) fn decode_entry(bytes: &[u8]) -> Result<Entry, ControlError> {
    let (revision, value) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| storage("a control entry is shorter than its revision"))?;
    Ok(Entry {
        revision: u64::from_be_bytes(*revision),
        value: value.to_vec(),
    })
}

/// `[1 if a value follows][key length: u32 BE][key][value]`.
fn encode_change(key: &str, value: Option<&[u8]>) -> Vec<u8> {
    let mut bytes = vec![u8::from(value.is_some())];
    bytes.extend_from_slice(&(key.len() as u32).to_be_bytes());
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(value.unwrap_or_default());
    bytes
}

fn decode_change(revision: u64, bytes: &[u8]) -> Result<Change, ControlError> {
    let bad = || storage("a control change record is damaged");
    let (&has_value, rest) = bytes.split_first().ok_or_else(bad)?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = u32::from_be_bytes(*len) as usize;
    let key = rest.get(..len).ok_or_else(bad)?;
    Ok(Change {
        revision,
        key: String::from_utf8(key.to_vec()).map_err(|_| bad())?,
        value: (has_value == 1).then(|| rest[len..].to_vec()),
    })
}

impl RedbStore {
    /// Opens (or creates) the file. A file written by Verge before the change feed
    /// (tables `services`, `versions`, `domains`, `tokens`) is converted in place, in
    /// one transaction; one written by a newer Verge is refused.
    pub fn open(path: &Path) -> Result<RedbStore, ControlError> {
        let db = Database::create(path).map_err(storage)?;
        let txn = db.begin_write().map_err(storage)?;
        let legacy = txn
            .list_tables()
            .map_err(storage)?
            .any(|t| t.name() == "services");
        let format = {
            let mut meta = txn.open_table(META).map_err(storage)?;
            let format = meta.get("format").map_err(storage)?.map(|v| v.value());
            if format.is_none() {
                meta.insert("format", FORMAT).map_err(storage)?;
            }
            format
        };
        if let Some(found) = format
            && found > FORMAT
        {
            return Err(ControlError::NewerFormat {
                found,
                supported: FORMAT,
            });
        }
        txn.open_table(ENTRIES).map_err(storage)?;
        txn.open_table(CHANGES).map_err(storage)?;
        if legacy {
            migrate_legacy(&txn)?;
        }
        let revision = current_revision(&txn)?;
        txn.commit().map_err(storage)?;
        Ok(RedbStore {
            db: Arc::new(db),
            revision: tokio::sync::watch::Sender::new(revision),
        })
    }

    /// Runs one conditional write on a blocking thread and announces its revision.
    async fn write(
        &self,
        key: &str,
        value: Option<Vec<u8>>,
        expect: Expect,
    ) -> Result<u64, ControlError> {
        let db = self.db.clone();
        let key = key.to_owned();
        let written = tokio::task::spawn_blocking(move || {
            let txn = db.begin_write().map_err(storage)?;
            let revision = write_in(&txn, &key, value.as_deref(), expect)?;
            txn.commit().map_err(storage)?;
            Ok::<_, ControlError>(revision)
        })
        .await
        .map_err(storage)??;
        crate::advance(&self.revision, written);
        Ok(written)
    }
}

fn current_revision(txn: &WriteTransaction) -> Result<u64, ControlError> {
    let meta = txn.open_table(META).map_err(storage)?;
    Ok(meta
        .get("revision")
        .map_err(storage)?
        .map_or(0, |v| v.value()))
}

/// The write itself: checks `expect`, writes or deletes, logs the change and drops
/// the oldest one past [`KEPT_CHANGES`]. `Some(revision)` of the write; an absent
/// key deleted with [`Expect::Any`] writes nothing and answers the current revision.
fn write_in(
    txn: &WriteTransaction,
    key: &str,
    value: Option<&[u8]>,
    expect: Expect,
) -> Result<u64, ControlError> {
    let mut entries = txn.open_table(ENTRIES).map_err(storage)?;
    let current = entries
        .get(key)
        .map_err(storage)?
        .map(|v| decode_entry(v.value()))
        .transpose()?;
    let holds = current.as_ref().map(|e| e.revision);
    match (expect, holds) {
        (Expect::Any, _) => {}
        (Expect::Absent, None) => {}
        (Expect::Revision(want), Some(have)) if want == have => {}
        (Expect::Absent, Some(have)) => {
            return Err(ControlError::Conflict(format!(
                "`{key}` exists (revision {have})"
            )));
        }
        (Expect::Revision(want), have) => {
            return Err(ControlError::Conflict(match have {
                Some(have) => format!("`{key}` is at revision {have}, not {want}"),
                None => format!("`{key}` no longer exists (expected revision {want})"),
            }));
        }
    }
    let revision = current_revision(txn)?;
    if value.is_none() && current.is_none() {
        return Ok(revision);
    }
    let revision = revision + 1;
    match value {
        Some(value) => {
            entries
                .insert(key, encode_entry(revision, value).as_slice())
                .map_err(storage)?;
        }
        None => {
            entries.remove(key).map_err(storage)?;
        }
    }
    let mut changes = txn.open_table(CHANGES).map_err(storage)?;
    changes
        .insert(revision, encode_change(key, value).as_slice())
        .map_err(storage)?;
    if revision > KEPT_CHANGES {
        changes.remove(revision - KEPT_CHANGES).map_err(storage)?;
    }
    txn.open_table(META)
        .map_err(storage)?
        .insert("revision", revision)
        .map_err(storage)?;
    Ok(revision)
}

#[async_trait]
impl ControlStore for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, ControlError> {
        read_entry(&self.db, key)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, ControlError> {
        read_prefix(&self.db, prefix)
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, ControlError> {
        self.write(key, Some(value), expect).await
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<u64, ControlError> {
        self.write(key, None, expect).await
    }

    async fn changes(&self, since: u64, limit: usize) -> Result<Changes, ControlError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let revision = txn
            .open_table(META)
            .map_err(storage)?
            .get("revision")
            .map_err(storage)?
            .map_or(0, |v| v.value());
        if since >= revision {
            return Ok(Changes::Since {
                changes: Vec::new(),
                revision,
            });
        }
        let table = txn.open_table(CHANGES).map_err(storage)?;
        let oldest = table
            .first()
            .map_err(storage)?
            .map_or(revision + 1, |(k, _)| k.value());
        if since + 1 < oldest {
            return Ok(Changes::Resync { revision });
        }
        let mut changes = Vec::new();
        for row in table.range(since + 1..).map_err(storage)?.take(limit) {
            let (rev, bytes) = row.map_err(storage)?;
            changes.push(decode_change(rev.value(), bytes.value())?);
        }
        let revision = changes.last().map_or(revision, |c| c.revision).max(since);
        Ok(Changes::Since { changes, revision })
    }

    fn revision(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revision.subscribe()
    }
}

/// The tables Verge wrote before the change feed, each row an entry now.
fn migrate_legacy(txn: &WriteTransaction) -> Result<(), ControlError> {
    const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");
    const VERSIONS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("versions");
    const DOMAINS: TableDefinition<&str, &str> = TableDefinition::new("domains");
    const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
    let mut rows: Vec<(String, Vec<u8>)> = Vec::new();
    {
        let services = txn.open_table(SERVICES).map_err(storage)?;
        for row in services.iter().map_err(storage)? {
            let (_, bytes) = row.map_err(storage)?;
            let service: Service = serde_json::from_slice(bytes.value()).map_err(storage)?;
            rows.push((
                crate::keys::service(&service.name),
                serde_json::to_vec(&service).map_err(storage)?,
            ));
        }
        let versions = txn.open_table(VERSIONS).map_err(storage)?;
        for row in versions.iter().map_err(storage)? {
            let (key, bytes) = row.map_err(storage)?;
            let (service, _) = key.value();
            let version: Version = serde_json::from_slice(bytes.value()).map_err(storage)?;
            rows.push((
                crate::keys::version_of(service, version.number),
                bytes.value().to_vec(),
            ));
        }
        let domains = txn.open_table(DOMAINS).map_err(storage)?;
        for row in domains.iter().map_err(storage)? {
            let (domain, owner) = row.map_err(storage)?;
            rows.push((
                crate::keys::domain_of(domain.value()),
                owner.value().as_bytes().to_vec(),
            ));
        }
        let tokens = txn.open_table(TOKENS).map_err(storage)?;
        for row in tokens.iter().map_err(storage)? {
            let (_, bytes) = row.map_err(storage)?;
            let token: TokenRecord = serde_json::from_slice(bytes.value()).map_err(storage)?;
            rows.push((crate::keys::token(&token.id), bytes.value().to_vec()));
        }
    }
    for (key, value) in rows {
        write_in(txn, &key, Some(&value), Expect::Any)?;
    }
    txn.delete_table(SERVICES).map_err(storage)?;
    txn.delete_table(VERSIONS).map_err(storage)?;
    txn.delete_table(DOMAINS).map_err(storage)?;
    txn.delete_table(TOKENS).map_err(storage)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_from_before_the_change_feed_is_converted_and_one_from_the_future_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.redb");
        {
            const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");
            const VERSIONS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("versions");
            const DOMAINS: TableDefinition<&str, &str> = TableDefinition::new("domains");
            const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            let service = serde_json::json!({
                "name": "shop", "domains": ["shop.example"], "active": 2,
                "history": [1], "next_version": 3, "created_at_ms": 5
            });
            txn.open_table(SERVICES)
                .unwrap()
                .insert("shop", service.to_string().as_bytes())
                .unwrap();
            for n in [1u32, 2] {
                let v = serde_json::json!({
                    "number": n, "sha256": "a".repeat(64), "size": 9,
                    "uploaded_by": "ci", "uploaded_at_ms": 7
                });
                txn.open_table(VERSIONS)
                    .unwrap()
                    .insert(("shop", n), v.to_string().as_bytes())
                    .unwrap();
            }
            txn.open_table(DOMAINS)
                .unwrap()
                .insert("shop.example", "shop")
                .unwrap();
            txn.open_table(TOKENS).unwrap();
            txn.commit().unwrap();
        }
        let control = crate::Control::new(Arc::new(RedbStore::open(&path).unwrap()));
        let shop = crate::ServiceName::new("shop").unwrap();
        let service = control.service(&shop).await.unwrap().unwrap();
        assert_eq!(
            (service.active, service.history.clone()),
            (Some(2), vec![1])
        );
        assert_eq!(control.versions(&shop).await.unwrap().len(), 2);
        let other = crate::ServiceName::new("other").unwrap();
        let taken = control
            .create_service(
                &other,
                &[verge_manifest::DomainPattern::parse("shop.example").unwrap()],
            )
            .await;
        assert!(
            matches!(taken, Err(ControlError::DomainTaken { .. })),
            "{taken:?}"
        );

        // A file whose format is newer than this code is refused, naming both.
        drop(control);
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("format", FORMAT + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let refused = RedbStore::open(&path).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains(&format!("format {}", FORMAT + 1)),
            "{refused}"
        );
    }
}
