//! Bodies: the request body as a stream, and response bodies from bytes or readers.

use std::fmt;
use std::io::{self, Read};

use wasip2::http::types::IncomingBody;
use wasip2::io::streams::InputStream;

/// A response body: bytes in memory, or a reader streamed to the client as it is read.
pub struct Body(pub(crate) BodyInner);

pub(crate) enum BodyInner {
    Bytes(Vec<u8>),
    Reader(Box<dyn Read>),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Body(BodyInner::Bytes(Vec::new()))
    }

    /// A body streamed from `reader` in chunks; it is never held whole in memory.
    pub fn from_reader(reader: impl Read + 'static) -> Self {
        Body(BodyInner::Reader(Box::new(reader)))
    }

    /// The body's bytes, when they are in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            BodyInner::Bytes(b) => Some(b),
            BodyInner::Reader(_) => None,
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            BodyInner::Bytes(b) => write!(f, "Body({} bytes)", b.len()),
            BodyInner::Reader(_) => f.write_str("Body(stream)"),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body(BodyInner::Bytes(bytes))
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Self {
        Body(BodyInner::Bytes(bytes.to_vec()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body(BodyInner::Bytes(text.into_bytes()))
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Self {
        Body(BodyInner::Bytes(text.as_bytes().to_vec()))
    }
}

impl From<RequestBody> for Body {
    fn from(body: RequestBody) -> Self {
        Body::from_reader(body)
    }
}

/// The body of an incoming request, read as it arrives. Implements [`Read`].
pub struct RequestBody {
    // Field order matters: the stream must be dropped before the body it belongs to.
    stream: Option<InputStream>,
    _body: Option<IncomingBody>,
}

impl RequestBody {
    pub(crate) fn new(body: Option<IncomingBody>) -> Self {
        let stream = body.as_ref().and_then(|b| b.stream().ok());
        RequestBody {
            stream,
            _body: body,
        }
    }

    /// Reads the whole body into memory.
    pub fn into_bytes(mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_to_end(&mut buf)?;
        Ok(buf)
    }
}

impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.stream {
            Some(stream) => stream.read(buf),
            None => Ok(0),
        }
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestBody")
    }
}
