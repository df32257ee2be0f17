//! Seed files: the JSON that fills a local store for development, in the format of
//! Fastly's `[local_server.kv_stores]`:
//!
//! ```json
//! {
//!   "home": "https://example.com/",
//!   "docs": { "data": "https://example.com/docs", "metadata": "{\"owner\":\"ana\"}" },
//!   "logo": { "file": "logo.png" }
//! }
//! ```
//!
//! A plain string is the value; an object gives `data` (text) or `file` (a path
//! relative to the seed file) and optional `metadata`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;

/// One item of a seed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedEntry {
    pub key: String,
    pub value: Bytes,
    pub metadata: Option<String>,
}

/// Why a seed file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("could not read the seed file {path}")]
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
    #[error("{path}: key `{key}`: {message}")]
    Item {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawItem {
    Text(String),
    Object(RawObject),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObject {
    data: Option<String>,
    file: Option<PathBuf>,
    metadata: Option<String>,
}

/// Reads and parses a seed file; `file` items are read relative to it.
pub fn load_seed(path: &Path) -> Result<Vec<SeedEntry>, SeedError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_seed(&text, path)
}

/// Parses seed JSON; `path` names it in errors and anchors `file` items.
pub fn parse_seed(text: &str, path: &Path) -> Result<Vec<SeedEntry>, SeedError> {
    // An ordered map keeps the file's order, so errors name the first bad item.
    let items: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| SeedError::Syntax {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    items
        .into_iter()
        .map(|(key, raw)| {
            let item_error = |message: String| SeedError::Item {
                path: path.to_owned(),
                key: key.clone(),
                message,
            };
            let raw: RawItem = serde_json::from_value(raw).map_err(|_| {
                item_error(
                    "expected a string, or an object with `data` or `file` and optional \
                     `metadata`"
                        .into(),
                )
            })?;
            let (value, metadata) = match raw {
                RawItem::Text(text) => (Bytes::from(text), None),
                RawItem::Object(RawObject {
                    data,
                    file,
                    metadata,
                }) => {
                    let value = match (data, file) {
                        (Some(data), None) => Bytes::from(data),
                        (None, Some(file)) => {
                            let file = dir.join(file);
                            Bytes::from(std::fs::read(&file).map_err(|e| {
                                item_error(format!("could not read {}: {e}", file.display()))
                            })?)
                        }
                        _ => {
                            return Err(item_error("give exactly one of `data` and `file`".into()));
                        }
                    };
                    (value, metadata)
                }
            };
            Ok(SeedEntry {
                key,
                value,
                metadata,
            })
        })
        .collect()
}

/// serde_json appends " at line L column C", which the error already shows.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_objects_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("logo.bin"), [0u8, 1, 2]).unwrap();
        let seed = dir.path().join("seed.json");
        let text = r#"{"a": "1", "b": {"data": "2", "metadata": "m"}, "c": {"file": "logo.bin"}}"#;
        let items = parse_seed(text, &seed).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].value, Bytes::from_static(b"1"));
        assert_eq!(items[1].metadata.as_deref(), Some("m"));
        assert_eq!(items[2].value, Bytes::from_static(&[0, 1, 2]));
    }

    #[test]
    fn names_file_line_and_item() {
        let path = Path::new("links.json");
        let err = parse_seed("{\n  \"a\": \"1\",\n  \"b\": oops\n}", path).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("links.json:3:"), "{text}");
        let err = parse_seed(r#"{"a": 5}"#, path).unwrap_err();
        assert!(err.to_string().contains("key `a`"), "{err}");
        let err = parse_seed(r#"{"a": {"data": "x", "file": "y"}}"#, path).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }
}
