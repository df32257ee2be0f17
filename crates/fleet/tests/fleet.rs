//! The fleet's storage on a real 3-server NATS cluster with JetStream (R3), started
//! by the test on loopback ports and killed at its end. `nats-server` comes from
//! `scripts/install-nats-server.sh` (CI runs it; `make test` does too).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use verge_control::{Changes, Control, ControlError, ControlStore, Expect, ServiceName};
use verge_fleet::{BucketConfig, FleetKv, JetStreamStore, KvBucket, NatsCluster, kv_bucket_name};
use verge_store::{InsertMode, InsertOptions, Kv, KvError, KvLimits, KvReplica, Namespace};

async fn cluster(dir: &std::path::Path) -> NatsCluster {
    NatsCluster::start(3, dir)
        .await
        .unwrap_or_else(|e| panic!("starting the NATS cluster: {e}"))
}

async fn jetstream(cluster: &NatsCluster) -> jetstream::Context {
    let client = async_nats::connect(cluster.urls().as_slice())
        .await
        .unwrap();
    jetstream::new(client)
}

async fn store(js: &jetstream::Context, bucket: &str) -> JetStreamStore {
    let config = BucketConfig {
        bucket: bucket.into(),
        replicas: 3,
    };
    JetStreamStore::create(js.clone(), &config).await.unwrap()
}

/// The very cases the redb store passes, on JetStream; then what only a shared
/// store shows: two nodes see each other's writes, and no empty fleet is made by
/// accident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jetstream_store_keeps_the_control_rules_and_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path()).await;
    let js = jetstream(&cluster).await;
    let n = AtomicUsize::new(0);
    verge_control::conformance::run(|| {
        let bucket = format!("conformance-{}", n.fetch_add(1, Ordering::Relaxed));
        let js = js.clone();
        async move { Arc::new(store(&js, &bucket).await) as Arc<dyn ControlStore> }
    })
    .await;

    // Two nodes, two connections, one bucket.
    let a = Control::new(Arc::new(store(&js, "shared").await));
    let other = jetstream(&cluster).await;
    let b_store = Arc::new(JetStreamStore::open(other, "shared").await.unwrap());
    let b = Control::new(b_store.clone());
    let mut b_revision = b_store.revision();
    let shop = ServiceName::new("shop").unwrap();
    let created = a.create_service(&shop, &[]).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        b_revision.wait_for(|r| *r >= created.revision),
    )
    .await
    .expect("node B's watch hears of node A's write")
    .unwrap();
    assert_eq!(b.service(&shop).await.unwrap(), Some(created.clone()));
    let Changes::Since { changes, .. } = b_store.changes(0, 100).await.unwrap() else {
        panic!("a JetStream bucket never asks for a resync");
    };
    assert!(changes.iter().any(|c| c.key == "service/shop"));
    // Racing from two nodes: one create wins.
    let blog = ServiceName::new("blog").unwrap();
    let (x, y) = tokio::join!(a.create_service(&blog, &[]), b.create_service(&blog, &[]));
    assert!(
        matches!(
            (&x, &y),
            (Ok(_), Err(ControlError::ServiceExists(_)))
                | (Err(ControlError::ServiceExists(_)), Ok(_))
        ),
        "{x:?} {y:?}"
    );

    // Packages: the same rules as on disk, through the object store.
    let m = AtomicUsize::new(0);
    verge_control::conformance::packages::run(|| {
        let bucket = format!("packages-{}", m.fetch_add(1, Ordering::Relaxed));
        let js = js.clone();
        async move {
            Arc::new(
                verge_fleet::ObjectPackages::create(&js, &bucket, 3)
                    .await
                    .unwrap(),
            ) as Arc<dyn verge_control::PackageStore>
        }
    })
    .await;

    // A 128 MiB package (a node's default upload limit): 1,024 chunks of 128 KiB,
    // back intact, and stored once however often it is put.
    let big = verge_fleet::ObjectPackages::create(&js, "packages-big", 3)
        .await
        .unwrap();
    let mut bytes = Vec::with_capacity(128 << 20);
    let mut block = [0u8; 4096];
    for i in 0u64..(128 << 20) / 4096 {
        block[..8].copy_from_slice(&i.to_be_bytes());
        block[8..16].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        bytes.extend_from_slice(&block);
    }
    let sha = verge_control::sha256_hex(&bytes);
    use verge_control::PackageStore;
    big.put(&sha, bytes.clone()).await.unwrap();
    let stored = |js: jetstream::Context| async move {
        let mut stream = js.get_stream("OBJ_packages-big").await.unwrap();
        stream.info().await.unwrap().state.bytes
    };
    let once = stored(js.clone()).await;
    assert!(once >= 128 << 20, "{once}");
    big.put(&sha, bytes.clone()).await.unwrap();
    assert_eq!(
        stored(js.clone()).await,
        once,
        "the same bytes are stored once"
    );
    assert!(big.get(&sha).await.unwrap() == bytes, "back intact");
    drop(bytes);
    // A read leaves no consumer behind: nats-server 2.15 allows 1,000 per stream,
    // and 30 nodes reading each deploy's package and code would otherwise run out.
    for _ in 0..3 {
        big.get(&sha).await.unwrap();
    }
    let consumers = {
        let mut stream = js.get_stream("OBJ_packages-big").await.unwrap();
        stream.info().await.unwrap().state.consumer_count
    };
    assert_eq!(consumers, 0, "consumers left by reads");

    // An object whose bytes do not match its name (damaged, or written by someone
    // else) is refused, never handed out.
    let raw = js.get_object_store("packages-big").await.unwrap();
    let good = b"the real package".to_vec();
    let name = verge_control::sha256_hex(&good);
    // Damaged with the same length, so only the content tells.
    raw.put(name.as_str(), &mut &b"the fake package"[..])
        .await
        .unwrap();
    let refused = big.get(&name).await.unwrap_err();
    assert!(
        matches!(refused, verge_control::PackageStoreError::Mismatch { .. }),
        "{refused}"
    );
    // Putting the right bytes repairs it.
    big.put(&name, good.clone()).await.unwrap();
    assert_eq!(big.get(&name).await.unwrap(), good);

    // Compiled code beside the packages: back as it was put, under the same key;
    // refused when signed with another key or damaged; absent when never shared.
    let key = |byte: u8| verge_fleet::CodeKey::new(vec![byte; 32]).unwrap();
    let fleet_code = big.shared_code(key(1));
    let code_key = "c".repeat(64);
    let code = b"compiled code, as Wasmtime serialized it".to_vec();
    assert_eq!(fleet_code.get(&code_key).await.unwrap(), None);
    fleet_code.put(&code_key, &code).await.unwrap();
    assert_eq!(fleet_code.get(&code_key).await.unwrap(), Some(code.clone()));
    let forged_key = "f".repeat(64);
    big.shared_code(key(2))
        .put(&forged_key, b"someone else's code")
        .await
        .unwrap();
    let refused = fleet_code.get(&forged_key).await.unwrap_err();
    assert!(
        matches!(refused, verge_fleet::CodeError::Unsigned(_)),
        "{refused}"
    );
    // Signed bytes under another name are not that name's code either.
    let signed = raw.get(&format!("code.{code_key}")).await.unwrap();
    let mut signed_bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut { signed }, &mut signed_bytes)
        .await
        .unwrap();
    let moved = "d".repeat(64);
    raw.put(format!("code.{moved}").as_str(), &mut &signed_bytes[..])
        .await
        .unwrap();
    assert!(matches!(
        fleet_code.get(&moved).await,
        Err(verge_fleet::CodeError::Unsigned(_))
    ));
    raw.put(format!("code.{code_key}").as_str(), &mut &b"tiny"[..])
        .await
        .unwrap();
    assert!(matches!(
        fleet_code.get(&code_key).await,
        Err(verge_fleet::CodeError::Unsigned(_))
    ));

    // A bucket that is not there is named, with what to do; nothing is created.
    let missing = JetStreamStore::open(js.clone(), "no-such-fleet")
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("--cluster-init"), "{missing}");
    assert!(js.get_key_value("no-such-fleet").await.is_err());

    // The node directory: each heartbeat with what that node serves, which is
    // written apart and only when it changes.
    let directory = verge_fleet::NodeDirectory::create(&js, "nodes", 3)
        .await
        .unwrap();
    // Another connection watches, as another node would.
    let elsewhere = jetstream(&cluster).await;
    let watcher = verge_fleet::NodeDirectory::open(&elsewhere, "nodes")
        .await
        .unwrap();
    let wait_for = |want: &'static [(&'static str, &'static [u8], &'static [u8])]| {
        let watcher = &watcher;
        let mut heard = watcher.changed();
        async move {
            let seen = || {
                let all = watcher.all();
                all.len() == want.len()
                    && want.iter().all(|(name, beat, serves)| {
                        all.get(*name).is_some_and(|b| {
                            b.value.as_ref() == *beat && b.serves.as_ref() == *serves
                        })
                    })
            };
            tokio::time::timeout(Duration::from_secs(10), async {
                while !seen() {
                    heard.changed().await.unwrap();
                }
            })
            .await
            .unwrap_or_else(|_| panic!("never saw {want:?}; saw {:?}", watcher.all()));
        }
    };
    directory
        .publish_serves("pop-a", b"v1".to_vec())
        .await
        .unwrap();
    directory
        .publish("pop-a", b"beat 1".to_vec())
        .await
        .unwrap();
    directory
        .publish("pop-b", b"beat b".to_vec())
        .await
        .unwrap();
    wait_for(&[("pop-a", b"beat 1", b"v1"), ("pop-b", b"beat b", b"")]).await;
    let first = watcher.all()["pop-a"].revisions;
    directory
        .publish("pop-a", b"beat 2".to_vec())
        .await
        .unwrap();
    wait_for(&[("pop-a", b"beat 2", b"v1"), ("pop-b", b"beat b", b"")]).await;
    let second = watcher.all()["pop-a"].revisions;
    assert!(
        second.0 > first.0 && second.1 == first.1,
        "a new heartbeat alone leaves what it serves as it was: {first:?} → {second:?}"
    );
    directory
        .publish_serves("pop-a", b"v2".to_vec())
        .await
        .unwrap();
    wait_for(&[("pop-a", b"beat 2", b"v2"), ("pop-b", b"beat b", b"")]).await;
}

/// A server killed with SIGKILL during writes loses no acknowledged write: R3 keeps
/// a quorum, writes go on, and the restarted server catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(dir.path()).await;
    let js = jetstream(&cluster).await;
    let store = store(&js, "kill").await;
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..300u32 {
        if i == 100 {
            cluster.kill(0);
        }
        if i == 200 {
            cluster.restart(0).unwrap();
        }
        let key = format!("k/{i:04}");
        match store
            .put(&key, i.to_be_bytes().to_vec(), Expect::Absent)
            .await
        {
            Ok(revision) => acknowledged.push((key, revision)),
            Err(ControlError::Unavailable(_)) => refused += 1,
            Err(e) => panic!("write {i}: {e}"),
        }
    }
    assert!(
        acknowledged.len() >= 250,
        "R3 keeps taking writes with one server down: {} acknowledged, {refused} refused",
        acknowledged.len()
    );
    cluster.wait_ready(Duration::from_secs(30)).await.unwrap();
    // Read back through a fresh connection to the restarted server alone.
    let url = cluster.urls()[0].clone();
    let fresh = jetstream::new(async_nats::connect(url).await.unwrap());
    let reader = JetStreamStore::open(fresh, "kill").await.unwrap();
    for (key, revision) in &acknowledged {
        let entry = reader.get(key).await.unwrap();
        assert_eq!(
            entry.map(|e| e.revision),
            Some(*revision),
            "{key} was acknowledged at {revision}"
        );
    }
}

/// A node of the guest KV tests: its own connection, replica and bucket handle.
struct KvNode {
    kv: Kv,
    bucket: Arc<KvBucket>,
}

async fn kv_node(
    cluster_urls: &[String],
    dir: &std::path::Path,
    prefix: &str,
    init: bool,
) -> KvNode {
    let js = jetstream::new(async_nats::connect(cluster_urls).await.unwrap());
    let path = dir.join("kv-replica.redb");
    // A node dropped just before lets go of its file once its feed task has ended.
    let mut tries = 0;
    let replica = loop {
        match KvReplica::open(&path, &kv_bucket_name(prefix)) {
            Err(verge_store::OpenError::Locked { .. }) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            opened => break Arc::new(opened.unwrap()),
        }
    };
    // A server just restarted may not answer for its streams yet: a node retries.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let bucket = loop {
        let opened = if init {
            KvBucket::create(&js, prefix, 3, replica.clone()).await
        } else {
            KvBucket::open(&js, prefix, replica.clone()).await
        };
        match opened {
            Err(verge_store::BackendError::Unavailable(_))
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            opened => break Arc::new(opened.unwrap()),
        }
    };
    let backend = FleetKv::new(replica, tokio::runtime::Handle::current());
    backend.attach(bucket.clone());
    KvNode {
        kv: Kv::new(Arc::new(backend)),
        bucket,
    }
}

impl KvNode {
    /// Waits until this node's replica has applied the bucket up to `revision`.
    async fn sees(&self, revision: u64) {
        let mut applied = self.bucket.applied();
        tokio::time::timeout(
            Duration::from_secs(10),
            applied.wait_for(|r| *r >= revision),
        )
        .await
        .unwrap_or_else(|_| panic!("the replica did not reach revision {revision}"))
        .unwrap();
    }
}

/// Runs KV calls (synchronous, they may wait for the network) off the test's runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// The KV rules every backend keeps, on the fleet's bucket; then what only a fleet
/// shows: two nodes racing compare-and-swap increments on one counter never both
/// win, a 20 MiB value written on one node is read on the other, an expiry is seen on
/// both, and a restarted node resumes its feed where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_kv_on_the_fleet_keeps_the_kv_rules_and_compare_and_swap_holds_across_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path()).await;
    let urls = cluster.urls();
    let n = AtomicUsize::new(0);
    let handle = tokio::runtime::Handle::current();
    verge_store::conformance::run(|| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let node = tokio::task::block_in_place(|| {
            handle.block_on(kv_node(
                &urls,
                &dir.path().join(format!("c{i}")),
                &format!("conf{i}"),
                true,
            ))
        });
        node.kv
    });

    let a = kv_node(&urls, &dir.path().join("a"), "race", true).await;
    let b = kv_node(&urls, &dir.path().join("b"), "race", false).await;
    let ns = Namespace::new("shop", "counters", KvLimits::DEFAULT);
    let racers: Vec<_> = [a.kv.clone(), b.kv.clone()]
        .into_iter()
        .map(|kv| {
            let ns = ns.clone();
            tokio::task::spawn_blocking(move || {
                let mut lost = 0;
                for _ in 0..200 {
                    loop {
                        let current = kv.lookup(&ns, "hits").unwrap();
                        let (count, generation) = match &current {
                            Some(e) => (
                                std::str::from_utf8(&e.value)
                                    .unwrap()
                                    .parse::<u64>()
                                    .unwrap(),
                                Some(e.generation),
                            ),
                            None => (0, None),
                        };
                        let options = InsertOptions {
                            mode: if generation.is_none() {
                                InsertMode::Add
                            } else {
                                InsertMode::Overwrite
                            },
                            if_generation: generation,
                            ..InsertOptions::default()
                        };
                        match kv.insert(&ns, "hits", Bytes::from((count + 1).to_string()), options)
                        {
                            Ok(_) => break,
                            Err(KvError::GenerationMismatch { .. } | KvError::Exists) => lost += 1,
                            Err(e) => panic!("increment: {e}"),
                        }
                    }
                }
                lost
            })
        })
        .collect();
    let mut lost = 0;
    for racer in racers {
        lost += racer.await.unwrap();
    }
    let last = a.bucket.last_revision().await.unwrap();
    a.sees(last).await;
    b.sees(last).await;
    for node in [&a, &b] {
        let entry = node.kv.lookup(&ns, "hits").unwrap().unwrap();
        assert_eq!(
            &entry.value[..],
            b"400",
            "{lost} compare-and-swaps lost a race and retried"
        );
    }
    eprintln!("2 x 200 compare-and-swap increments: 400, {lost} lost races retried");

    // A value twenty times a message's size, written on one node, read on the other.
    let large: Bytes = (0..20 << 20)
        .map(|i: u32| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let (kv, ns2, value) = (b.kv.clone(), ns.clone(), large.clone());
    let generation = blocking(move || kv.insert(&ns2, "big", value, InsertOptions::default()))
        .await
        .unwrap();
    a.sees(generation).await;
    let read = a.kv.lookup(&ns, "big").unwrap().expect("the large value");
    assert_eq!(read.value.len(), large.len());
    assert!(read.value == large, "the same bytes");
    assert_eq!(read.generation, generation);
    // Replacing it with a small one leaves no object behind.
    let (kv, ns2) = (a.kv.clone(), ns.clone());
    let generation = blocking(move || {
        kv.insert(
            &ns2,
            "big",
            Bytes::from_static(b"small"),
            InsertOptions::default(),
        )
    })
    .await
    .unwrap();
    b.sees(generation).await;
    assert_eq!(
        &b.kv.lookup(&ns, "big").unwrap().unwrap().value[..],
        b"small"
    );

    // An expiry, seen on both nodes at the same moment.
    let (kv, ns2) = (a.kv.clone(), ns.clone());
    let options = InsertOptions {
        ttl: Some(Duration::from_millis(1500)),
        ..InsertOptions::default()
    };
    let generation = blocking(move || kv.insert(&ns2, "brief", Bytes::from_static(b"x"), options))
        .await
        .unwrap();
    b.sees(generation).await;
    let expires =
        b.kv.lookup(&ns, "brief")
            .unwrap()
            .unwrap()
            .expires_at_ms
            .unwrap();
    assert_eq!(
        a.kv.lookup(&ns, "brief").unwrap().unwrap().expires_at_ms,
        Some(expires)
    );
    while verge_store::now_ms() <= expires {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.kv.lookup(&ns, "brief").unwrap().is_none());
    assert!(b.kv.lookup(&ns, "brief").unwrap().is_none());
    // The bucket drops it too (its per-message TTL), and says so to every replica.
    let dropped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let last = a.bucket.last_revision().await.unwrap();
            if last > generation {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the bucket marks the expired key removed");
    a.sees(dropped).await;
    b.sees(dropped).await;

    // A restarted node resumes its feed from what it applied.
    let resumed_from = *b.bucket.applied().borrow();
    drop(b);
    let (kv, ns2) = (a.kv.clone(), ns.clone());
    let generation = blocking(move || {
        kv.insert(
            &ns2,
            "while-away",
            Bytes::from_static(b"1"),
            InsertOptions::default(),
        )
    })
    .await
    .unwrap();
    let b = kv_node(&urls, &dir.path().join("b"), "race", false).await;
    assert_eq!(
        *b.bucket.applied().borrow(),
        resumed_from,
        "no re-read from the start"
    );
    b.sees(generation).await;
    assert_eq!(
        &b.kv.lookup(&ns, "while-away").unwrap().unwrap().value[..],
        b"1"
    );
    assert_eq!(
        &b.kv.lookup(&ns, "hits").unwrap().unwrap().value[..],
        b"400"
    );
}

/// 1,000 guest KV writes while one NATS server of three is killed with SIGKILL
/// (after 300) and restarted (after 700): every write acknowledged is in the bucket,
/// as a node that starts afresh reads it, and in the writer's replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_kv_loses_no_acknowledged_write_when_a_server_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(dir.path()).await;
    let urls = cluster.urls();
    let writer = kv_node(&urls, &dir.path().join("writer"), "kill", true).await;
    let ns = Namespace::new("shop", "orders", KvLimits::DEFAULT);
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    for i in 0..1000u32 {
        if i == 300 {
            cluster.kill(0);
        }
        if i == 700 {
            cluster.restart(0).unwrap();
        }
        let (kv, ns2) = (writer.kv.clone(), ns.clone());
        let key = format!("order-{i:04}");
        let key2 = key.clone();
        let options = InsertOptions {
            mode: InsertMode::Add,
            ..InsertOptions::default()
        };
        match blocking(move || kv.insert(&ns2, &key2, Bytes::from(i.to_string()), options)).await {
            Ok(generation) => acknowledged.push((key, i, generation)),
            Err(KvError::Storage(verge_store::BackendError::Unavailable(why))) => refused.push(why),
            Err(e) => panic!("write {i}: {e}"),
        }
    }
    eprintln!(
        "{} of 1,000 writes acknowledged; {} refused, the first because {:?}",
        acknowledged.len(),
        refused.len(),
        refused.first()
    );
    assert!(
        acknowledged.len() >= 900,
        "R3 keeps taking writes with one server down: {} acknowledged, {} refused",
        acknowledged.len(),
        refused.len()
    );
    cluster.wait_ready(Duration::from_secs(30)).await.unwrap();
    // A node that never saw any of it, reading through the restarted server alone.
    let fresh = kv_node(&urls[..1], &dir.path().join("fresh"), "kill", false).await;
    let last = fresh.bucket.last_revision().await.unwrap();
    fresh.sees(last).await;
    for (key, i, generation) in &acknowledged {
        for (who, node) in [("the writer", &writer), ("a fresh node", &fresh)] {
            let entry = node.kv.lookup(&ns, key).unwrap();
            assert_eq!(
                entry.map(|e| (e.value, e.generation)),
                Some((Bytes::from(i.to_string()), *generation)),
                "{who}: {key} was acknowledged at generation {generation}"
            );
        }
    }
}

/// A server that cannot start is named at once with the end of its log (the test's
/// directory is gone by the time anyone reads the message), after the harness has
/// tried fresh ports in case one was taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_exits_at_start_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let options = verge_fleet::ServerOptions {
        extra_config: "no_such_option_for_a_test: 1".into(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let error = match NatsCluster::start_with(1, dir.path(), options).await {
        Ok(_) => panic!("a server with an unknown option started"),
        Err(e) => e.to_string(),
    };
    assert!(error.starts_with("nats-1 exited at start"), "{error}");
    assert!(error.contains("no_such_option_for_a_test"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30), "{error}");
}
