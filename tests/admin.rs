//! The admin listener's health routes and per-app request metrics, through the real
//! binary: counts by status class, guest runs, CPU time, failures by kind and the
//! latency histogram move with the requests that were made.

mod common;

use common::*;

const TOKEN: &str = "00112233445566778899aabbccddeeff";

async fn get(url: String, token: Option<&str>) -> (u16, String) {
    let mut req = client().get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The value of the metric line starting with `name` (labels included).
fn value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_per_app_metrics() {
    let app = app_dir_for(&guest("hostile"), "");
    let (verge, admin) = serve_with_admin(&[app.path().to_str().unwrap(), "--no-build"], TOKEN);

    // Health routes answer load balancers without a token.
    assert_eq!(
        get(format!("http://{admin}/healthz"), None).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        get(format!("http://{admin}/readyz"), None).await,
        (200, "ready\n".into())
    );
    assert_eq!(get(format!("http://{admin}/metrics"), None).await.0, 401);

    let mut statuses = Vec::new();
    for path in ["/echo", "/echo", "/loop", "/panic"] {
        let resp = client()
            .post(verge.url(path))
            .body("x")
            .send()
            .await
            .unwrap();
        let id = request_id(&resp);
        statuses.push(resp.status().as_u16());
        verge.access_line(&id);
    }
    assert_eq!(statuses, [200, 200, 503, 500]);

    let (status, metrics) = get(format!("http://{admin}/metrics"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    let app = "app=\"test-app\"";
    assert_eq!(
        value(
            &metrics,
            &format!("verge_requests_total{{{app},class=\"2xx\"}}")
        ),
        2.0
    );
    assert_eq!(
        value(
            &metrics,
            &format!("verge_requests_total{{{app},class=\"5xx\"}}")
        ),
        2.0
    );
    assert_eq!(
        value(&metrics, &format!("verge_instances_total{{{app}}}")),
        4.0
    );
    assert_eq!(
        value(
            &metrics,
            &format!("verge_guest_failures_total{{{app},outcome=\"limit:cpu\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            &format!("verge_guest_failures_total{{{app},outcome=\"trap\"}}")
        ),
        1.0
    );
    // The loop ran to its 50 ms CPU limit.
    assert!(value(&metrics, &format!("verge_guest_cpu_seconds_total{{{app}}}")) >= 0.05);
    assert_eq!(
        value(
            &metrics,
            &format!("verge_request_duration_seconds_count{{{app}}}")
        ),
        4.0
    );
    assert_eq!(
        value(
            &metrics,
            &format!("verge_request_duration_seconds_bucket{{{app},le=\"+Inf\"}}")
        ),
        4.0
    );
}
