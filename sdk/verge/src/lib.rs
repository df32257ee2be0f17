//! # Verge SDK
//!
//! Write an edge request handler for [Verge](https://example.invalid/verge) in Rust.
//! The output is a plain `wasi:http/proxy` component: it runs on Verge, on
//! `wasmtime serve`, and on any other host of that world.
//!
//! ```no_run
//! use verge::{Error, Request, Response};
//!
//! #[verge::main]
//! fn handle(req: Request) -> Result<Response, Error> {
//!     match req.path() {
//!         "/" => Ok(Response::text("Hello from the edge!\n")),
//!         // Stream the request body straight back, never holding it whole.
//!         "/echo" => Ok(Response::new().with_body(req.into_body())),
//!         _ => Ok(Response::with_status(404).with_body("not found\n")),
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The handler may have any name; apps conventionally call it `main`, as in
//! `#[fastly::main]`.
//!
//! Build it with `verge build`, run it with `verge serve`.
//!
//! - [`Request`]: method, URI, headers, and a body read as bytes, text, JSON (feature
//!   `json`, on by default) or as a stream ([`RequestBody`] implements
//!   [`std::io::Read`]).
//! - [`Response`]: status, headers and a [`Body`] made from bytes, text, JSON or any
//!   reader, which is streamed to the client as it is read.
//! - [`Error`]: any error; a handler returning `Err` answers `500` and logs the error
//!   (with its causes) to stderr, which Verge tags with the request id.
//! - [`env::var`]: the environment variables declared in the manifest's `[env]`.
//! - Printing to stdout or stderr writes log lines tagged with the request id.

mod body;
pub mod env;
mod request;
mod response;
mod run;

pub use body::{Body, RequestBody};
pub use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
pub use request::Request;
pub use response::Response;
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
