//! The reconciler: the one place that changes what this node routes. It follows the
//! control state's change feed from the last revision it applied and makes the router
//! match it, service by service (level-triggered: it reads a changed service's current
//! record, so replaying a change twice or late does no harm). The node that took an
//! admin call is no exception: the call records the change, then waits until this
//! node's reconciler has applied that revision.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use verge_control::{Change, Changes, Control, ControlError, Service, Version, keys};
use verge_server::{LazyApp, RoutedApp};

use crate::Node;
use crate::report::chain;

/// Changes read from the feed at a time.
const PAGE: usize = 256;
/// How long a failed catch-up waits before it tries again.
const RETRY: Duration = Duration::from_secs(1);
/// How long a catch-up that fell short of the announced revision waits.
const SHORT_RETRY: Duration = Duration::from_millis(20);

/// What this node serves for a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeState {
    /// Requests go to this version.
    Serving(u32),
    /// The active version could not be loaded here; the previous one (if any) still
    /// serves.
    Failed { version: u32, reason: String },
}

/// What the reconciler has routed for a service.
#[derive(Debug, Clone)]
struct Routed {
    version: u32,
    domains: Vec<String>,
}

pub(crate) struct Reconciler {
    /// The control revision this node has applied.
    applied: tokio::sync::watch::Sender<u64>,
    routed: Mutex<HashMap<String, Routed>>,
    states: Mutex<HashMap<String, ServeState>>,
    /// Apps an activation call loaded (and so checked) before recording it, for the
    /// reconciler to route instead of loading them again.
    preloaded: Mutex<HashMap<(String, u32), RoutedApp>>,
    /// One background compile at a time: uploads must not starve requests.
    compiling: tokio::sync::Semaphore,
}

impl Reconciler {
    pub(crate) fn new() -> Reconciler {
        Reconciler {
            applied: tokio::sync::watch::Sender::new(0),
            routed: Mutex::default(),
            states: Mutex::default(),
            preloaded: Mutex::default(),
            compiling: tokio::sync::Semaphore::new(1),
        }
    }

    pub(crate) fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the node has applied `revision`; false if `timeout` passed first.
    pub(crate) async fn wait_applied(&self, revision: u64, timeout: Duration) -> bool {
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(timeout, applied.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub(crate) fn subscribe_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// What this node serves, by service.
    pub(crate) fn states(&self) -> Vec<(String, ServeState)> {
        let states = self.states.lock().unwrap();
        states.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(crate) fn state(&self, service: &str) -> Option<ServeState> {
        self.states.lock().unwrap().get(service).cloned()
    }

    pub(crate) fn preload(&self, service: &str, version: u32, app: RoutedApp) {
        self.preloaded
            .lock()
            .unwrap()
            .insert((service.to_owned(), version), app);
    }

    pub(crate) fn forget_preloaded(&self, service: &str, version: u32) {
        self.preloaded
            .lock()
            .unwrap()
            .remove(&(service.to_owned(), version));
    }

    fn set_applied(&self, revision: u64) {
        verge_control::advance(&self.applied, revision);
    }
}

impl Node {
    /// Routes every service's active version as the state holds it now, each loaded
    /// on its first request (from the compile cache): a node with many services is
    /// ready at once. Services no longer in the state stop being routed.
    pub(crate) async fn resync(&self, revision: u64) -> Result<usize, ControlError> {
        let services = self.control.services().await?;
        let mut routed = 0;
        let names: Vec<String> = services
            .iter()
            .map(|s| s.name.as_str().to_owned())
            .collect();
        for service in services {
            if self.reconcile_service(&service, true).await? {
                routed += 1;
            }
        }
        let stale: Vec<String> = self
            .reconciler
            .routed
            .lock()
            .unwrap()
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in stale {
            self.unroute(&name);
        }
        self.reconciler.set_applied(revision);
        Ok(routed)
    }

    /// Applies the change feed up to the store's latest revision.
    pub(crate) async fn catch_up(&self) -> Result<(), ControlError> {
        loop {
            let since = self.reconciler.applied();
            match self.control.store().changes(since, PAGE).await? {
                Changes::Resync { revision } => {
                    self.resync(revision).await?;
                    return Ok(());
                }
                Changes::Since { changes, revision } => {
                    // Each changed service as the feed has it at `revision` (its
                    // last change in this page), not read again: a read may come
                    // from a copy that lags the feed, and applying that while
                    // claiming `revision` would leave the node behind for good.
                    let mut seen: Vec<(&str, &Change)> = Vec::new();
                    for change in &changes {
                        if let (Some((service, number)), Some(_)) =
                            (keys::version_name(&change.key), &change.value)
                        {
                            self.precompile_later(service, number);
                        }
                        if let Some(name) = keys::service_name(&change.key) {
                            seen.retain(|(seen, _)| *seen != name);
                            seen.push((name, change));
                        }
                    }
                    for (name, change) in seen {
                        match Control::service_in(change) {
                            Some(Ok(Some(service))) => {
                                self.reconcile_service(&service, false).await?;
                            }
                            Some(Ok(None)) => self.unroute(name),
                            Some(Err(e)) => return Err(e),
                            None => {}
                        }
                    }
                    self.reconciler.set_applied(revision);
                    if changes.len() < PAGE {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn unroute(&self, name: &str) {
        self.registry.remove(name);
        self.reconciler.routed.lock().unwrap().remove(name);
        self.reconciler.states.lock().unwrap().remove(name);
    }

    /// Makes the router serve `service` as recorded; whether it is routed. `lazily`
    /// routes without loading (at start); otherwise the version is loaded now and a
    /// version that fails to load leaves the previous one serving.
    async fn reconcile_service(
        &self,
        service: &Service,
        lazily: bool,
    ) -> Result<bool, ControlError> {
        let name = service.name.as_str();
        let Some(number) = service.active else {
            self.unroute(name);
            return Ok(false);
        };
        let domains: Vec<String> = service
            .domains
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect();
        let current = self.reconciler.routed.lock().unwrap().get(name).cloned();
        if let Some(current) = &current
            && current.version == number
            && current.domains == domains
        {
            return Ok(true);
        }
        let Some(version) = self.control.version(&service.name, number).await? else {
            if lazily {
                return Ok(current.is_some());
            }
            // The rules keep the active version's record; a read that lacks it is
            // behind the one that named it: try again rather than apply nothing.
            return Err(ControlError::Unavailable(format!(
                "version {number} of `{name}` is active but its record was not read yet"
            )));
        };
        if let Err(e) = self.ensure_package(&version).await {
            let reason = format!(
                "its package is not here and could not be fetched: {}",
                chain(&e)
            );
            self.failed(name, number, reason);
            return Ok(current.is_some());
        }
        let preloaded = self
            .reconciler
            .preloaded
            .lock()
            .unwrap()
            .remove(&(name.to_owned(), number));
        let loader = self.loader(service, &version);
        let lazy = match (preloaded, current.as_ref().map(|c| c.version)) {
            (Some(app), _) => LazyApp::loaded(app, loader),
            // Only the domains changed: the code that serves stays.
            (None, Some(routed)) if routed == number => LazyApp::new(loader),
            (None, _) if lazily => LazyApp::new(loader),
            (None, _) => {
                let node = self.myself.upgrade();
                let (service2, version2) = (service.clone(), version.clone());
                let loaded = tokio::task::spawn_blocking(move || {
                    node.ok_or_else(|| "the node is stopping".to_owned())?
                        .load_version(&service2, &version2, true)
                        .map_err(|e| chain(&e))
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                match loaded {
                    Ok(app) => LazyApp::loaded(app, loader),
                    Err(reason) => {
                        self.failed(name, number, reason);
                        return Ok(current.is_some());
                    }
                }
            }
        };
        self.registry.set(name, lazy, &domains);
        self.reconciler.routed.lock().unwrap().insert(
            name.to_owned(),
            Routed {
                version: number,
                domains,
            },
        );
        self.reconciler
            .states
            .lock()
            .unwrap()
            .insert(name.to_owned(), ServeState::Serving(number));
        Ok(true)
    }

    /// Fetches and compiles a version uploaded (on any node) in the background, one
    /// at a time, so that activating it later only switches: the compile cache has
    /// its code. A version this node cannot compile is told when it is activated.
    fn precompile_later(&self, service: &str, number: u32) {
        let Some(node) = self.myself.upgrade() else {
            return;
        };
        let service = service.to_owned();
        tokio::spawn(async move {
            let Ok(_turn) = node.reconciler.compiling.acquire().await else {
                return;
            };
            let Ok(name) = verge_control::ServiceName::new(&service) else {
                return;
            };
            let Ok(Some(version)) = node.control.version(&name, number).await else {
                return;
            };
            if node.ensure_package(&version).await.is_err() {
                return;
            }
            let compiler = node.clone();
            let _ = tokio::task::spawn_blocking(move || compiler.precompile(&version)).await;
        });
    }

    /// Records (and says) that `number` of `name` could not be served here; what
    /// served before keeps serving.
    fn failed(&self, name: &str, number: u32, reason: String) {
        self.report.status(
            "Failed",
            &format!("to serve version {number} of `{name}`, keeping what serves: {reason}"),
        );
        self.reconciler.states.lock().unwrap().insert(
            name.to_owned(),
            ServeState::Failed {
                version: number,
                reason,
            },
        );
    }

    /// Loads `version` of `service` when the registry asks (on a first request, or
    /// again after it was unloaded).
    fn loader(
        &self,
        service: &Service,
        version: &Version,
    ) -> impl Fn() -> Result<RoutedApp, String> + Send + Sync + 'static {
        let node = self.myself.clone();
        let (service, version) = (service.clone(), version.clone());
        move || {
            let node = node.upgrade().ok_or("the node is stopping")?;
            node.load_version(&service, &version, false).map_err(|e| {
                format!(
                    "loading version {} of service `{}`: {}",
                    version.number,
                    service.name.as_str(),
                    chain(&e)
                )
            })
        }
    }
}

/// Follows the change feed for as long as the node lives.
pub(crate) fn spawn(node: Weak<Node>, mut revision: tokio::sync::watch::Receiver<u64>) {
    tokio::spawn(async move {
        // Said once when catching up starts failing (a cut can last hours), and
        // once when it works again.
        let mut failing = false;
        loop {
            let target = *revision.borrow_and_update();
            {
                let Some(node) = node.upgrade() else { return };
                if target > node.reconciler.applied() {
                    match node.catch_up().await {
                        Ok(()) if failing => {
                            failing = false;
                            node.report.status(
                                "Caught up",
                                &format!(
                                    "with the control state at revision {}",
                                    node.applied_revision()
                                ),
                            );
                        }
                        // Applied less than the watch announced (the feed had not
                        // heard of the last writes yet): look again shortly.
                        Ok(()) if node.reconciler.applied() < target => {
                            drop(node);
                            tokio::time::sleep(SHORT_RETRY).await;
                            continue;
                        }
                        Ok(()) => {}
                        Err(e) => {
                            if !failing {
                                node.report.status(
                                    "Retrying",
                                    &format!("to apply the control state: {}", chain(&e)),
                                );
                            }
                            failing = true;
                            drop(node);
                            tokio::time::sleep(RETRY).await;
                            continue;
                        }
                    }
                }
            }
            if revision.changed().await.is_err() {
                return;
            }
        }
    });
}
