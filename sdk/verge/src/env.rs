//! Environment variables declared in the app's `[env]` manifest section.
//!
//! A handler built with the `wasi:http/proxy` adapter sees an empty `std::env`: that
//! world has no environment. These functions read `wasi:cli/environment` directly, which
//! Verge (and `wasmtime serve`) provide. The guest sees only what the manifest declares.

/// The value of `name`, if the manifest declares it.
pub fn var(name: &str) -> Option<String> {
    wasip2::cli::environment::get_environment()
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// Every declared variable, in the order the host gives them.
pub fn vars() -> Vec<(String, String)> {
    wasip2::cli::environment::get_environment()
}
