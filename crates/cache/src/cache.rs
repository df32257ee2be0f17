//! The cache: lookups, transactional lookups that collapse concurrent misses,
//! streamed inserts, and purges.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::sync::watch;

use crate::disk::{DiskConfig, DiskTier};
use crate::key::Key;
use crate::object::{Found, Object, ObjectMeta, Stored, Usability};
use crate::purge::{Purge, PurgeSink};
use crate::tier::{Entry, Tier};

/// How big the cache may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Bytes of bodies, headers and metadata kept in memory.
    pub memory_bytes: u64,
    /// The largest object stored; larger ones pass through uncached.
    pub max_object_bytes: u64,
    /// A disk tier behind the memory tier, if any.
    pub disk: Option<DiskConfig>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_bytes: 256 << 20,
            max_object_bytes: 32 << 20,
            disk: None,
        }
    }
}

/// The node's cache, shared by every app (each in its own namespace). Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    config: CacheConfig,
    memory: Tier,
    disk: Option<DiskTier>,
    /// Keys whose last fetch was not cacheable ("hit-for-pass"): lookups pass at once
    /// instead of queueing behind a fetch that will not be shared.
    pass_marks: moka::sync::Cache<Key, ()>,
    flights: Mutex<HashMap<Key, Arc<Flight>>>,
    purges: Mutex<PurgeLog>,
    /// Where this node's purges go once applied (a fleet's publisher).
    sink: OnceLock<Arc<dyn PurgeSink>>,
    /// The sequence of the last purge applied from another node.
    remote_sequence: AtomicU64,
    /// While set, lookups find nothing and transactions pass (a fleet node catching
    /// up on purges it missed): requests go to the app, nothing is stored.
    hits_held: std::sync::atomic::AtomicBool,
    stats: Counters,
}

/// What to purge within one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeTarget {
    /// Every variant stored under one key (a URL's key for HTTP objects).
    Key(Key),
    /// Every object carrying this surrogate key.
    SurrogateKey(String),
    /// Everything.
    All,
}

/// Hard purges remove objects; soft purges mark them stale, so they can still be
/// served within `stale-while-revalidate` / `stale-if-error` and revalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PurgeMode {
    Hard,
    Soft,
}

/// The cache refused an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("the object is larger than the cache's object limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

/// What a transactional lookup decided.
#[derive(Debug)]
pub enum Transaction {
    /// A fresh object: serve it.
    Fresh { found: Found, collapsed: bool },
    /// A stale object inside `stale-while-revalidate`: serve it. One caller also gets
    /// the obligation to refresh it.
    Stale { found: Found, refresh: Option<Fill> },
    /// Nothing usable: this caller must fetch and then insert or abandon (dropping the
    /// [`Fill`] abandons, handing over to a waiter). `stale` is an object that may serve
    /// as the base of a conditional refresh or, within `stale-if-error`, as the answer
    /// when the fetch fails.
    Miss { stale: Option<Found>, fill: Fill },
    /// The fetch this caller waited for was not cacheable: fetch alone, uncached.
    Pass,
}

/// What [`Cache::lead`] found.
enum Lead {
    /// Nobody is fetching: this caller does.
    Fill(Fill),
    /// Somebody is: wait for them.
    Wait(watch::Receiver<FlightState>),
    /// A usable object was stored meanwhile.
    Stored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlightState {
    Running,
    Stored,
    Abandoned,
    Uncacheable,
}

struct Flight {
    state: watch::Sender<FlightState>,
}

/// The most recent purges, for fills that started before them.
#[derive(Default)]
struct PurgeLog {
    epoch: u64,
    recent: VecDeque<PurgeRecord>,
}

struct PurgeRecord {
    epoch: u64,
    namespace: Arc<str>,
    target: PurgeTarget,
    mode: PurgeMode,
}

/// Purges remembered for fills in flight; a fill older than all of them is dropped.
const PURGE_LOG_LEN: usize = 1024;

/// How long a key stays hit-for-pass after an uncacheable fetch.
const PASS_MARK_TTL: std::time::Duration = std::time::Duration::from_secs(120);
/// Most hit-for-pass keys remembered.
const PASS_MARKS: u64 = 100_000;

#[derive(Default)]
struct Counters {
    hit: AtomicU64,
    miss: AtomicU64,
    stale: AtomicU64,
    collapsed: AtomicU64,
    pass: AtomicU64,
    purge: AtomicU64,
    stored: AtomicU64,
}

/// Counts since the cache was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hit: u64,
    pub miss: u64,
    pub stale: u64,
    pub collapsed: u64,
    pub pass: u64,
    pub purge: u64,
    /// Objects stored (inserts and refreshes).
    pub stored: u64,
    /// Bytes held in memory.
    pub memory_bytes: u64,
    /// Keys held in memory.
    pub keys: u64,
    /// Bytes of bodies on disk (0 without a disk tier).
    pub disk_bytes: u64,
    /// Keys on disk.
    pub disk_keys: u64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Cache {
    /// A cache with only a memory tier (any `disk` in `config` is ignored; see
    /// [`Cache::open`]).
    pub fn new(config: CacheConfig) -> Cache {
        Cache::open(CacheConfig {
            disk: None,
            ..config
        })
        .expect("a cache without a disk tier opens no files")
    }

    /// A cache with the tiers `config` asks for; fails when the disk tier's directory
    /// cannot be prepared.
    pub fn open(config: CacheConfig) -> std::io::Result<Cache> {
        let mut disk_error = None;
        let inner = Arc::new_cyclic(|weak| {
            let disk = config.disk.as_ref().and_then(|d| {
                DiskTier::open(d, weak.clone())
                    .map_err(|e| disk_error = Some(e))
                    .ok()
            });
            Inner {
                memory: Tier::new(config.memory_bytes),
                disk,
                pass_marks: moka::sync::Cache::builder()
                    .max_capacity(PASS_MARKS)
                    .time_to_live(PASS_MARK_TTL)
                    .build(),
                flights: Mutex::new(HashMap::new()),
                purges: Mutex::new(PurgeLog::default()),
                sink: OnceLock::new(),
                remote_sequence: AtomicU64::new(0),
                hits_held: Default::default(),
                stats: Counters::default(),
                config,
            }
        });
        match disk_error {
            Some(e) => Err(e),
            None => Ok(Cache { inner }),
        }
    }

    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// The newest variant under `key` that matches the request's varied headers, in
    /// whatever state it is.
    pub fn find(&self, key: &Key, request: &HeaderMap) -> Option<Found> {
        let matching = |entry: &Entry| {
            entry
                .variants
                .iter()
                .find(|v| {
                    v.meta.vary.is_empty() || v.meta.vary.secondary_key(request) == v.secondary
                })
                .cloned()
        };
        let object = match self.inner.memory.get(key).and_then(|e| matching(&e)) {
            Some(object) => object,
            None => {
                // Evicted from memory, perhaps still on disk: read it back, and keep
                // it in memory again unless a purge since this lookup covers it.
                let disk = self.inner.disk.as_ref()?;
                let epoch = self.purge_epoch();
                let on_disk = matching(&*disk.index.get(key)?)?;
                let body = on_disk.body.chunks();
                if body.is_empty() && on_disk.len > 0 {
                    return None;
                }
                let object = on_disk.moved_to(Stored::Memory(body));
                self.inner.commit(key, object, epoch, false)?
            }
        };
        Some(Found {
            object,
            now: Instant::now(),
        })
    }

    /// A plain lookup: a usable (fresh, or stale within `stale-while-revalidate`)
    /// object, counted as a hit or a miss.
    pub fn lookup(&self, key: &Key, request: &HeaderMap) -> Option<Found> {
        if self.hits_held() {
            bump(&self.inner.stats.miss);
            return None;
        }
        let found = self.find(key, request).filter(|f| {
            matches!(
                f.usability(),
                Usability::Fresh | Usability::StaleWhileRevalidate
            )
        });
        bump(match &found {
            Some(_) => &self.inner.stats.hit,
            None => &self.inner.stats.miss,
        });
        found
    }

    /// A lookup that collapses concurrent misses of one key into one fetch: the first
    /// caller gets [`Transaction::Miss`], the others wait for it to insert or give up.
    pub async fn transaction(&self, key: &Key, request: &HeaderMap) -> Transaction {
        let stats = &self.inner.stats;
        // Held: the request goes to the app and nothing is stored (a fill now could
        // be covered by a purge not applied yet).
        if self.hits_held() {
            bump(&stats.pass);
            return Transaction::Pass;
        }
        let mut collapsed = false;
        loop {
            let found = self.find(key, request);
            if let Some(found) = &found {
                match found.usability() {
                    Usability::Fresh => {
                        bump(if collapsed {
                            &stats.collapsed
                        } else {
                            &stats.hit
                        });
                        return Transaction::Fresh {
                            found: found.clone(),
                            collapsed,
                        };
                    }
                    Usability::StaleWhileRevalidate => {
                        bump(&stats.stale);
                        let refresh = match self.lead(key, None) {
                            Lead::Fill(fill) => Some(fill),
                            Lead::Wait(_) | Lead::Stored => None,
                        };
                        return Transaction::Stale {
                            found: found.clone(),
                            refresh,
                        };
                    }
                    Usability::StaleIfError | Usability::Expired => {}
                }
            }
            if self.inner.pass_marks.contains_key(key) {
                bump(&stats.pass);
                return Transaction::Pass;
            }
            match self.lead(key, Some(request)) {
                Lead::Fill(fill) => {
                    bump(&stats.miss);
                    return Transaction::Miss { stale: found, fill };
                }
                // Stored since this loop looked: look again.
                Lead::Stored => {}
                Lead::Wait(mut waiting) => {
                    collapsed = true;
                    let end = waiting
                        .wait_for(|s| *s != FlightState::Running)
                        .await
                        .map_or(FlightState::Abandoned, |s| *s);
                    if end == FlightState::Uncacheable {
                        bump(&stats.pass);
                        return Transaction::Pass;
                    }
                }
            }
        }
    }

    /// Becomes the one fetching `key`, or joins whoever is. With `request`, first
    /// checks (under the lock) that no fill finished between the caller's lookup and
    /// now: a fill commits before it leaves the map, so an object stored by then is
    /// seen here, and the caller looks again instead of fetching a second time.
    fn lead(&self, key: &Key, request: Option<&HeaderMap>) -> Lead {
        let mut flights = self
            .inner
            .flights
            .lock()
            .expect("the flights lock is never poisoned");
        if let Some(flight) = flights.get(key) {
            return Lead::Wait(flight.state.subscribe());
        }
        if let Some(request) = request
            && self.usable_in_memory(key, request)
        {
            return Lead::Stored;
        }
        let (state, _) = watch::channel(FlightState::Running);
        let flight = Arc::new(Flight { state });
        flights.insert(key.clone(), flight.clone());
        drop(flights);
        Lead::Fill(Fill {
            guard: FlightGuard {
                cache: self.clone(),
                key: key.clone(),
                flight,
                done: false,
            },
            epoch: self.purge_epoch(),
        })
    }

    /// Whether memory holds a fresh (or stale-while-revalidate) variant for `request`.
    fn usable_in_memory(&self, key: &Key, request: &HeaderMap) -> bool {
        let Some(entry) = self.inner.memory.get(key) else {
            return false;
        };
        let now = Instant::now();
        entry.variants.iter().any(|v| {
            (v.meta.vary.is_empty() || v.meta.vary.secondary_key(request) == v.secondary)
                && matches!(
                    (Found {
                        object: v.clone(),
                        now,
                    })
                    .usability(),
                    Usability::Fresh | Usability::StaleWhileRevalidate
                )
        })
    }

    fn purge_epoch(&self) -> u64 {
        self.inner
            .purges
            .lock()
            .expect("the purge log lock is never poisoned")
            .epoch
    }

    /// Starts storing an object outside any transaction (it replaces what is there).
    pub fn insert(
        &self,
        key: &Key,
        meta: ObjectMeta,
        request: &HeaderMap,
        known_length: Option<u64>,
    ) -> Result<Writer, CacheError> {
        self.writer(key, meta, request, known_length, None, self.purge_epoch())
    }

    fn writer(
        &self,
        key: &Key,
        meta: ObjectMeta,
        request: &HeaderMap,
        known_length: Option<u64>,
        guard: Option<FlightGuard>,
        epoch: u64,
    ) -> Result<Writer, CacheError> {
        let limit = self.inner.config.max_object_bytes;
        if known_length.is_some_and(|len| len > limit) {
            if let Some(guard) = guard {
                self.inner.pass_marks.insert(key.clone(), ());
                guard.finish(FlightState::Uncacheable);
            }
            return Err(CacheError::TooLarge { limit });
        }
        let secondary = meta.vary.secondary_key(request);
        Ok(Writer {
            cache: self.clone(),
            key: key.clone(),
            meta: Some(meta),
            secondary,
            chunks: Vec::new(),
            pending: BytesMut::new(),
            len: 0,
            limit,
            guard,
            epoch,
        })
    }

    /// Purges within `namespace`; returns how many objects it covered. When it returns,
    /// no lookup finds a hard-purged object (or a soft-purged one fresh), and fills
    /// that began before it do not store what they fetched. The purge then goes to
    /// the cache's [`PurgeSink`], if it has one.
    pub fn purge(&self, namespace: &str, target: &PurgeTarget, mode: PurgeMode) -> usize {
        let purged = self.apply(namespace, target, mode);
        if let Some(sink) = self.inner.sink.get() {
            sink.purged(Purge::new(namespace, target, mode));
        }
        purged
    }

    /// Drops what is stored under `key` on this node only, as a hard purge that is
    /// not handed to the fleet: what a cache does when it sees a request that
    /// changed its origin's state (RFC 9111 §4.4). Other nodes did not see it.
    pub fn invalidate(&self, key: &Key) -> usize {
        self.apply(
            key.namespace(),
            &PurgeTarget::Key(key.clone()),
            PurgeMode::Hard,
        )
    }

    /// [`Cache::purge`], then waits (at most `wait`) until every live node of the
    /// fleet has applied it too; on a single node, the same as [`Cache::purge`].
    pub async fn purge_everywhere(
        &self,
        namespace: &str,
        target: &PurgeTarget,
        mode: PurgeMode,
        wait: std::time::Duration,
    ) -> usize {
        let purged = self.purge(namespace, target, mode);
        if let Some(sink) = self.inner.sink.get() {
            sink.settled(wait).await;
        }
        purged
    }

    /// Sends every purge made here from now on to `sink` (once; later calls are
    /// ignored).
    pub fn set_purge_sink(&self, sink: Arc<dyn PurgeSink>) {
        let _ = self.inner.sink.set(sink);
    }

    /// Applies a purge made on another node, the `sequence`-th of the fleet's; it is
    /// not handed to the sink (it came from there). How many objects it covered.
    pub fn apply_remote(&self, purge: &Purge, sequence: u64) -> usize {
        let purged = self.apply(&purge.namespace, &purge.target(), purge.mode);
        self.inner
            .remote_sequence
            .fetch_max(sequence, Ordering::Relaxed);
        purged
    }

    /// Holds (or releases) every hit: while held, lookups find nothing and
    /// transactions pass (the request goes to the app, nothing is stored). A fleet
    /// node holds hits from reconnecting until it has applied the purges it missed.
    pub fn hold_hits(&self, held: bool) {
        self.inner.hits_held.store(held, Ordering::Relaxed);
    }

    /// Whether hits are held (see [`Cache::hold_hits`]).
    pub fn hits_held(&self) -> bool {
        self.inner.hits_held.load(Ordering::Relaxed)
    }

    /// The sequence of the last purge from another node applied here (0: none): where
    /// a node resumes the fleet's purges.
    pub fn remote_sequence(&self) -> u64 {
        self.inner.remote_sequence.load(Ordering::Relaxed)
    }

    fn apply(&self, namespace: &str, target: &PurgeTarget, mode: PurgeMode) -> usize {
        let namespace: Arc<str> = namespace.into();
        let mut log = self
            .inner
            .purges
            .lock()
            .expect("the purge log lock is never poisoned");
        log.epoch += 1;
        let epoch = log.epoch;
        log.recent.push_back(PurgeRecord {
            epoch,
            namespace: namespace.clone(),
            target: target.clone(),
            mode,
        });
        if log.recent.len() > PURGE_LOG_LEN {
            log.recent.pop_front();
        }
        let soft = mode == PurgeMode::Soft;
        let disk = self.inner.disk.as_ref().map(|d| &d.index);
        // An object is usually in both tiers: count it once.
        let in_tiers = |purge: &dyn Fn(&Tier) -> usize| {
            let memory = purge(&self.inner.memory);
            memory.max(disk.map_or(0, purge))
        };
        let purged = match target {
            PurgeTarget::Key(key) if *key.namespace() == *namespace => {
                self.inner.pass_marks.invalidate(key);
                in_tiers(&|tier| tier.purge_key(key, soft))
            }
            PurgeTarget::Key(_) => 0,
            PurgeTarget::SurrogateKey(skey) => {
                in_tiers(&|tier| tier.purge_surrogate(&namespace, skey, soft))
            }
            PurgeTarget::All => {
                let marked: Vec<Arc<Key>> = self
                    .inner
                    .pass_marks
                    .iter()
                    .filter(|(k, _)| *k.namespace() == *namespace)
                    .map(|(k, _)| k)
                    .collect();
                for key in marked {
                    self.inner.pass_marks.invalidate(&*key);
                }
                in_tiers(&|tier| tier.purge_namespace(&namespace, soft))
            }
        };
        drop(log);
        bump(&self.inner.stats.purge);
        purged
    }

    /// Counts a request that did not use the cache at all.
    pub fn record_pass(&self) {
        bump(&self.inner.stats.pass);
    }

    pub fn stats(&self) -> Stats {
        let s = &self.inner.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            hit: get(&s.hit),
            miss: get(&s.miss),
            stale: get(&s.stale),
            collapsed: get(&s.collapsed),
            pass: get(&s.pass),
            purge: get(&s.purge),
            stored: get(&s.stored),
            memory_bytes: self.inner.memory.size_bytes(),
            keys: self.inner.memory.object_count(),
            disk_bytes: self.inner.disk.as_ref().map_or(0, |d| d.index.size_bytes()),
            disk_keys: self
                .inner
                .disk
                .as_ref()
                .map_or(0, |d| d.index.object_count()),
        }
    }
}

/// Ends a flight exactly once; dropping it unfinished abandons it, which wakes the
/// waiters so that one of them takes over.
struct FlightGuard {
    cache: Cache,
    key: Key,
    flight: Arc<Flight>,
    done: bool,
}

impl FlightGuard {
    fn finish(mut self, state: FlightState) {
        self.end(state);
    }

    fn end(&mut self, state: FlightState) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        {
            let mut flights = self
                .cache
                .inner
                .flights
                .lock()
                .expect("the flights lock is never poisoned");
            if flights
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        self.flight.state.send_replace(state);
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.end(FlightState::Abandoned);
    }
}

impl std::fmt::Debug for FlightGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightGuard")
            .field("key", &self.key)
            .finish()
    }
}

/// The obligation of the caller that missed: insert what it fetched, or say it was
/// not cacheable, or drop this to abandon (a waiter then takes over).
#[derive(Debug)]
pub struct Fill {
    guard: FlightGuard,
    epoch: u64,
}

impl Fill {
    /// Starts storing the fetched object; waiters get it once the writer finishes.
    pub fn insert(
        self,
        meta: ObjectMeta,
        request: &HeaderMap,
        known_length: Option<u64>,
    ) -> Result<Writer, CacheError> {
        let cache = self.guard.cache.clone();
        let key = self.guard.key.clone();
        cache.writer(
            &key,
            meta,
            request,
            known_length,
            Some(self.guard),
            self.epoch,
        )
    }

    /// The fetched response may not be stored: waiters fetch for themselves, and
    /// so does every request for the key for a while (hit-for-pass), unless a
    /// purge of the key or a later insert ends it.
    pub fn uncacheable(self) {
        let cache = self.guard.cache.clone();
        cache.inner.pass_marks.insert(self.guard.key.clone(), ());
        self.guard.finish(FlightState::Uncacheable);
    }

    /// This response may not be stored, for a reason of this request's own (its
    /// `no-store`, its `Authorization`): waiters fetch for themselves, and the next
    /// request for the key tries again.
    pub fn pass(self) {
        self.guard.finish(FlightState::Uncacheable);
    }

    /// The origin confirmed `found` (a `304`): store it again with new metadata,
    /// keeping its body.
    pub fn refresh(self, found: &Found, meta: ObjectMeta) {
        let cache = self.guard.cache.clone();
        let old = &found.object;
        let object = Object {
            secondary: old.secondary.clone(),
            meta,
            body: Stored::Memory(old.body.chunks()),
            len: old.len,
            stored_at: Instant::now(),
            soft_purged: OnceLock::new(),
        };
        let stored = cache
            .inner
            .commit(&self.guard.key, object, self.epoch, true)
            .is_some();
        self.guard.finish(if stored {
            FlightState::Stored
        } else {
            FlightState::Abandoned
        });
    }

    pub fn key(&self) -> &Key {
        &self.guard.key
    }
}

/// Chunks smaller than this are gathered before they are kept.
const GATHER: usize = 16 << 10;

/// Streams a body into the cache. [`Writer::finish`] stores it; dropping the writer
/// first stores nothing (a client gone mid-body never leaves a truncated object).
#[derive(Debug)]
pub struct Writer {
    cache: Cache,
    key: Key,
    /// `None` once the object outgrew the limit.
    meta: Option<ObjectMeta>,
    secondary: crate::vary::SecondaryKey,
    chunks: Vec<Bytes>,
    pending: BytesMut,
    len: u64,
    limit: u64,
    guard: Option<FlightGuard>,
    epoch: u64,
}

impl Writer {
    /// Appends body bytes. Past the object limit the object is given up (waiters
    /// fetch for themselves) and every later call fails too.
    pub fn write(&mut self, chunk: Bytes) -> Result<(), CacheError> {
        if self.meta.is_none() {
            return Err(CacheError::TooLarge { limit: self.limit });
        }
        self.len += chunk.len() as u64;
        if self.len > self.limit {
            self.meta = None;
            self.chunks = Vec::new();
            self.pending = BytesMut::new();
            if let Some(guard) = self.guard.take() {
                self.cache.inner.pass_marks.insert(self.key.clone(), ());
                guard.finish(FlightState::Uncacheable);
            }
            return Err(CacheError::TooLarge { limit: self.limit });
        }
        if chunk.len() >= GATHER && self.pending.is_empty() {
            self.chunks.push(chunk);
        } else {
            self.pending.extend_from_slice(&chunk);
            if self.pending.len() >= GATHER {
                self.chunks.push(self.pending.split().freeze());
            }
        }
        Ok(())
    }

    /// Stores the object; `false` when it was too large or a purge since the fetch
    /// began covers it.
    pub fn finish(mut self) -> bool {
        let Some(meta) = self.meta.take() else {
            return false;
        };
        if !self.pending.is_empty() {
            self.chunks.push(self.pending.split().freeze());
        }
        let object = Object {
            meta,
            secondary: std::mem::take(&mut self.secondary),
            body: Stored::Memory(std::mem::take(&mut self.chunks).into()),
            len: self.len,
            stored_at: Instant::now(),
            soft_purged: OnceLock::new(),
        };
        let stored = self
            .cache
            .inner
            .commit(&self.key, object, self.epoch, true)
            .is_some();
        if let Some(guard) = self.guard.take() {
            guard.finish(if stored {
                FlightState::Stored
            } else {
                FlightState::Abandoned
            });
        }
        stored
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.len
    }
}

/// What the purges since `epoch` do to an object stored under `key`: nothing
/// (`None`), mark it stale (`Soft`), or keep it out (`Hard`, also when the purges
/// since then are no longer all remembered).
fn purged_since(log: &PurgeLog, epoch: u64, key: &Key, object: &Object) -> Option<PurgeMode> {
    if log.epoch == epoch {
        return None;
    }
    if log.recent.front().is_none_or(|r| r.epoch > epoch + 1) {
        return Some(PurgeMode::Hard);
    }
    let mut verdict = None;
    for record in log.recent.iter().filter(|r| r.epoch > epoch) {
        let applies = *record.namespace == *key.namespace()
            && match &record.target {
                PurgeTarget::All => true,
                PurgeTarget::Key(k) => k == key,
                PurgeTarget::SurrogateKey(s) => object.meta.surrogate_keys.iter().any(|k| k == s),
            };
        match (applies, record.mode) {
            (true, PurgeMode::Hard) => return Some(PurgeMode::Hard),
            (true, PurgeMode::Soft) => verdict = Some(PurgeMode::Soft),
            (false, _) => {}
        }
    }
    verdict
}

impl Inner {
    fn lock_purges(&self) -> std::sync::MutexGuard<'_, PurgeLog> {
        self.purges
            .lock()
            .expect("the purge log lock is never poisoned")
    }

    /// Stores an object in memory (and, when `write_through`, queues it for the disk
    /// tier) unless a purge since `epoch` covers it. Returns the stored object.
    fn commit(
        &self,
        key: &Key,
        object: Object,
        epoch: u64,
        write_through: bool,
    ) -> Option<Arc<Object>> {
        let log = self.lock_purges();
        match purged_since(&log, epoch, key, &object) {
            Some(PurgeMode::Hard) => return None,
            Some(PurgeMode::Soft) => {
                let _ = object.soft_purged.set(Instant::now());
            }
            None => {}
        }
        self.pass_marks.invalidate(key);
        let object = Arc::new(object);
        self.memory.store(key, object.clone());
        if write_through && let Some(disk) = &self.disk {
            disk.enqueue(crate::disk::Job {
                key: key.clone(),
                object: object.clone(),
                epoch: log.epoch,
            });
        }
        bump(&self.stats.stored);
        Some(object)
    }

    /// Indexes an object the disk writer has written, unless a purge since it was
    /// stored in memory covers it.
    pub(crate) fn commit_to_disk(&self, key: &Key, object: Object, epoch: u64) {
        let Some(disk) = &self.disk else { return };
        let log = self.lock_purges();
        match purged_since(&log, epoch, key, &object) {
            Some(PurgeMode::Hard) => return,
            Some(PurgeMode::Soft) => {
                let _ = object.soft_purged.set(Instant::now());
            }
            None => {}
        }
        disk.index.store(key, Arc::new(object));
    }
}
