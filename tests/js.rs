//! JavaScript apps: `verge init --lang js` writes one that `verge build` builds with
//! its pinned componentize-js (installed by `npm ci` from npm's cache: the test runs
//! offline) and `verge serve` serves; a syntax error is shown with file and line and
//! leaves the last build in place; a machine without Node.js is told what to install.

mod common;

use common::*;

/// `verge init NAME --lang js` in `root`; the app's directory.
fn init_js(root: &std::path::Path, name: &str) -> std::path::PathBuf {
    init_app(root, name, "js")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_app_from_init_builds_serves_and_reports_bad_input() {
    let root = tempfile::tempdir().unwrap();
    let app = init_js(root.path(), "shop-js");
    for file in [
        "package.json",
        "package-lock.json",
        "src/index.js",
        "verge.toml",
        "README.md",
    ] {
        assert!(app.join(file).exists(), "{file} missing");
    }

    let out = verge(&["build"], &app);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Installed the app's JavaScript tools"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Built ./shop-js.wasm (") && stderr.contains("MiB)"),
        "{stderr}"
    );
    let built = std::fs::read(app.join("shop-js.wasm")).unwrap();

    let server = Verge::serve(&[app.to_str().unwrap(), "--no-build"]);
    let get = |path: &str| client().get(server.url(path)).send();
    let resp = get("/").await.unwrap();
    assert_eq!(resp.status(), 200);
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
    let json: serde_json::Value = get("/json?lang=js").await.unwrap().json().await.unwrap();
    assert_eq!(
        json,
        serde_json::json!({"method": "GET", "path": "/json", "query": {"lang": "js"}})
    );
    assert_eq!(get("/missing").await.unwrap().status(), 404);
    drop(server);

    // A syntax error: node's report with file and line; the last build stays.
    std::fs::write(
        app.join("src/index.js"),
        "addEventListener(\"fetch\", (e) => {\n  e.respondWith(new Response(\"x\")\n});\n",
    )
    .unwrap();
    let stderr = build_fails(&app, None);
    assert!(stderr.contains("does not parse"), "{stderr}");
    assert!(stderr.contains("src/index.js:2"), "{stderr}");
    assert!(stderr.contains("SyntaxError"), "{stderr}");
    assert!(!stderr.contains("    at "), "no stack: {stderr}");
    assert_eq!(std::fs::read(app.join("shop-js.wasm")).unwrap(), built);

    // No request handler: what to add; the last build stays.
    std::fs::write(app.join("src/index.js"), "const answer = 42;\n").unwrap();
    let stderr = build_fails(&app, None);
    assert!(
        stderr.contains("src/index.js registers no request handler")
            && stderr.contains("addEventListener(\"fetch\""),
        "{stderr}"
    );
    assert_eq!(std::fs::read(app.join("shop-js.wasm")).unwrap(), built);

    // Tools that cannot be installed (a package.json out of step with its lock file):
    // npm's reason, what to check, and the last build stays.
    let manifest = std::fs::read_to_string(app.join("package.json")).unwrap();
    std::fs::write(
        app.join("package.json"),
        manifest.replace(
            "\"devDependencies\": {",
            "\"devDependencies\": {\n    \"verge-no-such-package\": \"1.0.0\",",
        ),
    )
    .unwrap();
    let lock = std::fs::read(app.join("package-lock.json")).unwrap();
    std::fs::write(app.join("package-lock.json"), lock).unwrap();
    let stderr = build_fails(&app, None);
    assert!(
        stderr.contains("`npm ci` failed")
            && stderr.contains("verge-no-such-package")
            && stderr.contains("check package.json and package-lock.json"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(app.join("shop-js.wasm")).unwrap(), built);

    // No Node.js: what to install.
    let stderr = build_fails(&app, Some(root.path()));
    assert!(
        stderr.contains("JavaScript apps need Node.js")
            && stderr.contains("apt install nodejs npm"),
        "{stderr}"
    );
}

/// A JavaScript app using Verge's APIs through the interfaces `verge build` puts in
/// its world: KV, atomics, config, logging and `verge:edge/runtime`.
#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_app_reaches_kv_config_logging_and_the_runtime() {
    let root = tempfile::tempdir().unwrap();
    let app = init_js(root.path(), "api-js");
    std::fs::copy(
        repo_root().join("tests/guests/js-app/api.js"),
        app.join("src/index.js"),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(app.join("verge.toml")).unwrap();
    std::fs::write(
        app.join("verge.toml"),
        format!("{manifest}\n[kv_stores.data]\n\n[config]\ngreeting = \"hello from config\"\n"),
    )
    .unwrap();
    let out = verge(&["build"], &app);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let verge = Verge::serve(&[app.to_str().unwrap(), "--no-build"]);
    let resp = client()
        .put(verge.url("/kv/greeting"))
        .body("stored by JavaScript")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = client()
        .get(verge.url("/kv/greeting"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "stored by JavaScript");
    let resp = client().get(verge.url("/kv/other")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    for expected in ["1", "2"] {
        let resp = client().get(verge.url("/count")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), expected);
    }

    // A handler that throws: 500, and the exception with its stack (file and line)
    // in the request's log lines.
    let resp = client().get(verge.url("/throw")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let thrown = request_id(&resp);
    for text in ["the handler gave up: card declined", "src/index.js:"] {
        verge
            .stdout
            .wait_for(std::time::Duration::from_secs(10), |l| {
                l.contains(r#""stream":"stderr""#) && l.contains(&thrown) && l.contains(text)
            });
    }

    let resp = client().get(verge.url("/info")).send().await.unwrap();
    let id = request_id(&resp);
    let info: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        info,
        serde_json::json!({"greeting": "hello from config", "requestId": id, "app": "api-js"})
    );
    let line = verge
        .stdout
        .wait_for(std::time::Duration::from_secs(10), |l| {
            l.contains(r#""type":"log""#) && l.contains(&id)
        });
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (&line["level"], &line["context"], &line["message"]),
        (
            &"warn".into(),
            &"js-app".into(),
            &"info was asked for".into()
        )
    );
}

/// A JavaScript app using Verge's APIs through Verge's module (`import ... from
/// "verge"`, bundled with esbuild by `verge build`); the checks are the Python app's
/// (`common::apis`).
#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_app_reaches_verges_apis_through_the_verge_module() {
    let origin = common::origin::Origin::start().await;
    let root = tempfile::tempdir().unwrap();
    let app = init_js(root.path(), "api-js-sdk");
    std::fs::copy(
        repo_root().join("tests/guests/js-app/sdk.js"),
        app.join("src/index.js"),
    )
    .unwrap();
    common::apis::add_to_manifest(&app, &origin);
    let out = verge(&["build"], &app);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(app.join(".verge/bundle.js").exists(), "the app was bundled");

    let server = Verge::serve(&[app.to_str().unwrap(), "--no-build"]);
    let (refused, _) = common::apis::check(&server, "api-js-sdk").await;
    assert!(refused.contains("TypeError"), "{refused}");
}

/// Verge's TypeScript declarations (`sdk/js/index.d.ts`) type-check the JavaScript
/// that uses them — the API guest, the url-shortener, the template — with
/// TypeScript 5.9 as `scripts/install-componentize-js.sh` installs it; a misuse
/// fails the check.
#[test]
fn the_javascript_modules_declarations_check_its_users() {
    let tsc = tools_dir().join("typescript/node_modules/typescript/bin/tsc");
    assert!(
        tsc.exists(),
        "{} is missing: run scripts/install-componentize-js.sh (make test does)",
        tsc.display()
    );
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let check = |extra: &[std::path::PathBuf]| {
        let mut files = vec![
            root.join("sdk/js/index.d.ts"),
            root.join("tests/guests/js-app/sdk.js"),
            root.join("examples/url-shortener-js/src/index.js"),
            root.join("templates/js/src/index.js"),
        ];
        files.extend_from_slice(extra);
        let config = serde_json::json!({
            "compilerOptions": {
                "noEmit": true, "allowJs": true, "checkJs": true,
                "module": "es2022", "target": "es2022", "moduleResolution": "bundler",
                "lib": ["es2022", "dom", "dom.iterable"],
                "paths": { "verge": [root.join("sdk/js/index.d.ts")] }
            },
            "files": files,
        });
        let path = dir.path().join("tsconfig.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let out = std::process::Command::new("node")
            .arg(&tsc)
            .arg("-p")
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, output) = check(&[]);
    assert!(ok, "{output}");

    let misuse = dir.path().join("misuse.js");
    std::fs::write(
        &misuse,
        "import { kv, ratelimit } from \"verge\";\n\
         kv.open(\"data\").putt(\"k\", \"v\");\n\
         ratelimit.checkRate(\"c\", \"e\", { limit: 1, window: 5, penaltyBox: \"p\" });\n",
    )
    .unwrap();
    let (ok, output) = check(&[misuse]);
    assert!(!ok);
    assert!(
        output.contains("Property 'putt' does not exist")
            && output.contains("Type '5' is not assignable"),
        "{output}"
    );
}
