//! The app's configuration: `[config]` and `config_file` in `verge.toml`, read through
//! the standard `wasi:config/store`. Read-only, the same for every request.
//!
//! ```no_run
//! let split: u32 = verge::config::get("split")
//!     .and_then(|v| v.parse().ok())
//!     .unwrap_or(50);
//! # let _ = split;
//! ```

use crate::edge::config as wit;

/// The value of `key`; `None` when it is not set.
pub fn get(key: &str) -> Option<String> {
    wit::get(key).ok().flatten()
}

/// Every key and value, in key order.
pub fn all() -> Vec<(String, String)> {
    wit::get_all().unwrap_or_default()
}
