//! KV operations as values, so `verge kv` runs the same code on a store file it
//! opens itself, through `verge serve`'s local control listener on the store a
//! running server holds, and through a node's admin API.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use verge_store::{InsertMode, InsertOptions, Kv, KvError, Namespace};

/// One operation on one store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "KvOperation"))]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    Get {
        key: String,
    },
    Put {
        key: String,
        value_base64: String,
        #[serde(default)]
        mode: Mode,
        ttl_ms: Option<u64>,
        metadata: Option<String>,
        if_generation: Option<u64>,
    },
    Delete {
        key: String,
    },
    List {
        prefix: String,
        cursor: Option<String>,
        limit: usize,
    },
}

/// Insert modes as the CLI spells them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "KvInsertMode"))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Overwrite,
    Add,
    Append,
    Prepend,
}

impl Mode {
    /// The modes' names, as the CLI and the wire spell them.
    pub const NAMES: [&'static str; 4] = ["overwrite", "add", "append", "prepend"];
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Mode, String> {
        Ok(match text {
            "overwrite" => Mode::Overwrite,
            "add" => Mode::Add,
            "append" => Mode::Append,
            "prepend" => Mode::Prepend,
            other => {
                return Err(format!(
                    "no insert mode `{other}` (one of: {})",
                    Mode::NAMES.join(", ")
                ));
            }
        })
    }
}

/// What an operation answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "KvAnswer"))]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Answer {
    Entry {
        key: String,
        value_base64: String,
        metadata: Option<String>,
        generation: u64,
        expires_at_ms: Option<u64>,
    },
    NotFound {
        key: String,
    },
    Stored {
        generation: u64,
    },
    Deleted {
        deleted: bool,
    },
    Page {
        keys: Vec<String>,
        cursor: Option<String>,
    },
}

/// A refused operation: the store's message.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{error}")]
pub struct OpError {
    pub error: String,
    /// The storage could not be reached (a fleet node cut off from NATS): nothing
    /// is wrong with the request; retry later.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unavailable: bool,
}

impl From<KvError> for OpError {
    fn from(e: KvError) -> Self {
        OpError {
            unavailable: matches!(
                e,
                KvError::Storage(verge_store::BackendError::Unavailable(_))
            ),
            error: e.to_string(),
        }
    }
}

/// Runs `op` on `ns`.
pub fn run(kv: &Kv, ns: &Namespace, op: Op) -> Result<Answer, OpError> {
    Ok(match op {
        Op::Get { key } => match kv.lookup(ns, &key)? {
            Some(e) => Answer::Entry {
                key,
                value_base64: BASE64.encode(&e.value),
                metadata: e.metadata,
                generation: e.generation,
                expires_at_ms: e.expires_at_ms,
            },
            None => Answer::NotFound { key },
        },
        Op::Put {
            key,
            value_base64,
            mode,
            ttl_ms,
            metadata,
            if_generation,
        } => {
            let value = BASE64.decode(value_base64).map_err(|e| OpError {
                error: format!("the value is not base64: {e}"),
                unavailable: false,
            })?;
            let options = InsertOptions {
                mode: match mode {
                    Mode::Overwrite => InsertMode::Overwrite,
                    Mode::Add => InsertMode::Add,
                    Mode::Append => InsertMode::Append,
                    Mode::Prepend => InsertMode::Prepend,
                },
                ttl: ttl_ms.map(Duration::from_millis),
                metadata,
                if_generation,
            };
            Answer::Stored {
                generation: kv.insert(ns, &key, Bytes::from(value), options)?,
            }
        }
        Op::Delete { key } => Answer::Deleted {
            deleted: kv.delete(ns, &key)?,
        },
        Op::List {
            prefix,
            cursor,
            limit,
        } => {
            let page = kv.list(ns, &prefix, cursor.as_deref(), limit)?;
            Answer::Page {
                keys: page.keys,
                cursor: page.cursor,
            }
        }
    })
}
