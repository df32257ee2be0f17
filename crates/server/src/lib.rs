//! The Verge HTTP server: listeners, routing to apps, access and guest logs.
//!
//! The server knows apps only through [`AppRegistry`] (host name → runnable app); it
//! never sees manifests or the control plane. `verge serve` and `verge node` run the
//! same server with different registries and defaults.

pub mod admin;
mod body;
mod config;
mod drain;
pub mod host;
mod log;
pub mod log_tap;
mod metrics;
mod pipeline;
mod registry;
mod request_id;
mod request_threads;
mod routes;
mod serve;
mod tls;
pub mod traffic;

pub use body::ServerBody;
pub use config::ServerConfig;
pub use log::{AccessRecord, Console, LogWriter};
pub use log_tap::{LogTap, TapLine, Watch, Watched};
pub use metrics::{AppMetrics, Counters, Metrics};
pub use registry::{AppRegistry, HttpCache, RoutedApp, SingleApp};
pub use routes::{HostRoutes, LazyApp, NodeRegistry};
pub use serve::{Server, ServerError};
pub use tls::{Certificates, TlsError};
