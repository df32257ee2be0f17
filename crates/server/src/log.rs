//! JSON log lines on stdout: one access line per request, and guest output lines.
//!
//! Lines are formatted on the request's task but written by one background thread, so
//! a slow stdout never stalls request handling. The thread writes what is queued, then
//! pauses briefly so that under load lines accumulate and are written in one batch,
//! without waking the thread for every line.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use verge_runtime::{GuestLogSink, GuestStream, Report};

/// How long the writer waits after a batch; bounds how late a line can appear.
const BATCH_PAUSE: Duration = Duration::from_millis(2);

/// Sends log lines to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Vec<u8>>,
}

impl LogWriter {
    /// Starts a writer thread writing to `out` (stdout in the CLI).
    pub fn spawn(out: impl Write + Send + 'static) -> LogWriter {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
        std::thread::Builder::new()
            .name("verge-log".into())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(&line);
                    while let Ok(line) = rx.try_recv() {
                        let _ = out.write_all(&line);
                    }
                    let _ = out.flush();
                    std::thread::sleep(BATCH_PAUSE);
                }
            })
            .expect("spawning the log writer thread");
        LogWriter { tx }
    }

    fn write<T: Serialize>(&self, record: &T) {
        let mut line = Vec::with_capacity(256);
        if serde_json::to_writer(&mut line, record).is_ok() {
            line.push(b'\n');
            let _ = self.tx.send(line);
        }
    }

    /// Writes the access line of a finished request.
    pub fn access(&self, record: &AccessRecord<'_>) {
        self.write(record);
    }

    /// A guest-output sink tagging lines with `app`.
    pub fn guest_sink(&self, app: &str) -> Arc<dyn GuestLogSink> {
        Arc::new(GuestLines {
            writer: self.clone(),
            app: app.into(),
        })
    }
}

/// What the access line says about one request.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    pub ts: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub request_id: &'a str,
    pub app: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration_us: u64,
    pub guest_cpu_us: u64,
    pub peak_memory_bytes: u64,
    pub outcome: &'static str,
    /// The W3C trace id the request belongs to (incoming `traceparent`, or new).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
    /// Outbound requests the guest sent.
    pub subrequests: u32,
    /// Time spent waiting for origins' response heads.
    pub origin_wait_us: u64,
    /// Why the request failed, for humans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The full error chain with the Wasm backtrace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<&'a str>,
}

impl<'a> AccessRecord<'a> {
    /// The record for a request whose guest has finished.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        request_id: &'a str,
        app: &'a str,
        method: &'a str,
        path: &'a str,
        status: u16,
        duration_us: u64,
        report: &'a Report,
    ) -> Self {
        AccessRecord {
            ts: timestamp(),
            kind: "access",
            request_id,
            app,
            method,
            path,
            status,
            duration_us,
            guest_cpu_us: report.guest_cpu.as_micros() as u64,
            peak_memory_bytes: report.peak_memory_bytes,
            outcome: report.outcome_code(),
            trace_id: report.trace_id.as_deref(),
            subrequests: report.subrequests,
            origin_wait_us: report.origin_wait.as_micros() as u64,
            error: report.outcome.as_ref().err().map(|f| f.describe()),
            backtrace: report.detail.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct GuestRecord<'a> {
    ts: String,
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: &'a str,
    app: &'a str,
    stream: &'static str,
    message: &'a str,
}

/// A line Verge writes about one request (a refused outbound request, an origin
/// failure).
#[derive(Serialize)]
struct HostRecord<'a> {
    ts: String,
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: &'a str,
    app: &'a str,
    event: &'a str,
    message: &'a str,
}

struct GuestLines {
    writer: LogWriter,
    app: Box<str>,
}

impl GuestLogSink for GuestLines {
    fn guest_line(&self, request_id: &str, stream: GuestStream, line: &str) {
        self.writer.write(&GuestRecord {
            ts: timestamp(),
            kind: "guest",
            request_id,
            app: &self.app,
            stream: stream.as_str(),
            message: line,
        });
    }

    fn host_line(&self, request_id: &str, kind: &str, line: &str) {
        self.writer.write(&HostRecord {
            ts: timestamp(),
            kind: "host",
            request_id,
            app: &self.app,
            event: kind,
            message: line,
        });
    }
}

fn timestamp() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}
