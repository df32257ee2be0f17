//! A backend in memory: for tests and stores nobody needs to keep.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{Backend, BackendError, Change, Record};
use crate::kv::KvError;

#[derive(Debug, Default)]
pub struct MemoryBackend {
    namespaces: RwLock<HashMap<String, BTreeMap<String, Record>>>,
    generation: AtomicU64,
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }
}

impl Backend for MemoryBackend {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Record>, BackendError> {
        let namespaces = self.namespaces.read().unwrap_or_else(|e| e.into_inner());
        Ok(namespaces.get(ns).and_then(|items| items.get(key)).cloned())
    }

    fn update(
        &self,
        ns: &str,
        key: &str,
        decide: &mut dyn FnMut(Option<&Record>) -> Result<Change, KvError>,
    ) -> Result<Option<Record>, KvError> {
        let mut namespaces = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let items = namespaces.entry(ns.to_owned()).or_default();
        match decide(items.get(key))? {
            Change::Keep => {}
            Change::Delete => {
                items.remove(key);
            }
            Change::Put {
                value,
                metadata,
                expires_at_ms,
            } => {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                items.insert(
                    key.to_owned(),
                    Record {
                        value,
                        metadata,
                        generation,
                        expires_at_ms,
                    },
                );
            }
        }
        Ok(items.get(key).cloned())
    }

    fn scan(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>, BackendError> {
        let namespaces = self.namespaces.read().unwrap_or_else(|e| e.into_inner());
        let Some(items) = namespaces.get(ns) else {
            return Ok(Vec::new());
        };
        let start = crate::backend::scan_start(prefix, after);
        Ok(items
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect())
    }

    fn purge_expired(&self, now_ms: u64, max: usize) -> Result<usize, BackendError> {
        let mut namespaces = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let mut purged = 0;
        for items in namespaces.values_mut() {
            items.retain(|_, r| {
                let drop = purged < max && r.is_expired(now_ms);
                purged += usize::from(drop);
                !drop
            });
        }
        Ok(purged)
    }
}
