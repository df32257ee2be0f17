//! Host APIs: what a guest can call beyond its own code.
//!
//! Every API has the same three stages, as in Spin's factors:
//! 1. linked once per engine ([`add_to_linker`], called from [`crate::state::linker`]);
//! 2. a per-app state built once when the app loads ([`AppHost`]): pooled clients,
//!    open store handles, parsed allow-lists;
//! 3. a per-request state built from it for every request
//!    ([`crate::state::RequestState::new`]): clones of `Arc`s and a few counters,
//!    so a request pays only for the APIs it calls.

pub(crate) mod outbound;

use crate::config::AppConfig;
use crate::error::LoadError;

/// The per-app state of every host API.
pub(crate) struct AppHost {
    pub(crate) outbound: std::sync::Arc<outbound::AppState>,
}

impl AppHost {
    pub(crate) fn new(config: &AppConfig) -> Result<AppHost, LoadError> {
        Ok(AppHost {
            outbound: outbound::AppState::new(config)?,
        })
    }
}
