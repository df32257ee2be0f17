//! `verge:edge/http-body`: a response body the host passes on by itself.
//!
//! A handler that answers with an origin's body untouched (geo-router, an API
//! filter) would otherwise splice it chunk by chunk through `wasi:io` calls, and its
//! instance would live until the last byte left. Here the stream becomes the
//! response's hyper body directly: the instance is torn down when the handler
//! returns, and no chunk goes near the guest.

use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi_http::Error;
use wasmtime_wasi_http::p2::body::{HostIncomingBody, HyperOutgoingBody};
use wasmtime_wasi_http::p2::types::HostOutgoingResponse;
use wasmtime_wasi_io::streams::{DynInputStream, StreamError};

use super::bindings::http_body::Host;

/// Bytes asked of the stream per read: what one chunk to the client may carry.
const READ_SIZE: usize = 64 << 10;

/// The view a guest call gets.
pub(crate) struct HttpBodyView<'a> {
    pub(crate) table: &'a mut ResourceTable,
}

impl HasData for HttpBodyView<'static> {
    type Data<'a> = HttpBodyView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> HttpBodyView<'_>,
) -> wasmtime::Result<()> {
    super::bindings::http_body::add_to_linker::<T, HttpBodyView<'static>>(linker, view)
}

impl Host for HttpBodyView<'_> {
    fn pass_through(
        &mut self,
        response: Resource<HostOutgoingResponse>,
        stream: Resource<DynInputStream>,
        body: Option<Resource<HostIncomingBody>>,
    ) -> wasmtime::Result<Result<(), String>> {
        // The stream is the body's child: it goes first.
        let stream = self.table.delete(stream)?;
        let body = body.map(|b| self.table.delete(b)).transpose()?;
        let response = self.table.get_mut(&response)?;
        if response.body.is_some() {
            return Ok(Err("the response's body was already taken".into()));
        }
        response.body = Some(stream_body(stream, body));
        Ok(Ok(()))
    }
}

/// The rest of `stream` as a hyper body; `owner` (the incoming body the stream was
/// taken from, with the task that feeds it) lives as long as the stream.
fn stream_body(stream: DynInputStream, owner: Option<HostIncomingBody>) -> HyperOutgoingBody {
    let chunks = futures::stream::unfold(Some((stream, owner)), |state| async move {
        let (mut stream, owner) = state?;
        loop {
            match stream.read(READ_SIZE) {
                Ok(bytes) if bytes.is_empty() => stream.ready().await,
                Ok(bytes) => return Some((Ok(Frame::data(bytes)), Some((stream, owner)))),
                Err(StreamError::Closed) => return None,
                Err(StreamError::LastOperationFailed(e) | StreamError::Trap(e)) => {
                    // The origin's own error (a timeout, a reset) when it is one.
                    let error = e
                        .downcast::<Error>()
                        .unwrap_or_else(|e| Error::InternalError(Some(format!("{e:#}"))));
                    return Some((Err(error), None));
                }
            }
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}
