//! Host APIs: what a guest can call beyond its own code.
//!
//! Every API has the same three stages, as in Spin's factors:
//! 1. linked once per engine (its `add_to_linker`, called from
//!    [`crate::state::linker`]);
//! 2. a per-app state built once when the app loads ([`AppHost`]): pooled clients,
//!    open store handles, parsed allow-lists;
//! 3. a per-request state (or a view) built from it for every request
//!    ([`crate::state::RequestState::new`]): references and a few counters, so a
//!    request pays only for the APIs it calls.
//!
//! WASI interfaces come from Wasmtime's crates; Verge's own are the `verge:edge`
//! package in `wit/edge.wit` ([`bindings`]).

pub(crate) mod bindings;
pub(crate) mod cache;
pub(crate) mod config;
pub(crate) mod downstream;
pub mod geo;
pub(crate) mod http_body;
pub(crate) mod kv;
pub(crate) mod logging;
pub(crate) mod outbound;
pub mod ratelimit;
pub(crate) mod runtime_info;
pub(crate) mod secrets;

use std::sync::Arc;

use crate::config::AppConfig;
use crate::engine::NodeServices;
use crate::error::LoadError;

/// The error for a guest opening a store (KV, secrets, log endpoint) its app does not
/// declare: `this app has no KV store `x`; it declares `a`, `b``. `section` is the
/// manifest table, e.g. `kv_stores`.
pub(crate) fn not_declared<'a>(
    what: &str,
    name: &str,
    section: &str,
    declared: impl Iterator<Item = &'a String>,
) -> String {
    let mut names: Vec<String> = declared.map(|n| format!("`{n}`")).collect();
    names.sort();
    let declared = if names.is_empty() {
        format!("none ([{section}.NAME] in verge.toml)")
    } else {
        names.join(", ")
    };
    format!("this app has no {what} `{name}`; it declares {declared}")
}

/// The per-app state of every host API.
pub(crate) struct AppHost {
    pub(crate) outbound: Arc<outbound::AppState>,
    pub(crate) geo: geo::AppState,
    pub(crate) kv: kv::AppState,
    pub(crate) config: std::collections::BTreeMap<String, String>,
    pub(crate) secrets: secrets::AppState,
    pub(crate) ratelimit: Arc<ratelimit::RateLimiter>,
    pub(crate) logging: logging::AppState,
    pub(crate) cache: cache::AppState,
    pub(crate) node_name: Arc<str>,
    pub(crate) app_name: Arc<str>,
    pub(crate) app_version: Arc<str>,
}

impl AppHost {
    pub(crate) fn new(
        config: &AppConfig,
        node: &NodeServices,
        app_version: String,
    ) -> Result<AppHost, LoadError> {
        Ok(AppHost {
            outbound: outbound::AppState::new(config, &node.cache)?,
            geo: geo::AppState::new(node.geo.clone(), &config.geo_overrides),
            kv: kv::AppState::new(&node.kv, &config.name, &config.kv_stores),
            config: config.config.clone(),
            secrets: secrets::AppState::new(&config.secret_stores),
            ratelimit: node.ratelimit.clone(),
            logging: logging::AppState::new(&config.name, config.log_level, &config.log_endpoints)?,
            cache: cache::AppState::new(&node.cache, &config.name),
            node_name: node.name.as_str().into(),
            app_name: config.name.as_str().into(),
            app_version: app_version.into(),
        })
    }
}
