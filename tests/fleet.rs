//! `verge node --cluster`: three real nodes on a real 3-server NATS cluster
//! (JetStream, R3) started by the test on loopback. A change made through any node
//! is served by every node. `nats-server` comes from `scripts/install-nats-server.sh`
//! (`make test` runs it).

mod common;

use std::time::{Duration, Instant};

use common::node::*;
use common::tail::Tail;
use common::*;
use futures::StreamExt;
use verge_fleet::NatsCluster;

/// The cached-api example's package, packed into `dir`.
fn cached_api(dir: &std::path::Path) -> Vec<u8> {
    example_package(dir, "cached-api")
}

/// The package of `examples/NAME`, packed into `dir`.
fn example_package(dir: &std::path::Path, name: &str) -> Vec<u8> {
    let pack = dir.join(format!("{name}.vpkg"));
    let out = verge(
        &["pack", "-o", pack.to_str().unwrap()],
        &repo_root().join("examples").join(name),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&pack).unwrap()
}

/// The nonce of cached-api's answer to `GET path` on `node` (new each time the guest
/// runs, the same while the edge cache answers).
async fn read(node: &Verge, path: &str) -> String {
    let (status, text) = on(node, "items.test", "GET", path, "").await;
    assert_eq!(status, 200, "{text}");
    let item: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not an item: {text}"));
    item["nonce"].as_str().unwrap().to_owned()
}

/// Shortens `url` with the url-shortener on `node`; the slug.
async fn shorten(node: &Verge, url: &str) -> String {
    let body = serde_json::json!({ "url": url }).to_string();
    let (status, text) = on(node, "links.test", "POST", "/shorten", &body).await;
    assert_eq!(status, 201, "{text}");
    let made: serde_json::Value = serde_json::from_str(&text).unwrap();
    made["slug"].as_str().unwrap().to_owned()
}

/// Waits until `node` redirects `/slug` to `url`; how long that took.
async fn until_redirects(node: &Verge, name: &str, slug: &str, url: &str) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    loop {
        let resp = client
            .get(node.url(&format!("/{slug}")))
            .header("host", "links.test")
            .send()
            .await
            .unwrap();
        let location = resp.headers().get("location").cloned();
        if resp.status() == 302 && location.is_some_and(|l| l == url) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name} answers {} for /{slug}, not a redirect to {url}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `node` answers `GET /greeting` on `host` with `want`.
async fn until_serves(node: &Verge, name: &str, host: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = greeting(node, host).await;
        if status == 200 && body.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} still answers {status} {body:?}, not {want:?}; its log:\n{}",
            node.stderr.all().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fleet_node(data: &std::path::Path, urls: &str, name: &str, init: bool) -> (Verge, String) {
    let pop = name.trim_start_matches("pop-");
    let mut args = vec!["--cluster", urls, "--node-name", name, "--pop", pop];
    if init {
        args.push("--cluster-init");
    }
    start_with(data, &args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_any_node_is_served_by_every_node() {
    let nats = tempfile::tempdir().unwrap();
    let mut cluster = NatsCluster::start(3, nats.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let urls = cluster.url_list();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, admin_a) = fleet_node(dirs[0].path(), &urls, "pop-a", true);
    let (b, admin_b) = fleet_node(dirs[1].path(), &urls, "pop-b", false);
    let (c, admin_c) = fleet_node(dirs[2].path(), &urls, "pop-c", false);
    let nodes = [("pop-a", &a), ("pop-b", &b), ("pop-c", &c)];
    let packages = tempfile::tempdir().unwrap();

    // Deployed through A (create, upload, activate): served on A, B and C; B and C
    // fetched the package from the fleet and compiled it themselves.
    deploy(
        &admin_a,
        "shop",
        "shop.test",
        package(packages.path(), "one"),
    )
    .await;
    for (name, node) in nodes {
        until_serves(node, name, "shop.test", "one").await;
    }

    // Uploaded through C, activated through B.
    let (status, body) = call(
        &admin_c,
        "POST",
        "/admin/v1/services/shop/versions",
        Some(package(packages.path(), "two")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["number"], 2);
    let (status, body) = activate(&admin_b, "shop", 2).await;
    assert_eq!(status, 200, "{body}");
    // The call returned when every node served it, and says so node by node.
    assert_eq!(
        body["nodes"],
        serde_json::json!({"pop-a": "serving", "pop-b": "serving", "pop-c": "serving"}),
        "{body}"
    );
    for (name, node) in nodes {
        let (status, text) = greeting(node, "shop.test").await;
        assert_eq!(
            (status, text.contains("two")),
            (200, true),
            "{name}: {text}"
        );
    }

    // Every node knows the fleet: live, the same revision, version 2 of shop.
    let (status, listed) = call(&admin_c, "GET", "/admin/v1/nodes", None).await;
    assert_eq!(status, 200, "{listed}");
    let listed = listed["nodes"].as_array().unwrap().clone();
    let names: Vec<&str> = listed.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pop-a", "pop-b", "pop-c"]);
    for n in &listed {
        assert_eq!(n["status"], "live", "{n}");
        assert_eq!(n["services"]["shop"]["version"], 2, "{n}");
        assert!(n["applied_revision"].as_u64().unwrap() >= body["revision"].as_u64().unwrap());
    }
    assert_eq!(listed[1]["pop"], "b", "{listed:?}");
    let out = cli(dirs[0].path(), &admin_a, TOKEN, &["nodes"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains(" live ")).count(),
        3,
        "{table}"
    );

    // A tail on A shows the lines of requests served by every node, each tagged
    // with its node; `--node-name` keeps one node's.
    let all = Tail::start(&admin_a, TOKEN, &["-s", "shop"]).ready();
    let only_c = Tail::start(&admin_a, TOKEN, &["-s", "shop", "--node-name", "pop-c"]).ready();
    let deadline = Instant::now() + Duration::from_secs(30);
    let tagged = |tail: &Tail| -> std::collections::BTreeSet<String> {
        tail.lines()
            .iter()
            .filter(|l| l["type"] == "access")
            .map(|l| l["node"].as_str().unwrap_or("untagged").to_owned())
            .collect()
    };
    while tagged(&all).len() < 3 || tagged(&only_c).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the tail saw {:?} and {:?}",
            tagged(&all),
            tagged(&only_c)
        );
        for (_, node) in nodes {
            greeting(node, "shop.test").await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        tagged(&all).into_iter().collect::<Vec<_>>(),
        ["pop-a", "pop-b", "pop-c"]
    );
    assert_eq!(tagged(&only_c).into_iter().collect::<Vec<_>>(), ["pop-c"]);
    drop((all, only_c));

    // Rolled back through A.
    let (status, body) = call(&admin_a, "POST", "/admin/v1/services/shop/rollback", None).await;
    assert_eq!(status, 200, "{body}");
    for (name, node) in nodes {
        until_serves(node, name, "shop.test", "one").await;
    }

    // Every node answers the admin API from the one state.
    let (_, on_b) = call(&admin_b, "GET", "/admin/v1/services/shop", None).await;
    let (_, on_c) = call(&admin_c, "GET", "/admin/v1/services/shop", None).await;
    assert_eq!(on_b, on_c);
    assert_eq!(on_b["active"], 1);

    // Two activations at once on two nodes: one after the other, or one wins and the
    // other is told (409); what every node serves is what was recorded.
    let mut conflicts = 0;
    for round in 0..6 {
        let (x, y) = if round % 2 == 0 { (1, 2) } else { (2, 1) };
        let (on_a, on_b) =
            tokio::join!(activate(&admin_a, "shop", x), activate(&admin_b, "shop", y));
        match (on_a.0, on_b.0) {
            (200, 200) => {}
            (200, 409) | (409, 200) => conflicts += 1,
            other => panic!("unexpected answers {other:?}: {on_a:?} {on_b:?}"),
        }
        let (_, recorded) = call(&admin_c, "GET", "/admin/v1/services/shop", None).await;
        let want = if recorded["active"] == 1 {
            "one"
        } else {
            "two"
        };
        for (name, node) in nodes {
            until_serves(node, name, "shop.test", want).await;
        }
    }
    eprintln!("{conflicts} of 6 concurrent rounds conflicted");

    // Purges reach every node: cached-api on all three, each node's cache filled;
    // an update through A (the guest purges `item-1`, and that call returns once
    // every live node applied it) makes B and C run the guest for item 1 again while
    // item 2 stays cached; a purge through B's admin API
    // answers once every node applied it, naming each.
    deploy(&admin_a, "items", "items.test", cached_api(packages.path())).await;
    let mut cached = Vec::new();
    for (name, node) in nodes {
        let deadline = Instant::now() + Duration::from_secs(30);
        while on(node, "items.test", "GET", "/items/1", "").await.0 != 200 {
            assert!(Instant::now() < deadline, "{name} never served cached-api");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (one, two) = (read(node, "/items/1").await, read(node, "/items/2").await);
        assert_eq!(read(node, "/items/1").await, one, "{name} caches item 1");
        cached.push((name, node, one, two));
    }
    let (status, text) = on(&a, "items.test", "POST", "/items/1", "").await;
    assert_eq!(status, 204, "{text}");
    // The guest's purge returned once every live node had applied it: no waiting.
    for (name, node, one, two) in &cached {
        assert_ne!(
            read(node, "/items/1").await,
            *one,
            "{name} still serves item 1 from before the purge made on pop-a"
        );
        assert_eq!(
            read(node, "/items/2").await,
            *two,
            "{name}: item 2 stays cached"
        );
    }
    let (status, purged) = call(
        &admin_b,
        "POST",
        "/admin/v1/services/items/purge/keys/items",
        None,
    )
    .await;
    assert_eq!(status, 200, "{purged}");
    assert_eq!(
        purged["nodes"],
        serde_json::json!({"pop-a": "applied", "pop-b": "applied", "pop-c": "applied"}),
        "{purged}"
    );
    // Applied everywhere when the call returned: no waiting from here on.
    for (name, node, _, two) in &cached {
        assert_ne!(
            read(node, "/items/2").await,
            *two,
            "{name} still serves item 2"
        );
    }

    // A token made on one node works on the others (the fleet's tokens).
    let body = serde_json::json!({ "name": "ci", "service": "shop" });
    let (status, made) = call(
        &admin_a,
        "POST",
        "/admin/v1/tokens",
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let resp = client()
        .get(format!("{admin_c}/admin/v1/services/shop"))
        .bearer_auth(made["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The guests' KV stores are the fleet's: a link shortened on A redirects on B and
    // C (the target is a second at most; bench/fleet.sh measures the lag), and a
    // value put through B's admin API is read through C's.
    deploy(
        &admin_a,
        "links",
        "links.test",
        example_package(packages.path(), "url-shortener"),
    )
    .await;
    for (name, node) in nodes {
        let deadline = Instant::now() + Duration::from_secs(30);
        while on(node, "links.test", "GET", "/health", "").await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "{name} never served url-shortener"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Its seed file traveled in the package: the node that took the upload added its
    // items, once for the fleet; the others only read them.
    for (name, node) in nodes {
        until_redirects(node, name, "status", "https://status.example.com/").await;
    }
    assert!(
        a.stderr
            .all()
            .iter()
            .any(|l| l.contains("Seeded") && l.contains("from its package")),
        "pop-a seeded the store:\n{}",
        a.stderr.all().join("\n")
    );
    for (name, node) in [("pop-b", &b), ("pop-c", &c)] {
        assert!(
            !node.stderr.all().iter().any(|l| l.contains("Seeded")),
            "{name} seeded too:\n{}",
            node.stderr.all().join("\n")
        );
    }
    for round in 0..3 {
        let url = format!("https://example.com/{round}");
        let slug = shorten(&a, &url).await;
        let on_b = until_redirects(&b, "pop-b", &slug, &url).await;
        let on_c = until_redirects(&c, "pop-c", &slug, &url).await;
        eprintln!(
            "link {round} shortened on pop-a redirected on pop-b after {on_b:?}, pop-c after {on_c:?}"
        );
    }
    let put = serde_json::json!({
        "op": "put",
        "key": "guide",
        "value_base64": "aHR0cHM6Ly9leGFtcGxlLmNvbS9ndWlkZQ==",
    });
    let (status, stored) = call(
        &admin_b,
        "POST",
        "/admin/v1/services/links/kv/links",
        Some(put.to_string().into_bytes()),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    until_redirects(&c, "pop-c", "guide", "https://example.com/guide").await;
    let get = serde_json::json!({ "op": "get", "key": "guide" }).to_string();
    let (status, read_back) = call(
        &admin_c,
        "POST",
        "/admin/v1/services/links/kv/links",
        Some(get.into_bytes()),
    )
    .await;
    assert_eq!(status, 200, "{read_back}");
    assert_eq!(read_back["generation"], stored["generation"], "{read_back}");

    // Deploys through the nodes while one NATS server is killed with SIGKILL and
    // later restarted: R3 keeps a quorum, so no version a node acknowledged is
    // lost, and what was last activated is served everywhere. A change caught in
    // the election of new leaders waits it out: the user sees nothing.
    let admins = [&admin_a, &admin_b, &admin_c];
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    let mut greetings = std::collections::HashMap::new();
    let mut active = None;
    for round in 0..12usize {
        if round == 4 {
            cluster.kill(0);
        }
        if round == 8 {
            cluster.restart(0).unwrap();
        }
        let admin = admins[round % 3];
        let greeting = format!("round-{round:02}");
        let (status, body) = call(
            admin,
            "POST",
            "/admin/v1/services/shop/versions",
            Some(package(packages.path(), &greeting)),
        )
        .await;
        match status {
            201 => {
                let number = body["number"].as_u64().unwrap() as u32;
                acknowledged.push(number);
                greetings.insert(number, greeting);
                let (status, body) = activate(admin, "shop", number).await;
                match status {
                    200 => active = Some(number),
                    503 => refused.push(format!("activating {number}: {body}")),
                    _ => panic!("activating {number} in round {round}: {status} {body}"),
                }
            }
            503 => refused.push(format!("uploading in round {round}: {body}")),
            _ => panic!("uploading in round {round}: {status} {body}"),
        }
    }
    eprintln!(
        "{} uploads acknowledged, refused meanwhile: {refused:?}",
        acknowledged.len()
    );
    assert!(
        refused.is_empty(),
        "the fleet kept taking deploys with a server down: {acknowledged:?}, {refused:?}; \
         the nodes said:\n{}",
        nodes
            .iter()
            .map(|(name, node)| format!("{name}:\n{}", node.stderr.all().join("\n")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    cluster.wait_ready(Duration::from_secs(30)).await.unwrap();
    for admin in admins {
        let (status, listed) = call(admin, "GET", "/admin/v1/services/shop/versions", None).await;
        assert_eq!(status, 200, "{listed}");
        let numbers: Vec<u32> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["number"].as_u64().unwrap() as u32)
            .collect();
        for number in &acknowledged {
            assert!(
                numbers.contains(number),
                "version {number} was lost: {numbers:?}"
            );
        }
    }
    // What is recorded active is the last activation acknowledged, or a later one
    // refused after it had landed (a write that timed out may have).
    let last = active.expect("some activation went through");
    let (_, recorded) = call(&admin_c, "GET", "/admin/v1/services/shop", None).await;
    let number = recorded["active"].as_u64().unwrap() as u32;
    assert!(
        number >= last && acknowledged.contains(&number),
        "active is {number}; the last acknowledged activation was {last}"
    );
    let greeting = &greetings[&number];
    for (name, node) in nodes {
        until_serves(node, name, "shop.test", greeting).await;
    }
    drop(cluster);
}

/// A node pointed at a NATS system that holds no fleet under its prefix stops and
/// says what to do, instead of starting a new, empty fleet.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_finds_no_fleet_says_so_instead_of_making_one() {
    let nats = tempfile::tempdir().unwrap();
    let cluster = NatsCluster::start(3, nats.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let data = tempfile::tempdir().unwrap();
    let refused = |cluster: &[&str]| refused_start(data.path(), cluster);
    let urls = cluster.url_list();
    let stderr = refused(&["--cluster", &urls, "--cluster-prefix", "nobody-made-this"]);
    assert!(stderr.contains("nobody-made-this-control"), "{stderr}");
    assert!(stderr.contains("--cluster-init"), "{stderr}");

    let stderr = refused(&["--cluster", &urls, "--cluster-prefix", "two words"]);
    assert!(stderr.contains("cannot name a bucket"), "{stderr}");

    // And one with no NATS to reach names the servers it tried.
    let stderr = refused(&["--cluster", "nats://127.0.0.1:1"]);
    assert!(stderr.contains("nats://127.0.0.1:1"), "{stderr}");
}

/// `/readyz` of a node's admin API: its status and body.
async fn readyz(admin: &str) -> (u16, String) {
    let resp = client()
        .get(format!("{admin}/readyz"))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Waits until `admin`'s `/readyz` body no longer contains `gone`.
async fn until_ready_lacks(admin: &str, gone: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, body) = readyz(admin).await;
        assert_eq!(status, 200, "a node that can serve stays ready: {body}");
        if !body.contains(gone) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still says {gone:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `admin`'s `/readyz` body contains `want`; it stays 200 throughout.
async fn until_ready_says(admin: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(admin).await;
        assert_eq!(status, 200, "a node that can serve stays ready: {body}");
        if body.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still says {body:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Uploads `greeting` as a new version of `shop` through `admin` and activates it,
/// waiting `wait` seconds at most for the other nodes; the activation's answer.
async fn release(
    admin: &str,
    packages: &std::path::Path,
    greeting: &str,
    wait: u32,
) -> serde_json::Value {
    let (status, body) = call(
        admin,
        "POST",
        "/admin/v1/services/shop/versions",
        Some(package(packages, greeting)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let number = body["number"].as_u64().unwrap();
    let activate = serde_json::json!({ "version": number })
        .to_string()
        .into_bytes();
    let (status, body) = call(
        admin,
        "POST",
        &format!("/admin/v1/services/shop/activate?wait={wait}"),
        Some(activate),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Asserts that a change through the cut-off node `admin` is refused with 503, and a
/// read of its copy still answers.
async fn changes_are_refused(admin: &str, packages: &std::path::Path) {
    let (status, body) = activate(admin, "shop", 1).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("cluster unavailable"),
        "{body}"
    );
    let (status, body) = call(
        admin,
        "POST",
        "/admin/v1/services/shop/versions",
        Some(package(packages, "never")),
    )
    .await;
    assert_eq!(status, 503, "an upload too: {body}");
    let (status, body) = call(admin, "GET", "/admin/v1/services/shop", None).await;
    assert_eq!(status, 200, "reads answer from the node's copy: {body}");
}

/// A node whose NATS connection is cut (blackholed, refused, reset) keeps serving,
/// says so, refuses changes with 503, and catches up without a restart when the
/// network heals; restarted while NATS is unreachable, it serves what it last
/// applied and joins when NATS answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_cut_off_node_serves_refuses_changes_and_catches_up() {
    let nats = tempfile::tempdir().unwrap();
    let cluster = NatsCluster::start(3, nats.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, admin_a) = fleet_node(dirs[0].path(), &cluster.url_list(), "pop-a", true);
    let server = cluster.urls()[2]
        .trim_start_matches("nats://")
        .parse()
        .unwrap();
    let proxy = verge_fleet::TcpProxy::start(server).await.unwrap();
    let (c, admin_c) = fleet_node(dirs[1].path(), &proxy.url(), "pop-c", false);
    let packages = tempfile::tempdir().unwrap();
    deploy(
        &admin_a,
        "shop",
        "shop.test",
        package(packages.path(), "one"),
    )
    .await;
    until_serves(&c, "pop-c", "shop.test", "one").await;
    until_ready_says(&admin_c, "cluster: connected").await;
    // cached-api too, for the purges a cut-off node misses.
    deploy(&admin_a, "items", "items.test", cached_api(packages.path())).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while on(&c, "items.test", "GET", "/items/1", "").await.0 != 200 {
        assert!(Instant::now() < deadline, "pop-c never served cached-api");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // url-shortener too, for the KV writes a cut-off node refuses.
    deploy(
        &admin_a,
        "links",
        "links.test",
        example_package(packages.path(), "url-shortener"),
    )
    .await;
    let before = shorten(&a, "https://example.com/before").await;
    until_redirects(&c, "pop-c", &before, "https://example.com/before").await;

    let js = async_nats::jetstream::new(
        async_nats::connect(cluster.urls().as_slice())
            .await
            .unwrap(),
    );
    let purge_stream = verge_fleet::PurgeStream::open(&js, "verge", 3)
        .await
        .unwrap();
    let mut serving = "one".to_owned();
    for cut in ["blackhole", "refuse"] {
        let before_cut = purge_stream.last_sequence().await.unwrap();
        // After a heal, hits come back once the missed purges are applied.
        until_ready_lacks(&admin_c, "cache: holding hits").await;
        let cached = read(&c, "/items/1").await;
        assert_eq!(
            read(&c, "/items/1").await,
            cached,
            "pop-c caches item 1:\n{}",
            c.stderr.all().join("\n")
        );
        match cut {
            "blackhole" => proxy.blackhole(),
            _ => proxy.refuse(),
        }
        until_ready_says(&admin_c, "cluster: unavailable").await;
        let metrics = client()
            .get(format!("{admin_c}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("verge_cluster_connected 0"), "{metrics}");
        until_serves(&c, "pop-c", "shop.test", &serving).await;
        changes_are_refused(&admin_c, packages.path()).await;
        // A KV write on the cut-off node fails at once (never a write kept locally
        // only), with a reason; its reads still answer; a link made on A meanwhile
        // reaches it when the network heals.
        let asked = Instant::now();
        let body = serde_json::json!({ "url": "https://example.com/cut" }).to_string();
        let (status, text) = on(&c, "links.test", "POST", "/shorten", &body).await;
        let took = asked.elapsed();
        assert_eq!(status, 503, "{text}");
        assert!(text.contains("unavailable"), "{text}");
        assert!(
            took < Duration::from_secs(10),
            "a refused write took {took:?}, not about the 2 s write deadline"
        );
        eprintln!("during the {cut}, a KV write on pop-c was refused after {took:?}");
        let put = serde_json::json!({ "op": "put", "key": "k", "value_base64": "dg==" });
        let (status, refused) = call(
            &admin_c,
            "POST",
            "/admin/v1/services/links/kv/links",
            Some(put.to_string().into_bytes()),
        )
        .await;
        assert_eq!(status, 503, "{refused}");
        until_redirects(&c, "pop-c", &before, "https://example.com/before").await;
        let during_url = format!("https://example.com/during-{cut}");
        let during = shorten(&a, &during_url).await;
        // A purge made elsewhere meanwhile: the cut-off node serves its cache
        // (availability first).
        let (status, text) = on(&a, "items.test", "POST", "/items/1", "").await;
        assert_eq!(status, 204, "{text}");
        assert_eq!(
            read(&c, "/items/1").await,
            cached,
            "pop-c serves its cache during the {cut}"
        );
        // A purge on the cut-off node is applied there and answered at once; it is
        // published when NATS answers again.
        let (status, purged) =
            call(&admin_c, "POST", "/admin/v1/services/shop/purge/all", None).await;
        assert_eq!(status, 200, "{purged}");
        assert_eq!(purged["nodes"]["pop-c"], "applied", "{purged}");
        let on_a = purged["nodes"]["pop-a"].as_str().unwrap_or_default();
        assert!(
            on_a.starts_with("pending: not published") || on_a.starts_with("stale"),
            "{purged}"
        );

        // Meanwhile the fleet moves on through A: two releases. The cut-off node is
        // named, not waited for past `?wait`.
        let answer = release(&admin_a, packages.path(), &format!("{cut}-1"), 1).await;
        assert_eq!(answer["nodes"]["pop-a"], "serving", "{answer}");
        let on_c = answer["nodes"]["pop-c"].as_str().unwrap();
        assert!(
            on_c.starts_with("pending") || on_c.starts_with("stale"),
            "{answer}"
        );
        release(&admin_a, packages.path(), &format!("{cut}-2"), 1).await;
        until_serves(&a, "pop-a", "shop.test", &format!("{cut}-2")).await;
        until_serves(&c, "pop-c", "shop.test", &serving).await;

        proxy.heal().await.unwrap();
        serving = format!("{cut}-2");
        until_serves(&c, "pop-c", "shop.test", &serving).await;
        until_ready_says(&admin_c, "cluster: connected").await;
        until_redirects(&c, "pop-c", &during, &during_url).await;
        // Reconnected, it applied the purge it missed before serving another hit.
        assert_ne!(
            read(&c, "/items/1").await,
            cached,
            "pop-c served item 1 from before a purge after the {cut} healed:\n{}",
            c.stderr.all().join("\n")
        );
        // Its purge is in the fleet's stream now, after what was there before the cut.
        let mut since_cut = purge_stream.follow(before_cut).await.unwrap();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), since_cut.next()).await;
            match next {
                Ok(Some(Ok(purge))) if purge.origin == "pop-c" => break,
                Ok(Some(Ok(_))) => {}
                other => panic!(
                    "pop-c never published its purge after the {cut} healed ({other:?}):\n{}",
                    c.stderr.all().join("\n")
                ),
            }
        }
    }

    // A reset connection is a blip: the client reconnects through the proxy.
    proxy.reset();
    release(&admin_a, packages.path(), "after-reset", 1).await;
    until_serves(&c, "pop-c", "shop.test", "after-reset").await;

    // Restarted while NATS is unreachable: it serves what it last applied at once.
    // With --purge-strict 1, cut off for over a second, it holds its cache hits:
    // every read runs the guest, until it is connected and caught up.
    drop(c);
    proxy.refuse();
    let url = proxy.url();
    let (c, admin_c) = start_with(
        dirs[1].path(),
        &[
            "--cluster",
            &url,
            "--node-name",
            "pop-c",
            "--pop",
            "c",
            "--purge-strict",
            "1",
        ],
        &[],
    );
    until_serves(&c, "pop-c", "shop.test", "after-reset").await;
    until_ready_says(&admin_c, "cluster: unavailable").await;
    c.stderr.wait_for(Duration::from_secs(10), |l| {
        l.contains("Holding cache hits")
    });
    let (first, second) = (read(&c, "/items/1").await, read(&c, "/items/1").await);
    assert_ne!(first, second, "strict: no hit while cut off");
    let (_, ready) = readyz(&admin_c).await;
    assert!(ready.contains("cache: holding hits"), "{ready}");
    changes_are_refused(&admin_c, packages.path()).await;
    let (status, body) = activate(&admin_a, "shop", 1).await;
    assert_eq!(status, 200, "{body}");
    proxy.heal().await.unwrap();
    until_serves(&c, "pop-c", "shop.test", "one").await;
    until_ready_says(&admin_c, "cluster: connected").await;
    // Caught up: hits again.
    until_ready_lacks(&admin_c, "cache: holding hits").await;
    let first = read(&c, "/items/1").await;
    assert_eq!(read(&c, "/items/1").await, first, "pop-c serves hits again");
    drop(cluster);
}

/// `verge node` in a fresh directory under `data` with `cluster` flags, which must
/// stop; its stderr.
fn refused_start(data: &std::path::Path, cluster: &[&str]) -> String {
    let token = data.join("token");
    std::fs::write(&token, "a-token-of-twenty-chars").unwrap();
    let node_dir = tempfile::tempdir_in(data).unwrap();
    let mut args = vec![
        "node",
        "--data-dir",
        node_dir.path().to_str().unwrap(),
        "--admin-token-file",
        token.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(cluster);
    let out = common::verge(&args, data);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    stderr
}

/// The account and permissions of docs/fleet.md: Verge's subjects in an account of
/// their own, and a node user that may use only the fleet's buckets and log subjects.
const NODE_PERMISSIONS: &str = r#"
accounts {
  VERGE: {
    jetstream: enabled
    users: [
      { user: verge, password: "PASSWORD",
        permissions: {
          publish: { allow: ["$JS.API.>", "$KV.verge-control.>", "$KV.verge-nodes.>", "$KV.verge-kv.>", "$O.verge-packages.>", "$O.verge-kv-large.>", "verge.purge", "verge.purge-applied.>", "verge.logs.>"] }
          subscribe: { allow: ["_INBOX.>", "$KV.verge-control.>", "$KV.verge-nodes.>", "$KV.verge-kv.>", "$O.verge-packages.>", "$O.verge-kv-large.>", "verge.purge-applied.>", "verge.logs.>"] }
        } }
    ]
  }
  OTHER: { users: [ { user: other, password: "other" } ] }
}
"#;

/// A fleet on NATS that requires a password and TLS: a node with both joins and
/// serves; one with a wrong password, or that does not trust the servers' CA, stops
/// naming the server and the reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_joins_with_credentials_and_tls_and_says_why_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_pem = file("ca.pem", &ca.pem());
    let cert = file("server.pem", &leaf.pem());
    let key = file("server-key.pem", &key.serialize_pem());
    let password = file("password", "correct-horse-battery\n");
    let wrong = file("wrong", "guessed\n");
    let options = verge_fleet::ServerOptions {
        // The accounts and permissions docs/fleet.md documents for production.
        extra_config: format!(
            "{}\ntls {{ cert_file: \"{}\", key_file: \"{}\" }}",
            NODE_PERMISSIONS.replace("PASSWORD", "correct-horse-battery"),
            cert.display(),
            key.display()
        ),
        user: Some(("verge".into(), "correct-horse-battery".into())),
        tls_ca: Some(ca_pem.clone()),
        ..Default::default()
    };
    let cluster = NatsCluster::start_with(3, &dir.path().join("nats"), options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url_list();
    let (ca, password, wrong) = (
        ca_pem.to_str().unwrap(),
        password.to_str().unwrap(),
        wrong.to_str().unwrap(),
    );

    // Two nodes with the credentials: everything a fleet does passes the
    // permissions (the activation's per-node answer needs both heartbeats).
    let secure = |data: &std::path::Path, name: &str, init: bool| {
        let mut args = vec![
            "--cluster",
            &url,
            "--node-name",
            name,
            "--nats-user",
            "verge",
            "--nats-password-file",
            password,
            "--nats-tls-ca",
            ca,
        ];
        if init {
            args.push("--cluster-init");
        }
        start_with(data, &args, &[])
    };
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, admin) = secure(data_a.path(), "pop-a", true);
    let (b, admin_b) = secure(data_b.path(), "pop-b", false);
    let packages = tempfile::tempdir().unwrap();
    deploy(&admin, "shop", "shop.test", package(packages.path(), "one")).await;
    until_serves(&b, "pop-b", "shop.test", "one").await;
    let answer = release(&admin, packages.path(), "secure", 10).await;
    assert_eq!(
        answer["nodes"],
        serde_json::json!({"pop-a": "serving", "pop-b": "serving"}),
        "{answer}"
    );
    until_serves(&a, "pop-a", "shop.test", "secure").await;
    // Purges travel under the same permissions.
    let (status, purged) = call(&admin, "POST", "/admin/v1/services/shop/purge/all", None).await;
    assert_eq!(status, 200, "{purged}");
    assert_eq!(
        purged["nodes"],
        serde_json::json!({"pop-a": "applied", "pop-b": "applied"}),
        "{purged}"
    );
    // And KV writes, small and large (2 MiB: through the large-value store).
    deploy(
        &admin,
        "links",
        "links.test",
        example_package(packages.path(), "url-shortener"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while on(&b, "links.test", "GET", "/health", "").await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "pop-b never served url-shortener"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let slug = shorten(&a, "https://example.com/secure").await;
    until_redirects(&b, "pop-b", &slug, "https://example.com/secure").await;
    use base64::Engine;
    let large = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 2 << 20]);
    let put = serde_json::json!({ "op": "put", "key": "large", "value_base64": large });
    let (status, stored) = call(
        &admin,
        "POST",
        "/admin/v1/services/links/kv/links",
        Some(put.to_string().into_bytes()),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    let get = serde_json::json!({ "op": "get", "key": "large" }).to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, found) = call(
            &admin_b,
            "POST",
            "/admin/v1/services/links/kv/links",
            Some(get.clone().into_bytes()),
        )
        .await;
        assert_eq!(status, 200, "{found}");
        if found["result"] == "entry" {
            assert_eq!(found["value_base64"].as_str(), Some(large.as_str()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pop-b never read the large value"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let stderr = refused_start(
        dir.path(),
        &[
            "--cluster",
            &url,
            "--nats-user",
            "verge",
            "--nats-password-file",
            wrong,
            "--nats-tls-ca",
            ca,
        ],
    );
    assert!(
        stderr.contains(&url) && stderr.contains("refused the node"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("authorization"), "{stderr}");
    let stderr = refused_start(
        dir.path(),
        &[
            "--cluster",
            &url,
            "--nats-user",
            "verge",
            "--nats-password-file",
            password,
        ],
    );
    assert!(
        stderr.contains(&url) && stderr.contains("--nats-tls-ca"),
        "{stderr}"
    );
    let stderr = refused_start(dir.path(), &["--cluster", &url, "--nats-user", "verge"]);
    assert!(stderr.contains("--nats-password-file"), "{stderr}");
}

/// A PoP behind a leaf server (its own JetStream domain, connected to the hub's):
/// its node reaches the fleet's state in the hub's domain (`--js-domain hub`), and
/// when the leaf loses the hub the node, still connected to the leaf, notices by
/// the JetStream API, refuses changes, and catches up when the link heals.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_behind_a_pop_leaf_reaches_the_hub_and_notices_the_leaf_losing_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = verge_fleet::ServerOptions {
        domain: Some("hub".into()),
        leafnodes: true,
        ..Default::default()
    };
    let hub = NatsCluster::start_with(3, &dir.path().join("hub"), options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The leaf reaches the hub through a proxy, so the test can cut the PoP off.
    let hub_leaf = hub.leaf_urls()[0]
        .trim_start_matches("nats-leaf://")
        .parse()
        .unwrap();
    let proxy = verge_fleet::TcpProxy::start(hub_leaf).await.unwrap();
    let leaf_url = format!("nats-leaf://{}", proxy.addr());
    let leaf = NatsCluster::start_leaf(&dir.path().join("leaf"), "ams", &[leaf_url])
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hub_urls = hub.url_list();
    let (_a, admin_a) = start_with(
        data_a.path(),
        &[
            "--cluster",
            &hub_urls,
            "--js-domain",
            "hub",
            "--node-name",
            "pop-hub",
            "--cluster-init",
        ],
        &[],
    );
    let leaf_urls = leaf.url_list();
    let (b, admin_b) = start_with(
        data_b.path(),
        &[
            "--cluster",
            &leaf_urls,
            "--js-domain",
            "hub",
            "--node-name",
            "pop-ams",
            "--pop",
            "ams",
        ],
        &[],
    );
    let packages = tempfile::tempdir().unwrap();
    deploy(
        &admin_a,
        "shop",
        "shop.test",
        package(packages.path(), "one"),
    )
    .await;
    until_serves(&b, "pop-ams", "shop.test", "one").await;
    until_ready_says(&admin_b, "cluster: connected").await;

    proxy.blackhole();
    until_ready_says(&admin_b, "cluster: unavailable").await;
    changes_are_refused(&admin_b, packages.path()).await;
    release(&admin_a, packages.path(), "two", 1).await;
    until_serves(&b, "pop-ams", "shop.test", "one").await;
    proxy.heal().await.unwrap();
    until_serves(&b, "pop-ams", "shop.test", "two").await;
    until_ready_says(&admin_b, "cluster: connected").await;
}

/// `verge fleet dev` (what `scripts/fleet.sh up` runs): NATS and three nodes in one
/// command; a deploy through pop-a is served by pop-c, which loaded the code pop-a
/// compiled (the fleet shares code, signed with its code key); a node with another
/// key refuses that code and compiles the version itself; SIGTERM stops it all.
#[tokio::test(flavor = "multi_thread")]
async fn verge_fleet_dev_runs_a_whole_fleet_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let fleet_dir = dir.path().join("fleet");
    let mut child = std::process::Command::new(verge_bin())
        .args(["fleet", "dev", "--port-base", "0", "--dir"])
        .arg(&fleet_dir)
        .env("VERGE_ADMIN_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (Lines::default(), Lines::default());
    stdout.collect(child.stdout.take().unwrap());
    stderr.collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(90);
    while !stdout.all().iter().any(|l| l == "Fleet ready") {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "`verge fleet dev` never said it was ready; stdout:\n{}\nstderr:\n{}",
            stdout.all().join("\n"),
            stderr.all().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = |name: &str| {
        stdout
            .all()
            .into_iter()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap()
    };
    // `pop-a: http://ADDR  admin http://ADDR`
    let admin_a = line("pop-a").rsplit(' ').next().unwrap().to_owned();
    let http_c = line("pop-c").split_whitespace().nth(1).unwrap().to_owned();
    let nats = stderr
        .all()
        .into_iter()
        .find_map(|l| l.trim().strip_prefix("NATS ").map(str::to_owned))
        .expect("the NATS URLs are printed");
    // A node of this fleet that holds another code key.
    let elsewhere = tempfile::tempdir().unwrap();
    let other_key = elsewhere.path().join("other-key");
    std::fs::write(&other_key, "another fleet's key, as long as a key must be").unwrap();
    let (outsider, _) = start_with(
        &elsewhere.path().join("data"),
        &[
            "--cluster",
            &nats,
            "--node-name",
            "pop-x",
            "--code-key",
            other_key.to_str().unwrap(),
        ],
        &[],
    );
    let packages = tempfile::tempdir().unwrap();
    deploy(
        &admin_a,
        "shop",
        "shop.test",
        package(packages.path(), "dev"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = client()
            .get(format!("{http_c}/greeting"))
            .header("host", "shop.test")
            .send()
            .await
            .unwrap();
        if resp.status() == 200 && resp.text().await.unwrap().contains("dev") {
            break;
        }
        assert!(Instant::now() < deadline, "pop-c never served the deploy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // pop-b and pop-c took pop-a's code instead of compiling (the three nodes share
    // one stderr); the outsider compiled its own and serves the version too.
    let fetched = |lines: &Lines| {
        lines
            .all()
            .iter()
            .filter(|l| l.contains("Fetched the compiled code of version 1"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while fetched(&stderr) < 2 {
        assert!(
            Instant::now() < deadline,
            "pop-b and pop-c did not both load the shared code:\n{}",
            stderr.all().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_serves(&outsider, "pop-x", "shop.test", "dev").await;
    outsider.stderr.wait_for(Duration::from_secs(10), |l| {
        l.contains("is not signed with this node's fleet code key")
    });
    assert_eq!(fetched(&outsider.stderr), 0);
    drop(outsider);
    let first = nats
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("nats://")
        .to_owned();

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "verge fleet dev did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{}", stderr.all().join("\n"));
    assert!(
        std::net::TcpStream::connect(&first).is_err(),
        "its NATS servers stopped with it"
    );
}
