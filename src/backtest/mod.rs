//! `tailor backtest`: what a recommendation would have done. tailor
//! recommends as of an instant T from the history before T (as
//! `tailor recommend --at T` does), then replays the horizon after T from
//! Prometheus and counts, per container and in total, what the recommended
//! values would have met: memory samples above the limit (would-be OOM
//! kills), time above the CPU limit and above the request, and the money
//! the recommended requests would have saved over the pods that really ran.
//! The same counts against the values the pods had at T put them in
//! context.
//!
//! - [`replay`]: the counting, pure, sample by sample.
//! - [`run`]: the replay's queries: batched per namespace and metric like
//!   usage collection, range queries on a step grid, never one per
//!   container.
//! - [`context`]: team labels and node pools from kube-state-metrics, for
//!   reports and node-pool prices.
//!
//! Not for: deciding anything. A backtest never changes a recommendation.

pub mod context;
pub mod replay;
pub mod run;

use crate::domain::ContainerRef;

/// The outcome of one backtest, ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct Backtest {
    /// The recommendation instant T (unix seconds): history before it,
    /// replay after it.
    pub at: i64,
    /// Length of the replay, (T, T + horizon].
    pub horizon_s: i64,
    /// Step of the replay's range queries: each CPU sample is the average
    /// over one step, each memory sample the peak over one step.
    pub step_s: i64,
    /// Queries the replay sent (the recommendation's are in the report).
    pub queries: u64,
    /// One per recommendation, in the report's order of recommendations.
    pub containers: Vec<ContainerReplay>,
}

/// What one container's pods did during the replay, held against the
/// values they had at T and the values recommended at T.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerReplay {
    pub target: ContainerRef,
    /// Pod-steps with a CPU sample: how long pods ran, in steps.
    pub cpu_samples: u64,
    /// Pod-steps with a memory sample.
    pub memory_samples: u64,
    /// Highest CPU (average over a step) and memory (peak) in the replay.
    pub cpu_max_millicores: Option<f64>,
    pub memory_max_bytes: Option<f64>,
    /// Against the values at T.
    pub current: Exposure,
    /// Against the recommended values.
    pub recommended: Exposure,
    /// OOM kills and restarts that really happened in the replay window
    /// (kube-state-metrics; the pods ran with their real limits).
    pub observed_oom_kills: u32,
    pub observed_restarts: u32,
    /// Pod-hours the container ran in the replay (CPU samples × step).
    pub pod_hours: f64,
    /// What the recommended requests would have saved over those pod-hours
    /// (negative: cost more), at the container's node-pool prices.
    pub saved_usd: f64,
}

/// What a set of values would have met. `None`: the value is not set
/// (no limit, no request), so nothing can be over it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Exposure {
    /// Memory samples (peak per step, per pod) above the memory limit.
    pub memory_over_limit_samples: Option<u64>,
    /// Runs of consecutive samples above the memory limit, per pod: each
    /// would have been at least one OOM kill.
    pub oom_kills: Option<u64>,
    /// Memory samples above the memory request (eviction candidates under
    /// node memory pressure).
    pub memory_over_request_samples: Option<u64>,
    /// Pod-seconds whose average CPU over the step was above the CPU limit
    /// (throttled at least that long).
    pub cpu_over_limit_seconds: Option<i64>,
    /// Pod-seconds whose average CPU over the step was above the request.
    pub cpu_over_request_seconds: Option<i64>,
}

impl Exposure {
    /// Field-wise sum; a sum is `None` only when every part is.
    pub fn add(&mut self, other: &Exposure) {
        fn sum<T: Copy + std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            }
        }
        self.memory_over_limit_samples = sum(
            self.memory_over_limit_samples,
            other.memory_over_limit_samples,
        );
        self.oom_kills = sum(self.oom_kills, other.oom_kills);
        self.memory_over_request_samples = sum(
            self.memory_over_request_samples,
            other.memory_over_request_samples,
        );
        self.cpu_over_limit_seconds =
            sum(self.cpu_over_limit_seconds, other.cpu_over_limit_seconds);
        self.cpu_over_request_seconds = sum(
            self.cpu_over_request_seconds,
            other.cpu_over_request_seconds,
        );
    }
}

/// Sums over every container of a backtest.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BacktestTotals {
    pub containers: u64,
    pub pod_hours: f64,
    pub current: Exposure,
    pub recommended: Exposure,
    pub observed_oom_kills: u64,
    pub observed_restarts: u64,
    pub saved_usd: f64,
    /// Containers whose recommended values would have met at least one
    /// would-be OOM kill.
    pub containers_with_oom_kills: u64,
}

impl Backtest {
    pub fn totals(&self) -> BacktestTotals {
        let mut t = BacktestTotals::default();
        for c in &self.containers {
            t.containers += 1;
            t.pod_hours += c.pod_hours;
            t.current.add(&c.current);
            t.recommended.add(&c.recommended);
            t.observed_oom_kills += u64::from(c.observed_oom_kills);
            t.observed_restarts += u64::from(c.observed_restarts);
            t.saved_usd += c.saved_usd;
            if c.recommended.oom_kills.is_some_and(|k| k > 0) {
                t.containers_with_oom_kills += 1;
            }
        }
        t
    }

    /// The replay of one container, if it has one.
    pub fn replay_of(&self, target: &ContainerRef) -> Option<&ContainerReplay> {
        self.containers.iter().find(|c| &c.target == target)
    }
}
