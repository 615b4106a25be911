//! The simulated cluster: workloads whose pods demand CPU and memory from
//! their models minute by minute, respond to the resources they are given,
//! roll over when their template changes, and leave the metrics the agent
//! reads. It implements the agent's ports, so the real control loop runs
//! against it unchanged, in virtual time (nothing sleeps).
//!
//! For every pod and minute it also computes what the pod would have done
//! on the workload's *original* resources (same demand, same instant). The
//! difference is what the agent caused: SLO-violation minutes, false
//! reverts and unreverted regressions are measured against it.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use crate::config::{Policy, PricingConfig};
use crate::domain::{ContainerRef, ResourceKind, Resources, WorkloadRef};
use crate::guard::{ResourceSample, SliSample};
use crate::plan::{Mode, WorkloadView};
use crate::ports::{
    AgentEvent, Clock, Cluster, PortError, ResourcePatch, RolloutStatus, SloSource, UsageSource,
};
use crate::recommend::Recommendation;
use crate::recommend::policy::{HpaScaling, NodeCapacity, RecommendInput, recommend};
use crate::recommend::usage::{UsageEstimator, Window};
use crate::rollout::RolloutRecord;
use crate::sim::models::{Demand, Given, ModelSpec, respond};
use crate::units::{Bytes, MilliCores};

/// How long SLI and resource samples are kept per workload: baselines reach
/// back to the same hours of the day before a change, and changes are
/// watched for a day after they are confirmed.
const KEEP_S: i64 = 50 * 3600;

/// One minute of a workload's signals, as the metrics backend would keep them.
#[derive(Clone, Copy, Debug)]
struct MinuteRecord {
    t: i64,
    requests: f32,
    errors: f32,
    /// NaN when no pod served.
    p95: f32,
    p99: f32,
    throttled: f32,
    ready: f32,
    ooms: u16,
}

impl MinuteRecord {
    fn sli(&self) -> SliSample {
        let latency = |v: f32| (!v.is_nan()).then_some(v as f64);
        SliSample {
            t: self.t,
            requests: self.requests as f64,
            errors: self.errors as f64,
            latency_p95_s: latency(self.p95),
            latency_p99_s: latency(self.p99),
        }
    }

    fn resources(&self) -> ResourceSample {
        ResourceSample {
            t: self.t,
            oom_kills: self.ooms as u32,
            restarts: self.ooms as u32,
            throttled_ratio: Some(self.throttled as f64),
            ready_ratio: Some(self.ready as f64),
        }
    }
}
/// CPU samples are 5-minute averages and memory samples hourly peaks, as the
/// Prometheus adapter reads them.
const CPU_STEP_S: i64 = 300;
const MEMORY_STEP_S: i64 = 3600;
/// A pod OOM-killed is down this long (restart back-off).
const RESTART_S: i64 = 60;

/// A horizontal autoscaler on one resource's utilization.
#[derive(Clone, Debug, PartialEq)]
pub struct SimHpa {
    pub resource: ResourceKind,
    pub target_utilization: f64,
    pub min_replicas: u32,
    pub max_replicas: u32,
}

#[derive(Clone, Debug)]
struct SimPod {
    started_at: i64,
    resources: Resources,
    down_until: i64,
    cpu_sum: f64,
    cpu_n: u32,
    memory_peak: f64,
}

/// Per-workload outcome counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadOutcome {
    pub oom_kills: u64,
    /// OOM kills during the agent phase, counting kills within an hour as one episode.
    pub oom_episodes: u64,
    pub throttled_minutes: u64,
    /// Minutes measurably worse than on the original resources.
    pub agent_violation_minutes: u64,
    /// Minutes violating during the last day of the run.
    pub final_day_violation_minutes: u64,
    /// Agent-phase minutes with agent-caused violations, per minute start.
    pub violation_minutes_at: Vec<i64>,
    last_oom_at: Option<i64>,
}

/// One simulated workload (one container per pod).
pub struct SimWorkload {
    pub workload: WorkloadRef,
    pub container: String,
    pub model: Arc<ModelSpec>,
    pub seed: u64,
    pub original: Resources,
    pub spec: Resources,
    pub replicas: u32,
    pub hpa: Option<SimHpa>,
    pub mode: Option<Mode>,
    pub paused: bool,
    pub gitops: bool,
    pods: Vec<SimPod>,
    estimator: UsageEstimator,
    /// Per-minute signals, compact: SLIs and resource signals together.
    minutes: VecDeque<MinuteRecord>,
    oom_at: Vec<i64>,
    throttled_recent: f64,
    pub surge: f64,
    pub outcome: WorkloadOutcome,
    last_cpu_utilization: f64,
}

impl SimWorkload {
    pub fn new(
        workload: WorkloadRef,
        model: Arc<ModelSpec>,
        seed: u64,
        resources: Resources,
        replicas: u32,
        window: &Window,
        start: i64,
    ) -> Self {
        let pods = (0..replicas)
            .map(|_| SimPod::new(start, resources))
            .collect();
        SimWorkload {
            workload,
            container: "app".to_string(),
            model,
            seed,
            original: resources,
            spec: resources,
            replicas,
            hpa: None,
            mode: None,
            paused: false,
            gitops: false,
            pods,
            estimator: UsageEstimator::new(window),
            minutes: VecDeque::new(),
            oom_at: Vec::new(),
            throttled_recent: 0.0,
            surge: 1.0,
            outcome: WorkloadOutcome::default(),
            last_cpu_utilization: 0.0,
        }
    }

    pub fn target(&self) -> ContainerRef {
        ContainerRef {
            workload: self.workload.clone(),
            container: self.container.clone(),
        }
    }
}

impl SimPod {
    fn new(now: i64, resources: Resources) -> Self {
        SimPod {
            started_at: now,
            resources,
            down_until: i64::MIN,
            cpu_sum: 0.0,
            cpu_n: 0,
            memory_peak: 0.0,
        }
    }
}

fn given(r: &Resources, node_contention: f64) -> Given {
    Given::from_resources(r, node_contention)
}

fn scaled(mut d: Demand, factor: f64) -> Demand {
    if factor != 1.0 {
        d.cpu_cores *= factor;
        d.cpu_burst_cores *= factor;
        d.requests_per_s *= factor;
    }
    d
}

/// The simulated world behind every port.
pub struct World {
    pub now: i64,
    pub start: i64,
    pub agent_start: i64,
    pub end: i64,
    pub window: Window,
    pub workloads: Vec<SimWorkload>,
    pub rollouts: BTreeMap<String, RolloutRecord>,
    pub events: Vec<AgentEvent>,
    pub metrics_down: bool,
    /// Minutes of the agent phase during which metrics were down.
    pub gap_minutes: Vec<(i64, i64)>,
    pub policy: Policy,
    pub pricing: PricingConfig,
    pub node: NodeCapacity,
    /// How busy the nodes are (0 idle, 1 full): CPU used last minute over
    /// the CPU of the nodes the current requests need. Right-sizing packs
    /// pods onto fewer nodes, so demand above a request competes more.
    pub contention: f64,
    /// Every patch that reached the cluster: (change id, values set).
    pub patches: Vec<(String, Resources)>,
}

impl World {
    /// Advances every workload by one minute ending at `self.now + 60`.
    pub fn step_minute(&mut self) {
        self.now += 60;
        let now = self.now;
        let metrics_up = !self.metrics_down;
        let window = self.window;
        let mut used = 0.0;
        let (mut cpu_requested, mut memory_requested) = (0u64, 0u64);
        for w in &mut self.workloads {
            used += step_workload(
                w,
                now,
                self.agent_start,
                metrics_up,
                &window,
                self.end,
                self.contention,
            );
            cpu_requested += w.spec.cpu_request.map_or(0, |m| m.0) * w.replicas as u64;
            memory_requested += w.spec.memory_request.map_or(0, |b| b.0) * w.replicas as u64;
        }
        // Nodes the requests need, by volume (bin packing only adds to this).
        let nodes = cpu_requested
            .div_ceil(self.node.cpu.0.max(1))
            .max(memory_requested.div_ceil(self.node.memory.0.max(1)))
            .max(1);
        self.contention = (used / (nodes as f64 * self.node.cpu.cores())).clamp(0.0, 1.0);
    }

    fn find(&self, workload: &WorkloadRef) -> Option<usize> {
        self.workloads.iter().position(|w| &w.workload == workload)
    }

    fn view(&self, w: &SimWorkload) -> WorkloadView {
        let now = self.now;
        WorkloadView {
            workload: w.workload.clone(),
            // Annotation first, then the policy's mode, then the global one.
            mode: w.mode.or(self.policy.mode),
            paused: w.paused,
            replicas: w.replicas,
            ready: w.pods.iter().all(|p| p.down_until <= now),
            rolling_out: w.pods.iter().any(|p| p.resources != w.spec),
            gitops_managed: w.gitops,
            change_in_flight: false,
            approved_change: None,
            containers: vec![(w.container.clone(), w.spec)],
            last_confirmed_at: None,
            held_until: None,
            recent_oom_bumps: Vec::new(),
            last_throttling_bump: None,
        }
    }

    fn recommendation(&self, w: &SimWorkload, now: i64) -> Recommendation {
        let input = RecommendInput {
            target: w.target(),
            current: w.spec,
            usage: &w.estimator,
            window: Window {
                end: now,
                ..self.window
            },
            replicas: w.replicas,
            billed_replicas: w.replicas as f64,
            hpa: HpaScaling {
                cpu: w
                    .hpa
                    .as_ref()
                    .is_some_and(|h| h.resource == ResourceKind::Cpu),
                memory: w
                    .hpa
                    .as_ref()
                    .is_some_and(|h| h.resource == ResourceKind::Memory),
            },
            node_capacity: Some(self.node),
        };
        recommend(&input, &self.policy, &self.pricing)
    }

    /// Monthly cost of the current requests: (pod requests $, node pool $).
    pub fn monthly_cost(
        &self,
        node_hour_usd: f64,
        original: bool,
    ) -> (f64, f64, MilliCores, Bytes) {
        let mut pods: Vec<(u64, u64)> = Vec::new();
        let mut cpu = 0u64;
        let mut memory = 0u64;
        let mut requests_usd = 0.0;
        for w in &self.workloads {
            let r = if original { w.original } else { w.spec };
            let c = r.cpu_request.map_or(0, |m| m.0);
            let m = r.memory_request.map_or(0, |b| b.0);
            cpu += c * w.replicas as u64;
            memory += m * w.replicas as u64;
            requests_usd +=
                crate::recommend::policy::monthly_cost(&r, w.replicas as f64, &self.pricing);
            pods.extend(std::iter::repeat_n((c, m), w.replicas as usize));
        }
        let nodes = first_fit_decreasing(&mut pods, self.node.cpu.0, self.node.memory.0);
        let nodes_usd = nodes as f64 * node_hour_usd * crate::recommend::policy::HOURS_PER_MONTH;
        (requests_usd, nodes_usd, MilliCores(cpu), Bytes(memory))
    }
}

/// Nodes needed to hold `pods` (cpu, memory) by first-fit decreasing.
pub fn first_fit_decreasing(pods: &mut [(u64, u64)], node_cpu: u64, node_memory: u64) -> usize {
    // Sort by the larger of the two shares, biggest first.
    pods.sort_by(|a, b| {
        let share =
            |p: &(u64, u64)| (p.0 as f64 / node_cpu as f64).max(p.1 as f64 / node_memory as f64);
        share(b).total_cmp(&share(a))
    });
    let mut free: Vec<(u64, u64)> = Vec::new();
    for &(c, m) in pods.iter() {
        let (c, m) = (c.min(node_cpu), m.min(node_memory));
        match free.iter_mut().find(|f| f.0 >= c && f.1 >= m) {
            Some(f) => {
                f.0 -= c;
                f.1 -= m;
            }
            None => free.push((node_cpu - c, node_memory - m)),
        }
    }
    free.len()
}

fn step_workload(
    w: &mut SimWorkload,
    now: i64,
    agent_start: i64,
    metrics_up: bool,
    window: &Window,
    end: i64,
    contention: f64,
) -> f64 {
    let agent_phase = now > agent_start;
    // Autoscaling on last minute's utilization (no stabilization window: the
    // simulator's HPA reacts at once, the harshest case for the agent).
    if let Some(hpa) = &w.hpa {
        let desired = ((w.replicas as f64 * w.last_cpu_utilization / hpa.target_utilization).ceil()
            as u32)
            .clamp(hpa.min_replicas, hpa.max_replicas);
        while (w.pods.len() as u32) < desired {
            w.pods.push(SimPod::new(now, w.spec));
        }
        w.pods.truncate(desired as usize);
        w.replicas = desired;
    }
    // Rolling update: one pod a minute (maxSurge 1, maxUnavailable 0).
    if let Some(pod) = w.pods.iter_mut().find(|p| p.resources != w.spec) {
        *pod = SimPod::new(now, w.spec);
    }

    let replicas = w.pods.len().max(1) as u32;
    let response_model = &w.model.response;
    let mut requests = 0.0;
    let mut errors = 0.0;
    let mut cf_errors = 0.0;
    let mut p95: f64 = 0.0;
    let mut p99: f64 = 0.0;
    let mut cf_p99: f64 = 0.0;
    let mut throttled = 0.0;
    let mut up = 0u32;
    let mut ooms = 0u32;
    let mut cpu_used = 0.0;
    let mut cpu_requested = 0.0;
    let original = given(&w.original, contention);
    for (i, pod) in w.pods.iter_mut().enumerate() {
        let age = now - pod.started_at;
        let demand = scaled(
            w.model
                .workload
                .demand(w.seed, now, i as u32, replicas, age.max(0)),
            w.surge,
        );
        let minute_requests = demand.requests_per_s.max(0.0) * 60.0;
        requests += minute_requests;
        let counterfactual = respond(response_model, &demand, &original);
        cf_errors += counterfactual.error_ratio * minute_requests;
        cf_p99 = cf_p99.max(counterfactual.latency_p99_s);
        if pod.down_until > now {
            errors += minute_requests;
            continue;
        }
        let response = respond(response_model, &demand, &given(&pod.resources, contention));
        if response.oom_killed {
            ooms += 1;
            errors += minute_requests;
            // The working set reached the limit when the kernel killed it.
            let limit = pod
                .resources
                .memory_limit
                .map_or(demand.memory_bytes, Bytes::as_f64);
            pod.memory_peak = pod.memory_peak.max(limit);
            pod.down_until = now + RESTART_S;
            pod.started_at = now + RESTART_S;
            continue;
        }
        up += 1;
        errors += response.error_ratio * minute_requests;
        p95 = p95.max(response.latency_p95_s);
        p99 = p99.max(response.latency_p99_s);
        throttled += response.throttled_ratio;
        cpu_used += response.cpu_used_cores;
        cpu_requested += pod.resources.cpu_request.map_or(0.0, MilliCores::cores);
        pod.cpu_sum += response.cpu_used_cores;
        pod.cpu_n += 1;
        if demand.memory_bytes.is_finite() {
            pod.memory_peak = pod.memory_peak.max(demand.memory_bytes);
        }
    }
    w.last_cpu_utilization = if cpu_requested > 0.0 {
        cpu_used / cpu_requested
    } else {
        0.0
    };
    let throttled_ratio = if up > 0 { throttled / up as f64 } else { 0.0 };
    w.throttled_recent = throttled_ratio;

    // Usage as Prometheus would have it: 5-minute CPU averages, hourly peaks.
    let cpu_boundary = now % CPU_STEP_S == 0;
    let memory_boundary = now % MEMORY_STEP_S == 0;
    if cpu_boundary || memory_boundary {
        for pod in &mut w.pods {
            let age = Some(now - pod.started_at);
            if cpu_boundary && pod.cpu_n > 0 {
                if metrics_up {
                    let _ = w
                        .estimator
                        .add_cpu(window, now, pod.cpu_sum / pod.cpu_n as f64, age);
                }
                pod.cpu_sum = 0.0;
                pod.cpu_n = 0;
            }
            if memory_boundary && pod.memory_peak > 0.0 {
                if metrics_up {
                    let _ = w
                        .estimator
                        .add_memory_peak(window, now, pod.memory_peak, age);
                }
                pod.memory_peak = 0.0;
            }
        }
    }
    if ooms > 0 {
        w.outcome.oom_kills += ooms as u64;
        let new_episode = w
            .outcome
            .last_oom_at
            .is_none_or(|t| now - t > 3600 || t <= agent_start);
        if agent_phase && new_episode {
            w.outcome.oom_episodes += 1;
        }
        w.outcome.last_oom_at = Some(now);
        w.oom_at.push(now);
        w.estimator.add_restarts(
            now,
            ooms,
            ooms,
            w.spec.memory_limit.map(Bytes::as_f64),
            Some(now),
        );
    }
    if throttled_ratio > 0.05 {
        w.outcome.throttled_minutes += 1;
    }
    if metrics_up {
        w.minutes.push_back(MinuteRecord {
            t: now,
            requests: requests as f32,
            errors: errors as f32,
            p95: if up > 0 { p95 as f32 } else { f32::NAN },
            p99: if up > 0 { p99 as f32 } else { f32::NAN },
            throttled: throttled_ratio as f32,
            ready: up as f32 / replicas as f32,
            ooms: ooms.min(u16::MAX as u32) as u16,
        });
        while w.minutes.front().is_some_and(|s| now - s.t > KEEP_S) {
            w.minutes.pop_front();
        }
    }
    // Worse than the original resources would have been, this minute?
    let error_ratio = if requests > 0.0 {
        errors / requests
    } else {
        0.0
    };
    let cf_error_ratio = if requests > 0.0 {
        cf_errors / requests
    } else {
        0.0
    };
    let worse = ooms > 0 || error_ratio > cf_error_ratio + 0.005 || (up > 0 && p99 > cf_p99 * 1.1);
    if agent_phase && worse && w.spec != w.original {
        w.outcome.agent_violation_minutes += 1;
        w.outcome.violation_minutes_at.push(now);
        if now > end - 86_400 {
            w.outcome.final_day_violation_minutes += 1;
        }
    }
    cpu_used
}

/// The records with `from < t <= to` (records are in time order).
fn minutes_in(
    minutes: &VecDeque<MinuteRecord>,
    from: i64,
    to: i64,
) -> impl Iterator<Item = &MinuteRecord> {
    let start = minutes.partition_point(|m| m.t <= from);
    minutes.range(start..).take_while(move |m| m.t <= to)
}

/// A handle on the world that implements every port.
#[derive(Clone)]
pub struct SimHandle(pub Rc<RefCell<World>>);

impl Clock for SimHandle {
    fn now(&self) -> i64 {
        self.0.borrow().now
    }
}

impl Cluster for SimHandle {
    async fn workloads(&self) -> Result<Vec<WorkloadView>, PortError> {
        let world = self.0.borrow();
        Ok(world.workloads.iter().map(|w| world.view(w)).collect())
    }

    async fn apply(&self, patch: &ResourcePatch) -> Result<(), PortError> {
        let mut world = self.0.borrow_mut();
        let i = world
            .find(&patch.workload)
            .ok_or_else(|| PortError::NotFound(patch.workload.to_string()))?;
        let w = &mut world.workloads[i];
        for c in &patch.containers {
            if c.container != w.container {
                return Err(PortError::NotFound(format!("container {}", c.container)));
            }
            if c.expect != w.spec {
                return Err(PortError::Conflict(format!(
                    "{}: resources changed since they were read",
                    patch.workload
                )));
            }
        }
        if let Some(c) = patch.containers.first() {
            w.spec = c.set;
            world.patches.push((patch.change_id.clone(), c.set));
        }
        Ok(())
    }

    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, PortError> {
        let world = self.0.borrow();
        let i = world
            .find(workload)
            .ok_or_else(|| PortError::NotFound(workload.to_string()))?;
        let w = &world.workloads[i];
        let now = world.now;
        let updated = w.pods.iter().filter(|p| p.resources == w.spec).count() as u32;
        let available = w
            .pods
            .iter()
            .filter(|p| p.resources == w.spec && p.down_until <= now && now - p.started_at >= 60)
            .count() as u32;
        Ok(RolloutStatus {
            replicas: w.replicas,
            updated,
            available,
            failed: false,
        })
    }

    async fn load_rollouts(&self) -> Result<Vec<RolloutRecord>, PortError> {
        Ok(self.0.borrow().rollouts.values().cloned().collect())
    }

    async fn save_rollout(&self, record: &RolloutRecord) -> Result<(), PortError> {
        self.0
            .borrow_mut()
            .rollouts
            .insert(record.change.id.clone(), record.clone());
        Ok(())
    }

    async fn record_event(&self, event: &AgentEvent) -> Result<(), PortError> {
        self.0.borrow_mut().events.push(event.clone());
        Ok(())
    }
}

impl UsageSource for SimHandle {
    async fn recommendations(&self, now: i64) -> Result<Vec<Recommendation>, PortError> {
        let world = self.0.borrow();
        if world.metrics_down {
            return Err(PortError::Unavailable("metrics backend down".into()));
        }
        Ok(world
            .workloads
            .iter()
            .map(|w| world.recommendation(w, now))
            .collect())
    }

    async fn urgent(&self, since: i64, now: i64) -> Result<Vec<Recommendation>, PortError> {
        let world = self.0.borrow();
        if world.metrics_down {
            return Err(PortError::Unavailable("metrics backend down".into()));
        }
        Ok(world
            .workloads
            .iter()
            .filter(|w| {
                w.oom_at.last().is_some_and(|&t| t > since && t <= now) || w.throttled_recent > 0.10
            })
            .map(|w| world.recommendation(w, now))
            .collect())
    }
}

impl SloSource for SimHandle {
    async fn slis(
        &self,
        workload: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> Result<Option<Vec<SliSample>>, PortError> {
        let world = self.0.borrow();
        if world.metrics_down {
            return Err(PortError::Unavailable("metrics backend down".into()));
        }
        let i = world
            .find(workload)
            .ok_or_else(|| PortError::NotFound(workload.to_string()))?;
        Ok(Some(
            minutes_in(&world.workloads[i].minutes, from, to)
                .map(MinuteRecord::sli)
                .collect(),
        ))
    }

    async fn resource_signals(
        &self,
        workload: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> Result<Vec<ResourceSample>, PortError> {
        let world = self.0.borrow();
        if world.metrics_down {
            return Err(PortError::Unavailable("metrics backend down".into()));
        }
        let i = world
            .find(workload)
            .ok_or_else(|| PortError::NotFound(workload.to_string()))?;
        Ok(minutes_in(&world.workloads[i].minutes, from, to)
            .map(MinuteRecord::resources)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_decreasing_packs_tightly() {
        let mut pods = vec![(5000, 1), (3000, 1), (3000, 1), (5000, 1), (1000, 1)];
        // 5000+3000, 5000+3000, 1000 → 3 nodes of 8000m.
        assert_eq!(first_fit_decreasing(&mut pods, 8000, 1 << 40), 3);
        let mut none: Vec<(u64, u64)> = Vec::new();
        assert_eq!(first_fit_decreasing(&mut none, 8000, 1 << 40), 0);
    }
}
