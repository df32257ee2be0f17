//! Progress lines for whoever runs the node (the CLI prints them as `Loaded …`).

use std::sync::Arc;

/// Where the node says what it did: a status word and a message. The library has no
/// terminal; the CLI prints these in its colours, tests may keep them.
#[derive(Clone)]
pub struct Reporter(Arc<ReportFn>);

type ReportFn = dyn Fn(&str, &str) + Send + Sync;

impl Reporter {
    pub fn new(report: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        Reporter(Arc::new(report))
    }

    /// Says nothing.
    pub fn silent() -> Self {
        Reporter::new(|_, _| {})
    }

    pub fn status(&self, word: &str, message: &str) {
        (self.0)(word, message)
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::silent()
    }
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reporter")
    }
}

/// An error and its causes on one line, `outer: inner: innermost`, for replies that
/// carry the whole reason.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
