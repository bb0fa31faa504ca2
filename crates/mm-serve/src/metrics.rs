//! Request counts and latencies per route, for `GET /metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

/// Latencies kept per route for the percentiles (the most recent ones).
const WINDOW: usize = 10_000;

#[derive(Debug, Default)]
struct Route {
    count: u64,
    by_status: BTreeMap<u16, u64>,
    recent_ms: VecDeque<f64>,
    total_ms: f64,
}

/// Counters of every route the service answered.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Metrics {
    /// Records one answered request.
    pub fn record(&self, route: &str, status: u16, latency: Duration) {
        let ms = latency.as_secs_f64() * 1e3;
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let r = routes.entry(route.to_string()).or_default();
        r.count += 1;
        *r.by_status.entry(status).or_default() += 1;
        r.total_ms += ms;
        if r.recent_ms.len() == WINDOW {
            r.recent_ms.pop_front();
        }
        r.recent_ms.push_back(ms);
    }

    /// Per route: count, counts by status, mean, p50, p90 and p99 latency in milliseconds
    /// (percentiles over the last 10,000 requests).
    pub fn snapshot(&self) -> Value {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = serde_json::Map::new();
        for (name, r) in routes.iter() {
            let mut sorted: Vec<f64> = r.recent_ms.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            out.insert(
                name.clone(),
                json!({
                    "count": r.count,
                    "by_status": r.by_status.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                    "mean_ms": r.total_ms / r.count.max(1) as f64,
                    "p50_ms": percentile(&sorted, 50.0),
                    "p90_ms": percentile(&sorted, 90.0),
                    "p99_ms": percentile(&sorted, 99.0),
                }),
            );
        }
        Value::Object(out)
    }
}
