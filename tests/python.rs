//! Python apps: `verge init --lang python` writes one that `verge build` builds with
//! its pinned componentize-py (installed into the app's `.venv` by pip, offline from
//! the wheel `make test` keeps) and `verge serve` serves; bad source, a missing
//! handler class and tools that cannot be installed are reported with what to do,
//! and leave the last build in place; the `verge` package reaches Verge's APIs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::apis;
use common::origin::Origin;
use common::*;

fn init_python(root: &Path, name: &str) -> PathBuf {
    init_app(root, name, "python")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_app_from_init_builds_serves_and_reports_bad_input() {
    let root = tempfile::tempdir().unwrap();
    let app = init_python(root.path(), "shop-py");
    for file in [
        "requirements.txt",
        "src/app.py",
        "verge.toml",
        "README.md",
        ".gitignore",
    ] {
        assert!(app.join(file).exists(), "{file} missing");
    }
    let requirements = std::fs::read_to_string(app.join("requirements.txt")).unwrap();
    assert!(
        requirements.contains("componentize-py==0.25.1"),
        "{requirements}"
    );

    let out = verge(&["build"], &app);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Installed the app's Python tools"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Built ./shop-py.wasm (") && stderr.contains("MiB)"),
        "{stderr}"
    );

    // Served with --watch from the app's directory, as its README says.
    let server = Verge::serve_in(&app, &["--watch"]);
    let get = |path: &str| client().get(server.url(path)).send();
    let resp = get("/").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), "Hello from the edge!\n");
    let resp = client()
        .post(server.url("/echo"))
        .header("content-type", "text/plain")
        .body("a body, back as it came")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.text().await.unwrap(), "a body, back as it came");
    let json: serde_json::Value = get("/json?lang=python")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"method": "GET", "path": "/json", "query": {"lang": "python"}})
    );
    assert_eq!(get("/missing").await.unwrap().status(), 404);

    // An edit is built and served; one build per change (the build reads the
    // sources and replaces the component, neither of which is a change).
    let source = std::fs::read_to_string(app.join("src/app.py")).unwrap();
    std::fs::write(
        app.join("src/app.py"),
        source.replace("Hello from the edge!", "Hello again from the edge!"),
    )
    .unwrap();
    server
        .stderr
        .wait_for(Duration::from_secs(300), |l| l.contains("Reloaded"));
    let resp = get("/").await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "Hello again from the edge!\n");
    // A rebuild loop would start within the watcher's 300 ms debounce; give it ten
    // times that to show.
    let settled = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < settled {
        assert_eq!(
            server.stderr.count("Building"),
            2,
            "{:#?}",
            server.stderr.all()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    std::fs::write(app.join("src/app.py"), &source).unwrap();
    let out = verge(&["build"], &app);
    assert!(out.status.success());
    let built = std::fs::read(app.join("shop-py.wasm")).unwrap();

    // A syntax error: Python's report with file and line, no stack; the last build
    // stays. An installed build does not install again.
    std::fs::write(
        app.join("src/app.py"),
        source.replace(
            "return Response(\"Hello from the edge!\\n\")",
            "return Response(\"Hello from the edge!\\n\"",
        ),
    )
    .unwrap();
    let stderr = build_fails(&app, None);
    assert!(stderr.contains("does not compile"), "{stderr}");
    assert!(stderr.contains("File \"src/app.py\", line"), "{stderr}");
    assert!(stderr.contains("SyntaxError"), "{stderr}");
    assert!(!stderr.contains("Traceback"), "no stack: {stderr}");
    assert!(!stderr.contains("Installed"), "{stderr}");
    assert_eq!(std::fs::read(app.join("shop-py.wasm")).unwrap(), built);

    // No handler class: what to name it.
    std::fs::write(
        app.join("src/app.py"),
        source.replace("class IncomingHandler(", "class Handler("),
    )
    .unwrap();
    let stderr = build_fails(&app, None);
    assert!(
        stderr.contains("src/app.py defines no `IncomingHandler` class")
            && stderr.contains("class IncomingHandler(verge.Handler):"),
        "{stderr}"
    );
    assert!(!stderr.contains("Stack backtrace"), "{stderr}");
    assert_eq!(std::fs::read(app.join("shop-py.wasm")).unwrap(), built);

    // The module raises when imported (componentize-py imports it at build time):
    // its own traceback, with the app's file and line.
    std::fs::write(
        app.join("src/app.py"),
        format!("{source}\nGREETING = undefined_name\n"),
    )
    .unwrap();
    let stderr = build_fails(&app, None);
    assert!(
        stderr.contains("importing src/app.py failed")
            && stderr.contains("File \"src/app.py\", line")
            && stderr.contains("NameError: name 'undefined_name' is not defined"),
        "{stderr}"
    );
    assert!(!stderr.contains("componentize-py\", line"), "{stderr}");
    assert_eq!(std::fs::read(app.join("shop-py.wasm")).unwrap(), built);
    std::fs::write(app.join("src/app.py"), &source).unwrap();

    // Tools that cannot be installed (a pin that does not exist, offline): pip's
    // reason naming it, what to check, and the last build stays.
    std::fs::write(
        app.join("requirements.txt"),
        format!("{requirements}verge-no-such-package==1.0.0\n"),
    )
    .unwrap();
    let stderr = build_fails(&app, None);
    assert!(
        stderr.contains("`pip install -r requirements.txt` failed")
            && stderr.contains("verge-no-such-package")
            && stderr.contains("check requirements.txt"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(app.join("shop-py.wasm")).unwrap(), built);

    // No Python: what to install.
    let stderr = build_fails(&app, Some(root.path()));
    assert!(
        stderr.contains("Python apps need Python 3")
            && stderr.contains("apt install python3 python3-venv"),
        "{stderr}"
    );
}

/// A Python app using Verge's APIs through the `verge` package (the checks shared
/// with JavaScript are in `common::apis`); a refused fetch names the `wasi:http`
/// error code, a handler that raises answers 500 without detail for the client, its
/// traceback naming the app's file and line; and `wasi:keyvalue` through the raw
/// bindings sees the same data.
#[tokio::test(flavor = "multi_thread")]
async fn a_python_app_reaches_verges_apis_through_the_verge_package() {
    let origin = Origin::start().await;
    let root = tempfile::tempdir().unwrap();
    let app = init_python(root.path(), "api-py");
    std::fs::copy(
        repo_root().join("tests/guests/py-app/app.py"),
        app.join("src/app.py"),
    )
    .unwrap();
    apis::add_to_manifest(&app, &origin);
    let out = verge(&["build"], &app);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = Verge::serve(&[app.to_str().unwrap(), "--no-build"]);
    let (refused, raised) = apis::check(&server, "api-py").await;
    assert!(
        refused.starts_with("HttpRequestDenied: the request to `http://example.invalid/` failed"),
        "{refused}"
    );
    let lines: Vec<String> = server
        .stdout
        .all()
        .into_iter()
        .filter(|l| l.contains(&raised) && l.contains(r#""stream":"stderr""#))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#"File \"src/app.py\", line"#)),
        "{lines:#?}"
    );
    let access = server.access_line(&raised);
    assert_eq!(access["status"], 500, "{access}");

    // The standard `wasi:keyvalue` bindings reach the same store and data.
    let resp = client()
        .get(server.url("/std-kv/greeting"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "stored by the sdk");
}
