//! Secrets: `[secret_stores.NAME]` in `verge.toml`, whose values come from a file or
//! the host's environment.
//!
//! ```no_run
//! # fn run() -> Result<(), verge::secrets::SecretError> {
//! if let Some(key) = verge::secrets::get("keys", "hmac")? {
//!     let bytes: Vec<u8> = key.plaintext();
//!     # let _ = bytes;
//! }
//! # Ok(()) }
//! ```
//!
//! A [`Secret`]'s `Debug` never shows its value, and Verge replaces the app's secret
//! values (4 bytes or longer) in its log lines with `[redacted]`; a response is
//! the app's own business.

use crate::edge::secrets as wit;

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The app declares no secret store of that name (the text lists those it does).
    NoSuchStore(String),
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretError::NoSuchStore(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<wit::Error> for SecretError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::NoSuchStore(text) => SecretError::NoSuchStore(text),
        }
    }
}

/// An open secret store.
#[derive(Debug)]
pub struct Store(wit::Store);

impl Store {
    /// Opens a secret store declared in `verge.toml`.
    pub fn open(name: &str) -> Result<Store, SecretError> {
        Ok(Store(wit::Store::open(name)?))
    }

    /// The secret `name`; `None` when the store has none.
    pub fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        Ok(self.0.get(name)?.map(Secret))
    }
}

/// A secret. Its value crosses into the guest only when [`Secret::plaintext`] asks.
pub struct Secret(wit::Secret);

impl Secret {
    /// The value's bytes.
    pub fn plaintext(&self) -> Vec<u8> {
        self.0.plaintext()
    }

    /// The value as text, if it is UTF-8.
    pub fn text(&self) -> Option<String> {
        String::from_utf8(self.plaintext()).ok()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The secret `name` of store `store`.
pub fn get(store: &str, name: &str) -> Result<Option<Secret>, SecretError> {
    Store::open(store)?.get(name)
}
