//! In-process: instantiate a fresh instance and handle one `hello` request, end to end
//! (request in, whole response body out), as `verge serve` does per request.
//!
//! Compares memory-reset strategies on one machine in one run: copy-on-write only,
//! plus keep-resident `memset`, plus `PAGEMAP_SCAN` (reset only dirtied pages); and
//! prints minor page faults per request for each.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use verge_runtime::{
    App, AppConfig, GuestLogSink, GuestStream, RequestContext, Runtime, RuntimeConfig,
};

struct Discard;

impl GuestLogSink for Discard {
    fn guest_line(&self, _: &str, _: GuestStream, _: &str) {}
}

/// (name, keep-resident bytes, PAGEMAP_SCAN)
const STRATEGIES: [(&str, usize, bool); 3] = [
    ("cow", 0, false),
    ("cow+keep-resident", 2 << 20, false),
    ("cow+keep-resident+pagemap-scan", 2 << 20, true),
];

async fn one_request(app: &App, ctx: &RequestContext) {
    let req = http::Request::get("http://localhost/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let execution = app.handle(req, ctx.clone()).await;
    let body = execution.response.into_body().collect().await.unwrap();
    assert!(!body.to_bytes().is_empty());
    assert!(execution.report.wait().await.outcome.is_ok());
}

fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[7].parse().unwrap()
}

fn bench(c: &mut Criterion) {
    // VERGE_BENCH_COMPONENTS: measure components built elsewhere (same file names).
    let components = match std::env::var_os("VERGE_BENCH_COMPONENTS") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => verge_bench::guest_components().expect("building the guest components"),
    };
    // One thread, as a server worker handles a request: the instance teardown that
    // `handle` defers runs on this thread before the next iteration, and is counted.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ctx = RequestContext::new("bench", Arc::new(Discard));
    let mut faults = Vec::new();
    for (strategy, keep_resident, pagemap_scan) in STRATEGIES {
        let runtime = Runtime::new(RuntimeConfig {
            memory_keep_resident_bytes: keep_resident,
            pagemap_scan,
            ..RuntimeConfig::default()
        })
        .unwrap();
        for guest in ["raw-hello", "hello"] {
            let path = components.join(format!("{guest}.wasm"));
            let app = App::load_file(&runtime, &path, AppConfig::default()).unwrap();
            c.bench_function(&format!("instantiate+handle/{guest}/{strategy}"), |b| {
                b.to_async(&tokio).iter(|| one_request(&app, &ctx))
            });
            let n = 2000;
            let before = minor_faults();
            tokio.block_on(async {
                for _ in 0..n {
                    one_request(&app, &ctx).await;
                }
            });
            faults.push(format!(
                "{guest}/{strategy}: {:.2} minor faults per request",
                (minor_faults() - before) as f64 / n as f64
            ));
        }
    }
    for line in faults {
        println!("{line}");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
