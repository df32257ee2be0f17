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
    },
    with: {
        "verge:edge/kv.store": super::kv::KvStore,
        "wasi:keyvalue/store.bucket": super::kv::Bucket,
        "wasi:keyvalue/atomics.cas": super::kv::Cas,
    },
});

pub(crate) use verge::edge::{downstream, geo, kv, runtime};
pub(crate) use wasi::keyvalue;
