//! tailor's own engine over the same samples the baselines see: CPU at the
//! step (5-minute averages, `history.resolution`), memory as hourly peaks
//! (`history.memory_peak_interval`), 14 days (`history.window`), half-life
//! 24 h, through [`crate::recommend::policy::recommend`] with the policy
//! given (the defaults unless a sweep changes them).

use super::History;
use crate::config::{Policy, PricingConfig};
use crate::domain::{ContainerRef, Resources, WorkloadKind, WorkloadRef};
use crate::recommend::Recommendation;
use crate::recommend::policy::{HpaScaling, NodeCapacity, RecommendInput, recommend};
use crate::recommend::usage::{UsageEstimator, Window};

/// `history.window`, `history.half_life`, `history.memory_peak_interval` defaults.
pub const WINDOW_S: i64 = 14 * 86_400;
pub const HALF_LIFE_S: f64 = 86_400.0;
pub const PEAK_INTERVAL_S: i64 = 3600;

/// tailor with one policy (the defaults: `Engine::default()`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Engine {
    pub policy: Policy,
    pub pricing: PricingConfig,
    /// The largest node: nothing is recommended above it.
    pub node: Option<NodeCapacity>,
}

impl Engine {
    /// The estimator tailor would have filled from Prometheus for `h`.
    pub fn estimator(&self, h: &History<'_>) -> (UsageEstimator, Window) {
        let usage = h.usage;
        let end = h.now();
        let window = Window {
            start: end - WINDOW_S,
            end,
            half_life_s: HALF_LIFE_S,
            startup_s: self.policy.startup_window.as_secs() as i64,
        };
        let mut e = UsageEstimator::new(&window);
        let from = h.from.max(usage.index_after(window.start - usage.start));
        for r in &usage.replicas {
            let to = h.to.min(r.cpu_cores.len());
            let mut peak = f64::NAN;
            for i in from..to {
                let t = usage.t(i);
                // Pods started with the usage; its age at the step's start.
                let age = Some(t - usage.step_s - usage.start);
                let cpu = f64::from(r.cpu_cores[i]);
                if cpu.is_finite() {
                    let _ = e.add_cpu(&window, t, cpu, age);
                }
                let m = f64::from(r.memory_bytes[i]);
                if m.is_finite() {
                    peak = if peak.is_nan() { m } else { peak.max(m) };
                }
                let interval_end = (t - usage.start) % PEAK_INTERVAL_S == 0 || i + 1 == to;
                if interval_end && peak.is_finite() {
                    let _ = e.add_memory_peak(&window, t, peak, age);
                    peak = f64::NAN;
                }
            }
        }
        for kill in h.ooms.iter().filter(|k| k.t > window.start && k.t <= end) {
            e.add_restarts(kill.t, 1, 1, Some(kill.memory_limit.as_f64()), Some(kill.t));
        }
        (e, window)
    }

    /// The full recommendation, with its evidence.
    pub fn recommendation(&self, h: &History<'_>) -> Recommendation {
        let (estimator, window) = self.estimator(h);
        let replicas = h.usage.replicas.len() as u32;
        let input = RecommendInput {
            target: ContainerRef {
                workload: WorkloadRef {
                    namespace: "compare".into(),
                    kind: WorkloadKind::Deployment,
                    name: h.usage.name.clone(),
                },
                container: "app".into(),
            },
            current: h.current(),
            usage: &estimator,
            window,
            replicas,
            billed_replicas: f64::from(replicas),
            hpa: HpaScaling::default(),
            node_capacity: self.node,
        };
        recommend(&input, &self.policy, &self.pricing)
    }

    /// What tailor would run the workload with at the end of `h`.
    pub fn recommend(&self, h: &History<'_>) -> Resources {
        self.recommendation(h).recommended
    }
}

#[cfg(test)]
mod tests {
    use super::super::OomKill;
    use super::super::tests::{flat_usage, history};
    use super::*;
    use crate::units::{Bytes, MilliCores};

    #[test]
    fn the_engine_sees_the_same_samples() {
        let u = flat_usage(14, 0.5, 1000.0);
        let r = Engine::default().recommend(&history(&u, 14, &[]));
        // p90 0.5 × 1.15 within one 5 % bucket, rounded to 5m.
        let cpu = r.cpu_request.expect("cpu").0;
        assert!((575..=610).contains(&cpu), "{cpu}");
        let limit = r.memory_limit.expect("limit");
        assert!(limit >= Bytes::mib(1350), "peak × 1.35: {limit}");
    }

    #[test]
    fn an_oom_kill_raises_the_limit_at_once() {
        let u = flat_usage(14, 0.5, 1000.0);
        let kill = OomKill {
            t: u.t(u.len() - 1),
            replica: 0,
            memory_limit: Bytes::gib(2),
            memory_request: Some(Bytes::gib(2)),
        };
        let r = Engine::default().recommend(&history(&u, 14, &[kill]));
        assert!(r.memory_limit >= Some(Bytes::from_f64(2.4 * Bytes::GIB as f64)));
        assert_eq!(r.cpu_limit, None);
        assert!(r.cpu_request < Some(MilliCores(1000)));
    }
}
