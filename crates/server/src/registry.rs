//! How the server finds the app for a request.

use std::sync::Arc;

use arc_swap::ArcSwap;
use verge_cache::{Cache, HttpPolicy};
use verge_runtime::{App, GuestLogSink};

/// An app ready to serve, with what the server needs to log for it.
#[derive(Clone)]
pub struct RoutedApp {
    pub app: App,
    pub name: Arc<str>,
    /// Where the app's guest output goes (tagged with the app's name).
    pub guest_log: Arc<dyn GuestLogSink>,
    /// The HTTP cache in front of the app, when it has turned it on.
    pub http_cache: Option<Arc<HttpCache>>,
    /// Where its requests are counted ([`crate::Metrics::app`]).
    pub metrics: Arc<crate::AppMetrics>,
}

/// An app's HTTP cache: the node's cache, the app's namespace in it, and its rules.
#[derive(Debug)]
pub struct HttpCache {
    pub cache: Cache,
    /// Keeps the app's objects apart from every other app's.
    pub namespace: Arc<str>,
    pub policy: HttpPolicy,
    /// Add `X-Cache` (HIT, MISS, STALE, PASS…) to responses.
    pub debug_headers: bool,
}

/// Maps a request's host to the app that serves it. The control plane implements this
/// for fleets of services; [`SingleApp`] serves one app for every host.
pub trait AppRegistry: Send + Sync + 'static {
    fn resolve(&self, host: Option<&str>) -> Option<RoutedApp>;

    /// The app of this name (the admin API addresses apps by name).
    fn by_name(&self, name: &str) -> Option<RoutedApp>;

    /// Whether to take traffic (`/readyz`): by default, once an app is loaded.
    fn is_ready(&self) -> bool {
        self.resolve(None).is_some()
    }
}

/// One app for every host, swappable at run time (`verge serve --watch`). Requests in
/// flight finish on the version they started with.
pub struct SingleApp {
    current: ArcSwap<RoutedApp>,
}

impl SingleApp {
    pub fn new(app: RoutedApp) -> Self {
        Self {
            current: ArcSwap::from_pointee(app),
        }
    }

    /// Replaces the app; new requests go to the new one.
    pub fn swap(&self, app: RoutedApp) {
        self.current.store(Arc::new(app));
    }
}

impl AppRegistry for SingleApp {
    fn resolve(&self, _host: Option<&str>) -> Option<RoutedApp> {
        Some(RoutedApp::clone(&self.current.load()))
    }

    fn by_name(&self, name: &str) -> Option<RoutedApp> {
        let current = self.current.load();
        (*current.name == *name).then(|| RoutedApp::clone(&current))
    }
}
