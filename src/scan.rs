//! One recommend-only pass over a cluster's history: discover workloads,
//! collect their usage, and recommend. This is what `tailor recommend` runs;
//! it reads Prometheus and nothing else.

use std::collections::BTreeMap;

use regex::Regex;

use crate::config::{Config, LabelRequirement, Policy, parse_selector};
use crate::domain::WorkloadKind;
use crate::metrics::collect::{self, CollectPlan, ProgressFn};
use crate::metrics::discovery::{self, WorkloadInfo};
use crate::metrics::promql::Scope;
use crate::metrics::{MetricsError, PromClient, QueryCounts};
use crate::recommend::Recommendation;
use crate::recommend::policy::{RecommendInput, recommend};
use crate::recommend::usage::Window;

/// What a scan found.
#[derive(Clone, Debug)]
pub struct ScanOutcome {
    /// The evaluation instant (the requested one, aligned down to the
    /// resolution so repeated runs read the same grid).
    pub at: i64,
    pub window_s: i64,
    pub source: String,
    pub recommendations: Vec<Recommendation>,
    /// Counted data problems: reason → count.
    pub skipped: BTreeMap<String, u64>,
    pub counts: QueryCounts,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A policy rule compiled for matching.
struct CompiledRule<'a> {
    namespaces: Option<Regex>,
    selector: Option<Vec<LabelRequirement>>,
    policy: &'a Policy,
}

fn anchored(regex: &str, key: &str) -> Result<Regex, ScanError> {
    Regex::new(&format!("^(?:{regex})$")).map_err(|e| ScanError::Config(format!("{key}: {e}")))
}

fn compile_rules(config: &Config) -> Result<Vec<CompiledRule<'_>>, ScanError> {
    config
        .policies
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            Ok(CompiledRule {
                namespaces: rule
                    .matches
                    .namespaces
                    .as_deref()
                    .map(|r| anchored(r, &format!("policies[{i}].match.namespaces")))
                    .transpose()?,
                selector: rule
                    .matches
                    .selector
                    .as_deref()
                    .map(|s| {
                        parse_selector(s).map_err(|e| {
                            ScanError::Config(format!("policies[{i}].match.selector: {e}"))
                        })
                    })
                    .transpose()?,
                policy: &rule.policy,
            })
        })
        .collect()
}

fn policy_for<'a>(
    rules: &[CompiledRule<'a>],
    default: &'a Policy,
    workload: &WorkloadInfo,
) -> &'a Policy {
    rules
        .iter()
        .find(|r| {
            r.namespaces
                .as_ref()
                .is_none_or(|re| re.is_match(&workload.workload.namespace))
                && r.selector
                    .as_ref()
                    .is_none_or(|sel| sel.iter().all(|req| req.matches(&workload.labels)))
        })
        .map_or(default, |r| r.policy)
}

/// The scope every query carries: cluster label and namespace filters.
pub fn scope(config: &Config) -> (Scope, Scope) {
    let p = &config.prometheus;
    let cluster = p.cluster_label.as_deref().zip(p.cluster.as_deref());
    let cluster_scope = Scope::new(cluster);
    let scope = cluster_scope.namespaces(
        &config.selection.namespaces,
        &config.selection.exclude_namespaces,
    );
    (scope, cluster_scope)
}

/// Runs discovery, collection and the engine as of `at` (unix seconds).
pub async fn scan(
    config: &Config,
    at: i64,
    progress: ProgressFn<'_>,
) -> Result<ScanOutcome, ScanError> {
    let client = PromClient::new(&config.prometheus)?;
    scan_with(&client, config, at, progress).await
}

/// [`scan`] with a client the caller keeps (to read its counters).
pub async fn scan_with(
    client: &PromClient,
    config: &Config,
    at: i64,
    progress: ProgressFn<'_>,
) -> Result<ScanOutcome, ScanError> {
    let h = &config.history;
    let resolution_s = h.resolution.as_secs().max(1) as i64;
    let end = at - at.rem_euclid(resolution_s);
    let window_s = h.window.as_secs() as i64;
    let default_policy = &config.default_policy;
    let rules = compile_rules(config)?;
    let selector = config
        .selection
        .selector
        .as_deref()
        .map(|s| {
            parse_selector(s).map_err(|e| ScanError::Config(format!("selection.selector: {e}")))
        })
        .transpose()?;
    let want_labels = selector.is_some() || rules.iter().any(|r| r.selector.is_some());

    let (scope, cluster_scope) = scope(config);
    let mut inventory =
        discovery::discover(client, &scope, &cluster_scope, end, window_s, want_labels).await?;
    if let Some(selector) = &selector {
        inventory.retain_workloads(|w| selector.iter().all(|req| req.matches(&w.labels)));
    }

    // The startup window is per policy; the estimator needs one: the widest.
    let startup_s = std::iter::once(default_policy)
        .chain(rules.iter().map(|r| r.policy))
        .map(|p| p.startup_window.as_secs() as i64)
        .max()
        .unwrap_or(0);
    let window = Window {
        start: end - window_s,
        end,
        half_life_s: h.half_life.as_secs_f64(),
        startup_s,
    };
    let plan = CollectPlan {
        window,
        resolution_s,
        peak_interval_s: h.memory_peak_interval.as_secs().max(1) as i64,
        chunk_s: h.chunk.as_secs().max(1) as i64,
    };
    let collected = collect::collect(client, &scope, &inventory, &plan, progress).await?;

    let mut skipped = inventory.skipped.clone();
    for (reason, n) in collected.skipped {
        *skipped.entry(reason).or_default() += n;
    }
    let recommendations = inventory
        .containers
        .iter()
        .zip(&collected.estimators)
        .map(|(container, usage)| {
            let workload = &inventory.workloads[container.workload];
            let policy = policy_for(&rules, default_policy, workload);
            let billed_replicas = match workload.workload.kind {
                WorkloadKind::Job | WorkloadKind::CronJob => {
                    let steps = (usage.history_seconds(&window) / resolution_s).max(1);
                    usage.cpu_samples() as f64 / steps as f64
                }
                _ => workload.replicas as f64,
            };
            let input = RecommendInput {
                target: container.target.clone(),
                current: container.current,
                usage,
                window,
                replicas: workload.replicas,
                billed_replicas,
                hpa: workload.hpa,
                node_capacity: inventory.node_capacity,
            };
            let mut r = recommend(&input, policy, &config.pricing);
            let long_running = !matches!(
                workload.workload.kind,
                WorkloadKind::Job | WorkloadKind::CronJob
            );
            if long_running && workload.replicas == 0 && r.skipped_reason.is_none() {
                r.recommended = r.current;
                r.savings_per_month_usd = 0.0;
                r.skipped_reason = Some(
                    "no pod runs at the evaluation instant (scaled to zero or deleted)".into(),
                );
            }
            r
        })
        .collect();

    Ok(ScanOutcome {
        at: end,
        window_s,
        source: client.url().to_string(),
        recommendations,
        skipped,
        counts: client.counts(),
    })
}
