//! The cache engine through its public API: collapsing, hand-over, purges, variants,
//! namespaces and limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use verge_cache::{
    Cache, CacheConfig, CacheError, Freshness, Key, ObjectMeta, PurgeMode, PurgeTarget,
    Transaction, Usability, VaryRule,
};

fn fresh_for(secs: u64) -> ObjectMeta {
    ObjectMeta::new(Freshness {
        ttl: Duration::from_secs(secs),
        ..Freshness::default()
    })
}

fn with_keys(mut meta: ObjectMeta, keys: &[&str]) -> ObjectMeta {
    meta.surrogate_keys = keys.iter().map(|k| k.to_string()).collect();
    meta
}

fn body(found: &verge_cache::Found) -> Vec<u8> {
    found.chunks().iter().flat_map(|c| c.to_vec()).collect()
}

fn put(cache: &Cache, key: &Key, meta: ObjectMeta, value: &str) {
    let mut w = cache.insert(key, meta, &HeaderMap::new(), None).unwrap();
    w.write(Bytes::from(value.to_owned())).unwrap();
    assert!(w.finish());
}

fn no_headers() -> HeaderMap {
    HeaderMap::new()
}

/// Purges a surrogate key of `app`; how many objects it covered.
fn purge_key(cache: &Cache, app: &str, key: &str, mode: PurgeMode) -> usize {
    cache.purge(app, &PurgeTarget::SurrogateKey(key.into()), mode)
}

/// A second transaction on `key`, which waits behind the first one's fill.
fn wait_on(cache: &Cache, key: &Key) -> tokio::task::JoinHandle<Transaction> {
    let (cache, key) = (cache.clone(), key.clone());
    tokio::spawn(async move { cache.transaction(&key, &no_headers()).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_run_one_fetch_and_share_its_object() {
    let cache = Cache::new(CacheConfig::default());
    let key = Key::new("app", "k");
    let fetches = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (cache, key, fetches) = (cache.clone(), key.clone(), fetches.clone());
        tasks.push(tokio::spawn(async move {
            match cache.transaction(&key, &no_headers()).await {
                Transaction::Miss { fill, .. } => {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    // Let the others pile up behind this fetch.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let mut w = fill.insert(fresh_for(60), &no_headers(), None).unwrap();
                    w.write(Bytes::from_static(b"one")).unwrap();
                    assert!(w.finish());
                    b"one".to_vec()
                }
                Transaction::Fresh { found, collapsed } => {
                    assert!(collapsed);
                    body(&found)
                }
                other => panic!("unexpected {other:?}"),
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), b"one");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!((stats.miss, stats.collapsed), (1, 19));
}

#[tokio::test]
async fn an_abandoned_fill_hands_over_to_a_waiter() {
    let cache = Cache::new(CacheConfig::default());
    let key = Key::new("app", "k");
    let Transaction::Miss { fill, .. } = cache.transaction(&key, &no_headers()).await else {
        panic!("first lookup misses")
    };
    let waiter = wait_on(&cache, &key);
    tokio::task::yield_now().await;
    // The winner's writer is dropped mid-body (a client gone, a trapped guest).
    let mut w = fill.insert(fresh_for(60), &no_headers(), None).unwrap();
    w.write(Bytes::from_static(b"half")).unwrap();
    drop(w);
    match tokio::time::timeout(Duration::from_secs(5), waiter).await {
        Ok(Ok(Transaction::Miss { .. })) => {}
        other => panic!("the waiter should take over, got {other:?}"),
    }
    assert!(
        cache.find(&key, &no_headers()).is_none(),
        "no truncated object"
    );
}

#[tokio::test]
async fn an_uncacheable_fill_sends_waiters_to_fetch_themselves() {
    let cache = Cache::new(CacheConfig::default());
    let key = Key::new("app", "k");
    let Transaction::Miss { fill, .. } = cache.transaction(&key, &no_headers()).await else {
        panic!()
    };
    let waiter = wait_on(&cache, &key);
    tokio::task::yield_now().await;
    fill.uncacheable();
    assert!(matches!(waiter.await.unwrap(), Transaction::Pass));
}

#[tokio::test]
async fn objects_over_the_limit_are_not_stored_and_release_waiters() {
    let cache = Cache::new(CacheConfig {
        memory_bytes: 1 << 20,
        max_object_bytes: 10,
        disk: None,
    });
    let key = Key::new("app", "k");
    assert_eq!(
        cache
            .insert(&key, fresh_for(60), &no_headers(), Some(11))
            .unwrap_err(),
        CacheError::TooLarge { limit: 10 }
    );
    let Transaction::Miss { fill, .. } = cache.transaction(&key, &no_headers()).await else {
        panic!()
    };
    let waiter = wait_on(&cache, &key);
    tokio::task::yield_now().await;
    let mut w = fill.insert(fresh_for(60), &no_headers(), None).unwrap();
    w.write(Bytes::from_static(b"0123456789")).unwrap();
    assert!(w.write(Bytes::from_static(b"x")).is_err());
    assert!(!w.finish());
    assert!(matches!(waiter.await.unwrap(), Transaction::Pass));
    assert!(cache.find(&key, &no_headers()).is_none());
}

#[tokio::test]
async fn namespaces_never_share_objects_or_purges() {
    let cache = Cache::new(CacheConfig::default());
    let a = Key::for_url("app-a", "example.com", "/x");
    let b = Key::for_url("app-b", "example.com", "/x");
    put(&cache, &a, with_keys(fresh_for(60), &["k"]), "from a");
    assert!(cache.find(&b, &no_headers()).is_none());
    put(&cache, &b, with_keys(fresh_for(60), &["k"]), "from b");
    assert_eq!(body(&cache.find(&a, &no_headers()).unwrap()), b"from a");
    assert_eq!(purge_key(&cache, "app-a", "k", PurgeMode::Hard), 1);
    assert!(cache.find(&a, &no_headers()).is_none());
    assert_eq!(body(&cache.find(&b, &no_headers()).unwrap()), b"from b");
    assert_eq!(cache.purge("app-a", &PurgeTarget::All, PurgeMode::Hard), 0);
    assert_eq!(
        cache.purge("app-a", &PurgeTarget::Key(b.clone()), PurgeMode::Hard),
        0
    );
    assert!(cache.find(&b, &no_headers()).is_some());
}

#[tokio::test]
async fn purge_by_surrogate_key_hard_and_soft() {
    let cache = Cache::new(CacheConfig::default());
    let one = Key::new("app", "item-1");
    let two = Key::new("app", "item-2");
    put(
        &cache,
        &one,
        with_keys(fresh_for(60), &["items", "item-1"]),
        "1",
    );
    let mut soft = with_keys(fresh_for(60), &["items", "item-2"]);
    soft.freshness.stale_while_revalidate = Duration::from_secs(30);
    put(&cache, &two, soft, "2");

    assert_eq!(purge_key(&cache, "app", "item-1", PurgeMode::Hard), 1);
    assert!(cache.find(&one, &no_headers()).is_none());
    assert_eq!(
        cache.find(&two, &no_headers()).unwrap().usability(),
        Usability::Fresh
    );

    assert_eq!(purge_key(&cache, "app", "items", PurgeMode::Soft), 1);
    let found = cache.find(&two, &no_headers()).unwrap();
    assert!(found.soft_purged());
    assert_eq!(found.usability(), Usability::StaleWhileRevalidate);
    // A soft-purged object within stale-while-revalidate is served while one caller
    // refreshes it.
    match cache.transaction(&two, &no_headers()).await {
        Transaction::Stale {
            refresh: Some(_), ..
        } => {}
        other => panic!("{other:?}"),
    }
}

/// Keeps the purges handed to it.
#[derive(Default)]
struct Published(std::sync::Mutex<Vec<verge_cache::Purge>>);

impl verge_cache::PurgeSink for Published {
    fn purged(&self, purge: verge_cache::Purge) {
        self.0.lock().unwrap().push(purge);
    }

    fn settled(&self, _: std::time::Duration) -> verge_cache::Settled<'_> {
        Box::pin(async {})
    }
}

#[tokio::test]
async fn local_purges_go_to_the_sink_and_remote_ones_apply_without_echo() {
    let here = Cache::new(CacheConfig::default());
    let there = Cache::new(CacheConfig::default());
    let published = Arc::new(Published::default());
    here.set_purge_sink(published.clone());
    // A guest's raw key (not UTF-8), a URL's key, a surrogate key, everything.
    let raw = Key::new("app", vec![0xff, 0x00, b'k']);
    let url = Key::for_url("app", "shop.test", "/items/1?x=1");
    let mut soft = with_keys(fresh_for(60), &["items"]);
    soft.freshness.stale_while_revalidate = Duration::from_secs(30);
    for cache in [&here, &there] {
        put(cache, &raw, fresh_for(60), "raw");
        put(cache, &url, soft.clone(), "url");
    }
    here.purge("app", &PurgeTarget::Key(raw.clone()), PurgeMode::Hard);
    here.purge(
        "app",
        &PurgeTarget::SurrogateKey("items".into()),
        PurgeMode::Soft,
    );
    here.purge("other", &PurgeTarget::All, PurgeMode::Hard);
    let sent: Vec<verge_cache::Purge> = published.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    let json = serde_json::to_string(&sent[0]).unwrap();
    assert_eq!(
        json,
        r#"{"namespace":"app","by":"key","key":"ff006b","mode":"hard"}"#
    );
    assert_eq!(
        serde_json::to_string(&sent[1]).unwrap(),
        r#"{"namespace":"app","by":"surrogate_key","surrogate_key":"items","mode":"soft"}"#
    );

    // Another node applies them as they travel: by value, through JSON.
    there.set_purge_sink(published.clone());
    for (i, purge) in sent.iter().enumerate() {
        let travelled: verge_cache::Purge =
            serde_json::from_str(&serde_json::to_string(purge).unwrap()).unwrap();
        assert_eq!(&travelled, purge);
        there.apply_remote(&travelled, i as u64 + 1);
    }
    assert!(
        there.find(&raw, &no_headers()).is_none(),
        "the raw key is purged"
    );
    let found = there
        .find(&url, &no_headers())
        .expect("soft-purged objects stay");
    assert!(found.soft_purged(), "soft, as published");
    assert_eq!(there.remote_sequence(), 3);
    assert_eq!(
        published.0.lock().unwrap().len(),
        3,
        "remote purges are not handed on again"
    );
    assert!(
        serde_json::from_str::<verge_cache::Purge>(
            r#"{"namespace":"app","by":"key","key":"f","mode":"hard"}"#
        )
        .is_err()
    );
}

/// A node catching up on purges it missed holds its hits: nothing is found until it
/// releases them, and what it stored is there again after.
#[tokio::test]
async fn held_hits_find_nothing_until_released() {
    let cache = Cache::new(CacheConfig::default());
    let key = Key::for_url("app", "shop.test", "/items/1");
    put(&cache, &key, fresh_for(60), "one");
    cache.hold_hits(true);
    assert!(cache.hits_held());
    assert!(cache.lookup(&key, &no_headers()).is_none());
    assert!(matches!(
        cache.transaction(&key, &no_headers()).await,
        Transaction::Pass
    ));
    cache.hold_hits(false);
    assert!(cache.lookup(&key, &no_headers()).is_some());
}

#[tokio::test]
async fn a_fill_that_began_before_a_purge_does_not_store() {
    let cache = Cache::new(CacheConfig::default());
    let key = Key::new("app", "k");
    let Transaction::Miss { fill, .. } = cache.transaction(&key, &no_headers()).await else {
        panic!()
    };
    cache.purge(
        "app",
        &PurgeTarget::SurrogateKey("k".into()),
        PurgeMode::Hard,
    );
    let mut w = fill
        .insert(with_keys(fresh_for(60), &["k"]), &no_headers(), None)
        .unwrap();
    w.write(Bytes::from_static(b"old")).unwrap();
    assert!(!w.finish(), "fetched before the purge: not stored");
    // An unrelated purge does not stop a fill.
    let Transaction::Miss { fill, .. } = cache.transaction(&key, &no_headers()).await else {
        panic!()
    };
    cache.purge(
        "app",
        &PurgeTarget::SurrogateKey("other".into()),
        PurgeMode::Hard,
    );
    cache.purge("other-app", &PurgeTarget::All, PurgeMode::Hard);
    let w = fill
        .insert(with_keys(fresh_for(60), &["k"]), &no_headers(), None)
        .unwrap();
    assert!(w.finish());
}

#[tokio::test]
async fn variants_are_kept_apart() {
    let cache = Cache::new(CacheConfig::default());
    let key = Key::for_url("app", "example.com", "/greeting");
    let lang = HeaderName::from_static("accept-language");
    let req = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert(lang.clone(), HeaderValue::from_str(v).unwrap());
        h
    };
    for (accept, text) in [("en", "hello"), ("de", "hallo")] {
        let mut meta = fresh_for(60);
        meta.vary = VaryRule::new([lang.clone()]);
        let mut w = cache.insert(&key, meta, &req(accept), None).unwrap();
        w.write(Bytes::from(text)).unwrap();
        assert!(w.finish());
    }
    assert_eq!(body(&cache.find(&key, &req("EN")).unwrap()), b"hello");
    assert_eq!(body(&cache.find(&key, &req("de")).unwrap()), b"hallo");
    assert!(cache.find(&key, &req("fr")).is_none());
    assert_eq!(
        cache.purge("app", &PurgeTarget::Key(key.clone()), PurgeMode::Hard),
        2
    );
    assert!(cache.find(&key, &req("de")).is_none());
}

#[tokio::test]
async fn memory_stays_within_its_budget() {
    let cache = Cache::new(CacheConfig {
        memory_bytes: 256 << 10,
        max_object_bytes: 64 << 10,
        disk: None,
    });
    let value = "x".repeat(16 << 10);
    for i in 0..200 {
        put(
            &cache,
            &Key::new("app", format!("k{i}")),
            fresh_for(60),
            &value,
        );
    }
    let stats = cache.stats();
    assert!(
        stats.memory_bytes <= 256 << 10,
        "{} bytes held",
        stats.memory_bytes
    );
    assert!(stats.keys > 0);
}

#[tokio::test]
async fn expired_objects_are_misses_but_serve_as_refresh_bases() {
    let cache = Cache::new(CacheConfig::default());
    let key = Key::new("app", "k");
    let mut meta = fresh_for(0);
    meta.headers
        .insert(http::header::ETAG, HeaderValue::from_static("\"v1\""));
    put(&cache, &key, meta, "body");
    assert!(cache.lookup(&key, &no_headers()).is_none());
    match cache.transaction(&key, &no_headers()).await {
        Transaction::Miss {
            stale: Some(found),
            fill,
        } => {
            assert_eq!(found.usability(), Usability::Expired);
            fill.refresh(&found, fresh_for(60));
        }
        other => panic!("{other:?}"),
    }
    let found = cache.find(&key, &no_headers()).unwrap();
    assert_eq!(found.usability(), Usability::Fresh);
    assert_eq!(body(&found), b"body");
}

#[tokio::test]
async fn after_an_uncacheable_fetch_lookups_pass_at_once_until_a_purge() {
    let cache = Cache::new(CacheConfig::default());
    let key = Key::new("app", "k");
    let Transaction::Miss { fill, .. } = cache.transaction(&key, &no_headers()).await else {
        panic!()
    };
    fill.uncacheable();
    // Hit-for-pass: no queueing behind a fetch that would not be shared.
    assert!(matches!(
        cache.transaction(&key, &no_headers()).await,
        Transaction::Pass
    ));
    assert!(matches!(
        cache.transaction(&key, &no_headers()).await,
        Transaction::Pass
    ));
    cache.purge("app", &PurgeTarget::Key(key.clone()), PurgeMode::Hard);
    assert!(matches!(
        cache.transaction(&key, &no_headers()).await,
        Transaction::Miss { .. }
    ));
    // Other keys are not affected.
    let other = Key::new("app", "other");
    assert!(matches!(
        cache.transaction(&other, &no_headers()).await,
        Transaction::Miss { .. }
    ));
}

/// Waits (bounded) until `done` holds, checking every few milliseconds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn bodies_on_disk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "vcache")
        })
        .count()
}

#[test]
fn objects_evicted_from_memory_come_back_from_disk_and_purges_reach_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.vcache"), b"left by an earlier run").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
    let cache = Cache::open(CacheConfig {
        memory_bytes: 64 << 10,
        max_object_bytes: 32 << 10,
        disk: Some(verge_cache::DiskConfig {
            dir: dir.path().to_owned(),
            bytes: 4 << 20,
        }),
    })
    .unwrap();
    assert!(
        dir.path().join("notes.txt").exists(),
        "only cache files are removed"
    );
    assert!(!dir.path().join("old.vcache").exists());

    let value = |i: usize| format!("{i:04}").repeat(4 << 10);
    for i in 0..40 {
        let keys = if i % 2 == 0 { ["even"] } else { ["odd"] };
        put(
            &cache,
            &Key::new("app", format!("k{i}")),
            with_keys(fresh_for(60), &keys),
            &value(i),
        );
    }
    eventually("the disk writes", || cache.stats().disk_keys == 40);
    let stats = cache.stats();
    assert!(stats.memory_bytes <= 64 << 10, "{stats:?}");
    assert!(stats.disk_bytes >= 40 * (16 << 10), "{stats:?}");
    // Every object is found, most of them read back from disk.
    for i in 0..40 {
        let found = cache
            .find(&Key::new("app", format!("k{i}")), &no_headers())
            .unwrap();
        assert_eq!(body(&found), value(i).as_bytes(), "k{i}");
        assert_eq!(found.usability(), Usability::Fresh);
    }
    // A purge reaches objects wherever they are.
    cache.purge(
        "app",
        &PurgeTarget::SurrogateKey("even".into()),
        PurgeMode::Hard,
    );
    for i in 0..40 {
        let found = cache.find(&Key::new("app", format!("k{i}")), &no_headers());
        assert_eq!(found.is_some(), i % 2 == 1, "k{i}");
    }
    cache.purge("app", &PurgeTarget::All, PurgeMode::Hard);
    assert!(cache.find(&Key::new("app", "k1"), &no_headers()).is_none());
    // Files go with the last reference to them.
    eventually("purged bodies to be deleted", || {
        cache.stats();
        bodies_on_disk(dir.path()) == 0
    });
}

#[test]
fn the_disk_tier_stays_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(CacheConfig {
        memory_bytes: 64 << 10,
        max_object_bytes: 32 << 10,
        disk: Some(verge_cache::DiskConfig {
            dir: dir.path().to_owned(),
            bytes: 256 << 10,
        }),
    })
    .unwrap();
    let value = "x".repeat(16 << 10);
    for i in 0..100 {
        put(
            &cache,
            &Key::new("app", format!("k{i}")),
            fresh_for(60),
            &value,
        );
        // Let the writer keep up, so every object reaches the disk index.
        eventually("the write", || cache.stats().stored == i as u64 + 1);
    }
    eventually("the disk tier to settle", || {
        let stats = cache.stats();
        stats.disk_bytes <= 256 << 10 && bodies_on_disk(dir.path()) <= 20
    });
}
