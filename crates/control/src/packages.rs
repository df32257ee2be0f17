//! Package bytes, named by their SHA-256: the [`PackageStore`] trait (a fleet's shared
//! store, or a node's own disk), and [`DiskPackages`], the verified copy every node
//! keeps on disk and loads from.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// Why a package could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum PackageStoreError {
    #[error("the package store at {path} failed")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload's SHA-256 is {found}, not the {expected} it was sent with")]
    Mismatch { expected: String, found: String },
    #[error("no package with SHA-256 {0}")]
    Missing(String),
    /// The store cannot be reached now (in a fleet: NATS is cut off).
    #[error("the package store is unavailable: {0}")]
    Unavailable(String),
}

/// Where packages are kept by their SHA-256: a node's disk, or a fleet's object store
/// every node fetches from.
#[async_trait]
pub trait PackageStore: Send + Sync + 'static {
    /// Stores `bytes` under `sha256`, refusing bytes whose SHA-256 is another
    /// ([`PackageStoreError::Mismatch`]); storing the same bytes again is fine.
    async fn put(&self, sha256: &str, bytes: Vec<u8>) -> Result<(), PackageStoreError>;
    /// The package's bytes, checked against `sha256`: a damaged copy is refused
    /// ([`PackageStoreError::Mismatch`]), never handed out.
    async fn get(&self, sha256: &str) -> Result<Vec<u8>, PackageStoreError>;
}

/// The SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Package files in a directory, `SHA256.vpkg`. A file appears only once complete
/// and verified (written beside, synced, renamed), so a crash or a cut upload leaves
/// nothing behind under a package's name.
#[derive(Debug, Clone)]
pub struct DiskPackages {
    dir: PathBuf,
}

/// Whether `text` is a SHA-256 as packages are named: 64 lowercase hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl DiskPackages {
    pub fn open(dir: &Path) -> Result<DiskPackages, PackageStoreError> {
        std::fs::create_dir_all(dir).map_err(|source| PackageStoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(DiskPackages {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.vpkg"))
    }

    /// Streams `input` (at most `limit` bytes) to disk while hashing it; stores it
    /// under its SHA-256, which must equal `expected` when given. Returns the SHA-256
    /// and the size.
    pub fn put(
        &self,
        mut input: impl Read,
        limit: u64,
        expected: Option<&str>,
    ) -> Result<(String, u64), PackageStoreError> {
        let io = |source| PackageStoreError::Io {
            path: self.dir.clone(),
            source,
        };
        // Removed if dropped before it is persisted under the package's name.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = input.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > limit {
                return Err(PackageStoreError::TooLarge { limit });
            }
            hash.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io)?;
        }
        let found: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if let Some(expected) = expected
            && expected != found
        {
            return Err(PackageStoreError::Mismatch {
                expected: expected.to_owned(),
                found,
            });
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(self.path(&found)).map_err(|e| io(e.error))?;
        Ok((found, size))
    }

    /// Whether the package with this SHA-256 is here.
    pub fn contains(&self, sha256: &str) -> bool {
        is_sha256(sha256) && self.path(sha256).is_file()
    }

    /// The bytes of the package with this SHA-256 (verified when written).
    pub fn get(&self, sha256: &str) -> Result<Vec<u8>, PackageStoreError> {
        if !is_sha256(sha256) {
            return Err(PackageStoreError::Missing(sha256.to_owned()));
        }
        match std::fs::read(self.path(sha256)) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(PackageStoreError::Missing(sha256.to_owned()))
            }
            Err(source) => Err(PackageStoreError::Io {
                path: self.path(sha256),
                source,
            }),
        }
    }
}

#[async_trait]
impl PackageStore for DiskPackages {
    async fn put(&self, sha256: &str, bytes: Vec<u8>) -> Result<(), PackageStoreError> {
        let store = self.clone();
        let sha256 = sha256.to_owned();
        tokio::task::spawn_blocking(move || {
            store.put(&bytes[..], u64::MAX, Some(&sha256)).map(|_| ())
        })
        .await
        .map_err(|e| PackageStoreError::Unavailable(e.to_string()))?
    }

    async fn get(&self, sha256: &str) -> Result<Vec<u8>, PackageStoreError> {
        let store = self.clone();
        let sha256 = sha256.to_owned();
        tokio::task::spawn_blocking(move || DiskPackages::get(&store, &sha256))
            .await
            .map_err(|e| PackageStoreError::Unavailable(e.to_string()))?
    }
}
