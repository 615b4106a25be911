//! The VPA recommender and updater (kubernetes/autoscaler,
//! vertical-pod-autoscaler 1.x) rebuilt from their documented behaviour, as
//! a baseline. Every constant names the file it comes from, under
//! `vertical-pod-autoscaler/pkg/` of kubernetes/autoscaler.
//!
//! - CPU: every sample goes into a decaying histogram with exponentially
//!   growing buckets, weighted by the container's CPU request (at least
//!   0.1 core) and halved every 24 h; target = p90 × 1.15.
//! - Memory: one peak per pod and 24 h interval (an OOM kill counts as a
//!   peak of max(+20 %, +100 MiB) over what the container had), in the same
//!   kind of histogram; target = p90 of the peaks × 1.15.
//! - At least 25 millicores and 250 MiB per pod; limits keep the
//!   template's limit/request ratio (`RequestsAndLimits`).
//! - The updater evicts a pod when its request leaves the
//!   [lower, upper] bounds, when it is over 12 h old and the target moved
//!   more than 10 %, or when it was OOM-killed within 10 minutes of start.
//!
//! What it leaves out: checkpoints (the histogram here is rebuilt from the
//! last 8 days, which is what the decay keeps anyway), VPA objects with
//! several containers (every workload here has one), and eviction budgets.

use super::History;
use crate::domain::Resources;
use crate::units::{Bytes, MilliCores};

const DAY_S: i64 = 86_400;

/// `DefaultCPUHistogramDecayHalfLife`, `DefaultMemoryHistogramDecayHalfLife`
/// (recommender/model/aggregations_config.go): 24 h.
pub const HALF_LIFE_S: f64 = 86_400.0;
/// `DefaultMemoryAggregationInterval` (aggregations_config.go): one peak per 24 h.
pub const MEMORY_INTERVAL_S: i64 = DAY_S;
/// `DefaultMemoryAggregationIntervalCount` (aggregations_config.go): 8 intervals.
pub const MEMORY_INTERVALS: i64 = 8;
/// `--history-length=8d` (recommender/main.go): how far back history goes.
pub const HISTORY_S: i64 = MEMORY_INTERVALS * MEMORY_INTERVAL_S;
/// `--target-cpu-percentile`, `--target-memory-percentile` (recommender/logic/recommender.go).
pub const TARGET_PERCENTILE: f64 = 0.9;
/// `--recommendation-lower-bound-{cpu,memory}-percentile` (logic/recommender.go).
pub const LOWER_BOUND_PERCENTILE: f64 = 0.5;
/// `--recommendation-upper-bound-{cpu,memory}-percentile` (logic/recommender.go).
pub const UPPER_BOUND_PERCENTILE: f64 = 0.95;
/// `--recommendation-margin-fraction` (logic/recommender.go): +15 %.
pub const SAFETY_MARGIN: f64 = 0.15;
/// `--pod-recommendation-min-cpu-millicores` (logic/recommender.go).
pub const POD_MIN_CPU_MILLICORES: u64 = 25;
/// `--pod-recommendation-min-memory-mb` (logic/recommender.go), × 1024 × 1024 there.
pub const POD_MIN_MEMORY: Bytes = Bytes::mib(250);
/// `DefaultOOMBumpUpRatio` (aggregations_config.go): +20 % after an OOM kill…
pub const OOM_BUMP_RATIO: f64 = 1.2;
/// …and `DefaultOOMMinBumpUp`: at least +100 MiB (100 × 1024 × 1024 bytes).
pub const OOM_MIN_BUMP: Bytes = Bytes::mib(100);
/// `minSampleWeight` (aggregations_config.go, aggregate_container_state.go):
/// CPU samples weigh max(request in cores, 0.1).
pub const MIN_SAMPLE_WEIGHT: f64 = 0.1;
/// `epsilon` (aggregations_config.go): lighter buckets count as empty.
pub const EPSILON: f64 = 0.001 * MIN_SAMPLE_WEIGHT;
/// `defaultUpdateThreshold` / `--pod-update-threshold` (updater/priority/update_priority_calculator.go).
pub const UPDATE_THRESHOLD: f64 = 0.10;
/// `podLifetimeUpdateThreshold` (update_priority_calculator.go): 12 h.
pub const POD_LIFETIME_UPDATE_THRESHOLD_S: i64 = 12 * 3600;
/// `--evict-after-oom-threshold` (update_priority_calculator.go): 10 minutes.
pub const EVICT_AFTER_OOM_S: i64 = 600;

/// `NewExponentialHistogramOptions(max, first, ratio, epsilon)`
/// (recommender/util/histogram_options.go): bucket 0 is `[0, first)`,
/// bucket n ≥ 1 starts at `first × (ratio^n − 1) / (ratio − 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    pub first: f64,
    pub ratio: f64,
    pub buckets: usize,
}

impl Layout {
    pub fn new(max: f64, first: f64, ratio: f64) -> Layout {
        let buckets = ((max * (ratio - 1.0) / first + 1.0).ln() / ratio.ln()).ceil() as usize + 1;
        Layout {
            first,
            ratio,
            buckets,
        }
    }

    pub fn find_bucket(&self, value: f64) -> usize {
        if value < self.first {
            return 0;
        }
        let b = ((value * (self.ratio - 1.0) / self.first + 1.0).ln() / self.ratio.ln()) as usize;
        b.min(self.buckets - 1)
    }

    pub fn bucket_start(&self, bucket: usize) -> f64 {
        if bucket == 0 {
            0.0
        } else {
            self.first * (self.ratio.powi(bucket as i32) - 1.0) / (self.ratio - 1.0)
        }
    }
}

/// CPU in cores: first bucket 0.01 core, 5 % growth, up to 1,000 cores
/// (`cpuHistogramOptions`, aggregations_config.go in VPA 1.x; newer
/// releases moved the first bucket to 0.001 core).
pub fn cpu_layout() -> Layout {
    Layout::new(1000.0, 0.01, 1.05)
}

/// Memory in bytes: first bucket 10 MB (1e7), 5 % growth, up to 1 TB
/// (`memoryHistogramOptions`, aggregations_config.go).
pub fn memory_layout() -> Layout {
    Layout::new(1e12, 1e7, 1.05)
}

/// VPA's histogram (recommender/util/histogram.go): a percentile is the
/// end of the bucket where the cumulative weight reaches it.
#[derive(Clone, Debug)]
pub struct Histogram {
    layout: Layout,
    weights: Vec<f64>,
    total: f64,
}

impl Histogram {
    pub fn new(layout: Layout) -> Histogram {
        Histogram {
            weights: vec![0.0; layout.buckets],
            layout,
            total: 0.0,
        }
    }

    pub fn add(&mut self, value: f64, weight: f64) {
        if !(value.is_finite() && weight > 0.0) {
            return;
        }
        self.weights[self.layout.find_bucket(value.max(0.0))] += weight;
        self.total += weight;
    }

    pub fn is_empty(&self) -> bool {
        !self.weights.iter().any(|&w| w >= EPSILON)
    }

    /// 0.0 when empty, as in VPA.
    pub fn percentile(&self, p: f64) -> f64 {
        let nonempty = |&(_, w): &(usize, &f64)| *w >= EPSILON;
        let Some(min) = self
            .weights
            .iter()
            .enumerate()
            .find(nonempty)
            .map(|(i, _)| i)
        else {
            return 0.0;
        };
        let max = self
            .weights
            .iter()
            .enumerate()
            .rev()
            .find(nonempty)
            .map_or(min, |(i, _)| i);
        let threshold = p * self.total;
        let mut partial = 0.0;
        let mut bucket = min;
        while bucket < max {
            partial += self.weights[bucket];
            if partial >= threshold {
                break;
            }
            bucket += 1;
        }
        if bucket < self.layout.buckets - 1 {
            self.layout.bucket_start(bucket + 1)
        } else {
            self.layout.bucket_start(bucket)
        }
    }
}

/// The weight a sample stamped `t` keeps at `now`: halved every 24 h.
fn decay(t: i64, now: i64) -> f64 {
    ((t - now) as f64 / HALF_LIFE_S).exp2()
}

/// Target and bounds, before limits are derived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub target: (MilliCores, Bytes),
    pub lower: (MilliCores, Bytes),
    pub upper: (MilliCores, Bytes),
}

/// The recommender's estimate from the last [`HISTORY_S`] of `h`.
pub fn estimate(h: &History<'_>) -> Option<Estimate> {
    let usage = h.usage;
    let now = h.now();
    let first_t = now - HISTORY_S;
    let mut cpu = Histogram::new(cpu_layout());
    let mut memory = Histogram::new(memory_layout());
    let mut samples = 0.0f64;
    let (mut first_seen, mut last_seen) = (i64::MAX, i64::MIN);
    let from = h.from.max(usage.index_after(first_t - usage.start));
    for r in &usage.replicas {
        // One peak per 24 h interval, the intervals ending at `now`.
        let mut peaks = [f64::NAN; MEMORY_INTERVALS as usize];
        for i in from..h.to.min(r.cpu_cores.len()) {
            let t = usage.t(i);
            let c = f64::from(r.cpu_cores[i]);
            if !c.is_finite() {
                continue;
            }
            let request = h.resources_at(i).cpu_request.map_or(0.0, MilliCores::cores);
            cpu.add(c, request.max(MIN_SAMPLE_WEIGHT) * decay(t, now));
            // A step stands for step_s / 60 of the recommender's 1-minute samples.
            samples += usage.step_s as f64 / 60.0;
            first_seen = first_seen.min(t);
            last_seen = last_seen.max(t);
            let slot = ((t - first_t - 1).max(0) / MEMORY_INTERVAL_S) as usize;
            let m = f64::from(r.memory_bytes[i]);
            if let Some(p) = peaks.get_mut(slot)
                && m.is_finite()
            {
                *p = if p.is_nan() { m } else { p.max(m) };
            }
        }
        // RecordOOM (recommender/model/container.go): the kill becomes a
        // peak of max(used + 100 MiB, used × 1.2), used = max(request, peak).
        for kill in h.ooms.iter().filter(|k| k.t > first_t && k.t <= now) {
            let slot = ((kill.t - first_t - 1).max(0) / MEMORY_INTERVAL_S) as usize;
            if let Some(p) = peaks.get_mut(slot) {
                let used = kill
                    .memory_request
                    .map_or(0.0, Bytes::as_f64)
                    .max(if p.is_nan() { 0.0 } else { *p });
                let needed = (used + OOM_MIN_BUMP.as_f64()).max(used * OOM_BUMP_RATIO);
                *p = if p.is_nan() { needed } else { p.max(needed) };
            }
        }
        for (slot, peak) in peaks.iter().enumerate() {
            let interval_end = first_t + (slot as i64 + 1) * MEMORY_INTERVAL_S;
            memory.add(*peak, decay(interval_end, now));
        }
    }
    if cpu.is_empty() || memory.is_empty() {
        return None;
    }
    let lifespan_days = (last_seen - first_seen).max(0) as f64 / DAY_S as f64;
    let confidence = lifespan_days.min(samples / (60.0 * 24.0));
    let at = |p: f64, scale: f64| {
        let c = cpu.percentile(p) * (1.0 + SAFETY_MARGIN) * scale;
        let m = memory.percentile(p) * (1.0 + SAFETY_MARGIN) * scale;
        (
            MilliCores::from_cores(c).max(MilliCores(POD_MIN_CPU_MILLICORES)),
            Bytes::from_f64(m).max(POD_MIN_MEMORY),
        )
    };
    // Confidence multipliers (logic/recommender.go, logic/estimator.go):
    // upper × (1 + 1/confidence), lower × (1 + 0.001/confidence)^-2.
    Some(Estimate {
        target: at(TARGET_PERCENTILE, 1.0),
        lower: at(LOWER_BOUND_PERCENTILE, (1.0 + 0.001 / confidence).powi(-2)),
        upper: at(UPPER_BOUND_PERCENTILE, 1.0 + 1.0 / confidence),
    })
}

/// What pods get: requests = target, limits scaled by the template's
/// limit/request ratio (`GetProportionalLimit`,
/// utils/vpa/limit_and_request_scaling.go; `controlledValues:
/// RequestsAndLimits`).
pub fn resources(estimate: &Estimate, template: &Resources) -> Resources {
    let (cpu, memory) = estimate.target;
    let scale = |request: Option<u64>, limit: Option<u64>, target: u64| match (request, limit) {
        (_, None) => None,
        (Some(r), Some(l)) if r > 0 => Some((target as f64 * l as f64 / r as f64).ceil() as u64),
        // A limit without a request: Kubernetes sets the request to the limit.
        (_, Some(_)) => Some(target),
    };
    Resources {
        cpu_request: Some(cpu),
        cpu_limit: scale(
            template.cpu_request.map(|m| m.0),
            template.cpu_limit.map(|m| m.0),
            cpu.0,
        )
        .map(MilliCores),
        memory_request: Some(memory),
        memory_limit: scale(
            template.memory_request.map(|b| b.0),
            template.memory_limit.map(|b| b.0),
            memory.0,
        )
        .map(Bytes),
    }
}

/// One-shot: the resources VPA would give pods at the end of `h`, or the
/// current ones when it has no estimate yet.
pub fn recommend(h: &History<'_>) -> Resources {
    estimate(h).map_or(h.current(), |e| resources(&e, &h.usage.provisioned))
}

/// Whether the updater evicts a pod running `current` (VPA 1.x
/// `UpdatePriorityCalculator`): request outside the bounds, or older than
/// 12 h with the target more than 10 % away (relative differences of CPU
/// and memory added up), or OOM-killed within 10 minutes of its start.
pub fn updater_evicts(
    estimate: &Estimate,
    current: &Resources,
    pod_age_s: i64,
    oom_since_start_s: Option<i64>,
) -> bool {
    let cpu = current.cpu_request.map_or(0, |m| m.0);
    let memory = current.memory_request.map_or(0, |b| b.0);
    let outside = cpu < estimate.lower.0.0
        || cpu > estimate.upper.0.0
        || memory < estimate.lower.1.0
        || memory > estimate.upper.1.0;
    let relative = |request: u64, target: u64| {
        if request == 0 {
            1.0
        } else {
            request.abs_diff(target) as f64 / request as f64
        }
    };
    let diff = relative(cpu, estimate.target.0.0) + relative(memory, estimate.target.1.0);
    let quick_oom = oom_since_start_s.is_some_and(|s| s < EVICT_AFTER_OOM_S);
    let changes = estimate.target != (MilliCores(cpu), Bytes(memory));
    changes
        && (outside
            || quick_oom
            || (pod_age_s >= POD_LIFETIME_UPDATE_THRESHOLD_S && diff > UPDATE_THRESHOLD))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{flat_usage, history};
    use super::super::{History, OomKill};
    use super::*;

    #[test]
    fn bucket_layout_follows_the_exponential_options() {
        let l = cpu_layout();
        // 0.01 + 0.0105 + …: bucket 2 starts at 0.01 × (1.05² − 1) / 0.05.
        assert!((l.bucket_start(1) - 0.01).abs() < 1e-12);
        assert!((l.bucket_start(2) - 0.0205).abs() < 1e-12);
        assert_eq!(l.find_bucket(0.0099), 0);
        assert_eq!(l.find_bucket(0.0101), 1);
        assert_eq!(l.find_bucket(0.0206), 2);
        assert!(l.bucket_start(l.buckets - 1) >= 1000.0);
        assert!(l.bucket_start(l.buckets - 2) < 1000.0);
    }

    #[test]
    fn percentile_is_the_end_of_the_bucket() {
        let mut h = Histogram::new(cpu_layout());
        for _ in 0..9 {
            h.add(0.1, 1.0);
        }
        h.add(1.0, 1.0);
        let l = cpu_layout();
        assert_eq!(h.percentile(0.9), l.bucket_start(l.find_bucket(0.1) + 1));
        assert_eq!(h.percentile(1.0), l.bucket_start(l.find_bucket(1.0) + 1));
        assert_eq!(Histogram::new(l).percentile(0.9), 0.0);
    }

    #[test]
    fn target_is_p90_plus_15_percent_with_pod_minimums() {
        // Flat 0.5 cores and 1 GiB: p90 lands on a bucket end ≤ 5 % above.
        let u = flat_usage(14, 0.5, 1024.0);
        let e = estimate(&history(&u, 14, &[])).expect("estimate");
        let cpu = e.target.0.cores();
        assert!((0.575..=0.575 * 1.05 + 0.001).contains(&cpu), "{cpu}");
        let mem = e.target.1.as_f64() / (1u64 << 30) as f64;
        assert!((1.15..=1.15 * 1.05 + 0.01).contains(&mem), "{mem}");
        // Nearly idle: the pod minimums, 25m and 250 MiB.
        let idle = flat_usage(14, 0.001, 20.0);
        let e = estimate(&history(&idle, 14, &[])).expect("estimate");
        assert_eq!(e.target, (MilliCores(25), Bytes::mib(250)));
    }

    /// VPA's target for a memory peak `v`: the end of its bucket, + 15 %.
    fn memory_target(v: f64) -> Bytes {
        let l = memory_layout();
        Bytes::from_f64(l.bucket_start(l.find_bucket(v) + 1) * 1.15)
    }

    #[test]
    fn an_oom_kill_bumps_memory_by_20_percent_or_100_mib() {
        let u = flat_usage(14, 0.5, 1000.0);
        let at = u.t(u.len() - 2);
        // Killed at a 2 GiB request: max(2 GiB × 1.2, 2 GiB + 100 MiB) = 2.4 GiB.
        let kill = OomKill {
            t: at,
            replica: 0,
            memory_limit: Bytes::gib(2),
            memory_request: Some(Bytes::gib(2)),
        };
        let e = estimate(&history(&u, 14, &[kill])).expect("estimate");
        assert_eq!(e.target.1, memory_target(2.4 * Bytes::GIB as f64));
        // A small container: +100 MiB wins over +20 % (300 MiB → 400 MiB).
        let kill = OomKill {
            memory_request: Some(Bytes::mib(300)),
            memory_limit: Bytes::mib(300),
            ..kill
        };
        let small = flat_usage(14, 0.5, 100.0);
        let e = estimate(&history(&small, 14, &[kill])).expect("estimate");
        assert_eq!(e.target.1, memory_target(400.0 * Bytes::MIB as f64));
        // The kill counts from the higher of the request and the day's peak.
        let busy = flat_usage(14, 0.5, 900.0);
        let e = estimate(&history(&busy, 14, &[kill])).expect("estimate");
        assert_eq!(e.target.1, memory_target(900.0 * 1.2 * Bytes::MIB as f64));
    }

    #[test]
    fn memory_is_the_p90_of_daily_peaks_over_8_days() {
        // A 4 GiB spike 10 days ago is outside the 8 intervals; one 5 days
        // ago weighs 1/32 of the latest day's peak and stays under the p90.
        let mut u = flat_usage(14, 0.2, 500.0);
        let spike = |u: &mut super::super::usage::WorkloadUsage, day: i64| {
            let i = u.index_after(day * DAY_S + 3600);
            u.replicas[0].memory_bytes[i] = 4096.0 * Bytes::MIB as f32;
        };
        spike(&mut u, 4);
        let e = estimate(&history(&u, 14, &[])).expect("estimate");
        assert!(e.target.1 < Bytes::mib(700), "{}", e.target.1);
        spike(&mut u, 8);
        let e = estimate(&history(&u, 14, &[])).expect("estimate");
        assert!(e.target.1 < Bytes::mib(700), "{}", e.target.1);
        spike(&mut u, 13);
        let e = estimate(&history(&u, 14, &[])).expect("estimate");
        assert!(
            e.target.1 > Bytes::gib(4),
            "the latest day weighs most: {}",
            e.target.1
        );
    }

    #[test]
    fn limits_keep_the_template_ratio() {
        let e = Estimate {
            target: (MilliCores(300), Bytes::mib(600)),
            lower: (MilliCores(200), Bytes::mib(500)),
            upper: (MilliCores(400), Bytes::mib(700)),
        };
        let template = Resources {
            cpu_request: Some(MilliCores(500)),
            cpu_limit: Some(MilliCores(1000)),
            memory_request: Some(Bytes::mib(512)),
            memory_limit: Some(Bytes::mib(1024)),
        };
        let r = resources(&e, &template);
        assert_eq!(r.cpu_limit, Some(MilliCores(600)));
        assert_eq!(r.memory_limit, Some(Bytes::mib(1200)));
        let no_limits = Resources {
            cpu_limit: None,
            memory_limit: None,
            ..template
        };
        assert_eq!(resources(&e, &no_limits).cpu_limit, None);
    }

    #[test]
    fn the_updater_waits_12_hours_unless_out_of_bounds_or_oom() {
        let e = Estimate {
            target: (MilliCores(300), Bytes::mib(600)),
            lower: (MilliCores(200), Bytes::mib(500)),
            upper: (MilliCores(400), Bytes::mib(700)),
        };
        let within = Resources {
            cpu_request: Some(MilliCores(380)),
            memory_request: Some(Bytes::mib(600)),
            ..Resources::default()
        };
        assert!(!updater_evicts(&e, &within, 3600, None));
        assert!(
            updater_evicts(&e, &within, 13 * 3600, None),
            "27 % off after 12 h"
        );
        assert!(updater_evicts(&e, &within, 3600, Some(300)), "quick OOM");
        let outside = Resources {
            cpu_request: Some(MilliCores(2000)),
            ..within
        };
        assert!(updater_evicts(&e, &outside, 60, None));
        let on_target = Resources {
            cpu_request: Some(MilliCores(300)),
            memory_request: Some(Bytes::mib(600)),
            ..Resources::default()
        };
        assert!(!updater_evicts(&e, &on_target, 30 * 3600, None));
    }

    #[test]
    fn cpu_samples_weigh_by_the_request() {
        // The same usage recorded under a 4-core request outweighs the part
        // recorded under 0.1 core: a request change shifts the histogram.
        let mut u = flat_usage(8, 0.1, 200.0);
        let half = u.len() / 2;
        for v in &mut u.replicas[0].cpu_cores[..half] {
            *v = 2.0;
        }
        let mut h: History<'_> = history(&u, 8, &[]);
        let big = Resources {
            cpu_request: Some(MilliCores(4000)),
            ..u.provisioned
        };
        let small = Resources {
            cpu_request: Some(MilliCores(100)),
            ..u.provisioned
        };
        let timeline = [(0, big), (half, small)];
        h.timeline = &timeline;
        let e = estimate(&h).expect("estimate");
        assert!(e.target.0 > MilliCores(2000), "{}", e.target.0);
    }
}
