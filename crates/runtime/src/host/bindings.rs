//! Host bindings of the `verge:edge` WIT package (`wit/edge.wit`).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "verge:edge/imports",
});

pub(crate) use verge::edge::{downstream, geo, runtime};
