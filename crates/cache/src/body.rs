//! Streaming a stored body (or a byte range of it) without copying it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A stored body, or the bytes `start..end` of it, as an `http_body::Body`.
#[derive(Debug, Clone)]
pub struct CachedBody {
    chunks: Arc<[Bytes]>,
    /// Next chunk to send.
    index: usize,
    /// Bytes still to skip at the front, then still to send.
    skip: u64,
    remaining: u64,
}

impl CachedBody {
    /// The whole body.
    pub fn new(chunks: Arc<[Bytes]>) -> CachedBody {
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        CachedBody {
            chunks,
            index: 0,
            skip: 0,
            remaining: len,
        }
    }

    /// The bytes `start..=end`.
    pub fn range(chunks: Arc<[Bytes]>, start: u64, end: u64) -> CachedBody {
        CachedBody {
            chunks,
            index: 0,
            skip: start,
            remaining: end + 1 - start,
        }
    }

    /// No body (HEAD, 304).
    pub fn empty() -> CachedBody {
        CachedBody {
            chunks: Arc::new([]),
            index: 0,
            skip: 0,
            remaining: 0,
        }
    }
}

impl Body for CachedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        while self.remaining > 0 {
            let Some(chunk) = self.chunks.get(self.index).cloned() else {
                break;
            };
            self.index += 1;
            let len = chunk.len() as u64;
            if self.skip >= len {
                self.skip -= len;
                continue;
            }
            let from = self.skip as usize;
            let to = (self.skip + self.remaining).min(len) as usize;
            self.skip = 0;
            self.remaining -= (to - from) as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk.slice(from..to)))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn chunks() -> Arc<[Bytes]> {
        vec![
            Bytes::from_static(b"hello "),
            Bytes::from_static(b"cached "),
            Bytes::from_static(b"world"),
        ]
        .into()
    }

    async fn collect(body: CachedBody) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn whole_and_ranges_across_chunks() {
        assert_eq!(
            collect(CachedBody::new(chunks())).await,
            b"hello cached world"
        );
        assert_eq!(collect(CachedBody::range(chunks(), 4, 8)).await, b"o cac");
        assert_eq!(collect(CachedBody::range(chunks(), 13, 17)).await, b"world");
        assert_eq!(collect(CachedBody::range(chunks(), 0, 0)).await, b"h");
        assert_eq!(
            CachedBody::range(chunks(), 4, 8).size_hint().exact(),
            Some(5)
        );
        assert!(collect(CachedBody::empty()).await.is_empty());
    }
}
