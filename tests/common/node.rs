//! Helpers for tests of `verge node`: starting one with the admin API, packing
//! guests, and driving the deploy API as the root token.

use super::*;

pub const TOKEN: &str = "node-token-0123456789abcdef";

/// A package of the `config-std` guest answering `GET /greeting` with `greeting`.
pub fn package(dir: &std::path::Path, greeting: &str) -> Vec<u8> {
    package_of(
        dir,
        "config-std",
        &format!("[config]\ngreeting = \"{greeting}\"\n"),
    )
}

pub fn start(data: &std::path::Path) -> (Verge, String) {
    start_with(data, &[], &[])
}

/// `verge node` on `data` with `args` and `env` added; the node and its admin URL.
pub fn start_with(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Verge, String) {
    let mut all = vec![
        "--data-dir",
        data.to_str().unwrap(),
        "--admin-listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    let mut all_env = vec![("VERGE_ADMIN_TOKEN", TOKEN)];
    all_env.extend_from_slice(env);
    let verge = Verge::node(&all, &all_env);
    let admin = verge
        .stdout
        .wait_for(std::time::Duration::from_secs(10), |l| {
            l.starts_with("Admin API on http://")
        })
        .trim_start_matches("Admin API on ")
        .trim()
        .to_owned();
    (verge, admin)
}

pub async fn call(
    admin: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, serde_json::Value) {
    call_as(admin, TOKEN, method, path, body).await
}

/// `method path` with `token`: the status and the body (JSON, else a string).
pub async fn call_as(
    admin: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, serde_json::Value) {
    let mut req = client()
        .request(method.parse().unwrap(), format!("{admin}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.body(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

pub async fn greeting(verge: &Verge, host: &str) -> (u16, String) {
    on(verge, host, "GET", "/greeting", "").await
}

pub fn package_of(dir: &std::path::Path, name: &str, manifest: &str) -> Vec<u8> {
    let app = app_dir_for(&guest(name), manifest);
    let out = dir.join(format!("{name}.vpkg"));
    let pack = verge(
        &["pack", "--no-build", "-o", out.to_str().unwrap()],
        app.path(),
    );
    assert!(
        pack.status.success(),
        "{}",
        String::from_utf8_lossy(&pack.stderr)
    );
    std::fs::read(out).unwrap()
}

/// `POST /admin/v1/services` with `body`, as root.
pub async fn create(admin: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    call(
        admin,
        "POST",
        "/admin/v1/services",
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// Activates version `n` of `service`, as root.
pub async fn activate(admin: &str, service: &str, n: u32) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "version": n }).to_string().into_bytes();
    call(
        admin,
        "POST",
        &format!("/admin/v1/services/{service}/activate"),
        Some(body),
    )
    .await
}

/// Creates service `name` on `host`, uploads `package` and activates it.
pub async fn deploy(admin: &str, name: &str, host: &str, package: Vec<u8>) {
    let (status, body) = create(admin, serde_json::json!({"name": name, "domains": [host]})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        admin,
        "POST",
        &format!("/admin/v1/services/{name}/versions"),
        Some(package),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = activate(admin, name, 1).await;
    assert_eq!(status, 200, "{body}");
}

pub async fn on(verge: &Verge, host: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let resp = client()
        .request(method.parse().unwrap(), verge.url(path))
        .header("host", host)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Runs `verge ARGS` in `dir` against the node at `admin` with `token` (from the
/// environment); profiles come from `config` (never the user's own).
pub fn cli_with(
    dir: &std::path::Path,
    config: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new(verge_bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("VERGE_NODE")
        .env_remove("VERGE_ADMIN_TOKEN")
        .env_remove("VERGE_PROFILE")
        .env("VERGE_CONFIG_DIR", config)
        .envs(env.iter().copied())
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .output()
        .unwrap()
}

/// `verge ARGS` in `dir` against the node at `admin` with `token`.
pub fn cli(dir: &std::path::Path, admin: &str, token: &str, args: &[&str]) -> std::process::Output {
    let config = dir.join(".verge-config");
    cli_with(
        dir,
        &config,
        &[("VERGE_NODE", admin), ("VERGE_ADMIN_TOKEN", token)],
        args,
    )
}

/// Makes a token as root; its secret.
pub async fn token(admin: &str, name: &str, service: Option<&str>, write: bool) -> String {
    let body = serde_json::json!({"name": name, "service": service, "write": write});
    let (status, made) = call(
        admin,
        "POST",
        "/admin/v1/tokens",
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    made["token"].as_str().unwrap().to_owned()
}
