//! A bounded soak: one node with 20 services under mixed and hostile traffic for
//! `VERGE_SOAK_SECONDS` (120 by default, as CI runs it; `bench/soak.sh` runs 1800),
//! with a deploy every `VERGE_SOAK_DEPLOY_SECONDS` and a `kill -9` and restart half
//! way. It checks what a node meant to run for months must do:
//!
//! - no good request fails (hello, KV, cache hits, proxying to a good origin, a
//!   hostile guest's good route), except while the node is down for the restart;
//! - no acknowledged KV write is lost, across the restart too;
//! - RSS, open files, threads, the KV file and the cache stay flat after warm-up.
//!
//! Alongside: origins that hang, cut their bodies or answer garbage, guests that
//! bomb their memory, spin or panic, clients that send their heads a byte at a time,
//! and purges. Samples go to stderr as `sample,…` lines (CSV), which `bench/soak.sh`
//! turns into the chart in BENCHMARKS.md.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use common::node::*;
use common::origin::{Origin, RawOrigin};
use tokio::io::AsyncWriteExt;

/// Where the node is (it moves when it restarts).
#[derive(Clone)]
struct Target {
    base: String,
    admin: String,
}

/// A small xorshift generator: the mix is random, the test needs no seed of its own.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What went wrong, with when it happened (failures while the node was down for its
/// restart are expected).
#[derive(Default)]
struct Record {
    failures: Mutex<Vec<(Instant, String)>>,
    good: AtomicU64,
    tolerated: AtomicU64,
}

impl Record {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push((Instant::now(), what));
    }
}

/// One sample of the node process and its state.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    pid: u32,
    rss_kib: u64,
    fds: u64,
    threads: u64,
    kv_bytes: u64,
    cache_bytes: u64,
}

/// One request of the mix: whether it is a good one (it must succeed), and the
/// statuses it may get.
struct Ask {
    host: String,
    method: &'static str,
    path: String,
    good: bool,
    allowed: &'static [u16],
}

impl Ask {
    fn good(
        host: String,
        method: &'static str,
        path: impl Into<String>,
        allowed: &'static [u16],
    ) -> Ask {
        Ask {
            host,
            method,
            path: path.into(),
            good: true,
            allowed,
        }
    }

    fn bad(
        host: String,
        method: &'static str,
        path: impl Into<String>,
        allowed: &'static [u16],
    ) -> Ask {
        Ask {
            good: false,
            ..Ask::good(host, method, path, allowed)
        }
    }
}

fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The size of every `.redb` file under `dir`.
fn redb_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            total += redb_bytes(&path);
        } else if path.extension().is_some_and(|e| e == "redb") {
            total += entry.metadata().map_or(0, |m| m.len());
        }
    }
    total
}

fn seconds(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const HELLOS: usize = 8;
const KVS: usize = 4;
const CACHES: usize = 3;
const PROXIES: usize = 3;
const HOSTILES: usize = 2;
/// Keys each KV writer cycles through: the store's size stays bounded.
const SLOTS: u64 = 64;

async fn send(
    http: &reqwest::Client,
    target: &RwLock<Target>,
    host: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let base = target.read().unwrap().base.clone();
    let resp = http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .header("host", host)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{method} {host}{path}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("{method} {host}{path}: body: {e}"))?;
    Ok((status, text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_under_mixed_and_hostile_traffic_stays_flat_and_loses_nothing() {
    let duration = Duration::from_secs(seconds("VERGE_SOAK_SECONDS", 120));
    let deploy_every = Duration::from_secs(seconds("VERGE_SOAK_DEPLOY_SECONDS", 20));
    let sample_every = Duration::from_secs(seconds("VERGE_SOAK_SAMPLE_SECONDS", 5));
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let origin = Origin::start().await;
    let raw = RawOrigin::start().await;
    let args = ["--edge-cache-memory", "64MiB"];
    let (verge, admin) = start_with(data.path(), &args, &[]);

    // The 20 services.
    deploy_all(&admin, "hello", HELLOS, package(packages.path(), "v0")).await;
    let kv = package_of(packages.path(), "keyvalue", "[kv_stores.data]\n");
    deploy_all(&admin, "kv", KVS, kv).await;
    let http_cache = "[http_cache]\nenabled = true\n";
    let cacheable = package_of(packages.path(), "cacheable", http_cache);
    deploy_all(&admin, "cache", CACHES, cacheable).await;
    let backends = format!(
        "[backends.good]\nurl = \"http://127.0.0.1:{}\"\nallow_private = true\n\
         [backends.raw]\nurl = \"http://{}\"\nallow_private = true\nfirst_byte_timeout = \"500ms\"\n\
         between_bytes_timeout = \"500ms\"\n",
        origin.port(),
        raw.addr
    );
    let outbound = package_of(packages.path(), "outbound", &backends);
    deploy_all(&admin, "proxy", PROXIES, outbound).await;
    let limits = "[limits]\nmemory = \"32MiB\"\nwall_time = \"2s\"\n";
    let hostile = package_of(packages.path(), "hostile", limits);
    deploy_all(&admin, "hostile", HOSTILES, hostile).await;

    let target = Arc::new(RwLock::new(Target {
        base: format!("http://{}", verge.addr),
        admin: admin.clone(),
    }));
    let record = Arc::new(Record::default());
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();

    // Mixed traffic: good requests must succeed; the others may fail as designed,
    // but never with anything else.
    for worker in 0..6u64 {
        let (target, record, stop, http) =
            (target.clone(), record.clone(), stop.clone(), http.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((worker + 1) * 0x1234_5678));
            while !stop.load(Ordering::Relaxed) {
                let roll = rng.below(100);
                let ask = match roll {
                    0..30 => {
                        let i = rng.below(HELLOS as u64);
                        Ask::good(format!("hello-{i}.test"), "GET", "/greeting", &[200])
                    }
                    30..40 => {
                        let (writer, slot) = (rng.below(KVS as u64), rng.below(SLOTS));
                        let path = format!("/kv/data/w{writer}-{slot}");
                        Ask::good(format!("kv-{writer}.test"), "GET", path, &[200, 404])
                    }
                    40..58 => {
                        let (i, item) = (rng.below(CACHES as u64), rng.below(200));
                        let path = format!("/item-{item}?cc=max-age%3D30&sk=all%20item-{item}");
                        Ask::good(format!("cache-{i}.test"), "GET", path, &[200])
                    }
                    58..70 => {
                        let i = rng.below(PROXIES as u64);
                        let path = "/fetch/http/good/hello";
                        Ask::good(format!("proxy-{i}.test"), "GET", path, &[200])
                    }
                    70..76 => {
                        let i = rng.below(PROXIES as u64);
                        let what = ["silent", "cut", "garbage"][rng.below(3) as usize];
                        let path = format!("/fetch/http/raw/{what}");
                        Ask::bad(format!("proxy-{i}.test"), "GET", path, &[200, 502, 504])
                    }
                    76..77 => {
                        let i = rng.below(HOSTILES as u64);
                        let what = ["/memory-bomb", "/loop", "/panic"][rng.below(3) as usize];
                        Ask::bad(format!("hostile-{i}.test"), "GET", what, &[500, 503, 504])
                    }
                    _ => {
                        let i = rng.below(HOSTILES as u64);
                        Ask::good(format!("hostile-{i}.test"), "POST", "/echo", &[200])
                    }
                };
                let Ask {
                    host,
                    method,
                    path,
                    good,
                    allowed,
                } = ask;
                let body = if method == "POST" {
                    b"ping".to_vec()
                } else {
                    Vec::new()
                };
                match send(&http, &target, &host, method, &path, body).await {
                    Ok((status, text)) if allowed.contains(&status) => {
                        if host.starts_with("hello-") && !text.starts_with('v') {
                            record.fail(format!("{host}{path}: {text}"));
                        }
                        let counter = if good {
                            &record.good
                        } else {
                            &record.tolerated
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((status, text)) => {
                        record.fail(format!("{method} {host}{path} → {status}: {text:.200}"))
                    }
                    Err(e) => {
                        if good {
                            record.fail(e);
                        }
                    }
                }
            }
        }));
    }

    // KV writers: each owns its keys and writes them in turn, numbering its writes,
    // so a key must hold its last acknowledged write or a later one.
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    for writer in 0..KVS as u64 {
        let (target, record, stop, http, acked) = (
            target.clone(),
            record.clone(),
            stop.clone(),
            http.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let host = format!("kv-{writer}.test");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{writer}-{}", n % SLOTS);
                let value = format!("{writer}:{n}:{}", "x".repeat((n % 7 * 100) as usize));
                let path = format!("/kv/data/{key}");
                match send(
                    &http,
                    &target,
                    &host,
                    "PUT",
                    &path,
                    value.clone().into_bytes(),
                )
                .await
                {
                    Ok((200, _)) => {
                        acked.lock().unwrap().insert(key, value);
                    }
                    Ok((status, text)) => {
                        record.fail(format!("PUT {host}{path} → {status}: {text:.200}"))
                    }
                    Err(e) => record.fail(e),
                }
                n += 1;
            }
        }));
    }

    // Slow clients: heads sent a byte at a time, and connections left idle.
    {
        let (target, stop) = (target.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let base = target.read().unwrap().base.clone();
                let addr = base.trim_start_matches("http://").to_owned();
                if let Ok(mut conn) = tokio::net::TcpStream::connect(&addr).await {
                    for byte in b"GET /greeting HTTP/1.1\r\nhost: hello-1.test\r\n" {
                        if stop.load(Ordering::Relaxed) || conn.write_all(&[*byte]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }

    // Deploys: a new version of hello-0 every `deploy_every`; purges of cache-0.
    {
        let (target, record, stop, packages, http) = (
            target.clone(),
            record.clone(),
            stop.clone(),
            packages.path().to_owned(),
            http.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut version = 1u32;
            let mut next = Instant::now() + deploy_every;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if Instant::now() < next {
                    continue;
                }
                next += deploy_every;
                let admin = target.read().unwrap().admin.clone();
                let package = tokio::task::spawn_blocking({
                    let packages = packages.clone();
                    move || package(&packages, &format!("v{version}"))
                })
                .await
                .unwrap();
                // Refused while the node is down for its restart: recorded, and
                // excluded with the rest of that window.
                let steps = async {
                    let upload = "/admin/v1/services/hello-0/versions";
                    let (status, body) = admin_post(&http, &admin, upload, package).await?;
                    if status != 201 {
                        return Err(format!("upload → {status}: {body}"));
                    }
                    version += 1;
                    let number = body["number"].as_u64().unwrap_or_default();
                    let activate = "/admin/v1/services/hello-0/activate";
                    let which = serde_json::json!({ "version": number }).to_string();
                    let (status, body) =
                        admin_post(&http, &admin, activate, which.into_bytes()).await?;
                    if status != 200 {
                        return Err(format!("activate → {status}: {body}"));
                    }
                    let purge = "/admin/v1/services/cache-0/purge/keys/all";
                    let (status, body) = admin_post(&http, &admin, purge, Vec::new()).await?;
                    if status != 200 {
                        return Err(format!("purge → {status}: {body}"));
                    }
                    Ok(())
                };
                if let Err(why) = steps.await {
                    record.fail(why);
                }
            }
        }));
    }

    // Samples, until the end; the node's process changes at the restart.
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let pid = Arc::new(AtomicU64::new(u64::from(verge.pid())));
    {
        let (target, stop, samples, pid, dir) = (
            target.clone(),
            stop.clone(),
            samples.clone(),
            pid.clone(),
            data.path().to_owned(),
        );
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            eprintln!("sample,seconds,pid,rss_kib,fds,threads,kv_bytes,cache_bytes");
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(sample_every).await;
                let pid = pid.load(Ordering::Relaxed) as u32;
                let admin = target.read().unwrap().admin.clone();
                let metrics = http
                    .get(format!("{admin}/metrics"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await;
                let metrics = match metrics {
                    Ok(resp) => resp.text().await.unwrap_or_default(),
                    Err(_) => continue,
                };
                let cache_bytes = metrics
                    .lines()
                    .find_map(|l| l.strip_prefix("verge_cache_memory_bytes "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let fds =
                    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
                let sample = Sample {
                    at_s: started.elapsed().as_secs_f64(),
                    pid,
                    rss_kib: proc_status(pid, "VmRSS:"),
                    fds,
                    threads: proc_status(pid, "Threads:"),
                    kv_bytes: redb_bytes(&dir),
                    cache_bytes,
                };
                eprintln!(
                    "sample,{:.0},{},{},{},{},{},{}",
                    sample.at_s,
                    sample.pid,
                    sample.rss_kib,
                    sample.fds,
                    sample.threads,
                    sample.kv_bytes,
                    sample.cache_bytes
                );
                samples.lock().unwrap().push(sample);
            }
        }));
    }

    // Half way: kill -9, restart on the same data, and check every acknowledged
    // write.
    tokio::time::sleep(duration / 2).await;
    let killed_at = Instant::now();
    drop(verge);
    let (verge, admin) = start_with(data.path(), &args, &[]);
    pid.store(u64::from(verge.pid()), Ordering::Relaxed);
    *target.write().unwrap() = Target {
        base: format!("http://{}", verge.addr),
        admin: admin.clone(),
    };
    let back_at = Instant::now();
    eprintln!("restarted after kill -9 in {:?}", back_at - killed_at);
    check_acked(&http, &target, &acked, "after the restart").await;

    tokio::time::sleep(duration.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    check_acked(&http, &target, &acked, "at the end").await;

    // No good request failed outside the restart (and the second after it, while
    // clients' pooled connections to the killed process fail).
    let failures: Vec<String> = record
        .failures
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at < killed_at || *at > back_at + Duration::from_secs(1))
        .map(|(_, what)| what.clone())
        .collect();
    let good = record.good.load(Ordering::Relaxed);
    let tolerated = record.tolerated.load(Ordering::Relaxed);
    eprintln!("good requests: {good}, hostile or failing-origin requests: {tolerated}");
    assert!(good > 1000, "the soak sent only {good} good requests");
    assert!(
        failures.is_empty(),
        "{} good requests failed, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Flat after warm-up: in each process's run, its last third is no higher than
    // its middle third, within a margin.
    let samples = samples.lock().unwrap().clone();
    for pid in [samples.first().unwrap().pid, samples.last().unwrap().pid] {
        let run: Vec<Sample> = samples.iter().filter(|s| s.pid == pid).copied().collect();
        assert!(run.len() >= 6, "too few samples of process {pid}: {run:?}");
        let third = run.len() / 3;
        let (middle, last) = (&run[third..2 * third], &run[2 * third..]);
        let max = |part: &[Sample], f: fn(&Sample) -> u64| part.iter().map(f).max().unwrap();
        let grew = |f: fn(&Sample) -> u64, factor: f64, slack: u64, what: &str| {
            let (before, after) = (max(middle, f), max(last, f));
            assert!(
                after as f64 <= before as f64 * factor + slack as f64,
                "{what} of process {pid} grew from {before} to {after}: {run:?}"
            );
        };
        grew(|s| s.rss_kib, 1.25, 32 << 10, "RSS (KiB)");
        grew(|s| s.fds, 1.0, 32, "open files");
        grew(|s| s.threads, 1.0, 8, "threads");
        grew(|s| s.kv_bytes, 1.5, 4 << 20, "the KV file's size");
        assert!(
            max(&run, |s| s.cache_bytes) <= 64 << 20,
            "the cache outgrew --edge-cache-memory: {run:?}"
        );
    }
    drop(verge);
}

/// `POST admin PATH` as root: the status and the JSON body, or why it was not sent.
async fn admin_post(
    http: &reqwest::Client,
    admin: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, serde_json::Value), String> {
    let resp = http
        .post(format!("{admin}{path}"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("POST {path}: {e}"))?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    ))
}

/// Deploys `package` as services `PREFIX-0` … on hosts `PREFIX-0.test` ….
async fn deploy_all(admin: &str, prefix: &str, count: usize, package: Vec<u8>) {
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        deploy(admin, &name, &format!("{name}.test"), package.clone()).await;
    }
}

/// The write number in a value the writers wrote (`WRITER:N:…`).
fn write_number(value: &str) -> Option<u64> {
    value.split(':').nth(1)?.parse().ok()
}

/// Every acknowledged write reads back: the last acknowledged value of each key, or
/// one written after it (the one in flight when the node was killed, or a later one:
/// the writers keep writing while this reads).
async fn check_acked(
    http: &reqwest::Client,
    target: &RwLock<Target>,
    acked: &Mutex<HashMap<String, String>>,
    when: &str,
) {
    let expected: Vec<(String, String)> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut lost = Vec::new();
    for (key, last) in &expected {
        let writer = key[1..].split('-').next().unwrap();
        let host = format!("kv-{writer}.test");
        let got = send(
            http,
            target,
            &host,
            "GET",
            &format!("/kv/data/{key}"),
            Vec::new(),
        )
        .await;
        let ok = match &got {
            Ok((200, value)) => write_number(value) >= write_number(last),
            _ => false,
        };
        if !ok {
            lost.push(format!("{key}: acknowledged {last:.40}, read {got:?}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged KV writes lost {when}:\n{}",
        lost.len(),
        lost.join("\n")
    );
    eprintln!("{} acknowledged KV keys read back {when}", expected.len());
}
