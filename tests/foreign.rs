//! Components built by toolchains no one here wrote run unmodified: a Python handler
//! (`tests/guests/python/fetch.py`, built with componentize-py against the vendored
//! `wasi:http/proxy@0.2.12` WIT) fetching through a named backend with plain
//! `wasi:http/outgoing-handler`, and refused where the manifest says so.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::origin::Origin;
use common::*;

/// componentize-py, as `scripts/install-componentize-py.sh` installs it.
fn componentize_py() -> PathBuf {
    let tools = std::env::var_os("VERGE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/verge-tools")
        });
    let bin = tools.join("componentize-py/bin/componentize-py");
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

#[tokio::test(flavor = "multi_thread")]
async fn a_python_component_fetches_through_a_backend() {
    let out = tempfile::tempdir().unwrap();
    let component = build_python("fetch", out.path());
    let origin = Origin::start().await;
    let app = app_dir_for(
        &component,
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
        "python fetched: hello from origin"
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
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.unwrap();
    assert!(body.contains("HttpRequestDenied"), "{body}");
}
