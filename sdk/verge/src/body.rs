//! Bodies: bytes in memory, a reader, or a stream arriving from the host (the client's
//! request body, an origin's response body) which is passed on without being copied
//! through guest memory.

use std::fmt;
use std::io::{self, Read, Write};

use wasip2::http::types::{IncomingBody as WasiIncomingBody, OutgoingBody, OutgoingResponse};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use crate::Error;

/// A host stream's failure as an I/O error.
fn stream_failed(e: wasip2::io::error::Error) -> io::Error {
    io::Error::other(e.to_debug_string())
}

/// The most `blocking-write-and-flush` takes in one call.
const SMALL_WRITE: usize = 4096;

/// A message body.
///
/// - Bytes ([`From`] `Vec<u8>`, `String`, `&str`, `&[u8]`): sent with a
///   `content-length`.
/// - A reader ([`Body::from_reader`]): streamed as it is read.
/// - An incoming stream ([`IncomingBody`]: the client's request body, or the body of
///   a response from an origin): when passed on untouched it never crosses into the
///   guest. As the handler's response body it is handed to the host, which forwards
///   it after the handler returns (`verge:edge/http-body`); as a request body to an
///   origin it is spliced inside the host (`wasi:io/streams`). Either way a gigabyte
///   costs the guest almost no CPU.
pub struct Body(pub(crate) BodyInner);

pub(crate) enum BodyInner {
    Bytes(Vec<u8>),
    Reader(Box<dyn Read>),
    Incoming(IncomingBody),
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
            _ => None,
        }
    }

    /// The length, when it is known without reading.
    pub fn len_hint(&self) -> Option<u64> {
        self.as_bytes().map(|b| b.len() as u64)
    }

    /// Reads the whole body into memory.
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self.0 {
            BodyInner::Bytes(b) => Ok(b),
            BodyInner::Reader(mut r) => {
                let mut buf = Vec::new();
                r.read_to_end(&mut buf)?;
                Ok(buf)
            }
            BodyInner::Incoming(i) => i.into_bytes(),
        }
    }

    /// Reads the whole body as UTF-8 text.
    pub fn into_string(self) -> Result<String, Error> {
        Ok(String::from_utf8(self.into_bytes()?)?)
    }

    /// Reads the whole body and parses it as JSON.
    #[cfg(feature = "json")]
    pub fn into_json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        Ok(serde_json::from_slice(&self.into_bytes()?)?)
    }

    /// Writes the body into a `wasi:http` outgoing body and finishes it.
    pub(crate) fn write_to(self, outgoing: OutgoingBody) -> Result<(), Error> {
        {
            let mut stream = outgoing
                .write()
                .map_err(|()| anyhow::anyhow!("the body stream was already taken"))?;
            self.write_into(&mut stream)?;
        }
        OutgoingBody::finish(outgoing, None)?;
        Ok(())
    }

    /// Writes the body into a host stream: an incoming stream is spliced inside the
    /// host.
    pub(crate) fn write_into(self, stream: &mut OutputStream) -> io::Result<()> {
        match self.0 {
            // One host call instead of check-write, write and flush: a small body (up
            // to the 4 KiB `wasi:io` takes at once) is what most handlers answer with.
            BodyInner::Bytes(bytes) if bytes.len() <= SMALL_WRITE => {
                return match stream.blocking_write_and_flush(&bytes) {
                    Ok(()) => Ok(()),
                    Err(StreamError::Closed) => Err(io::ErrorKind::BrokenPipe.into()),
                    Err(StreamError::LastOperationFailed(e)) => Err(stream_failed(e)),
                };
            }
            BodyInner::Bytes(bytes) => stream.write_all(&bytes)?,
            BodyInner::Reader(mut reader) => {
                io::copy(&mut reader, stream)?;
            }
            BodyInner::Incoming(incoming) => incoming.splice_into(stream)?,
        }
        stream.flush()
    }
}

/// Reading a body streams it: an incoming body as it arrives, bytes from memory.
impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            BodyInner::Reader(r) => r.read(buf),
            BodyInner::Incoming(i) => i.read(buf),
            BodyInner::Bytes(bytes) => {
                let bytes = std::mem::take(bytes);
                self.0 = BodyInner::Reader(Box::new(io::Cursor::new(bytes)));
                self.read(buf)
            }
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
            BodyInner::Reader(_) => f.write_str("Body(reader)"),
            BodyInner::Incoming(_) => f.write_str("Body(incoming stream)"),
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

impl From<IncomingBody> for Body {
    fn from(body: IncomingBody) -> Self {
        Body(BodyInner::Incoming(body))
    }
}

/// A body arriving from the host: the client's request body, or an origin's response
/// body. Read it ([`Read`]) or pass it on as a [`Body`] (forwarded host-side).
pub struct IncomingBody {
    // Field order matters: the stream must be dropped before the body it belongs to.
    stream: Option<InputStream>,
    _body: Option<WasiIncomingBody>,
}

/// The client's request body (an [`IncomingBody`]).
pub type RequestBody = IncomingBody;

impl IncomingBody {
    pub(crate) fn new(body: Option<WasiIncomingBody>) -> Self {
        let stream = body.as_ref().and_then(|b| b.stream().ok());
        IncomingBody {
            stream,
            _body: body,
        }
    }

    /// A body over a host stream that belongs to no HTTP message (a KV value).
    pub(crate) fn from_stream(stream: InputStream) -> Self {
        IncomingBody {
            stream: Some(stream),
            _body: None,
        }
    }

    /// Reads the whole body into memory.
    pub fn into_bytes(mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Makes the rest of this body `response`'s body, which the host passes on by
    /// itself once the response is set. Without a stream the body stays empty.
    pub(crate) fn pass_through(mut self, response: &OutgoingResponse) -> Result<(), Error> {
        let Some(stream) = self.stream.take() else {
            return Ok(());
        };
        crate::edge::http_body::pass_through(response, stream, self._body.take())
            .map_err(|why| anyhow::anyhow!("passing the body on failed: {why}"))
    }

    /// Moves the rest of this body into `output` inside the host.
    fn splice_into(self, output: &OutputStream) -> io::Result<()> {
        let Some(input) = &self.stream else {
            return Ok(());
        };
        loop {
            match output.blocking_splice(input, 1 << 20) {
                Ok(_) => {}
                Err(StreamError::Closed) => return Ok(()),
                Err(StreamError::LastOperationFailed(e)) => return Err(stream_failed(e)),
            }
        }
    }
}

impl Read for IncomingBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.stream {
            Some(stream) => stream.read(buf),
            None => Ok(0),
        }
    }
}

impl fmt::Debug for IncomingBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IncomingBody")
    }
}
