//! # Verge SDK
//!
//! Write an edge request handler for [Verge](https://example.invalid/verge) in Rust.
//! The output is a plain `wasi:http/proxy` component (plus Verge's own `verge:edge`
//! imports when you use them): it runs on Verge, and anything that uses only the
//! standard parts runs on `wasmtime serve` too.
//!
//! ```no_run
//! use verge::{Error, Request, Response};
//!
//! #[verge::main]
//! fn handle(req: Request) -> Result<Response, Error> {
//!     match req.path() {
//!         "/" => Ok(Response::from_text("Hello from the edge!\n")),
//!         // Stream the request body straight back, never holding it whole.
//!         "/echo" => Ok(Response::new().with_body(req.into_body())),
//!         // Forward the request to the backend `origin` of verge.toml.
//!         p if p.starts_with("/api/") => req.send("origin"),
//!         _ => Ok(Response::from_status(404).with_body("not found\n")),
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The handler may have any name; apps conventionally call it `main`, as in
//! `#[fastly::main]`. Build it with `verge build`, run it with `verge serve`.
//!
//! - [`Request`]: method, URI, headers, query parameters ([`Request::query_param`],
//!   typed with [`Request::query_as`]), the client's IP ([`Request::client_ip`]), the
//!   connection's TLS ([`Request::tls`]), and a
//!   body read as bytes, text, JSON or a stream; [`Request::send`] forwards it to a
//!   backend.
//! - [`Response`]: `from_*` constructors, `with_*` builders, `set_*` setters; a body
//!   of bytes (sent with `content-length`), a reader, or a stream passed on from the
//!   client or an origin (forwarded inside the host).
//! - [`http::fetch`] / [`http::send`]: requests to URLs allowed by `[egress]`.
//! - [`Router`]: method + path routing with `:param` segments.
//! - [`geo::lookup`]: where an IP address is. [`runtime`]: request id, trace id,
//!   node, app, CPU used.
//! - [`kv::Store`]: the app's KV stores (TTL, metadata, insert modes,
//!   compare-and-swap, prefix listing).
//! - [`cache`]: the programmable edge cache (lookups, inserts with TTLs, surrogate
//!   keys and variants, collapsing [`cache::Transaction`]s, purges).
//! - [`config::get`]: the app's configuration (`[config]`, through `wasi:config`).
//! - [`secrets::get`]: secrets from the app's secret stores.
//! - [`ratelimit::Erl`]: edge rate limiting with counters and penalty boxes.
//! - [`env::var`]: the environment variables declared in the manifest's `[env]`.
//! - [`Error`]: any error; a handler returning `Err` answers `500` and logs the error
//!   (with its causes) to stderr, which Verge tags with the request id.
//! - [`log`]: the `log` crate's macros go to `wasi:logging`; [`log::Endpoint`]
//!   writes to named log endpoints.
//! - Printing to stdout or stderr writes log lines tagged with the request id.

mod body;
pub mod cache;
pub mod config;
mod edge;
pub mod env;
mod fields;
pub mod geo;
pub mod http;
pub mod kv;
pub mod log;
pub mod ratelimit;
mod request;
mod response;
mod router;
mod run;
pub mod runtime;
pub mod secrets;

pub use ::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
pub use body::{Body, IncomingBody, RequestBody};
pub use request::{Request, TlsInfo};
pub use response::{IntoStatus, Response};
pub use router::{Params, Router};
pub use verge_macros::main;

/// The error type handlers return: any error, with its chain of causes.
pub type Error = anyhow::Error;

/// Glue used by the `#[verge::main]` expansion. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::run::run;
    pub use wasip2;
    pub use wasip2::exports::http::incoming_handler::Guest;
    pub use wasip2::http::proxy::export;
    pub use wasip2::http::types::{IncomingRequest, ResponseOutparam};
}
