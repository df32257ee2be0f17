//! In-process: instantiate a fresh instance and handle one `hello` request, end to end
//! (request in, whole response body out), as `verge serve` does per request.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use verge_runtime::{
    App, AppSettings, GuestLogSink, GuestStream, RequestContext, Runtime, RuntimeConfig,
};

struct Discard;

impl GuestLogSink for Discard {
    fn guest_line(&self, _: &str, _: GuestStream, _: &str) {}
}

fn bench(c: &mut Criterion) {
    let components = verge_bench::guest_components().expect("building the guest components");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let ctx = RequestContext {
        request_id: Arc::from("bench"),
        log: Arc::new(Discard),
    };
    for guest in ["raw-hello", "hello"] {
        let app = App::load_file(
            &runtime,
            &components.join(format!("{guest}.wasm")),
            AppSettings::default(),
        )
        .unwrap();
        c.bench_function(&format!("instantiate+handle/{guest}"), |b| {
            b.to_async(&tokio).iter(|| async {
                let req = http::Request::get("http://localhost/")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let execution = app.handle(req, ctx.clone()).await;
                let body = execution
                    .response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes();
                assert!(!body.is_empty());
                execution.report.wait().await
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
