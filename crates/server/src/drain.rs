//! Lingering reads of request bodies a guest did not consume.
//!
//! A guest may answer without reading the request body. If the server then closed the
//! connection with unread bytes in flight, the kernel would reset it and the client,
//! still uploading, would get a broken pipe instead of the response. So when the body
//! is dropped unfinished, it is read to the end (and discarded) in the background, up
//! to a byte and time budget, like nginx's lingering close.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Most bytes read and discarded after the guest is done with a body.
const DRAIN_BYTES: u64 = 64 << 20;
/// Longest time spent doing so.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// An incoming body that is drained in the background if dropped unfinished.
pub(crate) struct DrainOnDrop {
    inner: Option<Incoming>,
}

impl DrainOnDrop {
    pub(crate) fn new(body: Incoming) -> Self {
        Self { inner: Some(body) }
    }

    /// No body (a request the server makes itself, such as a cache refresh).
    pub(crate) fn empty() -> Self {
        Self { inner: None }
    }
}

impl Body for DrainOnDrop {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let drain = async {
                let mut seen: u64 = 0;
                while let Some(Ok(frame)) = body.frame().await {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if seen > DRAIN_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        });
    }
}
