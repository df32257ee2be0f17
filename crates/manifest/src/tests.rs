use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Manifest, String> {
    Manifest::parse(text, Path::new("verge.toml")).map_err(|e| e.to_string())
}

#[test]
fn full_manifest_parses() {
    let m = parse(
        r#"
manifest_version = 1
name = "hello-world"
[build]
path = "app"
[limits]
memory = "64MiB"
cpu_time = "20ms"
wall_time = "5s"
max_request_body = 1048576
[env]
GREETING = "hi"
"#,
    )
    .unwrap();
    assert_eq!(m.name.as_str(), "hello-world");
    assert_eq!(m.limits.memory, Some(ByteSize(64 << 20)));
    assert_eq!(
        m.limits.cpu_time,
        Some(DurationValue(Duration::from_millis(20)))
    );
    assert_eq!(
        m.limits.wall_time,
        Some(DurationValue(Duration::from_secs(5)))
    );
    assert_eq!(m.limits.max_request_body, Some(ByteSize(1 << 20)));
    assert_eq!(m.env_pairs(), vec![("GREETING".into(), "hi".into())]);
    assert_eq!(m.output(), Path::new("hello-world.wasm"));
    assert_eq!(m.package_dir(), Path::new("app"));
}

#[test]
fn minimal_manifest_takes_defaults() {
    let m = parse("manifest_version = 1\nname = \"a\"\n").unwrap();
    assert_eq!(m.limits, LimitsSection::default());
    assert!(m.env.is_empty());
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let err =
        parse("manifest_version = 1\nname = \"a\"\n[limits]\nmemroy = \"1MiB\"\n").unwrap_err();
    assert!(err.contains("unknown field `memroy`"), "{err}");
    assert!(err.contains("line 4"), "{err}");
}

#[test]
fn unknown_top_level_key_is_rejected() {
    let err = parse("manifest_version = 1\nname = \"a\"\nbogus = true\n").unwrap_err();
    assert!(
        err.contains("unknown field `bogus`") && err.contains("line 3"),
        "{err}"
    );
}

#[test]
fn wrong_schema_version_is_rejected() {
    let err = parse("manifest_version = 2\nname = \"a\"\n").unwrap_err();
    assert!(err.contains("unsupported manifest_version 2"), "{err}");
}

#[test]
fn missing_version_is_rejected() {
    let err = parse("name = \"a\"\n").unwrap_err();
    assert!(err.contains("manifest_version"), "{err}");
}

#[test]
fn bad_units_are_explained() {
    let err = parse("manifest_version = 1\nname = \"a\"\n[limits]\nmemory = \"12 parsecs\"\n")
        .unwrap_err();
    assert!(
        err.contains("invalid size unit `parsecs`") && err.contains("line 4"),
        "{err}"
    );
    let err =
        parse("manifest_version = 1\nname = \"a\"\n[limits]\ncpu_time = \"50\"\n").unwrap_err();
    assert!(err.contains("needs a unit"), "{err}");
    let err =
        parse("manifest_version = 1\nname = \"a\"\n[limits]\nwall_time = \"0s\"\n").unwrap_err();
    assert!(err.contains("greater than zero"), "{err}");
}

#[test]
fn bad_names_are_rejected() {
    for bad in ["", "Hello", "1abc", "a_b", &"a".repeat(64)] {
        let err = parse(&format!("manifest_version = 1\nname = \"{bad}\"\n")).unwrap_err();
        assert!(err.contains("invalid app name"), "{bad}: {err}");
    }
    let err = parse("manifest_version = 1\nname = \"a\"\n[env]\n\"A=B\" = \"x\"\n").unwrap_err();
    assert!(err.contains("invalid environment variable name"), "{err}");
}

#[test]
fn sizes_parse() {
    assert_eq!(ByteSize::parse("1KiB"), Ok(ByteSize(1024)));
    assert_eq!(ByteSize::parse("2GB"), Ok(ByteSize(2_000_000_000)));
    assert_eq!(ByteSize::parse("17"), Ok(ByteSize(17)));
    assert!(ByteSize::parse("MiB").is_err());
    assert!(ByteSize::parse("99999999999999999999GiB").is_err());
}

#[test]
fn log_levels_parse_and_an_unknown_one_is_named() {
    let m = parse("manifest_version = 1\nname = \"a\"\n[logging]\nlevel = \"warn\"\n").unwrap();
    assert_eq!(m.logging.level, Some(LogLevel::Warn));
    let err =
        parse("manifest_version = 1\nname = \"a\"\n[logging]\nlevel = \"loud\"\n").unwrap_err();
    assert!(err.contains("loud") && err.contains("critical"), "{err}");
}

#[test]
fn http_cache_is_off_unless_enabled() {
    let m = parse("manifest_version = 1\nname = \"a\"\n").unwrap();
    assert!(!m.http_cache.enabled);
    let m = parse(
        "manifest_version = 1\nname = \"a\"\n[http_cache]\nenabled = true\ndefault_ttl = \"5m\"\ndebug_headers = true\n",
    )
    .unwrap();
    assert!(m.http_cache.enabled && m.http_cache.debug_headers);
    assert_eq!(
        m.http_cache.default_ttl,
        Some(DurationValue(Duration::from_secs(300)))
    );
    let err =
        parse("manifest_version = 1\nname = \"a\"\n[http_cache]\nttl = \"5m\"\n").unwrap_err();
    assert!(err.contains("unknown field `ttl`"), "{err}");
}
