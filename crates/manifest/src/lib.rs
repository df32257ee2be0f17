//! `verge.toml`: the manifest a developer writes next to their app.
//!
//! The schema is versioned (`manifest_version = 1`); unknown keys are rejected with the
//! key, line and column. Sizes are written `"128MiB"`, durations `"50ms"` or `"60s"`.
//!
//! ```toml
//! manifest_version = 1
//! name = "hello"
//!
//! [build]
//! # Directory of the Cargo package, relative to this file.
//! path = "."
//!
//! [limits]
//! memory = "128MiB"
//! cpu_time = "50ms"
//! wall_time = "60s"
//! max_request_body = "100MiB"
//!
//! [env]
//! GREETING = "hello"
//!
//! [kv_stores.links]
//! file = "links.json"
//!
//! [config]
//! split = 50
//!
//! [secret_stores.keys]
//! env = { hmac = "JWT_HMAC_KEY" }
//! ```

mod net;
mod package;
mod units;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use net::{BackendName, BackendUrl, DomainPattern, Host, HostPattern, UrlScheme};
pub use package::{
    MAX_MANIFEST, PACKAGE_FORMAT, Package, PackageError, PackageManifest, PackagedBackend,
    PackagedKvStore, PackagedSecretStore, PackagedSeedItem,
};
pub use units::{ByteSize, DurationValue};
pub use values::{ConfigKey, ConfigValue, SecretStoreSection, ValuesError};

/// The manifest file name.
pub const MANIFEST_FILE: &str = "verge.toml";

/// The schema version this release reads.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "no {MANIFEST_FILE} in {dir}; create an app with `verge init NAME`, or pass a \
         .wasm file to serve it directly"
    )]
    NotFound { dir: PathBuf },
    #[error("could not read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}:\n{message}")]
    Invalid { path: PathBuf, message: String },
}

/// A parsed and validated `verge.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: SchemaVersion,
    pub name: AppName,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub build: BuildSection,
    #[serde(default)]
    pub limits: LimitsSection,
    /// Environment variables the guest sees; it sees no others.
    #[serde(default)]
    pub env: BTreeMap<EnvName, String>,
    /// Named origins: a guest request to `http://NAME/...` goes to backend NAME.
    #[serde(default)]
    pub backends: BTreeMap<BackendName, BackendSection>,
    /// Which other hosts a guest may reach by URL.
    #[serde(default)]
    pub egress: EgressSection,
    /// Geolocation settings of the app.
    #[serde(default)]
    pub geo: GeoSection,
    /// KV stores the app may open: `[kv_stores.links]`.
    #[serde(default)]
    pub kv_stores: BTreeMap<StoreName, KvStoreSection>,
    /// Values the guest reads through `wasi:config` (over `config_file`'s).
    #[serde(default)]
    pub config: BTreeMap<ConfigKey, ConfigValue>,
    /// A JSON object of config values, relative to the manifest.
    #[serde(default)]
    pub config_file: Option<PathBuf>,
    /// Secret stores the app may open: `[secret_stores.keys]`.
    #[serde(default)]
    pub secret_stores: BTreeMap<StoreName, SecretStoreSection>,
    /// `wasi:logging` settings.
    #[serde(default)]
    pub logging: LoggingSection,
    /// Named log endpoints: `[log_endpoints.audit]`.
    #[serde(default)]
    pub log_endpoints: BTreeMap<StoreName, LogEndpointSection>,
    /// The HTTP cache in front of the app: `[http_cache]`.
    #[serde(default)]
    pub http_cache: HttpCacheSection,
    /// Host names a node routes to the app: `example.com`, or `*.example.com` for its
    /// subdomains. Write the key at the top of the file, before any table.
    #[serde(default)]
    pub domains: Vec<DomainPattern>,
    /// The directory relative paths (`ca_file`) are resolved against: the manifest's.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// One named backend.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// `https://host[:port][/path-prefix]`
    pub url: BackendUrl,
    /// The `Host` header (and TLS server name) sent instead of the url's host.
    pub override_host: Option<String>,
    /// Default 1s.
    pub connect_timeout: Option<DurationValue>,
    /// Time from sending the request to the response head. Default 15s.
    pub first_byte_timeout: Option<DurationValue>,
    /// Longest pause inside the response body. Default 10s.
    pub between_bytes_timeout: Option<DurationValue>,
    /// Requests in flight to this backend at once. Default 100.
    pub max_connections: Option<u32>,
    /// Verify the origin's TLS certificate. Default true.
    pub tls_verify: Option<bool>,
    /// PEM file of extra CA certificates to trust, relative to the manifest.
    pub ca_file: Option<PathBuf>,
    /// Allow loopback, private and link-local addresses. Default false.
    #[serde(default)]
    pub allow_private: bool,
    /// Cache this backend's responses by their caching headers (GET only). Default
    /// true; a guest can still override per request (`Verge-Cache-Override`).
    #[serde(default)]
    pub cache: Option<bool>,
}

/// One KV store: `[kv_stores.NAME]`. Every setting is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvStoreSection {
    /// A JSON file, relative to the manifest, that seeds the store for development:
    /// `verge serve` adds each key it holds that the store lacks.
    pub file: Option<PathBuf>,
    /// Longest key. Default 1KiB.
    pub max_key_size: Option<ByteSize>,
    /// Largest value. Default 25MiB.
    pub max_value_size: Option<ByteSize>,
    /// Largest metadata. Default 2KiB.
    pub max_metadata_size: Option<ByteSize>,
}

/// `[http_cache]`: cache the app's GET responses at the edge, so a hit is answered
/// without running the guest. Freshness comes from the responses' `Cache-Control`,
/// `Surrogate-Control` and `Expires` headers.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCacheSection {
    /// Turn the cache on. Default off.
    #[serde(default)]
    pub enabled: bool,
    /// Freshness for cacheable responses that carry no caching headers. Default: none
    /// (such responses are not stored, unless `Last-Modified` allows a heuristic).
    pub default_ttl: Option<DurationValue>,
    /// Store responses that set cookies (every client then gets the same cookie).
    #[serde(default)]
    pub share_set_cookie: bool,
    /// Add `X-Cache: HIT|MISS|STALE|PASS|REVALIDATED` to responses.
    #[serde(default)]
    pub debug_headers: bool,
}

/// `[logging]`
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSection {
    /// The lowest `wasi:logging` level kept. Default `info`.
    #[serde(default)]
    pub level: Option<LogLevel>,
}

/// `wasi:logging` levels, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

/// One log endpoint: `[log_endpoints.NAME]`. Without `file`, its lines go to
/// Verge's own log stream.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEndpointSection {
    /// A JSON-lines file, relative to the manifest.
    pub file: Option<PathBuf>,
    /// Rotate when the file would grow past this. Default 10MiB.
    pub max_size: Option<ByteSize>,
    /// Rotated files kept (`F.1` newest). Default 5.
    pub keep: Option<u32>,
}

/// `[geo]`
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoSection {
    /// IP address or CIDR → what `verge:edge/geo` answers for it, over the node's
    /// database: `[geo.overrides."203.0.113.0/24"]`.
    #[serde(default)]
    pub overrides: BTreeMap<IpNetKey, GeoRecord>,
}

/// An IP address (a /32 or /128) or a CIDR network, as a table key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IpNetKey(pub ipnet::IpNet);

impl IpNetKey {
    pub fn parse(text: &str) -> Result<IpNetKey, String> {
        if let Ok(ip) = text.parse::<std::net::IpAddr>() {
            return Ok(IpNetKey(ip.into()));
        }
        let net: ipnet::IpNet = text
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR network"))?;
        Ok(IpNetKey(net.trunc()))
    }
}

impl Serialize for IpNetKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IpNetKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IpNetKey::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// What is known about where an IP address is; every field is optional. Written by
/// hand in `[geo.overrides]`, and what the runtime's geolocation answers.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRecord {
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub continent_code: Option<String>,
    pub region_code: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub time_zone: Option<String>,
    pub asn: Option<u32>,
    pub as_organization: Option<String>,
}

/// Requests to URLs (dynamic backends).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSection {
    /// `[scheme://]host[:port]` patterns: `api.example.com`, `*.example.com:*`.
    #[serde(default)]
    pub allow: Vec<HostPattern>,
    /// Allow loopback, private and link-local addresses. Default false.
    #[serde(default)]
    pub allow_private: bool,
}

/// How to build the app.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// The app's language. Default: `js` when the app directory has a
    /// `package.json` and no `Cargo.toml`, `python` when it has a
    /// `requirements.txt` and neither, else `rust`.
    #[serde(default)]
    pub language: Option<Language>,
    /// The handler's source file, relative to the manifest (JavaScript and Python).
    /// Default: `src/index.js`, `src/app.py`.
    #[serde(default)]
    pub entry: Option<PathBuf>,
    /// Directory of the Cargo package, relative to the manifest. Default: `.`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Where the component is written, relative to the manifest. Default: `NAME.wasm`.
    #[serde(default)]
    pub output: Option<PathBuf>,
}

/// What an app is written in, which decides how `verge build` builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// A Cargo package using the Verge SDK (or any wasi:http handler).
    Rust,
    /// A JavaScript module with a `fetch` event handler, built with componentize-js.
    Js,
    /// A Python module with an `IncomingHandler` class, built with componentize-py.
    Python,
}

/// Per-request limits; each one left out takes the platform default.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub memory: Option<ByteSize>,
    pub cpu_time: Option<DurationValue>,
    pub wall_time: Option<DurationValue>,
    pub max_request_body: Option<ByteSize>,
    pub max_outbound_requests: Option<u32>,
    /// Instances of the app that may run at once; past it, requests wait briefly, then
    /// get 503.
    pub max_concurrent: Option<u32>,
}

impl LimitsSection {
    /// These limits, with each one `over` sets taking its place.
    pub fn overlaid_with(&self, over: &LimitsSection) -> LimitsSection {
        LimitsSection {
            memory: over.memory.or(self.memory),
            cpu_time: over.cpu_time.or(self.cpu_time),
            wall_time: over.wall_time.or(self.wall_time),
            max_request_body: over.max_request_body.or(self.max_request_body),
            max_outbound_requests: over.max_outbound_requests.or(self.max_outbound_requests),
            max_concurrent: over.max_concurrent.or(self.max_concurrent),
        }
    }
}

impl Manifest {
    /// Reads a manifest file (any name; `verge serve app.wasm --manifest FILE`).
    pub fn load_file(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut manifest = Self::parse(&text, path)?;
        manifest.dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(manifest)
    }

    /// Reads `DIR/verge.toml`.
    pub fn load_dir(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Err(ManifestError::NotFound {
                dir: dir.to_owned(),
            });
        }
        Self::load_file(&path)
    }

    /// Parses manifest text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        toml::from_str(text).map_err(|e| ManifestError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The component's path, relative to the manifest's directory.
    pub fn output(&self) -> PathBuf {
        self.build
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", self.name.as_str())))
    }

    /// The app's language: `[build] language`, else what the files in `dir` (the
    /// manifest's directory) say.
    pub fn language(&self, dir: &std::path::Path) -> Language {
        self.build.language.unwrap_or_else(|| {
            let has = |file: &str| dir.join(file).exists();
            if has("Cargo.toml") {
                Language::Rust
            } else if has("package.json") {
                Language::Js
            } else if has("requirements.txt") {
                Language::Python
            } else {
                Language::Rust
            }
        })
    }

    /// The JavaScript or Python entry module, relative to the manifest's directory.
    pub fn entry(&self, language: Language) -> PathBuf {
        self.build.entry.clone().unwrap_or_else(|| {
            PathBuf::from(match language {
                Language::Python => "src/app.py",
                _ => "src/index.js",
            })
        })
    }

    /// The Cargo package directory, relative to the manifest's directory.
    pub fn package_dir(&self) -> PathBuf {
        self.build
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// Environment variables as pairs, in name order.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.0.clone(), v.clone()))
            .collect()
    }
}

/// `manifest_version`: only [`MANIFEST_VERSION`] is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion(pub u32);

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v != MANIFEST_VERSION {
            return Err(serde::de::Error::custom(format!(
                "unsupported manifest_version {v}; this verge reads version {MANIFEST_VERSION}"
            )));
        }
        Ok(SchemaVersion(v))
    }
}

/// An app name: 1–63 of `a-z`, `0-9` and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AppName(String);

impl AppName {
    pub fn new(name: &str) -> Result<AppName, String> {
        Self::named(name, "app")
    }

    /// [`AppName::new`], its error calling the name a `noun` name ("service").
    pub fn named(name: &str, noun: &str) -> Result<AppName, String> {
        let valid = (1..=63).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(AppName(name.to_owned()))
        } else {
            Err(format!(
                "invalid {noun} name `{name}`: use 1 to 63 lowercase letters, digits and `-`, \
                 starting with a letter"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for AppName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AppName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AppName::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The name of a store (KV, secrets, log endpoint): 1–63 of `a-z`, `0-9`, `-` and
/// `_`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreName(String);

impl StoreName {
    pub fn new(name: &str) -> Result<StoreName, String> {
        if net::is_identifier(name) {
            Ok(StoreName(name.to_owned()))
        } else {
            Err(format!(
                "invalid store name `{name}`: use 1 to 63 lowercase letters, digits, `-` and \
                 `_`, starting with a letter"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for StoreName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StoreName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StoreName::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An environment variable name: non-empty, no `=` and no NUL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvName(String);

impl EnvName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for EnvName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EnvName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(serde::de::Error::custom(format!(
                "invalid environment variable name `{name}`"
            )));
        }
        Ok(EnvName(name))
    }
}

#[cfg(test)]
mod tests;
