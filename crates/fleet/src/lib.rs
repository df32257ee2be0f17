//! Many Verge nodes as one platform on NATS JetStream.
//!
//! - [`JetStreamStore`]: the control state's [`verge_control::ControlStore`] in a
//!   JetStream KV bucket (R3 on a 3-server cluster): compare-and-swap by the stream
//!   leader, the change feed from a sequence, a watch that follows writes from every
//!   node. It passes `verge_control::conformance`, the cases `RedbStore` passes.
//! - [`ObjectPackages`]: packages in a JetStream object store, by SHA-256, checked
//!   on every read; `verge_control::conformance::packages` holds for it.
//! - [`SharedCode`]: compiled code beside the packages, signed with the fleet's
//!   [`CodeKey`], so a deploy is compiled once per fleet, not once per node.
//! - [`NodeDirectory`]: every node's latest heartbeat, in a KV bucket each node
//!   watches.
//! - [`PurgeStream`]: every node's cache purges in one stream, in order, which each
//!   node follows and applies, telling the purging node it did.
//! - [`FleetKv`]: the guests' KV stores in one bucket (`PREFIX-kv`), read from the
//!   node's [`verge_store::KvReplica`] (fed by a watch), written through the
//!   bucket's leader with expected revisions; it passes `verge_store::conformance`.
//! - [`LogRelay`]: log lines across nodes on core NATS, while some tail watches.
//! - [`TrafficRelay`]: each node's 10-second traffic samples, on core NATS.
//! - [`NatsCluster`]: a local NATS cluster with JetStream on loopback, for
//!   `scripts/fleet.sh`, the tests and the benchmarks; [`TcpProxy`] cuts a node off
//!   from it (blackhole, reset, refuse) without root.

mod code;
mod control_store;
mod guest_kv;
pub mod keys;
mod logs;
mod nats_cluster;
mod nodes;
mod objects;
mod packages;
mod purges;
mod tcp_proxy;
mod traffic;

pub use code::{CodeError, CodeKey, CodeKeyError, MIN_CODE_KEY, SharedCode};
pub use control_store::{BucketConfig, JetStreamStore};
pub use guest_kv::{FleetKv, KvBucket, WRITE_DEADLINE, kv_bucket_name};
pub use logs::{LogRelay, RelayedLine};
pub use nats_cluster::{ClusterError, NatsCluster, ServerOptions, nats_server_binary};
pub use nodes::{Heartbeat, NodeDirectory, REWRITE_SERVES};
pub use packages::ObjectPackages;
pub use purges::{PURGES_KEPT, PurgeStream, RemotePurge};
pub use tcp_proxy::TcpProxy;
pub use traffic::TrafficRelay;
