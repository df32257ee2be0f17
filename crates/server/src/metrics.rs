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
}

impl AppMetrics {
    /// Counts one finished request.
    pub(crate) fn record(&self, status: u16, latency: Duration, report: Option<&Report>) {
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
        if let Err(failure) = &report.outcome {
            let code = Failure::code(failure);
            if let Some(i) = FAILURES.iter().position(|&c| c == code) {
                self.failures[i].fetch_add(1, Ordering::Relaxed);
            }
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
        app.record(200, Duration::from_micros(300), None);
        app.record(503, Duration::from_millis(30), None);
        app.record(404, Duration::from_secs(20), None);
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
    }
}
