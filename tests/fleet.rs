//! `verge node --cluster`: three real nodes on a real 3-server NATS cluster
//! (JetStream, R3) started by the test on loopback. A change made through any node
//! is served by every node. `nats-server` comes from `scripts/install-nats-server.sh`
//! (`make test` runs it).

mod common;

use std::time::{Duration, Instant};

use common::node::*;
use common::*;
use verge_fleet::NatsCluster;

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
    let mut args = vec!["--cluster", urls, "--node-name", name];
    if init {
        args.push("--cluster-init");
    }
    start_with(data, &args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_any_node_is_served_by_every_node() {
    let nats = tempfile::tempdir().unwrap();
    let cluster = NatsCluster::start(3, nats.path())
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
    for (name, node) in nodes {
        until_serves(node, name, "shop.test", "two").await;
    }

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
    let token = data.path().join("token");
    std::fs::write(&token, "a-token-of-twenty-chars").unwrap();
    let node_dir = data.path().join("node");
    // `verge node` with `cluster` flags, which must stop; its stderr.
    let refused = |cluster: &[&str]| {
        let mut args = vec![
            "node",
            "--data-dir",
            node_dir.to_str().unwrap(),
            "--admin-token-file",
            token.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(cluster);
        let out = common::verge(&args, data.path());
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{stderr}");
        stderr
    };
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
