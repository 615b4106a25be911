//! Usage archetypes: what one replica asks for during one simulated minute.
//!
//! Every value is a pure function of `(seed, t, replica, replicas,
//! pod_age_s)`. Noise comes from a counter-based hash of `(seed, replica,
//! minute, stream)`, never from a stateful RNG, so the simulator may call
//! any minute in any order, any number of times, and get the same answer.
//! The per-minute functions allocate nothing and cost a few dozen ns.

use std::sync::Arc;

use serde::Deserialize;

use super::de;
use super::trace::Trace;

const DAY_S: i64 = 86_400;
const HOUR_S: f64 = 3_600.0;
/// 1970-01-01 was a Thursday: day 0 is weekday index 4 (0 = Sunday).
const EPOCH_WEEKDAY: i64 = 4;

/// What one replica asks for during one simulated minute.
///
/// Within the minute CPU demand is two-level: `cpu_burst_cores` for
/// `burst_fraction` of the minute and a lower level the rest of the time, so
/// that the minute's average is `cpu_cores`. A trace gap is a `Demand` whose
/// values are all NaN ([`Demand::is_gap`]): the simulator writes no sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    /// Average over the minute.
    pub cpu_cores: f64,
    /// Peak demand inside the minute, ≥ `cpu_cores`: microbursts hide here.
    pub cpu_burst_cores: f64,
    /// Share of the minute spent at the burst level, 0..=1.
    pub burst_fraction: f64,
    /// Working set.
    pub memory_bytes: f64,
    /// Requests this replica serves (0 for workloads without traffic).
    pub requests_per_s: f64,
}

impl Demand {
    /// No data for this minute (a hole in a replayed trace).
    pub const GAP: Demand = Demand {
        cpu_cores: f64::NAN,
        cpu_burst_cores: f64::NAN,
        burst_fraction: f64::NAN,
        memory_bytes: f64::NAN,
        requests_per_s: f64::NAN,
    };

    /// True when the minute has no data: the simulator writes no sample.
    pub fn is_gap(&self) -> bool {
        self.cpu_cores.is_nan()
    }

    /// CPU demand outside the burst, so that
    /// `burst_fraction × burst + (1 − burst_fraction) × base = average`.
    pub fn cpu_base_cores(&self) -> f64 {
        if self.burst_fraction >= 1.0 {
            return self.cpu_burst_cores;
        }
        let base = (self.cpu_cores - self.burst_fraction * self.cpu_burst_cores)
            / (1.0 - self.burst_fraction);
        base.max(0.0)
    }

    /// A demand whose burst is `ratio × average` for `fraction` of the minute.
    #[inline]
    fn shaped(cpu_cores: f64, burst: (f64, f64), memory_bytes: f64, requests_per_s: f64) -> Demand {
        Demand {
            cpu_cores,
            cpu_burst_cores: cpu_cores * burst.0,
            burst_fraction: burst.1,
            memory_bytes,
            requests_per_s,
        }
    }
}

/// Usage archetypes (DESIGN §9). The YAML names one per model file, as a
/// single key: `workload: { diurnal: { … } }`.
#[derive(Clone, Debug)]
pub enum WorkloadModel {
    /// Web service: daily and weekly pattern, traffic shared across replicas.
    Diurnal(Diurnal),
    /// Latency-sensitive: low average CPU, short bursts the average hides.
    Microburst(Microburst),
    /// JVM: heap grows toward its maximum (GC sawtooth), startup CPU spike.
    Jvm(Jvm),
    /// Cron/batch: busy during a daily window, idle otherwise.
    Batch(Batch),
    /// Memory grows with pod age, without bound, until a restart.
    Leak(Leak),
    /// Nearly nothing.
    Idle(Idle),
    /// Replays one VM of a real usage trace.
    Trace(TraceReplay),
}

impl WorkloadModel {
    /// What replica `replica` (of `replicas`) asks for during the minute
    /// that contains `t` (Unix seconds, UTC), its pod being `pod_age_s` old.
    #[inline]
    pub fn demand(&self, seed: u64, t: i64, replica: u32, replicas: u32, pod_age_s: i64) -> Demand {
        // One value per minute, whichever second of it is asked for.
        let t = t - t.rem_euclid(60);
        let noise = Noise::new(seed, replica, t);
        let replicas = f64::from(replicas.max(1));
        match self {
            WorkloadModel::Diurnal(m) => m.demand(&noise, t, replicas),
            WorkloadModel::Microburst(m) => m.demand(&noise, replicas),
            WorkloadModel::Jvm(m) => m.demand(&noise, replicas, pod_age_s),
            WorkloadModel::Batch(m) => m.demand(&noise, t),
            WorkloadModel::Leak(m) => m.demand(&noise, replicas, pod_age_s),
            WorkloadModel::Idle(m) => m.demand(&noise, replicas),
            WorkloadModel::Trace(m) => m.demand(t),
        }
    }

    /// The archetype's name as the YAML spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            WorkloadModel::Diurnal(_) => "diurnal",
            WorkloadModel::Microburst(_) => "microburst",
            WorkloadModel::Jvm(_) => "jvm",
            WorkloadModel::Batch(_) => "batch",
            WorkloadModel::Leak(_) => "leak",
            WorkloadModel::Idle(_) => "idle",
            WorkloadModel::Trace(_) => "trace",
        }
    }
}

/// A minute without bursts: `(burst_ratio, burst_fraction)`.
const FLAT: (f64, f64) = (1.0, 0.0);

pub(super) fn one() -> f64 {
    1.0
}

/// Web service. Traffic for the whole workload follows a daily cosine that
/// peaks at `peak_hour` (UTC) and bottoms out at `trough_ratio × peak`
/// twelve hours later; on Saturdays and Sundays it is `weekend_ratio` of
/// that. Replicas share it evenly (± noise: load balancers are not exact);
/// each replica's CPU and memory follow its share.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diurnal {
    /// Requests per second to the whole workload at the weekday peak.
    pub peak_requests_per_s: f64,
    /// Traffic at the daily trough over traffic at the peak, 0..=1.
    pub trough_ratio: f64,
    /// Hour of the UTC day when traffic peaks, 0..24 (fractions allowed).
    pub peak_hour: f64,
    /// Weekend traffic over weekday traffic at the same hour, ≥ 0.
    pub weekend_ratio: f64,
    /// CPU a replica uses serving nothing (YAML: a quantity, `50m`).
    #[serde(rename = "cpu_base", deserialize_with = "de::cores")]
    pub cpu_base_cores: f64,
    /// CPU per request/s, i.e. CPU-seconds per request (`2m`: 2 ms each).
    #[serde(rename = "cpu_per_rps", deserialize_with = "de::cores")]
    pub cpu_cores_per_rps: f64,
    /// Working set serving nothing (`256Mi`).
    #[serde(rename = "memory_base", deserialize_with = "de::bytes")]
    pub memory_base_bytes: f64,
    /// Working set per request/s in flight (`512Ki`).
    #[serde(rename = "memory_per_rps", default, deserialize_with = "de::bytes")]
    pub memory_bytes_per_rps: f64,
    /// Relative per-replica, per-minute noise on traffic, 0..1 (`0.1`: ±10 %).
    #[serde(default)]
    pub noise: f64,
    /// Burst level over the minute's average, ≥ 1 (1: a flat minute).
    #[serde(default = "one")]
    pub burst_ratio: f64,
    /// Share of the minute at the burst level, 0..=1; `burst_ratio ×
    /// burst_fraction` ≤ 1 (a burst cannot hold more than the minute's work).
    #[serde(default)]
    pub burst_fraction: f64,
}

impl Diurnal {
    /// Traffic to the whole workload at `t`, without noise.
    pub fn requests_per_s(&self, t: i64) -> f64 {
        let day = t.div_euclid(DAY_S);
        let hour = t.rem_euclid(DAY_S) as f64 / HOUR_S;
        let wave = (1.0 + ((hour - self.peak_hour) / 24.0 * std::f64::consts::TAU).cos()) / 2.0;
        let level = self.trough_ratio + (1.0 - self.trough_ratio) * wave;
        let weekday = (day + EPOCH_WEEKDAY).rem_euclid(7);
        let week = if weekday == 0 || weekday == 6 {
            self.weekend_ratio
        } else {
            1.0
        };
        self.peak_requests_per_s * level * week
    }

    #[inline]
    fn demand(&self, noise: &Noise, t: i64, replicas: f64) -> Demand {
        let rps = self.requests_per_s(t) / replicas * noise.jitter(0, self.noise);
        let cpu = self.cpu_base_cores + self.cpu_cores_per_rps * rps;
        let memory = self.memory_base_bytes + self.memory_bytes_per_rps * rps;
        Demand::shaped(cpu, (self.burst_ratio, self.burst_fraction), memory, rps)
    }
}

/// Latency-sensitive service whose CPU comes in short bursts: the average is
/// low, the burst is several cores-worth higher for a small share of every
/// minute. A CPU limit sized from the average throttles every burst.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Microburst {
    /// Average CPU over a minute (`150m`); noise moves it ± `noise`.
    #[serde(rename = "cpu_average", deserialize_with = "de::cores")]
    pub cpu_average_cores: f64,
    /// CPU during a burst (`900m`); noise only raises it, by up to `noise`.
    #[serde(rename = "cpu_burst", deserialize_with = "de::cores")]
    pub cpu_burst_cores: f64,
    /// Share of each minute spent bursting, 0..1 (`0.05`: 3 s a minute).
    pub burst_fraction: f64,
    /// Requests per second to the whole workload.
    pub requests_per_s: f64,
    /// Working set, flat (`200Mi`).
    #[serde(rename = "memory", deserialize_with = "de::bytes")]
    pub memory_bytes: f64,
    /// Relative per-minute noise, 0..1.
    #[serde(default)]
    pub noise: f64,
}

impl Microburst {
    #[inline]
    fn demand(&self, noise: &Noise, replicas: f64) -> Demand {
        let cpu = self.cpu_average_cores * noise.jitter(0, self.noise);
        let burst = self.cpu_burst_cores * (1.0 + self.noise * noise.unit(1));
        Demand {
            cpu_cores: cpu,
            cpu_burst_cores: burst.max(cpu),
            burst_fraction: self.burst_fraction,
            memory_bytes: self.memory_bytes,
            requests_per_s: self.requests_per_s / replicas * noise.jitter(2, self.noise),
        }
    }
}

/// JVM service. CPU is `startup_cpu` for the first `startup_duration` of a
/// pod's life (class loading, JIT), then `cpu`. The heap's high-water mark
/// rises from `heap_initial` toward `heap_max` with time constant
/// `heap_growth_time`; within each `gc_period` the heap fills linearly from
/// `(1 − gc_drop)` of that mark up to it, then a collection drops it again.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jvm {
    /// Steady-state CPU (`300m`).
    #[serde(rename = "cpu", deserialize_with = "de::cores")]
    pub cpu_cores: f64,
    /// CPU while the pod warms up (`1500m`).
    #[serde(rename = "startup_cpu", deserialize_with = "de::cores")]
    pub startup_cpu_cores: f64,
    /// How long the warm-up lasts after a pod starts (`5m`).
    #[serde(rename = "startup_duration", deserialize_with = "de::seconds_i64")]
    pub startup_s: i64,
    /// Heap in use right after start (`256Mi`).
    #[serde(rename = "heap_initial", deserialize_with = "de::bytes")]
    pub heap_initial_bytes: f64,
    /// The heap's ceiling (`-Xmx`, `768Mi`): approached, never passed.
    #[serde(rename = "heap_max", deserialize_with = "de::bytes")]
    pub heap_max_bytes: f64,
    /// Time constant of the approach to `heap_max` (`2h`).
    #[serde(rename = "heap_growth_time", deserialize_with = "de::seconds_f64")]
    pub heap_growth_s: f64,
    /// Time between major collections (`20m`).
    #[serde(rename = "gc_period", deserialize_with = "de::seconds_i64")]
    pub gc_period_s: i64,
    /// Share of the heap a collection frees, 0..1.
    pub gc_drop: f64,
    /// Metaspace, thread stacks, code cache, direct buffers (`200Mi`).
    #[serde(rename = "non_heap", deserialize_with = "de::bytes")]
    pub non_heap_bytes: f64,
    /// Requests per second to the whole workload.
    #[serde(default)]
    pub requests_per_s: f64,
    /// Relative per-minute noise on CPU, 0..1.
    #[serde(default)]
    pub noise: f64,
    /// Burst level over the minute's average, ≥ 1 (1: a flat minute).
    #[serde(default = "one")]
    pub burst_ratio: f64,
    /// Share of the minute at the burst level, 0..=1; `burst_ratio ×
    /// burst_fraction` ≤ 1 (a burst cannot hold more than the minute's work).
    #[serde(default)]
    pub burst_fraction: f64,
}

impl Jvm {
    /// Heap plus non-heap at a pod age, without noise.
    pub fn memory_bytes(&self, pod_age_s: i64) -> f64 {
        let age = pod_age_s.max(0);
        let reach = 1.0 - (-(age as f64) / self.heap_growth_s).exp();
        let mark =
            self.heap_initial_bytes + (self.heap_max_bytes - self.heap_initial_bytes) * reach;
        let phase = age.rem_euclid(self.gc_period_s.max(1)) as f64 / self.gc_period_s.max(1) as f64;
        self.non_heap_bytes + mark * (1.0 - self.gc_drop * (1.0 - phase))
    }

    #[inline]
    fn demand(&self, noise: &Noise, replicas: f64, pod_age_s: i64) -> Demand {
        let level = if pod_age_s < self.startup_s {
            self.startup_cpu_cores
        } else {
            self.cpu_cores
        };
        let cpu = level * noise.jitter(0, self.noise);
        let rps = self.requests_per_s / replicas * noise.jitter(1, self.noise);
        Demand::shaped(
            cpu,
            (self.burst_ratio, self.burst_fraction),
            self.memory_bytes(pod_age_s),
            rps,
        )
    }
}

/// Cron/batch worker: busy for `window` starting `window_start` after
/// midnight UTC every day (a window may cross midnight), idle otherwise. No
/// request traffic.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// When the busy window opens, as time after midnight UTC (`2h`).
    #[serde(rename = "window_start", deserialize_with = "de::seconds_i64")]
    pub window_start_s: i64,
    /// How long it stays busy (`1h`).
    #[serde(rename = "window", deserialize_with = "de::seconds_i64")]
    pub window_s: i64,
    #[serde(rename = "busy_cpu", deserialize_with = "de::cores")]
    pub busy_cpu_cores: f64,
    #[serde(rename = "idle_cpu", deserialize_with = "de::cores")]
    pub idle_cpu_cores: f64,
    #[serde(rename = "busy_memory", deserialize_with = "de::bytes")]
    pub busy_memory_bytes: f64,
    #[serde(rename = "idle_memory", deserialize_with = "de::bytes")]
    pub idle_memory_bytes: f64,
    /// Relative per-minute noise on busy CPU, 0..1.
    #[serde(default)]
    pub noise: f64,
    /// Burst level over the minute's average, ≥ 1 (1: a flat minute).
    #[serde(default = "one")]
    pub burst_ratio: f64,
    /// Share of the minute at the burst level, 0..=1; `burst_ratio ×
    /// burst_fraction` ≤ 1 (a burst cannot hold more than the minute's work).
    #[serde(default)]
    pub burst_fraction: f64,
}

impl Batch {
    /// True when `t` falls inside the daily busy window.
    pub fn is_busy(&self, t: i64) -> bool {
        let since_open = (t.rem_euclid(DAY_S) - self.window_start_s).rem_euclid(DAY_S);
        since_open < self.window_s
    }

    #[inline]
    fn demand(&self, noise: &Noise, t: i64) -> Demand {
        if self.is_busy(t) {
            let cpu = self.busy_cpu_cores * noise.jitter(0, self.noise);
            Demand::shaped(
                cpu,
                (self.burst_ratio, self.burst_fraction),
                self.busy_memory_bytes,
                0.0,
            )
        } else {
            Demand::shaped(self.idle_cpu_cores, FLAT, self.idle_memory_bytes, 0.0)
        }
    }
}

/// Memory leak: the working set grows by `growth_per_hour` for every hour
/// the pod has lived, without bound. Only a new pod (age 0) resets it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leak {
    /// Working set of a new pod (`200Mi`).
    #[serde(rename = "memory_initial", deserialize_with = "de::bytes")]
    pub memory_initial_bytes: f64,
    /// Growth per hour of pod age (`20Mi`).
    #[serde(rename = "growth_per_hour", deserialize_with = "de::bytes")]
    pub memory_growth_bytes_per_hour: f64,
    #[serde(rename = "cpu", deserialize_with = "de::cores")]
    pub cpu_cores: f64,
    /// Requests per second to the whole workload.
    #[serde(default)]
    pub requests_per_s: f64,
    /// Relative per-minute noise on CPU, 0..1.
    #[serde(default)]
    pub noise: f64,
}

impl Leak {
    /// Working set at a pod age.
    pub fn memory_bytes(&self, pod_age_s: i64) -> f64 {
        self.memory_initial_bytes
            + self.memory_growth_bytes_per_hour * pod_age_s.max(0) as f64 / HOUR_S
    }

    #[inline]
    fn demand(&self, noise: &Noise, replicas: f64, pod_age_s: i64) -> Demand {
        let cpu = self.cpu_cores * noise.jitter(0, self.noise);
        let rps = self.requests_per_s / replicas * noise.jitter(1, self.noise);
        Demand::shaped(cpu, FLAT, self.memory_bytes(pod_age_s), rps)
    }
}

/// A workload that does nearly nothing: a forgotten admin tool, a sidecar
/// left behind after a migration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idle {
    #[serde(rename = "cpu", deserialize_with = "de::cores")]
    pub cpu_cores: f64,
    #[serde(rename = "memory", deserialize_with = "de::bytes")]
    pub memory_bytes: f64,
    #[serde(default)]
    pub requests_per_s: f64,
    #[serde(default)]
    pub noise: f64,
}

impl Idle {
    #[inline]
    fn demand(&self, noise: &Noise, replicas: f64) -> Demand {
        let cpu = self.cpu_cores * noise.jitter(0, self.noise);
        Demand::shaped(cpu, FLAT, self.memory_bytes, self.requests_per_s / replicas)
    }
}

/// Replays one VM of a real trace: simulated time `t` maps to sample
/// `(t − start) / step_s`, wrapping around at the end, each value held for
/// its whole step. Every replica replays the same VM (the VM was one
/// replica). A gap in the trace is a gap in the demand.
#[derive(Clone, Debug)]
pub struct TraceReplay {
    pub trace: Arc<Trace>,
    /// Simulated Unix time that maps to the trace's first sample. The YAML's
    /// `start`, or the trace's own first timestamp when it has none; a
    /// simulator may set it to its own start.
    pub start: i64,
    /// Requests per second per core used (CPU stands in for traffic, which
    /// the trace does not record); 0 for no traffic.
    pub requests_per_s_per_core: f64,
    pub burst_ratio: f64,
    pub burst_fraction: f64,
}

impl TraceReplay {
    #[inline]
    fn demand(&self, t: i64) -> Demand {
        let Some(i) = self.trace.index_at(t - self.start) else {
            return Demand::GAP;
        };
        let cpu = f64::from(self.trace.cpu_cores[i]);
        if cpu.is_nan() {
            return Demand::GAP;
        }
        let memory = f64::from(self.trace.memory_bytes[i]);
        Demand::shaped(
            cpu,
            (self.burst_ratio, self.burst_fraction),
            memory,
            cpu * self.requests_per_s_per_core,
        )
    }
}

/// Per-minute noise for one (seed, replica, minute): a counter-based hash,
/// so any minute can be asked for in any order.
pub(crate) struct Noise {
    key: u64,
}

impl Noise {
    #[inline]
    pub(crate) fn new(seed: u64, replica: u32, t: i64) -> Noise {
        let minute = t.div_euclid(60) as u64;
        let key = splitmix(splitmix(seed ^ 0x5EED_0F7A_170E_u64) ^ minute);
        Noise {
            key: splitmix(key ^ u64::from(replica).wrapping_mul(0xA076_1D64_78BD_642F)),
        }
    }

    /// Uniform in [0, 1) for one independent stream of this minute.
    #[inline]
    pub(crate) fn unit(&self, stream: u64) -> f64 {
        let x = splitmix(
            self.key
                .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `1 ± amplitude`, uniform.
    #[inline]
    pub(crate) fn jitter(&self, stream: u64, amplitude: f64) -> f64 {
        1.0 + amplitude * (2.0 * self.unit(stream) - 1.0)
    }
}

/// The splitmix64 finalizer: a cheap bijective mix with full avalanche.
#[inline]
fn splitmix(x: u64) -> u64 {
    let x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
