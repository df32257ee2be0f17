//! The guest stage: one request, one fresh instance.

use bytes::Bytes;
use http::Request;
use verge_runtime::{Execution, RequestContext};

use super::Exchange;

/// Runs the exchange's app on `req`.
pub(super) async fn run<B>(exchange: &Exchange, req: Request<B>) -> Execution
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<verge_runtime::BodyError>,
{
    let ctx = RequestContext {
        request_id: exchange.request_id.clone(),
        log: exchange.routed.guest_log.clone(),
        client_addr: Some(exchange.client_addr),
        scheme: if exchange.tls.is_some() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        },
        tls: exchange.tls.clone(),
    };
    exchange.routed.app.handle(req, ctx).await
}
