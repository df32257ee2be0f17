//! Outbound HTTP policy. Backends arrive with their own host API; until a manifest
//! declares one, a guest reaches nothing.

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Refuses every outgoing request with `HTTP-request-denied`.
#[derive(Debug, Default)]
pub(crate) struct DenyEgress;

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

impl WasiHttpHooks for DenyEgress {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}
