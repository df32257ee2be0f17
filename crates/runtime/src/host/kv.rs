//! The KV store: standard `wasi:keyvalue` (0.2.0-draft2 as Spin has it, and
//! 0.2.0-draft as wasmCloud and Wasmtime's crate have it: store, atomics, batch) and
//! `verge:edge/kv` (TTL, metadata, insert modes, compare-and-swap, prefix listing),
//! both over the node's [`Kv`] service. A guest opens only stores its app declares;
//! each app's stores are their own namespace.
//!
//! Reads run inline (a redb read is a few microseconds); writes wait for durability
//! on a blocking thread, so a slow disk never stalls other requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use verge_store::{InsertMode, InsertOptions, Kv, KvError, Namespace};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi_io::streams::DynInputStream;

use super::bindings::keyvalue as wasi;
use super::bindings::keyvalue_draft as draft;
use super::bindings::kv as edge;
use crate::config::KvStoreConfig;

/// The per-app state: the node's KV service and the stores this app declares.
pub(crate) struct AppState {
    kv: Kv,
    stores: HashMap<String, Namespace>,
}

impl AppState {
    pub(crate) fn new(kv: &Kv, app: &str, stores: &[KvStoreConfig]) -> AppState {
        AppState {
            kv: kv.clone(),
            stores: stores
                .iter()
                .map(|s| (s.name.clone(), Namespace::new(app, &s.name, s.limits)))
                .collect(),
        }
    }

    fn open(&self, name: &str) -> Option<Namespace> {
        self.stores.get(name).cloned()
    }
}

/// An open `verge:edge/kv` store.
pub struct KvStore(Namespace);
/// An open `wasi:keyvalue` 0.2.0-draft2 bucket.
pub struct Bucket(Namespace);
/// An open `wasi:keyvalue` 0.2.0-draft bucket.
pub struct DraftBucket(Namespace);
/// A `wasi:keyvalue` compare-and-swap handle: the key's state when it was made.
pub struct Cas {
    ns: Namespace,
    key: String,
    generation: Option<u64>,
    current: Option<Bytes>,
}

/// A value being written as a stream: the insert's target, and the bytes so far.
pub struct KvWriter {
    ns: Namespace,
    key: String,
    options: InsertOptions,
    buffer: Arc<Mutex<Vec<u8>>>,
    body_taken: bool,
}

/// The output stream of a [`KvWriter`]: collects the value, refusing to grow past
/// the store's value limit.
struct ValueSink {
    buffer: Arc<Mutex<Vec<u8>>>,
    limit: usize,
}

impl wasmtime_wasi_io::streams::OutputStream for ValueSink {
    fn write(&mut self, bytes: Bytes) -> wasmtime_wasi_io::streams::StreamResult<()> {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.len() + bytes.len() > self.limit {
            return Err(wasmtime_wasi_io::streams::StreamError::LastOperationFailed(
                wasmtime::format_err!(
                    "the value grew past the limit: values are limited to {} bytes",
                    self.limit
                ),
            ));
        }
        buffer.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> wasmtime_wasi_io::streams::StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> wasmtime_wasi_io::streams::StreamResult<usize> {
        Ok(1 << 20)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi_io::poll::Pollable for ValueSink {
    async fn ready(&mut self) {}
}

/// What a guest call sees.
pub(crate) struct KvView<'a> {
    pub(crate) app: &'a AppState,
    pub(crate) table: &'a mut ResourceTable,
}

impl HasData for KvView<'static> {
    type Data<'a> = KvView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    edge::add_to_linker::<T, KvView<'static>>(linker, view)?;
    wasi::store::add_to_linker::<T, KvView<'static>>(linker, view)?;
    wasi::atomics::add_to_linker::<T, KvView<'static>>(linker, view)?;
    wasi::batch::add_to_linker::<T, KvView<'static>>(linker, view)?;
    draft::store::add_to_linker::<T, KvView<'static>>(linker, view)?;
    draft::atomics::add_to_linker::<T, KvView<'static>>(linker, view)?;
    draft::batch::add_to_linker::<T, KvView<'static>>(linker, view)?;
    Ok(())
}

/// Runs a write on a blocking thread: redb commits wait for the disk.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, KvError> + Send + 'static,
) -> Result<R, KvError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(KvError::Storage(verge_store::BackendError::other(format!(
            "the write did not finish: {e}"
        ))))
    })
}

fn insert_options(options: edge::InsertOptions) -> InsertOptions {
    InsertOptions {
        mode: match options.mode {
            edge::InsertMode::Overwrite => InsertMode::Overwrite,
            edge::InsertMode::Add => InsertMode::Add,
            edge::InsertMode::Append => InsertMode::Append,
            edge::InsertMode::Prepend => InsertMode::Prepend,
        },
        ttl: options.ttl_ms.map(Duration::from_millis),
        metadata: options.metadata,
        if_generation: options.if_generation,
    }
}

fn edge_error(e: KvError) -> edge::Error {
    match e {
        KvError::Exists => edge::Error::Exists,
        KvError::GenerationMismatch { found, .. } => edge::Error::GenerationMismatch(found),
        KvError::NotANumber | KvError::Overflow => edge::Error::NotANumber(e.to_string()),
        KvError::Storage(e) => edge::Error::Storage(e.to_string()),
        other => edge::Error::Invalid(other.to_string()),
    }
}

fn wasi_error(e: KvError) -> wasi::store::Error {
    wasi::store::Error::Other(e.to_string())
}

type Answer<T, E> = wasmtime::Result<Result<T, E>>;

/// Keys with their values, or `None` for absent ones.
type Found = Vec<(String, Option<Vec<u8>>)>;

// ---- verge:edge/kv ----

impl edge::Host for KvView<'_> {}

impl edge::HostWriter for KvView<'_> {
    async fn body(
        &mut self,
        writer: Resource<KvWriter>,
    ) -> Answer<Resource<wasmtime_wasi_io::streams::DynOutputStream>, edge::Error> {
        let writer = self.table.get_mut(&writer)?;
        if writer.body_taken {
            return Ok(Err(edge::Error::Invalid(
                "the writer's body was already taken".into(),
            )));
        }
        writer.body_taken = true;
        let sink: wasmtime_wasi_io::streams::DynOutputStream = Box::new(ValueSink {
            buffer: writer.buffer.clone(),
            limit: writer.ns.limits.max_value_bytes,
        });
        Ok(Ok(self.table.push(sink)?))
    }

    async fn finish(&mut self, writer: Resource<KvWriter>) -> Answer<u64, edge::Error> {
        let KvWriter {
            ns,
            key,
            options,
            buffer,
            ..
        } = self.table.delete(writer)?;
        let value = std::mem::take(&mut *buffer.lock().unwrap_or_else(|e| e.into_inner()));
        let kv = self.app.kv.clone();
        Ok(
            blocking(move || kv.insert(&ns, &key, Bytes::from(value), options))
                .await
                .map_err(edge_error),
        )
    }

    async fn drop(&mut self, writer: Resource<KvWriter>) -> wasmtime::Result<()> {
        self.table.delete(writer)?;
        Ok(())
    }
}

impl edge::HostStore for KvView<'_> {
    async fn open(&mut self, name: String) -> Answer<Resource<KvStore>, edge::Error> {
        match self.app.open(&name) {
            Some(ns) => Ok(Ok(self.table.push(KvStore(ns))?)),
            None => Ok(Err(edge::Error::NoSuchStore(super::not_declared(
                "KV store",
                &name,
                "kv_stores",
                self.app.stores.keys(),
            )))),
        }
    }

    async fn lookup(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> Answer<Option<edge::Entry>, edge::Error> {
        let ns = &self.table.get(&store)?.0;
        Ok(self
            .app
            .kv
            .lookup(ns, &key)
            .map(|found| {
                found.map(|e| edge::Entry {
                    value: e.value.into(),
                    metadata: e.metadata,
                    generation: e.generation,
                    expires_at_ms: e.expires_at_ms,
                })
            })
            .map_err(edge_error))
    }

    async fn lookup_stream(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> Answer<Option<(edge::EntryInfo, Resource<DynInputStream>)>, edge::Error> {
        let ns = &self.table.get(&store)?.0;
        let entry = match self.app.kv.lookup(ns, &key) {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(edge_error(e))),
        };
        let info = edge::EntryInfo {
            metadata: entry.metadata,
            generation: entry.generation,
            expires_at_ms: entry.expires_at_ms,
            length: entry.value.len() as u64,
        };
        // The host's one copy of the value, handed out in pieces as the guest reads.
        let stream: DynInputStream = Box::new(MemoryInputPipe::new(entry.value));
        Ok(Ok(Some((info, self.table.push(stream)?))))
    }

    async fn insert_stream(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        options: edge::InsertOptions,
    ) -> Answer<Resource<KvWriter>, edge::Error> {
        let ns = self.table.get(&store)?.0.clone();
        // A bad key fails now, not after the whole value was sent.
        if let Err(e) = verge_store::check_key(&key, ns.limits.max_key_bytes) {
            return Ok(Err(edge_error(e)));
        }
        Ok(Ok(self.table.push(KvWriter {
            ns,
            key,
            options: insert_options(options),
            buffer: Arc::default(),
            body_taken: false,
        })?))
    }

    async fn insert(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
        options: edge::InsertOptions,
    ) -> Answer<u64, edge::Error> {
        let ns = self.table.get(&store)?.0.clone();
        let kv = self.app.kv.clone();
        let options = insert_options(options);
        let value = Bytes::from(value);
        Ok(blocking(move || kv.insert(&ns, &key, value, options))
            .await
            .map_err(edge_error))
    }

    async fn delete(&mut self, store: Resource<KvStore>, key: String) -> Answer<bool, edge::Error> {
        let ns = self.table.get(&store)?.0.clone();
        let kv = self.app.kv.clone();
        Ok(blocking(move || kv.delete(&ns, &key))
            .await
            .map_err(edge_error))
    }

    async fn increment(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        delta: i64,
    ) -> Answer<i64, edge::Error> {
        let ns = self.table.get(&store)?.0.clone();
        let kv = self.app.kv.clone();
        Ok(blocking(move || kv.increment(&ns, &key, delta))
            .await
            .map_err(edge_error))
    }

    async fn list(
        &mut self,
        store: Resource<KvStore>,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Answer<edge::ListPage, edge::Error> {
        let ns = &self.table.get(&store)?.0;
        Ok(self
            .app
            .kv
            .list(ns, &prefix, cursor.as_deref(), limit as usize)
            .map(|page| edge::ListPage {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(edge_error))
    }

    async fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

// ---- what the wasi:keyvalue versions share ----

/// The operations both `wasi:keyvalue` versions offer, with the store's own errors;
/// each version's impl only converts types.
impl KvView<'_> {
    fn read(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.app.kv.lookup(ns, key)?.map(|e| e.value.into()))
    }

    fn contains(&self, ns: &Namespace, key: &str) -> Result<bool, KvError> {
        Ok(self.app.kv.lookup(ns, key)?.is_some())
    }

    async fn write(kv: Kv, ns: Namespace, key: String, value: Vec<u8>) -> Result<(), KvError> {
        let value = Bytes::from(value);
        blocking(move || kv.insert(&ns, &key, value, InsertOptions::default()))
            .await
            .map(|_| ())
    }

    async fn remove(kv: Kv, ns: Namespace, key: String) -> Result<(), KvError> {
        blocking(move || kv.delete(&ns, &key)).await.map(|_| ())
    }

    async fn add(kv: Kv, ns: Namespace, key: String, delta: i64) -> Result<i64, KvError> {
        blocking(move || kv.increment(&ns, &key, delta)).await
    }

    fn read_many(&self, ns: &Namespace, keys: Vec<String>) -> Result<Found, KvError> {
        keys.into_iter()
            .map(|key| Ok((key.clone(), self.read(ns, &key)?)))
            .collect()
    }

    async fn write_many(
        kv: Kv,
        ns: Namespace,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), KvError> {
        blocking(move || {
            for (key, value) in key_values {
                kv.insert(&ns, &key, Bytes::from(value), InsertOptions::default())?;
            }
            Ok(())
        })
        .await
    }

    async fn remove_many(kv: Kv, ns: Namespace, keys: Vec<String>) -> Result<(), KvError> {
        blocking(move || {
            for key in keys {
                kv.delete(&ns, &key)?;
            }
            Ok(())
        })
        .await
    }
}

// ---- wasi:keyvalue 0.2.0-draft2 ----

impl wasi::store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>, wasi::store::Error> {
        match self.app.open(&identifier) {
            Some(ns) => Ok(Ok(self.table.push(Bucket(ns))?)),
            None => Ok(Err(wasi::store::Error::NoSuchStore)),
        }
    }
}

impl wasi::store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Answer<Option<Vec<u8>>, wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(self.read(&ns, &key).map_err(wasi_error))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Answer<(), wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::write(self.app.kv.clone(), ns, key, value)
            .await
            .map_err(wasi_error))
    }

    async fn delete(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Answer<(), wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::remove(self.app.kv.clone(), ns, key)
            .await
            .map_err(wasi_error))
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Answer<bool, wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(self.contains(&ns, &key).map_err(wasi_error))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Answer<wasi::store::KeyResponse, wasi::store::Error> {
        let ns = &self.table.get(&bucket)?.0;
        Ok(self
            .app
            .kv
            .list(ns, "", cursor.as_deref(), verge_store::MAX_LIST_LIMIT)
            .map(|page| wasi::store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(wasi_error))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

// ---- wasi:keyvalue/atomics ----

impl KvView<'_> {
    /// A CAS handle at the key's current state.
    fn cas_at(&mut self, ns: Namespace, key: String) -> Answer<Resource<Cas>, wasi::store::Error> {
        let current = match self.app.kv.lookup(&ns, &key) {
            Ok(current) => current,
            Err(e) => return Ok(Err(wasi_error(e))),
        };
        Ok(Ok(self.table.push(Cas {
            ns,
            key,
            generation: current.as_ref().map(|e| e.generation),
            current: current.map(|e| e.value),
        })?))
    }
}

impl wasi::atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Answer<i64, wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::add(self.app.kv.clone(), ns, key, delta)
            .await
            .map_err(wasi_error))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> Answer<(), wasi::atomics::CasError> {
        let Cas {
            ns,
            key,
            generation,
            ..
        } = self.table.delete(cas)?;
        let kv = self.app.kv.clone();
        let options = InsertOptions {
            // An absent key must still be absent; a present one unchanged.
            mode: if generation.is_none() {
                InsertMode::Add
            } else {
                InsertMode::Overwrite
            },
            if_generation: generation,
            ..InsertOptions::default()
        };
        let (ns2, key2) = (ns.clone(), key.clone());
        let value = Bytes::from(value);
        match blocking(move || kv.insert(&ns2, &key2, value, options)).await {
            Ok(_) => Ok(Ok(())),
            Err(KvError::GenerationMismatch { .. } | KvError::Exists) => {
                match self.cas_at(ns, key)? {
                    Ok(fresh) => Ok(Err(wasi::atomics::CasError::CasFailed(fresh))),
                    Err(e) => Ok(Err(wasi::atomics::CasError::StoreError(e))),
                }
            }
            Err(e) => Ok(Err(wasi::atomics::CasError::StoreError(wasi_error(e)))),
        }
    }
}

impl wasi::atomics::HostCas for KvView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Answer<Resource<Cas>, wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        self.cas_at(ns, key)
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Answer<Option<Vec<u8>>, wasi::store::Error> {
        Ok(Ok(self.table.get(&cas)?.current.clone().map(Into::into)))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl wasi::batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Found, wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(self.read_many(&ns, keys).map_err(wasi_error))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<(), wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::write_many(self.app.kv.clone(), ns, key_values)
            .await
            .map_err(wasi_error))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<(), wasi::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::remove_many(self.app.kv.clone(), ns, keys)
            .await
            .map_err(wasi_error))
    }
}

// ---- wasi:keyvalue 0.2.0-draft ----
//
// The same stores through the earlier draft's types: an unsigned counter, a numeric
// list cursor (the number of keys already listed), `get-many` without the key on a
// miss, no compare-and-swap.

fn draft_error(e: KvError) -> draft::store::Error {
    draft::store::Error::Other(e.to_string())
}

impl draft::store::Host for KvView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> Answer<Resource<DraftBucket>, draft::store::Error> {
        match self.app.open(&identifier) {
            Some(ns) => Ok(Ok(self.table.push(DraftBucket(ns))?)),
            None => Ok(Err(draft::store::Error::NoSuchStore)),
        }
    }
}

impl draft::store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<DraftBucket>,
        key: String,
    ) -> Answer<Option<Vec<u8>>, draft::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(self.read(&ns, &key).map_err(draft_error))
    }

    async fn set(
        &mut self,
        bucket: Resource<DraftBucket>,
        key: String,
        value: Vec<u8>,
    ) -> Answer<(), draft::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::write(self.app.kv.clone(), ns, key, value)
            .await
            .map_err(draft_error))
    }

    async fn delete(
        &mut self,
        bucket: Resource<DraftBucket>,
        key: String,
    ) -> Answer<(), draft::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::remove(self.app.kv.clone(), ns, key)
            .await
            .map_err(draft_error))
    }

    async fn exists(
        &mut self,
        bucket: Resource<DraftBucket>,
        key: String,
    ) -> Answer<bool, draft::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(self.contains(&ns, &key).map_err(draft_error))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<DraftBucket>,
        cursor: Option<u64>,
    ) -> Answer<draft::store::KeyResponse, draft::store::Error> {
        let ns = &self.table.get(&bucket)?.0;
        let page_size = verge_store::MAX_LIST_LIMIT;
        let mut skip = cursor.unwrap_or(0);
        let mut after: Option<String> = None;
        // Walk to the offset a page at a time, then take one page.
        loop {
            let want = if skip > 0 {
                (skip as usize).min(page_size)
            } else {
                page_size
            };
            let page = match self.app.kv.list(ns, "", after.as_deref(), want) {
                Ok(page) => page,
                Err(e) => return Ok(Err(draft_error(e))),
            };
            if skip == 0 || page.cursor.is_none() {
                let listed = cursor.unwrap_or(0) + page.keys.len() as u64;
                let more = page.cursor.is_some() && skip == 0;
                let keys = if skip == 0 { page.keys } else { Vec::new() };
                return Ok(Ok(draft::store::KeyResponse {
                    keys,
                    cursor: more.then_some(listed),
                }));
            }
            skip -= page.keys.len() as u64;
            after = page.cursor;
        }
    }

    async fn drop(&mut self, bucket: Resource<DraftBucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl draft::atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<DraftBucket>,
        key: String,
        delta: u64,
    ) -> Answer<u64, draft::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        let Ok(delta) = i64::try_from(delta) else {
            return Ok(Err(draft::store::Error::Other(format!(
                "delta {delta} is over the counter's range"
            ))));
        };
        Ok(match Self::add(self.app.kv.clone(), ns, key, delta).await {
            Ok(sum) => u64::try_from(sum).map_err(|_| {
                draft::store::Error::Other(format!("the counter is negative ({sum})"))
            }),
            Err(e) => Err(draft_error(e)),
        })
    }
}

impl draft::batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<DraftBucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>, draft::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(self
            .read_many(&ns, keys)
            .map(|found| {
                found
                    .into_iter()
                    .map(|(key, value)| value.map(|v| (key, v)))
                    .collect()
            })
            .map_err(draft_error))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<DraftBucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<(), draft::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::write_many(self.app.kv.clone(), ns, key_values)
            .await
            .map_err(draft_error))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<DraftBucket>,
        keys: Vec<String>,
    ) -> Answer<(), draft::store::Error> {
        let ns = self.table.get(&bucket)?.0.clone();
        Ok(Self::remove_many(self.app.kv.clone(), ns, keys)
            .await
            .map_err(draft_error))
    }
}
