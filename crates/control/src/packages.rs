//! Package bytes on disk, named by their SHA-256.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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
}

/// Package files in a directory, `SHA256.vpkg`. A file appears only once complete
/// and verified (written beside, synced, renamed), so a crash or a cut upload leaves
/// nothing behind under a package's name.
#[derive(Debug, Clone)]
pub struct PackageStore {
    dir: PathBuf,
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl PackageStore {
    pub fn open(dir: &Path) -> Result<PackageStore, PackageStoreError> {
        std::fs::create_dir_all(dir).map_err(|source| PackageStoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(PackageStore {
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

    /// The bytes of the package with this SHA-256.
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
