//! Host bindings of the `verge:edge` WIT package (`wit/edge.wit`) and the standard
//! interfaces Verge implements beside wasi:http (`wit/deps`).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "verge:edge/host",
    imports: {
        "verge:edge/kv": async | trappable,
        "wasi:keyvalue/store": async | trappable,
        "wasi:keyvalue/atomics": async | trappable,
        "wasi:keyvalue/batch": async | trappable,
        "verge:edge/secrets": trappable,
        "verge:edge/http-body": trappable,
        "verge:edge/cache": async | trappable,
    },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "verge:edge/kv.store": super::kv::KvStore,
        "verge:edge/kv.writer": super::kv::KvWriter,
        "wasi:keyvalue/store@0.2.0-draft2.bucket": super::kv::Bucket,
        "wasi:keyvalue/atomics@0.2.0-draft2.cas": super::kv::Cas,
        "wasi:keyvalue/store@0.2.0-draft.bucket": super::kv::DraftBucket,
        "verge:edge/secrets.store": super::secrets::SecretStore,
        "verge:edge/secrets.secret": super::secrets::Secret,
        "verge:edge/logs.endpoint": super::logging::LogEndpoint,
        "verge:edge/cache.entry": super::cache::CacheEntry,
        "verge:edge/cache.writer": super::cache::CacheWriter,
        "verge:edge/cache.transaction": super::cache::CacheTransaction,
    },
});

pub(crate) use verge::edge::{
    cache, downstream, geo, http_body, kv, logs, ratelimit, runtime, secrets,
};
pub(crate) use wasi::config0_2_0_draft::store as config_draft;
pub(crate) use wasi::config0_2_0_draft_2024_09_27::store as config_draft_2024;
pub(crate) use wasi::config0_2_0_rc_1::store as config_rc1;
pub(crate) use wasi::keyvalue0_2_0_draft as keyvalue_draft;
pub(crate) use wasi::keyvalue0_2_0_draft2 as keyvalue;
pub(crate) use wasi::logging::logging;
