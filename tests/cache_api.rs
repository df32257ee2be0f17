//! `verge:edge/cache` through a real guest: inserts and lookups with metadata,
//! surrogate keys and variants, streamed bodies, limits, transactions that collapse
//! concurrent misses and hand over when the winner fails or cancels, soft purges and
//! updates.

mod common;

use std::time::Duration;

use common::*;

fn serve(extra: &[&str]) -> (Verge, tempfile::TempDir) {
    let app = app_dir_for(&guest("cache-api"), "");
    let mut args = vec![app.path().to_str().unwrap(), "--no-build"];
    args.extend_from_slice(extra);
    (Verge::serve(&args), app)
}

async fn call(verge: &Verge, method: &str, path: &str) -> (u16, String) {
    call_with(verge, method, path, &[], Vec::new()).await
}

async fn call_with(
    verge: &Verge,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = client()
        .request(method.parse().unwrap(), verge.url(path))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn objects_with_metadata_keys_and_variants() {
    let (verge, _app) = serve(&[]);
    let (status, _) = call_with(
        &verge,
        "PUT",
        "/put/a?meta=m1&sk=k1,k2",
        &[],
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(status, 201);
    let resp = client().get(verge.url("/get/a")).send().await.unwrap();
    assert_eq!(resp.headers()["x-meta"], "m1");
    assert_eq!(resp.headers()["x-keys"], "k1,k2");
    assert_eq!(resp.headers()["x-stale"], "false");
    assert_eq!(resp.headers()["x-len"], "5");
    assert_eq!(resp.text().await.unwrap(), "hello");

    // Variants chosen by a request header.
    for lang in ["en", "de"] {
        let (status, _) = call_with(
            &verge,
            "PUT",
            "/put/greeting?vary=accept-language",
            &[("accept-language", lang)],
            format!("hello in {lang}").into_bytes(),
        )
        .await;
        assert_eq!(status, 201);
    }
    for (lang, expected) in [
        ("DE", Some("hello in de")),
        ("en", Some("hello in en")),
        ("fr", None),
    ] {
        let (status, text) = call_with(
            &verge,
            "GET",
            "/get/greeting",
            &[("accept-language", lang)],
            vec![],
        )
        .await;
        match expected {
            Some(expected) => assert_eq!(text, expected, "{lang}"),
            None => assert_eq!(status, 404, "{lang}"),
        }
    }

    // A large body streams in and out.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (status, _) = call_with(&verge, "PUT", "/put/big", &[], big.clone()).await;
    assert_eq!(status, 201);
    let got = client()
        .get(verge.url("/get/big"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big);

    // Purges: by surrogate key, by key.
    assert_eq!(
        call(&verge, "POST", "/purge/k2").await,
        (200, "purged 1".into())
    );
    assert_eq!(call(&verge, "GET", "/get/a").await.0, 404);
    assert_eq!(
        call(&verge, "POST", "/purge-key/greeting").await,
        (200, "purged 2".into())
    );
    assert_eq!(call(&verge, "GET", "/get/greeting").await.0, 404);

    // Bad input is refused with the reason.
    let long = format!("/get/{}", "k".repeat(5000));
    let (status, text) = call(&verge, "GET", &long).await;
    assert_eq!(status, 400);
    assert!(text.contains("1 to 4096 bytes"), "{text}");
    let (status, text) =
        call_with(&verge, "PUT", "/put/x?sk=has%20space", &[], b"v".to_vec()).await;
    assert_eq!(status, 400);
    assert!(text.contains("without spaces"), "{text}");
    assert_eq!(call(&verge, "GET", "/get/x").await.0, 404, "nothing stored");
}

#[tokio::test]
async fn objects_over_the_limit_are_refused_and_not_stored() {
    let (verge, _app) = serve(&["--edge-cache-max-object", "64KiB"]);
    let (status, text) = call_with(&verge, "PUT", "/put/big", &[], vec![7; 100_000]).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("65536 bytes"), "{text}");
    assert_eq!(call(&verge, "GET", "/get/big").await.0, 404);
    let (status, _) = call_with(&verge, "PUT", "/put/small", &[], vec![7; 60_000]).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn concurrent_misses_fill_once() {
    let (verge, _app) = serve(&[]);
    let answers = concurrent_texts(verge.url("/tx/report?ms=300"), 8).await;
    let misses: Vec<_> = answers.iter().filter(|a| a.starts_with("miss ")).collect();
    assert_eq!(misses.len(), 1, "{answers:?}");
    let value = misses[0].trim_start_matches("miss ");
    assert!(
        answers.iter().all(|a| a.ends_with(value)),
        "every request got the one value: {answers:?}"
    );
}

/// Starts `winner` (which prints `filling KEY` and then holds the obligation for a
/// while), then two requests for the same key that wait on it.
async fn contend(verge: &Verge, winner: &str, key: &str) -> (u16, Vec<String>) {
    let url = verge.url(winner);
    let first =
        tokio::spawn(async move { client().get(url).send().await.unwrap().status().as_u16() });
    verge.stdout.wait_for(Duration::from_secs(30), |l| {
        l.contains(&format!("filling {key}"))
    });
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let url = verge.url(&format!("/tx/{key}"));
            tokio::spawn(async move {
                client()
                    .get(url)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let status = first.await.unwrap();
    let mut answers = Vec::new();
    for w in waiters {
        answers.push(
            tokio::time::timeout(Duration::from_secs(30), w)
                .await
                .expect("no waiter hangs")
                .unwrap(),
        );
    }
    (status, answers)
}

// Multi-threaded: `contend` blocks a thread waiting for the winner's log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_cancelled_winner_hands_over_to_a_waiter() {
    let (verge, _app) = serve(&[]);
    let (status, answers) = contend(&verge, "/tx-trap/t1?ms=400", "t1").await;
    assert_eq!(status, 500, "the winner trapped");
    assert_eq!(
        answers.iter().filter(|a| a.starts_with("miss ")).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| a.starts_with("miss ") || a.starts_with("hit ")),
        "{answers:?}"
    );

    let (status, answers) = contend(&verge, "/tx-cancel/t2?ms=400", "t2").await;
    assert_eq!(status, 200);
    assert_eq!(
        answers.iter().filter(|a| a.starts_with("miss ")).count(),
        1,
        "{answers:?}"
    );
}

#[tokio::test]
async fn soft_purged_objects_are_stale_until_updated() {
    let (verge, _app) = serve(&[]);
    let (status, _) = call_with(
        &verge,
        "PUT",
        "/put/s?ttl=60&swr=60&sk=group",
        &[],
        b"v1".to_vec(),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(call(&verge, "GET", "/update/s").await.1, "fresh");
    assert_eq!(
        call(&verge, "POST", "/purge/group?soft=1").await.1,
        "purged 1"
    );
    let resp = client().get(verge.url("/get/s")).send().await.unwrap();
    assert_eq!(resp.headers()["x-stale"], "true", "served stale within swr");
    assert_eq!(resp.text().await.unwrap(), "v1");
    assert_eq!(call(&verge, "GET", "/update/s").await.1, "updated");
    let resp = client().get(verge.url("/get/s")).send().await.unwrap();
    assert_eq!(resp.headers()["x-stale"], "false");
    assert_eq!(resp.text().await.unwrap(), "v1", "the body was kept");
}
