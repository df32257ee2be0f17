//! The control plane's rules, once, over any [`ControlStore`]: a domain serves one
//! service, versions number up, the active version cannot be deleted, a rollback
//! walks back the activations. Every change is a compare-and-swap on what it read,
//! so two nodes changing one service at once never overwrite each other: a change
//! that lost to an unrelated one (an upload bumping the version counter) is retried,
//! one that lost to a change of the same thing (two activations) is refused with
//! [`ControlError::Conflict`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use verge_manifest::DomainPattern;

use crate::store::{Change, ControlStore, Entry, Expect};
use crate::{ControlError, NewVersion, Service, ServiceName, TokenRecord, Version, keys};

/// Retries of a change that lost to unrelated concurrent changes.
const RETRIES: usize = 16;

/// The control state: services, versions, domains, tokens.
#[derive(Clone)]
pub struct Control {
    store: Arc<dyn ControlStore>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, entry: &Entry) -> Result<T, ControlError> {
    serde_json::from_slice(&entry.value)
        .map_err(|e| ControlError::other(format!("the record `{key}` is damaged: {e}")))
}

fn encode(value: &impl serde::Serialize) -> Result<Vec<u8>, ControlError> {
    serde_json::to_vec(value).map_err(ControlError::other)
}

fn no_such_service(name: &ServiceName) -> ControlError {
    ControlError::NoSuchService(name.as_str().to_owned())
}

/// A service record as the store holds it, with its revision filled in.
fn service_of(key: &str, entry: &Entry) -> Result<Service, ControlError> {
    let mut service: Service = decode(key, entry)?;
    service.revision = entry.revision;
    Ok(service)
}

impl Control {
    pub fn new(store: Arc<dyn ControlStore>) -> Control {
        Control { store }
    }

    /// The service a change of the feed names and its record at that change: `None`
    /// for a change of another key, `Some(None)` for a deleted service. A reader of
    /// the feed applies this rather than reading the service again, since a read may
    /// be answered by a copy that lags the feed (a fleet node's replica while cut off).
    pub fn service_in(change: &Change) -> Option<Result<Option<Service>, ControlError>> {
        keys::service_name(&change.key)?;
        Some(match &change.value {
            None => Ok(None),
            Some(value) => {
                let entry = Entry {
                    value: value.clone(),
                    revision: change.revision,
                };
                service_of(&change.key, &entry).map(Some)
            }
        })
    }

    /// The storage underneath, for its change feed.
    pub fn store(&self) -> &Arc<dyn ControlStore> {
        &self.store
    }

    pub async fn service(&self, name: &ServiceName) -> Result<Option<Service>, ControlError> {
        let key = keys::service(name);
        self.store
            .get(&key)
            .await?
            .map(|e| service_of(&key, &e))
            .transpose()
    }

    async fn existing(&self, name: &ServiceName) -> Result<Service, ControlError> {
        self.service(name)
            .await?
            .ok_or_else(|| no_such_service(name))
    }

    pub async fn services(&self) -> Result<Vec<Service>, ControlError> {
        let rows = self.store.list(keys::SERVICES).await?;
        rows.iter().map(|(k, e)| service_of(k, e)).collect()
    }

    /// Writes `service` over the revision it was read at; the written record.
    async fn save(&self, mut service: Service) -> Result<Service, ControlError> {
        let key = keys::service(&service.name);
        let revision = self
            .store
            .put(&key, encode(&service)?, Expect::Revision(service.revision))
            .await?;
        service.revision = revision;
        Ok(service)
    }

    /// Takes `domain` for `service`. A domain whose owner no longer exists (a delete
    /// that stopped half-way) is taken over; one another service holds is refused.
    /// Whether it was newly taken (so a failed change gives it back).
    async fn claim(
        &self,
        service: &ServiceName,
        domain: &DomainPattern,
    ) -> Result<bool, ControlError> {
        let key = keys::domain_of(domain.as_str());
        for _ in 0..RETRIES {
            let owner = match self.store.get(&key).await? {
                None => {
                    match self
                        .store
                        .put(&key, service.as_str().as_bytes().to_vec(), Expect::Absent)
                        .await
                    {
                        Ok(_) => return Ok(true),
                        Err(ControlError::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Some(owner) => owner,
            };
            let owner_name = String::from_utf8_lossy(&owner.value).into_owned();
            if owner_name == service.as_str() {
                return Ok(false);
            }
            let orphaned = match ServiceName::new(&owner_name) {
                Ok(owner) => self.service(&owner).await?.is_none(),
                Err(_) => true,
            };
            if !orphaned {
                return Err(ControlError::DomainTaken {
                    domain: domain.as_str().to_owned(),
                    owner: owner_name,
                });
            }
            match self
                .store
                .put(
                    &key,
                    service.as_str().as_bytes().to_vec(),
                    Expect::Revision(owner.revision),
                )
                .await
            {
                Ok(_) => return Ok(true),
                Err(ControlError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ControlError::Conflict(format!(
            "the domain `{}` kept changing while `{}` claimed it",
            domain.as_str(),
            service.as_str()
        )))
    }

    /// Gives back domains `service` holds (those another service took are left).
    async fn release(
        &self,
        service: &ServiceName,
        domains: &[DomainPattern],
    ) -> Result<(), ControlError> {
        for domain in domains {
            let key = keys::domain_of(domain.as_str());
            if let Some(owner) = self.store.get(&key).await?
                && owner.value == service.as_str().as_bytes()
            {
                match self
                    .store
                    .delete(&key, Expect::Revision(owner.revision))
                    .await
                {
                    Ok(_) | Err(ControlError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Takes every domain in `domains`, or none of them.
    async fn claim_all(
        &self,
        service: &ServiceName,
        domains: &[DomainPattern],
    ) -> Result<Vec<DomainPattern>, ControlError> {
        let mut taken = Vec::new();
        for domain in domains {
            match self.claim(service, domain).await {
                Ok(true) => taken.push(domain.clone()),
                Ok(false) => {}
                Err(e) => {
                    self.release(service, &taken).await?;
                    return Err(e);
                }
            }
        }
        Ok(taken)
    }

    /// Creates a service answering `domains`, none of which another service has.
    pub async fn create_service(
        &self,
        name: &ServiceName,
        domains: &[DomainPattern],
    ) -> Result<Service, ControlError> {
        if self.service(name).await?.is_some() {
            return Err(ControlError::ServiceExists(name.as_str().to_owned()));
        }
        let taken = self.claim_all(name, domains).await?;
        // Versions of an earlier service of this name (a delete that stopped half-way).
        for (key, entry) in self.store.list(&keys::versions_of(name.as_str())).await? {
            let _ = self
                .store
                .delete(&key, Expect::Revision(entry.revision))
                .await;
        }
        let mut service = Service {
            name: name.clone(),
            domains: domains.to_vec(),
            active: None,
            history: Vec::new(),
            next_version: 1,
            created_at_ms: now_ms(),
            revision: 0,
        };
        let key = keys::service(name);
        match self
            .store
            .put(&key, encode(&service)?, Expect::Absent)
            .await
        {
            Ok(revision) => {
                service.revision = revision;
                Ok(service)
            }
            Err(e) => {
                self.release(name, &taken).await?;
                Err(match e {
                    ControlError::Conflict(_) => {
                        ControlError::ServiceExists(name.as_str().to_owned())
                    }
                    other => other,
                })
            }
        }
    }

    /// Deletes a service, its versions' records and its domains.
    pub async fn delete_service(&self, name: &ServiceName) -> Result<u64, ControlError> {
        let service = self.existing(name).await?;
        let revision = self
            .store
            .delete(&keys::service(name), Expect::Revision(service.revision))
            .await
            .map_err(|e| match e {
                ControlError::Conflict(_) => ControlError::Conflict(format!(
                    "service `{}` changed while it was being deleted; look and try again",
                    name.as_str()
                )),
                other => other,
            })?;
        self.release(name, &service.domains).await?;
        for (key, entry) in self.store.list(&keys::versions_of(name.as_str())).await? {
            match self
                .store
                .delete(&key, Expect::Revision(entry.revision))
                .await
            {
                Ok(_) | Err(ControlError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(revision)
    }

    /// Replaces the domains a service answers.
    pub async fn set_domains(
        &self,
        name: &ServiceName,
        domains: &[DomainPattern],
    ) -> Result<Service, ControlError> {
        let mut service = self.existing(name).await?;
        let taken = self.claim_all(name, domains).await?;
        let old = std::mem::replace(&mut service.domains, domains.to_vec());
        match self.save(service).await {
            Ok(saved) => {
                let dropped: Vec<DomainPattern> =
                    old.into_iter().filter(|d| !domains.contains(d)).collect();
                self.release(name, &dropped).await?;
                Ok(saved)
            }
            Err(e) => {
                self.release(name, &taken).await?;
                Err(e)
            }
        }
    }

    /// Records an uploaded package as the service's next version (not active yet).
    pub async fn add_version(
        &self,
        name: &ServiceName,
        version: NewVersion,
    ) -> Result<Version, ControlError> {
        for _ in 0..RETRIES {
            let mut service = self.existing(name).await?;
            let number = service.next_version;
            service.next_version += 1;
            match self.save(service).await {
                Ok(_) => {}
                Err(ControlError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
            let record = Version {
                number,
                sha256: version.sha256,
                size: version.size,
                uploaded_by: version.uploaded_by,
                uploaded_at_ms: now_ms(),
            };
            self.store
                .put(
                    &keys::version_of(name.as_str(), number),
                    encode(&record)?,
                    Expect::Absent,
                )
                .await?;
            return Ok(record);
        }
        Err(ControlError::Conflict(format!(
            "service `{}` kept changing while a version was recorded",
            name.as_str()
        )))
    }

    /// The service's versions, oldest first.
    pub async fn versions(&self, name: &ServiceName) -> Result<Vec<Version>, ControlError> {
        self.existing(name).await?;
        let rows = self.store.list(&keys::versions_of(name.as_str())).await?;
        rows.iter().map(|(k, e)| decode(k, e)).collect()
    }

    /// One version's record: a single read, where [`Control::versions`] lists
    /// them all (a listing is a consumer on JetStream, slower by far).
    pub async fn version(
        &self,
        name: &ServiceName,
        number: u32,
    ) -> Result<Option<Version>, ControlError> {
        let key = keys::version_of(name.as_str(), number);
        self.store
            .get(&key)
            .await?
            .map(|e| decode(&key, &e))
            .transpose()
    }

    /// Changes the service with `change` over the revision it read, retrying when it
    /// lost to a change that left `active` and `history` alone, refusing with
    /// [`ControlError::Conflict`] when it lost to one that moved them.
    async fn change_activation(
        &self,
        name: &ServiceName,
        what: &str,
        change: impl Fn(&mut Service) -> Result<(), ControlError>,
    ) -> Result<Service, ControlError> {
        let first = self.existing(name).await?;
        let mut service = first.clone();
        for _ in 0..RETRIES {
            if (service.active, &service.history) != (first.active, &first.history) {
                break;
            }
            change(&mut service)?;
            match self.save(service).await {
                Ok(saved) => return Ok(saved),
                Err(ControlError::Conflict(_)) => service = self.existing(name).await?,
                Err(e) => return Err(e),
            }
        }
        Err(ControlError::Conflict(format!(
            "another change to the active version of service `{}` won while this one {what}; \
             look at the service and try again",
            name.as_str()
        )))
    }

    /// Makes `number` the active version.
    pub async fn activate(&self, name: &ServiceName, number: u32) -> Result<Service, ControlError> {
        if self.version(name, number).await?.is_none() {
            self.existing(name).await?;
            return Err(ControlError::NoSuchVersion {
                service: name.as_str().to_owned(),
                version: number,
            });
        }
        let current = self.existing(name).await?;
        if current.active == Some(number) {
            return Ok(current);
        }
        self.change_activation(name, &format!("activated version {number}"), |service| {
            if let Some(previous) = service.active.replace(number) {
                service.history.push(previous);
            }
            Ok(())
        })
        .await
    }

    /// Makes the version active before the current one active again.
    pub async fn rollback(&self, name: &ServiceName) -> Result<Service, ControlError> {
        self.change_activation(name, "rolled back", |service| {
            let previous = service
                .history
                .pop()
                .ok_or_else(|| ControlError::NothingToRollBack(service.name.as_str().to_owned()))?;
            service.active = Some(previous);
            Ok(())
        })
        .await
    }

    /// Deletes a version that is not the active one (and forgets it as a rollback
    /// target); the record it was.
    pub async fn delete_version(
        &self,
        name: &ServiceName,
        number: u32,
    ) -> Result<Version, ControlError> {
        let key = keys::version_of(name.as_str(), number);
        let Some(entry) = self.store.get(&key).await? else {
            self.existing(name).await?;
            return Err(ControlError::NoSuchVersion {
                service: name.as_str().to_owned(),
                version: number,
            });
        };
        let version: Version = decode(&key, &entry)?;
        // Through the service record, so that an activation of this version racing
        // the delete loses one way or the other.
        self.change_activation(name, &format!("deleted version {number}"), |service| {
            if service.active == Some(number) {
                return Err(ControlError::VersionActive {
                    service: name.as_str().to_owned(),
                    version: number,
                });
            }
            service.history.retain(|&n| n != number);
            Ok(())
        })
        .await?;
        match self
            .store
            .delete(&key, Expect::Revision(entry.revision))
            .await
        {
            Ok(_) => Ok(version),
            Err(ControlError::Conflict(_)) => Err(ControlError::NoSuchVersion {
                service: name.as_str().to_owned(),
                version: number,
            }),
            Err(e) => Err(e),
        }
    }

    /// Records an admin token (its id must be new).
    pub async fn add_token(&self, token: TokenRecord) -> Result<(), ControlError> {
        match self
            .store
            .put(&keys::token(&token.id), encode(&token)?, Expect::Absent)
            .await
        {
            Ok(_) => Ok(()),
            Err(ControlError::Conflict(_)) => Err(ControlError::TokenExists(token.id)),
            Err(e) => Err(e),
        }
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>, ControlError> {
        let key = keys::token(id);
        self.store
            .get(&key)
            .await?
            .map(|e| decode(&key, &e))
            .transpose()
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, ControlError> {
        let rows = self.store.list(keys::TOKENS).await?;
        rows.iter().map(|(k, e)| decode(k, e)).collect()
    }

    /// Revokes a token; whether it existed.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, ControlError> {
        let key = keys::token(id);
        let Some(entry) = self.store.get(&key).await? else {
            return Ok(false);
        };
        match self
            .store
            .delete(&key, Expect::Revision(entry.revision))
            .await
        {
            Ok(_) => Ok(true),
            Err(ControlError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
