//! Logging: the standard `wasi:logging` (levels and contexts, to Verge's log stream)
//! and `verge:edge/logs` (named endpoints from the manifest: Verge's stream, or a file
//! rotated by size). Every line carries the request id and passes through the app's
//! secret [`Redactor`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::bindings::{logging as wasi, logs as wit};
use super::secrets::Redactor;
use crate::config::{LogEndpointConfig, LogTarget};
use crate::error::LoadError;
use crate::guest_log::{GuestLogSink, LogLevel};

/// Lines longer than this are cut, as guest stdout lines are.
const MAX_LINE_BYTES: usize = 16 << 10;
/// Lines queued for a file before new ones are dropped (and counted).
const FILE_QUEUE: usize = 10_000;

/// The per-app state: the lowest level kept, and the open endpoints.
pub(crate) struct AppState {
    min_level: LogLevel,
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    app: Arc<str>,
}

impl AppState {
    pub(crate) fn new(
        app: &str,
        min_level: LogLevel,
        endpoints: &[LogEndpointConfig],
    ) -> Result<AppState, LoadError> {
        let endpoints = endpoints
            .iter()
            .map(|e| {
                let endpoint = match &e.target {
                    LogTarget::Stream => Endpoint::Stream,
                    LogTarget::File {
                        path,
                        max_bytes,
                        keep,
                    } => Endpoint::File(FileLog::open(path, *max_bytes, *keep).map_err(
                        |source| LoadError::LogFile {
                            endpoint: e.name.clone(),
                            path: path.clone(),
                            source,
                        },
                    )?),
                };
                Ok((e.name.clone(), Arc::new(endpoint)))
            })
            .collect::<Result<_, LoadError>>()?;
        Ok(AppState {
            min_level,
            endpoints,
            app: app.into(),
        })
    }
}

/// Where an endpoint's lines go.
enum Endpoint {
    /// Verge's own log stream (the server's stdout).
    Stream,
    File(FileLog),
}

/// An open `verge:edge/logs` endpoint, in a guest's resource table.
pub struct LogEndpoint {
    name: Arc<str>,
    endpoint: Arc<Endpoint>,
}

/// What a guest call sees.
pub(crate) struct LoggingView<'a> {
    pub(crate) app: &'a AppState,
    pub(crate) request_id: &'a str,
    pub(crate) sink: &'a Arc<dyn GuestLogSink>,
    pub(crate) redactor: Option<&'a Redactor>,
    pub(crate) table: &'a mut ResourceTable,
}

impl HasData for LoggingView<'static> {
    type Data<'a> = LoggingView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> LoggingView<'_>,
) -> wasmtime::Result<()> {
    wasi::add_to_linker::<T, LoggingView<'static>>(linker, view)?;
    wit::add_to_linker::<T, LoggingView<'static>>(linker, view)?;
    Ok(())
}

impl LoggingView<'_> {
    /// Cut to the line limit (on a character boundary) and redacted.
    fn clean<'s>(&self, text: &'s str) -> std::borrow::Cow<'s, str> {
        let mut end = text.len().min(MAX_LINE_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = text[..end].strip_suffix('\n').unwrap_or(&text[..end]);
        match self.redactor {
            Some(r) => r.redact(text),
            None => std::borrow::Cow::Borrowed(text),
        }
    }
}

impl wasi::Host for LoggingView<'_> {
    fn log(&mut self, level: wasi::Level, context: String, message: String) {
        let level = match level {
            wasi::Level::Trace => LogLevel::Trace,
            wasi::Level::Debug => LogLevel::Debug,
            wasi::Level::Info => LogLevel::Info,
            wasi::Level::Warn => LogLevel::Warn,
            wasi::Level::Error => LogLevel::Error,
            wasi::Level::Critical => LogLevel::Critical,
        };
        if level < self.app.min_level {
            return;
        }
        let context = self.clean(&context);
        let message = self.clean(&message);
        self.sink
            .log_line(self.request_id, level, &context, &message);
    }
}

impl wit::Host for LoggingView<'_> {}

impl wit::HostEndpoint for LoggingView<'_> {
    fn open(&mut self, name: String) -> Result<Resource<LogEndpoint>, String> {
        match self.app.endpoints.get(&name) {
            Some(endpoint) => self
                .table
                .push(LogEndpoint {
                    name: name.into(),
                    endpoint: endpoint.clone(),
                })
                .map_err(|e| e.to_string()),
            None => Err(super::not_declared(
                "log endpoint",
                &name,
                "log_endpoints",
                self.app.endpoints.keys(),
            )),
        }
    }

    fn write(&mut self, endpoint: Resource<LogEndpoint>, line: String) {
        let Ok(open) = self.table.get(&endpoint) else {
            return;
        };
        let (name, target) = (open.name.clone(), open.endpoint.clone());
        let line = self.clean(&line);
        match &*target {
            Endpoint::Stream => self.sink.endpoint_line(self.request_id, &name, &line),
            Endpoint::File(file) => file.write(&FileRecord {
                ts: humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
                request_id: self.request_id,
                app: &self.app.app,
                endpoint: &name,
                message: &line,
            }),
        }
    }

    fn drop(&mut self, endpoint: Resource<LogEndpoint>) -> wasmtime::Result<()> {
        self.table.delete(endpoint)?;
        Ok(())
    }
}

#[derive(serde::Serialize)]
struct FileRecord<'a> {
    ts: String,
    request_id: &'a str,
    app: &'a str,
    endpoint: &'a str,
    message: &'a str,
}

/// A JSON-lines file written by its own thread and rotated by size: when a line
/// would take it past `max_bytes`, `F` becomes `F.1` (`F.1` becomes `F.2`, ... up
/// to `keep` old files) and a new `F` starts. A full queue drops lines (counted)
/// rather than slow requests down.
pub(crate) struct FileLog {
    tx: mpsc::SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl FileLog {
    pub(crate) fn open(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<FileLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(FILE_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut writer = RotatingWriter {
            path: path.to_owned(),
            out: std::io::BufWriter::new(file),
            size,
            max_bytes: max_bytes.max(1),
            keep: keep.max(1),
        };
        let counter = dropped.clone();
        std::thread::Builder::new()
            .name("verge-log-file".into())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    writer.write(&line);
                    while let Ok(line) = rx.try_recv() {
                        writer.write(&line);
                    }
                    let lost = counter.swap(0, Ordering::Relaxed);
                    if lost > 0 {
                        let note = format!(
                            "{{\"ts\":\"{}\",\"message\":\"{lost} lines dropped: the log file could not keep up\"}}\n",
                            humantime::format_rfc3339_micros(std::time::SystemTime::now())
                        );
                        writer.write(note.as_bytes());
                    }
                    if let Err(e) = writer.out.flush() {
                        tracing::warn!("writing {}: {e}", writer.path.display());
                    }
                }
            })?;
        Ok(FileLog { tx, dropped })
    }

    fn write<T: serde::Serialize>(&self, record: &T) {
        let mut line = Vec::with_capacity(256);
        if serde_json::to_writer(&mut line, record).is_ok() {
            line.push(b'\n');
            if self.tx.try_send(line).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

struct RotatingWriter {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingWriter {
    fn write(&mut self, line: &[u8]) {
        if self.size > 0
            && self.size + line.len() as u64 > self.max_bytes
            && let Err(e) = self.rotate()
        {
            tracing::warn!("rotating {}: {e}", self.path.display());
        }
        match self.out.write_all(line) {
            Ok(()) => self.size += line.len() as u64,
            Err(e) => tracing::warn!("writing {}: {e}", self.path.display()),
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        let _ = std::fs::remove_file(numbered(self.keep));
        for n in (1..self.keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.out = std::io::BufWriter::new(open_append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        let log = FileLog::open(&path, 200, 2).unwrap();
        for i in 0..20 {
            log.write(&serde_json::json!({ "i": i, "pad": "x".repeat(40) }));
        }
        let rotated = |n: u32| dir.path().join(format!("logs/audit.log.{n}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.contains("\"i\":19") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the last line never arrived"
            );
            std::thread::yield_now();
        }
        assert!(rotated(1).exists() && rotated(2).exists());
        assert!(!rotated(3).exists(), "only `keep` old files stay");
        for file in [path.clone(), rotated(1), rotated(2)] {
            let len = std::fs::metadata(&file).unwrap().len();
            assert!(len <= 200, "{} is {len} bytes", file.display());
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("whole JSON lines");
            }
        }
    }
}
