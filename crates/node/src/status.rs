//! What a fleet node adds to `/readyz` and `/metrics`: whether NATS answers and the
//! control revision it has applied. Readiness stays what it was (the node can
//! serve); a load balancer keeps sending traffic to a cut-off node, which serves
//! what it last applied.

use std::fmt::Write;
use std::sync::Weak;

use verge_control::Link;
use verge_server::admin::NodeStatus;

use crate::Node;

pub(crate) struct FleetStatus(pub(crate) Weak<Node>);

impl NodeStatus for FleetStatus {
    fn readiness(&self) -> String {
        let Some(node) = self.0.upgrade() else {
            return String::new();
        };
        let applied = node.applied_revision();
        let mut out = match node.cluster_link() {
            None => return String::new(),
            Some(Link::Connected) => {
                format!("cluster: connected, applied revision {applied}\n")
            }
            Some(Link::Unavailable { since, reason }) => format!(
                "cluster: unavailable for {}s ({reason}); serving the state applied at revision {applied}, refusing changes\n",
                since.elapsed().as_secs()
            ),
        };
        if node.runtime.config().node.cache.hits_held() {
            out.push_str(
                "cache: holding hits until the purges made while cut off are applied; requests go to the services\n",
            );
        }
        out
    }

    fn metrics(&self, out: &mut String) {
        let Some(node) = self.0.upgrade() else { return };
        let connected = node.cluster_link().is_some_and(|l| l.is_connected());
        let _ = write!(
            out,
            "# HELP verge_cluster_connected Whether this node's fleet state (NATS JetStream) answers.\n\
             # TYPE verge_cluster_connected gauge\n\
             verge_cluster_connected {}\n\
             # HELP verge_control_revision_applied The fleet's control revision this node serves.\n\
             # TYPE verge_control_revision_applied gauge\n\
             verge_control_revision_applied {}\n\
             # HELP verge_cache_hits_held Whether cache hits are held (cut off under --purge-strict, or catching up on purges): requests run the services.\n\
             # TYPE verge_cache_hits_held gauge\n\
             verge_cache_hits_held {}\n",
            u8::from(connected),
            node.applied_revision(),
            u8::from(node.runtime.config().node.cache.hits_held()),
        );
        if let Some(relay) = node.fleet.as_ref().and_then(|f| f.logs()) {
            let _ = write!(
                out,
                "# HELP verge_log_lines_relay_dropped_total Log lines for other nodes' tails dropped because NATS did not take them in time.\n\
                 # TYPE verge_log_lines_relay_dropped_total counter\n\
                 verge_log_lines_relay_dropped_total {}\n",
                relay.dropped()
            );
        }
    }
}
