//! Host routing for a node serving many apps: exact names first, then the longest
//! matching `*.suffix` wildcard; each pattern belongs to one app. Apps may be loaded
//! on their first request ([`LazyApp`]), so a node with many services starts at once
//! and holds only the code of those that are used.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::registry::{AppRegistry, RoutedApp};

/// Apps by name, and the host patterns that reach them.
#[derive(Debug, Clone)]
pub struct HostRoutes<T> {
    apps: HashMap<Arc<str>, (T, Vec<String>)>,
    exact: HashMap<String, Arc<str>>,
    /// `.example.com` → app, for `*.example.com`.
    wildcards: HashMap<String, Arc<str>>,
}

impl<T> Default for HostRoutes<T> {
    fn default() -> Self {
        HostRoutes {
            apps: HashMap::new(),
            exact: HashMap::new(),
            wildcards: HashMap::new(),
        }
    }
}

impl<T: Clone> HostRoutes<T> {
    /// Sets (or replaces) the app `name` and its host patterns (lower-case names, or
    /// `*.` followed by one). Patterns another app holds are taken from it: the
    /// control plane has already decided who owns what.
    pub fn set(&mut self, name: &str, app: T, patterns: &[String]) {
        let name: Arc<str> = name.into();
        self.remove(&name);
        for pattern in patterns {
            match pattern.strip_prefix('*') {
                Some(suffix) => {
                    self.wildcards.insert(suffix.to_owned(), name.clone());
                }
                None => {
                    self.exact.insert(pattern.clone(), name.clone());
                }
            }
        }
        self.apps.insert(name, (app, patterns.to_vec()));
    }

    /// Removes the app `name` and its patterns.
    pub fn remove(&mut self, name: &str) {
        if self.apps.remove(name).is_some() {
            self.exact.retain(|_, n| &**n != name);
            self.wildcards.retain(|_, n| &**n != name);
        }
    }

    /// The app serving `host` (normalised: lower-case, no port, no trailing dot):
    /// one hash lookup per label, however many apps there are.
    pub fn resolve(&self, host: &str) -> Option<&T> {
        let name = self.exact.get(host).or_else(|| {
            // `.b.example.com`, then `.example.com`, then `.com`: longest first.
            host.char_indices()
                .filter(|&(i, c)| c == '.' && i > 0)
                .find_map(|(i, _)| self.wildcards.get(&host[i..]))
        })?;
        self.apps.get(name).map(|(app, _)| app)
    }

    pub fn by_name(&self, name: &str) -> Option<&T> {
        self.apps.get(name).map(|(app, _)| app)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.apps.keys().map(|n| &**n)
    }
}

/// An app loaded on its first request, and unloaded again when the node holds more
/// loaded apps than it may ([`NodeRegistry::with_max_loaded`]) and this one was used
/// least recently. Until loaded it costs a closure.
pub struct LazyApp {
    app: ArcSwapOption<RoutedApp>,
    /// Held while loading, so concurrent first requests load once.
    loading: Mutex<()>,
    /// When it was set or a request last found it, in nanoseconds since the
    /// registry's start.
    last_used: AtomicU64,
    load: Box<dyn Fn() -> Result<RoutedApp, String> + Send + Sync>,
}

impl LazyApp {
    pub fn new(load: impl Fn() -> Result<RoutedApp, String> + Send + Sync + 'static) -> Self {
        LazyApp {
            app: ArcSwapOption::empty(),
            loading: Mutex::new(()),
            last_used: AtomicU64::new(0),
            load: Box::new(load),
        }
    }

    /// One loaded already (an activation loads before it switches).
    pub fn loaded(
        app: RoutedApp,
        load: impl Fn() -> Result<RoutedApp, String> + Send + Sync + 'static,
    ) -> Self {
        let lazy = LazyApp::new(load);
        lazy.app.store(Some(Arc::new(app)));
        lazy
    }

    /// The app, and whether this call loaded it; `None` when it does not load
    /// (logged, and tried again on the next request).
    fn get(&self, now: u64) -> Option<(RoutedApp, bool)> {
        self.last_used.store(now, Ordering::Relaxed);
        if let Some(app) = &*self.app.load() {
            return Some((RoutedApp::clone(app), false));
        }
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(app) = &*self.app.load() {
            return Some((RoutedApp::clone(app), false));
        }
        match (self.load)() {
            Ok(app) => {
                self.app.store(Some(Arc::new(app.clone())));
                Some((app, true))
            }
            Err(e) => {
                tracing::error!(error = %e, "an app could not be loaded");
                None
            }
        }
    }

    fn is_loaded(&self) -> bool {
        self.app.load().is_some()
    }

    /// Drops the loaded app; requests running on it keep it until they finish.
    fn unload(&self) {
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        self.app.store(None);
    }
}

/// Many apps by host, changed at run time (deploy, activate, rollback): each change
/// swaps the whole table, so a request sees the table before or after it, never a
/// half-made one, and requests in flight finish on the version they started with.
pub struct NodeRegistry {
    routes: ArcSwap<HostRoutes<Arc<LazyApp>>>,
    /// Most apps kept loaded; 0: no limit.
    max_loaded: usize,
    started: Instant,
}

impl Default for NodeRegistry {
    fn default() -> Self {
        NodeRegistry {
            routes: ArcSwap::default(),
            max_loaded: 0,
            started: Instant::now(),
        }
    }
}

impl NodeRegistry {
    /// Keeps at most `max` apps loaded (0: no limit): loading one more unloads the one
    /// used least recently, which loads again (from the compile cache) when asked for.
    pub fn with_max_loaded(mut self, max: usize) -> Self {
        self.max_loaded = max;
        self
    }

    /// Serves the app `name` on `patterns`.
    pub fn set(&self, name: &str, app: LazyApp, patterns: &[String]) {
        app.last_used.store(self.now(), Ordering::Relaxed);
        let app = Arc::new(app);
        self.routes.rcu(|routes| {
            let mut next = HostRoutes::clone(routes);
            next.set(name, app.clone(), patterns);
            next
        });
        if app.is_loaded() {
            self.evict_beyond_limit(&app);
        }
    }

    /// How many apps are routed, and how many of them are loaded.
    pub fn loaded(&self) -> (usize, usize) {
        let routes = self.routes.load();
        let loaded = routes
            .apps
            .values()
            .filter(|(app, _)| app.is_loaded())
            .count();
        (routes.apps.len(), loaded)
    }

    /// Stops serving the app `name`.
    pub fn remove(&self, name: &str) {
        self.routes.rcu(|routes| {
            let mut next = HostRoutes::clone(routes);
            next.remove(name);
            next
        });
    }

    fn get(&self, app: &LazyApp) -> Option<RoutedApp> {
        let (routed, loaded_now) = app.get(self.now())?;
        if loaded_now {
            self.evict_beyond_limit(app);
        }
        Some(routed)
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Unloads the least recently used apps (other than `keep`) past the limit. A scan
    /// of the table, done only when an app was loaded.
    fn evict_beyond_limit(&self, keep: &LazyApp) {
        if self.max_loaded == 0 {
            return;
        }
        let routes = self.routes.load();
        let mut loaded: Vec<&Arc<LazyApp>> = routes
            .apps
            .values()
            .map(|(app, _)| app)
            .filter(|app| app.is_loaded() && !std::ptr::eq(&***app, keep))
            .collect();
        let excess = (loaded.len() + 1).saturating_sub(self.max_loaded);
        if excess == 0 {
            return;
        }
        loaded.sort_by_key(|app| app.last_used.load(Ordering::Relaxed));
        for app in loaded.into_iter().take(excess) {
            app.unload();
        }
    }
}

impl AppRegistry for NodeRegistry {
    fn resolve(&self, host: Option<&str>) -> Option<RoutedApp> {
        let routes = self.routes.load();
        self.get(routes.resolve(host?)?)
    }

    fn by_name(&self, name: &str) -> Option<RoutedApp> {
        let routes = self.routes.load();
        self.get(routes.by_name(name)?)
    }

    /// A node is ready once it routes: services are loaded on their first request,
    /// and one with none yet takes deploys.
    fn is_ready(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn exact_names_win_over_wildcards_and_longer_wildcards_over_shorter() {
        let mut routes = HostRoutes::default();
        routes.set("www", "www", &patterns(&["www.example.com"]));
        routes.set("any", "any", &patterns(&["*.example.com"]));
        routes.set(
            "api",
            "api",
            &patterns(&["*.api.example.com", "api.example.com"]),
        );
        assert_eq!(routes.resolve("www.example.com"), Some(&"www"));
        assert_eq!(routes.resolve("shop.example.com"), Some(&"any"));
        assert_eq!(routes.resolve("v1.api.example.com"), Some(&"api"));
        assert_eq!(routes.resolve("api.example.com"), Some(&"api"));
        // A wildcard covers subdomains, not the name itself, nor look-alikes.
        assert_eq!(routes.resolve("example.com"), None);
        assert_eq!(routes.resolve("badexample.com"), None);
        assert_eq!(routes.resolve("unknown.test"), None);
    }

    #[test]
    fn replacing_and_removing_an_app_updates_its_patterns() {
        let mut routes = HostRoutes::default();
        routes.set(
            "shop",
            "v1",
            &patterns(&["shop.example.com", "*.shop.example.com"]),
        );
        routes.set("shop", "v2", &patterns(&["shop.example.com"]));
        assert_eq!(routes.resolve("shop.example.com"), Some(&"v2"));
        assert_eq!(
            routes.resolve("eu.shop.example.com"),
            None,
            "pattern dropped"
        );
        // A pattern moved to another app leaves the first one.
        routes.set("blog", "b1", &patterns(&["shop.example.com"]));
        assert_eq!(routes.resolve("shop.example.com"), Some(&"b1"));
        routes.remove("blog");
        assert_eq!(routes.resolve("shop.example.com"), None);
        assert_eq!(routes.by_name("shop"), Some(&"v2"));
        let names: Vec<&str> = routes.names().collect();
        assert_eq!(names, ["shop"]);
    }
}
