//! `POST /admin/v1/services/{name}/kv/{store}`: one KV operation (`verge kv`) on a
//! store of the service's active version; `GET /admin/v1/services/{name}/kv`: the
//! stores it declares.

use std::sync::Arc;

use hyper::http::StatusCode;
use verge_control::ServiceName;
use verge_server::AppRegistry;
use verge_server::admin::{AdminRequest, Need, Principal, Reply, forbidden};
use verge_store::Namespace;

use super::{json_body_within, refuse, reply};
use crate::Node;
use crate::kv_ops::{self, Op};

/// The largest operation taken: the largest value a store takes, in base64, with
/// room for its key and metadata.
const MAX_KV_BODY: usize =
    verge_store::KvLimits::DEFAULT.max_value_bytes.div_ceil(3) * 4 + (64 << 10);

/// The KV stores the service's active version declares (what the console lists).
pub(super) fn stores(node: &Arc<Node>, principal: &Principal, name: &ServiceName) -> Reply {
    if let Err(why) = principal.check(Need {
        service: Some(name.as_str()),
        write: false,
    }) {
        return forbidden(&why);
    }
    let stores = match node.registry.by_name(name.as_str()) {
        Some(routed) => routed
            .app
            .config()
            .kv_stores
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        None => Vec::new(),
    };
    reply(StatusCode::OK, &crate::wire::KvStores { stores })
}

/// Reads need the service's read right, writes its write right.
pub(super) async fn kv(
    node: &Arc<Node>,
    principal: &Principal,
    name: &ServiceName,
    store: &str,
    req: AdminRequest,
) -> Reply {
    // The scope first, so a token outside it learns nothing from the body's errors.
    let need = |write| Need {
        service: Some(name.as_str()),
        write,
    };
    if let Err(why) = principal.check(need(false)) {
        return forbidden(&why);
    }
    let op: Op = match json_body_within(req, MAX_KV_BODY).await {
        Ok(op) => op,
        Err(reply) => return reply,
    };
    if matches!(op, Op::Put { .. } | Op::Delete { .. })
        && let Err(why) = principal.check(need(true))
    {
        return forbidden(&why);
    }
    let Some(routed) = node.registry.by_name(name.as_str()) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "service `{}` has no active version: its KV stores are those its package declares",
                name.as_str()
            ),
        );
    };
    let config = routed.app.config();
    let Some(declared) = config.kv_stores.iter().find(|s| s.name == store) else {
        let names: Vec<&str> = config.kv_stores.iter().map(|s| s.name.as_str()).collect();
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "service `{}` declares no KV store `{store}` (it declares: {})",
                name.as_str(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        );
    };
    let ns = Namespace::new(&config.name, &declared.name, declared.limits);
    let kv = node.runtime.config().node.kv.clone();
    match tokio::task::spawn_blocking(move || kv_ops::run(&kv, &ns, op)).await {
        Ok(Ok(answer)) => reply(StatusCode::OK, &answer),
        Ok(Err(e)) if e.unavailable => refuse(StatusCode::SERVICE_UNAVAILABLE, e.error),
        Ok(Err(e)) => refuse(StatusCode::UNPROCESSABLE_ENTITY, e.error),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
