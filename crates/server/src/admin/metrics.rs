//! Prometheus text exposition: per-app request metrics and the node's cache counters.

use std::fmt::Write;

use http::{Response, StatusCode, header};
use verge_cache::Cache;

use crate::metrics::Metrics;

pub(super) fn render(
    metrics: &Metrics,
    cache: &Cache,
    node: Option<&dyn super::NodeStatus>,
) -> super::Reply {
    let stats = cache.stats();
    let mut text = String::with_capacity(4096);
    metrics.render(&mut text);
    if let Some(node) = node {
        node.metrics(&mut text);
    }
    text.push_str(
        "# HELP verge_cache_lookups_total Cache lookups by outcome.\n\
         # TYPE verge_cache_lookups_total counter\n",
    );
    for (outcome, count) in [
        ("hit", stats.hit),
        ("miss", stats.miss),
        ("stale", stats.stale),
        ("collapsed", stats.collapsed),
        ("pass", stats.pass),
    ] {
        let _ = writeln!(
            text,
            "verge_cache_lookups_total{{outcome=\"{outcome}\"}} {count}"
        );
    }
    let _ = write!(
        text,
        "# HELP verge_cache_purges_total Purge calls.\n\
         # TYPE verge_cache_purges_total counter\n\
         verge_cache_purges_total {}\n\
         # HELP verge_cache_stored_total Objects stored (inserts and refreshes).\n\
         # TYPE verge_cache_stored_total counter\n\
         verge_cache_stored_total {}\n\
         # HELP verge_cache_memory_bytes Bytes of objects held in memory.\n\
         # TYPE verge_cache_memory_bytes gauge\n\
         verge_cache_memory_bytes {}\n\
         # HELP verge_cache_keys Keys held in memory.\n\
         # TYPE verge_cache_keys gauge\n\
         verge_cache_keys {}\n\
         # HELP verge_cache_disk_bytes Bytes of objects held on disk.\n\
         # TYPE verge_cache_disk_bytes gauge\n\
         verge_cache_disk_bytes {}\n\
         # HELP verge_cache_disk_keys Keys held on disk.\n\
         # TYPE verge_cache_disk_keys gauge\n\
         verge_cache_disk_keys {}\n",
        stats.purge,
        stats.stored,
        stats.memory_bytes,
        stats.keys,
        stats.disk_bytes,
        stats.disk_keys
    );
    let mut resp = Response::new(super::full(text));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}
