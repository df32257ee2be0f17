//! The response body type the server owns: whatever produced a response (a guest, the
//! cache, the server itself), it reaches hyper as a [`ServerBody`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use verge_cache::{CachedBody, Writer};
use verge_runtime::ResponseBody;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body.
pub enum ServerBody {
    /// Streamed from the guest as it writes.
    Guest(ResponseBody),
    /// From the guest, and copied into the cache on the way (boxed: only misses pay
    /// for its size).
    Filling(Box<Tee>),
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
            ServerBody::Filling(tee) => Pin::new(tee).poll_frame(cx),
            ServerBody::Cached(body) => Pin::new(body).poll_frame(cx).map_err(|e| match e {}),
            ServerBody::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ServerBody::Guest(body) => body.is_end_stream(),
            ServerBody::Filling(tee) => tee.inner.is_end_stream(),
            ServerBody::Cached(body) => body.is_end_stream(),
            ServerBody::Text(text) => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ServerBody::Guest(body) => body.size_hint(),
            ServerBody::Filling(tee) => tee.inner.size_hint(),
            ServerBody::Cached(body) => body.size_hint(),
            ServerBody::Text(text) => {
                SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64))
            }
        }
    }
}

/// A guest's body passed on while a copy goes into the cache. The object is stored
/// when the body ends cleanly; an error, or the body being dropped first (the client
/// went away), stores nothing and hands the fill over to a waiting request.
pub struct Tee {
    inner: ResponseBody,
    writer: Option<Writer>,
    /// The body's length when known: hyper stops polling once it has that many bytes.
    length: Option<u64>,
}

impl Tee {
    /// `length`: what the response's `Content-Length` announced, if anything.
    pub fn new(inner: ResponseBody, writer: Writer, length: Option<u64>) -> Tee {
        Tee {
            length: length.or(inner.size_hint().exact()),
            inner,
            writer: Some(writer),
        }
    }

    /// Reads the rest of the body into the cache (for a client that got a `304`).
    pub async fn drain(mut self) {
        use http_body_util::BodyExt;
        while let Some(frame) = self.frame().await {
            if frame.is_err() {
                return;
            }
        }
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(writer)) = (frame.data_ref(), self.writer.as_mut())
                    && writer.write(data.clone()).is_err()
                {
                    // Too large to cache: the client still gets all of it.
                    self.writer = None;
                }
                // hyper stops polling a body that has ended or sent all it announced.
                let complete = self.inner.is_end_stream()
                    || self
                        .writer
                        .as_ref()
                        .is_some_and(|w| Some(w.written()) == self.length);
                if complete && let Some(writer) = self.writer.take() {
                    writer.finish();
                }
            }
            Poll::Ready(None) => {
                if let Some(writer) = self.writer.take() {
                    writer.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => self.writer = None,
            Poll::Pending => {}
        }
        polled.map_err(Into::into)
    }
}
