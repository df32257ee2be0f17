//! A Verge edge node as a library: many services side by side, each on its domains,
//! deployed, activated and rolled back through the admin API, with scoped tokens.
//!
//! - [`Node::start`] opens a node from a [`NodeConfig`] and binds its listeners;
//!   [`Node::open`] opens one without listeners, and [`Node::admin_api`] is its
//!   whole admin API as a value, callable in process.
//! - [`deploy`](Node::add_version): upload, activate, roll back, free of HTTP; the
//!   routes in `api` are a thin layer over them.
//! - [`app`]: from a package (or a manifest and a component) to an app the router
//!   serves, shared with `verge serve`.
//! - [`EdgeOptions`]: the settings `verge serve` and `verge node` share.
//! - [`kv_ops`]: KV operations as values, for `verge kv` and the admin API.
//! - [`wire`]: the admin API's request and answer types, shared with the CLI.

mod api;
pub mod app;
mod auth;
mod cluster;
mod config;
mod deploy;
mod edge;
mod fleet_view;
pub mod kv_ops;
mod log_relay;
mod node;
mod purge_relay;
mod reconcile;
mod report;
mod shared_code;
mod status;
mod traffic_relay;
pub mod wire;

pub use cluster::{ClusterConfig, ClusterError, NatsAuth};
pub use config::NodeConfig;
pub use deploy::DeployError;
pub use edge::{EdgeError, EdgeOptions};
pub use node::{Node, NodeError, RunningNode, VersionLoadError};
pub use reconcile::ServeState;
pub use report::{Reporter, chain};
