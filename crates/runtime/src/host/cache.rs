//! `verge:edge/cache`: the programmable edge cache over the node's [`Cache`], in the
//! app's namespace (the one its HTTP cache uses, so surrogate-key purges reach both).
//!
//! Objects stream both ways without passing through guest memory unless the guest
//! reads them: `entry.body` hands out the stored chunks, `writer.body` gathers what
//! the guest writes or splices. A transaction's obligation lives in its resource: a
//! guest that traps or drops it unfinished abandons it, and a waiter takes over.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use verge_cache::{
    Cache, CacheError, Fill, Found, Freshness, Key, ObjectMeta, PurgeMode, PurgeTarget,
    Transaction, Usability, VaryRule, Writer,
};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamError, StreamResult};

use super::bindings::cache as wit;

/// Longest key accepted (Fastly's limit).
const MAX_KEY: usize = 4096;
/// Most variant-selecting headers per object.
const MAX_VARY: usize = 16;
/// Longest surrogate key.
const MAX_SURROGATE_KEY: usize = 1024;
/// Most user metadata per object.
const MAX_METADATA: usize = 64 << 10;

/// The per-app state: the node's cache and the app's namespace in it.
pub(crate) struct AppState {
    cache: Cache,
    namespace: Arc<str>,
}

impl AppState {
    pub(crate) fn new(cache: &Cache, app: &str) -> AppState {
        AppState {
            cache: cache.clone(),
            namespace: app.into(),
        }
    }

    fn key(&self, key: &[u8]) -> Result<Key, wit::Error> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(wit::Error::Invalid(format!(
                "a cache key must be 1 to {MAX_KEY} bytes, not {}",
                key.len()
            )));
        }
        Ok(Key::new(
            self.namespace.clone(),
            Bytes::copy_from_slice(key),
        ))
    }
}

/// A found object.
pub struct CacheEntry(Found);

/// An object being written: the cache's writer, shared with the guest's stream.
pub struct CacheWriter {
    writer: Arc<Mutex<Option<Writer>>>,
    body_taken: bool,
}

/// A transactional lookup and, for one caller, the obligation to fill.
pub struct CacheTransaction {
    headers: HeaderMap,
    found: Option<Found>,
    fill: Option<Fill>,
}

/// What a guest call sees.
pub(crate) struct CacheView<'a> {
    pub(crate) app: &'a AppState,
    pub(crate) table: &'a mut ResourceTable,
}

impl HasData for CacheView<'static> {
    type Data<'a> = CacheView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> CacheView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, CacheView<'static>>(linker, view)
}

type Answer<T> = wasmtime::Result<Result<T, wit::Error>>;

fn headers(list: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, wit::Error> {
    let mut map = HeaderMap::with_capacity(list.len());
    for (name, value) in list {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| wit::Error::Invalid(format!("`{name}` is not a header name")))?;
        let value = HeaderValue::from_bytes(&value)
            .map_err(|_| wit::Error::Invalid(format!("the value of `{name}` is not valid")))?;
        map.append(header, value);
    }
    Ok(map)
}

fn meta(options: wit::WriteOptions) -> Result<ObjectMeta, wit::Error> {
    if options.vary_by.len() > MAX_VARY {
        return Err(wit::Error::Invalid(format!(
            "at most {MAX_VARY} vary-by headers"
        )));
    }
    let vary = options
        .vary_by
        .iter()
        .map(|name| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| wit::Error::Invalid(format!("vary-by: `{name}` is not a header name")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for key in &options.surrogate_keys {
        if key.is_empty() || key.len() > MAX_SURROGATE_KEY || key.contains(char::is_whitespace) {
            return Err(wit::Error::Invalid(format!(
                "surrogate key `{}` must be 1 to {MAX_SURROGATE_KEY} bytes without spaces",
                key.escape_debug()
            )));
        }
    }
    if options.user_metadata.len() > MAX_METADATA {
        return Err(wit::Error::Invalid(format!(
            "user metadata is limited to {MAX_METADATA} bytes"
        )));
    }
    let mut meta = ObjectMeta::new(Freshness {
        ttl: Duration::from_millis(options.ttl_ms),
        stale_while_revalidate: Duration::from_millis(options.stale_while_revalidate_ms),
        ..Freshness::default()
    });
    meta.surrogate_keys = options.surrogate_keys;
    meta.vary = VaryRule::new(vary);
    meta.user_metadata = options.user_metadata.into();
    Ok(meta)
}

fn cache_error(e: CacheError) -> wit::Error {
    match e {
        CacheError::TooLarge { limit } => wit::Error::TooLarge(limit),
    }
}

impl CacheView<'_> {
    fn writer(&mut self, writer: Writer) -> wasmtime::Result<Resource<CacheWriter>> {
        Ok(self.table.push(CacheWriter {
            writer: Arc::new(Mutex::new(Some(writer))),
            body_taken: false,
        })?)
    }
}

impl wit::Host for CacheView<'_> {
    async fn lookup(
        &mut self,
        key: Vec<u8>,
        request: Vec<(String, Vec<u8>)>,
    ) -> Answer<Option<Resource<CacheEntry>>> {
        let (key, request) = match (self.app.key(&key), headers(request)) {
            (Ok(k), Ok(h)) => (k, h),
            (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        };
        match self.app.cache.lookup(&key, &request) {
            Some(found) => Ok(Ok(Some(self.table.push(CacheEntry(found))?))),
            None => Ok(Ok(None)),
        }
    }

    async fn insert(
        &mut self,
        key: Vec<u8>,
        request: Vec<(String, Vec<u8>)>,
        options: wit::WriteOptions,
    ) -> Answer<Resource<CacheWriter>> {
        let known = options.known_length;
        let (key, request, meta) = match (self.app.key(&key), headers(request), meta(options)) {
            (Ok(k), Ok(h), Ok(m)) => (k, h, m),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Ok(Err(e)),
        };
        match self.app.cache.insert(&key, meta, &request, known) {
            Ok(writer) => Ok(Ok(self.writer(writer)?)),
            Err(e) => Ok(Err(cache_error(e))),
        }
    }

    async fn purge_surrogate_key(&mut self, key: String, soft: bool) -> Answer<u64> {
        if key.is_empty() || key.len() > MAX_SURROGATE_KEY || key.contains(char::is_whitespace) {
            return Ok(Err(wit::Error::Invalid(format!(
                "surrogate key `{}` must be 1 to {MAX_SURROGATE_KEY} bytes without spaces",
                key.escape_debug()
            ))));
        }
        let purged = self
            .app
            .cache
            .purge_everywhere(
                &self.app.namespace,
                &PurgeTarget::SurrogateKey(key),
                mode(soft),
                FLEET_PURGE_WAIT,
            )
            .await;
        Ok(Ok(purged as u64))
    }

    async fn purge(&mut self, key: Vec<u8>, soft: bool) -> Answer<u64> {
        let key = match self.app.key(&key) {
            Ok(key) => key,
            Err(e) => return Ok(Err(e)),
        };
        let purged = self
            .app
            .cache
            .purge_everywhere(
                &self.app.namespace,
                &PurgeTarget::Key(key),
                mode(soft),
                FLEET_PURGE_WAIT,
            )
            .await;
        Ok(Ok(purged as u64))
    }
}

/// The longest a guest's purge waits for the other live nodes of a fleet to apply it
/// (milliseconds as a rule); past it the purge still reaches them, the guest just no
/// longer waits.
const FLEET_PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

fn mode(soft: bool) -> PurgeMode {
    if soft {
        PurgeMode::Soft
    } else {
        PurgeMode::Hard
    }
}

impl wit::HostEntry for CacheView<'_> {
    async fn state(&mut self, entry: Resource<CacheEntry>) -> wasmtime::Result<wit::ObjectState> {
        Ok(match self.table.get(&entry)?.0.usability() {
            Usability::Fresh => wit::ObjectState::Fresh,
            _ => wit::ObjectState::Stale,
        })
    }

    async fn age_ms(&mut self, entry: Resource<CacheEntry>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&entry)?.0.age().as_millis() as u64)
    }

    async fn remaining_ttl_ms(&mut self, entry: Resource<CacheEntry>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&entry)?.0.remaining_ttl().as_millis() as u64)
    }

    async fn length(&mut self, entry: Resource<CacheEntry>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&entry)?.0.len())
    }

    async fn user_metadata(&mut self, entry: Resource<CacheEntry>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&entry)?.0.meta().user_metadata.to_vec())
    }

    async fn surrogate_keys(
        &mut self,
        entry: Resource<CacheEntry>,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(self.table.get(&entry)?.0.meta().surrogate_keys.clone())
    }

    async fn body(
        &mut self,
        entry: Resource<CacheEntry>,
    ) -> wasmtime::Result<Resource<DynInputStream>> {
        let chunks = self.table.get(&entry)?.0.chunks();
        let stream: DynInputStream = Box::new(ChunkStream {
            chunks,
            next: 0,
            offset: 0,
        });
        Ok(self.table.push(stream)?)
    }

    async fn drop(&mut self, entry: Resource<CacheEntry>) -> wasmtime::Result<()> {
        self.table.delete(entry)?;
        Ok(())
    }
}

impl wit::HostWriter for CacheView<'_> {
    async fn body(&mut self, writer: Resource<CacheWriter>) -> Answer<Resource<DynOutputStream>> {
        let writer = self.table.get_mut(&writer)?;
        if writer.body_taken {
            return Ok(Err(wit::Error::Invalid(
                "the writer's body was already taken".into(),
            )));
        }
        writer.body_taken = true;
        let sink: DynOutputStream = Box::new(ObjectSink(writer.writer.clone()));
        Ok(Ok(self.table.push(sink)?))
    }

    async fn finish(&mut self, writer: Resource<CacheWriter>) -> Answer<()> {
        let writer = self.table.delete(writer)?;
        let taken = writer
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match taken {
            // Not stored only when a purge since the lookup covers it: not an error,
            // the object was already out of date.
            Some(writer) => {
                writer.finish();
                Ok(Ok(()))
            }
            // The stream gave the object up when it outgrew the limit.
            None => Ok(Err(wit::Error::TooLarge(
                self.app.cache.config().max_object_bytes,
            ))),
        }
    }

    async fn drop(&mut self, writer: Resource<CacheWriter>) -> wasmtime::Result<()> {
        // Unfinished: the writer is dropped with it, and nothing is stored.
        self.table.delete(writer)?;
        Ok(())
    }
}

impl wit::HostTransaction for CacheView<'_> {
    async fn lookup(
        &mut self,
        key: Vec<u8>,
        request: Vec<(String, Vec<u8>)>,
    ) -> Answer<Resource<CacheTransaction>> {
        let (key, request) = match (self.app.key(&key), headers(request)) {
            (Ok(k), Ok(h)) => (k, h),
            (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        };
        let (found, fill) = match self.app.cache.transaction(&key, &request).await {
            Transaction::Fresh { found, .. } => (Some(found), None),
            Transaction::Stale { found, refresh } => (Some(found), refresh),
            // An expired object is of no use to a guest: it fetches anew.
            Transaction::Miss { fill, .. } => (None, Some(fill)),
            // The fetch waited for was not cacheable: this caller fetches itself,
            // with nothing to insert.
            Transaction::Pass => (None, None),
        };
        Ok(Ok(self.table.push(CacheTransaction {
            headers: request,
            found,
            fill,
        })?))
    }

    async fn found(
        &mut self,
        tx: Resource<CacheTransaction>,
    ) -> wasmtime::Result<Option<Resource<CacheEntry>>> {
        match self.table.get(&tx)?.found.clone() {
            Some(found) => Ok(Some(self.table.push(CacheEntry(found))?)),
            None => Ok(None),
        }
    }

    async fn must_insert(&mut self, tx: Resource<CacheTransaction>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&tx)?.fill.is_some())
    }

    async fn insert(
        &mut self,
        tx: Resource<CacheTransaction>,
        options: wit::WriteOptions,
    ) -> Answer<Resource<CacheWriter>> {
        let known = options.known_length;
        let meta = match meta(options) {
            Ok(meta) => meta,
            Err(e) => return Ok(Err(e)),
        };
        let tx = self.table.get_mut(&tx)?;
        let Some(fill) = tx.fill.take() else {
            return Ok(Err(wit::Error::Invalid(
                "this transaction has nothing to insert (see must-insert)".into(),
            )));
        };
        let headers = tx.headers.clone();
        match fill.insert(meta, &headers, known) {
            Ok(writer) => Ok(Ok(self.writer(writer)?)),
            Err(e) => Ok(Err(cache_error(e))),
        }
    }

    async fn update(
        &mut self,
        tx: Resource<CacheTransaction>,
        options: wit::WriteOptions,
    ) -> Answer<()> {
        let meta = match meta(options) {
            Ok(meta) => meta,
            Err(e) => return Ok(Err(e)),
        };
        let tx = self.table.get_mut(&tx)?;
        let (Some(found), Some(fill)) = (tx.found.clone(), tx.fill.take()) else {
            return Ok(Err(wit::Error::Invalid(
                "update needs a found object and the obligation to fill".into(),
            )));
        };
        fill.refresh(&found, meta);
        Ok(Ok(()))
    }

    async fn cancel(&mut self, tx: Resource<CacheTransaction>) -> wasmtime::Result<()> {
        // Dropping the fill hands the key over to a waiter.
        self.table.get_mut(&tx)?.fill = None;
        Ok(())
    }

    async fn drop(&mut self, tx: Resource<CacheTransaction>) -> wasmtime::Result<()> {
        self.table.delete(tx)?;
        Ok(())
    }
}

/// A stored body read as a `wasi:io` input stream, chunk by chunk, without copying.
struct ChunkStream {
    chunks: Arc<[Bytes]>,
    next: usize,
    offset: usize,
}

impl wasmtime_wasi_io::streams::InputStream for ChunkStream {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let Some(chunk) = self.chunks.get(self.next) else {
            return Err(StreamError::Closed);
        };
        let end = (self.offset + size).min(chunk.len());
        let piece = chunk.slice(self.offset..end);
        if end == chunk.len() {
            self.next += 1;
            self.offset = 0;
        } else {
            self.offset = end;
        }
        Ok(piece)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi_io::poll::Pollable for ChunkStream {
    async fn ready(&mut self) {}
}

/// The output stream of a [`CacheWriter`].
struct ObjectSink(Arc<Mutex<Option<Writer>>>);

impl wasmtime_wasi_io::streams::OutputStream for ObjectSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut writer = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = writer.as_mut() else {
            return Err(StreamError::Closed);
        };
        if let Err(e) = w.write(bytes) {
            // Too large: the object is given up; `finish` reports it.
            *writer = None;
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "{e}"
            )));
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi_io::poll::Pollable for ObjectSink {
    async fn ready(&mut self) {}
}
