//! Per-app request metrics, counted in the pipeline's last stage and shown by the
//! admin listener's `/metrics`. Counting is a few relaxed atomic additions per
//! request, on counters the app's [`RoutedApp`](crate::RoutedApp) carries (no map
//! lookup on the request path).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use verge_runtime::{Failure, Report};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Failure outcomes counted, by their access-log code.
const FAILURES: [&str; 9] = [
    "trap",
    "limit:memory",
    "limit:cpu",
    "limit:wall_time",
    "limit:request_body",
    "guest_error",
    "no_response",
    "interim_status",
    "overloaded",
];

/// The counters of one app.
#[derive(Debug, Default)]
pub struct AppMetrics {
    /// Responses by status class, 1xx to 5xx.
    by_class: [AtomicU64; 5],
    /// Requests for which a guest ran (an instance was started).
    instances: AtomicU64,
    guest_cpu_us: AtomicU64,
    /// Failed guest runs, by [`FAILURES`].
    failures: [AtomicU64; FAILURES.len()],
    /// Latency histogram: counts per bucket (the last is +Inf), sum, count.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    /// Requests the HTTP cache in front looked up, and of those the ones it
    /// answered from a stored object (fresh, collapsed, stale or revalidated).
    cache_lookups: AtomicU64,
    cache_hits: AtomicU64,
    /// Subrequests that got no response from their origin.
    origin_errors: AtomicU64,
}

/// An app's counters at one moment (for the traffic history's differences).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub by_class: [u64; 5],
    pub instances: u64,
    pub guest_cpu_us: u64,
    pub failures: [u64; FAILURES.len()],
    pub buckets: [u64; BUCKETS.len() + 1],
    pub cache_lookups: u64,
    pub cache_hits: u64,
    pub origin_errors: u64,
}

impl Counters {
    /// What happened between `earlier` and `self` (a counter that went back, an app
    /// whose counters were made anew, counts from zero).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let d = |now: u64, then: u64| now.checked_sub(then).unwrap_or(now);
        let each = |now: &[u64], then: &[u64], out: &mut [u64]| {
            for ((o, n), t) in out.iter_mut().zip(now).zip(then) {
                *o = d(*n, *t);
            }
        };
        let mut out = Counters {
            instances: d(self.instances, earlier.instances),
            guest_cpu_us: d(self.guest_cpu_us, earlier.guest_cpu_us),
            cache_lookups: d(self.cache_lookups, earlier.cache_lookups),
            cache_hits: d(self.cache_hits, earlier.cache_hits),
            origin_errors: d(self.origin_errors, earlier.origin_errors),
            ..Counters::default()
        };
        each(&self.by_class, &earlier.by_class, &mut out.by_class);
        each(&self.failures, &earlier.failures, &mut out.failures);
        each(&self.buckets, &earlier.buckets, &mut out.buckets);
        out
    }

    /// Adds `other` in (a node's total over its apps).
    pub fn add(&mut self, other: &Counters) {
        let each = |out: &mut [u64], more: &[u64]| {
            for (o, m) in out.iter_mut().zip(more) {
                *o += m;
            }
        };
        each(&mut self.by_class, &other.by_class);
        each(&mut self.failures, &other.failures);
        each(&mut self.buckets, &other.buckets);
        self.instances += other.instances;
        self.guest_cpu_us += other.guest_cpu_us;
        self.cache_lookups += other.cache_lookups;
        self.cache_hits += other.cache_hits;
        self.origin_errors += other.origin_errors;
    }

    pub fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// Failed guest runs whose outcome is `code` (`overloaded`, `limit:cpu`…) or,
    /// with a trailing `:`, starts with it (`limit:`).
    pub fn failed(&self, code: &str) -> u64 {
        FAILURES
            .iter()
            .zip(&self.failures)
            .filter(|(c, _)| match code.strip_suffix(':') {
                Some(prefix) => c.starts_with(prefix) && c[prefix.len()..].starts_with(':'),
                None => **c == code,
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// The latency below which a share `q` of the requests finished, in
    /// milliseconds, interpolated within its histogram bucket; `None` without
    /// requests.
    pub fn latency_quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (i, &count) in self.buckets.iter().enumerate() {
            if count > 0 && (below + count) as f64 >= rank {
                let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
                let Some(&upper) = BUCKETS.get(i) else {
                    // Past the last bound: all that is known is "more than it".
                    return Some(lower * 1e3);
                };
                let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
                return Some((lower + (upper - lower) * within) * 1e3);
            }
            below += count;
        }
        Some(BUCKETS[BUCKETS.len() - 1] * 1e3)
    }
}

impl AppMetrics {
    /// Counts one finished request.
    pub(crate) fn record(
        &self,
        status: u16,
        latency: Duration,
        report: Option<&Report>,
        cache_hit: Option<bool>,
    ) {
        if let Some(hit) = cache_hit {
            self.cache_lookups.fetch_add(1, Ordering::Relaxed);
            if hit {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
            }
        }
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
        let Some(report) = report else { return };
        // A report with a guest run behind it (not a refusal before any instance).
        if report.trace_id.is_some() {
            self.instances.fetch_add(1, Ordering::Relaxed);
        }
        self.guest_cpu_us
            .fetch_add(report.guest_cpu.as_micros() as u64, Ordering::Relaxed);
        if report.origin_errors > 0 {
            self.origin_errors
                .fetch_add(u64::from(report.origin_errors), Ordering::Relaxed);
        }
        if let Err(failure) = &report.outcome {
            let code = Failure::code(failure);
            if let Some(i) = FAILURES.iter().position(|&c| c == code) {
                self.failures[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl AppMetrics {
    /// The counters now.
    pub fn counters(&self) -> Counters {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            by_class: self.by_class.each_ref().map(load),
            instances: load(&self.instances),
            guest_cpu_us: load(&self.guest_cpu_us),
            failures: self.failures.each_ref().map(load),
            buckets: self.buckets.each_ref().map(load),
            cache_lookups: load(&self.cache_lookups),
            cache_hits: load(&self.cache_hits),
            origin_errors: load(&self.origin_errors),
        }
    }
}

/// The metrics of every app the node has served, by name. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    apps: Arc<Mutex<BTreeMap<Arc<str>, Arc<AppMetrics>>>>,
}

impl Metrics {
    /// The counters of `app`, made on first use; an app reloaded under the same name
    /// keeps counting where it was.
    pub fn app(&self, app: &str) -> Arc<AppMetrics> {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.entry(app.into()).or_default().clone()
    }

    /// Responses served, over every app.
    pub fn requests_total(&self) -> u64 {
        let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.values()
            .flat_map(|app| app.by_class.iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Every app's counters now.
    pub fn snapshot(&self) -> Vec<(Arc<str>, Counters)> {
        let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.iter()
            .map(|(k, v)| (k.clone(), v.counters()))
            .collect()
    }

    /// Prometheus text for every app.
    pub(crate) fn render(&self, out: &mut String) {
        let apps: Vec<(Arc<str>, Arc<AppMetrics>)> = self
            .apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str(
            "# HELP verge_requests_total Responses by app and status class.\n\
             # TYPE verge_requests_total counter\n",
        );
        for (app, m) in &apps {
            for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "verge_requests_total{{app=\"{app}\",class=\"{class}\"}} {}",
                    load(&m.by_class[i])
                );
            }
        }
        out.push_str(
            "# HELP verge_instances_total Requests a guest instance ran for.\n\
             # TYPE verge_instances_total counter\n",
        );
        for (app, m) in &apps {
            let _ = writeln!(
                out,
                "verge_instances_total{{app=\"{app}\"}} {}",
                load(&m.instances)
            );
        }
        out.push_str(
            "# HELP verge_guest_cpu_seconds_total Guest CPU time.\n\
             # TYPE verge_guest_cpu_seconds_total counter\n",
        );
        for (app, m) in &apps {
            let _ = writeln!(
                out,
                "verge_guest_cpu_seconds_total{{app=\"{app}\"}} {}",
                load(&m.guest_cpu_us) as f64 / 1e6
            );
        }
        out.push_str(
            "# HELP verge_guest_failures_total Failed guest runs by outcome (traps, limit hits).\n\
             # TYPE verge_guest_failures_total counter\n",
        );
        for (app, m) in &apps {
            for (i, code) in FAILURES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "verge_guest_failures_total{{app=\"{app}\",outcome=\"{code}\"}} {}",
                    load(&m.failures[i])
                );
            }
        }
        out.push_str(
            "# HELP verge_request_duration_seconds Time from the request's arrival to its access line.\n\
             # TYPE verge_request_duration_seconds histogram\n",
        );
        for (app, m) in &apps {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += load(&m.buckets[i]);
                let _ = writeln!(
                    out,
                    "verge_request_duration_seconds_bucket{{app=\"{app}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += load(&m.buckets[BUCKETS.len()]);
            let _ = writeln!(
                out,
                "verge_request_duration_seconds_bucket{{app=\"{app}\",le=\"+Inf\"}} {cumulative}\n\
                 verge_request_duration_seconds_sum{{app=\"{app}\"}} {}\n\
                 verge_request_duration_seconds_count{{app=\"{app}\"}} {cumulative}",
                load(&m.latency_sum_us) as f64 / 1e6
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_class_and_latency_bucket() {
        let metrics = Metrics::default();
        let app = metrics.app("shop");
        app.record(200, Duration::from_micros(300), None, None);
        app.record(503, Duration::from_millis(30), None, Some(false));
        app.record(404, Duration::from_secs(20), None, Some(true));
        assert!(Arc::ptr_eq(&app, &metrics.app("shop")), "one set per app");
        let mut text = String::new();
        metrics.render(&mut text);
        for line in [
            "verge_requests_total{app=\"shop\",class=\"2xx\"} 1",
            "verge_requests_total{app=\"shop\",class=\"4xx\"} 1",
            "verge_requests_total{app=\"shop\",class=\"5xx\"} 1",
            "verge_request_duration_seconds_bucket{app=\"shop\",le=\"0.0005\"} 1",
            "verge_request_duration_seconds_bucket{app=\"shop\",le=\"0.05\"} 2",
            "verge_request_duration_seconds_bucket{app=\"shop\",le=\"10\"} 2",
            "verge_request_duration_seconds_bucket{app=\"shop\",le=\"+Inf\"} 3",
            "verge_request_duration_seconds_count{app=\"shop\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        let counters = app.counters();
        assert_eq!((counters.cache_lookups, counters.cache_hits), (2, 1));
        assert_eq!(counters.requests(), 3);
    }

    #[test]
    fn quantiles_interpolate_within_buckets_and_differences_restart_from_zero() {
        let metrics = Metrics::default();
        let app = metrics.app("shop");
        let before = app.counters();
        // 100 requests between 5 and 10 ms: the median is half way through that
        // bucket, the 99th percentile near its top.
        for _ in 0..100 {
            app.record(200, Duration::from_millis(7), None, None);
        }
        let delta = app.counters().since(&before);
        assert_eq!(delta.requests(), 100);
        assert_eq!(delta.latency_quantile_ms(0.5), Some(7.5));
        assert!((delta.latency_quantile_ms(0.99).unwrap() - 9.95).abs() < 1e-9);
        assert_eq!(Counters::default().latency_quantile_ms(0.5), None);
        // A slower request than the last bound says "at least 10 s".
        app.record(200, Duration::from_secs(30), None, None);
        let all = app.counters();
        assert_eq!(all.latency_quantile_ms(1.0), Some(10_000.0));
        // Counters made anew (a restarted source) count from zero.
        assert_eq!(Counters::default().since(&all), Counters::default());
        let mut twice = all.clone();
        twice.add(&all);
        assert_eq!(twice.requests(), 202);
        assert_eq!(all.failed("limit:"), 0);
    }
}
