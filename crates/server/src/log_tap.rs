//! Live log lines for `verge logs --tail`: every JSON line the [`LogWriter`] writes
//! is also offered to the tails watching its app.
//!
//! A line costs one atomic load when no one watches. Watchers share a bounded
//! broadcast channel: one that falls behind loses lines (and is told how many),
//! never slowing requests down.
//!
//! [`LogWriter`]: crate::LogWriter

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::broadcast;

/// Lines a watcher may fall behind by before it loses some.
const BACKLOG: usize = 4096;

/// One log line as a tail sees it.
#[derive(Debug, Clone)]
pub struct TapLine {
    pub app: Arc<str>,
    pub request_id: Arc<str>,
    /// The response status, on access lines.
    pub status: Option<u16>,
    /// The JSON line, without its newline.
    pub json: Bytes,
}

/// Where log lines are offered to tails.
#[derive(Debug)]
pub struct LogTap {
    tx: broadcast::Sender<TapLine>,
    watchers: AtomicUsize,
}

impl Default for LogTap {
    fn default() -> Self {
        LogTap {
            tx: broadcast::channel(BACKLOG).0,
            watchers: AtomicUsize::new(0),
        }
    }
}

impl LogTap {
    /// Whether anyone watches; the writer builds a [`TapLine`] only then.
    pub(crate) fn watched(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn offer(&self, line: TapLine) {
        let _ = self.tx.send(line);
    }

    /// Starts watching; lines written from now on arrive on the watch.
    pub fn watch(self: &Arc<Self>) -> Watch {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Watch {
            rx: self.tx.subscribe(),
            tap: self.clone(),
        }
    }
}

/// One tail's view of the lines.
pub struct Watch {
    rx: broadcast::Receiver<TapLine>,
    tap: Arc<LogTap>,
}

/// What a watch receives next.
#[derive(Debug)]
pub enum Watched {
    Line(TapLine),
    /// This many lines were lost because the watcher fell behind.
    Dropped(u64),
}

impl Watch {
    /// The next line (of any app; the watcher filters).
    pub async fn next(&mut self) -> Watched {
        match self.rx.recv().await {
            Ok(line) => Watched::Line(line),
            Err(broadcast::error::RecvError::Lagged(n)) => Watched::Dropped(n),
            // The tap keeps its sender for as long as the watch holds it.
            Err(broadcast::error::RecvError::Closed) => unreachable!("the tap outlives watches"),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.tap.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}
