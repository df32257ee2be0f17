//! Bodies handed to guests in fewer, larger pieces.
//!
//! A guest moves a body with one `wasi:io` call per piece the host has ready (a
//! `splice`, or a `read`), and each call costs guest CPU time in bindings and
//! call overhead. hyper yields a body in socket-read-sized frames (often 8–16 KiB), so a
//! 1 GiB upload took ~65,000 calls and ~35 ms of the 50 ms CPU budget. Gathering the
//! frames that are already there into one (up to [`MAX_PIECE`]) cuts that by an order
//! of magnitude; when only one frame is ready it passes through without a copy.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// The most bytes gathered into one piece: what one `wasi:http` outgoing body chunk
/// holds, so a splice can move a whole piece at once.
pub(crate) const MAX_PIECE: usize = 1 << 20;

/// Wraps a body so that data frames ready at the same time come out as one.
pub(crate) struct Coalesced<B: Body> {
    inner: B,
    /// A frame (or the end) that arrived while gathering, returned next.
    held: Option<Option<Result<Frame<Bytes>, B::Error>>>,
}

impl<B: Body> Coalesced<B> {
    pub(crate) fn new(inner: B) -> Self {
        Coalesced { inner, held: None }
    }
}

impl<B> Body for Coalesced<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(held) = self.held.take() {
            return Poll::Ready(held);
        }
        let first = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let first = match first.into_data() {
            Ok(data) => data,
            Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
        };
        let mut gathered: Option<BytesMut> = None;
        let mut len = first.len();
        while len < MAX_PIECE {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) if frame.is_data() => {
                    let data = frame.into_data().expect("checked to be data");
                    let buf = gathered.get_or_insert_with(|| {
                        let mut buf = BytesMut::with_capacity(MAX_PIECE.max(first.len()));
                        buf.extend_from_slice(&first);
                        buf
                    });
                    buf.extend_from_slice(&data);
                    len += data.len();
                }
                Poll::Ready(other) => {
                    self.held = Some(other);
                    break;
                }
                Poll::Pending => break,
            }
        }
        let data = gathered.map_or(first, BytesMut::freeze);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.held, Some(None)) || (self.held.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    type Item = Result<Frame<Bytes>, std::io::Error>;

    fn frames(items: Vec<Item>) -> StreamBody<futures::stream::Iter<std::vec::IntoIter<Item>>> {
        StreamBody::new(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn ready_frames_are_gathered_and_trailers_and_errors_kept_in_place() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-sum", "1".parse().unwrap());
        let body = frames(vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Ok(Frame::data(Bytes::from_static(b"cd"))),
            Ok(Frame::trailers(trailers.clone())),
        ]);
        let mut body = Coalesced::new(body);
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "abcd");
        let second = body.frame().await.unwrap().unwrap();
        assert_eq!(second.into_trailers().unwrap(), trailers);
        assert!(body.frame().await.is_none());

        let body = frames(vec![
            Ok(Frame::data(Bytes::from_static(b"ok"))),
            Err(std::io::Error::other("cut")),
        ]);
        let mut body = Coalesced::new(body);
        assert_eq!(
            body.frame().await.unwrap().unwrap().into_data().unwrap(),
            "ok"
        );
        assert!(
            body.frame().await.unwrap().is_err(),
            "the error is not lost"
        );
    }

    #[tokio::test]
    async fn pieces_stop_growing_at_the_maximum() {
        let chunk = Bytes::from(vec![1u8; 256 << 10]);
        let body = frames((0..8).map(|_| Ok(Frame::data(chunk.clone()))).collect());
        let mut body = Coalesced::new(body);
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, vec![MAX_PIECE, MAX_PIECE]);
    }
}
