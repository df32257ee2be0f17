//! Logging. The [`log`](https://docs.rs/log) crate's macros work out of the box in a
//! `#[verge::main]` handler: each record goes to the standard `wasi:logging` with its
//! level and target (as the context), and Verge tags it with the request id.
//!
//! ```no_run
//! log::info!("order {} placed", 42);
//! log::warn!(target: "checkout", "card declined");
//! ```
//!
//! The app's `[logging] level` in `verge.toml` (default `info`) sets the lowest level
//! kept. Named endpoints (`[log_endpoints.NAME]`: a rotated file, or Verge's stream)
//! take lines with [`Endpoint`]:
//!
//! ```no_run
//! use std::io::Write;
//! # fn run() -> Result<(), verge::log::NoSuchEndpoint> {
//! let mut audit = verge::log::Endpoint::open("audit")?;
//! audit.write_line("user 7 signed in");
//! writeln!(audit, "user {} signed out", 7).ok();
//! # Ok(()) }
//! ```

use crate::edge::{logging, logs};

/// Forwards `log` records to `wasi:logging`.
struct Logger;

static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Trace => logging::Level::Trace,
            log::Level::Debug => logging::Level::Debug,
            log::Level::Info => logging::Level::Info,
            log::Level::Warn => logging::Level::Warn,
            log::Level::Error => logging::Level::Error,
        };
        logging::log(level, record.target(), &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Installs the logger; `#[verge::main]` calls it before the handler.
pub(crate) fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// A `critical` line, which the `log` crate has no level for.
pub fn critical(context: &str, message: &str) {
    logging::log(logging::Level::Critical, context, message);
}

/// The app declares no log endpoint of that name; the text lists those it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSuchEndpoint(pub String);

impl std::fmt::Display for NoSuchEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoSuchEndpoint {}

/// A named log endpoint. As a [`std::io::Write`], it writes a line per `\n`.
#[derive(Debug)]
pub struct Endpoint {
    inner: logs::Endpoint,
    pending: Vec<u8>,
}

impl Endpoint {
    /// Opens an endpoint declared in `verge.toml`.
    pub fn open(name: &str) -> Result<Endpoint, NoSuchEndpoint> {
        Ok(Endpoint {
            inner: logs::Endpoint::open(name).map_err(NoSuchEndpoint)?,
            pending: Vec::new(),
        })
    }

    /// Writes one line.
    pub fn write_line(&self, line: &str) {
        self.inner.write(line);
    }
}

impl std::io::Write for Endpoint {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            self.inner
                .write(&String::from_utf8_lossy(&line[..line.len() - 1]));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.inner.write(&String::from_utf8_lossy(&line));
        }
        Ok(())
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}
