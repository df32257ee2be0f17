//! `verge node`: services created, packages uploaded (checked and compiled first),
//! versions activated and rolled back through the admin API, requests routed by Host,
//! and a restart that serves what was active.

mod common;

use common::node::*;
use common::openapi;
use common::*;
use proptest::prelude::*;

#[tokio::test(flavor = "multi_thread")]
async fn deploy_activate_roll_back_and_restart() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start(data.path());

    let (status, _) = create(
        &admin,
        serde_json::json!({"name": "shop", "domains": ["shop.test", "*.shop.test"]}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = create(
        &admin,
        serde_json::json!({"name": "blog", "domains": ["shop.test"]}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("belongs to service `shop`")
    );

    // Nothing active yet: the host is known to no app.
    assert_eq!(greeting(&verge, "shop.test").await.0, 404);

    let (status, v1) = call(
        &admin,
        "POST",
        "/admin/v1/services/shop/versions",
        Some(package(packages.path(), "hello")),
    )
    .await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["sha256"].as_str().unwrap().len(), 64);
    let (status, v2) = call(
        &admin,
        "POST",
        "/admin/v1/services/shop/versions",
        Some(package(packages.path(), "bonjour")),
    )
    .await;
    assert_eq!((status, v2["number"].as_u64()), (201, Some(2)));

    // A damaged upload is refused with the reason, and adds no version.
    let (status, body) = call(
        &admin,
        "POST",
        "/admin/v1/services/shop/versions",
        Some(b"not a package".to_vec()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a valid package"),
        "{body}"
    );
    let (_, versions) = call(&admin, "GET", "/admin/v1/services/shop/versions", None).await;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let (status, _) = activate(&admin, "shop", 1).await;
    assert_eq!(status, 200);
    assert_eq!(greeting(&verge, "shop.test").await, (200, "hello".into()));
    assert_eq!(
        greeting(&verge, "eu.shop.test").await,
        (200, "hello".into())
    );
    assert_eq!(greeting(&verge, "other.test").await.0, 404);

    let (status, _) = activate(&admin, "shop", 2).await;
    assert_eq!(status, 200);
    assert_eq!(greeting(&verge, "shop.test").await, (200, "bonjour".into()));
    let (status, service) = call(&admin, "POST", "/admin/v1/services/shop/rollback", None).await;
    assert_eq!((status, service["active"].as_u64()), (200, Some(1)));
    assert_eq!(greeting(&verge, "shop.test").await, (200, "hello".into()));
    let (status, _) = activate(&admin, "shop", 9).await;
    assert_eq!(status, 404);

    // Without the token, nothing.
    let resp = client()
        .get(format!("{admin}/admin/v1/services"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // A restarted node serves what was active, compiled code from its cache, loaded
    // on the first request.
    drop(verge);
    let (verge, _admin) = start(data.path());
    verge
        .stderr
        .wait_for(std::time::Duration::from_secs(10), |l| {
            l.contains("Routing") && l.contains("1 services")
        });
    assert!(
        !verge.stderr.all().iter().any(|l| l.contains("Loaded")),
        "loaded before any request: {:?}",
        verge.stderr.all()
    );
    assert_eq!(greeting(&verge, "shop.test").await, (200, "hello".into()));
    // The line is written before the response; the test reads the node's stderr
    // through a pipe, so it may come a moment after.
    verge
        .stderr
        .wait_for(std::time::Duration::from_secs(10), |l| {
            l.contains("Loaded") && l.contains("from the compile cache")
        });
}

#[tokio::test(flavor = "multi_thread")]
async fn activations_under_load_fail_no_request() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start(data.path());
    create(
        &admin,
        serde_json::json!({"name": "shop", "domains": ["shop.test"]}),
    )
    .await;
    for greeting in ["one", "two"] {
        let (status, _) = call(
            &admin,
            "POST",
            "/admin/v1/services/shop/versions",
            Some(package(packages.path(), greeting)),
        )
        .await;
        assert_eq!(status, 201);
    }
    activate(&admin, "shop", 1).await;

    // Four clients request without pause while the version flips 20 times.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop) = (verge.url("/greeting"), stop.clone());
            tokio::spawn(async move {
                let client = client();
                let (mut ok, mut failed, mut seen) =
                    (0u32, Vec::new(), std::collections::BTreeSet::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match client.get(&url).header("host", "shop.test").send().await {
                        Ok(resp) if resp.status() == 200 => {
                            seen.insert(resp.text().await.unwrap());
                            ok += 1;
                        }
                        Ok(resp) => failed.push(resp.status().to_string()),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed, seen)
            })
        })
        .collect();
    for i in 0..20 {
        let (status, body) = activate(&admin, "shop", 2 - i % 2).await;
        assert_eq!(status, 200, "{body}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut total, mut seen) = (0, std::collections::BTreeSet::new());
    for c in clients {
        let (ok, failed, versions) = c.await.unwrap();
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        total += ok;
        seen.extend(versions);
    }
    assert!(total > 20, "only {total} requests were made");
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["one", "two"],
        "both versions answered"
    );
}

/// Runs `verge ARGS` in `dir` against the node at `admin` with `token`.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_deploys_lists_activates_and_rolls_back() {
    let data = tempfile::tempdir().unwrap();
    let (verge, admin) = start(data.path());
    let app = app_dir_for(&guest("config-std"), "[config]\ngreeting = \"v-one\"\n");
    // `domains` is a top-level key: before the tables.
    let manifest = std::fs::read_to_string(app.path().join("verge.toml")).unwrap();
    let with_domains = format!("domains = [\"app.test\"]\n{manifest}");
    std::fs::write(app.path().join("verge.toml"), &with_domains).unwrap();

    let out = cli(app.path(), &admin, TOKEN, &["deploy", "--no-build"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Created") && stderr.contains("app.test"),
        "{stderr}"
    );
    assert_eq!(greeting(&verge, "app.test").await, (200, "v-one".into()));

    std::fs::write(
        app.path().join("verge.toml"),
        with_domains.replace("v-one", "v-two"),
    )
    .unwrap();
    let out = cli(
        app.path(),
        &admin,
        TOKEN,
        &["deploy", "--no-build", "--no-activate"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        greeting(&verge, "app.test").await.1,
        "v-one",
        "not active yet"
    );

    let out = cli(app.path(), &admin, TOKEN, &["versions"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listed.lines().any(|l| l.starts_with("* 1")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("  2")), "{listed}");

    let out = cli(app.path(), &admin, TOKEN, &["activate", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(greeting(&verge, "app.test").await.1, "v-two");
    assert!(
        cli(app.path(), &admin, TOKEN, &["rollback"])
            .status
            .success()
    );
    assert_eq!(greeting(&verge, "app.test").await.1, "v-one");

    // The active version stays; another goes.
    let out = cli(app.path(), &admin, TOKEN, &["versions", "--delete", "1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("activate another version first"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(app.path(), &admin, TOKEN, &["versions", "--delete", "2"]);
    assert!(out.status.success());
    let out = cli(app.path(), &admin, TOKEN, &["versions"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(listed.lines().count(), 1, "{listed}");

    let out = cli(app.path(), &admin, TOKEN, &["services"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("test-app\tactive 1\tapp.test"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Errors say what to do next.
    let out = cli(app.path(), &admin, "wrong-token-0123456789", &["services"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the token"));
    let out = cli(app.path(), &admin, TOKEN, &["activate", "9"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no version 9"));
    let out = cli(app.path(), "http://127.0.0.1:1", TOKEN, &["services"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is it running"));

    // A token made with `verge token` deploys its service, and only that.
    let out = cli(
        app.path(),
        &admin,
        TOKEN,
        &["token", "create", "ci", "--service", "test-app", "--write"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ci = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let out = cli(app.path(), &admin, &ci, &["deploy", "--no-build"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(app.path(), &admin, &ci, &["services"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("scoped to service `test-app`") && stderr.contains("verge token"),
        "{stderr}"
    );
    let out = cli(app.path(), &admin, TOKEN, &["versions"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("* 3") && l.ends_with("\tci")),
        "uploaded by the token's name: {listed}"
    );
    let out = cli(app.path(), &admin, TOKEN, &["token", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\tci\ttest-app\twrite"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_never_see_each_others_kv_data_or_cache_objects() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start(data.path());
    // The same app twice, as two services: only the service tells them apart.
    let kv = package_of(packages.path(), "keyvalue", "[kv_stores.data]\n");
    deploy(&admin, "alpha", "alpha.test", kv.clone()).await;
    deploy(&admin, "beta", "beta.test", kv).await;
    assert_eq!(
        on(&verge, "alpha.test", "PUT", "/kv/data/k", "from alpha")
            .await
            .0,
        200
    );
    assert_eq!(
        on(&verge, "alpha.test", "GET", "/kv/data/k", "").await,
        (200, "from alpha".into())
    );
    assert_eq!(
        on(&verge, "beta.test", "GET", "/kv/data/k", "").await.0,
        404
    );

    let cache = package_of(packages.path(), "cache-api", "");
    deploy(&admin, "gamma", "gamma.test", cache.clone()).await;
    deploy(&admin, "delta", "delta.test", cache).await;
    assert_eq!(
        on(
            &verge,
            "gamma.test",
            "PUT",
            "/put/obj?sk=shared",
            "from gamma"
        )
        .await
        .0,
        201
    );
    assert_eq!(
        on(&verge, "gamma.test", "GET", "/get/obj", "").await,
        (200, "from gamma".into())
    );
    assert_eq!(on(&verge, "delta.test", "GET", "/get/obj", "").await.0, 404);
    // A purge by surrogate key stays in its tenant too.
    assert_eq!(
        on(&verge, "delta.test", "POST", "/purge/shared", "")
            .await
            .1,
        "purged 0"
    );
    assert_eq!(on(&verge, "gamma.test", "GET", "/get/obj", "").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_that_does_not_load_is_refused_at_upload() {
    let data = tempfile::tempdir().unwrap();
    let (_verge, admin) = start(data.path());
    create(&admin, serde_json::json!({"name": "broken", "domains": []})).await;
    // A well-formed package whose component is not a wasi:http component.
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("broken.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(
        app.path().join("verge.toml"),
        "manifest_version = 1\nname = \"broken\"\n[build]\noutput = \"broken.wasm\"\n",
    )
    .unwrap();
    let out = app.path().join("broken.vpkg");
    let pack = verge(
        &["pack", "--no-build", "-o", out.to_str().unwrap()],
        app.path(),
    );
    assert!(
        pack.status.success(),
        "{}",
        String::from_utf8_lossy(&pack.stderr)
    );
    let (status, body) = call(
        &admin,
        "POST",
        "/admin/v1/services/broken/versions",
        Some(std::fs::read(out).unwrap()),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("does not load"),
        "{body}"
    );
    let (_, versions) = call(&admin, "GET", "/admin/v1/services/broken/versions", None).await;
    assert_eq!(versions, serde_json::json!([]), "no version recorded");
}

/// The OpenAPI description in the repository matches the admin listener: every route
/// it describes is served (a request reaches the route, not "no such route"), and
/// every one but the health checks refuses a request without the token.
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_description_matches_the_admin_routes() {
    let text = std::fs::read_to_string(repo_root().join("docs/admin-api.openapi.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let data = tempfile::tempdir().unwrap();
    let (_verge, admin) = start(data.path());
    let mut checked = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{app}", "ghost")
            .replace("{name}", "ghost")
            .replace("{key}", "k")
            .replace("{store}", "data")
            .replace("{number}", "999")
            .replace("{id}", "000000000000");
        for (method, op) in methods.as_object().unwrap() {
            let open = op
                .get("security")
                .is_some_and(|s| s == &serde_json::json!([]));
            let url = format!("{admin}{concrete}");
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let anonymous = client().request(method.clone(), &url).send().await.unwrap();
            if open {
                assert_ne!(anonymous.status(), 401, "{method} {path}");
            } else {
                assert_eq!(anonymous.status(), 401, "{method} {path}");
            }
            let resp = client()
                .request(method.clone(), &url)
                .bearer_auth(TOKEN)
                .body("{}")
                .send()
                .await
                .unwrap();
            if resp
                .headers()
                .get("content-type")
                .is_some_and(|v| v == "text/event-stream")
            {
                // A log tail: it never ends.
                assert_eq!(resp.status(), 200, "{method} {path}");
                checked += 1;
                continue;
            }
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains("no such route"),
                "{method} {path} is not served: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "the description lists routes");
    // And a route that is not described is not served.
    let resp = client()
        .get(format!("{admin}/admin/v1/nothing"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("no such route"));
    // A method a route does not take: 405 naming those it does, for every route.
    for (method, path, allow) in [
        ("TRACE", "/admin/v1/whoami", "GET"),
        ("PUT", "/admin/v1/services", "GET, POST"),
        ("GET", "/admin/v1/services/shop/versions/1", "DELETE"),
        ("POST", "/healthz", "GET"),
    ] {
        let resp = client()
            .request(method.parse().unwrap(), format!("{admin}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
    }
}

/// What a route needs: `None` for a node-wide route, else the service it belongs to;
/// and whether it changes things. `None` for routes any token (or none) may use.
fn need(method: &str, path: &str) -> Option<(Option<&'static str>, bool)> {
    let write = method != "GET";
    Some(match path {
        // Public (the health checks, the console's files), or any valid token's
        // (who it is; where the nodes are, with only the token's service in what
        // each serves; the traffic history, a service's token getting its own
        // service's: tests/console.rs).
        "/healthz" | "/readyz" | "/console" | "/console/{file}" | "/admin/v1/whoami"
        | "/admin/v1/nodes" | "/admin/v1/traffic" => return None,
        // Which right a KV operation needs depends on the operation (tested in
        // tests/node_cli.rs); the body sent here is none, refused after the scope.
        "/admin/v1/services/{name}/kv/{store}" => (Some("shop"), false),
        "/metrics" | "/admin/v1/services" | "/admin/v1/tokens" | "/admin/v1/tokens/{id}" => {
            (None, write)
        }
        "/admin/v1/services/{name}" if method == "DELETE" => (None, true),
        _ => (Some("shop"), write),
    })
}

/// Every route of the admin API, with every kind of token: none and a wrong one get
/// 401; a token outside its scope or right gets 403; the others reach the route.
#[tokio::test(flavor = "multi_thread")]
async fn every_admin_route_checks_the_token_and_its_scope() {
    let data = tempfile::tempdir().unwrap();
    let (_verge, admin) = start(data.path());
    for name in ["shop", "blog"] {
        let (status, _) = create(&admin, serde_json::json!({ "name": name, "domains": [] })).await;
        assert_eq!(status, 201);
    }
    // (token, its service scope, whether it may write)
    let mut tokens: Vec<(String, Option<&str>, bool)> = Vec::new();
    for (name, service, write) in [
        ("shop-read", Some("shop"), false),
        ("shop-write", Some("shop"), true),
        ("blog-write", Some("blog"), true),
        ("node-read", None, false),
    ] {
        let body = serde_json::json!({ "name": name, "service": service, "write": write });
        let (status, made) = call(
            &admin,
            "POST",
            "/admin/v1/tokens",
            Some(body.to_string().into_bytes()),
        )
        .await;
        assert_eq!(status, 201, "{made}");
        let token = made["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("vrg_"));
        tokens.push((token, service, write));
    }
    tokens.push((TOKEN.to_owned(), None, true));
    let (_, listed) = call(&admin, "GET", "/admin/v1/tokens", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 4);
    assert!(
        !listed.to_string().contains("vrg_"),
        "secrets are never listed"
    );

    let text = std::fs::read_to_string(repo_root().join("docs/admin-api.openapi.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let Some((service, write)) = need(&method, path) else {
                continue;
            };
            // Deleting is tried on a service that does not exist (404 when allowed).
            let name = if method == "DELETE" && path == "/admin/v1/services/{name}" {
                "gone"
            } else {
                "shop"
            };
            let concrete = path
                .replace("{app}", "shop")
                .replace("{name}", name)
                .replace("{key}", "k")
                .replace("{store}", "data")
                .replace("{number}", "999")
                .replace("{id}", "000000000000");
            let send = |token: Option<&str>| {
                let mut req = client()
                    .request(method.parse().unwrap(), format!("{admin}{concrete}"))
                    .body("{}");
                if let Some(token) = token {
                    req = req.bearer_auth(token);
                }
                req.send()
            };
            assert_eq!(send(None).await.unwrap().status(), 401, "{method} {path}");
            assert_eq!(
                send(Some("vrg_000000000000_nope")).await.unwrap().status(),
                401
            );
            for (token, scope, may_write) in &tokens {
                let in_scope = match (scope, service) {
                    (None, _) => true,
                    (Some(own), Some(route)) => own == &route,
                    (Some(_), None) => false,
                };
                let allowed = in_scope && (*may_write || !write);
                let status = send(Some(token)).await.unwrap().status().as_u16();
                if allowed {
                    assert!(
                        status != 401 && status != 403,
                        "{method} {path} with {scope:?}/{may_write}: {status}"
                    );
                } else {
                    assert_eq!(status, 403, "{method} {path} with {scope:?}/{may_write}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked} checks");

    // A revoked token stops working at once.
    let shop_write = tokens[1].0.clone();
    let id = shop_write.split('_').nth(1).unwrap().to_owned();
    let (status, _) = call(&admin, "DELETE", &format!("/admin/v1/tokens/{id}"), None).await;
    assert_eq!(status, 200);
    let resp = client()
        .get(format!("{admin}/admin/v1/services/shop"))
        .bearer_auth(&shop_write)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_memory_bombs_on_one_service_leaves_the_node_and_the_others_up() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start_with(
        data.path(),
        &[
            "--memory-budget",
            "512MiB",
            "--max-concurrent-per-service",
            "2",
        ],
        &[],
    );
    // Bombs get the CPU to reach their memory limit.
    let bomb = package_of(packages.path(), "hostile", "[limits]\ncpu_time = \"2s\"\n");
    deploy(&admin, "flood", "flood.test", bomb).await;
    let calm = package_of(
        packages.path(),
        "config-std",
        "[config]\ngreeting = \"calm\"\n",
    );
    deploy(&admin, "calm", "calm.test", calm).await;
    let rss_before = verge.peak_rss();

    let bombs: Vec<_> = (0..500)
        .map(|_| {
            let url = verge.url("/memory-bomb");
            tokio::spawn(async move {
                let resp = client()
                    .get(url)
                    .header("host", "flood.test")
                    .send()
                    .await
                    .unwrap();
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (resp.status().as_u16(), retry, resp.text().await.unwrap())
            })
        })
        .collect();
    // Meanwhile the other service answers every request.
    for _ in 0..20 {
        assert_eq!(greeting(&verge, "calm.test").await, (200, "calm".into()));
    }
    let (mut overloaded, mut bombed) = (0, 0);
    for b in bombs {
        let (status, retry, body) = b.await.unwrap();
        match status {
            503 => {
                assert_eq!(retry.as_deref(), Some("1"), "{body}");
                assert!(body.contains("try again shortly"), "{body}");
                overloaded += 1;
            }
            // The bomb reached its memory limit.
            500 => bombed += 1,
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        overloaded > 0 && bombed > 0,
        "{overloaded} overloaded, {bombed} bombed"
    );
    assert_eq!(greeting(&verge, "calm.test").await, (200, "calm".into()));
    // At most two bombs ran at once: the node's memory grew by about two instances.
    let growth = verge.peak_rss().saturating_sub(rss_before);
    assert!(growth < 512 << 20, "peak RSS grew by {growth} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_sees_only_its_own_secret_stores_and_its_lines_carry_its_name() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start_with(
        data.path(),
        &[],
        &[("VERGE_TEST_NODE_SECRET", "alpha-only-secret")],
    );
    let with_secret = package_of(
        packages.path(),
        "config-secrets",
        "[secret_stores.keys]\nenv = { token = \"VERGE_TEST_NODE_SECRET\" }\n",
    );
    deploy(&admin, "alpha", "alpha.test", with_secret).await;
    let without = package_of(packages.path(), "config-secrets", "");
    deploy(&admin, "beta", "beta.test", without).await;

    let resp = client()
        .get(verge.url("/secret/keys/token"))
        .header("host", "alpha.test")
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    assert_eq!(resp.text().await.unwrap(), "alpha-only-secret");
    assert_eq!(
        verge.access_line(&id)["app"],
        "alpha",
        "lines carry the service"
    );
    let (status, body) = on(&verge, "beta.test", "GET", "/secret/keys/token", "").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("this app has no secret store `keys`"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_limit_above_the_nodes_slot_size_is_refused_at_upload() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (_verge, admin) = start(data.path());
    create(&admin, serde_json::json!({"name": "big", "domains": []})).await;
    let big = package_of(
        packages.path(),
        "config-std",
        "[limits]\nmemory = \"256MiB\"\n",
    );
    let (status, body) = call(&admin, "POST", "/admin/v1/services/big/versions", Some(big)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-memory-per-instance"),
        "{body}"
    );
}

/// A refusal answered before the request body is read keeps the connection: the
/// node reads and discards the body after answering, so a client's next request on
/// the same connection (as a pooling client sends it) is answered too.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_before_the_body_is_read_keeps_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().unwrap();
    let (_verge, admin) = start(data.path());
    let conn = tokio::net::TcpStream::connect(admin.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut reader, mut writer) = conn.into_split();
    // An invalid service name is refused before the 2 MB upload is read (more than
    // hyper buffers), then a second request follows on the same connection.
    let body = vec![b'x'; 2 << 20];
    let head = format!(
        "POST /admin/v1/services/Not_Valid/versions HTTP/1.1\r\nhost: node\r\n\
         authorization: Bearer {TOKEN}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let whoami = format!(
        "GET /admin/v1/whoami HTTP/1.1\r\nhost: node\r\nauthorization: Bearer {TOKEN}\r\n\r\n"
    );
    let sending = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(&body).await?;
        writer.write_all(whoami.as_bytes()).await?;
        Ok::<_, std::io::Error>(writer)
    });
    let mut seen = Vec::new();
    let read_both = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = reader.read(&mut buf).await.unwrap_or(0);
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if n == 0 || text.contains("\"write\":true") {
                return text.into_owned();
            }
        }
    };
    let text = tokio::time::timeout(std::time::Duration::from_secs(30), read_both)
        .await
        .expect("both answers within 30 s");
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("HTTP/1.1 200") && text.contains("\"name\":\"root\""),
        "the second request on the connection was answered: {text}"
    );
    sending.await.unwrap().expect("the whole upload was taken");
}

/// Every kind of bad input the admin API takes gets a clear error and changes
/// nothing: an oversized or invalid package, deleting the active version or one that
/// does not exist, an expired token or a wrong secret, a huge or slow request head.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start_with(data.path(), &["--max-package-size", "1MiB"], &[]);
    let admin_addr = admin.trim_start_matches("http://").to_owned();
    // A service's name in a path is percent-decoded; a bad one is called a bad
    // service name.
    let (status, body) = create(&admin, serde_json::json!({"name": "decoded"})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&admin, "GET", "/admin/v1/services/%64ecoded", None).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("decoded")),
        "{body}"
    );
    let (status, body) = call(&admin, "GET", "/admin/v1/services/Decoded", None).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid service name `Decoded`"),
        "{body}"
    );
    let (status, body) = call(&admin, "GET", "/admin/v1/services/%ZZ", None).await;
    assert_eq!(status, 400, "{body}");
    // A client that sends half a request head and then nothing.
    let mut slow = tokio::net::TcpStream::connect(&admin_addr).await.unwrap();
    slow.write_all(b"GET /admin/v1/services HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let slow_started = std::time::Instant::now();

    create(
        &admin,
        serde_json::json!({"name": "shop", "domains": ["shop.test"]}),
    )
    .await;
    let good = package(packages.path(), "hello");
    let upload = |bytes: Vec<u8>| {
        call(
            &admin,
            "POST",
            "/admin/v1/services/shop/versions",
            Some(bytes),
        )
    };
    let versions = || async {
        let (_, list) = call(&admin, "GET", "/admin/v1/services/shop/versions", None).await;
        list.as_array()
            .unwrap()
            .iter()
            .map(|v| v["number"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(upload(good.clone()).await.0, 201);

    // Larger than the node takes.
    let (status, body) = upload(vec![7u8; 2 << 20]).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-package-size")
    );
    // A manifest that does not validate.
    let package = verge_manifest::Package::read_from(&good[..], 1 << 30).unwrap();
    let mut json = serde_json::to_value(&package.manifest).unwrap();
    json["limits"]["memory"] = "lots".into();
    let mut bad = Vec::new();
    verge_manifest::Package::write_raw(
        &serde_json::to_vec_pretty(&json).unwrap(),
        &package.component,
        &mut bad,
    )
    .unwrap();
    let (status, body) = upload(bad).await;
    assert_eq!(status, 400, "{body}");
    let why = body["error"].as_str().unwrap();
    assert!(
        why.contains("not a valid package") && why.contains("lots"),
        "{why}"
    );
    assert_eq!(versions().await, [1]);

    // The active version cannot be deleted; another can.
    assert_eq!(activate(&admin, "shop", 1).await.0, 200);
    let (status, body) = call(&admin, "DELETE", "/admin/v1/services/shop/versions/1", None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("activate another version first")
    );
    assert_eq!(upload(good.clone()).await.0, 201);
    let (status, _) = call(&admin, "DELETE", "/admin/v1/services/shop/versions/2", None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&admin, "DELETE", "/admin/v1/services/shop/versions/7", None).await;
    assert_eq!(status, 404);
    assert_eq!(versions().await, [1]);
    assert_eq!(greeting(&verge, "shop.test").await, (200, "hello".into()));

    // An expired token is told so; a wrong secret only that it is wrong.
    let (status, made) = call(
        &admin,
        "POST",
        "/admin/v1/tokens",
        Some(br#"{"name": "temp", "expires_in_s": 0}"#.to_vec()),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let expired = made["token"].as_str().unwrap().to_owned();
    let get = |token: String| {
        let admin = admin.clone();
        async move {
            let resp = client()
                .get(format!("{admin}/admin/v1/services"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, text) = get(expired.clone()).await;
    assert_eq!(status, 401);
    assert!(text.contains("the token `temp` expired at"), "{text}");
    let forged = format!("{}_{}", &expired[..16], "0".repeat(48));
    let (status, text) = get(forged).await;
    assert_eq!(status, 401);
    assert!(
        !text.contains("expired") && text.contains("wrong token"),
        "{text}"
    );

    // A request head over 16 KiB.
    let resp = client()
        .get(format!("{admin}/admin/v1/services"))
        .bearer_auth(TOKEN)
        .header("x-padding", "p".repeat(20 << 10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);

    // The slow client was cut off after the head timeout (10 s), not left open.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        slow.read_to_end(&mut buf),
    )
    .await
    .expect("the admin listener kept a slow client's connection open");
    assert!(read.is_ok());
    assert!(slow_started.elapsed() >= std::time::Duration::from_secs(9));
    // And the node still answers.
    assert_eq!(call(&admin, "GET", "/admin/v1/services", None).await.0, 200);
}

/// With `--max-loaded-services 2`, loading a third service unloads the one used
/// least recently; it loads again (from the compile cache) when asked for, and every
/// request is answered by its own service.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_keeps_at_most_max_loaded_services_and_reloads_on_demand() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start_with(data.path(), &["--max-loaded-services", "2"], &[]);
    for name in ["alpha", "beta", "gamma"] {
        deploy(
            &admin,
            name,
            &format!("{name}.test"),
            package(packages.path(), name),
        )
        .await;
    }
    let count = |name: &str| {
        verge
            .stderr
            .all()
            .iter()
            .filter(|l| l.contains(&format!("Loaded {name} ")))
            .count()
    };
    // How many times `name` was loaded, once its `n`th load line has been read (the
    // line is printed before the response, but read from the pipe by another thread).
    let loads = |name: &str, n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while count(name) < n && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        count(name)
    };
    // Activating gamma unloaded alpha, the least recently used.
    assert_eq!(
        (loads("alpha", 1), loads("beta", 1), loads("gamma", 1)),
        (1, 1, 1)
    );
    assert_eq!(greeting(&verge, "gamma.test").await, (200, "gamma".into()));
    assert_eq!(greeting(&verge, "alpha.test").await, (200, "alpha".into()));
    assert_eq!(loads("alpha", 2), 2, "{:?}", verge.stderr.all());
    // beta was the least recently used: alpha's load unloaded it.
    assert_eq!(greeting(&verge, "gamma.test").await, (200, "gamma".into()));
    assert_eq!(greeting(&verge, "beta.test").await, (200, "beta".into()));
    assert_eq!(loads("beta", 2), 2);
    // gamma stayed loaded throughout (stderr is one pipe: its lines are in order).
    assert_eq!(count("gamma"), 1);
}

/// What `verge node` shares with `verge serve` (one flag group): geolocation, trusted
/// proxies and the header limits work on a node too.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_geolocates_clients_behind_its_trusted_proxies_and_limits_heads() {
    let dbs = tempfile::tempdir().unwrap();
    let city = common::geo::write_city_db(dbs.path(), &[common::geo::TOKYO]);
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start_with(
        data.path(),
        &[
            "--geoip-db",
            city.to_str().unwrap(),
            "--trusted-proxy",
            "127.0.0.1",
            "--max-header-count",
            "20",
        ],
        &[],
    );
    deploy(
        &admin,
        "edge",
        "edge.test",
        package_of(packages.path(), "edge", ""),
    )
    .await;
    let resp = client()
        .get(verge.url("/info"))
        .header("host", "edge.test")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let info: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(info["client_ip"], "203.0.113.7");
    assert_eq!(info["geo"]["city"], "Tokyo");

    let mut many = client().get(verge.url("/info")).header("host", "edge.test");
    for i in 0..40 {
        many = many.header(format!("x-h{i}"), "v");
    }
    assert_eq!(many.send().await.unwrap().status(), 431);

    // The group's checks hold on a node too, before anything starts.
    let other = tempfile::tempdir().unwrap();
    let token = other.path().join("token");
    std::fs::write(&token, "a-token-of-twenty-chars").unwrap();
    let out = common::verge(
        &[
            "node",
            "--data-dir",
            other.path().join("data").to_str().unwrap(),
            "--admin-token-file",
            token.to_str().unwrap(),
            "--edge-cache-memory",
            "1MiB",
            "--edge-cache-max-object",
            "2MiB",
        ],
        other.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "--edge-cache-max-object (2097152 bytes) must not exceed --edge-cache-memory"
        ),
        "{stderr}"
    );
    assert!(!other.path().join("data").exists(), "nothing was created");
}

/// Two activations of one service at once: each lands, one after the other, or one
/// is refused with 409 and the reason, and what serves is the winner. Never both
/// "won" with one silently overwritten.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_activations_resolve_by_compare_and_swap() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (verge, admin) = start(data.path());
    deploy(&admin, "shop", "shop.test", package(packages.path(), "one")).await;
    for greeting in ["two", "three"] {
        let (status, body) = call(
            &admin,
            "POST",
            "/admin/v1/services/shop/versions",
            Some(package(packages.path(), greeting)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut conflicts = 0;
    for round in 0..10 {
        let (x, y) = if round % 2 == 0 { (2, 3) } else { (3, 2) };
        let (a, b) = tokio::join!(activate(&admin, "shop", x), activate(&admin, "shop", y));
        let winner = match (a, b) {
            ((200, _), (200, _)) => None,
            ((200, won), (409, lost)) | ((409, lost), (200, won)) => {
                conflicts += 1;
                assert!(
                    lost["error"].as_str().unwrap().contains("try again"),
                    "{lost}"
                );
                Some(won["active"].as_u64().unwrap())
            }
            other => panic!("unexpected answers: {other:?}"),
        };
        let (_, service) = call(&admin, "GET", "/admin/v1/services/shop", None).await;
        let active = service["active"].as_u64().unwrap();
        if let Some(winner) = winner {
            assert_eq!(active, winner, "the winner is what is recorded");
        }
        let (_, body) = on(&verge, "shop.test", "GET", "/greeting", "").await;
        let expected = if active == 2 { "two" } else { "three" };
        assert!(body.contains(expected), "version {active} serves: {body}");
        assert_eq!(activate(&admin, "shop", 1).await.0, 200);
    }
    eprintln!("{conflicts} of 10 rounds conflicted");
}

/// A path parameter: a valid one, or one a client could send by mistake or malice
/// (percent-encoded, non-ASCII, invalid UTF-8, a NUL, 10 KB long). Never empty or a
/// dot segment, which would be another path.
fn arb_param(valid: &'static str) -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(valid.to_owned()),
        1 => Just("ghost".to_owned()),
        1 => Just("%C3%A9t%C3%A9".to_owned()),
        1 => Just("a%2Fb".to_owned()),
        1 => Just("%FF%FE".to_owned()),
        1 => Just("%00".to_owned()),
        1 => Just("%ZZ".to_owned()),
        1 => Just("UPPER_case".to_owned()),
        1 => Just("9".repeat(10_000)),
        1 => "[a-z0-9~_-]{1,16}",
    ]
    .boxed()
}

/// One generated request: which operation, its parameters, its body, and whether it
/// is sent with a method the path does not take.
#[derive(Debug, Clone)]
struct Generated {
    op: usize,
    params: Vec<String>,
    body: Vec<u8>,
    other_method: Option<&'static str>,
}

fn arb_request(doc: &serde_json::Value, ops: &[openapi::Operation]) -> BoxedStrategy<Generated> {
    let choices: Vec<BoxedStrategy<Generated>> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let params: Vec<BoxedStrategy<String>> = op
                .path
                .split('/')
                .filter(|s| s.starts_with('{'))
                .map(|p| {
                    arb_param(match p {
                        // Deleting `shop` would leave the other operations nothing.
                        "{name}" if op.method == "delete" && op.path.ends_with("{name}") => "temp",
                        "{name}" | "{app}" => "shop",
                        "{store}" => "data",
                        "{number}" => "1",
                        "{id}" => "000000000000",
                        _ => "k",
                    })
                })
                .collect();
            let schema = op.op["requestBody"]["content"]["application/json"]["schema"].clone();
            let body: BoxedStrategy<Vec<u8>> = if schema.is_null() {
                prop_oneof![
                    Just(Vec::new()),
                    proptest::collection::vec(any::<u8>(), 0..64)
                ]
                .boxed()
            } else {
                let valid = openapi::arb_value(doc, &schema);
                prop_oneof![
                    4 => valid.clone().prop_map(|v| v.to_string().into_bytes()),
                    // An unknown field, a required one missing, another JSON type.
                    1 => valid.clone().prop_map(|mut v| {
                        if let Some(o) = v.as_object_mut() {
                            o.insert("unknown".into(), serde_json::json!(1));
                        }
                        v.to_string().into_bytes()
                    }),
                    1 => valid.prop_map(|mut v| {
                        if let Some(o) = v.as_object_mut() {
                            let first = o.keys().next().cloned();
                            if let Some(k) = first {
                                o.remove(&k);
                            }
                        }
                        v.to_string().into_bytes()
                    }),
                    1 => Just(b"[1, \"two\", null]".to_vec()),
                    1 => Just(format!("{{\"name\": \"{}\"}}", "x".repeat(70 << 10)).into_bytes()),
                    1 => Just(b"{\"name\": ".to_vec()),
                    1 => proptest::collection::vec(any::<u8>(), 0..64),
                ]
                .boxed()
            };
            let other = proptest::option::weighted(
                0.1,
                proptest::sample::select(vec!["TRACE", "PUT", "PATCH", "OPTIONS", "DELETE", "GET"]),
            );
            (params, body, other)
                .prop_map(move |(params, body, other_method)| Generated {
                    op: i,
                    params,
                    body,
                    other_method,
                })
                .boxed()
        })
        .collect();
    proptest::strategy::Union::new(choices).boxed()
}

/// Requests generated from the OpenAPI document, sent to a running node with the
/// root token: every operation with valid and invalid bodies and odd path
/// parameters, and paths asked with methods they do not take. No answer is a 5xx,
/// every status is one the document gives for the operation (or a 405 naming the
/// methods the document gives the path), and every JSON body is valid against the
/// schema the document gives for that status.
#[test]
fn requests_generated_from_the_openapi_document_get_documented_answers() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (_verge, admin) = start(data.path());
    rt.block_on(deploy(
        &admin,
        "shop",
        "shop.test",
        package_of(packages.path(), "keyvalue", "[kv_stores.data]\n"),
    ));
    rt.block_on(create(&admin, serde_json::json!({ "name": "temp" })));
    let doc = openapi::document();
    let ops = openapi::operations(&doc);
    // A connection per request: a head too large (431) ends its connection, and a
    // pooled one would race that close.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let result = runner.run(&arb_request(&doc, &ops), |req| {
        let op = &ops[req.op];
        let mut params = req.params.iter();
        let path: Vec<String> = op
            .path
            .split('/')
            .map(|s| match s.starts_with('{') {
                true => params.next().unwrap().clone(),
                false => s.to_owned(),
            })
            .collect();
        let path = path.join("/");
        let method = req.other_method.unwrap_or(&op.method).to_uppercase();
        let documented = &doc["paths"][&op.path];
        let declared = documented.get(method.to_lowercase()).is_some();
        let sent = rt.block_on(async {
            let resp = http
                .request(method.parse().unwrap(), format!("{admin}{path}"))
                .bearer_auth(TOKEN)
                .body(req.body.clone())
                .send()
                .await?;
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            let (status, allow, content_type) = (
                resp.status().as_u16(),
                header("allow"),
                header("content-type"),
            );
            // A log tail never ends: its head is the answer.
            let body = match content_type.as_deref() {
                Some("text/event-stream") => Vec::new(),
                _ => resp.bytes().await?.to_vec(),
            };
            if status == 200 && path == "/admin/v1/services/temp" && method == "DELETE" {
                create(&admin, serde_json::json!({ "name": "temp" })).await;
            }
            Ok::<_, reqwest::Error>((status, allow, content_type, body))
        });
        let (status, allow, content_type, body) = match sent {
            Ok(answer) => answer,
            // Past the 64 KiB the API reads, the node may answer 413 and close while
            // the body is still being sent.
            Err(_) if req.body.len() > 64 << 10 => return Ok(()),
            Err(e) => {
                let what = format!("{method} {path:.200} ({})", op.path);
                return Err(TestCaseError::fail(format!("{what}: {e}")));
            }
        };
        let text = String::from_utf8_lossy(&body);
        let what = format!("{method} {path:.200} ({}) → {status} {text:.300}", op.path);
        prop_assert!(status < 500, "a 5xx: {what}");
        // A head over the listener's 16 KiB (two 10 KB parameters) is refused before
        // any route is looked at, whatever the method.
        if status == 431 {
            prop_assert!(path.len() > 10_000, "431 for a small head: {}", what);
            return Ok(());
        }
        if !declared {
            prop_assert_eq!(status, 405, "{}", what);
            let mut want: Vec<String> = documented
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            let mut got: Vec<String> = allow
                .unwrap_or_default()
                .split(", ")
                .map(str::to_owned)
                .collect();
            want.sort();
            got.sort();
            prop_assert_eq!(got, want, "Allow of {}", what);
            return Ok(());
        }
        let responses = &documented[method.to_lowercase()]["responses"];
        let Some(response) = responses.get(status.to_string()) else {
            return Err(TestCaseError::fail(format!("undocumented status: {what}")));
        };
        seen.lock()
            .unwrap()
            .insert((op.path.clone(), method.clone(), status));
        let response = openapi::resolve(&doc, response);
        if content_type.as_deref() == Some("application/json") {
            let schema = &response["content"]["application/json"]["schema"];
            prop_assert!(
                !schema.is_null(),
                "a JSON body the document does not describe: {}",
                what
            );
            let value: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {what}")))?;
            openapi::validate(&doc, schema, &value, "body")
                .map_err(|why| TestCaseError::fail(format!("{why}: {what}")))?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The run reached far: most operations answered.
    let seen = seen.into_inner().unwrap();
    let operations: std::collections::BTreeSet<_> = seen
        .iter()
        .map(|(p, m, _)| (p.clone(), m.clone()))
        .collect();
    assert!(
        operations.len() * 10 >= ops.len() * 8,
        "only {} of {} operations answered: {seen:?}",
        operations.len(),
        ops.len()
    );
}
