//! Host routing for a node serving many apps: exact names first, then the longest
//! matching `*.suffix` wildcard; each pattern belongs to one app.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::registry::{AppRegistry, RoutedApp};

/// Apps by name, and the host patterns that reach them.
#[derive(Debug, Clone)]
pub struct HostRoutes<T> {
    apps: HashMap<Arc<str>, (T, Vec<String>)>,
    exact: HashMap<String, Arc<str>>,
    /// `(".example.com", app)`, longest suffix first.
    wildcards: Vec<(String, Arc<str>)>,
}

impl<T> Default for HostRoutes<T> {
    fn default() -> Self {
        HostRoutes {
            apps: HashMap::new(),
            exact: HashMap::new(),
            wildcards: Vec::new(),
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
                    self.wildcards.retain(|(s, _)| s != suffix);
                    self.wildcards.push((suffix.to_owned(), name.clone()));
                }
                None => {
                    self.exact.insert(pattern.clone(), name.clone());
                }
            }
        }
        self.wildcards
            .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        self.apps.insert(name, (app, patterns.to_vec()));
    }

    /// Removes the app `name` and its patterns.
    pub fn remove(&mut self, name: &str) {
        if self.apps.remove(name).is_some() {
            self.exact.retain(|_, n| &**n != name);
            self.wildcards.retain(|(_, n)| &**n != name);
        }
    }

    /// The app serving `host` (normalised: lower-case, no port, no trailing dot).
    pub fn resolve(&self, host: &str) -> Option<&T> {
        let name = self.exact.get(host).or_else(|| {
            self.wildcards
                .iter()
                .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
                .map(|(_, n)| n)
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

/// Many apps by host, changed at run time (deploy, activate, rollback): each change
/// swaps the whole table, so a request sees the table before or after it, never a
/// half-made one, and requests in flight finish on the version they started with.
#[derive(Default)]
pub struct NodeRegistry {
    routes: ArcSwap<HostRoutes<RoutedApp>>,
}

impl NodeRegistry {
    /// Serves `app` (a new version, or a new app) on `patterns`.
    pub fn set(&self, app: RoutedApp, patterns: &[String]) {
        self.routes.rcu(|routes| {
            let mut next = HostRoutes::clone(routes);
            next.set(&app.name, app.clone(), patterns);
            next
        });
    }

    /// Stops serving the app `name`.
    pub fn remove(&self, name: &str) {
        self.routes.rcu(|routes| {
            let mut next = HostRoutes::clone(routes);
            next.remove(name);
            next
        });
    }
}

impl AppRegistry for NodeRegistry {
    fn resolve(&self, host: Option<&str>) -> Option<RoutedApp> {
        self.routes.load().resolve(host?).cloned()
    }

    fn by_name(&self, name: &str) -> Option<RoutedApp> {
        self.routes.load().by_name(name).cloned()
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
