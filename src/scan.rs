//! One recommend-only pass over a cluster's history: discover workloads,
//! collect their usage, and recommend. This is what `tailor recommend` runs;
//! it reads Prometheus and nothing else.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex::Regex;

use crate::config::{Config, LabelRequirement, Policy, parse_selector};
use crate::domain::{ContainerRef, WorkloadKind, WorkloadRef};
use crate::metrics::collect::{self, CollectPlan, Folded, ProgressFn};
use crate::metrics::discovery::{self, Inventory, WorkloadInfo, retain_marked};
use crate::metrics::promql::Scope;
use crate::metrics::{MetricsError, PromClient, QueryCounts};
use crate::recommend::Recommendation;
use crate::recommend::policy::{RecommendInput, recommend};
use crate::recommend::usage::{UsageEstimator, Window};

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
    scan_incremental(client, config, at, &mut None, progress).await
}

/// What a daemon keeps between refreshes so that each one reads only what
/// is new: the inventory, one estimator per container, and how far the
/// usage has been read. About 4 KiB per container.
#[derive(Debug)]
pub struct History {
    window: Window,
    folded: Folded,
    inventory: Inventory,
    /// Indexed like `inventory.containers`.
    estimators: Vec<UsageEstimator>,
    /// When each workload last had a pod (indexed like `inventory.workloads`).
    last_seen: Vec<i64>,
}

impl History {
    /// Whether a refresh at `window` can continue from this state: same
    /// window length, half-life and startup window, moving forward by less
    /// than a whole window.
    fn continues_to(&self, window: &Window) -> bool {
        let w = &self.window;
        w.end - w.start == window.end - window.start
            && w.half_life_s == window.half_life_s
            && w.startup_s == window.startup_s
            && w.end <= window.end
            && window.end - w.end < window.end - window.start
    }

    /// Keeps the containers (and their estimators) `keep` marks.
    fn retain_containers(&mut self, keep: &[bool]) {
        self.inventory.retain_containers(keep);
        retain_marked(&mut self.estimators, keep);
    }

    /// Folds a discovery of the span since the last refresh into the kept
    /// inventory: workloads and containers seen again get today's replicas
    /// and values, new ones get an empty estimator, and the pods are those
    /// of the span (the only ones the next usage read needs).
    fn merge(&mut self, fresh: Inventory, window: &Window) {
        for estimator in &mut self.estimators {
            estimator.advance(&self.window, window);
        }
        let mut workload_at: HashMap<WorkloadRef, usize> = self
            .inventory
            .workloads
            .iter()
            .enumerate()
            .map(|(i, w)| (w.workload.clone(), i))
            .collect();
        let mut container_at: HashMap<ContainerRef, usize> = self
            .inventory
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.target.clone(), i))
            .collect();
        // No pod in the span: none runs now.
        for w in &mut self.inventory.workloads {
            w.replicas = 0;
        }
        let mut workload_map = Vec::with_capacity(fresh.workloads.len());
        for w in fresh.workloads {
            let i = match workload_at.get(&w.workload) {
                Some(&i) => {
                    let kept = &mut self.inventory.workloads[i];
                    kept.replicas = w.replicas;
                    kept.hpa = w.hpa;
                    kept.pods_seen = kept.pods_seen.max(w.pods_seen);
                    if !w.labels.is_empty() {
                        kept.labels = w.labels;
                    }
                    self.last_seen[i] = window.end;
                    i
                }
                None => {
                    let i = self.inventory.workloads.len();
                    workload_at.insert(w.workload.clone(), i);
                    self.inventory.workloads.push(w);
                    self.last_seen.push(window.end);
                    i
                }
            };
            workload_map.push(i);
        }
        let mut fresh_workload = vec![false; self.inventory.workloads.len()];
        for &i in &workload_map {
            fresh_workload[i] = true;
        }
        let mut container_map = Vec::with_capacity(fresh.containers.len());
        for mut c in fresh.containers {
            c.workload = workload_map[c.workload];
            let i = match container_at.get(&c.target) {
                Some(&i) => {
                    self.inventory.containers[i].current = c.current;
                    i
                }
                None => {
                    let i = self.inventory.containers.len();
                    container_at.insert(c.target.clone(), i);
                    self.inventory.containers.push(c);
                    self.estimators.push(UsageEstimator::new(window));
                    i
                }
            };
            container_map.push(i);
        }
        self.inventory.pods = fresh
            .pods
            .into_iter()
            .map(|(key, mut pod)| {
                pod.workload = workload_map[pod.workload];
                for index in pod.containers.values_mut() {
                    *index = container_map[*index];
                }
                (key, pod)
            })
            .collect();
        if fresh.node_capacity.is_some() {
            self.inventory.node_capacity = fresh.node_capacity;
        }
        self.inventory.skipped = fresh.skipped;

        // A container its workload's pods of the span no longer have was
        // removed from the spec.
        let mut seen = vec![false; self.inventory.containers.len()];
        for &i in &container_map {
            seen[i] = true;
        }
        let keep: Vec<bool> = (0..seen.len())
            .map(|i| seen[i] || !fresh_workload[self.inventory.containers[i].workload])
            .collect();
        self.retain_containers(&keep);

        // Workloads with no pod for a whole window are gone.
        let keep: Vec<bool> = self.last_seen.iter().map(|&t| t > window.start).collect();
        if keep.iter().any(|k| !k) {
            let containers: Vec<bool> = self
                .inventory
                .containers
                .iter()
                .map(|c| keep[c.workload])
                .collect();
            self.retain_containers(&containers);
            retain_marked(&mut self.last_seen, &keep);
            let gone: HashSet<WorkloadRef> = self
                .inventory
                .workloads
                .iter()
                .zip(&keep)
                .filter(|(_, k)| !**k)
                .map(|(w, _)| w.workload.clone())
                .collect();
            self.inventory
                .retain_workloads(|w| !gone.contains(&w.workload));
        }
        self.window = *window;
    }
}

/// What one refresh needs from the configuration.
struct Settings<'a> {
    rules: Vec<CompiledRule<'a>>,
    selector: Option<Vec<LabelRequirement>>,
    want_labels: bool,
    resolution_s: i64,
    plan: CollectPlan,
}

impl<'a> Settings<'a> {
    fn new(config: &'a Config, at: i64) -> Result<Self, ScanError> {
        let h = &config.history;
        let resolution_s = h.resolution.as_secs().max(1) as i64;
        let end = at - at.rem_euclid(resolution_s);
        let window_s = h.window.as_secs() as i64;
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
        // The startup window is per policy; the estimator needs one: the widest.
        let startup_s = std::iter::once(&config.default_policy)
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
        Ok(Settings {
            rules,
            selector,
            want_labels,
            resolution_s,
            plan: CollectPlan {
                window,
                resolution_s,
                peak_interval_s: h.memory_peak_interval.as_secs().max(1) as i64,
                chunk_s: h.chunk.as_secs().max(1) as i64,
            },
        })
    }

    async fn discover(
        &self,
        client: &PromClient,
        config: &Config,
        lookback_s: i64,
    ) -> Result<Inventory, ScanError> {
        let (scope, cluster_scope) = scope(config);
        let mut inventory = discovery::discover(
            client,
            &scope,
            &cluster_scope,
            self.plan.window.end,
            lookback_s,
            self.want_labels,
        )
        .await?;
        if let Some(selector) = &self.selector {
            inventory.retain_workloads(|w| selector.iter().all(|req| req.matches(&w.labels)));
        }
        Ok(inventory)
    }
}

/// [`scan_with`] that keeps its state in `history` between calls: the
/// first call (or one after a configuration change or a gap longer than
/// the window) reads the whole window; later ones discover and read only
/// the span since the previous call, and slide the estimators forward.
pub async fn scan_incremental(
    client: &PromClient,
    config: &Config,
    at: i64,
    history: &mut Option<History>,
    progress: ProgressFn<'_>,
) -> Result<ScanOutcome, ScanError> {
    let settings = Settings::new(config, at)?;
    let plan = settings.plan;
    let window = plan.window;
    let (scope, _) = scope(config);
    let mut skipped: BTreeMap<String, u64>;
    match history.take() {
        Some(mut kept) if kept.continues_to(&window) => {
            if kept.window.end < window.end {
                // Discovery looks back over the span, plus one step so a
                // pod seen only at the span's first point is not missed.
                let lookback = window.end - kept.window.end + settings.resolution_s;
                let fresh = settings.discover(client, config, lookback).await?;
                kept.merge(fresh, &window);
                let (folded, fold_skipped) = collect::fold(
                    client,
                    &scope,
                    &kept.inventory,
                    &plan,
                    kept.folded,
                    &mut kept.estimators,
                    progress,
                )
                .await?;
                kept.folded = folded;
                skipped = fold_skipped;
            } else {
                skipped = BTreeMap::new();
            }
            *history = Some(kept);
        }
        _ => {
            let inventory = settings
                .discover(client, config, window.end - window.start)
                .await?;
            let mut estimators: Vec<UsageEstimator> = inventory
                .containers
                .iter()
                .map(|_| UsageEstimator::new(&window))
                .collect();
            let (folded, fold_skipped) = collect::fold(
                client,
                &scope,
                &inventory,
                &plan,
                Folded::before(&plan),
                &mut estimators,
                progress,
            )
            .await?;
            skipped = fold_skipped;
            *history = Some(History {
                window,
                folded,
                last_seen: vec![window.end; inventory.workloads.len()],
                inventory,
                estimators,
            });
        }
    }
    let kept = history.as_ref().expect("just set");
    for (reason, n) in &kept.inventory.skipped {
        *skipped.entry(reason.clone()).or_default() += n;
    }
    Ok(ScanOutcome {
        at: window.end,
        window_s: window.end - window.start,
        source: client.url().to_string(),
        recommendations: recommend_all(config, &settings, kept),
        skipped,
        counts: client.counts(),
    })
}

/// The engine over every container of the kept inventory.
fn recommend_all(config: &Config, settings: &Settings<'_>, kept: &History) -> Vec<Recommendation> {
    let window = settings.plan.window;
    let inventory = &kept.inventory;
    inventory
        .containers
        .iter()
        .zip(&kept.estimators)
        .map(|(container, usage)| {
            let workload = &inventory.workloads[container.workload];
            let policy = policy_for(&settings.rules, &config.default_policy, workload);
            let billed_replicas = match workload.workload.kind {
                WorkloadKind::Job | WorkloadKind::CronJob => {
                    let steps = (usage.history_seconds(&window) / settings.resolution_s).max(1);
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
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Resources;
    use crate::metrics::discovery::{ContainerInfo, PodInfo};
    use crate::units::MilliCores;

    const DAY: i64 = 86_400;

    fn window(end: i64) -> Window {
        Window {
            start: end - 14 * DAY,
            end,
            half_life_s: DAY as f64,
            startup_s: 0,
        }
    }

    /// An inventory of `workloads` (name, containers, running pods), each
    /// container's CPU request set to `cpu` millicores.
    fn inventory(workloads: &[(&str, &[&str], u32)], cpu: u64) -> Inventory {
        let mut inv = Inventory::default();
        for (w, (name, containers, replicas)) in workloads.iter().enumerate() {
            let workload = WorkloadRef {
                namespace: "shop".into(),
                kind: WorkloadKind::Deployment,
                name: name.to_string(),
            };
            inv.workloads.push(WorkloadInfo {
                workload: workload.clone(),
                replicas: *replicas,
                pods_seen: *replicas,
                hpa: Default::default(),
                labels: BTreeMap::new(),
            });
            let mut pod = PodInfo {
                workload: w,
                start: None,
                alive: true,
                containers: HashMap::new(),
                memory_limits: HashMap::new(),
            };
            for c in *containers {
                pod.containers.insert(c.to_string(), inv.containers.len());
                inv.containers.push(ContainerInfo {
                    target: ContainerRef {
                        workload: workload.clone(),
                        container: c.to_string(),
                    },
                    workload: w,
                    current: Resources {
                        cpu_request: Some(MilliCores(cpu)),
                        ..Resources::default()
                    },
                });
            }
            inv.pods.insert(("shop".into(), format!("{name}-0")), pod);
        }
        inv
    }

    fn rows(h: &History) -> Vec<(String, u32, u64)> {
        h.inventory
            .containers
            .iter()
            .map(|c| {
                let w = &h.inventory.workloads[c.workload];
                (
                    c.target.to_string(),
                    w.replicas,
                    c.current.cpu_request.map_or(0, |m| m.0),
                )
            })
            .collect()
    }

    #[test]
    fn a_refresh_merges_what_it_saw_and_forgets_what_is_gone() {
        let first = window(20 * DAY);
        let inv = inventory(
            &[("web", &["app", "sidecar"], 2), ("cron", &["job"], 1)],
            100,
        );
        let mut h = History {
            window: first,
            folded: Folded {
                cpu: first.end,
                memory: first.end,
                counters: first.end,
            },
            estimators: inv
                .containers
                .iter()
                .map(|_| UsageEstimator::new(&first))
                .collect(),
            last_seen: vec![first.end; 2],
            inventory: inv,
        };
        for e in &mut h.estimators {
            e.add_cpu(&first, first.end, 0.5, None).expect("valid");
        }

        // An hour later: web runs 3 pods without its sidecar, at new values;
        // cron ran no pod; api is new.
        let next = window(first.end + 3600);
        h.merge(
            inventory(&[("web", &["app"], 3), ("api", &["server"], 1)], 200),
            &next,
        );
        assert_eq!(
            rows(&h),
            [
                ("shop/Deployment/web:app".to_string(), 3, 200),
                ("shop/Deployment/cron:job".to_string(), 0, 100),
                ("shop/Deployment/api:server".to_string(), 1, 200),
            ]
        );
        assert_eq!(h.estimators.len(), 3);
        // Kept estimators keep their samples; the new one starts empty.
        assert_eq!(h.estimators[0].cpu_samples(), 1);
        assert_eq!(h.estimators[1].cpu_samples(), 1);
        assert_eq!(h.estimators[2].cpu_samples(), 0);
        // The pods are those of the span, pointing at the merged rows.
        let api = &h.inventory.pods[&("shop".to_string(), "api-0".to_string())];
        assert_eq!(api.containers["server"], 2);
        assert_eq!(api.workload, 2);
        assert_eq!(h.inventory.pods.len(), 2);

        // Fifteen days on with only api seen: web and cron are gone.
        let later = window(next.end + 15 * DAY);
        h.merge(inventory(&[("api", &["server"], 1)], 200), &later);
        assert_eq!(
            rows(&h),
            [("shop/Deployment/api:server".to_string(), 1, 200)]
        );
        assert_eq!(h.estimators.len(), 1);
        assert_eq!(h.last_seen, [later.end]);
        let api = &h.inventory.pods[&("shop".to_string(), "api-0".to_string())];
        assert_eq!((api.workload, api.containers["server"]), (0, 0));
    }
}
