//! Host routing on a node: finding the app for a request's host among 1 and among
//! 1,000 apps, by exact name and by wildcard. The HTTP benchmark (`bench/node.sh`)
//! measures the same against a whole request, where the machine's noise is larger
//! than the difference.

use criterion::{Criterion, criterion_group, criterion_main};
use verge_server::HostRoutes;

fn routes(apps: usize) -> HostRoutes<u32> {
    let mut routes = HostRoutes::default();
    for i in 0..apps {
        routes.set(
            &format!("s{i}"),
            i as u32,
            &[format!("s{i}.example.com"), format!("*.s{i}.example.com")],
        );
    }
    routes
}

fn routing(c: &mut Criterion) {
    for apps in [1, 1000] {
        let table = routes(apps);
        let exact = format!("s{}.example.com", apps / 2);
        let wildcard = format!("eu.s{}.example.com", apps / 2);
        c.bench_function(&format!("resolve exact, {apps} apps"), |b| {
            b.iter(|| table.resolve(std::hint::black_box(&exact)))
        });
        c.bench_function(&format!("resolve wildcard, {apps} apps"), |b| {
            b.iter(|| table.resolve(std::hint::black_box(&wildcard)))
        });
    }
}

criterion_group!(benches, routing);
criterion_main!(benches);
