//! The usage every recommender is trained and scored on: per workload, per
//! replica, one CPU and one memory value per step (5 minutes), from a
//! workload model or a real trace.
//!
//! A sample stands for the step that ends at [`WorkloadUsage::t`]: CPU is
//! the average over the step (what `rate()` over the step gives), memory the
//! highest working set of the step for models and the step's average for
//! the Bitbrains traces (the only figure they record). NaN is "no data".

use crate::domain::Resources;
use crate::sim::models::{ModelSpec, TRACE_STEP_S, Trace};
use crate::units::{Bytes, MilliCores};

/// The step every comparison runs at: the traces' own resolution, and the
/// resolution tailor reads CPU at by default (`history.resolution`).
pub const STEP_S: i64 = TRACE_STEP_S;

/// One replica's samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaUsage {
    /// Average cores used over each step; NaN where there is no data.
    pub cpu_cores: Vec<f32>,
    /// Working set in each step; NaN exactly where `cpu_cores` is.
    pub memory_bytes: Vec<f32>,
}

/// One workload (one container per pod) as the recommenders see it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadUsage {
    pub name: String,
    /// Model name or trace file the usage comes from.
    pub source: String,
    /// Unix time the first step starts at; the pods started then too.
    pub start: i64,
    pub step_s: i64,
    pub replicas: Vec<ReplicaUsage>,
    /// What the workload runs with before any recommender touches it.
    pub provisioned: Resources,
}

impl WorkloadUsage {
    /// Steps recorded.
    pub fn len(&self) -> usize {
        self.replicas.first().map_or(0, |r| r.cpu_cores.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// End of step `i` (the instant its sample is stamped with).
    pub fn t(&self, i: usize) -> i64 {
        self.start + (i as i64 + 1) * self.step_s
    }

    /// The first step ending after `offset_s` seconds from the start.
    pub fn index_after(&self, offset_s: i64) -> usize {
        (offset_s.max(0) / self.step_s) as usize
    }

    /// Every non-NaN CPU sample of `steps`, all replicas together.
    pub fn cpu_values(&self, steps: std::ops::Range<usize>) -> Vec<f64> {
        values(&self.replicas, steps, |r| &r.cpu_cores)
    }

    /// Every non-NaN memory sample of `steps`, all replicas together.
    pub fn memory_values(&self, steps: std::ops::Range<usize>) -> Vec<f64> {
        values(&self.replicas, steps, |r| &r.memory_bytes)
    }
}

fn values(
    replicas: &[ReplicaUsage],
    steps: std::ops::Range<usize>,
    of: impl Fn(&ReplicaUsage) -> &Vec<f32>,
) -> Vec<f64> {
    replicas
        .iter()
        .flat_map(|r| {
            let v = of(r);
            v[steps.start.min(v.len())..steps.end.min(v.len())].iter()
        })
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
        .collect()
}

/// One VM of a trace as a one-replica workload that starts at the size its
/// team provisioned (CPU request = vCPUs, memory request = limit =
/// provisioned memory, no CPU limit), as `models/trace-replay.yaml` does.
pub fn from_trace(trace: &Trace, name: &str) -> WorkloadUsage {
    WorkloadUsage {
        name: name.to_string(),
        source: trace.source.display().to_string(),
        start: trace.start_s,
        step_s: trace.step_s,
        replicas: vec![ReplicaUsage {
            cpu_cores: trace.cpu_cores.clone(),
            memory_bytes: trace.memory_bytes.clone(),
        }],
        provisioned: trace_provisioning(trace),
    }
}

/// What a VM of the trace was given, as Kubernetes resources.
pub fn trace_provisioning(trace: &Trace) -> Resources {
    let memory = Bytes::from_f64(trace.requested_memory_bytes);
    Resources {
        cpu_request: Some(MilliCores::from_cores(trace.requested_cpu_cores)),
        cpu_limit: None,
        memory_request: Some(memory),
        memory_limit: Some(memory),
    }
}

/// `duration_s` of a workload model's usage, `replicas` pods started at
/// `start`, at [`STEP_S`]: each step's CPU is the average of its minutes,
/// its memory the highest minute (a minute over the limit is an OOM kill).
pub fn from_model(
    name: &str,
    model: &ModelSpec,
    seed: u64,
    replicas: u32,
    provisioned: Resources,
    start: i64,
    duration_s: i64,
) -> WorkloadUsage {
    let steps = (duration_s / STEP_S).max(0) as usize;
    let minutes_per_step = (STEP_S / 60) as usize;
    let replicas_n = replicas.max(1);
    let replicas = (0..replicas_n)
        .map(|replica| {
            let mut cpu = Vec::with_capacity(steps);
            let mut memory = Vec::with_capacity(steps);
            for step in 0..steps {
                let (mut sum, mut n, mut peak) = (0.0, 0u32, f64::NAN);
                for minute in 0..minutes_per_step {
                    let age = ((step * minutes_per_step + minute) * 60) as i64;
                    let demand = model
                        .workload
                        .demand(seed, start + age, replica, replicas_n, age);
                    if demand.is_gap() {
                        continue;
                    }
                    sum += demand.cpu_cores;
                    n += 1;
                    peak = if peak.is_nan() {
                        demand.memory_bytes
                    } else {
                        peak.max(demand.memory_bytes)
                    };
                }
                if n == 0 {
                    cpu.push(f32::NAN);
                    memory.push(f32::NAN);
                } else {
                    cpu.push((sum / f64::from(n)) as f32);
                    memory.push(peak as f32);
                }
            }
            ReplicaUsage {
                cpu_cores: cpu,
                memory_bytes: memory,
            }
        })
        .collect();
    WorkloadUsage {
        name: name.to_string(),
        source: model.name.clone(),
        start,
        step_s: STEP_S,
        replicas,
        provisioned,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn trace_text() -> String {
        let mut text =
            "timestamp_s,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,mem_capacity_kb,mem_usage_kb\n"
                .to_string();
        for i in 0..4 {
            text.push_str(&format!(
                "{},2,5000,{},1048576,{}\n",
                i * 300,
                250 * i,
                1024 * i
            ));
        }
        text
    }

    #[test]
    fn a_trace_becomes_one_replica_at_its_provisioned_size() {
        let trace = Trace::parse(trace_text().as_bytes(), Path::new("vm-007.csv")).expect("parses");
        let w = from_trace(&trace, "vm-007");
        assert_eq!(w.len(), 4);
        assert_eq!(w.t(0), 300);
        assert_eq!(w.provisioned.cpu_request, Some(MilliCores(2000)));
        assert_eq!(w.provisioned.memory_limit, Some(Bytes::gib(1)));
        assert_eq!(w.provisioned.cpu_limit, None);
        // 250 MHz of 2 × 2500 MHz cores is 0.1 cores.
        let cpu = w.cpu_values(1..2);
        assert!((cpu[0] - 0.1).abs() < 1e-6, "{cpu:?}");
        assert_eq!(w.memory_values(3..4), vec![3.0 * 1024.0 * 1024.0]);
    }
}
