//! The recommendation engine: pure functions from usage history to a
//! [`Recommendation`] per container. No I/O, no clock: the caller passes the
//! evaluation instant, so results are reproducible and backtestable.
//!
//! - [`histogram`]: the decaying exponential histogram usage is folded into.
//! - [`usage`]: per-container estimator state fed sample by sample.
//! - [`policy`]: requests and limits from the estimators, inside bounds.

pub mod histogram;
pub mod policy;
pub mod usage;

use serde::{Deserialize, Serialize};

use crate::domain::{ContainerRef, Resources};

impl Evidence {
    /// Pods the monthly cost is multiplied by.
    pub fn cost_replicas(&self) -> f64 {
        self.billed_replicas.unwrap_or(self.replicas as f64)
    }
}

/// What tailor recommends for one container, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub target: ContainerRef,
    /// Values the running pods have now.
    pub current: Resources,
    /// Values tailor recommends; equal to `current` when skipped.
    pub recommended: Resources,
    pub confidence: Confidence,
    /// Monthly cost of `current` minus that of `recommended`, for all
    /// replicas; negative when the recommendation costs more.
    pub savings_per_month_usd: f64,
    pub evidence: Evidence,
    /// Why nothing is recommended, when nothing is.
    pub skipped_reason: Option<String>,
}

/// How much the history supports the recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Confidence {
    /// 0 to 1: history length against the policy minimum, times coverage.
    pub score: f64,
    pub level: ConfidenceLevel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfidenceLevel {
    /// Not enough history to recommend anything.
    None,
    Low,
    Medium,
    High,
}

/// The numbers a recommendation was made from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Pods seen running the container at the evaluation instant.
    pub replicas: u32,
    /// Pods paid for on average when that differs from `replicas`: Jobs and
    /// CronJobs, billed for the share of the window their pods ran.
    #[serde(default)]
    pub billed_replicas: Option<f64>,
    /// Length of history with samples, in hours.
    pub history_hours: f64,
    /// Fraction of the expected samples present (0–1).
    pub coverage: f64,
    pub cpu_samples: u64,
    pub memory_samples: u64,
    /// CPU usage percentiles in millicores (p50, p90, p95, p99, max).
    pub cpu_p50_millicores: Option<u64>,
    pub cpu_p90_millicores: Option<u64>,
    pub cpu_p95_millicores: Option<u64>,
    pub cpu_p99_millicores: Option<u64>,
    pub cpu_max_millicores: Option<u64>,
    /// Mean CPU in the busiest hour of the day, in millicores.
    pub cpu_busiest_hour_millicores: Option<u64>,
    /// Percentile of per-interval memory peaks used for the request, bytes.
    pub memory_peak_percentile_bytes: Option<u64>,
    /// Highest working set seen, bytes.
    pub memory_max_bytes: Option<u64>,
    /// Highest CPU and memory in the startup window after a container start.
    pub startup_cpu_max_millicores: Option<u64>,
    pub startup_memory_max_bytes: Option<u64>,
    /// Share of CFS periods throttled over the window (0–1).
    pub cpu_throttled_ratio: Option<f64>,
    pub oom_kills: u32,
    /// The latest OOM kill (unix seconds), when the source knows it.
    #[serde(default)]
    pub last_oom_kill_at: Option<i64>,
    pub restarts: u32,
    /// Human-readable notes: why a resource was held, bumped or bounded.
    pub notes: Vec<String>,
}
