//! The closed loop's view of Prometheus: [`PrometheusSource`] implements
//! [`UsageSource`] (recommendations, and urgent ones between refreshes) and
//! [`SloSource`] (per-minute SLIs from the config's PromQL templates, and
//! resource signals from cAdvisor and kube-state-metrics).
//!
//! What it is not for: judging anything. The guard and the planner decide;
//! this file only turns query results into samples. Every query is scoped to
//! one workload (SLIs, signals) or batched over the whole scope (urgent
//! news), never one per container. Reference: `docs/slo.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;

use crate::config::{Config, LabelRequirement, SliTemplate, namespace_regex, parse_selector};
use crate::domain::WorkloadRef;
use crate::guard::{ResourceSample, SliSample};
use crate::metrics::client::Labels;
use crate::metrics::promql::{self, Scope, TemplateValues};
use crate::metrics::{MetricsError, PromClient};
use crate::ports::{PortError, SloSource, UsageSource};
use crate::recommend::Recommendation;

/// SLIs and signals are per minute.
pub const STEP_S: i64 = 60;

/// Rates of CFS counters span two steps, so a 60 s scrape interval still
/// gives two samples per rate.
const RATE_RANGE_S: i64 = 2 * STEP_S;

/// How far back an SLI that returns nothing now is looked for, to tell "this
/// workload exports no such metric" (no SLI) from "its data is missing".
const SLI_PRESENCE_LOOKBACK: &str = "1d:5m";

/// Urgent news is looked for at most this far back.
const MAX_URGENT_LOOKBACK_S: i64 = 86_400;

/// Why a [`PrometheusSource`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("invalid configuration: `{key}`: {message}")]
    Config { key: String, message: String },
}

/// A template with its `match` compiled.
#[derive(Clone, Debug)]
struct CompiledTemplate {
    namespaces: Option<Regex>,
    selector: Option<Vec<LabelRequirement>>,
    template: SliTemplate,
}

/// Prometheus as the agent's usage and SLO source.
#[derive(Clone, Debug)]
pub struct PrometheusSource {
    client: PromClient,
    config: Config,
    /// The cluster label on shared backends (no namespace filter: the
    /// workload names its namespace).
    cluster_scope: Scope,
    /// Cluster label plus `selection` namespaces, for cluster-wide queries.
    scope: Scope,
    templates: Vec<CompiledTemplate>,
    /// What the last refresh read, so the next reads only what is new.
    /// Shared by clones.
    history: std::sync::Arc<tokio::sync::Mutex<Option<crate::scan::History>>>,
}

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::Unavailable(e.to_string())
}

impl PrometheusSource {
    /// A source over `client`, reading its templates and scope from `config`
    /// (validated already; an invalid template is still refused here).
    pub fn new(client: PromClient, config: Config) -> Result<Self, SourceError> {
        let templates = config
            .slo
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let at = format!("slo.templates[{i}].match");
                let namespaces = t
                    .matches
                    .namespaces
                    .as_deref()
                    .map(|p| {
                        namespace_regex(p).map_err(|e| SourceError::Config {
                            key: format!("{at}.namespaces"),
                            message: e.to_string(),
                        })
                    })
                    .transpose()?;
                let selector = t
                    .matches
                    .selector
                    .as_deref()
                    .map(|s| {
                        parse_selector(s).map_err(|message| SourceError::Config {
                            key: format!("{at}.selector"),
                            message,
                        })
                    })
                    .transpose()?;
                Ok(CompiledTemplate {
                    namespaces,
                    selector,
                    template: t.clone(),
                })
            })
            .collect::<Result<Vec<_>, SourceError>>()?;
        let (scope, cluster_scope) = crate::scan::scope(&config);
        Ok(PrometheusSource {
            client,
            config,
            cluster_scope,
            scope,
            templates,
            history: std::sync::Arc::default(),
        })
    }

    /// Builds the client from `config.prometheus` too.
    pub fn from_config(config: Config) -> Result<Self, SourceError> {
        let client = PromClient::new(&config.prometheus)?;
        Self::new(client, config)
    }

    pub fn client(&self) -> &PromClient {
        &self.client
    }

    /// The label matchers (no braces) selecting the workload's pods.
    pub fn workload_matchers(&self, workload: &WorkloadRef) -> String {
        promql::workload_matchers(
            &self.cluster_scope,
            &workload.namespace,
            &promql::pod_regex(workload.kind, &workload.name),
        )
    }

    /// The template's placeholders for `workload`.
    pub fn template_values(&self, workload: &WorkloadRef) -> TemplateValues {
        TemplateValues {
            namespace: workload.namespace.clone(),
            name: workload.name.clone(),
            pod_regex: promql::pod_regex(workload.kind, &workload.name),
            selector: self.workload_matchers(workload),
            window: promql::range(STEP_S),
        }
    }

    /// The first template whose `match` fits the workload. Pod labels are
    /// read (one instant query at `at`) only when a selector needs them.
    pub async fn template_for(
        &self,
        workload: &WorkloadRef,
        at: i64,
    ) -> Result<Option<&SliTemplate>, PortError> {
        let mut labels: Option<BTreeMap<String, String>> = None;
        for t in &self.templates {
            if t.namespaces
                .as_ref()
                .is_some_and(|re| !re.is_match(&workload.namespace))
            {
                continue;
            }
            if let Some(selector) = &t.selector {
                if labels.is_none() {
                    labels = Some(self.pod_labels(workload, at).await?);
                }
                let labels = labels.as_ref().map_or(&EMPTY, |l| l);
                if !selector.iter().all(|req| req.matches(labels)) {
                    continue;
                }
            }
            return Ok(Some(&t.template));
        }
        Ok(None)
    }

    /// The labels of one of the workload's pods (`kube_pod_labels`).
    async fn pod_labels(
        &self,
        workload: &WorkloadRef,
        at: i64,
    ) -> Result<BTreeMap<String, String>, PortError> {
        let query = format!(
            "last_over_time(kube_pod_labels{{{}}}[1h])",
            self.workload_matchers(workload)
        );
        let mut found = BTreeMap::new();
        self.client
            .instant(&query, at, |l, _| {
                if found.is_empty() {
                    found = l
                        .iter()
                        .filter_map(|(k, v)| {
                            k.strip_prefix("label_").map(|k| (k.to_string(), v.clone()))
                        })
                        .collect();
                }
            })
            .await
            .map_err(unavailable)?;
        Ok(found)
    }

    /// One range query at the step over `grid`, values summed per instant
    /// (a template should give one series; several are added up).
    async fn per_minute(&self, query: &str, grid: Grid) -> Result<BTreeMap<i64, f64>, PortError> {
        let mut out: BTreeMap<i64, f64> = BTreeMap::new();
        self.client
            .range(query, grid.start, grid.end, STEP_S, |_, samples| {
                for &(t, v) in samples {
                    *out.entry(t).or_default() += v;
                }
            })
            .await
            .map_err(unavailable)?;
        Ok(out)
    }

    /// A range query of counters (or gauges) kept per series.
    async fn per_series(
        &self,
        query: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<(Labels, Vec<(i64, f64)>)>, PortError> {
        let mut out = Vec::new();
        self.client
            .range(query, start, end, STEP_S, |labels, samples| {
                out.push((labels.clone(), samples.to_vec()));
            })
            .await
            .map_err(unavailable)?;
        Ok(out)
    }

    /// Whether the rendered query gave any value in the last day.
    async fn ever_present(&self, query: &str, at: i64) -> Result<bool, PortError> {
        let probe = format!("count_over_time(({query})[{SLI_PRESENCE_LOOKBACK}])");
        let mut present = false;
        self.client
            .instant(&probe, at, |_, samples| {
                present |= samples.iter().any(|&(_, v)| v > 0.0);
            })
            .await
            .map_err(unavailable)?;
        Ok(present)
    }

    /// OOM kills and restarts per pod container and minute over `grid`,
    /// from counters read one step before it.
    async fn container_events(
        &self,
        restarts_query: &str,
        oom_query: &str,
        grid: Grid,
    ) -> Result<Vec<ContainerEvent>, PortError> {
        let restarts = self
            .per_series(restarts_query, grid.start - STEP_S, grid.end)
            .await?;
        let oom = self.per_series(oom_query, grid.start, grid.end).await?;
        Ok(container_events(&restarts, &oom, grid))
    }
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

/// The minutes `(from, to]` is sampled at: `start`, `start + 60`, … `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub start: i64,
    pub end: i64,
}

impl Grid {
    /// Each sample at `t` covers `(t - 60, t]`; only whole minutes inside
    /// `(from, to]` are kept. `None` when no minute fits.
    pub fn over(from: i64, to: i64) -> Option<Grid> {
        let start = from - from.rem_euclid(STEP_S) + STEP_S;
        let end = to - to.rem_euclid(STEP_S);
        (start <= end).then_some(Grid { start, end })
    }
}

/// Per-minute SLIs from the four queries' values: one sample per minute
/// with a request count; a minute without an error value had no errors
/// (the `code=~"5.."` series only exist once a 5xx happened); NaN latency
/// (no requests in the histogram) is no latency.
pub fn sli_samples(
    requests: &BTreeMap<i64, f64>,
    errors: &BTreeMap<i64, f64>,
    p95: &BTreeMap<i64, f64>,
    p99: &BTreeMap<i64, f64>,
) -> Vec<SliSample> {
    let latency = |m: &BTreeMap<i64, f64>, t: &i64| m.get(t).copied().filter(|v| v.is_finite());
    requests
        .iter()
        .filter(|(_, r)| r.is_finite())
        .map(|(t, &r)| SliSample {
            t: *t,
            requests: r,
            errors: errors.get(t).copied().unwrap_or(0.0),
            latency_p95_s: latency(p95, t),
            latency_p99_s: latency(p99, t),
        })
        .collect()
}

/// Something that happened to one pod container in one minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerEvent {
    pub namespace: Option<String>,
    pub pod: String,
    pub container: String,
    pub t: i64,
    pub restarts: u32,
    /// Restarts of this minute whose last termination reason reads
    /// `OOMKilled` (kube-state-metrics keeps only the last reason).
    pub oom_kills: u32,
}

/// Restarts per minute as differences of the raw counter (a drop is a
/// reset: the new value counts), OOM kills where the container's last
/// termination reason is `OOMKilled` at that minute or the next.
pub fn container_events(
    restarts: &[(Labels, Vec<(i64, f64)>)],
    oom: &[(Labels, Vec<(i64, f64)>)],
    grid: Grid,
) -> Vec<ContainerEvent> {
    let key = |l: &Labels| {
        (
            l.get("namespace").cloned(),
            l.get("pod").cloned().unwrap_or_default(),
            l.get("container").cloned().unwrap_or_default(),
        )
    };
    let oom_at: HashMap<_, BTreeSet<i64>> = oom
        .iter()
        .map(|(l, samples)| {
            let times = samples
                .iter()
                .filter(|&&(_, v)| v >= 1.0)
                .map(|&(t, _)| t)
                .collect();
            (key(l), times)
        })
        .collect();
    let mut events = Vec::new();
    for (labels, samples) in restarts {
        let k = key(labels);
        for pair in samples.windows(2) {
            let ((t0, before), (t, after)) = (pair[0], pair[1]);
            if t < grid.start || t > grid.end || t - t0 != STEP_S {
                continue;
            }
            let delta = if after >= before {
                after - before
            } else {
                after
            };
            let restarts = delta.round().max(0.0) as u32;
            if restarts == 0 {
                continue;
            }
            // The reason series may lag the counter by one scrape.
            let oom = oom_at
                .get(&k)
                .is_some_and(|times| times.contains(&t) || times.contains(&(t + STEP_S)));
            events.push(ContainerEvent {
                namespace: k.0.clone(),
                pod: k.1.clone(),
                container: k.2.clone(),
                t,
                restarts,
                oom_kills: if oom { restarts } else { 0 },
            });
        }
    }
    events
}

/// One [`ResourceSample`] per minute of the grid where any signal has data.
pub fn resource_samples(
    grid: Grid,
    events: &[ContainerEvent],
    throttled: &BTreeMap<i64, f64>,
    ready: &BTreeMap<i64, f64>,
    desired: &BTreeMap<i64, f64>,
) -> Vec<ResourceSample> {
    let mut by_minute: BTreeMap<i64, ResourceSample> = BTreeMap::new();
    let mut t = grid.start;
    while t <= grid.end {
        let ready_ratio = desired
            .get(&t)
            .filter(|d| d.is_finite() && **d > 0.0)
            .map(|d| (ready.get(&t).copied().unwrap_or(0.0) / d).clamp(0.0, 1.0));
        by_minute.insert(
            t,
            ResourceSample {
                t,
                oom_kills: 0,
                restarts: 0,
                throttled_ratio: throttled
                    .get(&t)
                    .copied()
                    .filter(|r| r.is_finite())
                    .map(|r| r.clamp(0.0, 1.0)),
                ready_ratio,
            },
        );
        t += STEP_S;
    }
    for e in events {
        if let Some(sample) = by_minute.get_mut(&e.t) {
            sample.restarts += e.restarts;
            sample.oom_kills += e.oom_kills;
        }
    }
    by_minute.into_values().collect()
}

impl SloSource for PrometheusSource {
    async fn slis(
        &self,
        workload: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> Result<Option<Vec<SliSample>>, PortError> {
        let Some(template) = self.template_for(workload, to).await? else {
            return Ok(None);
        };
        let values = self.template_values(workload);
        let requests_query = promql::render(&template.requests, &values);
        let Some(grid) = Grid::over(from, to) else {
            return Ok(Some(Vec::new()));
        };
        let requests = self.per_minute(&requests_query, grid).await?;
        if requests.is_empty() {
            // Nothing now: a workload without the metric has no SLI; one
            // whose data went missing must not read as healthy.
            return if self.ever_present(&requests_query, to).await? {
                Ok(Some(Vec::new()))
            } else {
                Ok(None)
            };
        }
        let errors = self
            .per_minute(&promql::render(&template.errors, &values), grid)
            .await?;
        let mut latency = [BTreeMap::new(), BTreeMap::new()];
        for (slot, query) in latency
            .iter_mut()
            .zip([&template.latency_p95, &template.latency_p99])
        {
            if let Some(query) = query {
                *slot = self
                    .per_minute(&promql::render(query, &values), grid)
                    .await?;
            }
        }
        Ok(Some(sli_samples(
            &requests,
            &errors,
            &latency[0],
            &latency[1],
        )))
    }

    async fn resource_signals(
        &self,
        workload: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> Result<Vec<ResourceSample>, PortError> {
        let Some(grid) = Grid::over(from, to) else {
            return Ok(Vec::new());
        };
        let matchers = self.workload_matchers(workload);
        let events = self
            .container_events(
                &promql::container_counter("kube_pod_container_status_restarts_total", &matchers),
                &promql::oom_reason(&matchers),
                grid,
            )
            .await?;
        let throttled = self
            .per_minute(&promql::throttled_ratio(&matchers, RATE_RANGE_S), grid)
            .await?;
        let (ready, desired) = match promql::ready_and_desired(
            &self.cluster_scope,
            workload.kind,
            &workload.namespace,
            &workload.name,
            &matchers,
        ) {
            Some((ready, desired)) => (
                self.per_minute(&ready, grid).await?,
                self.per_minute(&desired, grid).await?,
            ),
            None => (BTreeMap::new(), BTreeMap::new()),
        };
        Ok(resource_samples(
            grid, &events, &throttled, &ready, &desired,
        ))
    }
}

/// A pod container with news that must not wait for the next refresh.
#[derive(Clone, Debug, PartialEq)]
pub struct UrgentContainer {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The minute of the latest OOM kill in the window, if any.
    pub oom_kill_at: Option<i64>,
}

/// The recommendations of containers with news, with the kill time as
/// evidence; a container's workload is found by its pods' names.
pub fn select_urgent(
    recommendations: Vec<Recommendation>,
    urgent: &[UrgentContainer],
) -> Vec<Recommendation> {
    let mut patterns: HashMap<(crate::domain::WorkloadKind, String), Option<Regex>> =
        HashMap::new();
    recommendations
        .into_iter()
        .filter_map(|mut r| {
            let w = &r.target.workload;
            let pattern = patterns
                .entry((w.kind, w.name.clone()))
                .or_insert_with(|| Regex::new(&promql::pod_regex(w.kind, &w.name)).ok());
            let hits: Vec<&UrgentContainer> = urgent
                .iter()
                .filter(|u| {
                    u.namespace == w.namespace
                        && u.container == r.target.container
                        && pattern.as_ref().is_some_and(|p| p.is_match(&u.pod))
                })
                .collect();
            if hits.is_empty() {
                return None;
            }
            let kill = hits.iter().filter_map(|u| u.oom_kill_at).max();
            if let Some(kill) = kill {
                let evidence = &mut r.evidence;
                evidence.last_oom_kill_at = evidence.last_oom_kill_at.max(Some(kill));
            }
            Some(r)
        })
        .collect()
}

impl PrometheusSource {
    /// Containers with OOM kills or a throttled ratio above 0.10 in
    /// `(since, now]`: two range queries of kube-state-metrics counters and
    /// one instant query of cAdvisor's, over the whole scope.
    pub async fn urgent_containers(
        &self,
        since: i64,
        now: i64,
    ) -> Result<Vec<UrgentContainer>, PortError> {
        let since = since.max(now - MAX_URGENT_LOOKBACK_S);
        let mut found: BTreeMap<(String, String, String), Option<i64>> = BTreeMap::new();
        if let Some(grid) = Grid::over(since, now) {
            let events = self
                .container_events(
                    &promql::scoped_counter(
                        &self.scope,
                        "kube_pod_container_status_restarts_total",
                    ),
                    &promql::scoped_oom_reason(&self.scope),
                    grid,
                )
                .await?;
            for e in events.into_iter().filter(|e| e.oom_kills > 0) {
                let at = found
                    .entry((e.namespace.unwrap_or_default(), e.pod, e.container))
                    .or_default();
                *at = (*at).max(Some(e.t));
            }
        }
        let window = (now - since).max(RATE_RANGE_S);
        let query = promql::throttled_containers(&self.scope, window, URGENT_THROTTLED_RATIO);
        let mut throttled = Vec::new();
        self.client
            .instant(&query, now, |l, _| {
                let get = |k: &str| l.get(k).cloned().unwrap_or_default();
                throttled.push((get("namespace"), get("pod"), get("container")));
            })
            .await
            .map_err(unavailable)?;
        for key in throttled {
            found.entry(key).or_default();
        }
        Ok(found
            .into_iter()
            .map(
                |((namespace, pod, container), oom_kill_at)| UrgentContainer {
                    namespace,
                    pod,
                    container,
                    oom_kill_at,
                },
            )
            .collect())
    }
}

/// Throttling above this share of CFS periods is news (DESIGN §3 veto level).
pub const URGENT_THROTTLED_RATIO: f64 = 0.10;

impl UsageSource for PrometheusSource {
    /// The first call reads the whole history window; later ones read only
    /// what is new since the previous call (`scan::scan_incremental`).
    async fn recommendations(&self, now: i64) -> Result<Vec<Recommendation>, PortError> {
        let mut history = self.history.lock().await;
        let outcome = crate::scan::scan_incremental(
            &self.client,
            &self.config,
            now,
            &mut history,
            &|_, _| {},
        )
        .await
        .map_err(unavailable)?;
        Ok(outcome.recommendations)
    }

    /// Looks for news first (cheap); only when there is some, refreshes
    /// every recommendation (reading only what is new since the last
    /// refresh) and keeps the containers with news.
    async fn urgent(&self, since: i64, now: i64) -> Result<Vec<Recommendation>, PortError> {
        let urgent = self.urgent_containers(since, now).await?;
        if urgent.is_empty() {
            return Ok(Vec::new());
        }
        let all = self.recommendations(now).await?;
        Ok(select_urgent(all, &urgent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_grid_keeps_whole_minutes_inside_the_window() {
        assert_eq!(
            Grid::over(600, 900),
            Some(Grid {
                start: 660,
                end: 900
            })
        );
        assert_eq!(
            Grid::over(610, 899),
            Some(Grid {
                start: 660,
                end: 840
            })
        );
        assert_eq!(Grid::over(600, 630), None);
    }

    #[test]
    fn sli_samples_follow_requests() {
        let m = |pairs: &[(i64, f64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        let samples = sli_samples(
            &m(&[(60, 100.0), (120, 50.0), (180, f64::NAN)]),
            &m(&[(60, 2.0)]),
            &m(&[(60, 0.2), (120, f64::NAN)]),
            &m(&[]),
        );
        assert_eq!(
            samples,
            [
                SliSample {
                    t: 60,
                    requests: 100.0,
                    errors: 2.0,
                    latency_p95_s: Some(0.2),
                    latency_p99_s: None
                },
                SliSample {
                    t: 120,
                    requests: 50.0,
                    errors: 0.0,
                    latency_p95_s: None,
                    latency_p99_s: None
                },
            ]
        );
    }

    #[test]
    fn restarts_are_counter_differences_and_oom_follows_the_reason() {
        let grid = Grid {
            start: 120,
            end: 300,
        };
        let app = labels(&[("pod", "db-0"), ("container", "app")]);
        let restarts = vec![(
            app.clone(),
            vec![(60, 3.0), (120, 3.0), (180, 4.0), (240, 0.0), (300, 2.0)],
        )];
        let oom = vec![(app, vec![(180, 1.0), (240, 0.0), (300, 0.0)])];
        let events = container_events(&restarts, &oom, grid);
        let got: Vec<(i64, u32, u32)> = events
            .iter()
            .map(|e| (e.t, e.restarts, e.oom_kills))
            .collect();
        // 3 → 4: one OOM kill; 4 → 0 is a reset with no restart; 0 → 2.
        assert_eq!(got, [(180, 1, 1), (300, 2, 0)]);
        let samples = resource_samples(
            grid,
            &events,
            &[(120, 0.5), (180, 1.5)].into_iter().collect(),
            &[(120, 2.0), (180, 3.0)].into_iter().collect(),
            &[(120, 4.0), (180, 3.0)].into_iter().collect(),
        );
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].throttled_ratio, Some(0.5));
        assert_eq!(samples[0].ready_ratio, Some(0.5));
        assert_eq!(samples[1].throttled_ratio, Some(1.0));
        assert_eq!((samples[1].oom_kills, samples[1].restarts), (1, 1));
        assert_eq!(samples[2].ready_ratio, None);
        assert_eq!((samples[3].oom_kills, samples[3].restarts), (0, 2));
    }
}
