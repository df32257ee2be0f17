//! [`ControlStore`] over a shared store that may be cut off (a fleet's JetStream
//! bucket), with a local [`Replica`] of it. While the shared store answers, every
//! call goes to it and a follower task copies its change feed into the replica;
//! when it does not answer within a short deadline, reads come from the replica and
//! changes are refused with [`ControlError::Unavailable`] at once (never written
//! locally to be lost later). A probe asks the shared store for its revision every
//! second, so a cut is noticed without traffic and a heal is noticed at once; the
//! follower then catches the replica up and the revision watch moves, so a node's
//! reconciler applies what it missed.
//!
//! A short cut is waited out rather than refused: when a NATS server dies, the
//! streams it led elect a new leader among the others within a few seconds, and a
//! change made meanwhile lands once they have ([`RIDE_OUT`]). A write that got no
//! answer may have landed, so it is read back before it is tried again.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::store::{Changes, ControlStore, Entry, Expect};
use crate::{ControlError, Replica, advance};

/// How long a call to the shared store may take before the store counts as cut off.
const DEADLINE: Duration = Duration::from_secs(2);
/// How often the shared store is probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a failed follower step waits before it tries again.
const RETRY: Duration = Duration::from_millis(500);
/// Changes the follower copies at a time.
const PAGE: usize = 512;
/// How long a change waits out a cut before it is refused: longer than a JetStream
/// leader election after a server's death (about 5 s here), shorter than a client's
/// patience. A cut older than this is a partition, and changes are refused at once.
pub const RIDE_OUT: Duration = Duration::from_secs(10);
/// How long a write that was refused without cutting the link waits to try again.
const WRITE_AGAIN: Duration = Duration::from_millis(100);

/// Whether the shared store answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connected,
    /// Cut off since `since`, for `reason`; reads come from the replica.
    Unavailable {
        since: Instant,
        reason: String,
    },
}

impl Link {
    pub fn is_connected(&self) -> bool {
        matches!(self, Link::Connected)
    }
}

struct Shared {
    replica: Replica,
    remote: OnceLock<Arc<dyn ControlStore>>,
    revision: watch::Sender<u64>,
    link: watch::Sender<Link>,
    ride_out: Duration,
}

/// A shared control store with a local copy that answers while it cannot.
pub struct ReplicatedStore {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for ReplicatedStore {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl ReplicatedStore {
    /// A store that answers from `replica` until [`attach`](Self::attach) gives it
    /// the shared store; its revision starts at what the replica holds.
    pub fn new(replica: Replica, reason: impl Into<String>) -> Result<Self, ControlError> {
        let applied = replica.applied()?;
        Ok(ReplicatedStore {
            shared: Arc::new(Shared {
                replica,
                remote: OnceLock::new(),
                revision: watch::Sender::new(applied),
                link: watch::Sender::new(Link::Unavailable {
                    since: Instant::now(),
                    reason: reason.into(),
                }),
                ride_out: RIDE_OUT,
            }),
            tasks: Mutex::default(),
        })
    }

    /// The store with changes waiting out a cut for `ride_out` instead of
    /// [`RIDE_OUT`] (zero: refused at once). Before [`attach`](Self::attach).
    pub fn with_ride_out(mut self, ride_out: Duration) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.ride_out = ride_out;
        }
        self
    }

    /// Connects the shared store (once; later calls are ignored) and starts the
    /// follower and the probe. Needs a Tokio runtime.
    pub fn attach(&self, remote: Arc<dyn ControlStore>) {
        if self.shared.remote.set(remote.clone()).is_err() {
            return;
        }
        self.shared.connected();
        advance(&self.shared.revision, *remote.revision().borrow());
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.push(tokio::spawn(follow(self.shared.clone(), remote.clone())));
        tasks.push(tokio::spawn(probe(self.shared.clone(), remote)));
    }

    /// Whether the shared store answers, as last seen.
    pub fn link(&self) -> watch::Receiver<Link> {
        self.shared.link.subscribe()
    }

    /// The revision the local copy is complete up to.
    pub fn replicated(&self) -> Result<u64, ControlError> {
        self.shared.replica.applied()
    }

    /// Whether the shared store is known to be cut off (or not attached yet).
    fn is_cut(&self) -> bool {
        !self.shared.link.borrow().is_connected() || self.shared.remote.get().is_none()
    }

    /// The shared store, if it is attached and answering.
    fn remote(&self) -> Result<&Arc<dyn ControlStore>, ControlError> {
        match (&*self.shared.link.borrow(), self.shared.remote.get()) {
            (Link::Connected, Some(remote)) => Ok(remote),
            (Link::Unavailable { reason, .. }, _) => Err(cut_off(reason)),
            (Link::Connected, None) => Err(cut_off("not connected yet")),
        }
    }

    /// Runs `call` on the shared store within the deadline; a store that does not
    /// answer in time counts as cut off. One that answers with an error (a refused
    /// connection, a server-side limit) is told to the caller: whether the link is
    /// cut is the probe's call, so reads never fall back to the copy on a fluke.
    async fn call<T, F>(
        &self,
        call: impl FnOnce(Arc<dyn ControlStore>) -> F,
    ) -> Result<T, ControlError>
    where
        F: std::future::Future<Output = Result<T, ControlError>>,
    {
        let remote = self.remote()?.clone();
        match tokio::time::timeout(DEADLINE, call(remote)).await {
            Ok(Err(ControlError::Unavailable(reason))) => Err(cut_off(&reason)),
            Ok(answer) => answer,
            Err(_) => {
                let reason = format!(
                    "no answer within {}s (a change may still have landed: read before retrying)",
                    DEADLINE.as_secs()
                );
                self.shared.cut(&reason);
                Err(cut_off(&reason))
            }
        }
    }
}

impl ReplicatedStore {
    /// Waits until the shared store answers, for as long as the cut is younger than
    /// the ride-out; then (or at once, for a store never attached) an error naming
    /// the cut.
    async fn wait_writable(&self) -> Result<(), ControlError> {
        let mut link = self.shared.link.subscribe();
        loop {
            let left = match (&*link.borrow_and_update(), self.shared.remote.get()) {
                (Link::Connected, Some(_)) => return Ok(()),
                (Link::Connected, None) => return Err(cut_off("not connected yet")),
                (Link::Unavailable { reason, .. }, None) => return Err(cut_off(reason)),
                (Link::Unavailable { since, reason }, Some(_)) => {
                    match self.shared.ride_out.checked_sub(since.elapsed()) {
                        Some(left) if !left.is_zero() => left,
                        _ => return Err(cut_off(reason)),
                    }
                }
            };
            // A timeout ends the wait at the next look; a change looks again.
            if let Ok(Err(_)) = tokio::time::timeout(left, link.changed()).await {
                return Err(cut_off("the store is closing"));
            }
        }
    }

    /// Makes a change (`write`) through the shared store, waiting out a short cut.
    /// A write that got no answer is read back (`landed` says whether the key's
    /// entry shows it) before it is tried again, so a write that did land is not
    /// made twice or taken for a lost race.
    async fn write<F>(
        &self,
        key: &str,
        write: impl Fn(Arc<dyn ControlStore>) -> F,
        landed: impl Fn(&Option<Entry>) -> bool,
    ) -> Result<u64, ControlError>
    where
        F: std::future::Future<Output = Result<u64, ControlError>>,
    {
        let started = Instant::now();
        let mut unsure = false;
        loop {
            self.wait_writable().await?;
            let outcome = async {
                if unsure {
                    let entry = self
                        .call(|remote| async move { remote.get(key).await })
                        .await?;
                    if landed(&entry) {
                        return match entry {
                            Some(entry) => Ok(entry.revision),
                            None => {
                                self.call(|remote| async move { remote.probe().await })
                                    .await
                            }
                        };
                    }
                }
                self.call(&write).await
            };
            match outcome.await {
                Err(ControlError::Unavailable(_)) if started.elapsed() < self.shared.ride_out => {
                    unsure = true;
                    if self.shared.link.borrow().is_connected() {
                        tokio::time::sleep(WRITE_AGAIN).await;
                    }
                }
                answer => return answer,
            }
        }
    }
}

fn cut_off(reason: &str) -> ControlError {
    ControlError::Unavailable(format!("cluster unavailable: {reason}"))
}

impl Shared {
    fn connected(&self) {
        self.link.send_if_modified(|link| {
            let was = link.is_connected();
            *link = Link::Connected;
            !was
        });
    }

    fn cut(&self, reason: &str) {
        self.link.send_if_modified(|link| {
            if link.is_connected() {
                *link = Link::Unavailable {
                    since: Instant::now(),
                    reason: reason.to_owned(),
                };
                true
            } else {
                false
            }
        });
    }
}

/// Copies the shared store's change feed into the replica, for as long as the store
/// lives.
async fn follow(shared: Arc<Shared>, remote: Arc<dyn ControlStore>) {
    let mut revision = remote.revision();
    loop {
        let step = async {
            let applied = shared.replica.applied()?;
            match remote.changes(applied, PAGE).await? {
                Changes::Since { changes, revision } => {
                    shared.replica.apply(&changes, revision)?;
                    Ok::<_, ControlError>(changes.len() == PAGE)
                }
                Changes::Resync { revision } => {
                    let all = remote.list("").await?;
                    shared.replica.replace(&all, revision)?;
                    Ok(false)
                }
            }
        };
        match tokio::time::timeout(DEADLINE, step).await {
            Ok(Ok(true)) => continue,
            Ok(Ok(false)) => {}
            Ok(Err(ControlError::Unavailable(reason))) => {
                shared.cut(&reason);
                tokio::time::sleep(RETRY).await;
                continue;
            }
            Ok(Err(_)) | Err(_) => {
                tokio::time::sleep(RETRY).await;
                continue;
            }
        }
        let applied = shared.replica.applied().unwrap_or(0);
        if revision.wait_for(|r| *r > applied).await.is_err() {
            return;
        }
    }
}

/// Asks the shared store for its revision every [`PROBE_EVERY`]: a store that does
/// not answer within the deadline is cut off, one that answers is connected again,
/// and the revision it names moves this store's watch (which wakes the reconciler
/// after a heal, even when no write arrives).
async fn probe(shared: Arc<Shared>, remote: Arc<dyn ControlStore>) {
    let mut from_remote = remote.revision();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {
                match tokio::time::timeout(DEADLINE, remote.probe()).await {
                    Ok(Ok(revision)) => {
                        shared.connected();
                        advance(&shared.revision, revision);
                    }
                    Ok(Err(e)) => shared.cut(&e.to_string()),
                    Err(_) => shared.cut(&format!(
                        "the JetStream API gave no answer within {}s",
                        DEADLINE.as_secs()
                    )),
                }
            }
            changed = from_remote.changed() => {
                if changed.is_err() {
                    return;
                }
                let revision = *from_remote.borrow_and_update();
                advance(&shared.revision, revision);
            }
        }
    }
}

#[async_trait]
impl ControlStore for ReplicatedStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, ControlError> {
        match self
            .call(|remote| async move { remote.get(key).await })
            .await
        {
            Err(ControlError::Unavailable(_)) if self.is_cut() => self.shared.replica.get(key),
            answer => answer,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, ControlError> {
        match self
            .call(|remote| async move { remote.list(prefix).await })
            .await
        {
            Err(ControlError::Unavailable(_)) if self.is_cut() => self.shared.replica.list(prefix),
            answer => answer,
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64, ControlError> {
        let revision = self
            .write(
                key,
                |remote| {
                    let value = value.clone();
                    async move { remote.put(key, value, expect).await }
                },
                |entry| entry.as_ref().is_some_and(|e| e.value == value),
            )
            .await?;
        advance(&self.shared.revision, revision);
        Ok(revision)
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<u64, ControlError> {
        let revision = self
            .write(
                key,
                |remote| async move { remote.delete(key, expect).await },
                Option::is_none,
            )
            .await?;
        advance(&self.shared.revision, revision);
        Ok(revision)
    }

    async fn changes(&self, since: u64, limit: usize) -> Result<Changes, ControlError> {
        self.call(|remote| async move { remote.changes(since, limit).await })
            .await
    }

    fn revision(&self) -> watch::Receiver<u64> {
        self.shared.revision.subscribe()
    }

    async fn probe(&self) -> Result<u64, ControlError> {
        self.remote()?;
        Ok(*self.shared.revision.borrow())
    }

    async fn writable(&self) -> Result<(), ControlError> {
        self.wait_writable().await
    }
}

#[cfg(test)]
mod tests;
