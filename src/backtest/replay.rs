//! Counting what two sets of values (the ones at T, the recommended ones)
//! would have met, sample by sample, while the replay's responses are
//! decoded. Pure: samples in, [`ContainerReplay`]s out.
//!
//! A CPU sample is the average rate over one step, so time above a value is
//! counted in whole steps and bursts shorter than a step are smoothed away:
//! it is a lower bound. A memory sample is the peak working set over one
//! step, so no peak is missed; consecutive samples above the limit in one
//! pod count as one would-be OOM kill (after a kill the container restarts,
//! and what it would have done next is not in the data).

use std::collections::BTreeMap;

use super::{ContainerReplay, Exposure};
use crate::domain::{ContainerRef, Resources};

/// One container to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayTarget {
    pub target: ContainerRef,
    /// Values at T.
    pub current: Resources,
    pub recommended: Resources,
    /// What one pod's recommended requests save per hour against the
    /// current ones (negative: cost more).
    pub saving_per_pod_hour_usd: f64,
}

/// Running counts for one set of values.
#[derive(Clone, Debug, Default)]
struct Counts {
    memory_over_limit: u64,
    memory_over_request: u64,
    cpu_over_limit_steps: u64,
    cpu_over_request_steps: u64,
    /// Per pod, the steps whose memory peak was above the limit, to count
    /// runs when every chunk is in (chunks arrive in any order).
    over_limit_at: BTreeMap<String, Vec<i64>>,
}

#[derive(Clone, Debug)]
struct Running {
    spec: ReplayTarget,
    cpu_samples: u64,
    memory_samples: u64,
    cpu_max_millicores: Option<f64>,
    memory_max_bytes: Option<f64>,
    current: Counts,
    recommended: Counts,
    observed_oom_kills: u32,
    observed_restarts: u32,
}

/// Sample-by-sample counts for every container of a replay.
#[derive(Clone, Debug)]
pub struct Replay {
    step_s: i64,
    containers: Vec<Running>,
}

fn above(value: f64, threshold: Option<f64>) -> bool {
    threshold.is_some_and(|t| value > t)
}

impl Replay {
    pub fn new(step_s: i64, targets: Vec<ReplayTarget>) -> Replay {
        Replay {
            step_s: step_s.max(1),
            containers: targets
                .into_iter()
                .map(|spec| Running {
                    spec,
                    cpu_samples: 0,
                    memory_samples: 0,
                    cpu_max_millicores: None,
                    memory_max_bytes: None,
                    current: Counts::default(),
                    recommended: Counts::default(),
                    observed_oom_kills: 0,
                    observed_restarts: 0,
                })
                .collect(),
        }
    }

    /// CPU samples (cores, the average over the step ending at `t`) of one
    /// pod of container `index`. NaN and negative samples are skipped.
    pub fn add_cpu(&mut self, index: usize, samples: &[(i64, f64)]) {
        let Some(c) = self.containers.get_mut(index) else {
            return;
        };
        for &(_, cores) in samples {
            if !cores.is_finite() || cores < 0.0 {
                continue;
            }
            let millicores = cores * 1000.0;
            c.cpu_samples += 1;
            c.cpu_max_millicores = Some(
                c.cpu_max_millicores
                    .map_or(millicores, |m| m.max(millicores)),
            );
            for (counts, values) in [
                (&mut c.current, &c.spec.current),
                (&mut c.recommended, &c.spec.recommended),
            ] {
                if above(millicores, values.cpu_limit.map(|m| m.0 as f64)) {
                    counts.cpu_over_limit_steps += 1;
                }
                if above(millicores, values.cpu_request.map(|m| m.0 as f64)) {
                    counts.cpu_over_request_steps += 1;
                }
            }
        }
    }

    /// Memory samples (bytes, the peak working set over the step ending at
    /// `t`) of pod `pod` of container `index`.
    pub fn add_memory(&mut self, index: usize, pod: &str, samples: &[(i64, f64)]) {
        let Some(c) = self.containers.get_mut(index) else {
            return;
        };
        for &(t, bytes) in samples {
            if !bytes.is_finite() || bytes < 0.0 {
                continue;
            }
            c.memory_samples += 1;
            c.memory_max_bytes = Some(c.memory_max_bytes.map_or(bytes, |m| m.max(bytes)));
            for (counts, values) in [
                (&mut c.current, &c.spec.current),
                (&mut c.recommended, &c.spec.recommended),
            ] {
                if above(bytes, values.memory_limit.map(|b| b.0 as f64)) {
                    counts.memory_over_limit += 1;
                    counts
                        .over_limit_at
                        .entry(pod.to_string())
                        .or_default()
                        .push(t);
                }
                if above(bytes, values.memory_request.map(|b| b.0 as f64)) {
                    counts.memory_over_request += 1;
                }
            }
        }
    }

    /// Restarts and OOM kills that really happened to one pod of container
    /// `index` during the replay.
    pub fn add_observed(&mut self, index: usize, restarts: u32, oom_kills: u32) {
        if let Some(c) = self.containers.get_mut(index) {
            c.observed_restarts += restarts;
            c.observed_oom_kills += oom_kills;
        }
    }

    /// The counts, one [`ContainerReplay`] per target in the order given.
    pub fn finish(self) -> Vec<ContainerReplay> {
        let step_s = self.step_s;
        self.containers
            .into_iter()
            .map(|c| {
                let pod_hours = c.cpu_samples as f64 * step_s as f64 / 3600.0;
                ContainerReplay {
                    current: exposure(&c.current, &c.spec.current, step_s),
                    recommended: exposure(&c.recommended, &c.spec.recommended, step_s),
                    target: c.spec.target,
                    cpu_samples: c.cpu_samples,
                    memory_samples: c.memory_samples,
                    cpu_max_millicores: c.cpu_max_millicores,
                    memory_max_bytes: c.memory_max_bytes,
                    observed_oom_kills: c.observed_oom_kills,
                    observed_restarts: c.observed_restarts,
                    pod_hours,
                    saved_usd: pod_hours * c.spec.saving_per_pod_hour_usd,
                }
            })
            .collect()
    }
}

/// Runs of consecutive steps (`step_s` apart) in each pod's over-limit
/// samples.
fn runs(over_limit_at: &BTreeMap<String, Vec<i64>>, step_s: i64) -> u64 {
    over_limit_at
        .values()
        .map(|times| {
            let mut times = times.clone();
            times.sort_unstable();
            times.dedup();
            times
                .iter()
                .enumerate()
                .filter(|&(i, &t)| i == 0 || t - times[i - 1] > step_s)
                .count() as u64
        })
        .sum()
}

fn exposure(counts: &Counts, values: &Resources, step_s: i64) -> Exposure {
    let seconds = |steps: u64| steps as i64 * step_s;
    Exposure {
        memory_over_limit_samples: values.memory_limit.map(|_| counts.memory_over_limit),
        oom_kills: values
            .memory_limit
            .map(|_| runs(&counts.over_limit_at, step_s)),
        memory_over_request_samples: values.memory_request.map(|_| counts.memory_over_request),
        cpu_over_limit_seconds: values
            .cpu_limit
            .map(|_| seconds(counts.cpu_over_limit_steps)),
        cpu_over_request_seconds: values
            .cpu_request
            .map(|_| seconds(counts.cpu_over_request_steps)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{WorkloadKind, WorkloadRef};
    use crate::units::{Bytes, MilliCores};

    const MIB: f64 = 1_048_576.0;

    fn target(current: Resources, recommended: Resources) -> ReplayTarget {
        ReplayTarget {
            target: ContainerRef {
                workload: WorkloadRef {
                    namespace: "shop".into(),
                    kind: WorkloadKind::Deployment,
                    name: "web".into(),
                },
                container: "app".into(),
            },
            current,
            recommended,
            saving_per_pod_hour_usd: 0.5,
        }
    }

    fn values(cpu: u64, cpu_limit: Option<u64>, mem_mib: u64, limit_mib: Option<u64>) -> Resources {
        Resources {
            cpu_request: Some(MilliCores(cpu)),
            cpu_limit: cpu_limit.map(MilliCores),
            memory_request: Some(Bytes::mib(mem_mib)),
            memory_limit: limit_mib.map(Bytes::mib),
        }
    }

    #[test]
    fn memory_runs_per_pod_are_would_be_oom_kills() {
        let mut replay = Replay::new(
            300,
            vec![target(
                values(1000, None, 1024, Some(1024)),
                values(200, None, 256, Some(300)),
            )],
        );
        // Pod a: over 300Mi at 600, 900 (one run) and 1800 (another);
        // its chunks arrive out of order.
        replay.add_memory(0, "a", &[(1500, 100.0 * MIB), (1800, 400.0 * MIB)]);
        replay.add_memory(
            0,
            "a",
            &[
                (300, 200.0 * MIB),
                (600, 310.0 * MIB),
                (900, 350.0 * MIB),
                (1200, 299.0 * MIB),
            ],
        );
        // Pod b: over at 600 only: its own run, though at the same time as a's.
        replay.add_memory(0, "b", &[(600, 301.0 * MIB), (900, f64::NAN)]);
        let [c] = <[ContainerReplay; 1]>::try_from(replay.finish()).expect("one container");
        assert_eq!(c.memory_samples, 7, "the NaN is not a sample");
        assert_eq!(c.recommended.memory_over_limit_samples, Some(4));
        assert_eq!(c.recommended.oom_kills, Some(3));
        // Above the 256Mi request: 400, 310, 350, 299 and 301.
        assert_eq!(c.recommended.memory_over_request_samples, Some(5));
        assert_eq!(c.current.memory_over_limit_samples, Some(0));
        assert_eq!(c.current.oom_kills, Some(0));
        assert_eq!(c.memory_max_bytes, Some(400.0 * MIB));
    }

    #[test]
    fn cpu_time_above_is_whole_steps_and_unset_values_count_nothing() {
        let mut replay = Replay::new(
            300,
            vec![target(
                values(1000, Some(2000), 512, None),
                values(250, None, 256, None),
            )],
        );
        // 0.2, 0.3, 2.5 cores: above 250m twice, above the 2-core limit once.
        replay.add_cpu(0, &[(300, 0.2), (600, 0.3), (900, 2.5), (1200, -1.0)]);
        let c = replay.finish().remove(0);
        assert_eq!(c.cpu_samples, 3);
        assert_eq!(c.recommended.cpu_over_request_seconds, Some(600));
        assert_eq!(c.recommended.cpu_over_limit_seconds, None, "no limit");
        assert_eq!(c.current.cpu_over_request_seconds, Some(300));
        assert_eq!(c.current.cpu_over_limit_seconds, Some(300));
        assert_eq!(c.recommended.memory_over_limit_samples, None);
        assert_eq!(c.recommended.oom_kills, None);
        // Three 5-minute pod-steps = 0.25 pod-hours at $0.50 saved per hour.
        assert!((c.pod_hours - 0.25).abs() < 1e-12);
        assert!((c.saved_usd - 0.125).abs() < 1e-12);
    }

    #[test]
    fn exposures_add_up_field_by_field() {
        let mut a = Exposure {
            memory_over_limit_samples: Some(2),
            oom_kills: None,
            cpu_over_request_seconds: Some(300),
            ..Exposure::default()
        };
        a.add(&Exposure {
            memory_over_limit_samples: Some(3),
            oom_kills: Some(1),
            cpu_over_request_seconds: None,
            ..Exposure::default()
        });
        assert_eq!(a.memory_over_limit_samples, Some(5));
        assert_eq!(a.oom_kills, Some(1));
        assert_eq!(a.cpu_over_request_seconds, Some(300));
        assert_eq!(a.cpu_over_limit_seconds, None);
    }
}
