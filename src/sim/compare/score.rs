//! Scoring fixed resources against the usage they would have run under:
//! what they cost, how much memory they leave idle, and how often the
//! usage crosses them.

use std::ops::Range;

use serde::Serialize;

use super::krr::quantile;
use super::usage::WorkloadUsage;
use crate::config::PricingConfig;
use crate::domain::Resources;
use crate::recommend::policy::monthly_cost;
use crate::units::{Bytes, MilliCores};

/// How one workload fares on fixed resources over some steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Score {
    pub replicas: u32,
    /// Requests × replicas.
    pub cpu_requested_cores: f64,
    pub memory_requested_bytes: f64,
    pub usd_per_month: f64,
    /// p95 of the memory samples (all replicas).
    pub memory_p95_bytes: f64,
    /// Step-replicas with data.
    pub samples: u64,
    /// Step-replicas whose working set is over the memory limit: each is an
    /// OOM kill the workload would have had.
    pub oom_samples: u64,
    /// Step-replicas whose CPU is over the CPU limit (throttled) and over
    /// the CPU request.
    pub cpu_over_limit_samples: u64,
    pub cpu_over_request_samples: u64,
}

impl Score {
    /// (request − p95 usage) / request for memory; 0 with no request.
    pub fn memory_slack(&self) -> f64 {
        let request = self.memory_requested_bytes / f64::from(self.replicas.max(1));
        if request > 0.0 {
            (request - self.memory_p95_bytes) / request
        } else {
            0.0
        }
    }
}

/// Scores `resources` over `steps` of `usage`.
pub fn score(
    usage: &WorkloadUsage,
    steps: Range<usize>,
    resources: &Resources,
    pricing: &PricingConfig,
) -> Score {
    let replicas = usage.replicas.len() as u32;
    let cpu_limit = resources.cpu_limit.map(MilliCores::cores);
    let cpu_request = resources.cpu_request.map(MilliCores::cores);
    let memory_limit = resources.memory_limit.map(Bytes::as_f64);
    let mut s = Score {
        replicas,
        cpu_requested_cores: cpu_request.unwrap_or(0.0) * f64::from(replicas),
        memory_requested_bytes: resources.memory_request.map_or(0.0, Bytes::as_f64)
            * f64::from(replicas),
        usd_per_month: monthly_cost(resources, f64::from(replicas), pricing),
        ..Score::default()
    };
    for r in &usage.replicas {
        let to = steps.end.min(r.cpu_cores.len());
        for i in steps.start.min(to)..to {
            let cpu = f64::from(r.cpu_cores[i]);
            let memory = f64::from(r.memory_bytes[i]);
            if !cpu.is_finite() {
                continue;
            }
            s.samples += 1;
            if memory_limit.is_some_and(|l| memory > l) {
                s.oom_samples += 1;
            }
            if cpu_limit.is_some_and(|l| cpu > l) {
                s.cpu_over_limit_samples += 1;
            }
            if cpu_request.is_some_and(|q| cpu > q) {
                s.cpu_over_request_samples += 1;
            }
        }
    }
    s.memory_p95_bytes = quantile(&mut usage.memory_values(steps), 0.95).unwrap_or(0.0);
    s
}

/// The clairvoyant oracle: requests at the p95 of the evaluation window's
/// own samples (CPU and memory), memory limit at its own peak, no CPU
/// limit. It never OOM-kills its window, leaves no memory idle above the
/// p95 (slack 0), and costs what a recommender would if it knew the future.
pub fn oracle(usage: &WorkloadUsage, steps: Range<usize>) -> Resources {
    let mut cpu = usage.cpu_values(steps.clone());
    let mut memory = usage.memory_values(steps);
    let peak = memory.iter().copied().fold(f64::NAN, f64::max);
    Resources {
        cpu_request: quantile(&mut cpu, 0.95).map(MilliCores::from_cores),
        cpu_limit: None,
        memory_request: quantile(&mut memory, 0.95).map(Bytes::from_f64),
        memory_limit: (!peak.is_nan()).then(|| Bytes::from_f64(peak)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::flat_usage;
    use super::*;

    #[test]
    fn samples_over_the_limit_are_oom_kills() {
        let mut u = flat_usage(2, 0.5, 1000.0);
        let n = u.len();
        u.replicas[0].memory_bytes[n - 1] = 3000.0 * Bytes::MIB as f32;
        u.replicas[0].cpu_cores[n - 2] = 3.0;
        let r = Resources {
            cpu_request: Some(MilliCores(1000)),
            cpu_limit: Some(MilliCores(2000)),
            memory_request: Some(Bytes::mib(1024)),
            memory_limit: Some(Bytes::mib(2048)),
        };
        let s = score(&u, 0..n, &r, &PricingConfig::default());
        assert_eq!(s.oom_samples, 1);
        assert_eq!(s.cpu_over_limit_samples, 1);
        assert_eq!(s.cpu_over_request_samples, 1);
        assert_eq!(s.samples, n as u64);
        // Slack: (1024 − 1000) / 1024.
        assert!(
            (s.memory_slack() - 24.0 / 1024.0).abs() < 1e-3,
            "{}",
            s.memory_slack()
        );
        let expected = monthly_cost(&r, 1.0, &PricingConfig::default());
        assert_eq!(s.usd_per_month, expected);
    }

    #[test]
    fn the_oracle_never_oom_kills_its_own_window() {
        let mut u = flat_usage(2, 0.5, 1000.0);
        let n = u.len();
        u.replicas[0].memory_bytes[7] = 1500.0 * Bytes::MIB as f32;
        let r = oracle(&u, 0..n);
        assert_eq!(r.memory_limit, Some(Bytes::mib(1500)));
        assert_eq!(r.memory_request, Some(Bytes::mib(1000)));
        assert_eq!(r.cpu_request, Some(MilliCores(500)));
        let s = score(&u, 0..n, &r, &PricingConfig::default());
        assert_eq!(s.oom_samples, 0);
        assert!(s.memory_slack().abs() < 1e-9);
    }
}
