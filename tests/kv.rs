//! The KV store through real guests and the real server: the standard
//! `wasi:keyvalue` guest (`test-programs/examples/keyvalue.rs`, bindings generated
//! from the WIT, no SDK), durability across `kill -9`, isolation between apps,
//! seeding, limits and a locked store file.

mod common;

use common::*;

const STORES: &str = "[kv_stores.links]\n[kv_stores.counters]\n";

/// `verge serve` of the keyvalue guest with `manifest`, keeping data in `data`.
fn serve_kv(app: &tempfile::TempDir, data: &std::path::Path) -> Verge {
    Verge::serve(&[
        app.path().to_str().unwrap(),
        "--no-build",
        "--data-dir",
        data.to_str().unwrap(),
    ])
}

/// An app directory for the `wasi:keyvalue` draft2 guest, named `name`.
fn kv_app(name: &str, manifest: &str) -> tempfile::TempDir {
    named_app("keyvalue", name, manifest)
}

/// An app directory for test program `guest_name`, with app name `name`.
fn named_app(guest_name: &str, name: &str, manifest: &str) -> tempfile::TempDir {
    let app = app_dir_for(&guest(guest_name), manifest);
    let path = app.path().join("verge.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("name = \"test-app\"", &format!("name = \"{name}\""));
    std::fs::write(path, text).unwrap();
    app
}

/// `verge serve` of `app` that must fail to start; its stderr.
fn serve_fails(app: &tempfile::TempDir, data: &std::path::Path) -> String {
    let out = verge(
        &[
            "serve",
            app.path().to_str().unwrap(),
            "--no-build",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        app.path(),
    );
    assert!(!out.status.success(), "verge serve started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn call(verge: &Verge, method: &str, path: &str, body: &str) -> (u16, String) {
    let resp = client()
        .request(method.parse().unwrap(), verge.url(path))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standard_wasi_keyvalue_component_runs_unmodified() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", STORES);
    let verge = serve_kv(&app, data.path());

    assert_eq!(
        call(&verge, "GET", "/kv/links/home", "").await,
        (404, "absent".into())
    );
    assert_eq!(
        call(&verge, "PUT", "/kv/links/home", "https://example.com/")
            .await
            .0,
        200
    );
    assert_eq!(
        call(&verge, "GET", "/kv/links/home", "").await,
        (200, "https://example.com/".into())
    );
    assert_eq!(
        call(&verge, "GET", "/exists/links/home", "").await.1,
        "true"
    );
    assert_eq!(
        call(&verge, "GET", "/exists/counters/home", "").await.1,
        "false",
        "stores are apart"
    );

    assert_eq!(
        call(&verge, "POST", "/incr/counters/hits?5", "").await.1,
        "5"
    );
    assert_eq!(
        call(&verge, "POST", "/incr/counters/hits?-2", "").await.1,
        "3"
    );
    assert_eq!(call(&verge, "GET", "/kv/counters/hits", "").await.1, "3");

    // Compare-and-swap: a write between reading and swapping fails the swap; the
    // retry with the fresh handle sees that write.
    assert_eq!(
        call(&verge, "POST", "/cas/links/log", "a").await.1,
        "attempts=1 value=a"
    );
    assert_eq!(
        call(&verge, "POST", "/cas/links/log?race", "b").await.1,
        "attempts=2 value=raced-b"
    );

    let (status, body) = call(&verge, "POST", "/batch/links", r#"{"x":"1","y":"2"}"#).await;
    assert_eq!(status, 200);
    let got: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"x": "1", "y": "2", "missing": null})
    );
    assert_eq!(
        call(&verge, "GET", "/keys/links", "").await.1,
        "home\nlog\nx\ny"
    );
    call(&verge, "DELETE", "/batch/links?x,y,never-there", "").await;
    call(&verge, "DELETE", "/kv/links/log", "").await;
    assert_eq!(call(&verge, "GET", "/keys/links", "").await.1, "home");

    // Only declared stores open.
    assert_eq!(
        call(&verge, "GET", "/kv/secret-store/k", "").await,
        (404, "no-such-store".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_keys_list_across_pages() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", STORES);
    let verge = serve_kv(&app, data.path());
    let items: serde_json::Map<String, serde_json::Value> = (0..2500)
        .map(|i| (format!("k{i:05}"), serde_json::Value::String("v".into())))
        .collect();
    let body = serde_json::to_string(&items).unwrap();
    assert_eq!(call(&verge, "POST", "/batch/links", &body).await.0, 200);
    let (_, keys) = call(&verge, "GET", "/keys/links", "").await;
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(
        keys.len(),
        2500,
        "three pages of at most 1000, nothing lost"
    );
    assert_eq!(keys[0], "k00000");
    assert_eq!(keys[2499], "k02499");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledged_write_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", STORES);
    let verge = serve_kv(&app, data.path());
    for i in 0..20 {
        let (status, _) = call(&verge, "PUT", &format!("/kv/links/k{i}"), &format!("v{i}")).await;
        assert_eq!(status, 200);
    }
    // Dropping the server kills it with SIGKILL: no shutdown, no flush.
    drop(verge);
    let verge = serve_kv(&app, data.path());
    for i in 0..20 {
        assert_eq!(
            call(&verge, "GET", &format!("/kv/links/k{i}"), "").await,
            (200, format!("v{i}"))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_apps_that_name_a_store_alike_never_see_each_others_data() {
    let data = tempfile::tempdir().unwrap();
    let first = kv_app("first-app", STORES);
    let second = kv_app("second-app", STORES);
    {
        let verge = serve_kv(&first, data.path());
        call(&verge, "PUT", "/kv/links/shared-name", "first's").await;
    }
    {
        let verge = serve_kv(&second, data.path());
        assert_eq!(
            call(&verge, "GET", "/kv/links/shared-name", "").await.0,
            404
        );
        assert_eq!(call(&verge, "GET", "/keys/links", "").await.1, "");
        call(&verge, "PUT", "/kv/links/shared-name", "second's").await;
    }
    let verge = serve_kv(&first, data.path());
    assert_eq!(
        call(&verge, "GET", "/kv/links/shared-name", "").await.1,
        "first's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_file_in_use_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", STORES);
    let _running = serve_kv(&app, data.path());
    let stderr = serve_fails(&app, data.path());
    assert!(
        stderr.contains("kv.redb is in use by another process"),
        "stderr: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_are_seeded_from_json_without_overwriting_later_writes() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", "[kv_stores.links]\nfile = \"links.json\"\n");
    std::fs::write(
        app.path().join("links.json"),
        r#"{"home": "https://example.com/", "docs": {"data": "https://example.com/docs", "metadata": "m"}}"#,
    )
    .unwrap();
    {
        let verge = serve_kv(&app, data.path());
        verge
            .stderr
            .wait_for(std::time::Duration::from_secs(5), |l| {
                l.contains("KV store `links` with 2 items")
            });
        assert_eq!(
            call(&verge, "GET", "/kv/links/docs", "").await.1,
            "https://example.com/docs"
        );
        call(&verge, "PUT", "/kv/links/home", "changed").await;
    }
    let verge = serve_kv(&app, data.path());
    assert_eq!(call(&verge, "GET", "/kv/links/home", "").await.1, "changed");
}

#[test]
fn a_corrupt_seed_file_stops_start_up_naming_file_and_line() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", "[kv_stores.links]\nfile = \"links.json\"\n");
    std::fs::write(
        app.path().join("links.json"),
        "{\n  \"home\": \"https://example.com/\",\n  \"docs\": oops\n}\n",
    )
    .unwrap();
    let stderr = serve_fails(&app, data.path());
    assert!(
        stderr.contains("seeding KV store `links`"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("links.json:3:"), "names the line: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_are_refused_naming_the_limit() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", "[kv_stores.links]\nmax_value_size = \"16B\"\n");
    let verge = serve_kv(&app, data.path());
    let long_key = "k".repeat(1025);
    let (status, body) = call(&verge, "PUT", &format!("/kv/links/{long_key}"), "v").await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "the key is 1025 bytes; keys are limited to 1024 bytes"
    );
    let (status, body) = call(&verge, "PUT", "/kv/links/k", &"x".repeat(17)).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "the value is 17 bytes; values are limited to 16 bytes"
    );
    assert_eq!(
        call(&verge, "GET", "/kv/links/k", "").await.0,
        404,
        "nothing written"
    );
}

/// `verge serve` of the SDK guest for `verge:edge/kv`, store `data` in memory.
fn serve_edge_kv(manifest: &str) -> (Verge, tempfile::TempDir) {
    let app = app_dir_for(&guest("kv-edge"), manifest);
    let verge = Verge::serve(&[
        app.path().to_str().unwrap(),
        "--no-build",
        "--kv-backend",
        "memory",
    ]);
    (verge, app)
}

async fn json(verge: &Verge, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, text) = call(verge, method, path, body).await;
    let value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, value)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_reaches_ttl_metadata_modes_and_compare_and_swap() {
    let (verge, _app) = serve_edge_kv("[kv_stores.data]\n");

    // Metadata and generations.
    let (status, put) = json(&verge, "PUT", "/item/user:1?metadata=owner%3Dana", "Ana").await;
    assert_eq!(status, 200);
    let g1 = put["generation"].as_u64().unwrap();
    let (_, got) = json(&verge, "GET", "/item/user:1", "").await;
    assert_eq!(got["value"], "Ana");
    assert_eq!(got["metadata"], "owner=ana");
    assert_eq!(got["generation"].as_u64(), Some(g1));
    assert_eq!(got["expires_in_ms"], serde_json::Value::Null);

    // Compare-and-swap: the right generation wins once; the stale one is refused
    // naming the generation it found, and the value is untouched.
    let (status, put) = json(
        &verge,
        "PUT",
        &format!("/item/user:1?if_generation={g1}"),
        "Ana B.",
    )
    .await;
    assert_eq!(status, 200);
    let g2 = put["generation"].as_u64().unwrap();
    let (status, err) = json(
        &verge,
        "PUT",
        &format!("/item/user:1?if_generation={g1}"),
        "lost",
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(err["error"], "generation-mismatch");
    assert_eq!(err["found"].as_u64(), Some(g2));
    assert_eq!(
        json(&verge, "GET", "/item/user:1", "").await.1["value"],
        "Ana B."
    );

    // Insert modes.
    let (status, err) = json(&verge, "PUT", "/item/user:1?mode=add", "again").await;
    assert_eq!((status, err["error"].as_str()), (409, Some("exists")));
    json(&verge, "PUT", "/item/log?mode=append", "a").await;
    json(&verge, "PUT", "/item/log?mode=append", "b").await;
    json(&verge, "PUT", "/item/log?mode=prepend", "0").await;
    assert_eq!(json(&verge, "GET", "/item/log", "").await.1["value"], "0ab");

    // Counters.
    assert_eq!(
        json(&verge, "POST", "/incr/hits?delta=3", "").await.1["value"],
        3
    );
    let (status, err) = json(&verge, "POST", "/incr/log", "").await;
    assert_eq!((status, err["error"].as_str()), (400, Some("not-a-number")));

    // Delete says whether something was there.
    assert_eq!(
        json(&verge, "DELETE", "/item/log", "").await.1["deleted"],
        true
    );
    assert_eq!(
        json(&verge, "DELETE", "/item/log", "").await.1["deleted"],
        false
    );

    // An undeclared store names the declared ones.
    let (status, err) = json(&verge, "GET", "/item/x?store=other", "").await;
    assert_eq!(status, 404);
    assert_eq!(
        err["message"],
        "this app has no KV store `other`; it declares `data`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_item_with_a_ttl_expires() {
    let (verge, _app) = serve_edge_kv("[kv_stores.data]\n");
    let (_, put) = json(&verge, "PUT", "/item/session?ttl_ms=60000", "s").await;
    assert!(put["generation"].is_u64());
    let left = json(&verge, "GET", "/item/session", "").await.1["expires_in_ms"]
        .as_u64()
        .unwrap();
    assert!((50_000..=60_000).contains(&left), "expires in {left} ms");

    json(&verge, "PUT", "/item/short?ttl_ms=300", "s").await;
    json(&verge, "PUT", "/item/stays", "s").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while json(&verge, "GET", "/item/short", "").await.0 != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the item never expired"
        );
    }
    let (_, listed) = json(&verge, "GET", "/keys", "").await;
    assert_eq!(listed["keys"], serde_json::json!(["session", "stays"]));
    // Add succeeds over an expired item.
    assert_eq!(
        json(&verge, "PUT", "/item/short?mode=add", "new").await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prefix_listing_pages_with_a_cursor() {
    let (verge, _app) = serve_edge_kv("[kv_stores.data]\n");
    for i in 0..7 {
        json(&verge, "PUT", &format!("/item/user:{i}"), "v").await;
    }
    json(&verge, "PUT", "/item/other", "v").await;
    let (_, page) = json(&verge, "GET", "/list?prefix=user:&limit=3", "").await;
    assert_eq!(
        page["keys"],
        serde_json::json!(["user:0", "user:1", "user:2"])
    );
    let cursor = page["cursor"].as_str().unwrap().to_owned();
    let (_, page) = json(
        &verge,
        "GET",
        &format!("/list?prefix=user:&limit=3&cursor={cursor}"),
        "",
    )
    .await;
    assert_eq!(
        page["keys"],
        serde_json::json!(["user:3", "user:4", "user:5"])
    );
    let (_, all) = json(&verge, "GET", "/keys?prefix=user:", "").await;
    assert_eq!(all["keys"].as_array().unwrap().len(), 7);
    let (status, err) = json(&verge, "GET", "/list?limit=0", "").await;
    assert_eq!(
        (status, err["message"].as_str()),
        (400, Some("list limit must be between 1 and 1000"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_and_values_over_the_limit_are_refused() {
    let (verge, _app) = serve_edge_kv("[kv_stores.data]\nmax_value_size = \"1KiB\"\n");
    let long = "m".repeat(2049);
    let (status, err) = json(&verge, "PUT", &format!("/item/k?metadata={long}"), "v").await;
    assert_eq!(status, 400);
    assert_eq!(
        err["message"],
        "the metadata is 2049 bytes; metadata is limited to 2048 bytes"
    );
    json(&verge, "PUT", "/item/k", &"x".repeat(1000)).await;
    let (status, err) = json(&verge, "PUT", "/item/k?mode=append", &"x".repeat(25)).await;
    assert_eq!(status, 400);
    assert_eq!(
        err["message"],
        "the value is 1025 bytes; values are limited to 1024 bytes"
    );
    // A streamed value is refused as it passes the limit, and nothing is written.
    let (status, err) = json(&verge, "PUT", "/item/s?streamed", &"x".repeat(5000)).await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("values are limited to 1024 bytes"),
        "{err}"
    );
    assert_eq!(json(&verge, "GET", "/item/s", "").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_without_stores_neither_creates_nor_locks_a_store_file() {
    let app = app_dir_for(&guest("hello"), "");
    let first = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);
    // A second server of the same app directory starts: nothing is locked.
    let second = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);
    for verge in [&first, &second] {
        let resp = client().get(verge.url("/")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert!(!app.path().join(".verge").exists());
}

/// `verge kv ARGS --app APP --data-dir DATA`.
fn kv_cli(app: &tempfile::TempDir, data: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["kv"];
    all.extend_from_slice(args);
    all.extend([
        "--app",
        app.path().to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    verge(&all, app.path())
}

fn ok_stdout(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "verge kv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn verge_kv_works_on_the_store_file_when_no_server_runs() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", STORES);
    ok_stdout(kv_cli(
        &app,
        data.path(),
        &["put", "--store", "links", "home", "https://example.com/"],
    ));
    ok_stdout(kv_cli(
        &app,
        data.path(),
        &[
            "put",
            "-s",
            "links",
            "docs",
            "https://docs.example.com/",
            "--metadata",
            "m1",
            "--ttl",
            "1h",
        ],
    ));
    assert_eq!(
        ok_stdout(kv_cli(
            &app,
            data.path(),
            &["get", "--store", "links", "home"]
        )),
        "https://example.com/"
    );
    let json: serde_json::Value = serde_json::from_str(&ok_stdout(kv_cli(
        &app,
        data.path(),
        &["get", "--store", "links", "docs", "--json"],
    )))
    .unwrap();
    assert_eq!(json["value"], "https://docs.example.com/");
    assert_eq!(json["metadata"], "m1");
    assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));
    let generation = json["generation"].as_u64().unwrap();

    // Compare-and-swap from the command line.
    let stale = kv_cli(
        &app,
        data.path(),
        &[
            "put",
            "-s",
            "links",
            "docs",
            "x",
            "--if-generation",
            &(generation + 100).to_string(),
        ],
    );
    assert!(!stale.status.success());
    assert!(String::from_utf8_lossy(&stale.stderr).contains("compare-and-swap failed"));

    assert_eq!(
        ok_stdout(kv_cli(&app, data.path(), &["list", "--store", "links"])),
        "docs\nhome\n"
    );
    let page: serde_json::Value = serde_json::from_str(&ok_stdout(kv_cli(
        &app,
        data.path(),
        &["list", "--store", "links", "--limit", "1", "--json"],
    )))
    .unwrap();
    assert_eq!(
        page,
        serde_json::json!({"keys": ["docs"], "cursor": "docs"})
    );
    ok_stdout(kv_cli(
        &app,
        data.path(),
        &["delete", "--store", "links", "home"],
    ));
    let missing = kv_cli(&app, data.path(), &["get", "--store", "links", "home"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no key `home` in store `links`"));

    // What the CLI wrote, the app reads.
    let verge = serve_kv(&app, data.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        runtime
            .block_on(call(&verge, "GET", "/kv/links/docs", ""))
            .1,
        "https://docs.example.com/"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verge_kv_goes_through_the_running_server() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", STORES);
    let server = serve_kv(&app, data.path());
    let (app_path, data_path) = (app.path().to_owned(), data.path().to_owned());
    let cli = move |args: &[&str]| {
        let mut all = vec!["kv"];
        all.extend_from_slice(args);
        all.extend([
            "--app",
            app_path.to_str().unwrap(),
            "--data-dir",
            data_path.to_str().unwrap(),
        ]);
        verge(&all, &app_path)
    };
    ok_stdout(cli(&["put", "--store", "links", "from-cli", "hello"]));
    assert_eq!(
        call(&server, "GET", "/kv/links/from-cli", "").await.1,
        "hello"
    );
    call(&server, "PUT", "/kv/links/from-app", "world").await;
    assert_eq!(
        ok_stdout(cli(&["get", "--store", "links", "from-app"])),
        "world"
    );
    assert_eq!(
        ok_stdout(cli(&["list", "--store", "links", "--all"])),
        "from-app\nfrom-cli\n"
    );
    let refused = cli(&["put", "--store", "links", &"k".repeat(1025), "v"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("keys are limited to 1024 bytes"));
}

#[test]
fn verge_kv_names_the_stores_and_refuses_bad_keys() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", STORES);
    let out = kv_cli(&app, data.path(), &["get", "--store", "nope", "k"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("app `kv-app` has no KV store `nope`; it declares `counters`, `links`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kv_cli(&app, data.path(), &["get", "k"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --store NAME"));

    // A key that is not UTF-8 never reaches the store.
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new(verge_bin())
        .args(["kv", "put", "--store", "links"])
        .arg(std::ffi::OsStr::from_bytes(b"bad\xffkey"))
        .arg("v")
        .args([
            "--app",
            app.path().to_str().unwrap(),
            "--data-dir",
            data.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid UTF-8"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kv_cli(
        &app,
        data.path(),
        &["put", "--store", "links", "tab\there", "v"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("control character"));
}

#[test]
fn verge_kv_explains_a_store_file_held_by_another_process() {
    let data = tempfile::tempdir().unwrap();
    let app = kv_app("kv-app", STORES);
    let _held = verge_store::RedbBackend::open(&data.path().join("kv.redb")).unwrap();
    let out = kv_cli(&app, data.path(), &["list", "--store", "links"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no running `verge serve` for this app was found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop. `None` when
/// this process may not mount (not root).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_the_write_and_keeps_earlier_data() {
    let Some(disk) = SmallDisk::mount("8m") else {
        // CI runs as root; a developer's unprivileged run cannot mount a small disk.
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let app = kv_app("kv-app", STORES);
    let verge = serve_kv(&app, disk.0.path());
    for i in 0..10 {
        call(
            &verge,
            "PUT",
            &format!("/kv/links/early{i}"),
            &format!("v{i}"),
        )
        .await;
    }
    let big = "x".repeat(1 << 20);
    let mut failure = None;
    for i in 0..40 {
        let (status, body) = call(&verge, "PUT", &format!("/kv/links/big{i}"), &big).await;
        if status != 200 {
            failure = Some((status, body));
            break;
        }
    }
    let (status, body) = failure.expect("an 8 MiB disk fills up");
    assert_eq!(status, 500);
    assert!(body.contains("storage failed"), "{body}");
    assert!(body.contains("No space left on device"), "{body}");
    for i in 0..10 {
        assert_eq!(
            call(&verge, "GET", &format!("/kv/links/early{i}"), "").await,
            (200, format!("v{i}")),
            "earlier data is readable after the failed write"
        );
    }
    drop(verge);
    let verge = serve_kv(&app, disk.0.path());
    for i in 0..10 {
        assert_eq!(
            call(&verge, "GET", &format!("/kv/links/early{i}"), "").await,
            (200, format!("v{i}")),
            "and intact after a restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_keyvalue_draft_component_shares_the_same_stores() {
    let data = tempfile::tempdir().unwrap();
    let draft = named_app("keyvalue-draft", "kv-app", STORES);
    {
        let verge = serve_kv(&draft, data.path());
        call(&verge, "PUT", "/kv/links/home", "https://example.com/").await;
        assert_eq!(
            call(&verge, "POST", "/incr/counters/hits?7", "").await.1,
            "7"
        );
        assert_eq!(
            call(&verge, "GET", "/many/links?home,nope", "").await.1,
            "home=https://example.com/\n-"
        );
        assert_eq!(
            call(&verge, "GET", "/kv/nope/k", "").await,
            (404, "no-such-store".into())
        );
    }
    // The draft2 guest of the same app sees what the draft guest wrote.
    let draft2 = kv_app("kv-app", STORES);
    let verge = serve_kv(&draft2, data.path());
    assert_eq!(
        call(&verge, "GET", "/kv/links/home", "").await.1,
        "https://example.com/"
    );
    assert_eq!(call(&verge, "GET", "/kv/counters/hits", "").await.1, "7");
    // Many keys, listed by the draft's numeric cursor across pages.
    let items: serde_json::Map<String, serde_json::Value> = (0..2100)
        .map(|i| (format!("k{i:05}"), serde_json::Value::String("v".into())))
        .collect();
    call(
        &verge,
        "POST",
        "/batch/links",
        &serde_json::to_string(&items).unwrap(),
    )
    .await;
    drop(verge);
    let verge = serve_kv(&draft, data.path());
    let keys = call(&verge, "GET", "/keys/links", "").await.1;
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 2101, "three pages, nothing lost or repeated");
    assert_eq!((keys[0], keys[1], keys[2100]), ("home", "k00000", "k02099"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_value_streams_in_and_out_without_sitting_in_guest_memory() {
    // Writing 20 MiB through the guest takes more than the default 50 ms of CPU.
    let (verge, _app) = serve_edge_kv("[kv_stores.data]\n[limits]\ncpu_time = \"2s\"\n");
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut peak = std::collections::BTreeMap::new();
    // In: spliced from the request into the store (`execute_body`), or read whole.
    for (key, query) in [("big", "?streamed"), ("big-whole", "")] {
        let resp = client()
            .put(verge.url(&format!("/item/{key}{query}")))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = request_id(&resp);
        let access = verge.access_line(&id);
        peak.insert(
            if query.is_empty() {
                "put whole"
            } else {
                "put streamed"
            },
            access["peak_memory_bytes"].as_u64().unwrap(),
        );
    }
    assert!(peak["put streamed"] < 8 << 20, "{peak:?}");
    assert!(peak["put whole"] > 20 << 20, "{peak:?}");
    // Out: streamed, or read whole.
    for route in ["stream", "raw"] {
        let resp = client()
            .get(verge.url(&format!("/{route}/big")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = request_id(&resp);
        let body = resp.bytes().await.unwrap();
        assert!(body[..] == big[..], "{route}: the value comes back whole");
        let access = verge.access_line(&id);
        peak.insert(route, access["peak_memory_bytes"].as_u64().unwrap());
    }
    assert!(
        peak["stream"] < 8 << 20,
        "streamed, the guest never holds the 20 MiB: peak {} bytes",
        peak["stream"]
    );
    assert!(
        peak["raw"] > 20 << 20,
        "read whole, it does: {}",
        peak["raw"]
    );
    let whole = client()
        .get(verge.url("/raw/big-whole"))
        .send()
        .await
        .unwrap();
    assert!(whole.bytes().await.unwrap()[..] == big[..]);
}
