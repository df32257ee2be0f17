//! The KV rules ([`crate::conformance`]) against both built-in backends, and what only
//! the memory backend shows.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::{MemoryBackend, RedbBackend, conformance};

#[test]
fn the_memory_backend_keeps_the_kv_rules() {
    conformance::run(|| Kv::new(Arc::new(MemoryBackend::new())));
}

#[test]
fn the_redb_backend_keeps_the_kv_rules() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    conformance::run(|| {
        n.set(n.get() + 1);
        let path = dir.path().join(format!("kv-{}.redb", n.get()));
        Kv::new(Arc::new(RedbBackend::open(&path).unwrap()))
    });
}

fn ns(store: &str) -> Namespace {
    Namespace::new("app", store, KvLimits::DEFAULT)
}

#[test]
fn the_background_purger_reclaims_expired_items() {
    let backend = Arc::new(MemoryBackend::new());
    let kv = Kv::new(backend.clone());
    let s = ns("s");
    for i in 0..50 {
        kv.insert(
            &s,
            &format!("short{i}"),
            Bytes::from_static(b"v"),
            InsertOptions {
                ttl: Some(Duration::from_millis(1)),
                ..Default::default()
            },
        )
        .unwrap();
    }
    kv.insert(
        &s,
        "kept",
        Bytes::from_static(b"v"),
        InsertOptions::default(),
    )
    .unwrap();
    kv.spawn_purger(Duration::from_millis(10)).unwrap();
    // The backend itself (not the Kv, which hides expired items) loses them.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (0..50).any(|i| backend.get(s.id(), &format!("short{i}")).unwrap().is_some()) {
        assert!(std::time::Instant::now() < deadline, "never purged");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(backend.get(s.id(), "kept").unwrap().is_some());
}
