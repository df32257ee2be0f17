//! A tier of the cache: entries (the variants of a key) in a byte-bounded moka cache,
//! with an index from surrogate keys to the keys that carry them. The memory tier
//! holds bodies; the disk tier's index is one too, over bodies in files.
//!
//! moka evicts by weight (bytes) with TinyLFU admission, so one burst of large
//! one-off objects does not flush the popular ones; each entry expires when its last
//! variant is no longer worth keeping (see `Object::keep_until`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::key::Key;
use crate::object::Object;

/// Variants kept per key; storing one more drops the oldest.
const MAX_VARIANTS: usize = 32;

/// The variants stored under one key, newest first.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) variants: Vec<Arc<Object>>,
}

impl Entry {
    fn weight(&self) -> u32 {
        let bytes: u64 = self.variants.iter().map(|v| v.weight()).sum();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    fn keep_until(&self) -> Option<Instant> {
        self.variants.iter().map(|v| v.keep_until()).max()
    }
}

struct EntryExpiry;

impl moka::Expiry<Key, Arc<Entry>> for EntryExpiry {
    fn expire_after_create(&self, _: &Key, entry: &Arc<Entry>, now: Instant) -> Option<Duration> {
        Some(entry.keep_until()?.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &Key,
        entry: &Arc<Entry>,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.keep_until()?.saturating_duration_since(now))
    }
}

/// Surrogate key (with its namespace) → keys whose objects carry it. It may name keys
/// that were evicted since; those are swept out once it has grown past twice the
/// number of entries.
#[derive(Default)]
struct SurrogateIndex {
    keys: HashMap<(Arc<str>, Box<str>), HashSet<Key>>,
    links: usize,
}

pub(crate) struct Tier {
    objects: moka::sync::Cache<Key, Arc<Entry>>,
    index: Mutex<SurrogateIndex>,
}

impl Tier {
    pub(crate) fn new(capacity_bytes: u64) -> Tier {
        Tier {
            objects: moka::sync::Cache::builder()
                .max_capacity(capacity_bytes)
                .weigher(|_, entry: &Arc<Entry>| entry.weight())
                .expire_after(EntryExpiry)
                .build(),
            index: Mutex::new(SurrogateIndex::default()),
        }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.objects.get(key)
    }

    /// Stores a variant, replacing the one with the same secondary key.
    pub(crate) fn store(&self, key: &Key, object: Arc<Object>) {
        let mut index = self
            .index
            .lock()
            .expect("the surrogate index lock is never poisoned");
        for skey in &object.meta.surrogate_keys {
            let set = index
                .keys
                .entry((key.namespace_arc().clone(), skey.as_str().into()))
                .or_default();
            if set.insert(key.clone()) {
                index.links += 1;
            }
        }
        let now = Instant::now();
        let mut variants = vec![object.clone()];
        if let Some(old) = self.objects.get(key) {
            variants.extend(
                old.variants
                    .iter()
                    .filter(|v| {
                        !(v.secondary == object.secondary && v.meta.vary == object.meta.vary)
                            && v.keep_until() > now
                    })
                    .take(MAX_VARIANTS - 1)
                    .cloned(),
            );
        }
        self.objects
            .insert(key.clone(), Arc::new(Entry { variants }));
        if index.links > 2 * self.objects.entry_count() as usize + 1024 {
            self.sweep(&mut index);
        }
    }

    /// Replaces (or removes) the entry under `key` with the variants `keep` keeps.
    fn retain(&self, key: &Key, mut keep: impl FnMut(&Arc<Object>) -> bool) -> usize {
        let Some(entry) = self.objects.get(key) else {
            return 0;
        };
        let kept: Vec<_> = entry.variants.iter().filter(|v| keep(v)).cloned().collect();
        let removed = entry.variants.len() - kept.len();
        if kept.is_empty() {
            self.objects.invalidate(key);
        } else if removed > 0 {
            self.objects
                .insert(key.clone(), Arc::new(Entry { variants: kept }));
        }
        removed
    }

    /// Purges every variant under `key`; how many there were.
    pub(crate) fn purge_key(&self, key: &Key, soft: bool) -> usize {
        if soft {
            self.objects
                .get(key)
                .map_or(0, |entry| mark_stale(entry.variants.iter()))
        } else {
            self.objects.remove(key).map_or(0, |e| e.variants.len())
        }
    }

    /// Purges the objects of `namespace` carrying `skey`; how many there were.
    pub(crate) fn purge_surrogate(&self, namespace: &Arc<str>, skey: &str, soft: bool) -> usize {
        let mut index = self
            .index
            .lock()
            .expect("the surrogate index lock is never poisoned");
        let lookup = (namespace.clone(), Box::<str>::from(skey));
        let keys: Vec<Key> = match index.keys.get(&lookup) {
            Some(set) => set.iter().cloned().collect(),
            None => return 0,
        };
        let carries = |v: &Arc<Object>| v.meta.surrogate_keys.iter().any(|k| k == skey);
        let mut purged = 0;
        for key in &keys {
            if soft {
                if let Some(entry) = self.objects.get(key) {
                    purged += mark_stale(entry.variants.iter().filter(|v| carries(v)));
                }
            } else {
                purged += self.retain(key, |v| !carries(v));
            }
        }
        if !soft && let Some(set) = index.keys.remove(&lookup) {
            index.links -= set.len();
        }
        purged
    }

    /// Purges everything of `namespace`; how many objects there were.
    pub(crate) fn purge_namespace(&self, namespace: &str, soft: bool) -> usize {
        let mut purged = 0;
        let keys: Vec<(Arc<Key>, Arc<Entry>)> = self
            .objects
            .iter()
            .filter(|(key, _)| key.namespace() == namespace)
            .collect();
        for (key, entry) in keys {
            if soft {
                purged += mark_stale(entry.variants.iter());
            } else {
                purged += entry.variants.len();
                self.objects.invalidate(&*key);
            }
        }
        if !soft {
            let mut index = self
                .index
                .lock()
                .expect("the surrogate index lock is never poisoned");
            index.keys.retain(|(ns, _), _| &**ns != namespace);
            index.links = index.keys.values().map(HashSet::len).sum();
        }
        purged
    }

    fn sweep(&self, index: &mut SurrogateIndex) {
        index.keys.retain(|_, set| {
            set.retain(|key| self.objects.contains_key(key));
            !set.is_empty()
        });
        index.links = index.keys.values().map(HashSet::len).sum();
    }

    /// Bytes held, after pending bookkeeping.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.objects.run_pending_tasks();
        self.objects.weighted_size()
    }

    pub(crate) fn object_count(&self) -> u64 {
        self.objects.run_pending_tasks();
        self.objects.entry_count()
    }
}

fn mark_stale<'a>(variants: impl Iterator<Item = &'a Arc<Object>>) -> usize {
    let now = Instant::now();
    let mut count = 0;
    for v in variants {
        let _ = v.soft_purged.set(now);
        count += 1;
    }
    count
}
