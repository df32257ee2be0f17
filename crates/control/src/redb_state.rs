//! [`ControlState`] in one redb file: each call one transaction, durable when it
//! returns (a node killed with `kill -9` restarts with exactly the state it had
//! confirmed).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use verge_manifest::DomainPattern;

use crate::{ControlError, ControlState, NewVersion, Service, ServiceName, TokenRecord, Version};

/// Service name → [`Service`] (JSON).
const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");
/// (service, version number) → [`Version`] (JSON).
const VERSIONS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("versions");
/// Domain pattern → the service it belongs to.
const DOMAINS: TableDefinition<&str, &str> = TableDefinition::new("domains");
/// Token id → [`TokenRecord`] (JSON).
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

/// The control state in a redb file.
pub struct RedbState {
    db: Database,
}

impl std::fmt::Debug for RedbState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbState").finish_non_exhaustive()
    }
}

fn storage(e: impl std::fmt::Display) -> ControlError {
    ControlError::other(e.to_string())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RedbState {
    /// Opens (or creates) the state file.
    pub fn open(path: &Path) -> Result<RedbState, ControlError> {
        let db = Database::create(path).map_err(storage)?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(SERVICES).map_err(storage)?;
        txn.open_table(VERSIONS).map_err(storage)?;
        txn.open_table(DOMAINS).map_err(storage)?;
        txn.open_table(TOKENS).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(RedbState { db })
    }

    /// Runs `change` in one write transaction, committing only if it succeeds.
    fn write<R>(
        &self,
        change: impl FnOnce(&WriteTransaction) -> Result<R, ControlError>,
    ) -> Result<R, ControlError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let result = change(&txn)?;
        txn.commit().map_err(storage)?;
        Ok(result)
    }
}

fn load(txn: &WriteTransaction, name: &ServiceName) -> Result<Service, ControlError> {
    let table = txn.open_table(SERVICES).map_err(storage)?;
    let found = table.get(name.as_str()).map_err(storage)?;
    match found {
        Some(bytes) => serde_json::from_slice(bytes.value()).map_err(storage),
        None => Err(ControlError::NoSuchService(name.as_str().to_owned())),
    }
}

fn save(txn: &WriteTransaction, service: &Service) -> Result<(), ControlError> {
    let bytes = serde_json::to_vec(service).map_err(storage)?;
    let mut table = txn.open_table(SERVICES).map_err(storage)?;
    table
        .insert(service.name.as_str(), bytes.as_slice())
        .map_err(storage)?;
    Ok(())
}

/// Gives `domains` to `service`, taking back the ones it no longer lists; a domain
/// another service holds is refused.
fn claim(
    txn: &WriteTransaction,
    service: &ServiceName,
    old: &[DomainPattern],
    domains: &[DomainPattern],
) -> Result<(), ControlError> {
    let mut table = txn.open_table(DOMAINS).map_err(storage)?;
    for domain in domains {
        let owner = table
            .get(domain.as_str())
            .map_err(storage)?
            .map(|o| o.value().to_owned());
        if let Some(owner) = owner
            && owner != service.as_str()
        {
            return Err(ControlError::DomainTaken {
                domain: domain.as_str().to_owned(),
                owner,
            });
        }
    }
    for domain in old.iter().filter(|d| !domains.contains(d)) {
        table.remove(domain.as_str()).map_err(storage)?;
    }
    for domain in domains {
        table
            .insert(domain.as_str(), service.as_str())
            .map_err(storage)?;
    }
    Ok(())
}

fn version_exists(
    txn: &WriteTransaction,
    service: &ServiceName,
    number: u32,
) -> Result<bool, ControlError> {
    let table = txn.open_table(VERSIONS).map_err(storage)?;
    Ok(table
        .get((service.as_str(), number))
        .map_err(storage)?
        .is_some())
}

impl ControlState for RedbState {
    fn create_service(
        &self,
        name: &ServiceName,
        domains: &[DomainPattern],
    ) -> Result<Service, ControlError> {
        self.write(|txn| {
            if load(txn, name).is_ok() {
                return Err(ControlError::ServiceExists(name.as_str().to_owned()));
            }
            claim(txn, name, &[], domains)?;
            let service = Service {
                name: name.clone(),
                domains: domains.to_vec(),
                active: None,
                history: Vec::new(),
                next_version: 1,
                created_at_ms: now_ms(),
            };
            save(txn, &service)?;
            Ok(service)
        })
    }

    fn delete_service(&self, name: &ServiceName) -> Result<(), ControlError> {
        self.write(|txn| {
            let service = load(txn, name)?;
            claim(txn, name, &service.domains, &[])?;
            let mut versions = txn.open_table(VERSIONS).map_err(storage)?;
            for number in 1..service.next_version {
                versions.remove((name.as_str(), number)).map_err(storage)?;
            }
            let mut services = txn.open_table(SERVICES).map_err(storage)?;
            services.remove(name.as_str()).map_err(storage)?;
            Ok(())
        })
    }

    fn services(&self) -> Result<Vec<Service>, ControlError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(SERVICES).map_err(storage)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(storage)? {
            let (_, bytes) = row.map_err(storage)?;
            out.push(serde_json::from_slice(bytes.value()).map_err(storage)?);
        }
        Ok(out)
    }

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, ControlError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(SERVICES).map_err(storage)?;
        let found = table.get(name.as_str()).map_err(storage)?;
        found
            .map(|bytes| serde_json::from_slice(bytes.value()).map_err(storage))
            .transpose()
    }

    fn set_domains(
        &self,
        name: &ServiceName,
        domains: &[DomainPattern],
    ) -> Result<Service, ControlError> {
        self.write(|txn| {
            let mut service = load(txn, name)?;
            claim(txn, name, &service.domains, domains)?;
            service.domains = domains.to_vec();
            save(txn, &service)?;
            Ok(service)
        })
    }

    fn add_version(
        &self,
        name: &ServiceName,
        version: NewVersion,
    ) -> Result<Version, ControlError> {
        self.write(|txn| {
            let mut service = load(txn, name)?;
            let record = Version {
                number: service.next_version,
                sha256: version.sha256,
                size: version.size,
                uploaded_by: version.uploaded_by,
                uploaded_at_ms: now_ms(),
            };
            service.next_version += 1;
            let bytes = serde_json::to_vec(&record).map_err(storage)?;
            txn.open_table(VERSIONS)
                .map_err(storage)?
                .insert((name.as_str(), record.number), bytes.as_slice())
                .map_err(storage)?;
            save(txn, &service)?;
            Ok(record)
        })
    }

    fn delete_version(&self, name: &ServiceName, number: u32) -> Result<Version, ControlError> {
        self.write(|txn| {
            let mut service = load(txn, name)?;
            if service.active == Some(number) {
                return Err(ControlError::VersionActive {
                    service: name.as_str().to_owned(),
                    version: number,
                });
            }
            let removed = txn
                .open_table(VERSIONS)
                .map_err(storage)?
                .remove((name.as_str(), number))
                .map_err(storage)?
                .map(|bytes| serde_json::from_slice::<Version>(bytes.value()).map_err(storage))
                .transpose()?;
            let Some(version) = removed else {
                return Err(ControlError::NoSuchVersion {
                    service: name.as_str().to_owned(),
                    version: number,
                });
            };
            service.history.retain(|&n| n != number);
            save(txn, &service)?;
            Ok(version)
        })
    }

    fn versions(&self, name: &ServiceName) -> Result<Vec<Version>, ControlError> {
        let txn = self.db.begin_read().map_err(storage)?;
        if txn
            .open_table(SERVICES)
            .map_err(storage)?
            .get(name.as_str())
            .map_err(storage)?
            .is_none()
        {
            return Err(ControlError::NoSuchService(name.as_str().to_owned()));
        }
        let table = txn.open_table(VERSIONS).map_err(storage)?;
        let mut out = Vec::new();
        let rows = table
            .range((name.as_str(), 0)..=(name.as_str(), u32::MAX))
            .map_err(storage)?;
        for row in rows {
            let (_, bytes) = row.map_err(storage)?;
            out.push(serde_json::from_slice(bytes.value()).map_err(storage)?);
        }
        Ok(out)
    }

    fn activate(&self, name: &ServiceName, number: u32) -> Result<Service, ControlError> {
        self.write(|txn| {
            let mut service = load(txn, name)?;
            if !version_exists(txn, name, number)? {
                return Err(ControlError::NoSuchVersion {
                    service: name.as_str().to_owned(),
                    version: number,
                });
            }
            if service.active == Some(number) {
                return Ok(service);
            }
            if let Some(previous) = service.active.replace(number) {
                service.history.push(previous);
            }
            save(txn, &service)?;
            Ok(service)
        })
    }

    fn rollback(&self, name: &ServiceName) -> Result<Service, ControlError> {
        self.write(|txn| {
            let mut service = load(txn, name)?;
            let previous = service
                .history
                .pop()
                .ok_or_else(|| ControlError::NothingToRollBack(name.as_str().to_owned()))?;
            service.active = Some(previous);
            save(txn, &service)?;
            Ok(service)
        })
    }

    fn add_token(&self, token: TokenRecord) -> Result<(), ControlError> {
        self.write(|txn| {
            let mut table = txn.open_table(TOKENS).map_err(storage)?;
            if table.get(token.id.as_str()).map_err(storage)?.is_some() {
                return Err(ControlError::TokenExists(token.id.clone()));
            }
            let bytes = serde_json::to_vec(&token).map_err(storage)?;
            table
                .insert(token.id.as_str(), bytes.as_slice())
                .map_err(storage)?;
            Ok(())
        })
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, ControlError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TOKENS).map_err(storage)?;
        let found = table.get(id).map_err(storage)?;
        found
            .map(|bytes| serde_json::from_slice(bytes.value()).map_err(storage))
            .transpose()
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, ControlError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TOKENS).map_err(storage)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(storage)? {
            let (_, bytes) = row.map_err(storage)?;
            out.push(serde_json::from_slice(bytes.value()).map_err(storage)?);
        }
        Ok(out)
    }

    fn revoke_token(&self, id: &str) -> Result<bool, ControlError> {
        self.write(|txn| {
            let mut table = txn.open_table(TOKENS).map_err(storage)?;
            let removed = table.remove(id).map_err(storage)?.is_some();
            Ok(removed)
        })
    }
}
