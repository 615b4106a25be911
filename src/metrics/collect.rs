//! Usage history, read in a number of queries that does not depend on the
//! number of containers: one range query per metric, per batch of
//! namespaces, per time chunk, plus four range queries for throttling,
//! restarts and OOM kills per day of the window. [`fold`] reads only what
//! is new since an earlier read, so a daemon refresh costs an hour of
//! samples, not the whole window.
//!
//! Namespaces are packed into batches of at most [`MAX_SERIES_PER_QUERY`]
//! pod containers, so small namespaces share a query and a large one gets
//! its own; time is cut into chunks of at most `history.chunk`, of at most
//! [`MAX_POINTS_PER_QUERY`] points per query and never more than
//! Prometheus' 11,000 points per series. Each response is decoded straight
//! into the estimators and dropped, so memory is bounded by one chunk per
//! query in flight.

use std::collections::{BTreeMap, HashMap, HashSet};

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
/// Upper bound on the points (series × steps) of one range query: about
/// 4 MB of JSON, so the response bodies in flight stay small whatever the
/// size of a namespace.
pub const MAX_POINTS_PER_QUERY: i64 = 120_000;
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

/// Steps per series one query may read for a batch of `series` series.
pub fn points_per_series(series: usize) -> i64 {
    (MAX_POINTS_PER_QUERY / series.max(1) as i64).max(1)
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

/// How far the usage of an inventory has been read: the last grid point
/// folded in per metric, and the end of the counters' last interval. The
/// grids stay where the first read anchored them, so a later fold lines up
/// with what is already in the estimators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Folded {
    pub cpu: i64,
    pub memory: i64,
    pub counters: i64,
}

impl Folded {
    /// Nothing read yet: the grids anchored at the window's end, as a
    /// one-shot run reads them.
    pub fn before(plan: &CollectPlan) -> Folded {
        let w = plan.window;
        let anchor = |step: i64| w.end - (w.end - w.start).max(0).div_euclid(step) * step;
        Folded {
            cpu: anchor(plan.resolution_s),
            memory: anchor(plan.peak_interval_s),
            counters: w.start,
        }
    }
}

/// The last point of a grid through `from` with `step` that is not after `end`.
fn last_point(from: i64, end: i64, step: i64) -> i64 {
    from + (end - from).max(0).div_euclid(step) * step
}

/// Average cores over each step from a CPU counter read on a grid of
/// `step`: one value per pair of consecutive points; a gap or a counter
/// reset (a restarted container) yields nothing for its interval.
pub fn counter_rates(points: &[(i64, f64)], step: i64, out: &mut Vec<(i64, f64)>) {
    out.clear();
    out.extend(points.windows(2).filter_map(|pair| {
        let ((t0, v0), (t1, v1)) = (pair[0], pair[1]);
        (t1 - t0 == step && v1 >= v0).then(|| (t1, (v1 - v0) / step as f64))
    }));
}

/// Intervals of at most a day covering `(from, end]` for the counters, as
/// a range query's (start, end, step); `None` when less than a minute is new.
/// Each point then carries the increase over the interval it ends, and
/// lands in the day of that interval.
pub fn counter_grid(from: i64, end: i64) -> Option<(i64, i64, i64)> {
    const DAY_S: i64 = 86_400;
    let span = end - from;
    if span < 60 {
        return None;
    }
    let n = (span + DAY_S - 1) / DAY_S;
    let step = (span + n - 1) / n;
    Some((end - (n - 1) * step, end, step))
}

/// Reads the usage of every container in `inventory` over the plan's window.
pub async fn collect(
    client: &PromClient,
    scope: &Scope,
    inventory: &Inventory,
    plan: &CollectPlan,
    progress: ProgressFn<'_>,
) -> Result<Collected, MetricsError> {
    let mut estimators: Vec<UsageEstimator> = inventory
        .containers
        .iter()
        .map(|_| UsageEstimator::new(&plan.window))
        .collect();
    let (_, skipped) = fold(
        client,
        scope,
        inventory,
        plan,
        Folded::before(plan),
        &mut estimators,
        progress,
    )
    .await?;
    Ok(Collected {
        estimators,
        skipped,
    })
}

/// Folds the usage after `from` up to the plan's window end into
/// `estimators` (indexed like [`Inventory::containers`]); returns how far
/// it read and the data problems it counted.
pub async fn fold(
    client: &PromClient,
    scope: &Scope,
    inventory: &Inventory,
    plan: &CollectPlan,
    from: Folded,
    estimators: &mut [UsageEstimator],
    progress: ProgressFn<'_>,
) -> Result<(Folded, BTreeMap<String, u64>), MetricsError> {
    let window = plan.window;
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let to = Folded {
        cpu: last_point(from.cpu, window.end, plan.resolution_s),
        memory: last_point(from.memory, window.end, plan.peak_interval_s),
        counters: window.end,
    };

    let per_namespace = inventory.pods_per_namespace();
    let mut queries: Vec<(Metric, String, i64, i64, i64)> = Vec::new();
    for batch in batches(&per_namespace, MAX_SERIES_PER_QUERY) {
        let series: usize = batch.iter().map(|n| per_namespace[n]).sum();
        let scope = batch_scope(scope, &batch);
        for (metric, step, first, last) in [
            (Metric::Cpu, plan.resolution_s, from.cpu, to.cpu),
            (Metric::Memory, plan.peak_interval_s, from.memory, to.memory),
        ] {
            let query = match metric {
                Metric::Cpu => promql::cpu_counter(&scope),
                Metric::Memory => promql::memory_peak(&scope, step),
            };
            let span = plan.chunk_s.min(points_per_series(series) * step);
            for (start, end) in chunks(first, last, step, span) {
                // A CPU point is the difference from the point before it.
                let start = if metric == Metric::Cpu {
                    start - step
                } else {
                    start
                };
                queries.push((metric, query.clone(), start, end, step));
            }
        }
    }
    let counters = counter_grid(from.counters, to.counters);
    let total = queries.len() as u64 + if counters.is_some() { 4 } else { 0 };
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
        // The last point read per pod container: a second series of the
        // same container (another scrape job) adds nothing it already has.
        let mut read_to: HashMap<(String, String, String), i64> = HashMap::new();
        let mut rates = Vec::new();
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
            let samples = match metric {
                Metric::Cpu => {
                    counter_rates(samples, step, &mut rates);
                    &rates[..]
                }
                Metric::Memory => samples,
            };
            let seen = read_to.entry(key(labels)).or_insert(i64::MIN);
            let estimator = &mut estimators[index];
            for &(t, v) in samples.iter().filter(|(t, _)| *t > *seen) {
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
            if let Some(&(last, _)) = samples.last() {
                *seen = (*seen).max(last);
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

    if let Some(grid) = counters {
        fold_counters(client, scope, inventory, grid, estimators, &mut |()| {
            done += 1;
            progress(done, total);
        })
        .await?;
    }
    Ok((to, skipped))
}

/// Throttling, restarts and OOM kills per interval of `grid`: two range
/// queries per pair of counters, the rarer one (throttled periods, the
/// OOMKilled reason) first and kept only where it is set.
async fn fold_counters(
    client: &PromClient,
    scope: &Scope,
    inventory: &Inventory,
    (start, end, step): (i64, i64, i64),
    estimators: &mut [UsageEstimator],
    done: &mut dyn FnMut(()),
) -> Result<(), MetricsError> {
    // Per pod container: the points where the rarer counter is set.
    let mut throttled: HashMap<(String, String, String), HashMap<i64, f64>> = HashMap::new();
    client
        .range(
            &promql::cfs_periods(scope, true, step),
            start,
            end,
            step,
            |labels, samples| {
                let set: HashMap<i64, f64> =
                    samples.iter().copied().filter(|(_, v)| *v > 0.0).collect();
                if !set.is_empty() {
                    throttled.insert(key(labels), set);
                }
            },
        )
        .await?;
    done(());
    client
        .range(
            &promql::cfs_periods(scope, false, step),
            start,
            end,
            step,
            |labels, samples| {
                let Some((index, _)) = inventory.container_of(labels) else {
                    return;
                };
                let throttled = throttled.get(&key(labels));
                for &(t, periods) in samples {
                    let throttled = throttled.and_then(|m| m.get(&t)).copied().unwrap_or(0.0);
                    estimators[index].add_throttling(t, throttled, periods);
                }
            },
        )
        .await?;
    done(());
    let mut oom: HashMap<(String, String, String), HashSet<i64>> = HashMap::new();
    client
        .range(
            &promql::oom_terminated(scope, step),
            start,
            end,
            step,
            |labels, samples| {
                let set: HashSet<i64> = samples
                    .iter()
                    .filter(|(_, v)| *v >= 1.0)
                    .map(|&(t, _)| t)
                    .collect();
                if !set.is_empty() {
                    oom.insert(key(labels), set);
                }
            },
        )
        .await?;
    done(());
    client
        .range(
            &promql::restarts(scope, step),
            start,
            end,
            step,
            |labels, samples| {
                let Some((index, pod)) = inventory.container_of(labels) else {
                    return;
                };
                let k = key(labels);
                let limit = pod.memory_limits.get(&k.2).copied();
                let oom_at = oom.get(&k);
                for &(t, v) in samples.iter().filter(|(_, v)| v.is_finite() && *v >= 0.5) {
                    let restarts = v.round() as u32;
                    // last_terminated_reason only tells the latest reason;
                    // restarts in an interval where it read OOMKilled are
                    // counted as OOM kills.
                    let oom_kills = if oom_at.is_some_and(|at| at.contains(&t)) {
                        restarts
                    } else {
                        0
                    };
                    estimators[index].add_restarts(t, restarts, oom_kills, limit, None);
                }
            },
        )
        .await?;
    done(());
    Ok(())
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
    fn a_later_fold_continues_the_first_grid() {
        let day = 86_400;
        let window = Window {
            start: 0,
            end: 14 * day + 1800,
            half_life_s: day as f64,
            startup_s: 0,
        };
        let plan = CollectPlan {
            window,
            resolution_s: 300,
            peak_interval_s: 3600,
            chunk_s: day,
        };
        let first = Folded::before(&plan);
        // Anchored at the window's end: the memory grid ends on it.
        assert_eq!((first.cpu, first.memory, first.counters), (0, 1800, 0));
        assert_eq!(last_point(first.memory, window.end, 3600), window.end);
        // Ten minutes later: two CPU points, no whole memory interval yet.
        let later = window.end + 600;
        assert_eq!(last_point(window.end, later, 300), later);
        assert_eq!(last_point(window.end, later, 3600), window.end);
        assert!(chunks(window.end, window.end, 3600, day).is_empty());
    }

    #[test]
    fn cpu_is_the_difference_of_consecutive_counter_points() {
        let mut out = Vec::new();
        let points = [
            (300, 10.0),
            (600, 40.0),  // 30 s over 300 s: 0.1 cores
            (900, 190.0), // 0.5 cores
            (1200, 5.0),  // a reset: nothing
            (1500, 35.0), // 0.1 cores
            (2100, 95.0), // a gap of two steps: nothing
            (2400, 95.0), // idle
        ];
        counter_rates(&points, 300, &mut out);
        assert_eq!(out, [(600, 0.1), (900, 0.5), (1500, 0.1), (2400, 0.0)]);
        counter_rates(&points[..1], 300, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn counters_cover_the_span_in_intervals_of_at_most_a_day() {
        let day = 86_400;
        assert_eq!(counter_grid(0, 14 * day), Some((day, 14 * day, day)));
        assert_eq!(counter_grid(100, 3700), Some((3700, 3700, 3600)));
        assert_eq!(counter_grid(100, 130), None);
        // 36 hours: two intervals of 18 hours.
        assert_eq!(
            counter_grid(0, 36 * 3600),
            Some((18 * 3600, 36 * 3600, 18 * 3600))
        );
    }

    #[test]
    fn namespaces_pack_into_bounded_batches() {
        let sizes = BTreeMap::from([("a", 10), ("b", 1500), ("c", 600), ("d", 3000), ("e", 5)]);
        let b = batches(&sizes, 2000);
        // A full batch reads 60 steps per query (5 hours at 5 minutes).
        assert_eq!(points_per_series(2000), 60);
        assert_eq!(points_per_series(0), MAX_POINTS_PER_QUERY);
        assert_eq!(b, vec![vec!["a", "b"], vec!["c"], vec!["d"], vec!["e"]]);
    }
}
