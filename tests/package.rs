//! Packages: `verge pack` writes one file holding the component and its normalised
//! settings; `verge serve FILE.vpkg` runs it with nothing else from the app directory;
//! damaged packages are refused with the reason.

mod common;

use common::*;

/// An app of the `config-std` guest whose config value comes from a config file.
fn app() -> tempfile::TempDir {
    let dir = app_dir_for(
        &guest("config-std"),
        "[config]\ninline = \"from verge.toml\"\n[secret_stores.keys]\nenv = { token = \"VERGE_TEST_PACKAGE_TOKEN\" }\n",
    );
    // `config_file` is a top-level key: put it before the tables.
    let manifest = std::fs::read_to_string(dir.path().join("verge.toml")).unwrap();
    std::fs::write(
        dir.path().join("verge.toml"),
        format!("config_file = \"config.json\"\n{manifest}"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"from_file": "read in"}"#,
    )
    .unwrap();
    dir
}

fn pack(dir: &std::path::Path, output: &std::path::Path) -> String {
    let out = verge(&["pack", "--no-build", "-o", output.to_str().unwrap()], dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_runs_without_its_app_directory() {
    let dir = app();
    let elsewhere = tempfile::tempdir().unwrap();
    let package = elsewhere.path().join("app.vpkg");
    let sha = pack(dir.path(), &package);
    assert_eq!(sha.len(), 64, "{sha}");
    assert_eq!(
        pack(dir.path(), &package),
        sha,
        "the same app packs the same"
    );
    // The app directory (its config file included) is gone; the package suffices.
    drop(dir);
    let verge = Verge::serve_with_env(
        &[package.to_str().unwrap()],
        &[("VERGE_TEST_PACKAGE_TOKEN", "s3cret-token")],
    );
    for (key, value) in [("from_file", "read in"), ("inline", "from verge.toml")] {
        let resp = client()
            .get(verge.url(&format!("/{key}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{key}");
        assert_eq!(resp.text().await.unwrap(), value);
    }
}

#[test]
fn damaged_packages_and_missing_secrets_are_refused_with_the_reason() {
    let dir = app();
    let package = dir.path().join("app.vpkg");
    pack(dir.path(), &package);
    let bytes = std::fs::read(&package).unwrap();
    let serve = |path: &std::path::Path, env: &[(&str, &str)]| {
        let out = std::process::Command::new(verge_bin())
            .args(["serve", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let truncated = dir.path().join("truncated.vpkg");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let stderr = serve(&truncated, &[("VERGE_TEST_PACKAGE_TOKEN", "x")]);
    assert!(stderr.contains("reading the package"), "{stderr}");

    let not_a_package = dir.path().join("zip.vpkg");
    std::fs::write(&not_a_package, b"PK\x03\x04").unwrap();
    let stderr = serve(&not_a_package, &[("VERGE_TEST_PACKAGE_TOKEN", "x")]);
    assert!(stderr.contains("not a Verge package"), "{stderr}");

    let stderr = serve(&package, &[]);
    assert!(
        stderr.contains("VERGE_TEST_PACKAGE_TOKEN, which is not set"),
        "{stderr}"
    );
}
