//! KRR's "simple" strategy (robusta-dev/krr) rebuilt from its documented
//! behaviour, as a baseline. Every constant names the file it comes from,
//! under `robusta_krr/` of robusta-dev/krr.
//!
//! - CPU request = the 95th percentile of each pod's usage over 14 days
//!   (Prometheus `quantile_over_time`, linear interpolation), the highest
//!   over the workload's pods; no CPU limit.
//! - Memory request = limit = the highest working set of any pod × 1.15.
//! - Rounded up to 1 millicore and 1 MiB, at least 10 millicores and
//!   100 MiB; fewer than 100 data points leave the resource as it is.
//!
//! KRR is a report: nothing in it reacts to OOM kills between runs (its
//! experimental `use_oomkill_data` is off by default), so in a loop it is
//! run once a day.

use super::History;
use crate::domain::Resources;
use crate::units::{Bytes, MilliCores};

/// `SimpleStrategySettings.cpu_percentile` (strategies/simple.py): 95.
pub const CPU_PERCENTILE: f64 = 95.0;
/// `SimpleStrategySettings.memory_buffer_percentage` (strategies/simple.py): +15 %.
pub const MEMORY_BUFFER: f64 = 0.15;
/// `SimpleStrategySettings.points_required` (strategies/simple.py).
pub const POINTS_REQUIRED: usize = 100;
/// `StrategySettings.history_duration` (core/abstract/strategies.py): 336 h.
pub const HISTORY_S: i64 = 336 * 3600;
/// `Config.cpu_min_value` (core/models/config.py): 10 millicores.
pub const CPU_MIN: MilliCores = MilliCores(10);
/// `Config.memory_min_value` (core/models/config.py): 100, × 1024² in
/// `Runner.__get_resource_minimal` (core/runner.py).
pub const MEMORY_MIN: Bytes = Bytes::mib(100);

/// The φ-quantile of `values` the way Prometheus computes it: rank
/// φ·(n − 1), linear interpolation between neighbours.
pub fn quantile(values: &mut [f64], phi: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = phi.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let weight = rank - lower as f64;
    Some(values[lower] * (1.0 - weight) + values[upper] * weight)
}

/// KRR's recommendation from the last 14 days of `h`; a resource without
/// enough points keeps its current values.
pub fn recommend(h: &History<'_>) -> Resources {
    let usage = h.usage;
    let from = h
        .from
        .max(usage.index_after(h.now() - HISTORY_S - usage.start));
    let mut current = h.current();
    let mut cpu_points = 0;
    let mut memory_points = 0;
    let mut cpu: Option<f64> = None;
    let mut memory: Option<f64> = None;
    for r in &usage.replicas {
        let to = h.to.min(r.cpu_cores.len());
        let mut pod_cpu: Vec<f64> = r.cpu_cores[from.min(to)..to]
            .iter()
            .filter(|v| v.is_finite())
            .map(|&v| f64::from(v))
            .collect();
        cpu_points += pod_cpu.len();
        if let Some(q) = quantile(&mut pod_cpu, CPU_PERCENTILE / 100.0) {
            cpu = Some(cpu.map_or(q, |c| c.max(q)));
        }
        let pod_memory = r.memory_bytes[from.min(to)..to]
            .iter()
            .filter(|v| v.is_finite())
            .map(|&v| f64::from(v));
        for m in pod_memory {
            memory_points += 1;
            memory = Some(memory.map_or(m, |x| x.max(m)));
        }
    }
    if let Some(c) = cpu.filter(|_| cpu_points >= POINTS_REQUIRED) {
        current.cpu_request = Some(MilliCores::from_cores(c).max(CPU_MIN));
        current.cpu_limit = None;
    }
    if let Some(m) = memory.filter(|_| memory_points >= POINTS_REQUIRED) {
        let value = Bytes::from_f64(m * (1.0 + MEMORY_BUFFER))
            .round_up_to(Bytes::mib(1))
            .max(MEMORY_MIN);
        current.memory_request = Some(value);
        current.memory_limit = Some(value);
    }
    current
}

#[cfg(test)]
mod tests {
    use super::super::tests::{flat_usage, history};
    use super::*;

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(quantile(&mut v, 0.5), Some(3.0));
        // rank 0.95 × 4 = 3.8: 4 + 0.8 × (5 − 4).
        let q = quantile(&mut v, 0.95).expect("values");
        assert!((q - 4.8).abs() < 1e-12, "{q}");
        assert_eq!(quantile(&mut [], 0.95), None);
    }

    #[test]
    fn cpu_is_p95_without_limit_and_memory_is_max_plus_15_percent() {
        let mut u = flat_usage(14, 0.2, 1000.0);
        // One step in twenty at 1 core puts the p95 between 0.2 and 1.
        for (i, v) in u.replicas[0].cpu_cores.iter_mut().enumerate() {
            if i % 20 == 0 {
                *v = 1.0;
            }
        }
        let peak = u.len() / 2;
        u.replicas[0].memory_bytes[peak] = 2000.0 * Bytes::MIB as f32;
        let r = recommend(&history(&u, 14, &[]));
        let mut all = u.cpu_values(0..u.len());
        let p95 = quantile(&mut all, 0.95).expect("values");
        assert_eq!(r.cpu_request, Some(MilliCores::from_cores(p95)));
        assert_eq!(r.cpu_limit, None);
        // 2000 MiB × 1.15 = 2300 MiB, request = limit.
        assert_eq!(r.memory_request, Some(Bytes::mib(2300)));
        assert_eq!(r.memory_limit, Some(Bytes::mib(2300)));
    }

    #[test]
    fn minimums_are_10_millicores_and_100_mib() {
        let u = flat_usage(14, 0.0001, 10.0);
        let r = recommend(&history(&u, 14, &[]));
        assert_eq!(r.cpu_request, Some(CPU_MIN));
        assert_eq!(r.memory_request, Some(Bytes::mib(100)));
    }

    #[test]
    fn the_highest_pod_sets_the_workload() {
        let mut u = flat_usage(14, 0.1, 300.0);
        let mut busy = u.replicas[0].clone();
        for v in &mut busy.cpu_cores {
            *v = 0.5;
        }
        u.replicas.push(busy);
        let r = recommend(&history(&u, 14, &[]));
        assert_eq!(r.cpu_request, Some(MilliCores(500)));
    }

    #[test]
    fn too_few_points_keep_the_current_values() {
        let u = flat_usage(14, 0.1, 300.0);
        // 99 steps of history.
        let mut h = history(&u, 14, &[]);
        h.from = h.to - (POINTS_REQUIRED - 1);
        assert_eq!(recommend(&h), u.provisioned);
    }
}
