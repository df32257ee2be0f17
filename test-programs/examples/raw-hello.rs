//! A handler written against the plain `wasip2` bindings, without the Verge SDK: the
//! kind of component `wasmtime serve` runs.
use std::io::Write;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Handler;

impl Guest for Handler {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body");
        ResponseOutparam::set(response_out, Ok(response));
        {
            let mut out = body.write().expect("stream");
            out.write_all(b"hello").expect("write");
            out.flush().expect("flush");
        }
        OutgoingBody::finish(body, None).expect("finish");
    }
}

wasip2::http::proxy::export!(Handler);
