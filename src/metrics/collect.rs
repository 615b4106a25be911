//! Usage history, read in a number of queries that does not depend on the
//! number of containers: one range query per metric, per batch of
//! namespaces, per time chunk, plus four instant queries for throttling,
//! restarts and OOM kills over the whole window.
//!
//! Namespaces are packed into batches of at most [`MAX_SERIES_PER_QUERY`]
//! pod containers, so small namespaces share a query and a large one gets
//! its own; time is cut into chunks of at most `history.chunk` (and never
//! more than Prometheus' 11,000 points per series). Each response is decoded
//! straight into the estimators and dropped, so memory is bounded by one
//! chunk per query in flight.

use std::collections::{BTreeMap, HashMap};

use tokio::task::JoinSet;

use super::MetricsError;
use super::client::{Labels, PromClient};
use super::discovery::Inventory;
use super::promql::{self, Scope};
use crate::recommend::usage::{UsageEstimator, Window};

/// Upper bound on pod containers (series) one range query may return.
pub const MAX_SERIES_PER_QUERY: usize = 2_000;
/// Prometheus refuses range queries of more points per series than this.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;
/// Range queries in flight at once.
pub const CONCURRENCY: usize = 2;

/// Grids and chunking of one collection run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CollectPlan {
    pub window: Window,
    /// CPU step: each sample is the average over the step before it.
    pub resolution_s: i64,
    /// Memory step: each sample is the peak over the interval before it.
    pub peak_interval_s: i64,
    /// Longest span of one range query.
    pub chunk_s: i64,
}

/// The usage of every container of the inventory.
#[derive(Debug)]
pub struct Collected {
    /// Indexed like [`Inventory::containers`].
    pub estimators: Vec<UsageEstimator>,
    /// Counted data problems: reason → count.
    pub skipped: BTreeMap<String, u64>,
}

/// Called after each query with (done, total).
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Sync);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Cpu,
    Memory,
}

/// `[start, end]` spans of at most `points` steps, on a grid of `step`
/// anchored at `window_end`, covering `(window_start, window_end]`.
pub fn chunks(window_start: i64, window_end: i64, step: i64, max_span: i64) -> Vec<(i64, i64)> {
    let points = (max_span / step).clamp(1, MAX_POINTS_PER_SERIES);
    let total = (window_end - window_start) / step;
    let mut out = Vec::new();
    let mut k = total; // number of grid points before window_end still to cover
    while k > 0 {
        let n = k.min(points);
        let first = window_end - (k - 1) * step;
        let last = window_end - (k - n) * step;
        out.push((first, last));
        k -= n;
    }
    out
}

/// Packs namespaces into batches of at most `max_series` series.
pub fn batches<'a>(
    series_per_namespace: &BTreeMap<&'a str, usize>,
    max_series: usize,
) -> Vec<Vec<&'a str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut load = 0usize;
    for (&namespace, &series) in series_per_namespace {
        match out.last_mut() {
            Some(batch) if load + series <= max_series => {
                batch.push(namespace);
                load += series;
            }
            _ => {
                out.push(vec![namespace]);
                load = series;
            }
        }
    }
    out
}

/// The scope of one batch of namespaces: one exact namespace, or an
/// alternation of escaped names.
pub fn batch_scope(base: &Scope, namespaces: &[&str]) -> Scope {
    if let [one] = namespaces {
        base.namespace(one)
    } else {
        let exact: Vec<String> = namespaces.iter().map(|n| regex::escape(n)).collect();
        base.namespaces(&exact, &[])
    }
}

fn key(labels: &Labels) -> (String, String, String) {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    (get("namespace"), get("pod"), get("container"))
}

/// Reads the usage of every container in `inventory`.
pub async fn collect(
    client: &PromClient,
    scope: &Scope,
    inventory: &Inventory,
    plan: &CollectPlan,
    progress: ProgressFn<'_>,
) -> Result<Collected, MetricsError> {
    let window = plan.window;
    let mut estimators: Vec<UsageEstimator> = inventory
        .containers
        .iter()
        .map(|_| UsageEstimator::new(&window))
        .collect();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();

    let per_namespace = inventory.pods_per_namespace();
    let mut queries: Vec<(Metric, String, i64, i64, i64)> = Vec::new();
    for batch in batches(&per_namespace, MAX_SERIES_PER_QUERY) {
        let scope = batch_scope(scope, &batch);
        for (metric, step) in [
            (Metric::Cpu, plan.resolution_s),
            (Metric::Memory, plan.peak_interval_s),
        ] {
            let query = match metric {
                Metric::Cpu => promql::cpu_usage(&scope, step),
                Metric::Memory => promql::memory_peak(&scope, step),
            };
            for (start, end) in chunks(window.start, window.end, step, plan.chunk_s) {
                queries.push((metric, query.clone(), start, end, step));
            }
        }
    }
    let total = queries.len() as u64 + 4;
    let mut done = 0u64;
    progress(done, total);

    let mut pending = queries.into_iter();
    let mut in_flight: JoinSet<(Metric, String, i64, Result<bytes::Bytes, MetricsError>)> =
        JoinSet::new();
    loop {
        while in_flight.len() < CONCURRENCY {
            let Some((metric, query, start, end, step)) = pending.next() else {
                break;
            };
            let client = client.clone();
            in_flight.spawn(async move {
                let body = client.fetch_range(&query, start, end, step).await;
                (metric, query, step, body)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let (metric, query, step, body) =
            joined.map_err(|e| MetricsError::Setup(format!("query task failed: {e}")))?;
        let body = body?;
        let mut unknown_pods = 0u64;
        client.decode_body(&query, &body, |labels, samples| {
            let Some((index, pod)) = inventory.container_of(labels) else {
                // Init containers of known pods are expected; unknown pods are not.
                let known_pod = labels
                    .get("namespace")
                    .zip(labels.get("pod"))
                    .is_some_and(|(n, p)| inventory.pods.contains_key(&(n.clone(), p.clone())));
                if !known_pod {
                    unknown_pods += 1;
                }
                return;
            };
            let estimator = &mut estimators[index];
            for &(t, v) in samples {
                // Age of the container at the start of the sample's interval.
                let since_start = pod.start.map(|s| t - step - s);
                let outcome = match metric {
                    Metric::Cpu => estimator.add_cpu(&window, t, v, since_start),
                    Metric::Memory => estimator.add_memory_peak(&window, t, v, since_start),
                };
                if let Err(reason) = outcome {
                    *skipped.entry(reason.to_string()).or_default() += 1;
                }
            }
        })?;
        if unknown_pods > 0 {
            *skipped
                .entry("usage series of pods unknown to kube-state-metrics ignored".into())
                .or_default() += unknown_pods;
        }
        done += 1;
        progress(done, total);
    }

    // Whole-window counters: one instant query each, over all namespaces.
    let span = window.end - window.start;
    let mut per_series: HashMap<(String, String, String), [f64; 4]> = HashMap::new();
    let counters = [
        promql::cfs_periods(scope, true, span),
        promql::cfs_periods(scope, false, span),
        promql::restarts(scope, span),
        promql::oom_terminated(scope, span),
    ];
    for (slot, query) in counters.iter().enumerate() {
        client
            .instant(query, window.end, |labels, samples| {
                if let Some(&(_, v)) = samples.first() {
                    per_series.entry(key(labels)).or_insert([f64::NAN; 4])[slot] = v;
                }
            })
            .await?;
        done += 1;
        progress(done, total);
    }
    for ((namespace, pod, container), [throttled, periods, restarts, oom]) in per_series {
        let Some(pod_info) = inventory.pods.get(&(namespace, pod)) else {
            continue;
        };
        let Some(&index) = pod_info.containers.get(&container) else {
            continue;
        };
        let estimator = &mut estimators[index];
        estimator.add_throttling(throttled, periods);
        let restarts = if restarts.is_finite() && restarts > 0.0 {
            restarts.round() as u32
        } else {
            0
        };
        // last_terminated_reason only tells the latest reason; restarts in a
        // window where it read OOMKilled are counted as OOM kills.
        let oom_kills = if oom >= 1.0 { restarts.max(1) } else { 0 };
        estimator.add_restarts(
            restarts,
            oom_kills,
            pod_info.memory_limits.get(&container).copied(),
            None,
        );
    }
    Ok(Collected {
        estimators,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_window_once_on_the_grid() {
        let day = 86_400;
        let c = chunks(0, 14 * day, 300, day);
        assert_eq!(c.len(), 14);
        assert_eq!(c[0], (300, day));
        assert_eq!(c[13], (13 * day + 300, 14 * day));
        for pair in c.windows(2) {
            assert_eq!(pair[1].0, pair[0].1 + 300, "contiguous");
        }
        // A partial last chunk, and the points-per-series cap.
        let c = chunks(0, 10 * 3600 + 1800, 3600, day);
        // (0, 37800] at 1h: whole intervals end at 5400..=37800; (0, 1800] is
        // less than one interval and left out.
        assert_eq!(c, vec![(5400, 37_800)]);
        let c = chunks(0, 30 * day, 60, 30 * day);
        assert!(c.iter().all(|(s, e)| (e - s) / 60 < MAX_POINTS_PER_SERIES));
        assert_eq!(
            c.iter().map(|(s, e)| (e - s) / 60 + 1).sum::<i64>(),
            30 * 24 * 60
        );
    }

    #[test]
    fn namespaces_pack_into_bounded_batches() {
        let sizes = BTreeMap::from([("a", 10), ("b", 1500), ("c", 600), ("d", 3000), ("e", 5)]);
        let b = batches(&sizes, 2000);
        assert_eq!(b, vec![vec!["a", "b"], vec!["c"], vec!["d"], vec!["e"]]);
    }
}
