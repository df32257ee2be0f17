//! Purges that travel between nodes. A purge made on this node ([`Cache::purge`]) is
//! applied at once, then handed to the cache's [`PurgeSink`] if it has one (a fleet
//! node publishes it for the others); one that arrives from another node is applied
//! with [`Cache::apply_remote`], which never hands it on again (no echo), and moves
//! the sequence of remote purges applied, so a node knows where to resume after a
//! restart or a cut.
//!
//! [`Cache::purge`]: crate::Cache::purge
//! [`Cache::apply_remote`]: crate::Cache::apply_remote

use serde::{Deserialize, Serialize};

use crate::{Key, PurgeMode, PurgeTarget};

/// A purge as a value: what it covers, in which app, hard or soft. Serializable
/// (JSON: `{"namespace":"shop","by":"surrogate_key","surrogate_key":"items","mode":"soft"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purge {
    /// The app whose objects it covers.
    pub namespace: String,
    #[serde(flatten)]
    pub of: PurgeOf,
    pub mode: PurgeMode,
}

/// What a [`Purge`] covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum PurgeOf {
    /// The objects under one key: a URL's key, or a key a guest chose (any bytes),
    /// in hex.
    Key {
        #[serde(with = "hex")]
        key: Vec<u8>,
    },
    /// Every object tagged with this surrogate key.
    SurrogateKey { surrogate_key: String },
    /// Everything of the app.
    All,
}

impl Purge {
    /// The purge of `target` in `namespace`.
    pub fn new(namespace: &str, target: &PurgeTarget, mode: PurgeMode) -> Purge {
        let of = match target {
            PurgeTarget::Key(key) => PurgeOf::Key {
                key: key.primary().to_vec(),
            },
            PurgeTarget::SurrogateKey(skey) => PurgeOf::SurrogateKey {
                surrogate_key: skey.clone(),
            },
            PurgeTarget::All => PurgeOf::All,
        };
        Purge {
            namespace: namespace.to_owned(),
            of,
            mode,
        }
    }

    /// What it purges, as [`Cache::purge`](crate::Cache::purge) takes it.
    pub fn target(&self) -> PurgeTarget {
        match &self.of {
            PurgeOf::Key { key } => {
                PurgeTarget::Key(Key::new(self.namespace.as_str(), key.clone()))
            }
            PurgeOf::SurrogateKey { surrogate_key } => {
                PurgeTarget::SurrogateKey(surrogate_key.clone())
            }
            PurgeOf::All => PurgeTarget::All,
        }
    }
}

/// Where purges made on this node go, after they are applied here.
pub trait PurgeSink: Send + Sync + 'static {
    /// Takes one purge. Called on the purging thread (a request's, a guest's): it
    /// must not block; a fleet node queues the purge for publishing.
    fn purged(&self, purge: Purge);

    /// Resolves once every live node of the fleet has applied the purges handed
    /// over so far, or after `wait`, whichever comes first (a node cut off resolves
    /// at once: nothing can be heard).
    fn settled(&self, wait: std::time::Duration) -> Settled<'_>;
}

/// What [`PurgeSink::settled`] returns.
pub type Settled<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("a hex key has an even length"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(text.get(i..i + 2).unwrap_or("zz"), 16)
                    .map_err(|_| serde::de::Error::custom("a key is in hex digits"))
            })
            .collect()
    }
}
