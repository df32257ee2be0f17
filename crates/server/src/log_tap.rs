//! Live log lines for `verge logs --tail`: every JSON line the [`LogWriter`] writes
//! is also offered to the tails watching its app.
//!
//! A line costs one atomic load when no one watches. Watchers share a bounded
//! broadcast channel: one that falls behind loses lines (and is told how many),
//! never slowing requests down.
//!
//! [`LogWriter`]: crate::LogWriter

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

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
    /// The node of a fleet that wrote it, for lines relayed from other nodes;
    /// `None`: this node.
    pub node: Option<Arc<str>>,
}

/// Where log lines are offered to tails.
#[derive(Debug)]
pub struct LogTap {
    tx: broadcast::Sender<TapLine>,
    watchers: AtomicUsize,
    /// The apps tails watch, with how many tails each (a fleet node asks the others
    /// for those apps' lines).
    tailed: Mutex<BTreeMap<Arc<str>, usize>>,
    tailed_changed: watch::Sender<u64>,
}

impl Default for LogTap {
    fn default() -> Self {
        LogTap {
            tx: broadcast::channel(BACKLOG).0,
            watchers: AtomicUsize::new(0),
            tailed: Mutex::default(),
            tailed_changed: watch::Sender::new(0),
        }
    }
}

impl LogTap {
    /// Whether anyone watches; the writer builds a [`TapLine`] only then.
    pub(crate) fn watched(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Offers a line to the watchers: one this node wrote, or one relayed from
    /// another node of its fleet (`line.node` set).
    pub fn offer(&self, line: TapLine) {
        let _ = self.tx.send(line);
    }

    /// Starts watching every app; lines written from now on arrive on the watch.
    pub fn watch(self: &Arc<Self>) -> Watch {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Watch {
            rx: self.tx.subscribe(),
            tap: self.clone(),
            app: None,
        }
    }

    /// Starts a tail of `app`: a watch (of every line; the tail filters) that also
    /// counts as interest in `app` ([`LogTap::tailed`]) until it is dropped.
    pub fn tail(self: &Arc<Self>, app: &str) -> Watch {
        let app: Arc<str> = app.into();
        *self
            .tailed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(app.clone())
            .or_default() += 1;
        self.tailed_changed.send_modify(|n| *n += 1);
        let mut watch = self.watch();
        watch.app = Some(app);
        watch
    }

    /// The apps some tail here watches.
    pub fn tailed(&self) -> Vec<String> {
        let tailed = self.tailed.lock().unwrap_or_else(|e| e.into_inner());
        tailed.keys().map(|app| app.to_string()).collect()
    }

    /// Moves whenever [`LogTap::tailed`] may have changed.
    pub fn tailed_changes(&self) -> watch::Receiver<u64> {
        self.tailed_changed.subscribe()
    }
}

/// One tail's view of the lines.
pub struct Watch {
    rx: broadcast::Receiver<TapLine>,
    tap: Arc<LogTap>,
    /// The app a tail watches ([`LogTap::tail`]).
    app: Option<Arc<str>>,
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
        if let Some(app) = &self.app {
            let mut tailed = self.tap.tailed.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = tailed.get_mut(app) {
                *n -= 1;
                if *n == 0 {
                    tailed.remove(app);
                }
            }
            drop(tailed);
            self.tap.tailed_changed.send_modify(|n| *n += 1);
        }
    }
}
