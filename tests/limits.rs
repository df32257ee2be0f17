//! Limits as a user meets them: CPU time charged honestly, failures logged without
//! host noise, memory limits above the default slot size, settings for a bare
//! component, and a full instance pool answered with 503.

mod common;

use std::time::Duration;

use common::*;

fn serve_hostile(extra: &[&str]) -> Verge {
    let path = guest("hostile");
    let mut args = vec![path.to_str().unwrap()];
    args.extend_from_slice(extra);
    Verge::serve(&args)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_busy_for_40ms_passes_the_50ms_cpu_limit_and_one_busy_for_80ms_does_not() {
    let verge = serve_hostile(&[]);
    for _ in 0..3 {
        let (status, body, access) = get_logged(&verge, "/busy?ms=40").await;
        assert_eq!(status, 200, "{body}\n{access}");
        let cpu = access["guest_cpu_us"].as_u64().unwrap();
        assert!(
            (35_000..50_000).contains(&cpu),
            "charged {cpu} µs: {access}"
        );
    }
    let (status, _, access) = get_logged(&verge, "/busy?ms=80").await;
    assert_eq!(status, 503, "{access}");
    assert_eq!(access["outcome"], "limit:cpu");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_request_is_charged_more_guest_cpu_than_it_took() {
    let verge = Verge::serve(&[guest("hello").to_str().unwrap()]);
    let c = client();
    for i in 0..200 {
        let resp = c.get(verge.url("/")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let access = verge.access_line(&request_id(&resp));
        let cpu = access["guest_cpu_us"].as_u64().unwrap();
        let duration = access["duration_us"].as_u64().unwrap();
        assert!(
            cpu <= duration,
            "request {i}: {cpu} µs CPU in {duration} µs: {access}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_logs_the_wasm_backtrace_but_no_host_backtrace() {
    let verge = Verge::serve_with_env(
        &[guest("hostile").to_str().unwrap(), "--no-cache"],
        &[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")],
    );
    let (status, _, access) = get_logged(&verge, "/panic").await;
    assert_eq!(status, 500);
    let backtrace = access["backtrace"].as_str().unwrap();
    assert!(backtrace.contains("wasm backtrace"), "{backtrace}");
    for host_frame in [
        "tokio::",
        "wasmtime::runtime",
        "std::backtrace",
        "verge_runtime::",
    ] {
        assert!(
            !backtrace.contains(host_frame),
            "host frames logged:\n{backtrace}"
        );
    }
    assert!(
        backtrace.len() < 8 << 10,
        "{} bytes of backtrace",
        backtrace.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_limit_above_128mib_can_be_used() {
    // Touching 300 MiB takes longer than the default 50 ms of CPU.
    let verge = serve_hostile(&["--memory", "400MiB", "--cpu-time", "5s"]);
    let (status, body, access) = get_logged(&verge, "/alloc?mb=300").await;
    assert_eq!(status, 200, "{body}\n{access}");
    assert_eq!(body, (300u64 << 20).to_string());
    assert!(access["peak_memory_bytes"].as_u64().unwrap() > 300 << 20);
    // The limit still holds.
    let (status, _, access) = get_logged(&verge, "/alloc?mb=450").await;
    assert_eq!(status, 500);
    assert_eq!(access["outcome"], "limit:memory");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_component_takes_its_settings_from_manifest_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("settings.toml");
    std::fs::write(
        &manifest,
        "manifest_version = 1\nname = \"probe\"\n[limits]\ncpu_time = \"10ms\"\n",
    )
    .unwrap();
    let verge = serve_hostile(&["--manifest", manifest.to_str().unwrap()]);
    // The manifest's 10 ms limit stops a 30 ms guest, and names the app.
    let (status, _, access) = get_logged(&verge, "/busy?ms=30").await;
    assert_eq!(status, 503);
    assert_eq!(access["app"], "probe");
    drop(verge);
    // A flag overrides the manifest.
    let verge = serve_hostile(&[
        "--manifest",
        manifest.to_str().unwrap(),
        "--cpu-time",
        "200ms",
    ]);
    let (status, _, _) = get_logged(&verge, "/busy?ms=30").await;
    assert_eq!(status, 200);
}

#[test]
fn bad_limit_flags_and_manifests_are_refused_clearly() {
    let hostile = guest("hostile");
    let out = verge(
        &["serve", hostile.to_str().unwrap(), "--memory", "lots"],
        &repo_root(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--memory") && stderr.contains("invalid size"),
        "{stderr}"
    );

    let out = verge(
        &[
            "serve",
            hostile.to_str().unwrap(),
            "--manifest",
            "/nonexistent/verge.toml",
        ],
        &repo_root(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/verge.toml"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_instance_pool_answers_503_overloaded() {
    let mut verge = serve_hostile(&["--max-instances", "1"]);
    let slow = tokio::spawn({
        let url = verge.url("/sleep?ms=3000");
        async move { client().get(url).send().await.unwrap().status() }
    });
    verge.stdout.wait_for(Duration::from_secs(30), |l| {
        l.contains("\"type\":\"guest\"") && l.contains("sleeping")
    });
    let (status, body, access) = get_logged(&verge, "/echo").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(access["outcome"], "overloaded");
    assert!(body.contains("try again"), "{body}");
    assert_eq!(slow.await.unwrap(), 200);
    // Once the slot is free, requests run again.
    let (status, _, _) = get_logged(&verge, "/echo").await;
    assert_eq!(status, 200);
    assert!(verge.is_running());
}
