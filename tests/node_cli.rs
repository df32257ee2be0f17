//! The CLI against a remote node: `verge logs --tail` (live lines of one service,
//! filtered, and only its own), `verge login` profiles, and `verge kv` on a
//! service's stores, each with the token scopes the node enforces.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::node::*;
use common::tail::Tail;
use common::*;

/// A request to the service on `host`; its status and request id.
async fn hit(verge: &Verge, host: &str, path: &str) -> (u16, String) {
    let resp = client()
        .get(verge.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), request_id(&resp))
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_tail_shows_one_services_lines_live_filtered_by_status_and_text() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start(data.path());
    let logging = package_of(packages.path(), "logging", "");
    deploy(&admin, "alpha", "alpha.test", logging.clone()).await;
    deploy(&admin, "beta", "beta.test", logging).await;
    let alpha_read = token(&admin, "alpha-reader", Some("alpha"), false).await;

    // Everything of alpha, nothing of beta.
    let all = Tail::start(&admin, &alpha_read, &["--service", "alpha"]).ready();
    let (_, beta_id) = hit(&verge, "beta.test", "/levels").await;
    let (status, alpha_id) = hit(&verge, "alpha.test", "/levels").await;
    assert_eq!(status, 200);
    all.wait_access(&alpha_id);
    let lines = all.lines();
    assert!(lines.iter().all(|l| l["app"] == "alpha"), "{lines:?}");
    assert!(!all.stdout.all().iter().any(|l| l.contains(&beta_id)));
    let of_request: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["request_id"] == alpha_id.as_str())
        .collect();
    assert!(
        of_request
            .iter()
            .any(|l| l["type"] == "log" && l["message"] == "card declined for order 42"),
        "{of_request:?}"
    );
    assert!(of_request.iter().any(|l| l["type"] == "access"));

    // Only 4xx requests, with their lines; and only lines containing a text.
    let failing = Tail::start(&admin, &alpha_read, &["-s", "alpha", "--status", "4xx"]).ready();
    let texts = Tail::start(
        &admin,
        &alpha_read,
        &["-s", "alpha", "--search", "card declined"],
    )
    .ready();
    let (_, ok_id) = hit(&verge, "alpha.test", "/levels").await;
    let (status, missing_id) = hit(&verge, "alpha.test", "/nothing-here").await;
    assert_eq!(status, 404);
    failing.wait_access(&missing_id);
    let seen = failing.stdout.all().join("\n");
    assert!(
        !seen.contains(&ok_id),
        "a 200 request passed --status 4xx: {seen}"
    );
    texts.stdout.wait_for(Duration::from_secs(10), |l| {
        l.contains(&ok_id) && l.contains("card declined")
    });
    // The access lines of both requests came after that line, and none was kept.
    let (_, last_id) = hit(&verge, "alpha.test", "/levels").await;
    texts
        .stdout
        .wait_for(Duration::from_secs(10), |l| l.contains(&last_id));
    assert!(
        texts.lines().iter().all(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("card declined"))),
        "{:?}",
        texts.lines()
    );

    // A token of alpha cannot tail beta; the CLI says what to do.
    let mut refused = Tail::start(&admin, &alpha_read, &["--service", "beta"]);
    let status = refused.child.wait().unwrap();
    assert!(!status.success());
    // The exit may come before the reader has drained the pipe: wait for the line.
    refused.stderr.wait_for(Duration::from_secs(10), |l| {
        l.contains("use a token with that scope")
    });
    let stderr = refused.stderr.all().join("\n");
    assert!(stderr.contains("beta"), "{stderr}");
    // A bad filter is named.
    let mut bad = Tail::start(&admin, &alpha_read, &["-s", "alpha", "--status", "6xx"]);
    assert!(!bad.child.wait().unwrap().success());
    bad.stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("`6xx`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn login_saves_a_profile_that_later_commands_use() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (_verge, admin) = start(data.path());
    deploy(
        &admin,
        "shop",
        "shop.test",
        package(packages.path(), "hello"),
    )
    .await;
    let shop_write = token(&admin, "ci", Some("shop"), true).await;
    let config = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // A wrong token is refused, and nothing is saved.
    let out = cli_with(
        dir.path(),
        config.path(),
        &[("VERGE_ADMIN_TOKEN", "vrg_000000000000_wrong")],
        &["login", "--node", &admin],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused the token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!config.path().join("profiles.toml").exists());

    // The token on standard input.
    let mut login = Command::new(verge_bin())
        .args(["login", "--node", &admin, "--profile", "shop-ci"])
        .env("NO_COLOR", "1")
        .env_remove("VERGE_ADMIN_TOKEN")
        .env_remove("VERGE_NODE")
        .env("VERGE_CONFIG_DIR", config.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(login.stdin.take().unwrap(), "{shop_write}").unwrap();
    let out = login.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("as ci (service shop, read and write)"),
        "{stderr}"
    );
    let file = config.path().join("profiles.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // No flags, no environment: the profile says where and who.
    let out = cli_with(dir.path(), config.path(), &[], &["versions", "-s", "shop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("* 1"));
    // Out of the token's scope: said so.
    let out = cli_with(dir.path(), config.path(), &[], &["services"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use a token with that scope"));
    // A profile that does not exist is named.
    let out = cli_with(
        dir.path(),
        config.path(),
        &[],
        &["versions", "-s", "shop", "--profile", "nope"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no profile `nope`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With no profile at all, the error says how to name a node.
    let empty = tempfile::tempdir().unwrap();
    let out = cli_with(dir.path(), empty.path(), &[], &["services"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verge login"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_reads_and_writes_a_services_store_on_the_node_within_the_tokens_rights() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start(data.path());
    let kv = package_of(packages.path(), "keyvalue", "[kv_stores.data]\n");
    deploy(&admin, "alpha", "alpha.test", kv.clone()).await;
    deploy(&admin, "beta", "beta.test", kv).await;
    let write = token(&admin, "alpha-writer", Some("alpha"), true).await;
    let read = token(&admin, "alpha-reader", Some("alpha"), false).await;
    let dir = tempfile::tempdir().unwrap();
    let kv = |token: &str, args: &[&str]| {
        let mut all = vec!["kv", "--service", "alpha", "--store", "data"];
        all.extend_from_slice(args);
        cli(dir.path(), &admin, token, &all)
    };

    let out = kv(&write, &["put", "greeting", "from the CLI"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The guest reads what the CLI wrote, and the CLI what the guest wrote.
    let resp = client()
        .get(verge.url("/kv/data/greeting"))
        .header("host", "alpha.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "from the CLI");
    let resp = client()
        .put(verge.url("/kv/data/other"))
        .header("host", "alpha.test")
        .body("from the guest")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let out = kv(&read, &["get", "other"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the guest");
    let out = kv(&read, &["list"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "greeting\nother\n");

    // Beta's store of the same name is another store.
    let resp = client()
        .get(verge.url("/kv/data/greeting"))
        .header("host", "beta.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // A read-only token cannot write; nothing changes.
    let out = kv(&read, &["put", "greeting", "overwritten"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("use a token with that scope"), "{stderr}");
    let out = kv(&read, &["get", "greeting"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the CLI");
    // Another service's token cannot read.
    let beta = token(&admin, "beta-reader", Some("beta"), false).await;
    let out = kv(&beta, &["get", "greeting"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("use a token with that scope"));
    // A store the service does not declare is named, with the ones it does.
    let out = cli(
        dir.path(),
        &admin,
        &write,
        &["kv", "--service", "alpha", "--store", "nope", "get", "k"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("declares no KV store `nope` (it declares: data)"),
        "{stderr}"
    );
}
