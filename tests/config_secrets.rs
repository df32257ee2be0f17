//! `wasi:config` and `verge:edge/secrets` through real guests: values from
//! `verge.toml`, a config file, a secrets file and the host environment; a standard
//! `wasi:config` component (bindings from the WIT, no SDK); and secrets kept out of
//! every log line, even when a guest prints one and panics with it.

mod common;

use common::*;

const MANIFEST: &str = r#"
[config]
split = 30
greeting = "hello"

[secret_stores.keys]
file = "secrets.json"
env = { api = "VERGE_TEST_API_SECRET" }
"#;

const FILE_SECRET: &str = "file-secret-7f3a9c";
const ENV_SECRET: &str = "env-secret-51d0be";

/// An app directory for a test program, with `config_file` at the top level.
fn app(guest_name: &str) -> tempfile::TempDir {
    let app = app_dir_for(&guest(guest_name), MANIFEST);
    let manifest = app.path().join("verge.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("config_file = \"config.json\"\n{text}")).unwrap();
    write_files(app.path());
    app
}

fn write_files(dir: &std::path::Path) {
    std::fs::write(
        dir.join("config.json"),
        r#"{"greeting": "from the file", "region": "eu", "retries": 3}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("secrets.json"),
        format!(r#"{{"hmac": "{FILE_SECRET}"}}"#),
    )
    .unwrap();
}

fn serve(guest_name: &str) -> (Verge, tempfile::TempDir) {
    let app = app(guest_name);
    let verge = Verge::serve_with_env(
        &[
            app.path().to_str().unwrap(),
            "--no-build",
            "--no-cache",
            "--kv-backend",
            "memory",
        ],
        &[("VERGE_TEST_API_SECRET", ENV_SECRET)],
    );
    (verge, app)
}

async fn get(verge: &Verge, path: &str) -> (u16, String) {
    let resp = client().get(verge.url(path)).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn config_comes_from_the_manifest_over_the_file() {
    let (verge, _app) = serve("config-secrets");
    assert_eq!(get(&verge, "/config/split").await, (200, "30".into()));
    assert_eq!(
        get(&verge, "/config/greeting").await.1,
        "hello",
        "[config] wins"
    );
    assert_eq!(get(&verge, "/config/region").await.1, "eu");
    assert_eq!(get(&verge, "/config/missing").await.0, 404);
    let all: serde_json::Value = serde_json::from_str(&get(&verge, "/config").await.1).unwrap();
    assert_eq!(
        all,
        serde_json::json!([
            ["greeting", "hello"],
            ["region", "eu"],
            ["retries", "3"],
            ["split", "30"]
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standard_wasi_config_component_runs_unmodified() {
    let (verge, _app) = serve("config-std");
    assert_eq!(get(&verge, "/split").await, (200, "30".into()));
    assert_eq!(get(&verge, "/nope").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_a_file_and_the_environment() {
    let (verge, _app) = serve("config-secrets");
    assert_eq!(
        get(&verge, "/secret/keys/hmac").await,
        (200, FILE_SECRET.into())
    );
    assert_eq!(
        get(&verge, "/secret/keys/api").await,
        (200, ENV_SECRET.into())
    );
    assert_eq!(get(&verge, "/secret/keys/other").await.0, 404);
    assert_eq!(
        get(&verge, "/secret/vault/hmac").await,
        (
            400,
            "this app has no secret store `vault`; it declares `keys`".into()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_failing_while_holding_a_secret_leaks_it_nowhere() {
    let (verge, _app) = serve("config-secrets");
    for name in ["hmac", "api"] {
        let resp = client()
            .get(verge.url(&format!("/leak/keys/{name}")))
            .send()
            .await
            .unwrap();
        let id = request_id(&resp);
        assert_eq!(resp.status(), 500);
        let body = resp.text().await.unwrap();
        let access = verge.access_line(&id);
        assert_eq!(access["outcome"], "trap");
        let logged: Vec<String> = verge
            .stdout
            .all()
            .into_iter()
            .filter(|l| l.contains(&id))
            .collect();
        assert!(
            logged.iter().any(|l| l.contains("the token is [redacted]")),
            "the guest's lines are kept, redacted: {logged:?}"
        );
        assert!(logged.iter().any(|l| l.contains("Secret([redacted])")));
        for text in logged
            .iter()
            .chain([&body])
            .chain(verge.stderr.all().iter())
        {
            assert!(
                !text.contains(FILE_SECRET) && !text.contains(ENV_SECRET),
                "a secret leaked: {text}"
            );
        }
    }
}

#[test]
fn a_missing_environment_variable_stops_start_up_naming_it() {
    let app = app("config-secrets");
    let out = verge(
        &[
            "serve",
            app.path().to_str().unwrap(),
            "--no-build",
            "--listen",
            "127.0.0.1:0",
        ],
        app.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "secret store `keys`: secret `api` comes from the environment variable \
             VERGE_TEST_API_SECRET, which is not set"
        ),
        "{stderr}"
    );
}

#[test]
fn a_malformed_secrets_file_is_reported_by_position_without_its_contents() {
    let app = app("config-secrets");
    std::fs::write(
        app.path().join("secrets.json"),
        format!("{{\n  \"hmac\": \"{FILE_SECRET}\",\n  \"other\": {FILE_SECRET}\n}}"),
    )
    .unwrap();
    let out = std::process::Command::new(verge_bin())
        .args([
            "serve",
            app.path().to_str().unwrap(),
            "--no-build",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("VERGE_TEST_API_SECRET", ENV_SECRET)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("secrets.json:3:"), "{stderr}");
    assert!(!stderr.contains(FILE_SECRET), "{stderr}");
}
