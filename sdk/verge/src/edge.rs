//! Bindings of Verge's `verge:edge` interfaces (`wit/edge.wit`) and the standard
//! interfaces the SDK wraps (`wasi:config`).

wit_bindgen::generate!({
    path: "wit",
    world: "verge:edge/sdk",
    with: {
        // The same wasi:io types as the wasip2 crate's, so a KV value stream is a
        // `wasip2` input stream the SDK can splice into a body.
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        "wasi:config/store@0.2.0-rc.1": generate,
        "wasi:logging/logging@0.1.0-draft": generate,
    },
});

pub(crate) use self::verge::edge::{
    cache, downstream, geo, http_body, kv, logs, ratelimit, runtime, secrets,
};
pub(crate) use self::wasi::config0_2_0_rc_1::store as config;
pub(crate) use self::wasi::logging::logging;
