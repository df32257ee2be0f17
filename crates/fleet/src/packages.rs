//! [`PackageStore`] in a JetStream object store (`PREFIX-packages`, R3): a package
//! uploaded to one node is fetched by every other, chunked by the object store (a
//! 128 MiB package is 1,024 chunks of 128 KiB), named by its SHA-256 so the same
//! bytes are stored once. Every read is checked against the name: a damaged object is
//! refused, never served. The read path assumes the server is reachable, so each call
//! has a deadline: a node never hangs on it.

use std::time::Duration;

use async_nats::jetstream::{self, object_store};
use async_trait::async_trait;
use base64::Engine;
use sha2::Digest;
use verge_control::{PackageStore, PackageStoreError, is_sha256, sha256_hex};

/// The longest a package transfer may take before it counts as unavailable.
const DEADLINE: Duration = Duration::from_secs(120);

/// A fleet's packages in a JetStream object store.
pub struct ObjectPackages {
    store: object_store::ObjectStore,
    /// The object store's stream, read with consumers of this crate's own
    /// (`objects::read`).
    stream: jetstream::stream::Stream,
    client: async_nats::Client,
}

impl std::fmt::Debug for ObjectPackages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectPackages").finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> PackageStoreError {
    PackageStoreError::Unavailable(e.to_string())
}

impl ObjectPackages {
    /// Creates the bucket (once per fleet) and opens it.
    pub async fn create(
        js: &jetstream::Context,
        bucket: &str,
        replicas: usize,
    ) -> Result<Self, PackageStoreError> {
        let store = js
            .create_object_store(object_store::Config {
                bucket: bucket.to_owned(),
                description: Some("Verge packages, by SHA-256".into()),
                num_replicas: replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Self::with_stream(js, bucket, store).await
    }

    /// The packages in `store`, read through its stream (`objects::read`).
    async fn with_stream(
        js: &jetstream::Context,
        bucket: &str,
        store: object_store::ObjectStore,
    ) -> Result<Self, PackageStoreError> {
        let stream = js
            .get_stream(format!("OBJ_{bucket}"))
            .await
            .map_err(unavailable)?;
        Ok(ObjectPackages {
            store,
            stream,
            client: js.client(),
        })
    }

    /// Opens the bucket a fleet made.
    pub async fn open(js: &jetstream::Context, bucket: &str) -> Result<Self, PackageStoreError> {
        let store = js.get_object_store(bucket).await.map_err(|e| {
            PackageStoreError::Unavailable(format!(
                "no package bucket `{bucket}` in this NATS system ({e}); \
                 start one node with --cluster-init to create the fleet's state"
            ))
        })?;
        Self::with_stream(js, bucket, store).await
    }
}

impl ObjectPackages {
    /// Compiled code beside the packages, signed and checked with `key`.
    pub fn shared_code(&self, key: crate::CodeKey) -> crate::SharedCode {
        crate::SharedCode::new(
            self.client.clone(),
            self.store.clone(),
            self.stream.clone(),
            key,
        )
    }
}

#[async_trait]
impl PackageStore for ObjectPackages {
    async fn put(&self, sha256: &str, bytes: Vec<u8>) -> Result<(), PackageStoreError> {
        let hash: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        let found: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        if found != sha256 {
            return Err(PackageStoreError::Mismatch {
                expected: sha256.to_owned(),
                found,
            });
        }
        // The same bytes are stored once: the object store keeps the SHA-256 of what
        // it holds, so a damaged object under this name is replaced, not kept.
        let digest = format!(
            "SHA-256={}",
            base64::engine::general_purpose::URL_SAFE.encode(hash)
        );
        if let Ok(info) = self.store.info(sha256).await
            && !info.deleted
            && info.size as u64 == bytes.len() as u64
            && info.digest.as_deref() == Some(digest.as_str())
        {
            return Ok(());
        }
        let mut reader = &bytes[..];
        tokio::time::timeout(DEADLINE, self.store.put(sha256, &mut reader))
            .await
            .map_err(|_| unavailable(format!("storing package {sha256} took over {DEADLINE:?}")))?
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, sha256: &str) -> Result<Vec<u8>, PackageStoreError> {
        if !is_sha256(sha256) {
            return Err(PackageStoreError::Missing(sha256.to_owned()));
        }
        let read = crate::objects::read(&self.client, &self.store, &self.stream, sha256);
        let bytes = tokio::time::timeout(DEADLINE, read)
            .await
            .map_err(|_| unavailable(format!("fetching package {sha256} took over {DEADLINE:?}")))?
            .map_err(unavailable)?
            .ok_or_else(|| PackageStoreError::Missing(sha256.to_owned()))?;
        let found = sha256_hex(&bytes);
        if found != sha256 {
            return Err(PackageStoreError::Mismatch {
                expected: sha256.to_owned(),
                found,
            });
        }
        Ok(bytes)
    }
}
