//! Bindings of Verge's `verge:edge` interfaces (`wit/edge.wit`).

wit_bindgen::generate!({
    path: "wit",
    world: "verge:edge/imports",
});

pub(crate) use self::verge::edge::{downstream, geo, runtime};
