//! KV latency in-process: `lookup` and durable `insert` on the redb backend (and the
//! memory backend for reference), p50/p99 in µs over N operations each.
//!
//!   kv-latency [DIR] [N]     DIR holds the store file (default: a temp dir under
//!                             /var/tmp, on disk); N operations (default 2000)

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use verge_store::{Backend, InsertOptions, Kv, KvLimits, MemoryBackend, Namespace, RedbBackend};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn measure(label: &str, n: usize, mut op: impl FnMut(usize)) {
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let start = Instant::now();
            op(i);
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "| {label} | {n} | {:.1} | {:.1} |",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

fn run(name: &str, backend: Arc<dyn Backend>, n: usize) {
    let kv = Kv::new(backend);
    let ns = Namespace::new("bench", "links", KvLimits::DEFAULT);
    let value = Bytes::from(vec![b'v'; 100]);
    measure(&format!("{name} insert (100 B)"), n, |i| {
        kv.insert(
            &ns,
            &format!("key{i:06}"),
            value.clone(),
            InsertOptions::default(),
        )
        .unwrap();
    });
    measure(&format!("{name} lookup (hit)"), n, |i| {
        assert!(
            kv.lookup(&ns, &format!("key{:06}", (i * 7919) % n))
                .unwrap()
                .is_some()
        );
    });
    measure(&format!("{name} lookup (miss)"), n, |i| {
        assert!(kv.lookup(&ns, &format!("absent{i}")).unwrap().is_none());
    });
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = match args.next() {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir_in("/var/tmp")?,
    };
    let n: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    println!("| operation | n | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|");
    run(
        "redb (durable)",
        Arc::new(RedbBackend::open(&dir.path().join("kv.redb"))?),
        n,
    );
    run("memory", Arc::new(MemoryBackend::new()), n);
    Ok(())
}
