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

use bytes::Bytes;
use serde::Serialize;
use verge_runtime::{GuestLogSink, GuestStream, LogLevel, Report};

use crate::log_tap::{LogTap, TapLine};

/// How long the writer waits after a batch; bounds how late a line can appear.
const BATCH_PAUSE: Duration = Duration::from_millis(2);

/// Sends log lines to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<(Output, Vec<u8>)>,
    console: Option<Console>,
    tap: Arc<LogTap>,
}

/// Which stream a line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The JSON log stream.
    Json,
    /// The human-readable console (stderr).
    Console,
}

/// Shows guest log lines live on stderr for a person watching `verge serve`:
/// `12:04:05.123  WARN checkout: card declined  [19b3482d000000000007]`, with the
/// level coloured unless `colour` is off.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    pub colour: bool,
}

impl Console {
    /// One console line (with its newline).
    pub fn format(
        &self,
        level: LogLevel,
        context: &str,
        message: &str,
        request_id: &str,
    ) -> String {
        let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let time = now.get(11..23).unwrap_or(&now);
        let name = level.as_str().to_uppercase();
        let level_text = if self.colour {
            let code = match level {
                LogLevel::Trace => "2",
                LogLevel::Debug => "34",
                LogLevel::Info => "32",
                LogLevel::Warn => "33",
                LogLevel::Error => "31",
                LogLevel::Critical => "1;31",
            };
            format!("\x1b[{code}m{name:>8}\x1b[0m")
        } else {
            format!("{name:>8}")
        };
        let context = if context.is_empty() {
            String::new()
        } else {
            format!("{context}: ")
        };
        let id = if self.colour {
            format!("\x1b[2m[{request_id}]\x1b[0m")
        } else {
            format!("[{request_id}]")
        };
        format!("{time} {level_text} {context}{message}  {id}\n")
    }
}

impl LogWriter {
    /// Starts a writer thread writing JSON lines to `out` (stdout in the CLI).
    pub fn spawn(out: impl Write + Send + 'static) -> LogWriter {
        let (tx, rx) = mpsc::channel::<(Output, Vec<u8>)>();
        let mut json = std::io::BufWriter::with_capacity(64 << 10, out);
        std::thread::Builder::new()
            .name("verge-log".into())
            .spawn(move || {
                let write = |json: &mut std::io::BufWriter<_>,
                             (target, line): (Output, Vec<u8>)| {
                    let _ = match target {
                        Output::Json => json.write_all(&line),
                        Output::Console => std::io::stderr().write_all(&line),
                    };
                };
                while let Ok(item) = rx.recv() {
                    write(&mut json, item);
                    while let Ok(item) = rx.try_recv() {
                        write(&mut json, item);
                    }
                    let _ = json.flush();
                    std::thread::sleep(BATCH_PAUSE);
                }
            })
            .expect("spawning the log writer thread");
        LogWriter {
            tx,
            console: None,
            tap: Arc::default(),
        }
    }

    /// Also shows guest log lines on stderr as they come (for a terminal).
    pub fn with_console(mut self, console: Console) -> LogWriter {
        self.console = Some(console);
        self
    }

    /// Where tails (`verge logs --tail`) watch the lines written here.
    pub fn tap(&self) -> &Arc<LogTap> {
        &self.tap
    }

    /// Writes `record`, a line of `app` about `request_id` (answered with `status`).
    fn write<T: Serialize>(&self, app: &str, request_id: &str, status: Option<u16>, record: &T) {
        let mut line = Vec::with_capacity(256);
        if serde_json::to_writer(&mut line, record).is_ok() {
            if self.tap.watched() {
                self.tap.offer(TapLine {
                    app: app.into(),
                    request_id: request_id.into(),
                    status,
                    json: Bytes::copy_from_slice(&line),
                    node: None,
                });
            }
            line.push(b'\n');
            let _ = self.tx.send((Output::Json, line));
        }
    }

    pub fn access(&self, record: &AccessRecord<'_>) {
        self.write(record.app, record.request_id, Some(record.status), record);
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
    /// Of those, answered by the read-through cache without reaching the origin.
    #[serde(skip_serializing_if = "is_zero")]
    pub subrequests_cached: u32,
    /// Time spent waiting for origins' response heads.
    pub origin_wait_us: u64,
    /// Subrequests that got no response from their origin.
    #[serde(skip_serializing_if = "is_zero")]
    pub origin_errors: u32,
    /// Why the request failed, for humans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The full error chain with the Wasm backtrace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<&'a str>,
    /// What the HTTP cache did (`hit`, `miss`, `stale`…), for apps that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
}

impl<'a> AccessRecord<'a> {
    /// The record for a finished request; `report` is `None` when no guest ran (a
    /// cache hit).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        request_id: &'a str,
        app: &'a str,
        method: &'a str,
        path: &'a str,
        status: u16,
        duration_us: u64,
        report: Option<&'a Report>,
        cache: Option<&'static str>,
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
            guest_cpu_us: report.map_or(0, |r| r.guest_cpu.as_micros() as u64),
            peak_memory_bytes: report.map_or(0, |r| r.peak_memory_bytes),
            outcome: report.map_or("ok", Report::outcome_code),
            trace_id: report.and_then(|r| r.trace_id.as_deref()),
            subrequests: report.map_or(0, |r| r.subrequests),
            subrequests_cached: report.map_or(0, |r| r.cached_subrequests),
            origin_wait_us: report.map_or(0, |r| r.origin_wait.as_micros() as u64),
            origin_errors: report.map_or(0, |r| r.origin_errors),
            error: report.and_then(|r| r.outcome.as_ref().err().map(|f| f.describe())),
            backtrace: report.and_then(|r| r.detail.as_deref()),
            cache,
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
        self.writer.write(
            &self.app,
            request_id,
            None,
            &GuestRecord {
                ts: timestamp(),
                kind: "guest",
                request_id,
                app: &self.app,
                stream: stream.as_str(),
                message: line,
            },
        );
    }

    fn host_line(&self, request_id: &str, kind: &str, line: &str) {
        self.writer.write(
            &self.app,
            request_id,
            None,
            &HostRecord {
                ts: timestamp(),
                kind: "host",
                request_id,
                app: &self.app,
                event: kind,
                message: line,
            },
        );
    }

    fn log_line(&self, request_id: &str, level: LogLevel, context: &str, message: &str) {
        self.writer.write(
            &self.app,
            request_id,
            None,
            &LogRecord {
                ts: timestamp(),
                kind: "log",
                request_id,
                app: &self.app,
                level: level.as_str(),
                context,
                message,
            },
        );
        if let Some(console) = &self.writer.console {
            let line = console.format(level, context, message, request_id);
            let _ = self.writer.tx.send((Output::Console, line.into_bytes()));
        }
    }

    fn endpoint_line(&self, request_id: &str, endpoint: &str, line: &str) {
        self.writer.write(
            &self.app,
            request_id,
            None,
            &EndpointRecord {
                ts: timestamp(),
                kind: "endpoint",
                request_id,
                app: &self.app,
                endpoint,
                message: line,
            },
        );
        if let Some(console) = &self.writer.console {
            let line = console.format(LogLevel::Info, endpoint, line, request_id);
            let _ = self.writer.tx.send((Output::Console, line.into_bytes()));
        }
    }
}

#[derive(Serialize)]
struct LogRecord<'a> {
    ts: String,
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: &'a str,
    app: &'a str,
    level: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    context: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct EndpointRecord<'a> {
    ts: String,
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: &'a str,
    app: &'a str,
    endpoint: &'a str,
    message: &'a str,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn timestamp() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_are_coloured_by_level_only_when_asked() {
        let plain =
            Console { colour: false }.format(LogLevel::Warn, "checkout", "card declined", "req-7");
        assert!(
            plain.ends_with("    WARN checkout: card declined  [req-7]\n"),
            "{plain:?}"
        );
        assert!(!plain.contains('\x1b'));
        let coloured = Console { colour: true }.format(LogLevel::Error, "", "boom", "req-8");
        assert!(
            coloured.contains("\x1b[31m   ERROR\x1b[0m boom"),
            "{coloured:?}"
        );
    }
}
