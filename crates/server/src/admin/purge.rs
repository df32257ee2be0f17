//! Purging an app's cached objects: one function for every way in (the admin API,
//! `verge serve`'s local control listener).

use serde::{Deserialize, Serialize};
use verge_cache::{Cache, Key, PurgeMode};

use crate::registry::AppRegistry;

/// What to purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeTarget {
    /// The objects of one URL (`https://host/path?query`).
    Url(String),
    /// The objects carrying a surrogate key.
    SurrogateKey(String),
    /// Everything of the app.
    All,
}

/// A purge as sent to a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeRequest {
    pub target: PurgeTarget,
    /// Mark stale instead of removing.
    #[serde(default)]
    pub soft: bool,
}

/// The body of `POST …/purge/url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PurgeUrl {
    pub url: String,
}

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Purged {
    pub app: String,
    /// Objects (variants) it covered.
    pub purged: u64,
    pub soft: bool,
    /// On a fleet: what each node did with it (`applied`, `pending: …`, `stale: …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("no app named `{app}` runs here")]
    NoSuchApp { app: String },
    #[error("`{url}` is not an absolute http(s) URL")]
    BadUrl { url: String },
    #[error("a surrogate key must be 1 to 1024 bytes without spaces")]
    BadKey,
}

/// Purges within `app`'s namespace. Returns once no lookup finds the purged objects.
pub fn purge(
    registry: &dyn AppRegistry,
    cache: &Cache,
    app: &str,
    request: &PurgeRequest,
) -> Result<Purged, PurgeError> {
    let routed = registry.by_name(app).ok_or_else(|| PurgeError::NoSuchApp {
        app: app.to_owned(),
    })?;
    let namespace = &*routed.name;
    let target = match &request.target {
        PurgeTarget::All => verge_cache::PurgeTarget::All,
        PurgeTarget::Url(url) => verge_cache::PurgeTarget::Key(
            Key::for_absolute_url(namespace, url)
                .ok_or_else(|| PurgeError::BadUrl { url: url.clone() })?,
        ),
        PurgeTarget::SurrogateKey(key) => {
            if key.is_empty() || key.len() > 1024 || key.contains(char::is_whitespace) {
                return Err(PurgeError::BadKey);
            }
            verge_cache::PurgeTarget::SurrogateKey(key.clone())
        }
    };
    let mode = if request.soft {
        PurgeMode::Soft
    } else {
        PurgeMode::Hard
    };
    let purged = cache.purge(namespace, &target, mode);
    Ok(Purged {
        app: app.to_owned(),
        purged: purged as u64,
        soft: request.soft,
        nodes: None,
    })
}
