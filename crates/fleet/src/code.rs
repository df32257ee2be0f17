//! Compiled code shared across a fleet. The node that takes an upload compiles it
//! anyway (to refuse a component that does not load); with a fleet code key it also
//! stores that code beside the packages, and every node of the same Wasmtime build
//! and settings loads it instead of compiling the version again. A deploy then costs
//! the fleet one compile, not one per node.
//!
//! Compiled code runs natively, outside the sandbox's checks, so each object is
//! signed: HMAC-SHA256 under the fleet's code key over the code's name and bytes.
//! A NATS user without the key (a leaked node credential, a wrong permission) can
//! store objects, but no node loads them: a node then compiles the version itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::object_store::ObjectStore;
use async_nats::jetstream::stream::Stream;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The longest storing or fetching one component's code may take.
const DEADLINE: Duration = Duration::from_secs(20);
/// Bytes of the signature in front of the code.
const SIGNATURE: usize = 32;
/// The fewest bytes a code key may have (256 bits).
pub const MIN_CODE_KEY: usize = 32;

/// The secret the nodes of a fleet sign and check shared code with.
#[derive(Clone)]
pub struct CodeKey(Vec<u8>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey([redacted])")
    }
}

/// Why a code key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CodeKeyError {
    #[error("reading the fleet code key {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the fleet code key in {} has {len} bytes; it needs at least {MIN_CODE_KEY} \
         (e.g. `head -c 32 /dev/urandom | base64 > {}`)",
        path.display(), path.display()
    )]
    TooShort { path: PathBuf, len: usize },
}

impl CodeKey {
    /// The key in `path`: its bytes, less surrounding whitespace (so a base64 line
    /// written by a shell works as it is).
    pub fn from_file(path: &Path) -> Result<Self, CodeKeyError> {
        let bytes = std::fs::read(path).map_err(|source| CodeKeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let key = bytes.trim_ascii();
        if key.len() < MIN_CODE_KEY {
            return Err(CodeKeyError::TooShort {
                path: path.to_owned(),
                len: key.len(),
            });
        }
        Ok(CodeKey(key.to_vec()))
    }

    /// A key of these bytes (at least [`MIN_CODE_KEY`] of them).
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= MIN_CODE_KEY).then_some(CodeKey(bytes))
    }

    fn sign(&self, name: &str, code: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        // The name is signed too, so one version's code cannot be passed off as
        // another's. Its length goes first so no two (name, code) pairs sign alike.
        mac.update(b"verge compiled code v1\0");
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name.as_bytes());
        mac.update(code);
        mac
    }
}

/// Why shared code could not be stored or fetched.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("the fleet's code store did not answer: {0}")]
    Unavailable(String),
    /// An object whose signature does not check out under this node's key: stored by
    /// someone without the fleet's key, or with another key, or damaged.
    #[error("the shared code `{0}` is not signed with this node's fleet code key; not loaded")]
    Unsigned(String),
}

/// Compiled code in the fleet's package object store, by compile-cache key.
pub struct SharedCode {
    client: async_nats::Client,
    store: ObjectStore,
    stream: Stream,
    key: CodeKey,
}

impl std::fmt::Debug for SharedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCode").finish_non_exhaustive()
    }
}

fn object_name(code_key: &str) -> String {
    format!("code.{code_key}")
}

fn unavailable(e: impl std::fmt::Display) -> CodeError {
    CodeError::Unavailable(e.to_string())
}

impl SharedCode {
    /// Shared code in `store` (the fleet's package bucket), signed with `key`.
    pub fn new(
        client: async_nats::Client,
        store: ObjectStore,
        stream: Stream,
        key: CodeKey,
    ) -> Self {
        SharedCode {
            client,
            store,
            stream,
            key,
        }
    }

    /// Stores `code`, the compiled code named `code_key`, signed; kept as it is when
    /// the fleet holds that code already.
    pub async fn put(&self, code_key: &str, code: &[u8]) -> Result<(), CodeError> {
        let name = object_name(code_key);
        let work = async {
            if let Ok(info) = self.store.info(&name).await
                && !info.deleted
            {
                return Ok(());
            }
            let mut object = Vec::with_capacity(SIGNATURE + code.len());
            object.extend_from_slice(&self.key.sign(code_key, code).finalize().into_bytes());
            object.extend_from_slice(code);
            self.store
                .put(name.as_str(), &mut &object[..])
                .await
                .map(drop)
                .map_err(unavailable)
        };
        tokio::time::timeout(DEADLINE, work)
            .await
            .map_err(|_| unavailable(format!("storing `{name}` took over {DEADLINE:?}")))?
    }

    /// The code named `code_key`, its signature checked; `None` when the fleet has
    /// none (not shared, or made by another Wasmtime build).
    pub async fn get(&self, code_key: &str) -> Result<Option<Vec<u8>>, CodeError> {
        let name = object_name(code_key);
        let read = crate::objects::read(&self.client, &self.store, &self.stream, &name);
        let Some(mut bytes) = tokio::time::timeout(DEADLINE, read)
            .await
            .map_err(|_| unavailable(format!("fetching `{name}` took over {DEADLINE:?}")))?
            .map_err(CodeError::Unavailable)?
        else {
            return Ok(None);
        };
        if bytes.len() < SIGNATURE {
            return Err(CodeError::Unsigned(name));
        }
        let code = bytes.split_off(SIGNATURE);
        self.key
            .sign(code_key, &code)
            .verify_slice(&bytes)
            .map_err(|_| CodeError::Unsigned(name))?;
        Ok(Some(code))
    }
}
