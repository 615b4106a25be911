//! From usage estimators to requests and limits, inside the policy's bounds.
//!
//! The rules (DESIGN.md §3), per container:
//! - CPU request = max(p`cpu.percentile`, mean of the busiest hour of the
//!   day) × (1 + margin), then bounds and rounding. Left alone when an HPA
//!   scales on CPU utilization (moving the request moves its scale point),
//!   and never decreased while CFS throttling is above the veto ratio.
//! - Memory request = p`memory.percentile` of per-interval peaks ×
//!   (1 + margin); the limit is never below the highest peak seen ×
//!   (1 + limit_margin). An OOM kill in the history raises memory to at
//!   least max(limit × oom_bump_ratio, limit + oom_min_bump) at once, with
//!   no minimum history (the VPA recommender's OOM rule:
//!   `OOMBumpUpRatio = 1.2`, `OOMMinBumpUp = 100 MiB`).
//! - A decrease needs `min_history`; an increase not driven by OOM kills
//!   needs `min_history_increase`; a change smaller than the significance
//!   thresholds is not made.

use crate::config::{CpuLimitPolicy, MemoryLimitPolicy, Policy, PricingConfig};
use crate::domain::{ContainerRef, ResourceKind, Resources};
use crate::units::{Bytes, MilliCores};

use super::usage::{UsageEstimator, Window};
use super::{Confidence, ConfidenceLevel, Evidence, Recommendation};

/// Hours in the month used for $/month figures (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Which resources an HorizontalPodAutoscaler scales the workload on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HpaScaling {
    pub cpu: bool,
    pub memory: bool,
}

/// The largest node's allocatable resources: nothing bigger can schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeCapacity {
    pub cpu: MilliCores,
    pub memory: Bytes,
}

/// Everything known about one container.
#[derive(Clone, Debug)]
pub struct RecommendInput<'a> {
    pub target: ContainerRef,
    pub current: Resources,
    pub usage: &'a UsageEstimator,
    pub window: Window,
    /// Pods running at the evaluation instant.
    pub replicas: u32,
    /// Pods paid for on average: `replicas` for long-running workloads, the
    /// average number running over the window for Jobs and CronJobs.
    pub billed_replicas: f64,
    pub hpa: HpaScaling,
    pub node_capacity: Option<NodeCapacity>,
}

/// Monthly cost of the requests of `replicas` pods.
pub fn monthly_cost(resources: &Resources, replicas: f64, pricing: &PricingConfig) -> f64 {
    let cpu = resources.cpu_request.map_or(0.0, MilliCores::cores) * pricing.cpu_core_hour_usd;
    let memory = resources.memory_request.map_or(0.0, Bytes::gib_f64) * pricing.memory_gib_hour_usd;
    replicas * (cpu + memory) * HOURS_PER_MONTH
}

/// What one resource's rule decided.
struct Decision<T> {
    request: Option<T>,
    limit: Option<T>,
    /// Why the current values were kept, if they were.
    held: Option<String>,
}

impl<T: Copy> Decision<T> {
    fn hold(request: Option<T>, limit: Option<T>, why: String) -> Self {
        Decision {
            request,
            limit,
            held: Some(why),
        }
    }
}

pub fn recommend(
    input: &RecommendInput<'_>,
    policy: &Policy,
    pricing: &PricingConfig,
) -> Recommendation {
    let usage = input.usage;
    let window = &input.window;
    let history_s = usage.history_seconds(window);
    let coverage = usage.coverage(window);
    let mut evidence = evidence(input);

    let confidence = confidence(history_s, coverage, policy);
    let mut recommendation = Recommendation {
        target: input.target.clone(),
        current: input.current,
        recommended: input.current,
        confidence,
        savings_per_month_usd: 0.0,
        evidence: Evidence::default(),
        skipped_reason: None,
    };

    if usage.cpu_samples() == 0 && usage.memory_samples() == 0 {
        recommendation.evidence = evidence;
        recommendation.skipped_reason = Some("no usage samples in the history window".to_string());
        return recommendation;
    }

    evidence.memory_peak_percentile_bytes = usage
        .memory_peak_percentile_bytes(policy.memory.percentile / 100.0)
        .map(|b| b.ceil() as u64);
    let cpu = decide_cpu(input, policy, history_s);
    let memory = decide_memory(input, policy, history_s);
    let mut held = Vec::new();
    for (kind, why) in [
        (ResourceKind::Cpu, &cpu.held),
        (ResourceKind::Memory, &memory.held),
    ] {
        if let Some(why) = why {
            evidence.notes.push(format!("{kind} kept: {why}"));
            held.push(format!("{kind}: {why}"));
        }
    }
    recommendation.recommended = Resources {
        cpu_request: cpu.request,
        cpu_limit: cpu.limit,
        memory_request: memory.request,
        memory_limit: memory.limit,
    };
    recommendation.savings_per_month_usd =
        monthly_cost(&input.current, input.billed_replicas, pricing)
            - monthly_cost(&recommendation.recommended, input.billed_replicas, pricing);
    if recommendation.recommended == input.current {
        recommendation.skipped_reason = Some(if held.is_empty() {
            "no change needed".to_string()
        } else {
            held.join("; ")
        });
    }
    recommendation.evidence = evidence;
    recommendation
}

fn evidence(input: &RecommendInput<'_>) -> Evidence {
    let u = input.usage;
    let w = &input.window;
    let cpu = |p: f64| u.cpu_percentile_millicores(p).map(|m| m.ceil() as u64);
    Evidence {
        replicas: input.replicas,
        billed_replicas: (input.billed_replicas != input.replicas as f64)
            .then_some(input.billed_replicas),
        history_hours: u.history_seconds(w) as f64 / 3600.0,
        coverage: u.coverage(w),
        cpu_samples: u.cpu_samples(),
        memory_samples: u.memory_samples(),
        cpu_p50_millicores: cpu(0.5),
        cpu_p90_millicores: cpu(0.9),
        cpu_p95_millicores: cpu(0.95),
        cpu_p99_millicores: cpu(0.99),
        cpu_max_millicores: u.cpu_max_millicores().map(|m| m.ceil() as u64),
        cpu_busiest_hour_millicores: u.busiest_hour_millicores().map(|m| m.ceil() as u64),
        memory_peak_percentile_bytes: None,
        memory_max_bytes: u.memory_max_bytes().map(|b| b.ceil() as u64),
        startup_cpu_max_millicores: u.startup_cpu_max_millicores().map(|m| m.ceil() as u64),
        startup_memory_max_bytes: u.startup_memory_max_bytes().map(|b| b.ceil() as u64),
        cpu_throttled_ratio: u.throttled_ratio(),
        oom_kills: u.oom_kills(),
        last_oom_kill_at: u.last_oom_at(),
        restarts: u.restarts(),
        notes: Vec::new(),
    }
}

fn confidence(history_s: i64, coverage: f64, policy: &Policy) -> Confidence {
    let needed = policy.min_history.as_secs_f64().max(1.0);
    let score = ((history_s as f64 / needed).min(1.0) * coverage).clamp(0.0, 1.0);
    let level = match score {
        s if s <= 0.0 => ConfidenceLevel::None,
        s if s < 0.6 => ConfidenceLevel::Low,
        s if s < 0.9 => ConfidenceLevel::Medium,
        _ => ConfidenceLevel::High,
    };
    Confidence { score, level }
}

/// Whether moving from `current` to `target` is worth a rollout.
fn significant(current: Option<u64>, target: u64, min_ratio: f64, min_abs: u64) -> bool {
    let Some(current) = current else {
        return true; // setting a value where none was set always matters
    };
    let delta = current.abs_diff(target);
    delta >= min_abs && (delta as f64) >= min_ratio * current as f64
}

/// History gate: `Some(reason)` when there is too little history for a
/// move from `current` to `target`.
fn history_gate(
    current: Option<u64>,
    target: u64,
    history_s: i64,
    policy: &Policy,
    oom_driven: bool,
) -> Option<String> {
    let decrease = current.is_some_and(|c| target < c);
    let needed = if decrease {
        policy.min_history
    } else if oom_driven {
        return None;
    } else {
        policy.min_history_increase
    };
    (history_s < needed.as_secs() as i64).then(|| {
        format!(
            "insufficient data: {:.1} days of history, {:.1} days needed for {}",
            history_s as f64 / 86_400.0,
            needed.as_secs_f64() / 86_400.0,
            if decrease {
                "a decrease"
            } else {
                "an increase"
            }
        )
    })
}

fn decide_cpu(input: &RecommendInput<'_>, policy: &Policy, history_s: i64) -> Decision<MilliCores> {
    let current = input.current;
    let hold = |why: String| Decision::hold(current.cpu_request, current.cpu_limit, why);
    let p = &policy.cpu;
    if input.hpa.cpu {
        return hold("an HPA scales this workload on CPU utilization; changing the request would move its scale point".into());
    }
    let usage = input.usage;
    let Some(percentile) = usage.cpu_percentile_millicores(p.percentile / 100.0) else {
        return hold("no CPU samples".into());
    };
    let base = percentile.max(usage.busiest_hour_millicores().unwrap_or(0.0));
    let mut request = MilliCores::from_cores(base * (1.0 + p.margin) / 1000.0).max(p.min);
    if let Some(max) = p.max {
        request = request.min(max);
    }
    if let Some(node) = input.node_capacity {
        request = request.min(node.cpu);
    }
    request = request.round_up_to(p.step);

    let current_request = current.cpu_request.map(|m| m.0);
    if let Some(ratio) = usage.throttled_ratio()
        && ratio > p.throttling_veto_ratio
        && current_request.is_some_and(|c| request.0 < c)
    {
        return hold(format!(
            "throttled in {:.0} % of CPU periods (veto above {:.0} %); no decrease",
            ratio * 100.0,
            p.throttling_veto_ratio * 100.0
        ));
    }
    if let Some(why) = history_gate(current_request, request.0, history_s, policy, false) {
        return hold(why);
    }
    let sig = &policy.significance;
    if !significant(current_request, request.0, sig.min_ratio, sig.min_cpu.0) {
        return hold(format!(
            "change to {request} is under the significance threshold ({:.0} % and {})",
            sig.min_ratio * 100.0,
            sig.min_cpu
        ));
    }

    let limit = match p.limit {
        CpuLimitPolicy::None => None,
        CpuLimitPolicy::KeepRatio => match (current.cpu_request, current.cpu_limit) {
            (Some(r), Some(l)) if r.0 > 0 => {
                let ratio = l.0 as f64 / r.0 as f64;
                Some(MilliCores::from_cores(request.cores() * ratio).round_up_to(p.step))
            }
            _ => current.cpu_limit,
        },
        CpuLimitPolicy::Percentile => {
            let high = usage
                .cpu_percentile_millicores(p.limit_percentile / 100.0)
                .unwrap_or(percentile)
                .max(usage.startup_cpu_max_millicores().unwrap_or(0.0));
            let limit = MilliCores::from_cores(high * (1.0 + p.margin) / 1000.0).max(request);
            Some(limit.round_up_to(p.step))
        }
    };
    Decision {
        request: Some(request),
        limit,
        held: None,
    }
}

fn decide_memory(input: &RecommendInput<'_>, policy: &Policy, history_s: i64) -> Decision<Bytes> {
    let current = input.current;
    let hold = |why: String| Decision::hold(current.memory_request, current.memory_limit, why);
    let p = &policy.memory;
    if input.hpa.memory {
        return hold("an HPA scales this workload on memory utilization; changing the request would move its scale point".into());
    }
    let usage = input.usage;
    // A container killed before any sample was kept still tells its limit.
    let killed_at = usage.oom_limit_bytes().filter(|_| usage.oom_kills() > 0);
    let (Some(percentile), Some(peak)) = (
        usage
            .memory_peak_percentile_bytes(p.percentile / 100.0)
            .or(killed_at),
        usage.memory_max_bytes().or(killed_at),
    ) else {
        return hold("no memory samples".into());
    };
    let node_memory = input.node_capacity.map(|n| n.memory);
    let cap = |b: Bytes| node_memory.map_or(b, |n| b.min(n));

    let mut request = Bytes::from_f64(percentile * (1.0 + p.margin)).max(p.min);
    if let Some(max) = p.max {
        request = request.min(max);
    }

    // OOM kills: the limit at the time was too small, whatever the samples say.
    let oom_floor = (usage.oom_kills() > 0).then(|| {
        let killed_at = usage
            .oom_limit_bytes()
            .or(current.memory_limit.map(Bytes::as_f64))
            .unwrap_or(peak);
        Bytes::from_f64((killed_at * p.oom_bump_ratio).max(killed_at + p.oom_min_bump.as_f64()))
    });
    if oom_floor.is_some() {
        // Never shrink a container that was OOM-killed in the window.
        request = request
            .max(Bytes::from_f64(peak))
            .max(current.memory_request.unwrap_or_default());
    }
    request = cap(request).round_up_to(p.step);

    // Safety floor for the limit: the observed peak (startup included) with margin.
    let peak_all = peak.max(usage.startup_memory_max_bytes().unwrap_or(0.0));
    let safe_limit = Bytes::from_f64(peak_all * (1.0 + p.limit_margin));
    let limit = match p.limit {
        MemoryLimitPolicy::None => None,
        MemoryLimitPolicy::Peak => {
            let mut limit = safe_limit.max(request);
            if let Some(floor) = oom_floor {
                limit = limit.max(floor);
            }
            Some(cap(limit).round_up_to(p.step))
        }
    };
    let oom_driven = oom_floor.is_some();

    let current_request = current.memory_request.map(|b| b.0);
    if let Some(why) = history_gate(current_request, request.0, history_s, policy, oom_driven) {
        return hold(why);
    }
    let sig = &policy.significance;
    let limit_matters = limit.is_some_and(|l| {
        // A limit below the safety floor must be raised whatever its size.
        current
            .memory_limit
            .is_some_and(|c| c < l && c < safe_limit)
            || significant(
                current.memory_limit.map(|b| b.0),
                l.0,
                sig.min_ratio,
                sig.min_memory.0,
            )
    });
    if !oom_driven
        && !limit_matters
        && !significant(current_request, request.0, sig.min_ratio, sig.min_memory.0)
    {
        return hold(format!(
            "change to {request} is under the significance threshold ({:.0} % and {})",
            sig.min_ratio * 100.0,
            sig.min_memory
        ));
    }
    Decision {
        request: Some(request),
        limit,
        held: None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{WorkloadKind, WorkloadRef};

    const DAY: i64 = 86_400;

    fn window(days: i64) -> Window {
        Window {
            start: 0,
            end: days * DAY,
            half_life_s: DAY as f64,
            startup_s: 300,
        }
    }

    fn target() -> ContainerRef {
        ContainerRef {
            workload: WorkloadRef {
                namespace: "shop".into(),
                kind: WorkloadKind::Deployment,
                name: "web".into(),
            },
            container: "app".into(),
        }
    }

    fn resources(cpu: u64, mem_mib: u64) -> Resources {
        Resources {
            cpu_request: Some(MilliCores(cpu)),
            cpu_limit: None,
            memory_request: Some(Bytes::mib(mem_mib)),
            memory_limit: Some(Bytes::mib(mem_mib)),
        }
    }

    /// Feeds `days` of 5-minute samples from the given functions of the step.
    fn usage(w: &Window, cpu: impl Fn(i64) -> f64, mem: impl Fn(i64) -> f64) -> UsageEstimator {
        let mut e = UsageEstimator::new(w);
        for (i, t) in (w.start + 300..=w.end).step_by(300).enumerate() {
            e.add_cpu(w, t, cpu(i as i64), None).expect("valid");
            if t % 3600 == 0 {
                e.add_memory_peak(w, t, mem(i as i64), None).expect("valid");
            }
        }
        e
    }

    fn run(current: Resources, u: &UsageEstimator, w: Window, policy: &Policy) -> Recommendation {
        let input = RecommendInput {
            target: target(),
            current,
            usage: u,
            window: w,
            replicas: 3,
            billed_replicas: 3.0,
            hpa: HpaScaling::default(),
            node_capacity: None,
        };
        recommend(&input, policy, &PricingConfig::default())
    }

    #[test]
    fn over_provisioned_container_shrinks_with_margin() {
        let w = window(14);
        let u = usage(&w, |i| 0.1 + (i % 10) as f64 * 0.01, |_| 200.0 * 1048576.0);
        let r = run(resources(1000, 1024), &u, w, &Policy::default());
        assert_eq!(r.skipped_reason, None);
        let cpu = r.recommended.cpu_request.expect("cpu").0;
        // p90 of ten equally likely levels 0.10..0.19 is 0.18 or 0.19 (the tie);
        // × 1.15 = 207m..219m, plus at most one 5 % bucket and a 5m step.
        assert!((207..=230).contains(&cpu), "{cpu}");
        let mem = r.recommended.memory_request.expect("memory");
        assert!(mem >= Bytes::mib(230) && mem <= Bytes::mib(243), "{mem}");
        let limit = r.recommended.memory_limit.expect("limit");
        assert!(limit >= Bytes::mib(240), "{limit}");
        assert_eq!(r.recommended.cpu_limit, None);
        assert!(r.savings_per_month_usd > 0.0);
        assert_eq!(r.confidence.level, ConfidenceLevel::High);
    }

    #[test]
    fn short_history_blocks_decreases_but_not_oom_increases() {
        let w = window(14);
        let mut short = UsageEstimator::new(&w);
        for t in (12 * DAY..=14 * DAY).step_by(3600) {
            short.add_cpu(&w, t, 0.05, None).expect("valid");
            short
                .add_memory_peak(&w, t, 40.0 * 1048576.0, None)
                .expect("valid");
        }
        let r = run(resources(1000, 100), &short, w, &Policy::default());
        let reason = r.skipped_reason.clone().unwrap_or_default();
        assert!(reason.contains("insufficient data"), "{reason}");
        assert_eq!(r.recommended, r.current);

        short.add_restarts(w.end, 1, 1, Some(100.0 * 1048576.0), None);
        let r = run(resources(1000, 100), &short, w, &Policy::default());
        let limit = r.recommended.memory_limit.expect("limit");
        // max(100Mi × 1.2, 100Mi + 100Mi) = 200Mi.
        assert_eq!(limit, Bytes::mib(200));
        assert_eq!(
            r.recommended.cpu_request,
            Some(MilliCores(1000)),
            "CPU still gated"
        );
    }

    #[test]
    fn hpa_on_cpu_leaves_cpu_alone() {
        let w = window(14);
        let u = usage(&w, |_| 0.1, |_| 100.0 * 1048576.0);
        let input = RecommendInput {
            target: target(),
            current: resources(1000, 1024),
            usage: &u,
            window: w,
            replicas: 2,
            billed_replicas: 2.0,
            hpa: HpaScaling {
                cpu: true,
                memory: false,
            },
            node_capacity: None,
        };
        let r = recommend(&input, &Policy::default(), &PricingConfig::default());
        assert_eq!(r.recommended.cpu_request, Some(MilliCores(1000)));
        assert!(
            r.evidence.notes.iter().any(|n| n.contains("HPA")),
            "{:?}",
            r.evidence.notes
        );
        assert!(r.recommended.memory_request < Some(Bytes::mib(1024)));
    }

    #[test]
    fn throttling_vetoes_cpu_decrease() {
        let w = window(14);
        let mut u = usage(&w, |_| 0.1, |_| 100.0 * 1048576.0);
        u.add_throttling(w.end, 30.0, 100.0);
        let r = run(resources(1000, 1024), &u, w, &Policy::default());
        assert_eq!(r.recommended.cpu_request, Some(MilliCores(1000)));
        assert_eq!(r.evidence.cpu_throttled_ratio, Some(0.3));
    }

    #[test]
    fn small_changes_are_not_worth_a_rollout() {
        let w = window(14);
        let u = usage(&w, |_| 0.1, |_| 100.0 * 1048576.0);
        // p90 100m × 1.15 ≈ 120m against 125m current: under 10 %.
        let r = run(resources(125, 128), &u, w, &Policy::default());
        assert_eq!(r.recommended.cpu_request, Some(MilliCores(125)));
        assert!(
            r.skipped_reason.is_some() || r.recommended.memory_request != Some(Bytes::mib(128))
        );
    }

    #[test]
    fn no_samples_is_a_skip_not_a_zero() {
        let w = window(14);
        let u = UsageEstimator::new(&w);
        let r = run(resources(500, 512), &u, w, &Policy::default());
        assert_eq!(r.recommended, r.current);
        assert_eq!(r.confidence.level, ConfidenceLevel::None);
        assert!(r.skipped_reason.expect("skip").contains("no usage samples"));
    }

    #[test]
    fn cpu_limit_policies() {
        let w = window(14);
        let u = usage(
            &w,
            |i| if i % 100 == 0 { 0.9 } else { 0.2 },
            |_| 100.0 * 1048576.0,
        );
        let mut current = resources(1000, 512);
        current.cpu_limit = Some(MilliCores(2000));
        let mut policy = Policy::default();
        policy.cpu.limit = CpuLimitPolicy::KeepRatio;
        let r = run(current, &u, w, &policy);
        let req = r.recommended.cpu_request.expect("request").0;
        let lim = r.recommended.cpu_limit.expect("limit").0;
        assert!(lim >= 2 * req && lim <= 2 * req + 5, "{req} {lim}");
        policy.cpu.limit = CpuLimitPolicy::Percentile;
        let r = run(current, &u, w, &policy);
        let lim = r.recommended.cpu_limit.expect("limit").0;
        assert!(lim >= 900, "p99 covers the 1 % spikes: {lim}");
    }

    #[test]
    fn monthly_cost_uses_unit_prices() {
        let pricing = PricingConfig {
            cpu_core_hour_usd: 0.04,
            memory_gib_hour_usd: 0.005,
            ..PricingConfig::default()
        };
        let r = Resources {
            cpu_request: Some(MilliCores(500)),
            cpu_limit: None,
            memory_request: Some(Bytes::gib(2)),
            memory_limit: None,
        };
        let cost = monthly_cost(&r, 2.0, &pricing);
        assert!((cost - 2.0 * (0.5 * 0.04 + 2.0 * 0.005) * 730.0).abs() < 1e-9);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn bounds_and_safety_floors_hold(
            cpu_base in 0.0f64..8.0,
            cpu_swing in 0.0f64..4.0,
            mem_mib in 1.0f64..20_000.0,
            mem_swing in 0.0f64..2.0,
            cur_cpu in 1u64..16_000,
            cur_mem in 1u64..32_768,
            min_cpu in 1u64..200,
            max_cpu in 200u64..20_000,
            margin in 0.0f64..1.0,
            limit_margin in 0.0f64..1.0,
            oom in 0u32..3,
        ) {
            let w = window(14);
            let mut u = usage(
                &w,
                |i| cpu_base + cpu_swing * ((i % 37) as f64 / 37.0),
                |i| mem_mib * 1048576.0 * (1.0 + mem_swing * ((i % 101) as f64 / 101.0)),
            );
            if oom > 0 {
                u.add_restarts(w.end, oom, oom, Some(cur_mem as f64 * 1048576.0), None);
            }
            let mut policy = Policy::default();
            policy.cpu.min = MilliCores(min_cpu);
            policy.cpu.max = Some(MilliCores(max_cpu));
            policy.cpu.margin = margin;
            policy.memory.margin = margin;
            policy.memory.limit_margin = limit_margin;
            let r = run(resources(cur_cpu, cur_mem), &u, w, &policy);
            if let Some(cpu) = r.recommended.cpu_request && r.recommended.cpu_request != r.current.cpu_request {
                prop_assert!(cpu.0 >= min_cpu);
                prop_assert!(cpu.0 <= max_cpu.div_ceil(5) * 5);
                prop_assert_eq!(cpu.0 % 5, 0);
            }
            if r.recommended.memory_limit != r.current.memory_limit {
                let limit = r.recommended.memory_limit.expect("peak policy sets a limit");
                let peak = u.memory_max_bytes().expect("samples");
                prop_assert!(limit.as_f64() >= peak * (1.0 + limit_margin) - 1.0,
                    "limit {} < peak {} × {}", limit, peak, 1.0 + limit_margin);
                prop_assert!(r.recommended.memory_request <= Some(limit));
            }
            if oom > 0 {
                let limit = r.recommended.memory_limit.expect("limit");
                prop_assert!(limit.as_f64() >= cur_mem as f64 * 1048576.0 * 1.2 - 1.0);
            }
        }

        #[test]
        fn cpu_request_is_monotone_in_the_percentile(
            lo in 1.0f64..99.0,
            hi in 1.0f64..99.0,
            seed in 0u64..1000,
        ) {
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            let w = window(14);
            let u = usage(&w, |i| ((i as u64 * 2654435761 + seed) % 1000) as f64 / 250.0, |_| 1e8);
            let at = |p: f64| {
                let mut policy = Policy::default();
                policy.cpu.percentile = p;
                policy.significance.min_ratio = 0.0;
                policy.significance.min_cpu = MilliCores(0);
                run(resources(100_000, 100), &u, w, &policy).recommended.cpu_request
            };
            prop_assert!(at(lo) <= at(hi));
        }
    }
}
