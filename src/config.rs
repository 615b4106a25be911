//! The typed configuration: one YAML file, every key defaulted, validated
//! with errors that name the exact key and the fix.
//!
//! Reference with every key and its default: `docs/configuration.md`.
//! This module never touches the network; it only reads the file it is given.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{self, Bytes, MilliCores};

/// The whole agent configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub prometheus: PrometheusConfig,
    pub history: HistoryConfig,
    pub pricing: PricingConfig,
    pub selection: SelectionConfig,
    /// The policy for workloads no entry of `policies` matches.
    pub default_policy: Policy,
    /// Policies tried in order; the first whose `match` fits a workload wins.
    pub policies: Vec<PolicyRule>,
    /// How far and how often the agent changes workloads on its own
    /// (reference: `docs/guardrails.md`).
    pub guardrails: crate::plan::Guardrails,
    /// Timings of one change's rollout and bake.
    pub rollout: RolloutConfig,
    /// How strict the SLO guard is (reference: `docs/slo-guard.md`).
    pub guard: crate::guard::GuardPolicy,
    /// The daemon: loop intervals, metrics endpoint, leader election.
    pub agent: AgentConfig,
    /// Where each workload's SLIs come from (reference: `docs/slo.md`).
    pub slo: SloConfig,
    /// Slack, webhook and Teams notifications (reference:
    /// `docs/notifications.md`).
    pub notifications: crate::notify::config::NotificationsConfig,
    /// What `tailor report` groups by and shows (reference: `docs/report.md`).
    pub report: ReportConfig,
}

/// The `rollout:` section: [`crate::rollout::RolloutSettings`] with
/// durations written like the rest of the file (`30m`, not `1800`).
/// The hold after a revert is `guardrails.hold_after_revert`, kept in one place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutConfig {
    /// A rollout not complete this long after the patch is reverted.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// How long the guard watches after the rollout before confirming.
    #[serde(with = "duration_text")]
    pub bake: Duration,
    /// The window before the patch the bake is compared with.
    #[serde(with = "duration_text")]
    pub baseline: Duration,
    /// How long past the bake deadline missing SLI data may delay a verdict.
    #[serde(with = "duration_text")]
    pub no_data_grace: Duration,
    /// Add the bake's hours of the previous day to the SLI baseline.
    pub seasonal_baseline: bool,
    /// Warm-up after the rollout left out of the bake.
    #[serde(with = "duration_text")]
    pub warmup: Duration,
    /// While pods roll, only a breach this many times the tolerance reverts.
    pub early_abort_factor: f64,
    /// After a confirm, compare each hour with the day before for this long.
    #[serde(with = "duration_text")]
    pub watch: Duration,
    /// Hours compared in the watch must carry requests within this share.
    pub comparable_load: f64,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        let d = crate::rollout::RolloutSettings::default();
        let secs = |s: i64| Duration::from_secs(u64::try_from(s).unwrap_or(0));
        RolloutConfig {
            timeout: secs(d.rollout_timeout_s),
            bake: secs(d.bake_s),
            baseline: secs(d.baseline_s),
            no_data_grace: secs(d.no_data_grace_s),
            seasonal_baseline: d.seasonal_baseline,
            warmup: secs(d.warmup_s),
            early_abort_factor: d.early_abort_factor,
            watch: secs(d.watch_s),
            comparable_load: d.comparable_load,
        }
    }
}

impl RolloutConfig {
    /// The state machine's settings; `hold_after_revert` comes from the guardrails.
    pub fn settings(&self, hold_after_revert: Duration) -> crate::rollout::RolloutSettings {
        crate::rollout::RolloutSettings {
            rollout_timeout_s: seconds(self.timeout),
            bake_s: seconds(self.bake),
            baseline_s: seconds(self.baseline),
            no_data_grace_s: seconds(self.no_data_grace),
            hold_after_revert_s: seconds(hold_after_revert),
            seasonal_baseline: self.seasonal_baseline,
            warmup_s: seconds(self.warmup),
            early_abort_factor: self.early_abort_factor,
            watch_s: seconds(self.watch),
            comparable_load: self.comparable_load,
        }
    }
}

/// Whole seconds, saturating (validation keeps durations far below i64::MAX).
fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The `agent:` section: how the daemon runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// How often the planner runs (at once when something is urgent).
    #[serde(with = "duration_text")]
    pub plan_interval: Duration,
    /// How often every recommendation is refreshed (urgent ones every tick).
    #[serde(with = "duration_text")]
    pub recommend_interval: Duration,
    /// How often the loop advances the changes in flight.
    #[serde(with = "duration_text")]
    pub tick: Duration,
    /// `host:port` of `/metrics`, `/healthz` and `/readyz`.
    pub metrics_address: String,
    pub leader_election: LeaderElection,
}

/// Only the holder of a Lease acts; the others serve read-only endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderElection {
    pub enabled: bool,
    /// Namespace of the Lease; unset: the pod's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub lease_name: String,
    /// A leader that has not renewed for this long is replaced.
    #[serde(with = "duration_text")]
    pub lease_duration: Duration,
    #[serde(with = "duration_text")]
    pub renew_every: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            plan_interval: 5 * MINUTE,
            recommend_interval: HOUR,
            tick: MINUTE,
            metrics_address: "0.0.0.0:8080".to_string(),
            leader_election: LeaderElection::default(),
        }
    }
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: true,
            namespace: None,
            lease_name: "tailor-leader".to_string(),
            lease_duration: 15 * SECOND,
            renew_every: 5 * SECOND,
        }
    }
}

/// Where the service account token mounts the pod's namespace.
pub const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The Lease's namespace when `agent.leader_election.namespace` is unset
/// and the pod's namespace cannot be read (running outside a cluster).
pub const DEFAULT_LEASE_NAMESPACE: &str = "tailor-system";

impl LeaderElection {
    /// The configured namespace, else the pod's (from the service account
    /// mount), else `tailor-system`.
    pub fn lease_namespace(&self) -> String {
        self.lease_namespace_from(Path::new(POD_NAMESPACE_FILE))
    }

    /// [`Self::lease_namespace`] reading the pod's namespace from `file`.
    pub fn lease_namespace_from(&self, file: &Path) -> String {
        if let Some(namespace) = non_blank(&self.namespace) {
            return namespace.to_string();
        }
        std::fs::read_to_string(file)
            .ok()
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| DEFAULT_LEASE_NAMESPACE.to_string())
    }
}

/// The `slo:` section: PromQL templates giving each workload's SLIs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SloConfig {
    /// Tried in order; the first whose `match` fits a workload gives its SLIs.
    /// Empty: no workload has SLIs, the guard judges resource signals only.
    pub templates: Vec<SliTemplate>,
}

impl Default for SloConfig {
    fn default() -> Self {
        SloConfig {
            templates: vec![SliTemplate::http()],
        }
    }
}

/// PromQL for one kind of SLI. Placeholders: `{namespace}`, `{name}`,
/// `{pod_regex}` (escaped, for use inside quotes), `{selector}` (the
/// workload's label matchers, for use inside braces) and `{window}` (the
/// step, `60s`). Each query must give one series: a value per minute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliTemplate {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matches: PolicyMatch,
    /// Requests completed in each window.
    pub requests: String,
    /// Failed requests in each window.
    pub errors: String,
    /// p95 latency in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95: Option<String>,
    /// p99 latency in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99: Option<String>,
}

/// The placeholders an SLI template may use.
pub const SLI_PLACEHOLDERS: [&str; 5] = ["namespace", "name", "pod_regex", "selector", "window"];

impl SliTemplate {
    /// Server-side HTTP metrics as exported by most client libraries
    /// (Prometheus' own naming guide; Go, Python, Java and Node exporters):
    /// `http_requests_total{code}` and `http_request_duration_seconds_bucket`.
    pub fn http() -> SliTemplate {
        SliTemplate {
            name: "http".to_string(),
            matches: PolicyMatch::default(),
            requests: "sum(increase(http_requests_total{{selector}}[{window}]))".to_string(),
            errors: r#"sum(increase(http_requests_total{{selector},code=~"5.."}[{window}]))"#
                .to_string(),
            latency_p95: Some(
                "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{selector}}[{window}])))"
                    .to_string(),
            ),
            latency_p99: Some(
                "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{selector}}[{window}])))"
                    .to_string(),
            ),
        }
    }

    /// ingress-nginx controller metrics, for workloads behind an Ingress
    /// whose Service is named like the workload.
    pub fn nginx_ingress() -> SliTemplate {
        let by = r#"exported_namespace="{namespace}",service="{name}""#;
        SliTemplate {
            name: "nginx-ingress".to_string(),
            matches: PolicyMatch::default(),
            requests: format!(
                "sum(increase(nginx_ingress_controller_requests{{{by}}}[{{window}}]))"
            ),
            errors: format!(
                r#"sum(increase(nginx_ingress_controller_requests{{{by},status=~"5.."}}[{{window}}]))"#
            ),
            latency_p95: Some(format!(
                "histogram_quantile(0.95, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{{{by}}}[{{window}}])))"
            )),
            latency_p99: Some(format!(
                "histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{{{by}}}[{{window}}])))"
            )),
        }
    }

    /// Istio sidecar metrics as reported by the destination (milliseconds
    /// turned into seconds).
    pub fn istio() -> SliTemplate {
        let by = r#"reporter="destination",destination_workload_namespace="{namespace}",destination_workload="{name}""#;
        SliTemplate {
            name: "istio".to_string(),
            matches: PolicyMatch::default(),
            requests: format!("sum(increase(istio_requests_total{{{by}}}[{{window}}]))"),
            errors: format!(
                r#"sum(increase(istio_requests_total{{{by},response_code=~"5.."}}[{{window}}]))"#
            ),
            latency_p95: Some(format!(
                "histogram_quantile(0.95, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{by}}}[{{window}}]))) / 1000"
            )),
            latency_p99: Some(format!(
                "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{by}}}[{{window}}]))) / 1000"
            )),
        }
    }

    /// Every query of the template with its key suffix.
    pub fn queries(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("requests", self.requests.as_str()),
            ("errors", self.errors.as_str()),
        ];
        if let Some(q) = &self.latency_p95 {
            out.push(("latency_p95", q));
        }
        if let Some(q) = &self.latency_p99 {
            out.push(("latency_p99", q));
        }
        out
    }
}

/// The `{word}` placeholders in a template, in order (PromQL's own braces
/// hold matchers like `code="5xx"`, never a bare lowercase word).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let word_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if word_len > 0 && rest.as_bytes().get(word_len) == Some(&b'}') {
            out.push(&rest[..word_len]);
        }
    }
    out
}

/// `template` with each `{word}` replaced by `value(word)`, in one pass (a
/// value that itself reads `{word}` stays as it is). A placeholder without
/// a value is left as written.
pub fn fill_placeholders(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let word_len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        let filled = (after.as_bytes().get(word_len) == Some(&b'}'))
            .then(|| value(&after[..word_len]))
            .flatten();
        match filled {
            Some(filled) => {
                out.push_str(&filled);
                rest = &after[word_len + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// How to reach Prometheus or a compatible backend (Thanos, Mimir,
/// VictoriaMetrics, Cortex).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    pub url: String,
    /// Extra HTTP headers on every request, e.g. `X-Scope-OrgID` for Mimir.
    pub headers: BTreeMap<String, String>,
    /// A file holding a bearer token (re-read on every run, so rotation works).
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    /// PEM bundle of CAs to trust in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// Attempts after the first for a failed query (5xx, timeout, connection).
    pub retries: u32,
    /// Upper bound on queries per second sent to the backend.
    pub max_queries_per_second: u32,
    /// Ask for gzip-compressed responses. Off by default: compressing
    /// costs the backend about twice the CPU of answering the query, and
    /// an in-cluster agent does not need to save bandwidth.
    pub compression: bool,
    /// For shared backends: the label that tells clusters apart, and ours.
    pub cluster_label: Option<String>,
    pub cluster: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password_file: PathBuf,
}

/// How much usage history to read and at what resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// How far back to read.
    #[serde(with = "duration_text")]
    pub window: Duration,
    /// Step of the CPU usage series (each sample is the average over it).
    #[serde(with = "duration_text")]
    pub resolution: Duration,
    /// Memory is read as the peak per this interval.
    #[serde(with = "duration_text")]
    pub memory_peak_interval: Duration,
    /// Longest time span of one range query; bounds response size.
    #[serde(with = "duration_text")]
    pub chunk: Duration,
    /// Half-life of the weight given to older samples.
    #[serde(with = "duration_text")]
    pub half_life: Duration,
}

/// Unit prices used for savings. Defaults are AWS Fargate on-demand Linux/x86
/// prices in us-east-1 (per vCPU-hour and per GB-hour), a fair stand-in for
/// what a team leaving ECS paid; see `docs/configuration.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    pub cpu_core_hour_usd: f64,
    pub memory_gib_hour_usd: f64,
    /// Where the prices come from, printed in reports; unset: the defaults'
    /// source when the prices are the defaults, else "set in the config".
    pub source: Option<String>,
    /// The node label naming a node's pool; unset: the first of
    /// [`WELL_KNOWN_NODE_POOL_LABELS`] a node carries.
    pub node_pool_label: Option<String>,
    /// Prices of the pods running on these pools, instead of the above.
    pub node_pools: Vec<NodePoolPricing>,
}

/// Where the default prices come from.
pub const DEFAULT_PRICING_SOURCE: &str =
    "AWS Fargate on-demand, Linux/x86, us-east-1 (aws.amazon.com/fargate/pricing)";

/// Node labels that name a node pool on the common managed Kubernetes
/// services, tried in this order when `pricing.node_pool_label` is unset.
pub const WELL_KNOWN_NODE_POOL_LABELS: [&str; 4] = [
    "karpenter.sh/nodepool",
    "eks.amazonaws.com/nodegroup",
    "cloud.google.com/gke-nodepool",
    "kubernetes.azure.com/agentpool",
];

/// Prices of one node pool: pods whose nodes carry the pool label with
/// value `name` are priced with these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePoolPricing {
    pub name: String,
    pub cpu_core_hour_usd: f64,
    pub memory_gib_hour_usd: f64,
    #[serde(default)]
    pub source: Option<String>,
}

impl PricingConfig {
    /// The text reports print for where the prices come from.
    pub fn source_text(&self) -> String {
        match &self.source {
            Some(source) => source.clone(),
            None if self.cpu_core_hour_usd == PricingConfig::default().cpu_core_hour_usd
                && self.memory_gib_hour_usd == PricingConfig::default().memory_gib_hour_usd =>
            {
                DEFAULT_PRICING_SOURCE.to_string()
            }
            None => "set in the config (pricing.cpu_core_hour_usd, pricing.memory_gib_hour_usd)"
                .to_string(),
        }
    }
}

/// The `report:` section: how `tailor report` groups and ranks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// Pod label whose value names the team owning a workload
    /// (`kube_pod_labels`); unset: no savings by team.
    pub team_label: Option<String>,
    /// How many containers the "top savings" chart shows.
    pub top: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            team_label: None,
            top: 10,
        }
    }
}

/// Which workloads are looked at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectionConfig {
    /// Namespace regexes (anchored); empty means all namespaces.
    pub namespaces: Vec<String>,
    /// Namespace regexes (anchored) never looked at.
    pub exclude_namespaces: Vec<String>,
    /// A pod label selector (`app=web,tier!=db`), matched against the
    /// `kube_pod_labels` series of kube-state-metrics.
    pub selector: Option<String>,
}

/// A named policy and the workloads it applies to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matches: PolicyMatch,
    #[serde(default)]
    pub policy: Policy,
}

/// Empty fields match everything; set fields must all match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyMatch {
    /// Namespace regex (anchored).
    pub namespaces: Option<String>,
    /// Pod label selector (`app=web,tier in (a,b)` is not supported; use `=`, `!=`).
    pub selector: Option<String>,
}

/// How recommendations are computed for the workloads a policy applies to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub cpu: CpuPolicy,
    pub memory: MemoryPolicy,
    /// History needed before recommending a decrease.
    #[serde(with = "duration_text")]
    pub min_history: Duration,
    /// History needed before recommending an increase not driven by OOM kills.
    #[serde(with = "duration_text")]
    pub min_history_increase: Duration,
    /// A change must clear both the ratio and the absolute threshold to be
    /// worth a rollout.
    pub significance: Significance,
    /// Samples this long after a container starts count as startup, sized
    /// by limits but kept out of the steady-state request.
    #[serde(with = "duration_text")]
    pub startup_window: Duration,
    /// Mode for the workloads this policy applies to, overriding
    /// `guardrails.mode`; a workload's `tailor.dev/mode` annotation wins
    /// over both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::plan::Mode>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuPolicy {
    /// Percentile (0–100] of CPU usage that sets the request.
    pub percentile: f64,
    /// Headroom added on top of the percentile (0.15 = +15 %).
    pub margin: f64,
    #[serde(
        deserialize_with = "units::de_cpu",
        serialize_with = "quantity_text::serialize"
    )]
    pub min: MilliCores,
    #[serde(
        deserialize_with = "units::de_cpu_opt",
        serialize_with = "quantity_text::serialize_opt"
    )]
    pub max: Option<MilliCores>,
    /// Requests and limits are rounded up to a multiple of this.
    #[serde(
        deserialize_with = "units::de_cpu",
        serialize_with = "quantity_text::serialize"
    )]
    pub step: MilliCores,
    pub limit: CpuLimitPolicy,
    /// Percentile used for the limit under `limit: percentile`.
    pub limit_percentile: f64,
    /// Fraction of CFS periods throttled above which CPU is never decreased.
    pub throttling_veto_ratio: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuLimitPolicy {
    /// No CPU limit (avoids CFS throttling).
    None,
    /// Keep the current limit/request ratio.
    KeepRatio,
    /// Limit from a high percentile of usage.
    Percentile,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryPolicy {
    /// Percentile (0–100] of per-interval peaks that sets the request.
    pub percentile: f64,
    pub margin: f64,
    /// The limit is never below the observed peak × (1 + limit_margin).
    pub limit_margin: f64,
    pub limit: MemoryLimitPolicy,
    #[serde(
        deserialize_with = "units::de_memory",
        serialize_with = "quantity_text::serialize"
    )]
    pub min: Bytes,
    #[serde(
        deserialize_with = "units::de_memory_opt",
        serialize_with = "quantity_text::serialize_opt"
    )]
    pub max: Option<Bytes>,
    #[serde(
        deserialize_with = "units::de_memory",
        serialize_with = "quantity_text::serialize"
    )]
    pub step: Bytes,
    /// After an OOM kill, memory goes to at least the limit at the time
    /// × this ratio, and at least that limit + `oom_min_bump`.
    pub oom_bump_ratio: f64,
    #[serde(
        deserialize_with = "units::de_memory",
        serialize_with = "quantity_text::serialize"
    )]
    pub oom_min_bump: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryLimitPolicy {
    /// Limit = max(request, observed peak × (1 + limit_margin)).
    Peak,
    /// No memory limit.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Significance {
    /// Relative change below which nothing is recommended (0.10 = 10 %).
    pub min_ratio: f64,
    #[serde(
        deserialize_with = "units::de_cpu",
        serialize_with = "quantity_text::serialize"
    )]
    pub min_cpu: MilliCores,
    #[serde(
        deserialize_with = "units::de_memory",
        serialize_with = "quantity_text::serialize"
    )]
    pub min_memory: Bytes,
}

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);
const MINUTE: Duration = Duration::from_secs(60);
const SECOND: Duration = Duration::from_secs(1);

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: "http://localhost:9090".to_string(),
            headers: Default::default(),
            bearer_token_file: None,
            basic_auth: None,
            ca_file: None,
            timeout: Duration::from_secs(60),
            retries: 3,
            max_queries_per_second: 20,
            compression: false,
            cluster_label: None,
            cluster: None,
        }
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            window: 14 * DAY,
            resolution: 5 * MINUTE,
            memory_peak_interval: HOUR,
            chunk: DAY,
            half_life: DAY,
        }
    }
}

impl Default for PricingConfig {
    fn default() -> Self {
        PricingConfig {
            cpu_core_hour_usd: 0.04048,
            memory_gib_hour_usd: 0.004445,
            source: None,
            node_pool_label: None,
            node_pools: Vec::new(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            cpu: CpuPolicy::default(),
            memory: MemoryPolicy::default(),
            min_history: 7 * DAY,
            min_history_increase: DAY,
            significance: Significance::default(),
            startup_window: 5 * MINUTE,
            mode: None,
        }
    }
}

impl Default for CpuPolicy {
    fn default() -> Self {
        CpuPolicy {
            percentile: 90.0,
            margin: 0.15,
            min: MilliCores(10),
            max: None,
            step: MilliCores(5),
            limit: CpuLimitPolicy::None,
            limit_percentile: 99.0,
            throttling_veto_ratio: 0.10,
        }
    }
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        MemoryPolicy {
            percentile: 98.0,
            margin: 0.15,
            // 0.35, not 0.2: on the real traces (BENCHMARKS.md) memory
            // that grows 40 % past its training peak got two OOM kills under
            // a 20 % margin before the bump caught up; 35 % leaves none
            // repeated, at no cost (limits are not what nodes reserve).
            limit_margin: 0.35,
            limit: MemoryLimitPolicy::Peak,
            min: Bytes::mib(64),
            max: None,
            step: Bytes::mib(1),
            oom_bump_ratio: 1.2,
            oom_min_bump: Bytes::mib(100),
        }
    }
}

impl Default for Significance {
    fn default() -> Self {
        Significance {
            min_ratio: 0.10,
            min_cpu: MilliCores(10),
            min_memory: Bytes::mib(32),
        }
    }
}

/// Values given on the command line. Each one that is set (and not blank)
/// replaces the file's value: flags override the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CliOverrides {
    pub prometheus_url: Option<String>,
    pub namespaces: Vec<String>,
    pub selector: Option<String>,
    pub history: Option<Duration>,
}

/// One requirement of a pod label selector such as `app=web,tier!=db,canary,!legacy`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LabelRequirement {
    /// `key=value` (or `key==value`)
    Equals(String, String),
    /// `key!=value`; as in Kubernetes, also true when `key` is absent.
    NotEquals(String, String),
    /// `key`
    Exists(String),
    /// `!key`
    NotExists(String),
}

impl LabelRequirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelRequirement::Equals(key, value) => labels.get(key) == Some(value),
            LabelRequirement::NotEquals(key, value) => labels.get(key) != Some(value),
            LabelRequirement::Exists(key) => labels.contains_key(key),
            LabelRequirement::NotExists(key) => !labels.contains_key(key),
        }
    }
}

/// The selector text form, as [`parse_selector`] reads it.
impl fmt::Display for LabelRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelRequirement::Equals(key, value) => write!(f, "{key}={value}"),
            LabelRequirement::NotEquals(key, value) => write!(f, "{key}!={value}"),
            LabelRequirement::Exists(key) => write!(f, "{key}"),
            LabelRequirement::NotExists(key) => write!(f, "!{key}"),
        }
    }
}

/// True when every requirement matches; an empty selector matches everything.
pub fn selector_matches(
    requirements: &[LabelRequirement],
    labels: &BTreeMap<String, String>,
) -> bool {
    requirements.iter().all(|r| r.matches(labels))
}

/// Parses an equality-based label selector: comma-separated `key=value`,
/// `key!=value`, `key` and `!key`, with Kubernetes label key and value
/// syntax. Blank text is the empty selector. Set-based requirements
/// (`in`, `notin`) are refused rather than half-supported.
pub fn parse_selector(text: &str) -> Result<Vec<LabelRequirement>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.contains('(') || text.contains(')') {
        return Err(
            "set-based requirements (`in`, `notin`) are not supported; use one policy per value"
                .to_string(),
        );
    }
    text.split(',').map(parse_requirement).collect()
}

fn parse_requirement(part: &str) -> Result<LabelRequirement, String> {
    let part = part.trim();
    if part.is_empty() {
        return Err(
            "it has an empty requirement (two commas in a row, or a trailing comma)".into(),
        );
    }
    let requirement = if let Some((key, value)) = part.split_once("!=") {
        LabelRequirement::NotEquals(key.trim().to_string(), value.trim().to_string())
    } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        LabelRequirement::Equals(key.trim().to_string(), value.trim().to_string())
    } else if let Some(key) = part.strip_prefix('!') {
        LabelRequirement::NotExists(key.trim().to_string())
    } else {
        LabelRequirement::Exists(part.to_string())
    };
    match &requirement {
        LabelRequirement::Equals(key, value) | LabelRequirement::NotEquals(key, value) => {
            check_label_key(key)?;
            check_label_value(value)?;
        }
        LabelRequirement::Exists(key) | LabelRequirement::NotExists(key) => check_label_key(key)?,
    }
    Ok(requirement)
}

/// A Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name.
fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "label key {key:?} has an invalid prefix {prefix:?} (a prefix is a DNS subdomain \
             like example.com: lowercase letters, digits, `-` and `.`)"
        ));
    }
    if !is_label_name(name) {
        return Err(format!(
            "{key:?} is not a valid label key (1-63 letters, digits, `-`, `_` or `.`, \
             starting and ending with a letter or digit, optionally after a `prefix/`)"
        ));
    }
    Ok(())
}

fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid label value (at most 63 letters, digits, `-`, `_` or `.`, \
             starting and ending with a letter or digit)"
        ))
    }
}

fn is_label_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns_subdomain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            let bytes = label.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    bytes.len() <= 63
                        && (first.is_ascii_lowercase() || first.is_ascii_digit())
                        && (last.is_ascii_lowercase() || last.is_ascii_digit())
                        && bytes
                            .iter()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                }
                _ => false,
            }
        })
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_prometheus_label_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Compiles a namespace pattern the way the config means it: a regex that
/// must match the whole namespace name (`team-.*` matches `team-a`, `team`
/// alone does not match `team-a`).
pub fn namespace_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// A config file that could not be used, with the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Malformed YAML, an unknown key, or a value of the wrong type. `key` is
    /// the dotted path (`policies[1].policy.cpu.percentile`), empty for the
    /// whole document.
    #[error("{path}: {}", with_key(.key, .message))]
    Parse {
        path: String,
        key: String,
        message: String,
    },
    /// A well-formed value that cannot work; `fix` says what to write instead.
    #[error("{path}: `{key}`: {problem}; fix: {fix}")]
    Invalid {
        path: String,
        key: String,
        problem: String,
        fix: String,
    },
}

fn with_key(key: &str, message: &str) -> String {
    if key.is_empty() {
        message.to_string()
    } else {
        format!("{key}: {message}")
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text, &path.display().to_string())
    }

    /// Parses and validates YAML; `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        // An empty file (or one with only comments) is a valid "all defaults".
        let config = if is_blank_yaml(text) {
            Config::default()
        } else {
            refuse_yaml_tags(text, origin)?;
            let de = serde_yaml_ng::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| parse_error(origin, &e))?
        };
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks every value a type cannot: ranges, regexes, selectors, and
    /// keys that only make sense together. Returns the first problem.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.first_problem().map_err(|p| ConfigError::Invalid {
            path: origin.to_string(),
            key: p.key,
            problem: p.problem,
            fix: p.fix,
        })
    }

    /// Applies command-line values over the file's. The caller validates
    /// again afterwards, since flags can break what the file got right.
    pub fn merge_cli_overrides(&mut self, overrides: &CliOverrides) {
        if let Some(url) = non_blank(&overrides.prometheus_url) {
            self.prometheus.url = url.to_string();
        }
        let namespaces: Vec<String> = overrides
            .namespaces
            .iter()
            .filter(|n| !n.trim().is_empty())
            .cloned()
            .collect();
        if !namespaces.is_empty() {
            self.selection.namespaces = namespaces;
        }
        if let Some(selector) = non_blank(&overrides.selector) {
            self.selection.selector = Some(selector.to_string());
        }
        if let Some(window) = overrides.history {
            self.history.window = window;
        }
    }

    fn first_problem(&self) -> Check {
        check_prometheus(&self.prometheus)?;
        check_history(&self.history)?;
        check_pricing(&self.pricing)?;
        check_selection(&self.selection)?;
        check_policy("default_policy", &self.default_policy, &self.history)?;
        check_names(
            "policies",
            "policy",
            "`name: latency-sensitive`; reports and annotations refer to policies by name",
            self.policies.iter().map(|r| r.name.as_str()),
        )?;
        for (i, rule) in self.policies.iter().enumerate() {
            let at = format!("policies[{i}]");
            check_policy_match(&at, rule, i + 1 < self.policies.len())?;
            check_policy(&format!("{at}.policy"), &rule.policy, &self.history)?;
        }
        self.guardrails
            .check()
            .map_err(|e| problem(e.key, e.problem, e.fix))?;
        check_rollout(&self.rollout)?;
        self.guard.validate().map_err(|e| {
            problem(
                format!("guard.{}", e.field),
                format!("{} is outside its range", e.value),
                format!("write {}", e.expected),
            )
        })?;
        check_guard_power(&self.rollout, &self.guard)?;
        check_agent(&self.agent)?;
        check_slo(&self.slo)?;
        self.notifications
            .check()
            .map_err(|e| problem(e.key, e.problem, e.fix))?;
        check_report(&self.report)?;
        Ok(())
    }

    /// What the agent loop needs from this file.
    pub fn agent_settings(&self) -> crate::agent::AgentSettings {
        crate::agent::AgentSettings {
            guardrails: self.guardrails.clone(),
            rollout: self.rollout.settings(self.guardrails.hold_after_revert),
            guard: self.guard.clone(),
            plan_interval_s: seconds(self.agent.plan_interval),
            recommend_interval_s: seconds(self.agent.recommend_interval),
        }
    }
}

fn check_rollout(r: &RolloutConfig) -> Check {
    let at_least = |key: &str, value: Duration, min: Duration, example: &str| -> Check {
        if value < min {
            return Err(problem(
                format!("rollout.{key}"),
                format!("{} is shorter than {}", show(value), show(min)),
                format!("write at least {}, e.g. {example}", show(min)),
            ));
        }
        Ok(())
    };
    at_least("timeout", r.timeout, MINUTE, "15m (the default)")?;
    // Floors low enough for a local trial against the API test server;
    // the defaults are what production wants.
    at_least("bake", r.bake, MINUTE, "30m (the default)")?;
    at_least("baseline", r.baseline, MINUTE, "1h (the default)")?;
    if r.warmup >= r.bake {
        return Err(problem(
            "rollout.warmup",
            format!(
                "the warm-up {} is not shorter than rollout.bake {}, so nothing would be judged",
                show(r.warmup),
                show(r.bake)
            ),
            "write a warm-up well under the bake, e.g. 5m (the default)",
        ));
    }
    if !(r.early_abort_factor.is_finite() && r.early_abort_factor >= 1.0) {
        return Err(problem(
            "rollout.early_abort_factor",
            format!("{} is below 1", r.early_abort_factor),
            "write 1 or more, e.g. 5 (the default): while pods roll only a breach 5 times the tolerance reverts",
        ));
    }
    if !(r.comparable_load > 0.0 && r.comparable_load <= 1.0) {
        return Err(problem(
            "rollout.comparable_load",
            format!("the share {} is outside (0, 1]", r.comparable_load),
            "write a fraction above 0 and at most 1, e.g. 0.2 (the default)",
        ));
    }
    Ok(())
}

/// SLIs are judged per minute: a baseline and a bake with too few minutes
/// leave the latency test unable to reject at `guard.alpha`, whatever the
/// bake shows, and no change could ever be confirmed on time.
fn check_guard_power(r: &RolloutConfig, guard: &crate::guard::GuardPolicy) -> Check {
    let minutes = |d: Duration| (d.as_secs() / 60) as usize;
    let (n0, n1) = (
        minutes(r.baseline),
        minutes(r.bake.saturating_sub(r.warmup)),
    );
    let best = crate::guard::mann_whitney_smallest_p_value(n0, n1);
    if best >= guard.alpha {
        return Err(problem(
            "rollout.baseline",
            format!(
                "rollout.baseline {} and rollout.bake {} (less the {} warm-up) hold {n0} and {n1} one-minute SLI intervals: \
                 too few for the guard's latency test to reach guard.alpha {} (best p = {best:.3}), so no change could be confirmed",
                show(r.baseline),
                show(r.bake),
                show(r.warmup),
                guard.alpha
            ),
            "lengthen rollout.baseline (1h, the default) or rollout.bake, or raise guard.alpha",
        ));
    }
    Ok(())
}

fn check_agent(a: &AgentConfig) -> Check {
    if a.tick < SECOND || a.tick > 10 * MINUTE {
        return Err(problem(
            "agent.tick",
            format!("the tick {} is outside 1s..10m", show(a.tick)),
            "write a tick between 1s and 10m, e.g. 1m (the default)",
        ));
    }
    for (key, value, example) in [
        ("agent.plan_interval", a.plan_interval, "5m"),
        ("agent.recommend_interval", a.recommend_interval, "1h"),
    ] {
        if value < a.tick {
            return Err(problem(
                key,
                format!(
                    "{} is shorter than agent.tick {}, but it only runs on a tick",
                    show(value),
                    show(a.tick)
                ),
                format!(
                    "write at least {}, e.g. {example} (the default)",
                    show(a.tick)
                ),
            ));
        }
    }
    if a.metrics_address.parse::<std::net::SocketAddr>().is_err() {
        return Err(problem(
            "agent.metrics_address",
            format!("{:?} is not an address and port", a.metrics_address),
            "write an IP address and a port, e.g. 0.0.0.0:8080 (the default) or 127.0.0.1:9100",
        ));
    }
    let le = &a.leader_election;
    if let Some(namespace) = &le.namespace
        && !is_dns_label(namespace)
    {
        return Err(problem(
            "agent.leader_election.namespace",
            format!("{namespace:?} is not a namespace name"),
            "write a namespace name (lowercase letters, digits and `-`), or remove the key to use the pod's own namespace",
        ));
    }
    if !is_dns_subdomain(&le.lease_name) {
        return Err(problem(
            "agent.leader_election.lease_name",
            format!("{:?} is not a valid Lease name", le.lease_name),
            "write a lowercase name of letters, digits, `-` and `.`, e.g. tailor-leader (the default)",
        ));
    }
    if le.renew_every.is_zero() || le.renew_every >= le.lease_duration {
        return Err(problem(
            "agent.leader_election.renew_every",
            format!(
                "renewing every {} does not fit in a lease of {}, so the leader would lose its lease between renewals",
                show(le.renew_every),
                show(le.lease_duration)
            ),
            "write a renewal period well under agent.leader_election.lease_duration, e.g. 5s with 15s (the defaults)",
        ));
    }
    Ok(())
}

fn is_dns_label(text: &str) -> bool {
    text.len() <= 63 && !text.contains('.') && is_dns_subdomain(text)
}

/// Every entry of the list at `key` has a non-empty name no other entry uses.
fn check_names<'a>(
    key: &str,
    kind: &str,
    example: &str,
    names: impl Iterator<Item = &'a str>,
) -> Check {
    let mut first_use: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, name) in names.enumerate() {
        if name.trim().is_empty() {
            return Err(problem(
                format!("{key}[{i}].name"),
                format!("the {kind} has no name"),
                format!("give it a short unique name, e.g. {example}"),
            ));
        }
        if let Some(first) = first_use.insert(name, i) {
            return Err(problem(
                format!("{key}[{i}].name"),
                format!("the name {name:?} is already used by {key}[{first}]"),
                format!("give every {kind} a unique name"),
            ));
        }
    }
    Ok(())
}

fn check_slo(slo: &SloConfig) -> Check {
    check_names(
        "slo.templates",
        "template",
        "`name: http`",
        slo.templates.iter().map(|t| t.name.as_str()),
    )?;
    for (i, template) in slo.templates.iter().enumerate() {
        let at = format!("slo.templates[{i}]");
        if let Some(pattern) = &template.matches.namespaces {
            check_namespace_pattern(&format!("{at}.match.namespaces"), pattern)?;
        }
        if let Some(selector) = &template.matches.selector {
            check_selector(&format!("{at}.match.selector"), selector)?;
        }
        for (key, query) in template.queries() {
            let key = format!("{at}.{key}");
            if query.trim().is_empty() {
                return Err(problem(
                    key,
                    "the query is empty",
                    "write a PromQL query, e.g. the defaults in docs/slo.md",
                ));
            }
            let found = placeholders(query);
            if let Some(unknown) = found.iter().find(|p| !SLI_PLACEHOLDERS.contains(p)) {
                return Err(problem(
                    key,
                    format!("`{{{unknown}}}` is not a placeholder"),
                    "use {namespace}, {name}, {pod_regex}, {selector} or {window}",
                ));
            }
            if !found
                .iter()
                .any(|p| matches!(*p, "selector" | "pod_regex" | "name"))
            {
                return Err(problem(
                    key,
                    "the query names no workload, so every workload would get the same SLI",
                    "select the workload's series with {selector} (e.g. `http_requests_total{{selector}}`), {pod_regex} or {name}",
                ));
            }
        }
        let matches_all = template.matches.namespaces.is_none()
            && template
                .matches
                .selector
                .as_deref()
                .is_none_or(|s| s.trim().is_empty());
        if matches_all && i + 1 < slo.templates.len() {
            return Err(problem(
                format!("{at}.match"),
                format!(
                    "template {:?} matches every workload, so the templates after it are never used",
                    template.name
                ),
                "add match.namespaces or match.selector, or move the template last",
            ));
        }
    }
    Ok(())
}

fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

/// One validation failure; [`Config::validate`] adds the file name.
struct Problem {
    key: String,
    problem: String,
    fix: String,
}

type Check = Result<(), Problem>;

fn problem(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

fn show(d: Duration) -> String {
    duration_text::format(d)
}

fn check_prometheus(p: &PrometheusConfig) -> Check {
    const URL_FIX: &str = "write the base URL of the Prometheus HTTP API, e.g. \
        http://prometheus-server.monitoring.svc:9090 (for Mimir: http://mimir-gateway.mimir.svc/prometheus)";
    if p.url.trim().is_empty() {
        return Err(problem("prometheus.url", "the URL is empty", URL_FIX));
    }
    let url = reqwest::Url::parse(&p.url).map_err(|e| {
        problem(
            "prometheus.url",
            format!("{:?} is not a URL ({e})", p.url),
            URL_FIX,
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(problem(
            "prometheus.url",
            format!("{:?} does not start with http:// or https://", p.url),
            URL_FIX,
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(problem(
            "prometheus.url",
            format!("{:?} has no host", p.url),
            URL_FIX,
        ));
    }
    if url.path().contains("/api/v1") {
        return Err(problem(
            "prometheus.url",
            format!("{:?} includes the API path /api/v1", p.url),
            "remove /api/v1 and everything after it; tailor appends the API path itself",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(problem(
            "prometheus.url",
            "the URL carries credentials, which would end up in logs",
            "remove `user:password@` from the URL and set prometheus.basic_auth (username, password_file) instead",
        ));
    }
    for (name, value) in &p.headers {
        let key = format!("prometheus.headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(problem(
                key,
                format!("{name:?} is not a valid HTTP header name"),
                "use letters, digits and `-` only, e.g. X-Scope-OrgID",
            ));
        }
        if name.eq_ignore_ascii_case("authorization") {
            return Err(problem(
                key,
                "an Authorization header would put a credential in the config file",
                "remove it and set prometheus.bearer_token_file (a file holding the token) or prometheus.basic_auth",
            ));
        }
        // The value is not echoed: custom headers often carry secrets.
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(problem(
                key,
                format!(
                    "the value of header {name} is not a valid HTTP header value (it contains a newline or another control character)"
                ),
                "write the value on one line, without control characters",
            ));
        }
    }
    if p.bearer_token_file.is_some() && p.basic_auth.is_some() {
        return Err(problem(
            "prometheus.basic_auth",
            "both prometheus.bearer_token_file and prometheus.basic_auth are set, but a request carries one Authorization header",
            "keep only one of bearer_token_file and basic_auth",
        ));
    }
    let empty_path = |key: &str, path: &Option<PathBuf>, what: &str| -> Check {
        match path {
            Some(path) if path.as_os_str().is_empty() => Err(problem(
                key,
                "the path is empty",
                format!("write the path of {what}, or remove the key"),
            )),
            _ => Ok(()),
        }
    };
    empty_path(
        "prometheus.bearer_token_file",
        &p.bearer_token_file,
        "a file holding the bearer token",
    )?;
    empty_path(
        "prometheus.ca_file",
        &p.ca_file,
        "a PEM file of CA certificates",
    )?;
    if let Some(auth) = &p.basic_auth {
        if auth.username.is_empty() {
            return Err(problem(
                "prometheus.basic_auth.username",
                "the username is empty",
                "write the basic-auth username",
            ));
        }
        empty_path(
            "prometheus.basic_auth.password_file",
            &Some(auth.password_file.clone()),
            "a file holding the password",
        )?;
    }
    if p.timeout.is_zero() {
        return Err(problem(
            "prometheus.timeout",
            "the timeout is 0s",
            "write a timeout between 1s and 10m, e.g. 60s (the default)",
        ));
    }
    if p.timeout > 10 * MINUTE {
        return Err(problem(
            "prometheus.timeout",
            format!("the timeout {} is longer than 10m", show(p.timeout)),
            "write at most 10m; for a slow backend lower history.chunk so each query does less",
        ));
    }
    if p.retries > 10 {
        return Err(problem(
            "prometheus.retries",
            format!("{} retries is more than 10", p.retries),
            "write at most 10 (the default is 3); more only delays reporting a backend that is down",
        ));
    }
    if p.max_queries_per_second == 0 {
        return Err(problem(
            "prometheus.max_queries_per_second",
            "0 queries per second would never send a query",
            "write at least 1 (the default is 20)",
        ));
    }
    match (&p.cluster_label, &p.cluster) {
        (Some(label), None) => {
            return Err(problem(
                "prometheus.cluster",
                format!("prometheus.cluster_label is `{label}` but prometheus.cluster is not set"),
                format!(
                    "set prometheus.cluster to this cluster's value of the `{label}` label, or remove cluster_label"
                ),
            ));
        }
        (None, Some(cluster)) => {
            return Err(problem(
                "prometheus.cluster_label",
                format!(
                    "prometheus.cluster is {cluster:?} but prometheus.cluster_label is not set"
                ),
                "set prometheus.cluster_label to the label that tells clusters apart (e.g. `cluster`), or remove cluster",
            ));
        }
        (Some(label), Some(cluster)) => {
            if !is_prometheus_label_name(label) {
                return Err(problem(
                    "prometheus.cluster_label",
                    format!("{label:?} is not a Prometheus label name"),
                    "write a name of letters, digits and `_` that does not start with a digit, e.g. `cluster` or `k8s_cluster`",
                ));
            }
            if cluster.is_empty() {
                return Err(problem(
                    "prometheus.cluster",
                    "the cluster name is empty",
                    format!("write this cluster's value of the `{label}` label"),
                ));
            }
        }
        (None, None) => {}
    }
    Ok(())
}

fn check_history(h: &HistoryConfig) -> Check {
    if h.window < 10 * MINUTE {
        return Err(problem(
            "history.window",
            format!("the window {} is shorter than 10m", show(h.window)),
            "write at least 10m; 14d (the default) or more covers weekly cycles",
        ));
    }
    if h.resolution < 15 * SECOND || h.resolution > HOUR {
        return Err(problem(
            "history.resolution",
            format!("the resolution {} is outside 15s..1h", show(h.resolution)),
            "write a resolution between 15s and 1h, e.g. 5m (the default)",
        ));
    }
    if h.resolution > h.window {
        return Err(problem(
            "history.resolution",
            format!(
                "the resolution {} is longer than history.window {}",
                show(h.resolution),
                show(h.window)
            ),
            format!("write a resolution of at most {}", show(h.window)),
        ));
    }
    if h.memory_peak_interval < h.resolution || h.memory_peak_interval > DAY {
        return Err(problem(
            "history.memory_peak_interval",
            format!(
                "the interval {} is outside {}..24h (history.resolution..24h)",
                show(h.memory_peak_interval),
                show(h.resolution)
            ),
            format!(
                "write an interval between {} and 24h, e.g. 1h (the default)",
                show(h.resolution)
            ),
        ));
    }
    if h.chunk < h.resolution {
        return Err(problem(
            "history.chunk",
            format!(
                "the chunk {} is shorter than history.resolution {}",
                show(h.chunk),
                show(h.resolution)
            ),
            format!(
                "write a chunk of at least {}, e.g. 1d (the default)",
                show(h.resolution)
            ),
        ));
    }
    let points = h.chunk.as_millis() / h.resolution.as_millis();
    if points > MAX_POINTS_PER_SERIES {
        return Err(problem(
            "history.chunk",
            format!(
                "history.chunk {} / history.resolution {} = {points} points per series, \
                 above Prometheus' limit of 11000",
                show(h.chunk),
                show(h.resolution)
            ),
            format!(
                "write history.chunk of at most {}, or raise history.resolution",
                show(h.resolution * MAX_POINTS_PER_SERIES as u32)
            ),
        ));
    }
    if h.half_life < 10 * MINUTE {
        return Err(problem(
            "history.half_life",
            format!("the half-life {} is shorter than 10m", show(h.half_life)),
            "write at least 10m, e.g. 24h (the default); shorter forgets yesterday's peak by tonight",
        ));
    }
    Ok(())
}

/// Prometheus refuses range queries of more than 11,000 points per series.
const MAX_POINTS_PER_SERIES: u128 = 11_000;

fn check_pricing(p: &PricingConfig) -> Check {
    let price = |key: &str, value: f64, per: &str, example: &str| -> Check {
        if value.is_finite() && value >= 0.0 {
            Ok(())
        } else {
            Err(problem(
                key,
                format!("{value} is not a price"),
                format!("write a price in US dollars per {per}, zero or more, e.g. {example}"),
            ))
        }
    };
    price(
        "pricing.cpu_core_hour_usd",
        p.cpu_core_hour_usd,
        "vCPU-hour",
        "0.04048",
    )?;
    price(
        "pricing.memory_gib_hour_usd",
        p.memory_gib_hour_usd,
        "GiB-hour",
        "0.004445",
    )?;
    if let Some(label) = &p.node_pool_label {
        check_label_key(label).map_err(|e| {
            problem(
                "pricing.node_pool_label",
                e,
                "write the node label naming the pool, e.g. karpenter.sh/nodepool",
            )
        })?;
    }
    check_names(
        "pricing.node_pools",
        "node pool",
        "`name: spot` (the value of the node pool label)",
        p.node_pools.iter().map(|pool| pool.name.as_str()),
    )?;
    for (i, pool) in p.node_pools.iter().enumerate() {
        let at = format!("pricing.node_pools[{i}]");
        check_label_value(&pool.name).map_err(|e| {
            problem(
                format!("{at}.name"),
                e,
                "write the value the node pool label has on the pool's nodes, e.g. spot",
            )
        })?;
        price(
            &format!("{at}.cpu_core_hour_usd"),
            pool.cpu_core_hour_usd,
            "vCPU-hour",
            "0.0121",
        )?;
        price(
            &format!("{at}.memory_gib_hour_usd"),
            pool.memory_gib_hour_usd,
            "GiB-hour",
            "0.0013",
        )?;
    }
    Ok(())
}

fn check_report(r: &ReportConfig) -> Check {
    if let Some(label) = &r.team_label {
        check_label_key(label).map_err(|e| {
            problem(
                "report.team_label",
                e,
                "write the pod label naming the owning team, e.g. team or app.kubernetes.io/part-of",
            )
        })?;
    }
    if r.top == 0 {
        return Err(problem(
            "report.top",
            "0 containers would leave the top-savings chart empty",
            "write at least 1, e.g. 10 (the default)",
        ));
    }
    Ok(())
}

fn check_selection(s: &SelectionConfig) -> Check {
    for (i, pattern) in s.namespaces.iter().enumerate() {
        check_namespace_pattern(&format!("selection.namespaces[{i}]"), pattern)?;
    }
    for (i, pattern) in s.exclude_namespaces.iter().enumerate() {
        check_namespace_pattern(&format!("selection.exclude_namespaces[{i}]"), pattern)?;
    }
    if let Some(selector) = &s.selector {
        check_selector("selection.selector", selector)?;
    }
    Ok(())
}

fn check_namespace_pattern(key: &str, pattern: &str) -> Check {
    if pattern.is_empty() {
        return Err(problem(
            key,
            "an empty pattern matches no namespace",
            "remove it, or write a regex such as `team-.*`",
        ));
    }
    // Compile the pattern as written so the error points into the user's text.
    if let Err(e) = regex::Regex::new(pattern).and_then(|_| namespace_regex(pattern)) {
        return Err(problem(
            key,
            format!("{pattern:?} is not a valid regex: {}", regex_error_text(&e)),
            "write a regex that matches whole namespace names; these are regexes, not globs: \
             `team-.*`, not `team-*`, and `.*-prod`, not `*-prod`",
        ));
    }
    Ok(())
}

/// The regex crate's message without its multi-line caret diagram.
fn regex_error_text(e: &regex::Error) -> String {
    let text = e.to_string();
    let reasons: Vec<&str> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("error: "))
        .collect();
    if reasons.is_empty() {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        reasons.join("; ")
    }
}

fn check_selector(key: &str, selector: &str) -> Check {
    parse_selector(selector).map(|_| ()).map_err(|e| {
        problem(
            key,
            format!("the selector {selector:?} is invalid: {e}"),
            "write comma-separated requirements like `app=web,tier!=db,canary,!legacy` \
             (quote the value in YAML if it starts with `!`)",
        )
    })
}

fn check_policy_match(at: &str, rule: &PolicyRule, more_follow: bool) -> Check {
    if let Some(pattern) = &rule.matches.namespaces {
        check_namespace_pattern(&format!("{at}.match.namespaces"), pattern)?;
    }
    if let Some(selector) = &rule.matches.selector {
        check_selector(&format!("{at}.match.selector"), selector)?;
    }
    let matches_all = rule.matches.namespaces.is_none()
        && rule
            .matches
            .selector
            .as_deref()
            .is_none_or(|s| s.trim().is_empty());
    if matches_all && more_follow {
        return Err(problem(
            format!("{at}.match"),
            format!(
                "policy {:?} matches every workload, so the policies after it are never used",
                rule.name
            ),
            "add match.namespaces or match.selector, or move the policy last (or make it default_policy)",
        ));
    }
    Ok(())
}

fn check_percentile(key: String, value: f64, example: &str) -> Check {
    if value > 0.0 && value <= 100.0 {
        Ok(())
    } else {
        Err(problem(
            key,
            format!("the percentile {value} is outside (0, 100]"),
            format!("write a percentile above 0 and at most 100, e.g. {example}"),
        ))
    }
}

fn check_margin(key: String, value: f64) -> Check {
    if (0.0..=10.0).contains(&value) {
        Ok(())
    } else {
        Err(problem(
            key,
            format!("the margin {value} is outside [0, 10]"),
            "write a fraction between 0 and 10: 0.15 means +15 % headroom",
        ))
    }
}

fn check_policy(at: &str, p: &Policy, history: &HistoryConfig) -> Check {
    let cpu = &p.cpu;
    check_percentile(
        format!("{at}.cpu.percentile"),
        cpu.percentile,
        "90 (95 for latency-sensitive workloads)",
    )?;
    check_margin(format!("{at}.cpu.margin"), cpu.margin)?;
    if let Some(max) = cpu.max
        && max < cpu.min
    {
        return Err(problem(
            format!("{at}.cpu.max"),
            format!("max {max} is below min {}", cpu.min),
            format!("raise cpu.max to at least {}, or lower cpu.min", cpu.min),
        ));
    }
    if cpu.step.0 == 0 {
        return Err(problem(
            format!("{at}.cpu.step"),
            "the step is 0",
            "write a positive step, e.g. 5m (the default)",
        ));
    }
    check_percentile(
        format!("{at}.cpu.limit_percentile"),
        cpu.limit_percentile,
        "99",
    )?;
    if cpu.limit == CpuLimitPolicy::Percentile && cpu.limit_percentile < cpu.percentile {
        return Err(problem(
            format!("{at}.cpu.limit_percentile"),
            format!(
                "limit_percentile {} is below percentile {}, so the CPU limit would be pinned to the request and every burst throttled",
                cpu.limit_percentile, cpu.percentile
            ),
            format!(
                "write a limit_percentile of at least {}, e.g. 99",
                cpu.percentile
            ),
        ));
    }
    if !(cpu.throttling_veto_ratio > 0.0 && cpu.throttling_veto_ratio <= 1.0) {
        return Err(problem(
            format!("{at}.cpu.throttling_veto_ratio"),
            format!("the ratio {} is outside (0, 1]", cpu.throttling_veto_ratio),
            "write the fraction of throttled CFS periods that vetoes a decrease, above 0 and at most 1, e.g. 0.10",
        ));
    }

    let memory = &p.memory;
    check_percentile(format!("{at}.memory.percentile"), memory.percentile, "98")?;
    check_margin(format!("{at}.memory.margin"), memory.margin)?;
    if !(memory.limit_margin.is_finite() && memory.limit_margin >= 0.0) {
        return Err(problem(
            format!("{at}.memory.limit_margin"),
            format!(
                "the limit margin {} is below 0 or not a number",
                memory.limit_margin
            ),
            "write a fraction of 0 or more, e.g. 0.20 for a limit 20 % above the observed peak",
        ));
    }
    if let Some(max) = memory.max
        && max < memory.min
    {
        return Err(problem(
            format!("{at}.memory.max"),
            format!("max {max} is below min {}", memory.min),
            format!(
                "raise memory.max to at least {}, or lower memory.min",
                memory.min
            ),
        ));
    }
    if memory.step.0 == 0 {
        return Err(problem(
            format!("{at}.memory.step"),
            "the step is 0",
            "write a positive step, e.g. 1Mi (the default)",
        ));
    }
    if !(memory.oom_bump_ratio.is_finite() && memory.oom_bump_ratio >= 1.0) {
        return Err(problem(
            format!("{at}.memory.oom_bump_ratio"),
            format!(
                "the ratio {} is below 1, so an OOM kill could lower memory",
                memory.oom_bump_ratio
            ),
            "write at least 1, e.g. 1.2 to raise memory 20 % above the limit that was hit",
        ));
    }

    let min_ratio = p.significance.min_ratio;
    if !(0.0..1.0).contains(&min_ratio) {
        return Err(problem(
            format!("{at}.significance.min_ratio"),
            format!("the ratio {min_ratio} is outside [0, 1)"),
            "write a fraction below 1, e.g. 0.10 to skip changes under 10 %",
        ));
    }

    let window = show(history.window);
    if p.min_history > history.window {
        return Err(problem(
            format!("{at}.min_history"),
            format!(
                "min_history is {}, but the history window is only {window}, so this policy could never recommend a decrease",
                show(p.min_history)
            ),
            format!("write a min_history of at most {window}, or raise history.window"),
        ));
    }
    if p.min_history_increase > history.window {
        return Err(problem(
            format!("{at}.min_history_increase"),
            format!(
                "min_history_increase is {}, but the history window is only {window}, so this policy could never recommend an increase (OOM kills aside)",
                show(p.min_history_increase)
            ),
            format!("write a min_history_increase of at most {window}, or raise history.window"),
        ));
    }
    if p.startup_window >= history.window {
        return Err(problem(
            format!("{at}.startup_window"),
            format!(
                "startup_window {} is not shorter than the history window {window}, so every sample would count as startup",
                show(p.startup_window)
            ),
            "write a startup window well under the history window, e.g. 5m (the default)",
        ));
    }
    Ok(())
}

/// No key takes a YAML tag, but a selector like `!legacy` written unquoted
/// is one, and serde reads a tagged value as if the tag were not there
/// (`!legacy` alone becomes the empty string, which selects every pod).
/// Syntax errors are left to the typed parse, which reports them better.
fn refuse_yaml_tags(text: &str, origin: &str) -> Result<(), ConfigError> {
    let Ok(document) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else {
        return Ok(());
    };
    match find_yaml_tag(&document, "") {
        Some((key, tag)) => Err(ConfigError::Parse {
            path: origin.to_string(),
            key,
            message: format!(
                "`{tag}` is read as a YAML tag, not as text; quote the value, e.g. \"{tag}\""
            ),
        }),
        None => Ok(()),
    }
}

/// The key path and text of the first tagged value.
fn find_yaml_tag(value: &serde_yaml_ng::Value, path: &str) -> Option<(String, String)> {
    use serde_yaml_ng::Value;
    match value {
        Value::Tagged(tagged) => Some((path.to_string(), tagged.tag.to_string())),
        Value::Mapping(map) => map.iter().find_map(|(key, value)| {
            let name = match key {
                Value::String(name) => name.clone(),
                other => serde_yaml_ng::to_string(other)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default(),
            };
            let path = if path.is_empty() {
                name
            } else {
                format!("{path}.{name}")
            };
            find_yaml_tag(value, &path)
        }),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_yaml_tag(item, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn parse_error(
    origin: &str,
    error: &serde_path_to_error::Error<serde_yaml_ng::Error>,
) -> ConfigError {
    let path = error.path().to_string();
    let key = if path == "." { String::new() } else { path };
    let message = error.inner().to_string();
    ConfigError::Parse {
        path: origin.to_string(),
        message: explain_parse_error(strip_yaml_path(&message, &key)),
        key,
    }
}

/// serde_yaml_ng starts its messages with its own path (the key's, or for an
/// unknown key its parent's); the error already carries the key, so drop it.
fn strip_yaml_path<'m>(message: &'m str, key: &str) -> &'m str {
    let boundaries = key
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | '['))
        .map(|(i, _)| i)
        .chain([key.len()]);
    let mut prefixes: Vec<&str> = boundaries.map(|i| &key[..i]).collect();
    prefixes.reverse(); // longest first
    prefixes
        .into_iter()
        .filter(|prefix| !prefix.is_empty())
        .find_map(|prefix| message.strip_prefix(prefix)?.strip_prefix(": "))
        .unwrap_or(message)
}

/// Rewrites serde's messages for people editing YAML: unknown keys and
/// values get a "did you mean", Rust type names become plain words.
fn explain_parse_error(message: &str) -> String {
    // serde_yaml_ng ends the message with the position; keep it last.
    let (body, position) = match message.rfind(" at line ") {
        Some(i) => message.split_at(i),
        None => (message, ""),
    };
    let explained = if let Some(rest) = body.strip_prefix("unknown field ") {
        explain_unknown(rest, "key", "keys allowed here")
    } else if let Some(rest) = body.strip_prefix("unknown variant ") {
        explain_unknown(rest, "value", "values allowed here")
    } else {
        plain_words(body)
    };
    if message.contains("while scanning a tag") {
        // `selector: !legacy` is a YAML tag, not a string.
        return format!(
            "{explained}{position}; a value starting with `!` is a YAML tag: quote it, e.g. \"!legacy\""
        );
    }
    format!("{explained}{position}")
}

/// `rest` is serde's "`found`, expected one of `a`, `b`" (or "`a` or `b`",
/// or "there are no fields"): the backquoted words are the input and the
/// allowed names.
fn explain_unknown(rest: &str, what: &str, allowed_label: &str) -> String {
    let quoted: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let Some((found, allowed)) = quoted.split_first() else {
        return format!("unknown {what} {rest}");
    };
    let mut text = format!("unknown {what} `{found}`");
    if let Some(suggestion) = closest(found, allowed) {
        text.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    if allowed.is_empty() {
        text.push_str(&format!("; no {what}s are allowed here"));
    } else {
        let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
        text.push_str(&format!(" ({allowed_label}: {})", list.join(", ")));
    }
    text
}

/// The allowed name nearest to `found`, if it is within 2 edits.
fn closest<'a>(found: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| (levenshtein(found, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance (insertions, deletions, substitutions) over characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

fn plain_words(message: &str) -> String {
    const RUST_TYPES: [(&str, &str); 9] = [
        ("missing field", "missing key"),
        ("expected u32", "expected a whole number (like 3)"),
        ("expected u64", "expected a whole number (like 3)"),
        ("expected f64", "expected a number (like 0.15)"),
        (
            "expected a sequence",
            "expected a list (`- item` lines or `[a, b]`)",
        ),
        ("expected a map", "expected `key: value` lines"),
        ("expected a boolean", "expected true or false"),
        ("unit value", "an empty value"),
        ("invalid type: ", "wrong type: found "),
    ];
    let mut text = message.to_string();
    for (from, to) in RUST_TYPES {
        text = text.replace(from, to);
    }
    // "expected struct PrometheusConfig" names a Rust type; say what to write.
    if let Some(i) = text.find("expected struct ") {
        let after = &text[i + "expected struct ".len()..];
        let end = after.find([' ', ',']).unwrap_or(after.len());
        text = format!("{}expected `key: value` lines{}", &text[..i], &after[end..]);
    }
    text
}

/// Durations as text: `90s`, `5m`, `24h`, `14d`.
pub mod duration_text {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationText)
    }

    struct DurationText;

    impl<'de> Visitor<'de> for DurationText {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration like 90s, 5m, 24h or 14d")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            parse(text).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
            if n == 0 {
                return Ok(Duration::ZERO);
            }
            Err(E::custom(format!(
                "{n} has no unit; write it like {n}s, {n}m, {n}h or {n}d"
            )))
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
            match u64::try_from(n) {
                Ok(n) => self.visit_u64(n),
                Err(_) => Err(E::custom(format!(
                    "{n} is negative; write a duration like 90s, 5m, 24h or 14d"
                ))),
            }
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "{n} has no unit; write it like 90s, 5m, 24h or 14d (1h30m for fractions)"
            )))
        }
    }

    /// Parses `90s`, `5m`, `24h`, `14d`, `1h30m`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            format!("{text:?} is not a duration ({e}); write it like 90s, 5m, 24h or 14d")
        })
    }

    /// The shortest text [`parse`] reads back: `14d`, `1h30m`, `90s` → `1m30s`.
    pub fn format(d: Duration) -> String {
        if d.is_zero() {
            return "0s".to_string();
        }
        let mut out = String::new();
        let mut secs = d.as_secs();
        for (unit, suffix) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
            if secs >= unit {
                out.push_str(&std::format!("{}{suffix}", secs / unit));
                secs %= unit;
            }
        }
        let mut nanos = d.subsec_nanos();
        for (unit, suffix) in [(1_000_000, "ms"), (1_000, "us"), (1, "ns")] {
            if nanos >= unit {
                out.push_str(&std::format!("{}{suffix}", nanos / unit));
                nanos %= unit;
            }
        }
        out
    }
}

/// Quantities as Kubernetes text (`250m`, `64Mi`), so a serialized config
/// reads back through [`units::de_cpu`] and [`units::de_memory`].
mod quantity_text {
    use std::fmt::Display;

    use serde::Serializer;

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn serialize_opt<T: Display, S: Serializer>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.collect_str(value),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(yaml, "test.yaml")
    }

    /// Asserts `yaml` is refused at `key` with a fix that says `fix`;
    /// returns the problem.
    pub(super) fn refused_at(yaml: &str, key: &str, fix: &str) -> String {
        match parse(yaml) {
            Err(ConfigError::Invalid {
                key: got,
                problem,
                fix: got_fix,
                ..
            }) => {
                assert_eq!(got, key, "{yaml}: {problem}");
                assert!(
                    got_fix.contains(fix),
                    "{yaml}: fix {got_fix:?} lacks {fix:?}"
                );
                problem
            }
            other => panic!("{yaml}: expected Invalid at {key}, got {other:?}"),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_files_give_the_defaults() {
        for yaml in [
            "",
            "\n",
            "{}",
            "# only a comment\n",
            "---\n",
            "prometheus: {}\n",
        ] {
            let config = parse(yaml).unwrap_or_else(|e| panic!("{yaml:?}: {e}"));
            assert_eq!(config, Config::default(), "{yaml:?}");
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        Config::default().validate("defaults").unwrap();
    }

    #[test]
    fn keys_without_quantities_parse() {
        let config = parse(
            "prometheus:\n  url: https://thanos.example.com\n  headers:\n    X-Scope-OrgID: team-a\n  timeout: 2m\n  cluster_label: k8s_cluster\n  cluster: eu-1\nhistory:\n  window: 30d\n  chunk: 12h\nselection:\n  namespaces: [\"team-.*\"]\n  selector: \"app=web,!legacy\"\ndefault_policy:\n  cpu:\n    percentile: 95\n    limit: keep-ratio\n  startup_window: 0\npolicies:\n  - name: batch\n    match:\n      selector: tier=batch\n    policy:\n      memory:\n        limit: none\n",
        )
        .unwrap();
        assert_eq!(config.prometheus.url, "https://thanos.example.com");
        assert_eq!(config.prometheus.timeout, 2 * MINUTE);
        assert_eq!(config.history.window, 30 * DAY);
        assert_eq!(config.history.chunk, 12 * HOUR);
        assert_eq!(config.default_policy.cpu.percentile, 95.0);
        assert_eq!(config.default_policy.cpu.limit, CpuLimitPolicy::KeepRatio);
        assert_eq!(config.default_policy.startup_window, Duration::ZERO);
        assert_eq!(
            config.policies[0].policy.memory.limit,
            MemoryLimitPolicy::None
        );
        // A policy's unset keys are the built-in defaults.
        assert_eq!(config.policies[0].policy.cpu, CpuPolicy::default());
    }

    /// Each bad input, the key the error must name, and words of the fix.
    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str)] = &[
            ("prometheus: {url: 'localhost:9090'}", "prometheus.url", "http://"),
            ("prometheus: {url: 'ftp://prom'}", "prometheus.url", "http://"),
            ("prometheus: {url: 'http://'}", "prometheus.url", "base URL"),
            ("prometheus: {url: 'not a url'}", "prometheus.url", "base URL"),
            ("prometheus: {url: ''}", "prometheus.url", "base URL"),
            ("prometheus: {url: 'http://prom:9090/api/v1/query'}", "prometheus.url", "remove /api/v1"),
            ("prometheus: {url: 'http://me:pw@prom:9090'}", "prometheus.url", "basic_auth"),
            ("prometheus: {headers: {'X Org': a}}", "prometheus.headers.X Org", "X-Scope-OrgID"),
            ("prometheus: {headers: {Authorization: 'Bearer x'}}", "prometheus.headers.Authorization", "bearer_token_file"),
            ("prometheus: {headers: {X-Scope-OrgID: \"a\\nb\"}}", "prometheus.headers.X-Scope-OrgID", "one line"),
            ("prometheus: {bearer_token_file: /t, basic_auth: {username: u, password_file: /p}}", "prometheus.basic_auth", "only one"),
            ("prometheus: {bearer_token_file: ''}", "prometheus.bearer_token_file", "path"),
            ("prometheus: {basic_auth: {username: '', password_file: /p}}", "prometheus.basic_auth.username", "username"),
            ("prometheus: {timeout: 0s}", "prometheus.timeout", "between 1s and 10m"),
            ("prometheus: {timeout: 11m}", "prometheus.timeout", "at most 10m"),
            ("prometheus: {retries: 11}", "prometheus.retries", "at most 10"),
            ("prometheus: {max_queries_per_second: 0}", "prometheus.max_queries_per_second", "at least 1"),
            ("prometheus: {cluster_label: cluster}", "prometheus.cluster", "set prometheus.cluster"),
            ("prometheus: {cluster: eu-1}", "prometheus.cluster_label", "set prometheus.cluster_label"),
            ("prometheus: {cluster_label: k8s-cluster, cluster: eu-1}", "prometheus.cluster_label", "letters, digits and `_`"),
            ("prometheus: {cluster_label: 1cluster, cluster: eu-1}", "prometheus.cluster_label", "k8s_cluster"),
            ("prometheus: {cluster_label: cluster, cluster: ''}", "prometheus.cluster", "value of the `cluster` label"),
            ("history: {window: 5m}", "history.window", "at least 10m"),
            ("history: {resolution: 10s}", "history.resolution", "between 15s and 1h"),
            ("history: {resolution: 2h}", "history.resolution", "between 15s and 1h"),
            ("history: {memory_peak_interval: 1m}", "history.memory_peak_interval", "between 5m and 24h"),
            ("history: {memory_peak_interval: 2d}", "history.memory_peak_interval", "between 5m and 24h"),
            ("history: {chunk: 1m}", "history.chunk", "at least 5m"),
            ("history: {resolution: 15s, memory_peak_interval: 15s, chunk: 3d}", "history.chunk", "at most 1d21h50m"),
            ("history: {half_life: 5m}", "history.half_life", "at least 10m"),
            ("pricing: {cpu_core_hour_usd: -1}", "pricing.cpu_core_hour_usd", "per vCPU-hour"),
            ("pricing: {memory_gib_hour_usd: .nan}", "pricing.memory_gib_hour_usd", "per GiB-hour"),
            ("pricing: {memory_gib_hour_usd: .inf}", "pricing.memory_gib_hour_usd", "zero or more"),
            ("pricing: {node_pool_label: 'Bad Label'}", "pricing.node_pool_label", "karpenter.sh/nodepool"),
            ("pricing: {node_pools: [{name: spot, cpu_core_hour_usd: 0.01, memory_gib_hour_usd: 0.001}, {name: spot, cpu_core_hour_usd: 0.01, memory_gib_hour_usd: 0.001}]}", "pricing.node_pools[1].name", "unique name"),
            ("pricing: {node_pools: [{name: '', cpu_core_hour_usd: 0.01, memory_gib_hour_usd: 0.001}]}", "pricing.node_pools[0].name", "value of the node pool label"),
            ("pricing: {node_pools: [{name: spot, cpu_core_hour_usd: -0.01, memory_gib_hour_usd: 0.001}]}", "pricing.node_pools[0].cpu_core_hour_usd", "per vCPU-hour"),
            ("pricing: {node_pools: [{name: spot, cpu_core_hour_usd: 0.01, memory_gib_hour_usd: .nan}]}", "pricing.node_pools[0].memory_gib_hour_usd", "per GiB-hour"),
            ("report: {team_label: '-team'}", "report.team_label", "app.kubernetes.io/part-of"),
            ("report: {top: 0}", "report.top", "at least 1"),
            ("selection: {namespaces: ['*-prod']}", "selection.namespaces[0]", "`.*-prod`"),
            ("selection: {exclude_namespaces: [ok, 'a(b']}", "selection.exclude_namespaces[1]", "not globs"),
            ("selection: {namespaces: ['']}", "selection.namespaces[0]", "remove it"),
            ("selection: {selector: 'tier in (a,b)'}", "selection.selector", "app=web"),
            ("selection: {selector: 'app=web,,x'}", "selection.selector", "comma-separated"),
            ("selection: {selector: '-bad=1'}", "selection.selector", "app=web"),
            ("policies: [{name: ''}]", "policies[0].name", "unique name"),
            ("policies: [{name: a, match: {namespaces: x}}, {name: a}]", "policies[1].name", "unique name"),
            ("policies: [{name: a, match: {namespaces: 'a['}}]", "policies[0].match.namespaces", "regex"),
            ("policies: [{name: a, match: {selector: 'a b'}}]", "policies[0].match.selector", "app=web"),
            ("policies: [{name: a}, {name: b}]", "policies[0].match", "move the policy last"),
            ("default_policy: {cpu: {percentile: 0}}", "default_policy.cpu.percentile", "above 0 and at most 100"),
            ("default_policy: {memory: {percentile: 100.5}}", "default_policy.memory.percentile", "at most 100"),
            ("policies: [{name: a, match: {namespaces: x}}, {name: b, policy: {cpu: {percentile: 150}}}]", "policies[1].policy.cpu.percentile", "at most 100"),
            ("default_policy: {cpu: {margin: 11}}", "default_policy.cpu.margin", "between 0 and 10"),
            ("default_policy: {cpu: {margin: -0.1}}", "default_policy.cpu.margin", "between 0 and 10"),
            ("default_policy: {memory: {margin: .nan}}", "default_policy.memory.margin", "between 0 and 10"),
            ("default_policy: {memory: {limit_margin: -1}}", "default_policy.memory.limit_margin", "0 or more"),
            ("default_policy: {cpu: {limit: percentile, limit_percentile: 80}}", "default_policy.cpu.limit_percentile", "at least 90"),
            ("default_policy: {cpu: {limit_percentile: 0}}", "default_policy.cpu.limit_percentile", "above 0"),
            ("default_policy: {cpu: {throttling_veto_ratio: 0}}", "default_policy.cpu.throttling_veto_ratio", "at most 1"),
            ("default_policy: {cpu: {throttling_veto_ratio: 1.5}}", "default_policy.cpu.throttling_veto_ratio", "at most 1"),
            ("default_policy: {memory: {oom_bump_ratio: 0.9}}", "default_policy.memory.oom_bump_ratio", "at least 1"),
            ("default_policy: {significance: {min_ratio: 1}}", "default_policy.significance.min_ratio", "below 1"),
            ("default_policy: {min_history: 21d}", "default_policy.min_history", "at most 14d"),
            ("history: {window: 8d}\npolicies: [{name: a, policy: {min_history_increase: 9d}}]", "policies[0].policy.min_history_increase", "at most 8d"),
            ("default_policy: {startup_window: 14d}", "default_policy.startup_window", "5m"),
        ];
        for (yaml, key, fix) in cases {
            assert!(!refused_at(yaml, key, fix).is_empty());
        }
    }

    #[test]
    fn a_window_too_short_for_min_history_says_why() {
        let err = parse("history: {window: 5d}").unwrap_err().to_string();
        assert!(
            err.contains("default_policy.min_history")
                && err.contains(
                    "the history window is only 5d, so this policy could never recommend a decrease"
                )
                && err.contains("fix: write a min_history of at most 5d"),
            "{err}"
        );
    }

    #[test]
    fn invalid_errors_display_file_key_problem_and_fix() {
        let err = parse("prometheus: {retries: 12}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.yaml: `prometheus.retries`: 12 retries is more than 10; fix: write at most 10 \
             (the default is 3); more only delays reporting a backend that is down"
        );
    }

    #[test]
    fn quantities_are_checked_after_parsing() {
        let mut config = Config::default();
        config.default_policy.cpu.min = MilliCores(500);
        config.default_policy.cpu.max = Some(MilliCores(250));
        let err = config.validate("x").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key, fix, .. }
                if key == "default_policy.cpu.max" && fix.contains("at least 500m")),
            "{err}"
        );

        let mut config = Config::default();
        config.policies.push(PolicyRule {
            name: "p".into(),
            matches: PolicyMatch::default(),
            policy: Policy::default(),
        });
        config.policies[0].policy.memory.max = Some(Bytes::mib(32));
        let err = config.validate("x").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key, fix, .. }
                if key == "policies[0].policy.memory.max" && fix.contains("at least 64Mi")),
            "{err}"
        );

        let mut config = Config::default();
        config.default_policy.cpu.step = MilliCores(0);
        assert!(matches!(config.validate("x"),
            Err(ConfigError::Invalid { key, .. }) if key == "default_policy.cpu.step"));

        let mut config = Config::default();
        config.default_policy.memory.step = Bytes(0);
        assert!(matches!(config.validate("x"),
            Err(ConfigError::Invalid { key, .. }) if key == "default_policy.memory.step"));
    }

    fn parse_error_of(yaml: &str) -> (String, String) {
        match parse(yaml) {
            Err(ConfigError::Parse { key, message, .. }) => (key, message),
            other => panic!("{yaml}: expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_name_the_path_and_suggest_the_closest_key() {
        #[rustfmt::skip]
        let cases = [
            ("prometheus:\n  timout: 5s\n", "prometheus.timout", Some("timeout")),
            ("prometeus: {}\n", "prometeus", Some("prometheus")),
            ("history:\n  windw: 7d\n", "history.windw", Some("window")),
            ("policies:\n- name: a\n  polcy: {}\n", "policies[0].polcy", Some("policy")),
            ("default_policy:\n  cpu:\n    percentil: 95\n", "default_policy.cpu.percentil", Some("percentile")),
            ("prometheus:\n  completely_unrelated: 1\n", "prometheus.completely_unrelated", None),
        ];
        for (yaml, key, suggestion) in cases {
            let (got_key, message) = parse_error_of(yaml);
            assert_eq!(got_key, key, "{yaml}");
            assert!(message.contains("unknown key"), "{message}");
            match suggestion {
                Some(s) => assert!(
                    message.contains(&format!("did you mean `{s}`?")),
                    "{message}"
                ),
                None => {
                    assert!(!message.contains("did you mean"), "{message}");
                    assert!(message.contains("keys allowed here: `url`"), "{message}");
                }
            }
        }
    }

    #[test]
    fn unknown_enum_values_suggest_the_closest_value() {
        let (key, message) = parse_error_of("default_policy:\n  cpu:\n    limit: keepratio\n");
        assert_eq!(key, "default_policy.cpu.limit");
        assert!(message.contains("did you mean `keep-ratio`?"), "{message}");
        assert!(
            message.contains("`none`, `keep-ratio`, `percentile`"),
            "{message}"
        );
    }

    #[test]
    fn type_errors_name_the_path_in_plain_words() {
        let err = parse("history:\n  window: two weeks\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("test.yaml: history.window: \"two weeks\" is not a duration"),
            "{text}"
        );
        assert!(text.contains("write it like 90s, 5m, 24h or 14d"), "{text}");

        let (key, message) = parse_error_of("history:\n  window: 14\n");
        assert_eq!(key, "history.window");
        assert!(
            message.contains("14 has no unit; write it like 14s, 14m, 14h or 14d"),
            "{message}"
        );

        let (key, message) = parse_error_of("prometheus:\n  retries: three\n");
        assert_eq!(key, "prometheus.retries");
        assert!(message.contains("expected a whole number"), "{message}");

        let (key, message) = parse_error_of("policies: web\n");
        assert_eq!(key, "policies");
        assert!(message.contains("expected a list"), "{message}");

        let (key, message) = parse_error_of("prometheus: [a]\n");
        assert_eq!(key, "prometheus");
        assert!(message.contains("expected `key: value` lines"), "{message}");
    }

    #[test]
    fn missing_keys_and_yaml_tags_are_explained() {
        let (key, message) = parse_error_of("policies:\n- match: {namespaces: a}\n");
        assert_eq!(key, "policies[0]");
        assert!(message.contains("missing key `name`"), "{message}");

        // Unquoted, `!legacy` is a YAML tag; read as text it would select every pod.
        for yaml in [
            "selection:\n  selector: !legacy\n",
            "selection:\n  selector: !legacy app=web\n",
        ] {
            let (key, message) = parse_error_of(yaml);
            assert_eq!(key, "selection.selector", "{yaml}");
            assert!(
                message.contains("quote the value, e.g. \"!legacy\""),
                "{message}"
            );
        }
        let (key, message) = parse_error_of("policies:\n- name: a\n  match: {selector: !x}\n");
        assert_eq!(key, "policies[0].match.selector");
        assert!(message.contains("YAML tag"), "{message}");
        let (_, message) = parse_error_of("selection:\n  selector: !legacy, x\n");
        assert!(message.contains("YAML tag: quote it"), "{message}");
    }

    #[test]
    fn malformed_yaml_is_a_parse_error_with_a_position() {
        let err = parse("prometheus:\n  url: [unclosed\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn levenshtein_counts_edits() {
        let cases = [
            ("", "", 0),
            ("abc", "", 3),
            ("", "abc", 3),
            ("timeout", "timeout", 0),
            ("timout", "timeout", 1),
            ("tiemout", "timeout", 2),
            ("kitten", "sitting", 3),
            ("résumé", "resume", 2),
        ];
        for (a, b, distance) in cases {
            assert_eq!(levenshtein(a, b), distance, "{a} → {b}");
            assert_eq!(levenshtein(b, a), distance, "{b} → {a}");
        }
        assert_eq!(closest("retires", &["retries", "timeout"]), Some("retries"));
        assert_eq!(closest("xyz", &["retries", "timeout"]), None);
    }

    #[test]
    fn selectors_parse() {
        use LabelRequirement::*;
        let ok: &[(&str, Vec<LabelRequirement>)] = &[
            ("", vec![]),
            ("  ", vec![]),
            ("app=web", vec![Equals("app".into(), "web".into())]),
            ("app==web", vec![Equals("app".into(), "web".into())]),
            ("tier!=db", vec![NotEquals("tier".into(), "db".into())]),
            ("canary", vec![Exists("canary".into())]),
            ("!legacy", vec![NotExists("legacy".into())]),
            ("app=", vec![Equals("app".into(), "".into())]),
            (
                "app = web , tier!=db,canary, !legacy",
                vec![
                    Equals("app".into(), "web".into()),
                    NotEquals("tier".into(), "db".into()),
                    Exists("canary".into()),
                    NotExists("legacy".into()),
                ],
            ),
            (
                "app.kubernetes.io/name=api_v2.1",
                vec![Equals("app.kubernetes.io/name".into(), "api_v2.1".into())],
            ),
        ];
        for (text, expected) in ok {
            assert_eq!(&parse_selector(text).unwrap(), expected, "{text}");
        }
        let round_trip = "app=web,tier!=db,canary,!legacy";
        let text: Vec<String> = parse_selector(round_trip)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(text.join(","), round_trip);

        let bad = [
            "tier in (a,b)",
            "tier notin (a)",
            "a,,b",
            "a,",
            "=web",
            "!",
            "-app=web",
            "app-=web",
            "app=-web",
            "app=a b",
            "a b",
            "app=web=x",
            "Example.com/app=web",
            "/app",
            "!app=web",
            &"a".repeat(64),
            &format!("app={}", "v".repeat(64)),
        ];
        for text in bad {
            assert!(parse_selector(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let pod = labels(&[("app", "web"), ("tier", "front")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app=api", false),
            ("app!=api", true),
            ("app!=web", false),
            ("missing!=x", true), // != also matches pods without the key
            ("missing=x", false),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!tier", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("app=", false),
        ];
        for (selector, expected) in cases {
            let requirements = parse_selector(selector).unwrap();
            assert_eq!(
                selector_matches(&requirements, &pod),
                expected,
                "{selector}"
            );
        }
        let unlabelled = labels(&[("x", "")]);
        assert!(selector_matches(
            &parse_selector("x=").unwrap(),
            &unlabelled
        ));
    }

    #[test]
    fn namespace_patterns_match_whole_names() {
        let re = namespace_regex("team-.*|payments").unwrap();
        assert!(re.is_match("team-a"));
        assert!(re.is_match("payments"));
        assert!(!re.is_match("my-team-a"));
        assert!(!re.is_match("payments-v2"));
    }

    #[test]
    fn cli_overrides_replace_only_what_is_set() {
        let mut config = parse(
            "prometheus: {url: 'http://file:9090'}\nselection: {namespaces: [a], selector: 'app=web'}\nhistory: {window: 14d}\n",
        )
        .unwrap();
        let before = config.clone();

        config.merge_cli_overrides(&CliOverrides::default());
        assert_eq!(config, before, "nothing set, nothing changed");

        config.merge_cli_overrides(&CliOverrides {
            prometheus_url: Some("  ".into()),
            namespaces: vec!["".into()],
            selector: Some("".into()),
            history: None,
        });
        assert_eq!(config, before, "blank values do not override");

        config.merge_cli_overrides(&CliOverrides {
            prometheus_url: Some("http://cli:9090".into()),
            namespaces: vec!["b".into(), "c".into()],
            selector: Some("tier=db".into()),
            history: Some(7 * DAY),
        });
        assert_eq!(config.prometheus.url, "http://cli:9090");
        assert_eq!(config.selection.namespaces, ["b", "c"]);
        assert_eq!(config.selection.selector.as_deref(), Some("tier=db"));
        assert_eq!(config.history.window, 7 * DAY);
        assert_eq!(config.history.resolution, before.history.resolution);
        config.validate("cli").unwrap();

        // The caller validates again: a flag can break what the file got right.
        config.merge_cli_overrides(&CliOverrides {
            history: Some(3 * DAY),
            ..CliOverrides::default()
        });
        assert!(matches!(config.validate("cli"),
            Err(ConfigError::Invalid { key, .. }) if key == "default_policy.min_history"));
    }

    #[test]
    fn durations_format_as_text_that_parses_back() {
        let cases = [
            (Duration::ZERO, "0s"),
            (90 * SECOND, "1m30s"),
            (5 * MINUTE, "5m"),
            (HOUR + 30 * MINUTE, "1h30m"),
            (DAY, "1d"),
            (14 * DAY, "14d"),
            (Duration::from_millis(1500), "1s500ms"),
        ];
        for (duration, text) in cases {
            assert_eq!(duration_text::format(duration), text);
            assert_eq!(duration_text::parse(text), Ok(duration), "{text}");
        }
    }

    #[test]
    fn the_daemon_sections_default_and_map_onto_the_agent() {
        let config = parse("").unwrap();
        let settings = config.agent_settings();
        assert_eq!(settings, crate::agent::AgentSettings::default());
        assert_eq!(config.slo.templates, [SliTemplate::http()]);
        let config = parse(
            "agent: {plan_interval: 10m, recommend_interval: 2h}\n\
             rollout: {bake: 45m, warmup: 10m}\n\
             guardrails: {hold_after_revert: 2d, mode: auto}\n\
             guard: {alpha: 0.05}",
        )
        .unwrap();
        let settings = config.agent_settings();
        assert_eq!(settings.plan_interval_s, 600);
        assert_eq!(settings.recommend_interval_s, 7200);
        assert_eq!(settings.rollout.bake_s, 2700);
        assert_eq!(settings.rollout.warmup_s, 600);
        assert_eq!(settings.rollout.hold_after_revert_s, 2 * 86_400);
        assert_eq!(settings.guardrails.mode, crate::plan::Mode::Auto);
        assert_eq!(settings.guard.alpha, 0.05);
    }

    #[test]
    fn the_lease_namespace_falls_back_to_the_pods_then_tailor_system() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("namespace");
        let mut le = LeaderElection::default();
        assert_eq!(le.lease_namespace_from(&file), "tailor-system");
        std::fs::write(&file, "platform\n").unwrap();
        assert_eq!(le.lease_namespace_from(&file), "platform");
        le.namespace = Some("ops".into());
        assert_eq!(le.lease_namespace_from(&file), "ops");
    }

    #[test]
    fn daemon_keys_name_the_key_and_the_fix() {
        #[rustfmt::skip]
        let cases = [
            ("guardrails: {max_in_flight: 0}", "guardrails.max_in_flight", "at least 1"),
            ("guardrails: {freeze_windows: [{days: [], start: '01:00', end: '02:00'}]}", "guardrails.freeze_windows[0].days", "days"),
            ("guard: {alpha: 2}", "guard.alpha", "between 0 and 1"),
            ("rollout: {bake: 30s}", "rollout.bake", "at least 1m"),
            ("rollout: {warmup: 30m}", "rollout.warmup", "well under the bake"),
            ("rollout: {baseline: 3m, bake: 4m, warmup: 10s}", "rollout.baseline", "raise guard.alpha"),
            ("rollout: {comparable_load: 0}", "rollout.comparable_load", "above 0"),
            ("agent: {tick: 0s}", "agent.tick", "between 1s and 10m"),
            ("agent: {plan_interval: 10s}", "agent.plan_interval", "at least 1m"),
            ("agent: {metrics_address: ':8080'}", "agent.metrics_address", "0.0.0.0:8080"),
            ("agent: {leader_election: {namespace: Bad_NS}}", "agent.leader_election.namespace", "pod's own namespace"),
            ("agent: {leader_election: {lease_name: ''}}", "agent.leader_election.lease_name", "tailor-leader"),
            ("agent: {leader_election: {renew_every: 20s}}", "agent.leader_election.renew_every", "well under"),
            ("slo: {templates: [{name: a, requests: 'sum(x{{selector}})', errors: 'sum(y{{selectr}})'}]}", "slo.templates[0].errors", "{selector}"),
            ("slo: {templates: [{name: a, requests: 'sum(x)', errors: 'sum(y{{selector}})'}]}", "slo.templates[0].requests", "select the workload"),
            ("slo: {templates: [{name: a, requests: '', errors: 'y'}]}", "slo.templates[0].requests", "PromQL"),
            ("slo: {templates: [{name: a, requests: 'x{{selector}}', errors: 'y{{selector}}'}, {name: b, requests: 'x{{selector}}', errors: 'y{{selector}}'}]}", "slo.templates[0].match", "move the template last"),
            ("slo: {templates: [{name: a, match: {namespaces: 'x'}, requests: 'x{{selector}}', errors: 'y{{selector}}'}, {name: a, requests: 'x{{selector}}', errors: 'y{{selector}}'}]}", "slo.templates[1].name", "unique"),
            ("slo: {templates: [{name: a, match: {namespaces: 'team-*('}, requests: 'x{{selector}}', errors: 'y{{selector}}'}]}", "slo.templates[0].match.namespaces", "regex"),
            ("slo: {templates: [{name: a, match: {selector: 'a in (b)'}, requests: 'x{{selector}}', errors: 'y{{selector}}'}]}", "slo.templates[0].match.selector", "requirements"),
        ];
        for (yaml, key, fix) in cases {
            refused_at(yaml, key, fix);
        }
    }

    #[test]
    fn the_builtin_templates_are_valid_and_name_the_workload() {
        for template in [
            SliTemplate::http(),
            SliTemplate::nginx_ingress(),
            SliTemplate::istio(),
        ] {
            let config = Config {
                slo: SloConfig {
                    templates: vec![template.clone()],
                },
                ..Config::default()
            };
            config.validate("t").unwrap_or_else(|e| panic!("{e}"));
            for (_, query) in template.queries() {
                assert!(query.contains("{window}"), "{query}");
                assert!(!query.contains("{{{"), "{query}");
            }
        }
        assert_eq!(
            placeholders(r#"sum(x{{selector},code=~"5.."}[{window}]) {le} {}"#),
            ["selector", "window", "le"]
        );
    }

    /// Config keys are public API: every key has a row in the reference.
    #[test]
    fn every_key_is_documented() {
        let reference = include_str!("../docs/configuration.md");
        let mut config = Config::default();
        config.prometheus.basic_auth = Some(BasicAuth {
            username: "u".into(),
            password_file: "/p".into(),
        });
        config.policies.push(PolicyRule {
            name: "p".into(),
            matches: PolicyMatch::default(),
            policy: Policy::default(),
        });
        config.agent.leader_election.namespace = Some("ns".into());
        config
            .notifications
            .sinks
            .push(crate::notify::config::SinkConfig {
                name: "s".into(),
                kind: crate::notify::config::SinkKind::Webhook,
                url: Some("https://example.com".into()),
                url_file: Some("/u".into()),
                url_env: Some("U".into()),
                secret_file: Some("/s".into()),
                secret_env: Some("S".into()),
                events: crate::notify::config::default_events(),
            });
        config
            .notifications
            .links
            .push(crate::notify::config::LinkTemplate {
                name: "Grafana".into(),
                url: "https://g/{name}".into(),
            });
        config.pricing.node_pools.push(NodePoolPricing {
            name: "spot".into(),
            cpu_core_hour_usd: 0.01,
            memory_gib_hour_usd: 0.001,
            source: None,
        });
        let value = serde_yaml_ng::to_value(&config).unwrap();
        let mut keys = Vec::new();
        collect_keys(&value, "", &mut keys);
        assert!(keys.len() > 45, "{keys:?}");
        for key in keys {
            // Policy keys are documented once, relative to the policy.
            let documented = key
                .strip_prefix("default_policy.")
                .or_else(|| key.strip_prefix("policies[].policy."))
                .unwrap_or(&key);
            assert!(
                reference.contains(&format!("| `{documented}` |")),
                "docs/configuration.md has no row for `{documented}` ({key})"
            );
        }
    }

    fn collect_keys(value: &serde_yaml_ng::Value, prefix: &str, keys: &mut Vec<String>) {
        // Leaves only: sections are headings in the reference, not rows.
        match value {
            serde_yaml_ng::Value::Mapping(map) => {
                for (k, v) in map {
                    let k = k.as_str().unwrap();
                    let key = if prefix.is_empty() {
                        k.to_string()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    if v.is_mapping() && key != "prometheus.headers" {
                        collect_keys(v, &key, keys);
                    } else {
                        keys.push(key.clone());
                        collect_keys(v, &key, keys);
                    }
                }
            }
            serde_yaml_ng::Value::Sequence(items) => {
                for item in items {
                    collect_keys(item, &format!("{prefix}[]"), keys);
                }
            }
            _ => {}
        }
    }
}

/// Tests that read CPU and memory quantities (`250m`, `64Mi`) from YAML.
/// They need `Quantity::parse` from `src/units.rs` and fail until that
/// lands; run them with `cargo test --lib config::quantity_tests`.
#[cfg(test)]
mod quantity_tests {
    use super::tests::refused_at;
    use super::*;

    const EXAMPLE: &str = include_str!("../docs/examples/config.yaml");

    #[test]
    fn the_example_config_parses_and_validates() {
        let config = Config::from_yaml(EXAMPLE, "docs/examples/config.yaml")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.history.window, 14 * DAY);
        assert_eq!(config.prometheus.headers["X-Scope-OrgID"], "platform");
        assert_eq!(config.default_policy, Policy::default());
        assert_eq!(config.policies.len(), 2);
        let latency = &config.policies[0];
        assert_eq!(latency.name, "latency-sensitive");
        assert_eq!(
            latency.matches.namespaces.as_deref(),
            Some("payments|checkout")
        );
        assert_eq!(latency.policy.cpu.percentile, 95.0);
        assert_eq!(latency.policy.cpu.min, MilliCores(250));
        assert_eq!(latency.policy.cpu.max, Some(MilliCores(4000)));
        assert_eq!(latency.policy.memory.min, Bytes::mib(256));
        assert_eq!(latency.policy.memory.max, Some(Bytes::gib(8)));
        let batch = &config.policies[1];
        assert_eq!(batch.policy.cpu.limit, CpuLimitPolicy::KeepRatio);
        assert_eq!(batch.policy.significance.min_cpu, MilliCores(50));
        assert_eq!(config.guardrails.freeze_windows.len(), 2);
        assert_eq!(config.guardrails.min_monthly_savings_usd, 5.0);
        assert_eq!(config.rollout, RolloutConfig::default());
        assert_eq!(config.guard, crate::guard::GuardPolicy::default());
        assert_eq!(
            config.agent,
            AgentConfig {
                leader_election: LeaderElection {
                    namespace: Some("tailor-system".into()),
                    ..LeaderElection::default()
                },
                ..AgentConfig::default()
            }
        );
        assert_eq!(config.slo.templates.len(), 2);
        assert_eq!(config.slo.templates[1], SliTemplate::http());
        let istio = SliTemplate::istio();
        assert_eq!(config.slo.templates[0].requests, istio.requests);
        assert_eq!(config.slo.templates[0].latency_p99, istio.latency_p99);
    }

    #[test]
    fn a_serialized_config_reads_back() {
        let config = Config::from_yaml(EXAMPLE, "example").unwrap();
        let text = serde_yaml_ng::to_string(&config).unwrap();
        assert_eq!(Config::from_yaml(&text, "round trip").unwrap(), config);
    }

    #[test]
    fn quantity_bounds_are_checked() {
        #[rustfmt::skip]
        let cases = [
            ("default_policy: {cpu: {min: 500m, max: 250m}}", "default_policy.cpu.max", "at least 500m"),
            ("default_policy: {memory: {min: 1Gi, max: 512Mi}}", "default_policy.memory.max", "at least 1Gi"),
            ("default_policy: {cpu: {step: 0}}", "default_policy.cpu.step", "positive step"),
            ("default_policy: {memory: {step: 0Mi}}", "default_policy.memory.step", "positive step"),
        ];
        for (yaml, key, fix) in cases {
            refused_at(yaml, key, fix);
        }
    }

    #[test]
    fn bad_quantities_name_the_key() {
        match Config::from_yaml("default_policy: {cpu: {min: 250x}}", "t") {
            Err(ConfigError::Parse { key, message, .. }) => {
                assert_eq!(key, "default_policy.cpu.min");
                assert!(message.contains("250x"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
