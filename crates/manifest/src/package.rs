//! The package: what is deployed. One file (tar, zstd-compressed) holding the
//! component, the app's normalised manifest, and a SHA-256 over both.
//!
//! [`PackageManifest`] is not the user's `verge.toml` ([`Manifest`]): files it names
//! are read in (the config file's values, a backend's CA certificates; `verge pack`
//! adds the KV seed files' items), what only makes sense on the developer's machine
//! is left out (secret files, log files: a node keeps its own), and the format is
//! versioned. Only packages travel.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::net::{BackendName, BackendUrl, DomainPattern};
use crate::units::{ByteSize, DurationValue};
use crate::{
    AppName, EgressSection, EnvName, GeoRecord, HttpCacheSection, IpNetKey, LimitsSection,
    LogLevel, Manifest, ManifestError, StoreName, ValuesError,
};

/// The package format this Verge writes and reads.
pub const PACKAGE_FORMAT: u32 = 1;

const MANIFEST_ENTRY: &str = "verge-package.json";
const COMPONENT_ENTRY: &str = "component.wasm";
const DIGEST_ENTRY: &str = "package.sha256";
/// Largest normalised manifest read (seed items included).
pub const MAX_MANIFEST: u64 = 4 << 20;

/// An app's settings as deployed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageManifest {
    pub format: u32,
    pub name: AppName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub env: BTreeMap<EnvName, String>,
    #[serde(default)]
    pub backends: BTreeMap<BackendName, PackagedBackend>,
    #[serde(default)]
    pub egress: EgressSection,
    #[serde(default)]
    pub geo_overrides: BTreeMap<IpNetKey, GeoRecord>,
    #[serde(default)]
    pub kv_stores: BTreeMap<StoreName, PackagedKvStore>,
    /// `wasi:config` values: `[config]` over the config file's.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret stores with the environment variables their secrets come from on the
    /// node. A package never carries secret values.
    #[serde(default)]
    pub secret_stores: BTreeMap<StoreName, PackagedSecretStore>,
    #[serde(default)]
    pub log_level: LogLevel,
    /// Log endpoints (on a node, their lines go to the node's log stream).
    #[serde(default)]
    pub log_endpoints: Vec<StoreName>,
    #[serde(default)]
    pub http_cache: HttpCacheSection,
    #[serde(default)]
    pub domains: Vec<DomainPattern>,
}

/// A backend as deployed: its CA certificates travel as PEM text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagedBackend {
    pub url: BackendUrl,
    #[serde(default)]
    pub override_host: Option<String>,
    #[serde(default)]
    pub connect_timeout: Option<DurationValue>,
    #[serde(default)]
    pub first_byte_timeout: Option<DurationValue>,
    #[serde(default)]
    pub between_bytes_timeout: Option<DurationValue>,
    #[serde(default)]
    pub max_connections: Option<u32>,
    #[serde(default)]
    pub tls_verify: Option<bool>,
    /// Extra CA certificates to trust, PEM.
    #[serde(default)]
    pub ca_pem: Option<String>,
    #[serde(default)]
    pub allow_private: bool,
    #[serde(default)]
    pub cache: Option<bool>,
}

/// A KV store as deployed: its limits, and the items of its seed file, which the
/// node that takes the upload adds to the store where it lacks them (once per fleet).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagedKvStore {
    #[serde(default)]
    pub max_key_size: Option<ByteSize>,
    #[serde(default)]
    pub max_value_size: Option<ByteSize>,
    #[serde(default)]
    pub max_metadata_size: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seed: Vec<PackagedSeedItem>,
}

/// One item of a store's seed, as `verge pack` read it from the seed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagedSeedItem {
    pub key: String,
    /// The value's bytes, base64 (standard alphabet, padded).
    pub value_base64: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// A secret store as deployed: secret name → the node's environment variable.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagedSecretStore {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl PackageManifest {
    /// Normalises a user manifest: reads the files it names, drops what is local.
    pub fn from_manifest(manifest: &Manifest) -> Result<PackageManifest, ManifestError> {
        let values_error = |e: ValuesError| ManifestError::Invalid {
            path: manifest.dir.join(crate::MANIFEST_FILE),
            message: e.to_string(),
        };
        let mut backends = BTreeMap::new();
        for (name, b) in &manifest.backends {
            let ca_pem = match &b.ca_file {
                None => None,
                Some(file) => {
                    let path = manifest.dir.join(file);
                    Some(
                        std::fs::read_to_string(&path)
                            .map_err(|source| ManifestError::Read { path, source })?,
                    )
                }
            };
            backends.insert(
                name.clone(),
                PackagedBackend {
                    url: b.url.clone(),
                    override_host: b.override_host.clone(),
                    connect_timeout: b.connect_timeout,
                    first_byte_timeout: b.first_byte_timeout,
                    between_bytes_timeout: b.between_bytes_timeout,
                    max_connections: b.max_connections,
                    tls_verify: b.tls_verify,
                    ca_pem,
                    allow_private: b.allow_private,
                    cache: b.cache,
                },
            );
        }
        Ok(PackageManifest {
            format: PACKAGE_FORMAT,
            name: manifest.name.clone(),
            description: manifest.description.clone(),
            limits: manifest.limits.clone(),
            env: manifest.env.clone(),
            backends,
            egress: manifest.egress.clone(),
            geo_overrides: manifest.geo.overrides.clone(),
            kv_stores: manifest
                .kv_stores
                .iter()
                .map(|(name, s)| {
                    let store = PackagedKvStore {
                        max_key_size: s.max_key_size,
                        max_value_size: s.max_value_size,
                        max_metadata_size: s.max_metadata_size,
                        seed: Vec::new(),
                    };
                    (name.clone(), store)
                })
                .collect(),
            config: manifest.config_values().map_err(values_error)?,
            secret_stores: manifest
                .secret_stores
                .iter()
                .map(|(name, s)| {
                    let store = PackagedSecretStore { env: s.env.clone() };
                    (name.clone(), store)
                })
                .collect(),
            log_level: manifest.logging.level.unwrap_or_default(),
            log_endpoints: manifest.log_endpoints.keys().cloned().collect(),
            http_cache: manifest.http_cache.clone(),
            domains: manifest.domains.clone(),
        })
    }
}

/// Why a package could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("reading or writing the package failed")]
    Io(#[from] std::io::Error),
    #[error("this is not a Verge package (expected a zstd-compressed tar): {0}")]
    NotAPackage(String),
    #[error("the package has no {0}; it is truncated or was not made by `verge pack`")]
    Missing(&'static str),
    #[error("the package's {entry} is larger than the limit of {limit} bytes")]
    TooLarge { entry: &'static str, limit: u64 },
    #[error(
        "the package is corrupt or was changed: its checksum is {found}, but it says {expected}"
    )]
    Corrupt { expected: String, found: String },
    #[error("the package's manifest is invalid: {0}")]
    Manifest(String),
    #[error(
        "the package has format {found}, and this Verge reads format {PACKAGE_FORMAT}; \
         use a Verge release that matches the one that made it"
    )]
    Format { found: u32 },
}

/// A package: the normalised manifest and the component.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub manifest: PackageManifest,
    pub component: Vec<u8>,
}

/// SHA-256 over a manifest's JSON and a component, framed so that no other split of
/// the same bytes has the same digest.
fn digest(manifest_json: &[u8], component: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((manifest_json.len() as u64).to_be_bytes());
    hash.update(manifest_json);
    hash.update(component);
    hash.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Package {
    /// The package's SHA-256, as hex: what identifies a version.
    pub fn sha256(&self) -> String {
        hex(&digest(&self.manifest_json(), &self.component))
    }

    /// The manifest as stored: pretty JSON, fields and maps in a fixed order.
    fn manifest_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.manifest).expect("a manifest serialises")
    }

    /// Writes the package; returns its SHA-256 (hex). Entries have fixed times and
    /// modes, so the same app packs to the same bytes.
    pub fn write_to(&self, out: impl Write) -> Result<String, PackageError> {
        Package::write_raw(&self.manifest_json(), &self.component, out)
    }

    /// Writes a package from a manifest as raw JSON, unchecked: for tests of what
    /// readers do with a manifest that does not validate.
    #[doc(hidden)]
    pub fn write_raw(
        json: &[u8],
        component: &[u8],
        out: impl Write,
    ) -> Result<String, PackageError> {
        let sha256 = hex(&digest(json, component));
        let encoder = zstd::Encoder::new(out, 10)?;
        let mut tar = tar::Builder::new(encoder);
        for (name, bytes) in [
            (MANIFEST_ENTRY, json),
            (COMPONENT_ENTRY, component),
            (DIGEST_ENTRY, sha256.as_bytes()),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes)?;
        }
        tar.into_inner()?.finish()?.flush()?;
        Ok(sha256)
    }

    /// Reads and verifies a package whose component is at most `max_component`
    /// bytes. Any damage (truncation, a changed byte, a missing entry) is an error.
    pub fn read_from(input: impl Read, max_component: u64) -> Result<Package, PackageError> {
        let decoder =
            zstd::Decoder::new(input).map_err(|e| PackageError::NotAPackage(e.to_string()))?;
        let mut archive = tar::Archive::new(decoder);
        let (mut json, mut component, mut expected) = (None, None, None);
        let entries = archive
            .entries()
            .map_err(|e| PackageError::NotAPackage(e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| PackageError::NotAPackage(e.to_string()))?;
            let path: PathBuf = entry
                .path()
                .map_err(|e| PackageError::NotAPackage(e.to_string()))?
                .into_owned();
            let (slot, name, limit) = match path.to_str() {
                Some(MANIFEST_ENTRY) => (&mut json, MANIFEST_ENTRY, MAX_MANIFEST),
                Some(COMPONENT_ENTRY) => (&mut component, COMPONENT_ENTRY, max_component),
                Some(DIGEST_ENTRY) => (&mut expected, DIGEST_ENTRY, 64),
                _ => continue,
            };
            let mut bytes = Vec::new();
            entry
                .take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| PackageError::NotAPackage(e.to_string()))?;
            if bytes.len() as u64 > limit {
                return Err(PackageError::TooLarge { entry: name, limit });
            }
            *slot = Some(bytes);
        }
        let json = json.ok_or(PackageError::Missing(MANIFEST_ENTRY))?;
        let component = component.ok_or(PackageError::Missing(COMPONENT_ENTRY))?;
        let expected = expected.ok_or(PackageError::Missing(DIGEST_ENTRY))?;
        let expected = String::from_utf8_lossy(&expected).trim().to_owned();
        let found = hex(&digest(&json, &component));
        if found != expected {
            return Err(PackageError::Corrupt { expected, found });
        }
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let format: Format =
            serde_json::from_slice(&json).map_err(|e| PackageError::Manifest(e.to_string()))?;
        if format.format != PACKAGE_FORMAT {
            return Err(PackageError::Format {
                found: format.format,
            });
        }
        let manifest =
            serde_json::from_slice(&json).map_err(|e| PackageError::Manifest(e.to_string()))?;
        Ok(Package {
            manifest,
            component,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> PackageManifest {
        // A directory per call: tests run at once, and one writing the files while
        // another reads them read half a file.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("verge-pkg-{}-{call}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            r#"{"from_file": "1", "both": "file"}"#,
        )
        .unwrap();
        std::fs::write(dir.join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let text = r#"
manifest_version = 1
name = "shop"
config_file = "config.json"
domains = ["shop.example.com", "*.Shop.Example.com"]
[limits]
memory = "64MiB"
cpu_time = "20ms"
[backends.origin]
url = "https://origin.example.com/api"
ca_file = "ca.pem"
first_byte_timeout = "2s"
[config]
both = "toml"
[kv_stores.carts]
file = "seed.json"
max_value_size = "1MiB"
[secret_stores.keys]
file = "secrets.json"
env = { hmac = "SHOP_HMAC" }
[log_endpoints.audit]
file = "audit.log"
[http_cache]
enabled = true
default_ttl = "60s"
"#;
        let mut m = Manifest::parse(text, &dir.join("verge.toml")).unwrap();
        m.dir = dir;
        PackageManifest::from_manifest(&m).unwrap()
    }

    fn package() -> Package {
        Package {
            manifest: manifest(),
            component: b"\0asm not really a component".to_vec(),
        }
    }

    /// A package file with these entries, as `verge pack` lays them out.
    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *bytes).unwrap();
        }
        zstd::encode_all(&tar.into_inner().unwrap()[..], 3).unwrap()
    }

    #[test]
    fn files_are_read_in_and_local_things_left_out() {
        let m = manifest();
        assert_eq!(m.config["from_file"], "1");
        assert_eq!(m.config["both"], "toml", "[config] wins over the file");
        assert!(
            m.backends[&BackendName::new("origin").unwrap()]
                .ca_pem
                .as_deref()
                .unwrap()
                .starts_with("-----BEGIN")
        );
        assert_eq!(
            m.secret_stores[&StoreName::new("keys").unwrap()].env["hmac"],
            "SHOP_HMAC"
        );
        assert_eq!(m.log_endpoints, vec![StoreName::new("audit").unwrap()]);
        let domains: Vec<&str> = m.domains.iter().map(DomainPattern::as_str).collect();
        assert_eq!(domains, ["shop.example.com", "*.shop.example.com"]);
        let json = serde_json::to_string(&m).unwrap();
        for local in [
            "seed.json",
            "secrets.json",
            "audit.log",
            "ca.pem",
            "config.json",
        ] {
            assert!(!json.contains(local), "{local} in {json}");
        }
    }

    #[test]
    fn a_package_round_trips_and_packs_to_the_same_bytes() {
        let package = package();
        let mut first = Vec::new();
        let sha = package.write_to(&mut first).unwrap();
        assert_eq!(sha, package.sha256());
        let mut second = Vec::new();
        package.write_to(&mut second).unwrap();
        assert_eq!(first, second, "reproducible");
        let read = Package::read_from(&first[..], 1 << 20).unwrap();
        assert_eq!(read, package);
    }

    #[test]
    fn seed_items_travel_in_the_package_and_are_left_out_when_there_are_none() {
        let mut package = package();
        let store = package
            .manifest
            .kv_stores
            .values_mut()
            .next()
            .expect("a store");
        let without = serde_json::to_string(&*store).unwrap();
        assert!(!without.contains("seed"), "{without}");
        store.seed = vec![PackagedSeedItem {
            key: "home".into(),
            value_base64: "aHR0cHM6Ly9leGFtcGxlLmNvbS8=".into(),
            metadata: Some("{\"by\":\"seed\"}".into()),
        }];
        let mut bytes = Vec::new();
        package.write_to(&mut bytes).unwrap();
        let read = Package::read_from(&bytes[..], 1 << 20).unwrap();
        assert_eq!(read, package);
    }

    #[test]
    fn damage_is_refused_with_the_reason() {
        let package = package();
        let mut bytes = Vec::new();
        package.write_to(&mut bytes).unwrap();

        let truncated = &bytes[..bytes.len() / 2];
        let err = Package::read_from(truncated, 1 << 20).unwrap_err();
        assert!(
            matches!(err, PackageError::NotAPackage(_) | PackageError::Missing(_)),
            "{err}"
        );

        let err = Package::read_from(&b"PK\x03\x04 a zip"[..], 1 << 20).unwrap_err();
        assert!(err.to_string().contains("not a Verge package"), "{err}");

        let json = package.manifest_json();
        let digest = package.sha256();
        let changed = archive(&[
            (MANIFEST_ENTRY, &json),
            (COMPONENT_ENTRY, b"\0asm a different component"),
            (DIGEST_ENTRY, digest.as_bytes()),
        ]);
        let err = Package::read_from(&changed[..], 1 << 20).unwrap_err();
        assert!(err.to_string().contains("corrupt or was changed"), "{err}");

        let missing = archive(&[(MANIFEST_ENTRY, &json), (DIGEST_ENTRY, digest.as_bytes())]);
        let err = Package::read_from(&missing[..], 1 << 20).unwrap_err();
        assert!(err.to_string().contains("component.wasm"), "{err}");

        let err = Package::read_from(&bytes[..], 8).unwrap_err();
        assert!(
            matches!(
                err,
                PackageError::TooLarge {
                    entry: COMPONENT_ENTRY,
                    limit: 8
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_newer_format_is_named() {
        let mut newer = serde_json::to_value(package().manifest).unwrap();
        newer["format"] = 2.into();
        let json = serde_json::to_vec(&newer).unwrap();
        let component = b"\0asm";
        let sha = hex(&digest(&json, component));
        let bytes = archive(&[
            (MANIFEST_ENTRY, &json),
            (COMPONENT_ENTRY, component),
            (DIGEST_ENTRY, sha.as_bytes()),
        ]);
        let err = Package::read_from(&bytes[..], 1 << 20).unwrap_err();
        assert!(err.to_string().contains("format 2"), "{err}");
    }

    #[test]
    fn domains_match_exactly_or_below_a_wildcard() {
        let exact = DomainPattern::parse("Example.com.").unwrap();
        assert!(exact.matches("example.com"));
        assert!(!exact.matches("www.example.com"));
        let wild = DomainPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("www.example.com"));
        assert!(wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
        for bad in ["", "exa mple.com", "*.", "-a.com", "a..com", "*.*.com"] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
