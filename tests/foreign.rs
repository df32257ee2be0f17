//! Components built by toolchains no one here wrote run unmodified, fetching through
//! a named backend with the standard `wasi:http/outgoing-handler` and refused where
//! the manifest says so:
//! - Python (`tests/guests/python/fetch.py`), built with componentize-py against the
//!   vendored `wasi:http/proxy@0.2.12` WIT;
//! - JavaScript (`tests/guests/js/fetch.js`, a StarlingMonkey fetch-event handler using
//!   `fetch()`), built with componentize-js, whose engine targets `wasi:http@0.2.10`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::origin::Origin;
use common::*;

/// componentize-py, as `scripts/install-componentize-py.sh` installs it.
fn componentize_py() -> PathBuf {
    let bin = tools_dir().join("componentize-py/bin/componentize-py");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-componentize-py.sh (make test does)",
        bin.display()
    );
    bin
}

fn build_python(app: &str, out: &std::path::Path) -> PathBuf {
    let bin = componentize_py();
    let wit = repo_root().join("wit");
    let world = "wasi:http/proxy@0.2.12";
    let bindings = out.join("bindings");
    let run = |args: &[&str]| {
        let output = Command::new(&bin)
            .args(["-d", wit.to_str().unwrap(), "-w", world])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "componentize-py {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&["bindings", bindings.to_str().unwrap()]);
    let component = out.join(format!("{app}.wasm"));
    let sources = repo_root().join("tests/guests/python");
    run(&[
        "componentize",
        "-p",
        bindings.to_str().unwrap(),
        "-p",
        sources.to_str().unwrap(),
        app,
        "-o",
        component.to_str().unwrap(),
    ]);
    component
}

/// Serves `component` with a backend `origin` on loopback and checks that its
/// `/fetch/HOST/PATH` reaches the origin through it (answering `{greeting}BODY`) and
/// that a host outside the manifest is refused (the guest's error text contains
/// `refused_marker`), with the host's log line naming it.
async fn fetches_through_a_backend(
    component: &std::path::Path,
    greeting: &str,
    refused_marker: &str,
) {
    let origin = Origin::start().await;
    let app = app_dir_for(
        component,
        &format!(
            "[backends.origin]\nurl = \"http://127.0.0.1:{}\"\nallow_private = true\n",
            origin.port()
        ),
    );
    let verge = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);

    let resp = client()
        .get(verge.url("/fetch/origin/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = request_id(&resp);
    assert_eq!(
        resp.text().await.unwrap(),
        format!("{greeting}hello from origin")
    );
    let access = verge.access_line(&id);
    assert_eq!(access["subrequests"], 1);
    assert!(
        access["guest_cpu_us"].as_u64().unwrap() < 50_000,
        "{access}"
    );

    let resp = client()
        .get(verge.url("/fetch/example.com/"))
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.unwrap();
    assert!(body.contains(refused_marker), "{body}");
    let line = verge
        .stdout
        .wait_for(std::time::Duration::from_secs(30), |l| {
            l.contains("\"type\":\"host\"") && l.contains(&id)
        });
    assert!(
        line.contains("example.com") && line.contains("refused"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_component_fetches_through_a_backend() {
    let out = tempfile::tempdir().unwrap();
    let component = build_python("fetch", out.path());
    fetches_through_a_backend(&component, "python fetched: ", "HttpRequestDenied").await;
}

/// The vendored WIT as componentize-js 0.23's engine needs it (as `verge build`
/// supplies it to JavaScript apps): its build imports and exports `wasi:*@0.2.10`.
/// Verge links 0.2.12, which satisfies 0.2.10 imports by semver.
fn wit_at_0_2_10(out: &std::path::Path) -> PathBuf {
    let root = out.join("wit");
    verge_build::js::write_wit(&root).unwrap();
    root
}

fn build_js(app: &str, out: &std::path::Path) -> PathBuf {
    let modules = tools_dir().join("componentize-js/node_modules");
    assert!(
        modules.join("@bytecodealliance/componentize-js").exists(),
        "componentize-js is missing: run scripts/install-componentize-js.sh (make test does)"
    );
    let guests = repo_root().join("tests/guests/js");
    // Node resolves packages from the script's directory upwards: build from a copy
    // next to the installed node_modules.
    let script = modules.parent().unwrap().join("build.mjs");
    std::fs::copy(guests.join("build.mjs"), &script).unwrap();
    let wit = wit_at_0_2_10(out);
    let component = out.join(format!("{app}.wasm"));
    let output = Command::new("node")
        .arg(&script)
        .arg(guests.join(format!("{app}.js")))
        .arg(&wit)
        .arg(verge_build::js::WORLD_ID)
        .arg(&component)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "componentize-js: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    component
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_component_fetches_through_a_backend() {
    let out = tempfile::tempdir().unwrap();
    let component = build_js("fetch", out.path());
    // fetch() rejects with a NetworkError; the code is in the host's log line.
    fetches_through_a_backend(&component, "js fetched: ", "NetworkError").await;
}
