//! Guest KV on a fleet, in-process: three nodes' `FleetKv`s (each its own NATS
//! connection and replica) on a 3-server NATS cluster on loopback, against the
//! single node's redb store in the same run.
//!
//! - write latency: an acknowledged insert on a fleet node vs a durable redb insert;
//! - read latency: a lookup on a fleet node (its replica) vs on redb;
//! - replication lag: a write acknowledged on A until B's and C's replicas have it,
//!   at a paced rate of writes per second.
//!
//! Usage: `fleet-kv [N] [RATES] [SECONDS]`: N latency samples (default 2000), RATES
//! of writes per second (default 100,1000), SECONDS at each rate (default 5).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use verge_fleet::{FleetKv, KvBucket, NatsCluster, kv_bucket_name};
use verge_store::{InsertOptions, Kv, KvLimits, KvReplica, Namespace, RedbBackend};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn row(label: &str, mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("| {label} | {} | {p50:.1} | {p99:.1} |", times.len());
    (p50, p99)
}

fn timed(n: usize, mut op: impl FnMut(usize)) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let start = Instant::now();
            op(i);
            start.elapsed()
        })
        .collect()
}

/// `n` inserts of `value` under `key000000`…, timed, off the runtime's threads.
async fn inserts(kv: Kv, ns: Namespace, value: Bytes, n: usize) -> anyhow::Result<Vec<Duration>> {
    Ok(tokio::task::spawn_blocking(move || {
        timed(n, |i| {
            kv.insert(
                &ns,
                &format!("key{i:06}"),
                value.clone(),
                InsertOptions::default(),
            )
            .unwrap();
        })
    })
    .await?)
}

/// 10 × `n` lookups of the `n` keys written, in a scattered order.
fn lookups(kv: &Kv, ns: &Namespace, n: usize) -> Vec<Duration> {
    timed(n * 10, |i| {
        let found = kv.lookup(ns, &format!("key{:06}", (i * 7919) % n)).unwrap();
        assert!(found.is_some());
    })
}

struct Node {
    kv: Kv,
    bucket: Arc<KvBucket>,
    _dir: tempfile::TempDir,
}

async fn node(urls: &[String], init: bool) -> anyhow::Result<Node> {
    let dir = tempfile::tempdir_in("/var/tmp")?;
    let js = async_nats::jetstream::new(async_nats::connect(urls).await?);
    let replica = Arc::new(KvReplica::open(
        &dir.path().join("fleet-kv.redb"),
        &kv_bucket_name("bench"),
    )?);
    let bucket = if init {
        KvBucket::create(&js, "bench", 3, replica.clone()).await?
    } else {
        KvBucket::open(&js, "bench", replica.clone()).await?
    };
    let bucket = Arc::new(bucket);
    let backend = FleetKv::new(replica, tokio::runtime::Handle::current());
    backend.attach(bucket.clone());
    Ok(Node {
        kv: Kv::new(Arc::new(backend)),
        bucket,
        _dir: dir,
    })
}

/// When each revision was first applied by a node's replica.
fn record_applied(bucket: &KvBucket) -> Arc<Mutex<Vec<(u64, Instant)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut applied = bucket.applied();
    let log = seen.clone();
    tokio::spawn(async move {
        while applied.changed().await.is_ok() {
            let revision = *applied.borrow_and_update();
            log.lock().unwrap().push((revision, Instant::now()));
        }
    });
    seen
}

/// Writes on `writer` at `rate` per second for `seconds` (from 8 writers, so a slow
/// acknowledgement does not hold the pace); the lag until each of `followers` had
/// each write.
async fn lag(writer: &Node, followers: &[&Node], rate: u64, seconds: u64) -> Vec<Duration> {
    let logs: Vec<_> = followers
        .iter()
        .map(|f| record_applied(&f.bucket))
        .collect();
    let ns = Namespace::new("bench", "lag", KvLimits::DEFAULT);
    let total = rate * seconds;
    let writers = 8;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (kv, ns) = (writer.kv.clone(), ns.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut acks = Vec::new();
            let mut i = w;
            while i < total {
                let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let generation = kv
                    .insert(
                        &ns,
                        &format!("k{i:07}"),
                        Bytes::from_static(&[b'v'; 100]),
                        InsertOptions::default(),
                    )
                    .expect("a write on the fleet");
                acks.push((generation, Instant::now()));
                i += writers;
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.unwrap());
    }
    let last = acks.iter().map(|a| a.0).max().unwrap_or(0);
    // Until each follower's recorder has logged the last revision.
    let until = Instant::now() + Duration::from_secs(30);
    for log in &logs {
        while log.lock().unwrap().last().is_none_or(|(r, _)| *r < last) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let achieved = acks.len() as f64 / start.elapsed().as_secs_f64();
    eprintln!("{rate}/s asked, {achieved:.0}/s written");
    let mut lags = Vec::new();
    for log in logs {
        let log = log.lock().unwrap();
        for (generation, acked) in &acks {
            // The first moment the follower had applied this revision or later.
            let at = log.partition_point(|(r, _)| r < generation);
            let Some((_, seen)) = log.get(at) else {
                panic!("a follower never applied revision {generation}");
            };
            lags.push(seen.saturating_duration_since(*acked));
        }
    }
    lags
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    let rates: Vec<u64> = args
        .next()
        .unwrap_or_else(|| "100,1000".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let seconds: u64 = args.next().map_or(Ok(5), |s| s.parse())?;

    let nats = tempfile::tempdir_in("/var/tmp")?;
    let cluster = NatsCluster::start(3, nats.path()).await?;
    let urls = cluster.urls();
    let a = node(&urls, true).await?;
    let b = node(&urls[1..], false).await?;
    let c = node(&urls[2..], false).await?;
    let redb_dir = tempfile::tempdir_in("/var/tmp")?;
    let redb = Kv::new(Arc::new(RedbBackend::open(
        &redb_dir.path().join("kv.redb"),
    )?));
    let ns = Namespace::new("bench", "links", KvLimits::DEFAULT);
    let value = Bytes::from(vec![b'v'; 100]);

    println!("| operation | n | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|");
    let redb_writes = inserts(redb.clone(), ns.clone(), value.clone(), n).await?;
    let fleet_writes = inserts(a.kv.clone(), ns.clone(), value.clone(), n).await?;
    let redb_write = row("single node: redb insert (durable)", redb_writes);
    let fleet_write = row("fleet node: insert (R3 quorum + replica)", fleet_writes);
    let last = a.bucket.last_revision().await?;
    let mut applied = b.bucket.applied();
    applied.wait_for(|r| *r >= last).await?;
    let (redb_kv, ns2) = (redb.clone(), ns.clone());
    let redb_reads = tokio::task::spawn_blocking(move || lookups(&redb_kv, &ns2, n)).await?;
    let (b_kv, ns2) = (b.kv.clone(), ns.clone());
    let fleet_reads = tokio::task::spawn_blocking(move || lookups(&b_kv, &ns2, n)).await?;
    let redb_read = row("single node: lookup (hit)", redb_reads);
    let fleet_read = row("fleet node: lookup (hit, its replica)", fleet_reads);
    for rate in rates {
        let lags = lag(&a, &[&b, &c], rate, seconds).await;
        row(
            &format!("replication lag at {rate} writes/s (A acked → B, C have it)"),
            lags,
        );
    }
    println!();
    println!(
        "fleet/single: write p50 {:.1}x, p99 {:.1}x; read p50 {:.2}x, p99 {:.2}x",
        fleet_write.0 / redb_write.0,
        fleet_write.1 / redb_write.1,
        fleet_read.0 / redb_read.0,
        fleet_read.1 / redb_read.1,
    );
    drop(cluster);
    Ok(())
}
