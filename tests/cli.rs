//! The `verge` command line: init → build → serve, the example app, --watch, and the
//! errors a developer meets.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `verge serve PATH` that must fail before listening; returns its stderr.
fn serve_fails(path: &Path) -> String {
    let out = verge(
        &[
            "serve",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--no-cache",
        ],
        Path::new("."),
    );
    assert!(
        !out.status.success(),
        "verge serve {} should fail",
        path.display()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "no ready line"
    );
    stderr(&out)
}

#[test]
fn serving_something_that_is_not_an_app_explains_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();

    let err = serve_fails(&dir.path().join("missing.wasm"));
    assert!(err.contains("does not exist"), "{err}");

    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello, I am text").unwrap();
    let err = serve_fails(&text);
    assert!(err.contains("not a WebAssembly file"), "{err}");

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    let err = serve_fails(&core);
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );

    let no_export = dir.path().join("empty.wasm");
    std::fs::write(&no_export, wat::parse_str("(component)").unwrap()).unwrap();
    let err = serve_fails(&no_export);
    assert!(
        err.contains("does not export `wasi:http/incoming-handler"),
        "{err}"
    );
    assert!(
        err.contains("caused by:"),
        "the cause chain is printed: {err}"
    );

    let odd_import = dir.path().join("odd-import.wasm");
    std::fs::write(
        &odd_import,
        wat::parse_str(r#"(component (import "acme:widgets/frobnicate@1.0.0" (instance (export "spin" (func)))))"#).unwrap(),
    )
    .unwrap();
    let err = serve_fails(&odd_import);
    assert!(
        err.contains("imports something Verge does not provide"),
        "{err}"
    );
    assert!(
        err.contains("acme:widgets/frobnicate"),
        "names the import: {err}"
    );

    let no_manifest = tempfile::tempdir().unwrap();
    let err = serve_fails(no_manifest.path());
    assert!(
        err.contains("no verge.toml") && err.contains("verge init"),
        "{err}"
    );
}

#[test]
fn manifest_mistakes_are_reported_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("verge.toml"),
        "manifest_version = 1\nname = \"x\"\n\n[limits]\nmemory = \"1MiB\"\ncpu_tme = \"5ms\"\n",
    )
    .unwrap();
    let err = serve_fails(dir.path());
    assert!(err.contains("unknown field `cpu_tme`"), "{err}");
    assert!(err.contains("line 6"), "{err}");
}

#[test]
fn build_without_a_manifest_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = verge(&["build"], dir.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("verge init"), "{}", stderr(&out));
}

/// Starts `verge serve` on an app directory (building it first).
fn serve_app(dir: &Path, extra: &[&str]) -> Verge {
    let mut args = vec![dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    Verge::serve(&args)
}

#[tokio::test(flavor = "multi_thread")]
async fn init_build_serve_works_out_of_the_box() {
    let parent = tempfile::tempdir().unwrap();
    let out = verge(&["init", "my-app"], parent.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let app = parent.path().join("my-app");
    for file in ["verge.toml", "Cargo.toml", "src/lib.rs", ".gitignore"] {
        assert!(app.join(file).exists(), "{file} created");
    }
    // A second init into the same place refuses instead of overwriting.
    let again = verge(&["init", "my-app"], parent.path());
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"));

    let built = verge(&["build"], &app);
    assert!(built.status.success(), "{}", stderr(&built));
    assert!(app.join("my-app.wasm").exists());

    let server = serve_app(&app, &["--no-build"]);
    let c = client();
    let resp = c.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "Hello from my-app!\n");
    let echoed = c
        .post(server.url("/echo"))
        .body("ping")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.text().await.unwrap(), "ping");
    assert_eq!(
        c.get(server.url("/nope")).send().await.unwrap().status(),
        404
    );

    let bad_name = verge(&["init", "Bad_Name"], parent.path());
    assert!(!bad_name.status.success());
    assert!(stderr(&bad_name).contains("invalid app name"));
}

#[test]
fn a_build_failure_shows_the_compiler_output() {
    let parent = tempfile::tempdir().unwrap();
    assert!(verge(&["init", "broken"], parent.path()).status.success());
    let app = parent.path().join("broken");
    std::fs::write(
        app.join("src/lib.rs"),
        "fn oops() -> u32 { \"not a number\" }\n",
    )
    .unwrap();
    let out = verge(&["build"], &app);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("error[E0308]"), "compiler output shown: {err}");
    assert!(err.contains("cargo build failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hello_example_builds_and_serves() {
    let example = repo_root().join("examples/hello");
    let server = serve_app(&example, &[]);
    let c = client();
    assert_eq!(
        c.get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Hello, world!\n"
    );
    assert_eq!(
        c.get(server.url("/greet/Ada"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Hello, Ada!\n"
    );
    let json: serde_json::Value = c
        .post(server.url("/json"))
        .body(r#"{"name":"Ada"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"name": "Ada", "greeting": "Hello"})
    );
    let bad = c
        .post(server.url("/json"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 500, "a handler error becomes a 500");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_swaps_the_app_without_dropping_requests_in_flight() {
    let parent = tempfile::tempdir().unwrap();
    assert!(verge(&["init", "watched"], parent.path()).status.success());
    let app = parent.path().join("watched");
    // From the app's directory, as its README says.
    let server = Verge::serve_in(&app, &["--watch"]);
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("Watching"));
    let c = client();
    assert_eq!(
        c.get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Hello from watched!\n"
    );

    // Start an upload to /echo that stays open across the swap.
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
    tx.unbounded_send(Ok(b"first half, ".to_vec())).unwrap();
    // The echo handler answers before reading the body: once the head is here, the
    // request is running on the old version.
    let in_flight = c
        .post(server.url("/echo"))
        .body(reqwest::Body::wrap_stream(rx))
        .send()
        .await
        .unwrap();

    let source = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
    std::fs::write(
        app.join("src/lib.rs"),
        source.replace("{greeting} from", "{greeting} again from"),
    )
    .unwrap();
    server
        .stderr
        .wait_for(Duration::from_secs(300), |l| l.contains("Reloaded"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = c
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text == "Hello again from watched!\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving the old version: {text}"
        );
    }

    tx.unbounded_send(Ok(b"second half".to_vec())).unwrap();
    drop(tx);
    assert_eq!(in_flight.status(), 200);
    assert_eq!(in_flight.text().await.unwrap(), "first half, second half");

    // A broken edit keeps the running version.
    std::fs::write(app.join("src/lib.rs"), "this is not rust").unwrap();
    server
        .stderr
        .wait_for(Duration::from_secs(300), |l| l.contains("Keeping"));
    assert_eq!(
        c.get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Hello again from watched!\n"
    );
    // One build per change: the start, the edit, the broken edit. A build reads the
    // sources and writes the component; neither is a change to rebuild for.
    assert_eq!(
        server.stderr.count("Building"),
        3,
        "{:#?}",
        server.stderr.all()
    );
}
