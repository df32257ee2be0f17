//! The last hour of traffic at 10-second resolution, per app and for the whole
//! node, kept in memory for the console's charts and for scripts
//! (`GET /admin/v1/traffic`). Every [`STEP`] the node takes the difference of each
//! app's counters (the ones `/metrics` shows; nothing is added to the request path)
//! into a [`Sample`] ([`Traffic::sample`], called by the node). A fleet node also keeps the other nodes' samples, which they
//! publish every step (`verge-node`'s traffic relay).
//!
//! Size: at most [`SAMPLES`] samples (one hour) per series, a series being one
//! service on one node or one node's total, and at most [`MAX_SERIES`] series (the
//! least recently active go first). An interval with no request takes no room, and
//! a series idle for an hour is dropped. A sample is about 150 bytes, so the whole
//! history stays under 60 MB even at the cap, and is a few kB per busy service.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metrics::{Counters, Metrics};

/// The resolution.
pub const STEP: Duration = Duration::from_secs(10);
/// Samples kept per series: an hour.
pub const SAMPLES: usize = 360;
/// Series kept at most.
pub const MAX_SERIES: usize = 1024;
/// The series of a node's total, over its services.
pub const NODE_TOTAL: &str = "*";

/// What one series did in one [`STEP`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Sample {
    /// The end of the interval, in milliseconds since the Unix epoch.
    pub t: u64,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub requests: [u64; 5],
    /// Latency percentiles (arrival to access line), from the latency histogram.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests a guest instance ran for, and their guest CPU time summed.
    pub instances: u64,
    pub guest_cpu_us: u64,
    /// Requests the HTTP cache in front looked up, and of those answered from it.
    pub cache_lookups: u64,
    pub cache_hits: u64,
    /// Subrequests that got no response from their origin.
    pub origin_errors: u64,
    /// Requests refused because the service or node was at its instance limit.
    pub overloaded: u64,
    /// Requests stopped by a limit: memory, CPU time, wall time, request body.
    pub limits: u64,
    /// Other failed guest runs: traps, errors, no response.
    pub failures: u64,
}

impl Sample {
    /// The sample of `delta` ending at `t`; `None` when nothing happened.
    pub fn of(t: u64, delta: &Counters) -> Option<Sample> {
        if delta.requests() == 0 && delta.instances == 0 {
            return None;
        }
        let limits = delta.failed("limit:");
        let overloaded = delta.failed("overloaded");
        let failed: u64 = delta.failures.iter().sum();
        Some(Sample {
            t,
            requests: delta.by_class,
            p50_ms: delta.latency_quantile_ms(0.5),
            p99_ms: delta.latency_quantile_ms(0.99),
            instances: delta.instances,
            guest_cpu_us: delta.guest_cpu_us,
            cache_lookups: delta.cache_lookups,
            cache_hits: delta.cache_hits,
            origin_errors: delta.origin_errors,
            overloaded,
            limits,
            failures: failed - limits - overloaded,
        })
    }
}

/// One service on one node (or, as [`NODE_TOTAL`], the node's total), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Series {
    pub node: String,
    pub service: String,
    pub samples: Vec<Sample>,
}

/// `GET /admin/v1/traffic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TrafficHistory {
    /// The length of each sample's interval, in seconds.
    pub step_s: u64,
    /// Intervals with no sample had no request.
    pub series: Vec<Series>,
}

/// One round of a node's samples, as it publishes them to the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub node: String,
    /// By service; [`NODE_TOTAL`] for the node's total.
    pub samples: Vec<(String, Sample)>,
}

/// The history, this node's and (on a fleet) the others'.
pub struct Traffic {
    node: String,
    metrics: Metrics,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Whether a round was taken: apps first seen after it count from zero.
    started: bool,
    /// Each app's counters at the last round.
    last: HashMap<Arc<str>, Counters>,
    /// By (node, service).
    series: HashMap<(String, String), VecDeque<Sample>>,
}

impl Traffic {
    /// The history of `node`'s apps, counted by `metrics`.
    pub fn new(node: &str, metrics: Metrics) -> Arc<Traffic> {
        Arc::new(Traffic {
            node: node.to_owned(),
            metrics,
            inner: Mutex::default(),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes this round's samples (ending at `now_ms`), keeps them and returns them
    /// for the fleet. The first round only notes where the counters are.
    pub fn sample(&self, now_ms: u64) -> Round {
        let snapshot = self.metrics.snapshot();
        let mut inner = self.inner();
        let first = !std::mem::replace(&mut inner.started, true);
        let mut total = Counters::default();
        let mut samples = Vec::new();
        for (app, counters) in snapshot {
            let delta = match inner.last.get(&app) {
                Some(before) => counters.since(before),
                // An app counted for the first time since the node started.
                None if !first => counters.clone(),
                None => Counters::default(),
            };
            total.add(&delta);
            if let Some(sample) = Sample::of(now_ms, &delta) {
                samples.push((app.to_string(), sample));
            }
            inner.last.insert(app, counters);
        }
        if let Some(sample) = Sample::of(now_ms, &total) {
            samples.push((NODE_TOTAL.to_owned(), sample));
        }
        let round = Round {
            node: self.node.clone(),
            samples,
        };
        inner.keep(&round, now_ms);
        round
    }

    /// Keeps another node's round.
    pub fn insert(&self, round: &Round, now_ms: u64) {
        if round.node != self.node {
            self.inner().keep(round, now_ms);
        }
    }

    /// The series of `service` (every node's, and each node's total when `None`),
    /// sorted by node then service.
    pub fn history(&self, service: Option<&str>) -> TrafficHistory {
        let inner = self.inner();
        let mut series: Vec<Series> = inner
            .series
            .iter()
            .filter(|((_, s), _)| service.is_none_or(|want| want == s))
            .map(|((node, service), samples)| Series {
                node: node.clone(),
                service: service.clone(),
                samples: samples.iter().cloned().collect(),
            })
            .collect();
        series.sort_by(|a, b| (&a.node, &a.service).cmp(&(&b.node, &b.service)));
        TrafficHistory {
            step_s: STEP.as_secs(),
            series,
        }
    }
}

impl Inner {
    fn keep(&mut self, round: &Round, now_ms: u64) {
        for (service, sample) in &round.samples {
            let samples = self
                .series
                .entry((round.node.clone(), service.clone()))
                .or_default();
            samples.push_back(sample.clone());
            while samples.len() > SAMPLES {
                samples.pop_front();
            }
        }
        let horizon = now_ms.saturating_sub(STEP.as_millis() as u64 * SAMPLES as u64);
        self.series.retain(|_, samples| {
            while samples.front().is_some_and(|s| s.t <= horizon) {
                samples.pop_front();
            }
            !samples.is_empty()
        });
        if self.series.len() > MAX_SERIES {
            let mut by_last: Vec<(u64, (String, String))> = self
                .series
                .iter()
                .map(|(k, s)| (s.back().map_or(0, |s| s.t), k.clone()))
                .collect();
            by_last.sort();
            for (_, key) in by_last.into_iter().take(self.series.len() - MAX_SERIES) {
                self.series.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(metrics: &Metrics, app: &str, n: usize, status: u16) {
        let m = metrics.app(app);
        for _ in 0..n {
            m.record(status, Duration::from_millis(3), None, Some(status == 200));
        }
    }

    #[test]
    fn rounds_hold_each_interval_s_differences_and_the_node_s_total() {
        let metrics = Metrics::default();
        served(&metrics, "shop", 5, 200);
        let traffic = Traffic::new("pop-a", metrics.clone());
        // The first round notes the counters: what came before is not this hour's.
        assert!(traffic.sample(10_000).samples.is_empty());
        served(&metrics, "shop", 3, 200);
        served(&metrics, "shop", 1, 503);
        served(&metrics, "blog", 2, 404);
        let round = traffic.sample(20_000);
        let by: HashMap<&str, &Sample> =
            round.samples.iter().map(|(s, x)| (s.as_str(), x)).collect();
        assert_eq!(by["shop"].requests, [0, 3, 0, 0, 1]);
        assert_eq!((by["shop"].cache_lookups, by["shop"].cache_hits), (4, 3));
        assert_eq!(by["blog"].requests, [0, 0, 0, 2, 0]);
        assert_eq!(by[NODE_TOTAL].requests, [0, 3, 0, 2, 1]);
        assert!(by["shop"].p50_ms.unwrap() > 2.5 && by["shop"].p99_ms.unwrap() <= 5.0);
        // A quiet interval takes no room.
        assert!(traffic.sample(30_000).samples.is_empty());
        let shop = traffic.history(Some("shop"));
        assert_eq!(shop.step_s, 10);
        assert_eq!(shop.series.len(), 1);
        assert_eq!(shop.series[0].samples.len(), 1);

        // A node that served nothing before its first round counts an app's first
        // requests whole.
        let metrics = Metrics::default();
        let fresh = Traffic::new("pop-b", metrics.clone());
        assert!(fresh.sample(10_000).samples.is_empty());
        served(&metrics, "shop", 2, 200);
        assert_eq!(fresh.sample(20_000).samples[0].1.requests, [0, 2, 0, 0, 0]);
    }

    #[test]
    fn other_nodes_rounds_are_kept_and_an_hour_is_the_horizon() {
        let traffic = Traffic::new("pop-a", Metrics::default());
        let sample = |t| {
            Sample::of(t, &{
                let metrics = Metrics::default();
                served(&metrics, "shop", 1, 200);
                metrics.app("shop").counters()
            })
        };
        let round = |t| Round {
            node: "pop-b".into(),
            samples: vec![("shop".into(), sample(t).unwrap())],
        };
        traffic.insert(&round(1_000), 1_000);
        traffic.insert(&round(11_000), 11_000);
        // Its own rounds are never taken from the fleet twice.
        traffic.insert(
            &Round {
                node: "pop-a".into(),
                ..round(11_000)
            },
            11_000,
        );
        let all = traffic.history(None);
        assert_eq!(all.series.len(), 1);
        assert_eq!(all.series[0].node, "pop-b");
        assert_eq!(all.series[0].samples.len(), 2);
        // An hour on, both are past the horizon; the new one stays.
        traffic.insert(&round(3_601_000 + 10_000), 3_611_000);
        let all = traffic.history(None);
        assert_eq!(all.series[0].samples.len(), 1);
    }
}
