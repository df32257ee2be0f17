//! The response body type the server owns: whatever produced a response (a guest, the
//! cache, the server itself), it reaches hyper as a [`ServerBody`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use verge_cache::CachedBody;
use verge_cache::through::Filling;
use verge_runtime::ResponseBody;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body.
pub enum ServerBody {
    /// Streamed from the guest as it writes.
    Guest(ResponseBody),
    /// From the guest through the cache, copied into it on the way when it may be
    /// stored (boxed: only misses pay for its size).
    Filling(Box<Filling<ResponseBody>>),
    /// From the cache.
    Cached(CachedBody),
    /// Written by the server (errors, refusals).
    Text(Option<Bytes>),
}

impl ServerBody {
    pub fn text(text: impl Into<Bytes>) -> ServerBody {
        ServerBody::Text(Some(text.into()))
    }

    pub fn empty() -> ServerBody {
        ServerBody::Text(None)
    }
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ServerBody::Guest(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ServerBody::Filling(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ServerBody::Cached(body) => Pin::new(body).poll_frame(cx).map_err(|e| match e {}),
            ServerBody::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ServerBody::Guest(body) => body.is_end_stream(),
            ServerBody::Filling(body) => body.is_end_stream(),
            ServerBody::Cached(body) => body.is_end_stream(),
            ServerBody::Text(text) => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ServerBody::Guest(body) => body.size_hint(),
            ServerBody::Filling(body) => body.size_hint(),
            ServerBody::Cached(body) => body.size_hint(),
            ServerBody::Text(text) => {
                SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64))
            }
        }
    }
}
