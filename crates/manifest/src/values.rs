//! The values an app reads at run time that come from outside `verge.toml`: the
//! config file and secrets (from a file or the host's environment), resolved once
//! when the app is prepared.
//!
//! Secret values never appear in an error: a malformed secrets file is reported by
//! position only, and a missing variable by its name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Manifest, StoreName};

/// `[config]` keys: 1–255 bytes of UTF-8 without control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigKey(pub String);

impl<'de> Deserialize<'de> for ConfigKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        check_name("config key", &key).map_err(serde::de::Error::custom)?;
        Ok(ConfigKey(key))
    }
}

/// A config value: text, or a number or boolean written as TOML (kept as its text).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue(pub String);

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(ConfigValue(s)),
            toml::Value::Integer(i) => Ok(ConfigValue(i.to_string())),
            toml::Value::Float(f) => Ok(ConfigValue(f.to_string())),
            toml::Value::Boolean(b) => Ok(ConfigValue(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "config values are text, numbers or booleans, not {}",
                other.type_str()
            ))),
        }
    }
}

/// One secret store: `[secret_stores.NAME]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretStoreSection {
    /// A JSON object of secret names to values, relative to the manifest. Keep it out
    /// of version control.
    pub file: Option<PathBuf>,
    /// Secret name → the host environment variable holding its value.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Why config or secret values could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    #[error("could not read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("secret store `{store}`: {message}")]
    Secret { store: String, message: String },
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(format!(
            "invalid {what} `{}`: use 1 to 255 bytes without control characters",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Reads a JSON object of names to values. With `secret`, errors give only the
/// position, never a value.
fn read_json_object(
    path: &Path,
    what: &str,
    secret: bool,
) -> Result<BTreeMap<String, String>, ValuesError> {
    let text = std::fs::read_to_string(path).map_err(|source| ValuesError::Read {
        path: path.to_owned(),
        source,
    })?;
    let expected = format!("expected a JSON object of {what} names to text values");
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ValuesError::Syntax {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: if secret {
                "not valid JSON".into()
            } else {
                e.to_string()
                    .rsplit_once(" at line ")
                    .map_or(e.to_string(), |(m, _)| m.to_owned())
            },
        })?;
    let serde_json::Value::Object(items) = value else {
        return Err(ValuesError::Invalid {
            path: path.to_owned(),
            message: expected,
        });
    };
    items
        .into_iter()
        .map(|(name, value)| {
            check_name(what, &name).map_err(|message| ValuesError::Invalid {
                path: path.to_owned(),
                message,
            })?;
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) if !secret => n.to_string(),
                serde_json::Value::Bool(b) if !secret => b.to_string(),
                _ => {
                    return Err(ValuesError::Invalid {
                        path: path.to_owned(),
                        message: format!("`{name}`: {expected}"),
                    });
                }
            };
            Ok((name, text))
        })
        .collect()
}

impl Manifest {
    /// The app's config: `config_file` (a JSON object), with `[config]` keys over it.
    pub fn config_values(&self) -> Result<BTreeMap<String, String>, ValuesError> {
        let mut values = match &self.config_file {
            Some(file) => read_json_object(&self.dir.join(file), "config", false)?,
            None => BTreeMap::new(),
        };
        values.extend(self.config.iter().map(|(k, v)| (k.0.clone(), v.0.clone())));
        Ok(values)
    }

    /// Every secret store's values, read from its file and the environment (`env`
    /// looks a variable up). A name given by both, or a variable that is not set, is
    /// an error naming the store, the secret and the variable, never a value.
    pub fn secret_values(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<StoreName, BTreeMap<String, String>>, ValuesError> {
        self.secret_stores
            .iter()
            .map(|(store, section)| {
                let fail = |message: String| ValuesError::Secret {
                    store: store.as_str().to_owned(),
                    message,
                };
                let mut values = match &section.file {
                    Some(file) => read_json_object(&self.dir.join(file), "secret", true)?,
                    None => BTreeMap::new(),
                };
                for (name, var) in &section.env {
                    check_name("secret name", name).map_err(fail)?;
                    let value = env(var).ok_or_else(|| {
                        fail(format!(
                            "secret `{name}` comes from the environment variable {var}, which is \
                             not set"
                        ))
                    })?;
                    if values.insert(name.clone(), value).is_some() {
                        return Err(fail(format!(
                            "secret `{name}` is in both the file and `env`; keep one"
                        )));
                    }
                }
                Ok((store.clone(), values))
            })
            .collect()
    }
}
