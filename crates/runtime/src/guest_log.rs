//! Guest stdout/stderr, turned into log lines tagged with the request id.

use std::sync::Arc;

use bytes::Bytes;

use crate::host::secrets::Redactor;
pub use verge_manifest::LogLevel;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Which of the guest's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestStream {
    Stdout,
    Stderr,
}

impl GuestStream {
    pub fn as_str(self) -> &'static str {
        match self {
            GuestStream::Stdout => "stdout",
            GuestStream::Stderr => "stderr",
        }
    }
}

/// Receives each complete line a guest writes. Implemented by whoever runs the runtime
/// (the server writes them as JSON log lines).
pub trait GuestLogSink: Send + Sync + 'static {
    fn guest_line(&self, request_id: &str, stream: GuestStream, line: &str);

    /// A line Verge writes about the request itself: `kind` is `egress` for a refused
    /// outbound request, `origin` for an origin that failed.
    fn host_line(&self, request_id: &str, kind: &str, line: &str) {
        let _ = (request_id, kind, line);
    }

    /// A `wasi:logging` line (already filtered by the app's level and redacted).
    fn log_line(&self, request_id: &str, level: LogLevel, context: &str, message: &str) {
        let _ = (request_id, level, context, message);
    }

    /// A line for a log endpoint that writes to Verge's own stream.
    fn endpoint_line(&self, request_id: &str, endpoint: &str, line: &str) {
        let _ = (request_id, endpoint, line);
    }
}

/// A line longer than this is cut into pieces, so a guest cannot make the host buffer
/// without end.
const MAX_LINE_BYTES: usize = 16 << 10;

#[derive(Clone)]
pub(crate) struct GuestOutput {
    pub(crate) request_id: Arc<str>,
    pub(crate) stream: GuestStream,
    pub(crate) sink: Arc<dyn GuestLogSink>,
    /// Takes the app's secret values out of each line.
    pub(crate) redactor: Option<Arc<Redactor>>,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter {
            out: self.clone(),
            pending: Vec::new(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only wasip3 guests use this; Verge serves wasi:http 0.2 guests today.
        Box::new(tokio::io::sink())
    }
}

struct LineWriter {
    out: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let line = match &self.out.redactor {
            Some(r) => r.redact(line),
            None => std::borrow::Cow::Borrowed(line),
        };
        self.out
            .sink
            .guest_line(&self.out.request_id, self.out.stream, &line);
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut rest = &bytes[..];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if self.pending.is_empty() {
                self.emit(&rest[..nl]);
            } else {
                self.pending.extend_from_slice(&rest[..nl]);
                let line = std::mem::take(&mut self.pending);
                self.emit(&line);
            }
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE_BYTES {
            let tail = self.pending.split_off(MAX_LINE_BYTES);
            let line = std::mem::replace(&mut self.pending, tail);
            self.emit(&line);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(String, &'static str, String)>>);

    impl GuestLogSink for Collect {
        fn guest_line(&self, request_id: &str, stream: GuestStream, line: &str) {
            let mut lines = self.0.lock().unwrap();
            lines.push((request_id.to_owned(), stream.as_str(), line.to_owned()));
        }
    }

    fn writer(sink: &Arc<Collect>) -> LineWriter {
        LineWriter {
            out: GuestOutput {
                request_id: "req-1".into(),
                stream: GuestStream::Stderr,
                sink: sink.clone(),
                redactor: None,
            },
            pending: Vec::new(),
        }
    }

    fn lines(sink: &Collect) -> Vec<String> {
        sink.0.lock().unwrap().iter().map(|l| l.2.clone()).collect()
    }

    #[test]
    fn splits_writes_into_lines_across_write_boundaries() {
        let sink = Arc::new(Collect::default());
        let mut w = writer(&sink);
        w.write(Bytes::from_static(b"hello wo")).unwrap();
        assert!(lines(&sink).is_empty(), "no line before its newline");
        w.write(Bytes::from_static(b"rld\r\nsecond\nthird"))
            .unwrap();
        assert_eq!(lines(&sink), ["hello world", "second"]);
        drop(w);
        assert_eq!(
            lines(&sink),
            ["hello world", "second", "third"],
            "flushed on drop"
        );
        let first = &sink.0.lock().unwrap()[0];
        assert_eq!((first.0.as_str(), first.1), ("req-1", "stderr"));
    }

    #[test]
    fn cuts_overlong_lines_instead_of_buffering_them() {
        let sink = Arc::new(Collect::default());
        let mut w = writer(&sink);
        w.write(Bytes::from(vec![b'x'; MAX_LINE_BYTES * 2 + 10]))
            .unwrap();
        let got = lines(&sink);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|l| l.len() == MAX_LINE_BYTES));
        assert_eq!(w.pending.len(), 10);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let sink = Arc::new(Collect::default());
        let mut w = writer(&sink);
        w.write(Bytes::from_static(b"bad \xff byte\n")).unwrap();
        assert_eq!(lines(&sink), ["bad \u{fffd} byte"]);
    }
}
