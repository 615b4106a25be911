//! The replay's queries. Pods are found as usage collection finds them
//! (kube-state-metrics discovery, this time over the replay window, so pods
//! created after T count for their workload); usage is read in range
//! queries per batch of namespaces, per metric and per time chunk on a grid
//! of `step`, plus two instant queries for the restarts and OOM kills that
//! really happened. The number of queries depends on the horizon and the
//! number of namespace batches, not on the number of containers.

use std::collections::{BTreeMap, HashMap};

use super::Backtest;
use super::replay::{Replay, ReplayTarget};
use crate::config::Config;
use crate::domain::ContainerRef;
use crate::metrics::client::Labels;
use crate::metrics::collect::{self, MAX_SERIES_PER_QUERY, ProgressFn};
use crate::metrics::{MetricsError, PromClient, discovery, promql};
use crate::report::{Report, monthly_cost_usd};

/// What to replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayPlan {
    /// The recommendation instant T (unix seconds).
    pub at: i64,
    pub horizon_s: i64,
    /// Step of the range queries.
    pub step_s: i64,
    /// Longest span of one range query.
    pub chunk_s: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Cpu,
    Memory,
}

/// Replays `(plan.at, plan.at + plan.horizon_s]` for every recommendation
/// of `report` (made as of `plan.at`), pricing savings with each
/// container's node-pool prices ([`Report::pricing_for`]).
pub async fn replay(
    client: &PromClient,
    config: &Config,
    report: &Report,
    plan: &ReplayPlan,
    progress: ProgressFn<'_>,
) -> Result<Backtest, MetricsError> {
    let queries_before = client.counts().queries;
    let end = plan.at + plan.horizon_s;
    let step = plan.step_s.max(1);
    let (scope, cluster_scope) = crate::scan::scope(config);
    let inventory =
        discovery::discover(client, &scope, &cluster_scope, end, plan.horizon_s, false).await?;

    let targets: Vec<ReplayTarget> = report
        .recommendations
        .iter()
        .map(|rec| {
            let pricing = report.pricing_for(rec);
            ReplayTarget {
                target: rec.target.clone(),
                current: rec.current,
                recommended: rec.recommended,
                // One pod for one hour: the monthly cost of one replica over
                // the hours in a month.
                saving_per_pod_hour_usd: (monthly_cost_usd(&rec.current, 1.0, &pricing)
                    - monthly_cost_usd(&rec.recommended, 1.0, &pricing))
                    / crate::report::HOURS_PER_MONTH,
            }
        })
        .collect();
    let index: HashMap<&ContainerRef, usize> = report
        .recommendations
        .iter()
        .enumerate()
        .map(|(i, rec)| (&rec.target, i))
        .collect();
    // Replay inventory container → recommendation.
    let to_rec: Vec<Option<usize>> = inventory
        .containers
        .iter()
        .map(|c| index.get(&c.target).copied())
        .collect();
    let mut replay = Replay::new(step, targets);

    let mut queries = Vec::new();
    for batch in collect::batches(&inventory.pods_per_namespace(), MAX_SERIES_PER_QUERY) {
        let batch_scope = collect::batch_scope(&scope, &batch);
        for metric in [Metric::Cpu, Metric::Memory] {
            let query = match metric {
                Metric::Cpu => promql::cpu_usage(&batch_scope, step),
                Metric::Memory => promql::memory_peak(&batch_scope, step),
            };
            for (start, chunk_end) in collect::chunks(plan.at, end, step, plan.chunk_s) {
                queries.push((metric, query.clone(), start, chunk_end));
            }
        }
    }
    let total = queries.len() as u64 + 2;
    let mut done = 0;
    progress(done, total);
    for (metric, query, start, chunk_end) in queries {
        client
            .range(&query, start, chunk_end, step, |labels, samples| {
                let Some((container, _)) = inventory.container_of(labels) else {
                    return;
                };
                let Some(rec) = to_rec[container] else {
                    return;
                };
                match metric {
                    Metric::Cpu => replay.add_cpu(rec, samples),
                    Metric::Memory => replay.add_memory(rec, pod_name(labels), samples),
                }
            })
            .await?;
        done += 1;
        progress(done, total);
    }

    // What really happened: restarts, and whether the last termination in
    // the window was an OOM kill (counted as collection counts them).
    let mut observed: BTreeMap<(String, String, String), [f64; 2]> = BTreeMap::new();
    for (slot, query) in [
        promql::restarts(&scope, plan.horizon_s),
        promql::oom_terminated(&scope, plan.horizon_s),
    ]
    .iter()
    .enumerate()
    {
        client
            .instant(query, end, |labels, samples| {
                if let Some(&(_, v)) = samples.first() {
                    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
                    observed
                        .entry((get("namespace"), get("pod"), get("container")))
                        .or_insert([f64::NAN; 2])[slot] = v;
                }
            })
            .await?;
        done += 1;
        progress(done, total);
    }
    for ((namespace, pod, container), [restarts, oom]) in observed {
        let Some(&container) = inventory
            .pods
            .get(&(namespace, pod))
            .and_then(|p| p.containers.get(&container))
        else {
            continue;
        };
        let Some(rec) = to_rec[container] else {
            continue;
        };
        let restarts = if restarts.is_finite() && restarts > 0.0 {
            restarts.round() as u32
        } else {
            0
        };
        let oom_kills = if oom >= 1.0 { restarts.max(1) } else { 0 };
        replay.add_observed(rec, restarts, oom_kills);
    }

    Ok(Backtest {
        at: plan.at,
        horizon_s: plan.horizon_s,
        step_s: step,
        queries: client.counts().queries - queries_before,
        containers: replay.finish(),
    })
}

fn pod_name(labels: &Labels) -> &str {
    labels.get("pod").map_or("", String::as_str)
}
