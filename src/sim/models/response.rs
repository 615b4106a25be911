//! Response models: how a workload's SLIs respond to the CPU and memory it is
//! given. One call per replica per simulated minute, so [`respond`] is a
//! handful of floating-point operations, with a fast path for the common
//! case (no limit in the way, idle node).
//!
//! The rules, and why, are in `docs/models.md`. In short:
//! - a CPU limit below the burst level throttles the burst: work that needed
//!   `burst` cores gets `limit`, so it takes `burst / limit` longer;
//! - average demand above the limit throttles the whole minute;
//! - on a contended node, demand above the request competes and slows by
//!   `contention × (demand − request) / request`;
//! - a percentile moves when the slowed requests are more than its tail
//!   (p99: more than 1 %, p95: more than 5 %);
//! - requests that a slowdown pushes past the timeout fail;
//! - memory demand above the memory limit is an OOM kill.

use serde::Deserialize;

use super::de;
use super::workload::Demand;
use crate::domain::Resources;

/// Share of requests above the p95 and above the p99.
const TAIL_P95: f64 = 0.05;
const TAIL_P99: f64 = 0.01;
/// ln 20 = −ln P(X > p95), and ln(ln 100 / ln 20) for the Weibull shape.
const LN_20: f64 = 2.995_732_273_553_991;
const LN_LN100_OVER_LN20: f64 = 0.429_990_925_442_952_6;
/// The smallest CPU share the kernel gives a container (2 cgroup shares ≈
/// 2 millicores): a container without a request competes from there.
const MIN_SHARE_CORES: f64 = 0.002;
/// Caps a slowdown so a starved container yields large, finite numbers.
const MAX_SLOWDOWN: f64 = 1_000.0;

/// How a workload's SLIs respond to what it is given.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseModel {
    /// p95 latency when the workload gets all the CPU it wants (YAML:
    /// `base_latency: 80ms`).
    #[serde(rename = "base_latency", deserialize_with = "de::seconds_f64")]
    pub base_latency_s: f64,
    /// p99 over p95 at rest, > 1 (`1.6`): how long the latency tail is. It
    /// also sets how fast the share of requests past the timeout grows.
    pub tail_ratio: f64,
    /// Errors with all the resources it wants (`0.001`: 0.1 %).
    pub base_error_ratio: f64,
    /// Share of a request's latency that stretches with CPU slowdown: 1 for
    /// CPU-bound handlers, lower when time goes to I/O (latency becomes
    /// `base × (1 + latency_sensitivity × (slowdown − 1))`).
    pub latency_sensitivity: f64,
    /// Client timeout: requests slower than this count as errors (`1s`).
    #[serde(rename = "timeout", deserialize_with = "de::seconds_f64")]
    pub timeout_s: f64,
    /// How long a replica serves nothing after an OOM kill (`30s`): the
    /// simulator restarts the pod and counts its requests as errors meanwhile.
    #[serde(rename = "restart_time", deserialize_with = "de::seconds_f64")]
    pub restart_s: f64,
}

/// What a replica is given: its container's CPU request and limit, memory
/// limit, and how busy its node is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Given {
    pub cpu_request_cores: Option<f64>,
    pub cpu_limit_cores: Option<f64>,
    pub memory_limit_bytes: Option<f64>,
    /// 0 = idle node, 1 = node fully booked: demand above the request
    /// competes with the neighbours for CPU.
    pub node_contention: f64,
}

impl Given {
    /// A container's resources on a node with the given contention.
    pub fn from_resources(resources: &Resources, node_contention: f64) -> Given {
        Given {
            cpu_request_cores: resources.cpu_request.map(|m| m.cores()),
            cpu_limit_cores: resources.cpu_limit.map(|m| m.cores()),
            memory_limit_bytes: resources.memory_limit.map(|b| b.as_f64()),
            node_contention,
        }
    }
}

/// One replica's SLIs and resource signals for one minute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Response {
    /// CPU actually used: `min(demand, limit)` (throttled work is delayed,
    /// not lost, so a burst above the limit still averages to the demand).
    pub cpu_used_cores: f64,
    /// Share of CFS periods throttled, 0..=1.
    pub throttled_ratio: f64,
    pub latency_p95_s: f64,
    pub latency_p99_s: f64,
    /// Share of requests that failed, 0..=1.
    pub error_ratio: f64,
    /// Memory demand exceeded the memory limit: the kernel killed the
    /// container; the simulator restarts the pod.
    pub oom_killed: bool,
}

impl Response {
    /// The response to a gap in the demand: nothing measured.
    pub const GAP: Response = Response {
        cpu_used_cores: f64::NAN,
        throttled_ratio: f64::NAN,
        latency_p95_s: f64::NAN,
        latency_p99_s: f64::NAN,
        error_ratio: f64::NAN,
        oom_killed: false,
    };
}

impl ResponseModel {
    /// Latency at a slowdown `k`: only the CPU share of it stretches.
    #[inline]
    fn stretch(&self, slowdown: f64) -> f64 {
        1.0 + self.latency_sensitivity * (slowdown - 1.0)
    }

    /// The share of requests slower than the timeout, as a function of how
    /// much latency is stretched. Latency at rest is taken as Weibull through
    /// the p95 (`base_latency`) and the p99 (`base_latency × tail_ratio`): a
    /// heavy tail for long-tailed services, and every request past the
    /// timeout once the stretch is large enough.
    #[inline]
    fn timeouts(&self) -> Timeouts {
        // P(X > x) = exp(−(x / scale)^shape); P(X > p95) = 5 %, P(X > p99) = 1 %.
        let shape = LN_LN100_OVER_LN20 / self.tail_ratio.ln();
        let scale = self.base_latency_s / LN_20.powf(1.0 / shape);
        let reach = self.timeout_s / scale;
        Timeouts {
            shape,
            reach,
            at_rest: (-reach.powf(shape)).exp(),
        }
    }
}

struct Timeouts {
    shape: f64,
    /// The timeout in units of the Weibull scale.
    reach: f64,
    /// Share past the timeout at rest: already in `base_error_ratio`.
    at_rest: f64,
}

impl Timeouts {
    /// Requests past the timeout beyond those at rest, at a stretch.
    #[inline]
    fn extra(&self, stretch: f64) -> f64 {
        if stretch <= 1.0 {
            return 0.0;
        }
        ((-(self.reach / stretch).powf(self.shape)).exp() - self.at_rest).max(0.0)
    }
}

/// How one replica's SLIs respond, this minute, to what it is given.
#[inline]
pub fn respond(model: &ResponseModel, demand: &Demand, given: &Given) -> Response {
    if demand.is_gap() {
        return Response::GAP;
    }
    let average = demand.cpu_cores.max(0.0);
    let burst = demand.cpu_burst_cores.max(average);
    let fraction = demand.burst_fraction.clamp(0.0, 1.0);
    let base = demand.cpu_base_cores().min(average);
    let oom_killed = given
        .memory_limit_bytes
        .is_some_and(|limit| demand.memory_bytes > limit);
    let limit = given.cpu_limit_cores.map(|l| l.max(MIN_SHARE_CORES / 2.0));
    let contention = given.node_contention.clamp(0.0, 1.0);

    let (cpu_used_cores, throttled_ratio) = match limit {
        None => (average, 0.0),
        Some(limit) => (
            average.min(limit),
            throttled_share(base, burst, fraction, limit),
        ),
    };
    let rest = Rest {
        limit,
        request: given.cpu_request_cores.unwrap_or(0.0).max(MIN_SHARE_CORES),
        contention,
    };
    let slow_base = rest.slowdown(base);
    let slow_burst = rest.slowdown(burst);

    let at_rest = model.base_latency_s;
    if slow_base == 1.0 && slow_burst == 1.0 {
        return Response {
            cpu_used_cores,
            throttled_ratio,
            latency_p95_s: at_rest,
            latency_p99_s: at_rest * model.tail_ratio,
            error_ratio: model.base_error_ratio,
            oom_killed,
        };
    }
    // A percentile moves with the bursts once the requests they slow are more
    // than its tail: nearest-rank p95 of a minute where exactly 5 % of the
    // requests were slowed is still the slowest unslowed request.
    let p95_slowdown = if fraction > TAIL_P95 {
        slow_burst
    } else {
        slow_base
    };
    let p99_slowdown = if fraction > TAIL_P99 {
        slow_burst
    } else {
        slow_base
    };

    let stretch_base = model.stretch(slow_base);
    let stretch_burst = model.stretch(slow_burst);
    let tail = model.timeouts();
    let timeouts =
        fraction * tail.extra(stretch_burst) + (1.0 - fraction) * tail.extra(stretch_base);
    let error_ratio = model.base_error_ratio + (1.0 - model.base_error_ratio) * timeouts;

    Response {
        cpu_used_cores,
        throttled_ratio,
        latency_p95_s: at_rest * model.stretch(p95_slowdown),
        latency_p99_s: at_rest * model.tail_ratio * model.stretch(p99_slowdown),
        error_ratio: error_ratio.min(1.0),
        oom_killed,
    }
}

/// Share of CFS periods throttled in a minute whose demand is `base` cores,
/// except `burst` cores for `fraction` of it. A burst above the limit
/// leaves a backlog that drains at `limit − base` once it ends; every period
/// until then is throttled. A base at or above the limit throttles all.
#[inline]
fn throttled_share(base: f64, burst: f64, fraction: f64, limit: f64) -> f64 {
    if base >= limit {
        1.0
    } else if burst > limit {
        (fraction * (burst - base) / (limit - base)).min(1.0)
    } else {
        0.0
    }
}

/// What slows a CPU level down: the limit and the neighbours.
struct Rest {
    limit: Option<f64>,
    request: f64,
    contention: f64,
}

impl Rest {
    /// How much longer work at `level` cores takes than it would unhindered.
    #[inline]
    fn slowdown(&self, level: f64) -> f64 {
        let (served, throttle) = match self.limit {
            Some(limit) if level > limit => (limit, level / limit),
            _ => (level, 1.0),
        };
        let crowding = if self.contention > 0.0 && served > self.request {
            1.0 + self.contention * (served - self.request) / self.request
        } else {
            1.0
        };
        (throttle * crowding).min(MAX_SLOWDOWN)
    }
}
