//! What the loop shares with the HTTP endpoints: health, readiness, the
//! Prometheus registry with every `tailor_*` metric, and the latest
//! recommendations. Everything here is `Send + Sync` (the server runs on
//! the runtime's worker threads; the agent does not).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::agent::AgentStats;
use crate::domain::WorkloadRef;
use crate::metrics::client::QueryCounts;
use crate::recommend::Recommendation;
use crate::rollout::RolloutRecord;

/// At most this many workloads get `tailor_recommendation_*` series.
pub const MAX_RECOMMENDATION_WORKLOADS: usize = 200;

/// Totals of the metrics backend's queries since start (what
/// `PromClient::counts()` reports), read at every scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryTotals {
    pub queries: u64,
    pub failures: u64,
}

impl From<QueryCounts> for QueryTotals {
    fn from(c: QueryCounts) -> Self {
        QueryTotals {
            queries: c.queries,
            failures: c.failures,
        }
    }
}

/// A snapshot of the backend's query totals, called at every scrape.
pub type QueryTotalsFn = Arc<dyn Fn() -> QueryTotals + Send + Sync>;

/// Leadership as last known: unknown until the first look at the Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leadership {
    Unknown,
    Leader,
    Follower,
}

type Outcome = [(&'static str, &'static str); 1];

/// The counters and gauges the loop writes.
#[derive(Default)]
pub struct Metrics {
    changes: Family<Outcome, Counter>,
    fast_paths: Counter,
    verdicts: Family<Outcome, Counter>,
    leader: Gauge,
    loop_errors: Counter,
    loop_duration: Option<Histogram>,
    query_duration: Option<Histogram>,
}

/// Shared between the loop and the endpoints.
pub struct DaemonState {
    running: AtomicBool,
    leadership: AtomicU8,
    workloads_listed: AtomicBool,
    last_progress: Mutex<Option<Instant>>,
    stall_after: Duration,
    recommendations: Arc<Mutex<Vec<Recommendation>>>,
    metrics: Metrics,
    registry: Registry,
    /// What the ports saw go wrong, for trouble notifications.
    trouble: Mutex<super::notices::TroubleSignals>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DaemonState {
    /// `stall_after`: `/healthz` fails when the loop made no progress for
    /// that long. `queries`: the backend's query totals, if any.
    pub fn new(stall_after: Duration, queries: Option<QueryTotalsFn>) -> Self {
        let metrics = Metrics {
            loop_duration: Some(Histogram::new(exponential_buckets(0.01, 2.0, 14))),
            query_duration: Some(Histogram::new(exponential_buckets(0.005, 2.0, 14))),
            ..Metrics::default()
        };
        // Every series exists from the start at 0, so rates work at once.
        for outcome in ["applied", "confirmed", "reverted", "abandoned"] {
            metrics
                .changes
                .get_or_create(&[("outcome", outcome)])
                .inc_by(0);
        }
        for verdict in ["healthy", "breach", "no_data"] {
            metrics
                .verdicts
                .get_or_create(&[("verdict", verdict)])
                .inc_by(0);
        }
        let recommendations = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::default();
        registry.register(
            "tailor_changes",
            "Changes by outcome: applied (patched), confirmed (bake passed), reverted, abandoned",
            metrics.changes.clone(),
        );
        registry.register(
            "tailor_fast_paths",
            "Immediate increases after OOM kills or heavy throttling",
            metrics.fast_paths.clone(),
        );
        registry.register(
            "tailor_verdicts",
            "SLO guard verdicts at the end of a bake: healthy, breach, no_data",
            metrics.verdicts.clone(),
        );
        registry.register(
            "tailor_leader",
            "1 while this replica holds the leader Lease and acts, 0 while it follows",
            metrics.leader.clone(),
        );
        registry.register(
            "tailor_loop_errors",
            "Ticks, agent starts, lease renewals and port calls that failed",
            metrics.loop_errors.clone(),
        );
        if let Some(h) = &metrics.loop_duration {
            registry.register(
                "tailor_loop_duration_seconds",
                "Duration of one agent tick",
                h.clone(),
            );
        }
        if let Some(h) = &metrics.query_duration {
            registry.register(
                "tailor_prometheus_query_duration_seconds",
                "Duration of each call the agent makes into the metrics backend (one call runs one or more batched PromQL queries)",
                h.clone(),
            );
        }
        if let Some(queries) = queries {
            registry.register_collector(Box::new(QueryCollector(queries)));
        }
        registry.register_collector(Box::new(RecommendationCollector(recommendations.clone())));
        DaemonState {
            running: AtomicBool::new(false),
            leadership: AtomicU8::new(0),
            workloads_listed: AtomicBool::new(false),
            last_progress: Mutex::new(None),
            stall_after,
            recommendations,
            metrics,
            registry,
            trouble: Mutex::new(super::notices::TroubleSignals::default()),
        }
    }

    /// To add metrics (notifications) before the state is shared.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// A call into the metrics backend succeeded (`None`) or failed.
    pub fn backend_result(&self, error: Option<String>) {
        let mut trouble = lock(&self.trouble);
        match error {
            None => trouble.backend = None,
            Some(error) => match &mut trouble.backend {
                Some(failing) => failing.error = error,
                None => {
                    trouble.backend = Some(super::notices::BackendFailure {
                        since: tokio::time::Instant::now(),
                        since_unix: crate::ports::Clock::now(&super::SystemClock),
                        error,
                    })
                }
            },
        }
    }

    /// The Kubernetes API refused a call.
    pub fn forbidden(&self, error: String) {
        let mut trouble = lock(&self.trouble);
        if !trouble.forbidden.contains(&error) {
            trouble.forbidden.push(error);
        }
    }

    /// The current backend failure and the refusals since the last call.
    pub fn take_trouble(&self) -> super::notices::TroubleSignals {
        let mut trouble = lock(&self.trouble);
        super::notices::TroubleSignals {
            backend: trouble.backend.clone(),
            forbidden: std::mem::take(&mut trouble.forbidden),
        }
    }

    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::SeqCst);
        if running {
            self.progress();
        }
    }

    /// The loop is alive (called every iteration).
    pub fn progress(&self) {
        *lock(&self.last_progress) = Some(Instant::now());
    }

    pub fn set_leadership(&self, leadership: Leadership) {
        let code = match leadership {
            Leadership::Unknown => 0,
            Leadership::Leader => 1,
            Leadership::Follower => 2,
        };
        self.leadership.store(code, Ordering::SeqCst);
        self.metrics
            .leader
            .set(i64::from(leadership == Leadership::Leader));
    }

    pub fn leadership(&self) -> Leadership {
        match self.leadership.load(Ordering::SeqCst) {
            1 => Leadership::Leader,
            2 => Leadership::Follower,
            _ => Leadership::Unknown,
        }
    }

    pub fn set_workloads_listed(&self) {
        self.workloads_listed.store(true, Ordering::SeqCst);
    }

    /// `Err(reason)` while the process is not alive.
    pub fn health(&self) -> Result<(), String> {
        if !self.running.load(Ordering::SeqCst) {
            return Err("the loop is not running".into());
        }
        match *lock(&self.last_progress) {
            Some(at) if at.elapsed() > self.stall_after => Err(format!(
                "the loop made no progress for {}s",
                at.elapsed().as_secs()
            )),
            _ => Ok(()),
        }
    }

    /// `Err(reason)` until leadership is known and the first workload list
    /// succeeded.
    pub fn readiness(&self) -> Result<(), String> {
        self.health()?;
        if self.leadership() == Leadership::Unknown {
            return Err("leadership not known yet".into());
        }
        if !self.workloads_listed.load(Ordering::SeqCst) {
            return Err("waiting for the first successful workload list".into());
        }
        Ok(())
    }

    pub fn recommendations(&self) -> Vec<Recommendation> {
        lock(&self.recommendations).clone()
    }

    /// Replaces every recommendation (a full refresh).
    pub fn set_recommendations(&self, all: Vec<Recommendation>) {
        *lock(&self.recommendations) = all;
    }

    /// Merges urgent recommendations into the latest ones by container.
    pub fn merge_recommendations(&self, urgent: &[Recommendation]) {
        let mut all = lock(&self.recommendations);
        for r in urgent {
            match all.iter_mut().find(|x| x.target == r.target) {
                Some(slot) => *slot = r.clone(),
                None => all.push(r.clone()),
            }
        }
    }

    pub fn loop_error(&self) {
        self.metrics.loop_errors.inc();
    }

    pub fn observe_tick(&self, took: Duration) {
        if let Some(h) = &self.metrics.loop_duration {
            h.observe(took.as_secs_f64());
        }
    }

    pub fn observe_query(&self, took: Duration) {
        if let Some(h) = &self.metrics.query_duration {
            h.observe(took.as_secs_f64());
        }
    }

    /// Adds what the agent did since `before` (its stats only grow while it
    /// lives; a new agent starts from zero).
    pub fn count_stats(&self, before: &AgentStats, after: &AgentStats) {
        let delta = |a: u64, b: u64| b.saturating_sub(a);
        for (outcome, n) in [
            ("applied", delta(before.applied, after.applied)),
            ("confirmed", delta(before.confirmed, after.confirmed)),
            ("reverted", delta(before.reverted, after.reverted)),
            ("abandoned", delta(before.abandoned, after.abandoned)),
        ] {
            if n > 0 {
                self.metrics
                    .changes
                    .get_or_create(&[("outcome", outcome)])
                    .inc_by(n);
            }
        }
        self.metrics
            .fast_paths
            .inc_by(delta(before.fast_paths, after.fast_paths));
        self.metrics
            .loop_errors
            .inc_by(delta(before.port_errors, after.port_errors));
    }

    /// Counts the verdicts in `records` not in `seen` yet, and remembers them.
    pub fn count_verdicts(&self, records: &[RolloutRecord], seen: &mut HashSet<(String, i64)>) {
        for (label, key) in new_verdicts(records, seen) {
            seen.insert(key);
            self.metrics
                .verdicts
                .get_or_create(&[("verdict", label)])
                .inc();
        }
    }

    /// The text exposition of every metric.
    pub fn encode_metrics(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Verdicts of `records` not in `seen`: their label and key.
pub fn new_verdicts(
    records: &[RolloutRecord],
    seen: &HashSet<(String, i64)>,
) -> Vec<(&'static str, (String, i64))> {
    records
        .iter()
        .filter_map(|r| {
            let v = r.verdict.as_ref()?;
            let key = (r.change.id.clone(), v.at);
            if seen.contains(&key) {
                return None;
            }
            let label = match v.verdict {
                crate::guard::Verdict::Healthy => "healthy",
                crate::guard::Verdict::Breach => "breach",
                crate::guard::Verdict::NoData => "no_data",
            };
            Some((label, key))
        })
        .collect()
}

/// The verdicts already in `records` (so a restart does not count them again).
pub fn seen_verdicts(records: &[RolloutRecord]) -> HashSet<(String, i64)> {
    new_verdicts(records, &HashSet::new())
        .into_iter()
        .map(|(_, key)| key)
        .collect()
}

struct QueryCollector(QueryTotalsFn);

impl std::fmt::Debug for QueryCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryCollector")
    }
}

impl Collector for QueryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = (self.0)();
        for (name, help, value) in [
            (
                "tailor_prometheus_queries",
                "PromQL queries sent to the metrics backend",
                totals.queries,
            ),
            (
                "tailor_prometheus_query_errors",
                "PromQL queries that failed after their retries",
                totals.failures,
            ),
        ] {
            let counter = ConstCounterU64(value);
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

struct ConstCounterU64(u64);

impl EncodeMetric for ConstCounterU64 {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.0, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

#[derive(Debug)]
struct RecommendationCollector(Arc<Mutex<Vec<Recommendation>>>);

/// The containers of the `limit` workloads that save the most, in a stable
/// order (by savings, then by name).
pub fn top_by_savings(all: &[Recommendation], limit: usize) -> Vec<&Recommendation> {
    let mut savings: BTreeMap<&WorkloadRef, f64> = BTreeMap::new();
    for r in all {
        *savings.entry(&r.target.workload).or_default() += r.savings_per_month_usd;
    }
    let mut workloads: Vec<(&WorkloadRef, f64)> = savings.into_iter().collect();
    workloads.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    workloads.truncate(limit);
    let kept: HashSet<&WorkloadRef> = workloads.iter().map(|(w, _)| *w).collect();
    let mut out: Vec<&Recommendation> = all
        .iter()
        .filter(|r| kept.contains(&r.target.workload))
        .collect();
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

impl Collector for RecommendationCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = lock(&self.0);
        let top = top_by_savings(&all, MAX_RECOMMENDATION_WORKLOADS);
        type Pick = fn(&crate::domain::Resources) -> Option<u64>;
        let series: [(&str, &str, Pick); 2] = [
            (
                "tailor_recommendation_cpu_millicores",
                "CPU request per container, current and recommended, in millicores; only the 200 workloads with the largest savings (bounded cardinality)",
                |r| r.cpu_request.map(|m| m.0),
            ),
            (
                "tailor_recommendation_memory_bytes",
                "Memory request per container, current and recommended, in bytes; only the 200 workloads with the largest savings (bounded cardinality)",
                |r| r.memory_request.map(|b| b.0),
            ),
        ];
        for (name, help, pick) in series {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for r in &top {
                for (kind, resources) in [("current", &r.current), ("recommended", &r.recommended)]
                {
                    let Some(value) = pick(resources) else {
                        continue;
                    };
                    let labels = [
                        ("namespace", r.target.workload.namespace.as_str()),
                        ("workload", r.target.workload.name.as_str()),
                        ("workload_kind", r.target.workload.kind.as_str()),
                        ("container", r.target.container.as_str()),
                        ("kind", kind),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_gauge(&i64::try_from(value).unwrap_or(i64::MAX))?;
                }
            }
        }
        Ok(())
    }
}
