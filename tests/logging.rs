//! Logging through a real guest and the real server: `wasi:logging` lines with level
//! and context, filtered by the app's level, tagged with the request id; named log
//! endpoints to Verge's stream and to a file rotated by size; secrets redacted from
//! both.

mod common;

use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "tok-3f9a1c77";

fn serve(level: &str) -> (Verge, tempfile::TempDir) {
    let manifest = format!(
        r#"
[logging]
level = "{level}"

[log_endpoints.events]

[log_endpoints.audit]
file = "logs/audit.log"
max_size = "1KiB"
keep = 2

[secret_stores.keys]
env = {{ token = "VERGE_TEST_TOKEN" }}
"#
    );
    let app = app_dir_for(&guest("logging"), &manifest);
    let verge = Verge::serve_with_env(
        &[
            app.path().to_str().unwrap(),
            "--no-build",
            "--no-cache",
            "--kv-backend",
            "memory",
        ],
        &[("VERGE_TEST_TOKEN", TOKEN)],
    );
    (verge, app)
}

fn lines_of(verge: &Verge, id: &str, kind: &str) -> Vec<serde_json::Value> {
    verge
        .stdout
        .all()
        .iter()
        .filter(|l| l.contains(id))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == kind)
        .collect()
}

/// Waits until `path` holds a line containing `needle`.
fn wait_for_file(path: &std::path::Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never got {needle:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_carry_level_context_and_request_id_above_the_apps_level() {
    let (verge, _app) = serve("debug");
    let resp = client().get(verge.url("/levels")).send().await.unwrap();
    let id = request_id(&resp);
    verge.access_line(&id);
    let logs = lines_of(&verge, &id, "log");
    let levels: Vec<&str> = logs.iter().map(|l| l["level"].as_str().unwrap()).collect();
    assert_eq!(
        levels,
        ["debug", "info", "warn", "error", "critical"],
        "trace is below `debug`"
    );
    let warn = &logs[2];
    assert_eq!(warn["context"], "checkout");
    assert_eq!(warn["message"], "card declined for order 42");
    assert_eq!(warn["app"], "test-app");
    assert_eq!(logs[4]["context"], "db");

    let (verge, _app) = serve("warn");
    let resp = client().get(verge.url("/levels")).send().await.unwrap();
    let id = request_id(&resp);
    verge.access_line(&id);
    let levels: Vec<String> = lines_of(&verge, &id, "log")
        .iter()
        .map(|l| l["level"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(levels, ["warn", "error", "critical"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_write_to_the_stream_and_to_a_rotated_file() {
    let (verge, app) = serve("info");
    let resp = client()
        .get(verge.url("/endpoint/events?lines=2"))
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    verge.access_line(&id);
    let events = lines_of(&verge, &id, "endpoint");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["endpoint"], "events");
    assert_eq!(events[1]["message"], "event 1 of 2");

    // 40 lines of ~150 bytes into a 1 KiB file keeping 2 old ones.
    let resp = client()
        .get(verge.url("/endpoint/audit?lines=40"))
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    assert_eq!(resp.status(), 200);
    let path = app.path().join("logs/audit.log");
    let text = wait_for_file(&path, "event 39 of 40");
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["request_id"], id.as_str());
    assert_eq!(last["endpoint"], "audit");
    for file in ["logs/audit.log", "logs/audit.log.1", "logs/audit.log.2"] {
        let len = std::fs::metadata(app.path().join(file)).unwrap().len();
        assert!(len <= 1024, "{file} is {len} bytes");
    }
    assert!(!app.path().join("logs/audit.log.3").exists());

    let (status, body) = {
        let resp = client()
            .get(verge.url("/endpoint/nope"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    };
    assert_eq!(status, 404);
    assert_eq!(
        body,
        "this app has no log endpoint `nope`; it declares `audit`, `events`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_redacted_from_log_lines_and_endpoint_files() {
    let (verge, app) = serve("info");
    let resp = client().get(verge.url("/secret")).send().await.unwrap();
    let id = request_id(&resp);
    verge.access_line(&id);
    let logs = lines_of(&verge, &id, "log");
    assert_eq!(logs[0]["message"], "calling the API with token [redacted]");
    let text = wait_for_file(&app.path().join("logs/audit.log"), "token=");
    assert!(text.contains("token=[redacted]"), "{text}");
    assert!(!text.contains(TOKEN));
    assert!(verge.stdout.all().iter().all(|l| !l.contains(TOKEN)));
}
