//! The Verge runtime: runs `wasi:http/proxy` components, one fresh instance per request.
//!
//! It knows nothing of listeners, TLS, routing, tenants or the control plane: it takes
//! an [`App`] and an HTTP request and gives back a response and a [`Report`].
//!
//! - [`Runtime`]: one Wasmtime engine (pooling allocator, epoch ticker, linker).
//! - [`App`]: a component compiled (or loaded from the on-disk compile cache), linked
//!   and pre-instantiated once; [`App::handle`] runs one request.
//! - [`Limits`]: memory, guest CPU time, wall time and request body size per request.

mod app;
mod coalesce;
mod compile_cache;
mod config;
mod engine;
mod error;
mod execute;
mod guest_log;
mod host;
mod limits;
mod meter;
mod outcome;
mod state;
mod threads;
mod trace;

pub use app::{App, LoadInfo};
pub use compile_cache::CacheStatus;
pub use config::{
    AppConfig, BackendConfig, ConfigError, DEFAULT_MAX_CONNECTIONS, EgressConfig, KvStoreConfig,
    LogEndpointConfig, LogTarget, OriginTimeouts, SecretValue, Seed, TlsConfig,
};
pub use engine::{NodeServices, Runtime, RuntimeConfig};
pub use error::LoadError;
pub use execute::{Execution, PendingReport, RequestContext, ResponseBody};
pub use guest_log::{GuestLogSink, GuestStream, LogLevel};
pub use host::downstream::TlsInfo;
pub use host::geo::{GeoDbError, GeoProvider, GeoRecord, MaxmindGeo};
pub use host::ratelimit::{RateLimitError, RateLimiter};
pub use limits::Limits;
pub use meter::LimitExceeded;
pub use outcome::{Failure, Report};
pub use threads::{MAX_REQUEST_THREADS, enter_request_thread};
/// The error a request body passed to [`App::handle`] may fail with.
pub use wasmtime_wasi_http::Error as BodyError;
