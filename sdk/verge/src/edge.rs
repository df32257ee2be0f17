//! Bindings of Verge's `verge:edge` interfaces (`wit/edge.wit`) and the standard
//! interfaces the SDK wraps (`wasi:config`).

wit_bindgen::generate!({
    path: "wit",
    world: "verge:edge/sdk",
    with: {
        "wasi:config/store@0.2.0-rc.1": generate,
        "wasi:logging/logging@0.1.0-draft": generate,
    },
});

pub(crate) use self::verge::edge::{downstream, geo, kv, logs, ratelimit, runtime, secrets};
pub(crate) use self::wasi::config0_2_0_rc_1::store as config;
pub(crate) use self::wasi::logging::logging;
