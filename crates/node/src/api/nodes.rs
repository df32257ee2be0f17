//! `GET /admin/v1/nodes`: the fleet's nodes as their heartbeats show them (a single
//! node lists itself).

use std::pin::Pin;
use std::sync::Arc;

use hyper::http::{Method, StatusCode};
use verge_server::admin::{AdminRequest, AdminRoutes, Need, Principal, Reply, Route, forbidden};

use super::{refuse, reply};
use crate::Node;
use crate::wire::Nodes;

pub(super) struct NodesApi(pub(super) Arc<Node>);

impl AdminRoutes for NodesApi {
    fn routes(&self) -> &'static [Route] {
        const ROUTES: &[Route] = &[Route::new("/admin/v1/nodes", &[Method::GET])];
        ROUTES
    }

    fn handle(
        &self,
        req: AdminRequest,
        principal: Principal,
    ) -> Pin<Box<dyn std::future::Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            if let Err(why) = principal.check(Need {
                service: None,
                write: false,
            }) {
                return forbidden(&why);
            }
            match (req.method(), req.uri().path().trim_end_matches('/')) {
                (&Method::GET, "/admin/v1/nodes") => reply(
                    StatusCode::OK,
                    &Nodes {
                        nodes: self.0.nodes(),
                    },
                ),
                _ => refuse(StatusCode::NOT_FOUND, "no such route"),
            }
        })
    }
}
