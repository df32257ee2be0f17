//! `verge:edge/ratelimit` through a real guest and the real server: counts stay
//! accurate under 32 concurrent clients, `check-rate` blocks at the limit and the
//! penalty box holds the entry, and bad arguments are refused.

mod common;

use common::*;

fn serve() -> (Verge, tempfile::TempDir) {
    let app = app_dir_for(&guest("ratelimit"), "");
    let verge = Verge::serve(&[
        app.path().to_str().unwrap(),
        "--no-build",
        "--kv-backend",
        "memory",
    ]);
    (verge, app)
}

async fn call(verge: &Verge, method: &str, path: &str) -> (u16, String) {
    let resp = client()
        .request(method.parse().unwrap(), verge.url(path))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// `requests` calls of `method path` from `clients` concurrent clients; the statuses.
async fn burst(
    verge: &Verge,
    clients: usize,
    requests: usize,
    method: &str,
    path: &str,
) -> Vec<u16> {
    let url = verge.url(path);
    let per_client = requests / clients;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            let method: reqwest::Method = method.parse().unwrap();
            tokio::spawn(async move {
                let client = client();
                let mut statuses = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let resp = client.request(method.clone(), &url).send().await.unwrap();
                    statuses.push(resp.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_are_accurate_under_32_concurrent_clients() {
    let (verge, _app) = serve();
    let statuses = burst(&verge, 32, 3200, "POST", "/hit/10.0.0.1?delta=2").await;
    assert!(statuses.iter().all(|&s| s == 200));
    let (_, count) = call(&verge, "GET", "/count/10.0.0.1?seconds=60").await;
    let count: f64 = count.parse().unwrap();
    let expected = 6400.0;
    assert!(
        (count - expected).abs() / expected <= 0.10,
        "counted {count}, sent {expected}"
    );
    let (_, other) = call(&verge, "GET", "/count/10.0.0.2?seconds=60").await;
    assert_eq!(other, "0", "entries are counted apart");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_rate_lets_the_limit_through_and_then_blocks() {
    let (verge, _app) = serve();
    // 20 per second over 60 s: about 1,200 requests pass, then the client is blocked.
    // (A 60 s window holds the whole burst even on a slow machine.)
    let statuses = burst(
        &verge,
        32,
        1600,
        "POST",
        "/check/10.0.0.9?limit=20&window=60&ttl=120",
    )
    .await;
    let allowed = statuses.iter().filter(|&&s| s == 200).count() as f64;
    let blocked = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(allowed as usize + blocked, 1600);
    assert!(
        (allowed - 1200.0).abs() / 1200.0 <= 0.10,
        "{allowed} allowed for a limit of 1,200 per 60 s"
    );
    assert_eq!(call(&verge, "GET", "/penalized/10.0.0.9").await.1, "true");
    assert_eq!(
        call(&verge, "POST", "/check/10.0.0.9?limit=100000&ttl=120")
            .await
            .0,
        429,
        "still in the penalty box"
    );
    assert_eq!(
        call(&verge, "POST", "/check/10.0.0.10?limit=100&ttl=120")
            .await
            .0,
        200,
        "another client is not"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_penalty_box_and_bad_arguments() {
    let (verge, _app) = serve();
    assert_eq!(call(&verge, "GET", "/penalized/u1").await.1, "false");
    call(&verge, "POST", "/penalize/u1?ttl=60").await;
    assert_eq!(call(&verge, "GET", "/penalized/u1").await.1, "true");
    assert_eq!(
        call(&verge, "POST", "/penalize/u1?ttl=7200").await,
        (
            400,
            "the penalty-box TTL must be 1 second to 1 hour, not 7200 s".into()
        )
    );
    assert_eq!(
        call(&verge, "GET", "/count/u1?seconds=90").await,
        (
            400,
            "the count duration must be 1 to 60 seconds, not 90".into()
        )
    );
}
