//! `GET /admin/v1/nodes`: the fleet's nodes as their heartbeats show them (a single
//! node lists itself). A service's token gets the same list with only its service in
//! what each node serves.

use std::pin::Pin;
use std::sync::Arc;

use hyper::http::{Method, StatusCode};
use verge_server::admin::{
    AdminRequest, AdminRoutes, Need, Principal, Reply, Route, Scope, forbidden,
};

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
            // A service's token sees where its service runs, and nothing of the
            // others.
            let only = match &principal.scope {
                Scope::Node => None,
                Scope::Service(service) => Some(service.clone()),
            };
            if let Err(why) = principal.check(Need {
                service: only.as_deref(),
                write: false,
            }) {
                return forbidden(&why);
            }
            match (req.method(), req.uri().path().trim_end_matches('/')) {
                (&Method::GET, "/admin/v1/nodes") => {
                    let mut nodes = self.0.nodes();
                    if let Some(service) = &only {
                        for node in &mut nodes {
                            node.heartbeat.services.retain(|name, _| name == service);
                            node.heartbeat.tailing.retain(|name| name == service);
                        }
                    }
                    let revision = *self.0.control.store().revision().borrow();
                    reply(StatusCode::OK, &Nodes { nodes, revision })
                }
                _ => refuse(StatusCode::NOT_FOUND, "no such route"),
            }
        })
    }
}
