//! The KV store behind `wasi:keyvalue` and `verge:edge/kv`, driven as a guest drives
//! it: keys, values and metadata of any length and content, every insert mode,
//! compare-and-swap, increments and paged lists. The same operations run on the
//! in-memory backend and on redb, which must agree on every answer (generations
//! aside, which each backend numbers its own way).
#![no_main]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use verge_store::{
    Backend, InsertMode, InsertOptions, Kv, KvLimits, MemoryBackend, Namespace, RedbBackend,
};

/// Small limits, so that inputs reach them.
const LIMITS: KvLimits = KvLimits {
    max_key_bytes: 16,
    max_value_bytes: 64,
    max_metadata_bytes: 16,
};

#[derive(Arbitrary, Debug)]
enum Key {
    /// One of a few keys, so that operations meet.
    Few(u8),
    Any(String),
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Few(n) => ["a", "ab", "abc", "b", "b/1", "é", "0"][*n as usize % 7].to_owned(),
            Key::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Insert {
        key: Key,
        value: Vec<u8>,
        mode: u8,
        /// Long enough never to expire during a run: both backends must agree.
        ttl: bool,
        metadata: Option<String>,
        /// Compare-and-swap against the key's last generation (true) or a wrong one.
        if_generation: Option<bool>,
    },
    Lookup(Key),
    Delete(Key),
    Increment(Key, i64),
    List {
        prefix: String,
        cursor: Option<Key>,
        limit: u16,
    },
}

/// One backend's side: its store, and the generation each key last got.
struct Side {
    kv: Kv,
    ns: Namespace,
    generations: HashMap<String, u64>,
}

impl Side {
    fn run(&mut self, op: &Op) -> String {
        match op {
            Op::Insert {
                key,
                value,
                mode,
                ttl,
                metadata,
                if_generation,
            } => {
                let key = key.text();
                let last = self.generations.get(&key).copied().unwrap_or(0);
                let options = InsertOptions {
                    mode: match mode % 4 {
                        0 => InsertMode::Overwrite,
                        1 => InsertMode::Add,
                        2 => InsertMode::Append,
                        _ => InsertMode::Prepend,
                    },
                    ttl: ttl.then_some(Duration::from_secs(3600)),
                    metadata: metadata.clone(),
                    if_generation: if_generation
                        .map(|right| if right { last } else { last + 1_000_000 }),
                };
                match self
                    .kv
                    .insert(&self.ns, &key, Bytes::from(value.clone()), options)
                {
                    Ok(generation) => {
                        self.generations.insert(key, generation);
                        "inserted".into()
                    }
                    Err(e) => error(e),
                }
            }
            Op::Lookup(key) => match self.kv.lookup(&self.ns, &key.text()) {
                Ok(found) => format!(
                    "{:?}",
                    found.map(|r| (r.value, r.metadata, r.expires_at_ms.is_some()))
                ),
                Err(e) => error(e),
            },
            Op::Delete(key) => {
                format!("{:?}", self.kv.delete(&self.ns, &key.text()).map_err(error))
            }
            Op::Increment(key, delta) => {
                let key = key.text();
                let result = self.kv.increment(&self.ns, &key, *delta);
                if result.is_ok() {
                    // A new generation this side does not see; CAS against it is
                    // then "wrong" on both sides alike.
                    self.generations.remove(&key);
                }
                format!("{:?}", result.map_err(error))
            }
            Op::List {
                prefix,
                cursor,
                limit,
            } => {
                let cursor = cursor.as_ref().map(Key::text);
                match self
                    .kv
                    .list(&self.ns, prefix, cursor.as_deref(), usize::from(*limit))
                {
                    Ok(page) => {
                        assert!(page.keys.len() <= usize::from(*limit));
                        assert!(page.keys.windows(2).all(|w| w[0] < w[1]), "in order");
                        assert!(page.keys.iter().all(|k| k.starts_with(prefix.as_str())));
                        format!("{page:?}")
                    }
                    Err(e) => error(e),
                }
            }
        }
    }
}

/// The error as both backends must give it: generations are each backend's own.
fn error(e: verge_store::KvError) -> String {
    let text = e.to_string();
    assert!(!text.contains("storage failed"), "{text}");
    match e {
        verge_store::KvError::GenerationMismatch { found, .. } => {
            format!("compare-and-swap failed, item present: {}", found.is_some())
        }
        _ => text,
    }
}

/// One redb file for the whole run; each input gets namespaces of its own.
fn redb() -> Arc<dyn Backend> {
    static REDB: OnceLock<(tempfile::TempDir, Arc<dyn Backend>)> = OnceLock::new();
    REDB.get_or_init(|| {
        // In memory where the machine has a tmpfs: redb syncs every commit.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let backend = RedbBackend::open(&dir.path().join("kv.redb")).unwrap();
        (dir, Arc::new(backend))
    })
    .1
    .clone()
}

fuzz_target!(|ops: Vec<Op>| {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let ns = Namespace::new(&format!("app{run}"), "store", LIMITS);
    let mut memory = Side {
        kv: Kv::new(Arc::new(MemoryBackend::new())),
        ns: ns.clone(),
        generations: HashMap::new(),
    };
    let mut redb = Side {
        kv: Kv::new(redb()),
        ns,
        generations: HashMap::new(),
    };
    for op in ops.iter().take(64) {
        let (a, b) = (memory.run(op), redb.run(op));
        assert_eq!(a, b, "memory and redb disagree on {op:?}");
    }
});
