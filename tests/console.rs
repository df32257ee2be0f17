//! The web console (`/console` on the admin listener) in a real headless Chromium:
//! signing in with tokens of different rights and scopes, what each may see and do,
//! activating and rolling back from the page, text from users shown as text, and
//! the headers that keep the page from being framed or running foreign script.

mod common;

use common::browser::Browser;
use common::node::*;
use common::*;

/// What the console's files are served with, and `--no-console`.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_with_strict_headers_and_can_be_turned_off() {
    let data = tempfile::tempdir().unwrap();
    let (_node, admin) = start(data.path());
    let page = client()
        .get(format!("{admin}/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("/console/console.js"));

    let script = client()
        .get(format!("{admin}/console/console.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = script.headers()["etag"].clone();
    let again = client()
        .get(format!("{admin}/console/console.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let missing = client()
        .get(format!("{admin}/console/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-frame-options"], "DENY");
    let post = client()
        .post(format!("{admin}/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET");

    let off = tempfile::tempdir().unwrap();
    let (_quiet, admin) = start_with(off.path(), &["--no-console"], &[]);
    let (status, body) = call(&admin, "GET", "/console", None).await;
    assert_eq!(status, 404, "{body}");
}

/// One node: a read token sees the services and no write action; a write token
/// activates, rolls back and deletes from the page, each confirmed first; a token
/// of another service sees nothing of this one; a token's name with markup in it
/// shows as text.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_see_and_do_what_they_may_and_user_text_stays_text() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (node, admin) = start(data.path());
    deploy(&admin, "shop", "shop.test", package(packages.path(), "one")).await;
    let (status, body) = create(
        &admin,
        serde_json::json!({"name": "other", "domains": ["other.test"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Version 2 comes from a token whose name is markup: the page shows who
    // uploaded it.
    let hostile = "<img src=x onerror=\"window.pwned=1\">";
    let uploader = token(&admin, hostile, Some("shop"), true).await;
    let two = Some(package(packages.path(), "two"));
    let (status, body) = call_as(
        &admin,
        &uploader,
        "POST",
        "/admin/v1/services/shop/versions",
        two,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reader = token(&admin, "reader", None, false).await;
    let writer = token(&admin, "writer", None, true).await;
    let other = token(&admin, "other-team", Some("other"), false).await;

    let browser = Browser::start().await;

    // Read-only: the fleet's one node, the services, shop's versions, no buttons.
    browser.sign_in(&admin, &reader).await;
    let whoami = browser
        .text_until("header.top .whoami", |t| !t.is_empty())
        .await;
    assert_eq!(whoami, "reader · whole node · read-only");
    browser
        .element("table.nodes tr.node[data-node='node']")
        .await;
    browser.screenshot("fleet").await;
    browser.open(&admin, "#/services").await;
    let row = browser
        .text_until("tr.service[data-service='shop']", |t| t.contains("v1"))
        .await;
    assert!(
        row.contains("shop.test") && row.contains("1 of 1 live nodes"),
        "{row}"
    );
    browser.open(&admin, "#/services/shop").await;
    browser.element("tr.version[data-version='2']").await;
    browser.element("tr.version[data-version='1'].active").await;
    for action in ["button.activate", "button.delete", "button.rollback"] {
        assert!(
            browser.all(action).await.is_empty(),
            "{action} for a read token"
        );
    }

    // The uploader's name is text in the page, and ran nothing.
    let by = browser
        .text_until("tr.version[data-version='2'] td:nth-child(4)", |t| {
            !t.is_empty()
        })
        .await;
    assert_eq!(by, hostile);
    assert!(browser.all("table.versions img").await.is_empty());
    assert_eq!(
        browser.eval("return window.pwned === undefined").await,
        true
    );

    // Read-write: activate v2 (after confirming), see the node's result, roll back.
    browser.sign_in(&admin, &writer).await;
    browser.open(&admin, "#/services/shop").await;
    browser.click("button.activate[data-version='2']").await;
    // Cancelling does nothing.
    browser.click("dialog[open] button.cancel").await;
    browser.gone("dialog[open]").await;
    let (_, service) = call(&admin, "GET", "/admin/v1/services/shop", None).await;
    assert_eq!(service["active"], 1);
    browser.click("button.activate[data-version='2']").await;
    browser.confirm().await;
    browser
        .text_until("section.rollout .state", |t| t == "done")
        .await;
    let result = browser
        .text_until("tr.rollout-node[data-node='node'] td.result", |t| {
            !t.is_empty()
        })
        .await;
    assert_eq!(result, "serving");
    browser
        .text_until("tr.version[data-version='2'] td.live-on", |t| t == "node")
        .await;
    browser.screenshot("service").await;
    let (_, service) = call(&admin, "GET", "/admin/v1/services/shop", None).await;
    assert_eq!(service["active"], 2);
    let (_, served) = greeting(&node, "shop.test").await;
    assert!(served.contains("two"), "{served}");

    browser.click("button.rollback").await;
    browser.confirm().await;
    browser.text_until("dd.active", |t| t == "v1").await;
    let (_, service) = call(&admin, "GET", "/admin/v1/services/shop", None).await;
    assert_eq!(service["active"], 1);

    // Delete v2, now inactive; the active one offers no delete.
    assert!(
        browser
            .all("button.delete[data-version='1']")
            .await
            .is_empty()
    );
    browser.click("button.delete[data-version='2']").await;
    browser.confirm().await;
    browser.gone("tr.version[data-version='2']").await;
    let (_, versions) = call(&admin, "GET", "/admin/v1/services/shop/versions", None).await;
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");

    // Another service's token lands on its service and cannot reach shop's page.
    browser.sign_in(&admin, &other).await;
    browser.element("tr.version, section.versions p").await;
    browser.open(&admin, "#/services/shop").await;
    let title = browser.text_until("main h1", |t| !t.is_empty()).await;
    assert_eq!(title, "other");
    let text = browser.page_text().await;
    assert!(!text.contains("shop"), "{text}");
    assert!(browser.all("header.top nav").await.is_empty());
    // The API answers it the same: the nodes, with nothing of shop in them.
    let (status, nodes) = call_as(&admin, &other, "GET", "/admin/v1/nodes", None).await;
    assert_eq!(status, 200);
    let nodes = nodes.to_string();
    assert!(
        nodes.contains("\"name\":\"node\"") && !nodes.contains("shop"),
        "{nodes}"
    );

    // A token revoked while its page is open signs the page out, saying why.
    let temporary = token(&admin, "temporary", None, false).await;
    browser.sign_in(&admin, &temporary).await;
    browser.open(&admin, "#/").await;
    browser.element("table.nodes").await;
    let id = temporary.split('_').nth(1).unwrap();
    let (status, _) = call(&admin, "DELETE", &format!("/admin/v1/tokens/{id}"), None).await;
    assert_eq!(status, 200);
    let said = browser
        .text_until("form.sign-in p.error", |t| t.starts_with("Signed out"))
        .await;
    assert!(said.contains("token"), "{said}");
    browser.close().await;
}

/// A node serving the `logging` guest as `talk` on `talk.test`.
struct Talk {
    node: Verge,
    admin: String,
    _dirs: [tempfile::TempDir; 2],
}

impl Talk {
    async fn start() -> Talk {
        let data = tempfile::tempdir().unwrap();
        let packages = tempfile::tempdir().unwrap();
        let (node, admin) = start(data.path());
        let package = package_of(packages.path(), "logging", "");
        deploy(&admin, "talk", "talk.test", package).await;
        Talk {
            node,
            admin,
            _dirs: [data, packages],
        }
    }
}

/// Sends `GET /say?text=…&status=…` to the `logging` guest; the request id.
async fn say(node: &Verge, text: &str, status: u16) -> String {
    let resp = client()
        .get(node.url("/say"))
        .query(&[("text", text), ("status", &status.to_string())])
        .header("host", "talk.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), status);
    request_id(&resp)
}

/// The live log: a request's guest lines under its access line, a 5xx standing
/// out, a guest's markup shown as text, the status filter, and pausing.
#[tokio::test(flavor = "multi_thread")]
async fn the_live_log_shows_guest_lines_as_text_under_their_request() {
    let Talk { node, admin, _dirs } = Talk::start().await;
    let browser = Browser::start().await;
    browser.sign_in(&admin, TOKEN).await;
    browser.open(&admin, "#/services/talk/logs").await;
    browser
        .text_until(".stream-state", |t| t == "watching")
        .await;

    let hostile = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>";
    let id = say(&node, hostile, 503).await;
    let request = format!(".request[data-request-id='{id}']");
    let status = browser
        .text_until(&format!("{request} .head.s5xx .status"), |t| !t.is_empty())
        .await;
    assert_eq!(status, "503");
    let messages: Vec<String> = {
        let mut out = Vec::new();
        for el in browser.all(&format!("{request} .line .message")).await {
            out.push(el.text().await.unwrap());
        }
        out
    };
    assert_eq!(messages, [hostile, hostile], "stdout and the log line");
    assert!(
        browser
            .all(".log-lines img, .log-lines script")
            .await
            .is_empty()
    );
    assert_eq!(
        browser.eval("return window.pwned === undefined").await,
        true
    );
    browser.screenshot("logs").await;

    // Only 5xx: a 200 sent before a 500 never shows.
    browser.type_into("input.status-filter", "5xx").await;
    browser.click("form.log-filters button[type=submit]").await;
    browser
        .text_until(".stream-state", |t| t == "watching")
        .await;
    let fine = say(&node, "fine", 200).await;
    let broken = say(&node, "broken", 500).await;
    browser
        .element(&format!(".request[data-request-id='{broken}'] .head.s5xx"))
        .await;
    assert!(
        browser
            .all(&format!(".request[data-request-id='{fine}']"))
            .await
            .is_empty()
    );

    // Paused, lines are held (and counted), and shown on resume.
    browser.click("button.pause").await;
    let held = say(&node, "held", 500).await;
    browser
        .text_until(".stream-state", |t| {
            t.starts_with("paused (") && t.contains("lines held")
        })
        .await;
    assert!(
        browser
            .all(&format!(".request[data-request-id='{held}']"))
            .await
            .is_empty()
    );
    browser.click("button.pause").await;
    browser
        .element(&format!(".request[data-request-id='{held}'] .head.s5xx"))
        .await;
    browser.close().await;
}

/// Traffic sent to a service shows in its charts (sampled every 10 s) and in the
/// API the charts read; another service's token may not read it.
#[tokio::test(flavor = "multi_thread")]
async fn traffic_appears_in_the_charts_and_the_api() {
    let Talk { node, admin, _dirs } = Talk::start().await;
    let (status, _) = create(&admin, serde_json::json!({"name": "other", "domains": []})).await;
    assert_eq!(status, 201);
    let other = token(&admin, "other-team", Some("other"), false).await;
    // A bounded loop of requests: 20 answered 200, 10 answered 503.
    for i in 0..30 {
        let status = if i % 3 == 0 { 503 } else { 200 };
        say(&node, "counted", status).await;
    }
    // The API: once a round has sampled them, the node's series holds all 30.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let by_class = loop {
        let (status, history) = call(&admin, "GET", "/admin/v1/traffic?service=talk", None).await;
        assert_eq!(status, 200, "{history}");
        assert_eq!(history["step_s"], 10);
        let mut sums = [0u64; 5];
        for series in history["series"].as_array().unwrap() {
            assert_eq!(
                (series["node"].as_str(), series["service"].as_str()),
                (Some("node"), Some("talk"))
            );
            for sample in series["samples"].as_array().unwrap() {
                for (i, n) in sample["requests"].as_array().unwrap().iter().enumerate() {
                    sums[i] += n.as_u64().unwrap();
                }
            }
        }
        if sums.iter().sum::<u64>() >= 30 || std::time::Instant::now() > deadline {
            break sums;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(by_class, [0, 20, 0, 0, 10]);
    let (status, all) = call(&admin, "GET", "/admin/v1/traffic", None).await;
    assert_eq!(status, 200);
    assert!(
        all["series"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["service"] == "*"),
        "the node's total: {all}"
    );
    let (status, _) = call_as(
        &admin,
        &other,
        "GET",
        "/admin/v1/traffic?service=talk",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(&admin, "GET", "/admin/v1/traffic?window=1h", None).await;
    assert_eq!(status, 400);

    // The page: the hour's summary counts them, and the charts are drawn.
    let browser = Browser::start().await;
    browser.sign_in(&admin, TOKEN).await;
    browser.open(&admin, "#/services/talk/traffic").await;
    let summary = browser
        .text_until(".traffic-summary", |t| t.contains("30 requests"))
        .await;
    assert!(summary.contains("10 answered 5xx"), "{summary}");
    for chart in ["requests", "latency", "cpu", "cache", "errors"] {
        browser.element(&format!(".chart-{chart} canvas")).await;
    }
    browser.screenshot("traffic").await;
    // The fleet page charts each node's requests per second from the same history.
    browser.open(&admin, "#/").await;
    browser.element(".chart-nodes canvas").await;
    browser.element("tr.node[data-node='node'] td.rps").await;
    browser.close().await;
}

/// KV and purge: a value put from the page is read by the guest; values show as
/// text (markup included) or, when binary, as hex; a read token may browse but
/// not write or purge; a purge by surrogate key from the page empties the edge
/// cache and says what each node did.
#[tokio::test(flavor = "multi_thread")]
async fn kv_values_are_browsed_and_written_and_the_cache_purged_from_the_page() {
    let data = tempfile::tempdir().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let (node, admin) = start(data.path());
    deploy(
        &admin,
        "store",
        "store.test",
        package_of(packages.path(), "keyvalue", "[kv_stores.data]\n"),
    )
    .await;
    deploy(
        &admin,
        "cached",
        "cached.test",
        package_of(
            packages.path(),
            "cacheable",
            "[http_cache]\nenabled = true\ndebug_headers = true\n",
        ),
    )
    .await;
    let kv = |op: serde_json::Value| {
        let admin = admin.clone();
        async move {
            call(
                &admin,
                "POST",
                "/admin/v1/services/store/kv/data",
                Some(op.to_string().into_bytes()),
            )
            .await
        }
    };
    // A binary value and one with markup, put through the API.
    let (status, _) =
        kv(serde_json::json!({"op": "put", "key": "bin", "value_base64": "/wBCeg=="})).await;
    assert_eq!(status, 200);
    let markup = "<b onmouseover=\"window.pwned=1\">bold?</b>";
    let encoded = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(markup)
    };
    let (status, _) =
        kv(serde_json::json!({"op": "put", "key": "html", "value_base64": encoded})).await;
    assert_eq!(status, 200);

    let reader = token(&admin, "reader", None, false).await;
    let browser = Browser::start().await;
    browser.sign_in(&admin, &reader).await;
    browser.open(&admin, "#/services/store/data").await;
    browser.element("tr.kv-key[data-key='bin']").await;
    browser.element("tr.kv-key[data-key='html']").await;
    for write in ["form.put", "button.purge-all", "form.purge-by-key"] {
        assert!(
            browser.all(write).await.is_empty(),
            "{write} for a read token"
        );
    }
    browser
        .click("tr.kv-key[data-key='bin'] button.open-key")
        .await;
    browser.element("pre.value-hex").await;
    // Its text as the page holds it (a browser's rendered text may drop a space
    // where the line wraps): offset, 16 columns of bytes, the printable characters.
    let hex = browser
        .eval("return document.querySelector('pre.value-hex').textContent")
        .await;
    let want = format!("00000000  {:<47}  ..Bz", "ff 00 42 7a");
    assert_eq!(hex, want.as_str());
    browser
        .click("tr.kv-key[data-key='html'] button.open-key")
        .await;
    let text = browser
        .text_until("pre.value-text", |t| !t.is_empty())
        .await;
    assert_eq!(text, markup);
    assert!(browser.all(".value b").await.is_empty());
    assert!(browser.all("button.delete-key").await.is_empty());

    // With the root token: put a value the guest then reads, and delete it.
    browser.sign_in(&admin, TOKEN).await;
    browser.open(&admin, "#/services/store/data").await;
    browser.element("tr.kv-key[data-key='bin']").await;
    browser
        .type_into("form.put input.put-key", "greeting")
        .await;
    browser
        .type_into("form.put textarea.put-value", "hello from the console")
        .await;
    browser.click("form.put button[type=submit]").await;
    browser
        .text_until("h3.value-key", |t| t == "greeting")
        .await;
    let (status, body) = on(&node, "store.test", "GET", "/kv/data/greeting", "").await;
    assert_eq!((status, body.as_str()), (200, "hello from the console"));
    browser.click("button.delete-key").await;
    browser.confirm().await;
    browser.element("p.deleted").await;
    let (status, _) = on(&node, "store.test", "GET", "/kv/data/greeting", "").await;
    assert_eq!(status, 404);

    // Purge by surrogate key: the cached answer was a hit, and is fetched anew after.
    let nonce = |resp: reqwest::Response| resp.headers()["x-nonce"].to_str().unwrap().to_owned();
    let get = || {
        client()
            .get(node.url("/item?cc=max-age%3D600&sk=items"))
            .header("host", "cached.test")
            .send()
    };
    let first = nonce(get().await.unwrap());
    assert_eq!(nonce(get().await.unwrap()), first, "a cache hit");
    browser.open(&admin, "#/services/cached/data").await;
    browser
        .type_into("form.purge-by-key input.purge-key", "items")
        .await;
    browser.click("form.purge-by-key button[type=submit]").await;
    browser.confirm().await;
    let said = browser.text_until("p.purged", |t| !t.is_empty()).await;
    assert_eq!(said, "Purged surrogate key items: 1 objects on this node.");
    assert_ne!(
        nonce(get().await.unwrap()),
        first,
        "fetched anew after the purge"
    );
    browser.screenshot("data").await;
    browser.close().await;
}

/// A fleet of three nodes on a real NATS cluster: the console of one shows all
/// three, a deploy made with the CLI through another shows live on every node, a
/// rollback from the page reports each node, and the live log shows the lines of
/// requests served by other nodes, tagged with them.
#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_deploy_through_the_cli_shows_live_on_every_node() {
    let nats = tempfile::tempdir().unwrap();
    let cluster = verge_fleet::NatsCluster::start(3, nats.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let urls = cluster.url_list();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, name) in ["pop-a", "pop-b", "pop-c"].iter().enumerate() {
        let pop = name.trim_start_matches("pop-");
        let mut args = vec!["--cluster", &urls, "--node-name", name, "--pop", pop];
        if i == 0 {
            args.push("--cluster-init");
        }
        nodes.push(start_with(dirs[i].path(), &args, &[]));
    }
    let (admin_a, admin_b) = (nodes[0].1.clone(), nodes[1].1.clone());

    let browser = Browser::start().await;
    browser.sign_in(&admin_a, TOKEN).await;
    for name in ["pop-a", "pop-b", "pop-c"] {
        browser
            .text_until(&format!("tr.node[data-node='{name}'] td.link"), |t| {
                t == "connected"
            })
            .await;
    }
    browser.screenshot("fleet-3-nodes").await;

    // Deployed through B with the CLI; A's page shows it live on all three.
    let app = app_dir_for(&guest("config-std"), "[config]\ngreeting = \"v-one\"\n");
    let manifest = std::fs::read_to_string(app.path().join("verge.toml")).unwrap();
    let manifest = format!("domains = [\"app.test\"]\n{manifest}");
    std::fs::write(app.path().join("verge.toml"), &manifest).unwrap();
    let deploy = |admin: &str| {
        let out = cli(app.path(), admin, TOKEN, &["deploy", "--no-build"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    deploy(&admin_b);
    browser.open(&admin_a, "#/services/test-app").await;
    let all = "pop-a, pop-b, pop-c";
    browser
        .text_until("tr.version[data-version='1'] td.live-on", |t| t == all)
        .await;
    std::fs::write(
        app.path().join("verge.toml"),
        manifest.replace("v-one", "v-two"),
    )
    .unwrap();
    deploy(&admin_b);
    browser
        .text_until("tr.version[data-version='2'] td.live-on", |t| t == all)
        .await;
    browser
        .text_until("tr.version[data-version='1'] td.live-on", |t| t == "—")
        .await;
    browser.screenshot("fleet-service").await;

    // Rolled back from the page: each node's result, then v1 live everywhere.
    browser.click("button.rollback").await;
    browser.confirm().await;
    browser
        .text_until("section.rollout .state", |t| t == "done")
        .await;
    for name in ["pop-a", "pop-b", "pop-c"] {
        let result = browser
            .text_until(
                &format!("tr.rollout-node[data-node='{name}'] td.result"),
                |t| !t.is_empty(),
            )
            .await;
        assert_eq!(result, "serving", "{name}");
    }
    browser
        .text_until("tr.version[data-version='1'] td.live-on", |t| t == all)
        .await;
    for (node, _) in &nodes {
        let (status, text) = greeting(node, "app.test").await;
        assert_eq!((status, text.as_str()), (200, "v-one"));
    }

    // A's live log shows a request C served, tagged pop-c. The other nodes send a
    // service's lines once A's heartbeat says it tails it: requests are sent until
    // one shows.
    browser.open(&admin_a, "#/services/test-app/logs").await;
    browser
        .text_until(".stream-state", |t| t == "watching")
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = greeting(&nodes[2].0, "app.test").await;
        assert_eq!(status, 200);
        let tags = browser.all(".request .head .node-tag").await;
        let mut seen = Vec::new();
        for tag in tags {
            seen.push(tag.text().await.unwrap());
        }
        if seen.iter().any(|t| t == "pop-c") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line of pop-c in A's live log: {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    browser.close().await;
    drop(cluster);
}
