//! Synthetic cluster history: the series a real cluster's kubelet (cAdvisor)
//! and kube-state-metrics (KSM) would have left in Prometheus over weeks,
//! written as text that Prometheus (`promtool tsdb create-blocks-from
//! openmetrics`) and VictoriaMetrics (`/api/v1/import/prometheus`) import.
//!
//! A [`HistorySpec`] names workloads, how their pods come and go, and each
//! container's usage as a function of time and replica. The writers stream
//! one metric family after another, series by series, sample by sample, so
//! weeks of many containers never sit in memory. Output is deterministic:
//! ReplicaSet hashes, pod names, UIDs and container IDs are hashes of the
//! spec, so a test can predict them with [`pods`] and [`replicaset_name`].
//!
//! It mimics, on purpose, what tailor's queries must cope with:
//! - pod-level cgroup series (`container=""`), pause containers
//!   (`container="POD"`) and init containers next to the app containers;
//! - CPU counters that restart from zero after an OOM kill;
//! - pod churn: new pod names (Deployments) or new UIDs (StatefulSets);
//! - label names exactly as cAdvisor and kube-state-metrics v2 emit them.
//!
//! It does not mimic staleness markers (an ended pod's series stays visible
//! for the query lookback, 5 minutes by default), scheduling, or feedback
//! from limits to usage: an OOM kill is an event of the spec, not a
//! consequence of the memory function.
//!
//! ```
//! use tailor::domain::{Resources, WorkloadKind};
//! use tailor::sim::history::{self, ContainerSpec, HistorySpec, WorkloadSpec};
//! use tailor::units::MilliCores;
//!
//! let app = ContainerSpec::new(
//!     "app",
//!     Resources { cpu_request: Some(MilliCores(250)), ..Resources::default() },
//!     history::constant(0.2),
//!     history::ramp((0, 100e6), (3600, 200e6)),
//! );
//! let spec = HistorySpec {
//!     start: 0,
//!     end: 3600,
//!     scrape_interval_s: 60,
//!     workloads: vec![WorkloadSpec::new("shop", WorkloadKind::Deployment, "web", 2, vec![app])],
//!     nodes: vec![],
//! };
//! let mut text = Vec::new();
//! let stats = history::write_openmetrics(&spec, &mut text).expect("writing to a Vec");
//! // One line per sample, one `# TYPE` line per family, and `# EOF`.
//! let lines = text.iter().filter(|&&b| b == b'\n').count();
//! assert_eq!(lines, stats.samples + stats.families + 1);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use crate::domain::{ResourceKind, Resources, WorkloadKind};
use crate::units::{Bytes, MilliCores};

/// A container's usage at (unix time in seconds, replica index): CPU in
/// cores, memory in bytes. NaN (any non-finite value) means the container
/// reports nothing at that scrape, e.g. a workload created later than the
/// history starts; negative values are written as zero.
pub type UsageFn = Arc<dyn Fn(i64, u32) -> f64 + Send + Sync>;

/// The same value at every instant and replica.
pub fn constant(value: f64) -> UsageFn {
    Arc::new(move |_, _| value)
}

/// A straight line from `from` to `to` (each `(unix seconds, value)`), flat
/// before and after.
pub fn ramp(from: (i64, f64), to: (i64, f64)) -> UsageFn {
    Arc::new(move |t, _| {
        if t <= from.0 || to.0 <= from.0 {
            from.1
        } else if t >= to.0 {
            to.1
        } else {
            from.1 + (to.1 - from.1) * (t - from.0) as f64 / (to.0 - from.0) as f64
        }
    })
}

/// What to generate: `[start, end)` in unix seconds, scraped every
/// `scrape_interval_s` from `start` on (both kubelet and KSM).
#[derive(Clone, Debug)]
pub struct HistorySpec {
    pub start: i64,
    pub end: i64,
    pub scrape_interval_s: i64,
    pub workloads: Vec<WorkloadSpec>,
    /// Pods are spread over these round-robin; with none, every pod runs on
    /// [`DEFAULT_NODE`] and no `kube_node_status_allocatable` is written.
    pub nodes: Vec<NodeSpec>,
}

/// The node pods run on when a spec names none.
pub const DEFAULT_NODE: &str = "node-0";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub cpu: MilliCores,
    pub memory: Bytes,
}

/// A workload and its pods. Every replica lives for the whole range unless
/// `pod_lifetime_s` is set: then each replica's pod is replaced every that
/// many seconds (all replicas at the same instants, without overlap).
/// Deployments keep one ReplicaSet (the hash depends on the pod template
/// only); a CronJob starts one Job run per lifetime with `replicas` pods.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub replicas: u32,
    pub pod_lifetime_s: Option<i64>,
    pub containers: Vec<ContainerSpec>,
    /// Init containers run (and report usage) in the first minute of a pod.
    pub init_containers: Vec<String>,
    /// Pod labels, written as `kube_pod_labels{label_<key>=...}`.
    pub labels: BTreeMap<String, String>,
    pub hpa: Option<HpaSpec>,
}

impl WorkloadSpec {
    /// A workload without churn, init containers, labels or HPA.
    pub fn new(
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        replicas: u32,
        containers: Vec<ContainerSpec>,
    ) -> Self {
        WorkloadSpec {
            namespace: namespace.to_string(),
            kind,
            name: name.to_string(),
            replicas,
            pod_lifetime_s: None,
            containers,
            init_containers: Vec::new(),
            labels: BTreeMap::new(),
            hpa: None,
        }
    }
}

/// A HorizontalPodAutoscaler named like its target, scaling on one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HpaSpec {
    pub resource: ResourceKind,
    pub target_utilization_percent: u32,
}

#[derive(Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub resources: Resources,
    pub cpu_cores: UsageFn,
    pub memory_bytes: UsageFn,
    /// The container is OOM-killed at these instants in every pod alive then:
    /// restarts go up by one, its CPU counters start again from zero from the
    /// first scrape at or after the instant, and KSM reports the reason.
    pub oom_kill_times: Vec<i64>,
    /// Fraction of CFS periods throttled; written only with a CPU limit.
    pub throttled_ratio: f64,
}

impl ContainerSpec {
    /// A container that is never OOM-killed nor throttled.
    pub fn new(
        name: &str,
        resources: Resources,
        cpu_cores: UsageFn,
        memory_bytes: UsageFn,
    ) -> Self {
        ContainerSpec {
            name: name.to_string(),
            resources,
            cpu_cores,
            memory_bytes,
            oom_kill_times: Vec::new(),
            throttled_ratio: 0.0,
        }
    }
}

impl fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerSpec")
            .field("name", &self.name)
            .field("resources", &self.resources)
            .field("oom_kill_times", &self.oom_kill_times)
            .field("throttled_ratio", &self.throttled_ratio)
            .finish_non_exhaustive()
    }
}

/// What a writer wrote: distinct series (label sets), samples, and metric
/// families (one `# TYPE` line each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub series: usize,
    pub samples: usize,
    pub families: usize,
}

/// One pod of a workload, alive in `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodLife {
    pub name: String,
    pub replica: u32,
    /// How many pods this replica had before this one.
    pub generation: u32,
    pub start: i64,
    pub end: i64,
    pub uid: String,
    /// `kube_pod_owner`'s `owner_kind`/`owner_name` (`<none>` for bare pods).
    pub owner_kind: &'static str,
    pub owner_name: String,
}

/// The ReplicaSet a Deployment's pods belong to: `<name>-<pod-template-hash>`.
pub fn replicaset_name(spec: &WorkloadSpec) -> Option<String> {
    (spec.kind == WorkloadKind::Deployment)
        .then(|| format!("{}-{}", spec.name, template_hash(spec)))
}

/// The image the generator gives a container of a workload.
pub fn container_image(spec: &WorkloadSpec, container: &str) -> String {
    format!("registry.example.com/{}/{}:1.0", spec.name, container)
}

/// The pods of a workload over `[start, end)`, ordered by replica then time.
pub fn pods(spec: &WorkloadSpec, start: i64, end: i64) -> Vec<PodLife> {
    let lifetime = spec.pod_lifetime_s.filter(|&l| l > 0);
    let mut out = Vec::new();
    for replica in 0..spec.replicas {
        let mut generation = 0u32;
        let mut pod_start = start;
        while pod_start < end {
            let pod_end = match lifetime {
                Some(l) => (pod_start.saturating_add(l)).min(end),
                None => end,
            };
            out.push(pod_life(spec, replica, generation, pod_start, pod_end));
            generation += 1;
            pod_start = pod_end;
        }
    }
    out
}

fn pod_life(spec: &WorkloadSpec, replica: u32, generation: u32, start: i64, end: i64) -> PodLife {
    let (r, g) = (replica.to_string(), generation.to_string());
    let suffix = |owner: &str| safe_encode(hash(&[&spec.namespace, owner, &r, &g]), 5);
    let (name, owner_kind, owner_name) = match spec.kind {
        WorkloadKind::Deployment => {
            let rs = format!("{}-{}", spec.name, template_hash(spec));
            (format!("{rs}-{}", suffix(&rs)), "ReplicaSet", rs)
        }
        WorkloadKind::ReplicaSet => (
            format!("{}-{}", spec.name, suffix(&spec.name)),
            "ReplicaSet",
            spec.name.clone(),
        ),
        WorkloadKind::DaemonSet => (
            format!("{}-{}", spec.name, suffix(&spec.name)),
            "DaemonSet",
            spec.name.clone(),
        ),
        WorkloadKind::Job => (
            format!("{}-{}", spec.name, suffix(&spec.name)),
            "Job",
            spec.name.clone(),
        ),
        WorkloadKind::StatefulSet => (
            format!("{}-{replica}", spec.name),
            "StatefulSet",
            spec.name.clone(),
        ),
        WorkloadKind::CronJob => {
            // The CronJob controller names each run after its scheduled minute.
            let job = format!("{}-{}", spec.name, start.div_euclid(60));
            let pod_suffix = safe_encode(hash(&[&spec.namespace, &job, &r]), 5);
            (format!("{job}-{pod_suffix}"), "Job", job)
        }
        WorkloadKind::Pod => {
            let name = if replica == 0 {
                spec.name.clone()
            } else {
                format!("{}-{replica}", spec.name)
            };
            (name, NONE, NONE.to_string())
        }
    };
    let uid = uuid(&[&spec.namespace, &name, &start.to_string()]);
    PodLife {
        name,
        replica,
        generation,
        start,
        end,
        uid,
        owner_kind,
        owner_name,
    }
}

/// OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`:
/// timestamps in seconds, counters as `# TYPE <name without _total> counter`,
/// `# EOF` at the end.
pub fn write_openmetrics(
    spec: &HistorySpec,
    out: &mut (impl Write + ?Sized),
) -> io::Result<WriteStats> {
    write_history(spec, out, Format::OpenMetrics)
}

/// Prometheus exposition text with millisecond timestamps, for
/// VictoriaMetrics' `/api/v1/import/prometheus`.
pub fn write_prometheus_import(
    spec: &HistorySpec,
    out: &mut (impl Write + ?Sized),
) -> io::Result<WriteStats> {
    write_history(spec, out, Format::Prometheus)
}

const NONE: &str = "<none>";
const KUBELET: &str = "kubelet";
const KSM: &str = "kube-state-metrics";
const KSM_INSTANCE: &str = "kube-state-metrics:8080";
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.9";
const PAUSE_CPU_CORES: f64 = 0.000_1;
const PAUSE_MEMORY_BYTES: f64 = 450_560.0;
const INIT_CPU_CORES: f64 = 0.1;
const INIT_MEMORY_BYTES: f64 = 16.0 * 1024.0 * 1024.0;
const INIT_RUN_S: i64 = 60;
/// The CFS period the kubelet configures: 100 ms.
const CFS_PERIODS_PER_S: f64 = 10.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenMetrics,
    Prometheus,
}

#[derive(Clone, Copy)]
enum FamilyType {
    Counter,
    Gauge,
}

fn write_history(spec: &HistorySpec, out: impl Write, format: Format) -> io::Result<WriteStats> {
    if spec.scrape_interval_s <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "scrape_interval_s must be positive, got {}",
                spec.scrape_interval_s
            ),
        ));
    }
    let plan = Plan::new(spec);
    let mut sink = Sink::new(out, format);
    write_cadvisor(&plan, &mut sink)?;
    write_ksm_pods(&plan, &mut sink)?;
    write_ksm_containers(&plan, &mut sink)?;
    write_ksm_controllers(&plan, &mut sink)?;
    sink.finish()
}

/// The spec with every pod's life and node worked out once.
struct Plan<'a> {
    spec: &'a HistorySpec,
    workloads: Vec<WorkloadPlan<'a>>,
}

struct WorkloadPlan<'a> {
    spec: &'a WorkloadSpec,
    pods: Vec<PodPlan<'a>>,
}

struct PodPlan<'a> {
    life: PodLife,
    node: &'a str,
}

impl<'a> Plan<'a> {
    fn new(spec: &'a HistorySpec) -> Self {
        let workloads = spec
            .workloads
            .iter()
            .map(|w| {
                let pods = pods(w, spec.start, spec.end)
                    .into_iter()
                    .map(|life| {
                        let slot = match w.kind {
                            WorkloadKind::DaemonSet => life.replica as usize,
                            _ => life.replica as usize + life.generation as usize,
                        };
                        let node = match spec.nodes.len() {
                            0 => DEFAULT_NODE,
                            n => spec.nodes[slot % n].name.as_str(),
                        };
                        PodPlan { life, node }
                    })
                    .collect();
                WorkloadPlan { spec: w, pods }
            })
            .collect();
        Plan { spec, workloads }
    }

    /// Scrape instants in `[from, to)`, on the grid `start + k * interval`.
    fn scrapes(&self, from: i64, to: i64) -> impl Iterator<Item = i64> + use<> {
        let (start, step) = (self.spec.start, self.spec.scrape_interval_s);
        let from = from.max(start);
        let to = to.min(self.spec.end);
        let first = start + (from - start + step - 1) / step * step;
        // `step` was checked positive in `write_history`.
        (first..to.max(first)).step_by(usize::try_from(step).unwrap_or(usize::MAX))
    }

    fn interval(&self) -> f64 {
        self.spec.scrape_interval_s as f64
    }
}

impl WorkloadPlan<'_> {
    /// Consecutive pods sharing a name (StatefulSet and bare pods keep their
    /// names across churn), so each series' samples are written together.
    fn by_name(&self) -> impl Iterator<Item = &[PodPlan<'_>]> {
        self.pods.chunk_by(|a, b| a.life.name == b.life.name)
    }
}

impl PodPlan<'_> {
    /// OOM kills of `container` during this pod's life, in order.
    fn ooms(&self, container: &ContainerSpec) -> Vec<i64> {
        let mut ooms: Vec<i64> = container
            .oom_kill_times
            .iter()
            .copied()
            .filter(|&t| self.life.start <= t && t < self.life.end)
            .collect();
        ooms.sort_unstable();
        ooms
    }
}

/// A cgroup cAdvisor reports for a pod.
#[derive(Clone, Copy)]
enum Cgroup<'a> {
    /// The pod's own cgroup: `container=""`, the sum of everything in it.
    Pod,
    /// The sandbox: `container="POD"`.
    Pause,
    Init(&'a str),
    App(&'a ContainerSpec),
}

fn cgroups(w: &WorkloadSpec) -> Vec<Cgroup<'_>> {
    let mut all = vec![Cgroup::Pod, Cgroup::Pause];
    all.extend(w.init_containers.iter().map(|c| Cgroup::Init(c)));
    all.extend(w.containers.iter().map(Cgroup::App));
    all
}

impl Cgroup<'_> {
    fn container(&self) -> &str {
        match self {
            Cgroup::Pod => "",
            Cgroup::Pause => "POD",
            Cgroup::Init(name) => name,
            Cgroup::App(c) => &c.name,
        }
    }

    fn image(&self, w: &WorkloadSpec) -> String {
        match self {
            Cgroup::Pod => String::new(),
            Cgroup::Pause => PAUSE_IMAGE.to_string(),
            Cgroup::Init(name) => container_image(w, name),
            Cgroup::App(c) => container_image(w, &c.name),
        }
    }

    fn window(&self, pod: &PodLife) -> (i64, i64) {
        match self {
            Cgroup::Init(_) => (pod.start, pod.end.min(pod.start.saturating_add(INIT_RUN_S))),
            _ => (pod.start, pod.end),
        }
    }

    /// CPU in cores at `t`; `None` when the cgroup reports nothing then.
    fn cpu_cores(&self, w: &WorkloadSpec, pod: &PodLife, t: i64) -> Option<f64> {
        self.usage(w, pod, t, |c| &c.cpu_cores, PAUSE_CPU_CORES, INIT_CPU_CORES)
    }

    /// Working set in bytes at `t`; `None` when the cgroup reports nothing.
    fn memory_bytes(&self, w: &WorkloadSpec, pod: &PodLife, t: i64) -> Option<f64> {
        self.usage(
            w,
            pod,
            t,
            |c| &c.memory_bytes,
            PAUSE_MEMORY_BYTES,
            INIT_MEMORY_BYTES,
        )
    }

    /// A pod none of whose app containers reports at `t` is not running:
    /// its pod-level, pause and init cgroups report nothing either.
    fn usage(
        &self,
        w: &WorkloadSpec,
        pod: &PodLife,
        t: i64,
        of: impl Fn(&ContainerSpec) -> &UsageFn,
        pause: f64,
        init: f64,
    ) -> Option<f64> {
        if let Cgroup::App(c) = self {
            return usage(of(c), t, pod.replica);
        }
        let apps: Vec<f64> = w
            .containers
            .iter()
            .filter_map(|c| usage(of(c), t, pod.replica))
            .collect();
        if apps.is_empty() {
            return None;
        }
        let inits = if t < pod.start + INIT_RUN_S {
            w.init_containers.len() as f64
        } else {
            0.0
        };
        Some(match self {
            Cgroup::Pod => pause + init * inits + apps.iter().sum::<f64>(),
            Cgroup::Pause => pause,
            Cgroup::Init(_) | Cgroup::App(_) => init,
        })
    }
}

/// A usage function's value: not finite means no sample, negative means 0.
fn usage(f: &UsageFn, t: i64, replica: u32) -> Option<f64> {
    let v = f(t, replica);
    v.is_finite().then_some(v.max(0.0))
}

fn kubelet(node: &str) -> [(&'static str, &str); 2] {
    [("job", KUBELET), ("instance", node)]
}

const KSM_TARGET: [(&str, &str); 2] = [("job", KSM), ("instance", KSM_INSTANCE)];

fn write_cadvisor<W: Write>(plan: &Plan<'_>, sink: &mut Sink<W>) -> io::Result<()> {
    let interval = plan.interval();
    let cfs_periods = interval * CFS_PERIODS_PER_S;
    let all = |_: &Cgroup<'_>| true;
    let cpu_limited =
        |cg: &Cgroup<'_>| matches!(cg, Cgroup::App(c) if c.resources.cpu_limit.is_some());
    cadvisor_family(
        plan,
        sink,
        "container_cpu_usage_seconds_total",
        FamilyType::Counter,
        all,
        |w, pod, cg, t| cg.cpu_cores(w, pod, t).map(|cores| cores * interval),
    )?;
    cadvisor_family(
        plan,
        sink,
        "container_memory_working_set_bytes",
        FamilyType::Gauge,
        all,
        |w, pod, cg, t| cg.memory_bytes(w, pod, t),
    )?;
    cadvisor_family(
        plan,
        sink,
        "container_cpu_cfs_periods_total",
        FamilyType::Counter,
        cpu_limited,
        |w, pod, cg, t| cg.cpu_cores(w, pod, t).map(|_| cfs_periods),
    )?;
    cadvisor_family(
        plan,
        sink,
        "container_cpu_cfs_throttled_periods_total",
        FamilyType::Counter,
        cpu_limited,
        |w, pod, cg, t| match cg {
            Cgroup::App(c) => cg
                .cpu_cores(w, pod, t)
                .map(|_| cfs_periods * c.throttled_ratio.clamp(0.0, 1.0)),
            _ => None,
        },
    )
}

/// One cAdvisor family over every selected cgroup of every pod. For a
/// counter `value` is the increase since the previous scrape, and an app
/// container's counter starts again from zero after each OOM kill. `None`
/// writes no sample (and a counter keeps its total).
fn cadvisor_family<W: Write>(
    plan: &Plan<'_>,
    sink: &mut Sink<W>,
    name: &str,
    ty: FamilyType,
    select: impl Fn(&Cgroup<'_>) -> bool,
    value: impl Fn(&WorkloadSpec, &PodLife, &Cgroup<'_>, i64) -> Option<f64>,
) -> io::Result<()> {
    sink.family(name, ty);
    for w in &plan.workloads {
        let selected: Vec<Cgroup<'_>> = cgroups(w.spec)
            .into_iter()
            .filter(|cg| select(cg))
            .collect();
        for group in w.by_name() {
            for cg in &selected {
                let image = cg.image(w.spec);
                for pod in group {
                    let labels = [
                        ("namespace", w.spec.namespace.as_str()),
                        ("pod", pod.life.name.as_str()),
                        ("container", cg.container()),
                        ("image", image.as_str()),
                    ];
                    let (from, to) = cg.window(&pod.life);
                    let resets = match (ty, cg) {
                        (FamilyType::Counter, Cgroup::App(c)) => pod.ooms(c),
                        _ => Vec::new(),
                    };
                    let mut total = 0.0;
                    let mut previous: Option<i64> = None;
                    sink.sparse_series(
                        name,
                        &labels,
                        &kubelet(pod.node),
                        plan.scrapes(from, to),
                        |t| {
                            let v = value(w.spec, &pod.life, cg, t)?;
                            Some(match ty {
                                FamilyType::Gauge => v,
                                FamilyType::Counter => {
                                    if previous
                                        .is_some_and(|p| resets.iter().any(|&r| p < r && r <= t))
                                    {
                                        total = 0.0;
                                    }
                                    previous = Some(t);
                                    total += v;
                                    total
                                }
                            })
                        },
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Per-pod KSM families: owner, start time, labels, init containers.
fn write_ksm_pods<W: Write>(plan: &Plan<'_>, sink: &mut Sink<W>) -> io::Result<()> {
    let name = "kube_pod_owner";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        for pod in &w.pods {
            let life = &pod.life;
            let controller = if life.owner_kind == NONE {
                NONE
            } else {
                "true"
            };
            let labels = [
                ("namespace", w.spec.namespace.as_str()),
                ("pod", life.name.as_str()),
                ("uid", life.uid.as_str()),
                ("owner_kind", life.owner_kind),
                ("owner_name", life.owner_name.as_str()),
                ("owner_is_controller", controller),
            ];
            sink.series(
                name,
                &labels,
                &KSM_TARGET,
                plan.scrapes(life.start, life.end),
                |_| 1.0,
            )?;
        }
    }

    let name = "kube_pod_start_time";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        for pod in &w.pods {
            let life = &pod.life;
            let labels = [
                ("namespace", w.spec.namespace.as_str()),
                ("pod", life.name.as_str()),
            ];
            sink.series(
                name,
                &labels,
                &KSM_TARGET,
                plan.scrapes(life.start, life.end),
                |_| life.start as f64,
            )?;
        }
    }

    let name = "kube_pod_labels";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        let mut pod_labels: BTreeMap<String, String> = w
            .spec
            .labels
            .iter()
            .map(|(k, v)| (format!("label_{}", sanitize_label_name(k)), v.clone()))
            .collect();
        if let Some(rs) = replicaset_name(w.spec) {
            let hash = rs.rsplit('-').next().unwrap_or_default().to_string();
            pod_labels.insert("label_pod_template_hash".to_string(), hash);
        }
        for pod in &w.pods {
            let life = &pod.life;
            let mut labels = vec![
                ("namespace", w.spec.namespace.as_str()),
                ("pod", life.name.as_str()),
            ];
            labels.extend(pod_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            sink.series(
                name,
                &labels,
                &KSM_TARGET,
                plan.scrapes(life.start, life.end),
                |_| 1.0,
            )?;
        }
    }

    let name = "kube_pod_init_container_info";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        for pod in &w.pods {
            let life = &pod.life;
            for init in &w.spec.init_containers {
                let image = container_image(w.spec, init);
                let id = container_id(&life.uid, init, 0);
                let labels = [
                    ("namespace", w.spec.namespace.as_str()),
                    ("pod", life.name.as_str()),
                    ("container", init.as_str()),
                    ("image", image.as_str()),
                    ("container_id", id.as_str()),
                ];
                sink.series(
                    name,
                    &labels,
                    &KSM_TARGET,
                    plan.scrapes(life.start, life.end),
                    |_| 1.0,
                )?;
            }
        }
    }
    Ok(())
}

/// Per-container KSM families: info, requests, limits, restarts, reasons.
fn write_ksm_containers<W: Write>(plan: &Plan<'_>, sink: &mut Sink<W>) -> io::Result<()> {
    let name = "kube_pod_container_info";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        for group in w.by_name() {
            for c in &w.spec.containers {
                let image = container_image(w.spec, &c.name);
                for pod in group {
                    let life = &pod.life;
                    // Each restart is a new container with a new ID.
                    let mut bounds = vec![life.start];
                    bounds.extend(pod.ooms(c));
                    bounds.push(life.end);
                    for (restarts, span) in bounds.windows(2).enumerate() {
                        let id = container_id(&life.uid, &c.name, restarts);
                        let labels = [
                            ("namespace", w.spec.namespace.as_str()),
                            ("pod", life.name.as_str()),
                            ("container", c.name.as_str()),
                            ("image", image.as_str()),
                            ("container_id", id.as_str()),
                        ];
                        sink.series(
                            name,
                            &labels,
                            &KSM_TARGET,
                            plan.scrapes(span[0], span[1]),
                            |_| 1.0,
                        )?;
                    }
                }
            }
        }
    }

    for (name, pick) in [
        (
            "kube_pod_container_resource_requests",
            requests as fn(&Resources) -> [Option<f64>; 2],
        ),
        ("kube_pod_container_resource_limits", limits),
    ] {
        sink.family(name, FamilyType::Gauge);
        for w in &plan.workloads {
            for group in w.by_name() {
                for c in &w.spec.containers {
                    let values = pick(&c.resources);
                    for ((resource, unit), value) in [("cpu", "core"), ("memory", "byte")]
                        .into_iter()
                        .zip(values)
                    {
                        let Some(value) = value else { continue };
                        for pod in group {
                            let life = &pod.life;
                            let labels = [
                                ("namespace", w.spec.namespace.as_str()),
                                ("pod", life.name.as_str()),
                                ("container", c.name.as_str()),
                                ("node", pod.node),
                                ("resource", resource),
                                ("unit", unit),
                            ];
                            sink.series(
                                name,
                                &labels,
                                &KSM_TARGET,
                                plan.scrapes(life.start, life.end),
                                |_| value,
                            )?;
                        }
                    }
                }
            }
        }
    }

    let name = "kube_pod_container_status_restarts_total";
    sink.family(name, FamilyType::Counter);
    for w in &plan.workloads {
        for group in w.by_name() {
            for c in &w.spec.containers {
                for pod in group {
                    let life = &pod.life;
                    let ooms = pod.ooms(c);
                    let labels = [
                        ("namespace", w.spec.namespace.as_str()),
                        ("pod", life.name.as_str()),
                        ("container", c.name.as_str()),
                    ];
                    sink.series(
                        name,
                        &labels,
                        &KSM_TARGET,
                        plan.scrapes(life.start, life.end),
                        |t| ooms.iter().filter(|&&o| o <= t).count() as f64,
                    )?;
                }
            }
        }
    }

    let name = "kube_pod_container_status_last_terminated_reason";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        for group in w.by_name() {
            for c in &w.spec.containers {
                for pod in group {
                    let life = &pod.life;
                    let Some(&first_oom) = pod.ooms(c).first() else {
                        continue;
                    };
                    let labels = [
                        ("namespace", w.spec.namespace.as_str()),
                        ("pod", life.name.as_str()),
                        ("container", c.name.as_str()),
                        ("reason", "OOMKilled"),
                    ];
                    sink.series(
                        name,
                        &labels,
                        &KSM_TARGET,
                        plan.scrapes(first_oom, life.end),
                        |_| 1.0,
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn requests(r: &Resources) -> [Option<f64>; 2] {
    [
        r.cpu_request.map(MilliCores::cores),
        r.memory_request.map(Bytes::as_f64),
    ]
}

fn limits(r: &Resources) -> [Option<f64>; 2] {
    [
        r.cpu_limit.map(MilliCores::cores),
        r.memory_limit.map(Bytes::as_f64),
    ]
}

/// Controller-level KSM families: ReplicaSet and Job owners, HPAs, nodes.
fn write_ksm_controllers<W: Write>(plan: &Plan<'_>, sink: &mut Sink<W>) -> io::Result<()> {
    let name = "kube_replicaset_owner";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        let (owner_kind, owner_name, controller) = match w.spec.kind {
            WorkloadKind::Deployment => ("Deployment", w.spec.name.as_str(), "true"),
            WorkloadKind::ReplicaSet => (NONE, NONE, NONE),
            _ => continue,
        };
        let Some((from, to)) = span(w.pods.iter().map(|p| &p.life)) else {
            continue;
        };
        let replicaset = replicaset_name(w.spec).unwrap_or_else(|| w.spec.name.clone());
        let labels = [
            ("namespace", w.spec.namespace.as_str()),
            ("replicaset", replicaset.as_str()),
            ("owner_kind", owner_kind),
            ("owner_name", owner_name),
            ("owner_is_controller", controller),
        ];
        sink.series(name, &labels, &KSM_TARGET, plan.scrapes(from, to), |_| 1.0)?;
    }

    let name = "kube_job_owner";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        let (owner_kind, owner_name, controller) = match w.spec.kind {
            WorkloadKind::CronJob => ("CronJob", w.spec.name.as_str(), "true"),
            WorkloadKind::Job => (NONE, NONE, NONE),
            _ => continue,
        };
        let mut jobs: BTreeMap<&str, Vec<&PodLife>> = BTreeMap::new();
        for pod in &w.pods {
            jobs.entry(pod.life.owner_name.as_str())
                .or_default()
                .push(&pod.life);
        }
        for (job, lives) in jobs {
            let Some((from, to)) = span(lives.into_iter()) else {
                continue;
            };
            let labels = [
                ("namespace", w.spec.namespace.as_str()),
                ("job_name", job),
                ("owner_kind", owner_kind),
                ("owner_name", owner_name),
                ("owner_is_controller", controller),
            ];
            sink.series(name, &labels, &KSM_TARGET, plan.scrapes(from, to), |_| 1.0)?;
        }
    }

    let whole = (plan.spec.start, plan.spec.end);
    let name = "kube_horizontalpodautoscaler_info";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        if w.spec.hpa.is_none() {
            continue;
        }
        let labels = [
            ("namespace", w.spec.namespace.as_str()),
            ("horizontalpodautoscaler", w.spec.name.as_str()),
            ("scaletargetref_api_version", "apps/v1"),
            ("scaletargetref_kind", w.spec.kind.as_str()),
            ("scaletargetref_name", w.spec.name.as_str()),
        ];
        sink.series(
            name,
            &labels,
            &KSM_TARGET,
            plan.scrapes(whole.0, whole.1),
            |_| 1.0,
        )?;
    }

    let name = "kube_horizontalpodautoscaler_spec_target_metric";
    sink.family(name, FamilyType::Gauge);
    for w in &plan.workloads {
        let Some(hpa) = w.spec.hpa else { continue };
        let metric = hpa.resource.to_string();
        let labels = [
            ("namespace", w.spec.namespace.as_str()),
            ("horizontalpodautoscaler", w.spec.name.as_str()),
            ("metric_name", metric.as_str()),
            ("metric_target_type", "utilization"),
        ];
        let target = f64::from(hpa.target_utilization_percent);
        sink.series(
            name,
            &labels,
            &KSM_TARGET,
            plan.scrapes(whole.0, whole.1),
            |_| target,
        )?;
    }

    let name = "kube_node_status_allocatable";
    sink.family(name, FamilyType::Gauge);
    for node in &plan.spec.nodes {
        for (resource, unit, value) in [
            ("cpu", "core", node.cpu.cores()),
            ("memory", "byte", node.memory.as_f64()),
        ] {
            let labels = [
                ("node", node.name.as_str()),
                ("resource", resource),
                ("unit", unit),
            ];
            sink.series(
                name,
                &labels,
                &KSM_TARGET,
                plan.scrapes(whole.0, whole.1),
                |_| value,
            )?;
        }
    }
    Ok(())
}

/// From the first start to the last end of some pods.
fn span<'a>(lives: impl Iterator<Item = &'a PodLife>) -> Option<(i64, i64)> {
    lives.fold(None, |acc, l| match acc {
        None => Some((l.start, l.end)),
        Some((from, to)) => Some((from.min(l.start), to.max(l.end))),
    })
}

/// Writes families, series and samples in one of the two text formats and
/// counts what it wrote.
struct Sink<W: Write> {
    out: BufWriter<W>,
    format: Format,
    stats: WriteStats,
    /// `name{labels}` of the series being written, and of the previous one:
    /// a series is counted once however many spans of samples it has.
    current: String,
    previous: String,
    counted: bool,
    number: String,
    /// The `# TYPE` line of the family whose first sample is yet to come.
    header: Option<String>,
}

impl<W: Write> Sink<W> {
    fn new(out: W, format: Format) -> Self {
        Sink {
            out: BufWriter::with_capacity(1 << 16, out),
            format,
            stats: WriteStats::default(),
            current: String::new(),
            previous: String::new(),
            counted: false,
            number: String::new(),
            header: None,
        }
    }

    /// Starts a family; its `# TYPE` line is written with its first sample,
    /// so families without series leave no trace.
    fn family(&mut self, name: &str, ty: FamilyType) {
        let (family, ty) = match (self.format, ty) {
            // OpenMetrics names a counter family without the `_total` suffix
            // its samples carry.
            (Format::OpenMetrics, FamilyType::Counter) => {
                (name.strip_suffix("_total").unwrap_or(name), "counter")
            }
            (Format::Prometheus, FamilyType::Counter) => (name, "counter"),
            (_, FamilyType::Gauge) => (name, "gauge"),
        };
        self.header = Some(format!("# TYPE {family} {ty}\n"));
    }

    /// Writes one series' samples at `times`.
    fn series(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        target: &[(&str, &str)],
        times: impl Iterator<Item = i64>,
        mut value: impl FnMut(i64) -> f64,
    ) -> io::Result<()> {
        self.sparse_series(name, labels, target, times, |t| Some(value(t)))
    }

    /// Writes one series' samples at those of `times` where `value` has one;
    /// no sample, no series.
    fn sparse_series(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        target: &[(&str, &str)],
        times: impl Iterator<Item = i64>,
        mut value: impl FnMut(i64) -> Option<f64>,
    ) -> io::Result<()> {
        self.current.clear();
        self.current.push_str(name);
        self.current.push('{');
        for (i, (label, label_value)) in labels.iter().chain(target).enumerate() {
            if i > 0 {
                self.current.push(',');
            }
            self.current.push_str(label);
            self.current.push_str("=\"");
            escape_label_value(label_value, &mut self.current);
            self.current.push('"');
        }
        self.current.push('}');
        self.counted = false;
        for t in times {
            if let Some(v) = value(t) {
                self.sample(t, v)?;
            }
        }
        Ok(())
    }

    fn sample(&mut self, t: i64, v: f64) -> io::Result<()> {
        use std::fmt::Write as _;
        if let Some(header) = self.header.take() {
            self.out.write_all(header.as_bytes())?;
            self.stats.families += 1;
        }
        if !self.counted {
            self.counted = true;
            if self.current != self.previous {
                self.stats.series += 1;
                self.previous.clone_from(&self.current);
            }
        }
        self.number.clear();
        // Writing to a String cannot fail.
        let _ = if v.is_nan() {
            self.number.write_str("NaN")
        } else if v.is_infinite() {
            self.number.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            write!(self.number, "{v}")
        };
        let _ = match self.format {
            Format::OpenMetrics => write!(self.number, " {t}"),
            Format::Prometheus => write!(self.number, " {}", t.saturating_mul(1000)),
        };
        self.out.write_all(self.current.as_bytes())?;
        self.out.write_all(b" ")?;
        self.out.write_all(self.number.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.stats.samples += 1;
        Ok(())
    }

    fn finish(mut self) -> io::Result<WriteStats> {
        if self.format == Format::OpenMetrics {
            self.out.write_all(b"# EOF\n")?;
        }
        self.out.flush()?;
        Ok(self.stats)
    }
}

/// Label value escaping of both text formats: backslash, quote, newline.
fn escape_label_value(value: &str, out: &mut String) {
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
}

/// KSM's label-name sanitizing: anything outside `[a-zA-Z0-9_]` becomes `_`.
fn sanitize_label_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The pod-template-hash: changes only when the pod template does.
fn template_hash(spec: &WorkloadSpec) -> String {
    let mut parts = vec![spec.namespace.clone(), spec.name.clone()];
    for c in &spec.containers {
        parts.push(c.name.clone());
        parts.push(format!("{:?}", c.resources));
    }
    parts.extend(spec.init_containers.iter().cloned());
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    safe_encode(hash(&parts), 10)
}

fn container_id(pod_uid: &str, container: &str, restarts: usize) -> String {
    let restarts = restarts.to_string();
    let mut id = String::from("containerd://");
    for i in ["0", "1", "2", "3"] {
        id.push_str(&format!(
            "{:016x}",
            hash(&[pod_uid, container, &restarts, i])
        ));
    }
    id
}

fn uuid(parts: &[&str]) -> String {
    let a = hash(parts);
    let mut salted = parts.to_vec();
    salted.push("uid");
    let b = hash(&salted);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// FNV-1a over the parts, then a splitmix64 finalizer: stable across Rust
/// versions and platforms, unlike `std`'s `DefaultHasher`.
fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Kubernetes' `rand.SafeEncodeString` alphabet: no vowels, no look-alikes.
fn safe_encode(mut h: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(char::from(ALPHABET[(h % ALPHABET.len() as u64) as usize]));
        h /= ALPHABET.len() as u64;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> HistorySpec {
        let app = ContainerSpec::new(
            "app",
            Resources {
                cpu_request: Some(MilliCores(250)),
                memory_limit: Some(Bytes::mib(128)),
                ..Resources::default()
            },
            constant(0.5),
            constant(1000.0),
        );
        HistorySpec {
            start: 1_700_000_000,
            end: 1_700_000_120,
            scrape_interval_s: 60,
            workloads: vec![WorkloadSpec::new(
                "shop",
                WorkloadKind::Deployment,
                "web",
                1,
                vec![app],
            )],
            nodes: vec![],
        }
    }

    fn render(spec: &HistorySpec, format: Format) -> (String, WriteStats) {
        let mut out = Vec::new();
        let stats = write_history(spec, &mut out, format).expect("writing to a Vec");
        (
            String::from_utf8(out).expect("the writers write UTF-8"),
            stats,
        )
    }

    /// Distinct `name{labels}` of the sample lines.
    fn series_of(text: &str) -> Vec<&str> {
        let mut all: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplitn(3, ' ').nth(2))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The sample lines of one metric, `labels value time`.
    fn samples<'a>(text: &'a str, metric: &str, filter: &str) -> Vec<&'a str> {
        let prefix = format!("{metric}{{");
        text.lines()
            .filter(|l| l.starts_with(&prefix) && l.contains(filter))
            .collect()
    }

    fn values(text: &str, metric: &str, filter: &str) -> Vec<f64> {
        samples(text, metric, filter)
            .iter()
            .map(|l| {
                l.rsplit(' ')
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .expect("a number")
            })
            .collect()
    }

    #[test]
    fn tiny_spec_writes_exactly_these_openmetrics_lines() {
        let (text, stats) = render(&tiny(), Format::OpenMetrics);
        let expected = r#"# TYPE container_cpu_usage_seconds counter
container_cpu_usage_seconds_total{namespace="shop",pod="web-w422w6w9ld-m72sd",container="",image="",job="kubelet",instance="node-0"} 30.006 1700000000
container_cpu_usage_seconds_total{namespace="shop",pod="web-w422w6w9ld-m72sd",container="",image="",job="kubelet",instance="node-0"} 60.012 1700000060
container_cpu_usage_seconds_total{namespace="shop",pod="web-w422w6w9ld-m72sd",container="POD",image="registry.k8s.io/pause:3.9",job="kubelet",instance="node-0"} 0.006 1700000000
container_cpu_usage_seconds_total{namespace="shop",pod="web-w422w6w9ld-m72sd",container="POD",image="registry.k8s.io/pause:3.9",job="kubelet",instance="node-0"} 0.012 1700000060
container_cpu_usage_seconds_total{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",image="registry.example.com/web/app:1.0",job="kubelet",instance="node-0"} 30 1700000000
container_cpu_usage_seconds_total{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",image="registry.example.com/web/app:1.0",job="kubelet",instance="node-0"} 60 1700000060
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{namespace="shop",pod="web-w422w6w9ld-m72sd",container="",image="",job="kubelet",instance="node-0"} 451560 1700000000
container_memory_working_set_bytes{namespace="shop",pod="web-w422w6w9ld-m72sd",container="",image="",job="kubelet",instance="node-0"} 451560 1700000060
container_memory_working_set_bytes{namespace="shop",pod="web-w422w6w9ld-m72sd",container="POD",image="registry.k8s.io/pause:3.9",job="kubelet",instance="node-0"} 450560 1700000000
container_memory_working_set_bytes{namespace="shop",pod="web-w422w6w9ld-m72sd",container="POD",image="registry.k8s.io/pause:3.9",job="kubelet",instance="node-0"} 450560 1700000060
container_memory_working_set_bytes{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",image="registry.example.com/web/app:1.0",job="kubelet",instance="node-0"} 1000 1700000000
container_memory_working_set_bytes{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",image="registry.example.com/web/app:1.0",job="kubelet",instance="node-0"} 1000 1700000060
# TYPE kube_pod_owner gauge
kube_pod_owner{namespace="shop",pod="web-w422w6w9ld-m72sd",uid="8bedfa11-bdba-77ab-b776-9c706d86f038",owner_kind="ReplicaSet",owner_name="web-w422w6w9ld",owner_is_controller="true",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1 1700000000
kube_pod_owner{namespace="shop",pod="web-w422w6w9ld-m72sd",uid="8bedfa11-bdba-77ab-b776-9c706d86f038",owner_kind="ReplicaSet",owner_name="web-w422w6w9ld",owner_is_controller="true",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1 1700000060
# TYPE kube_pod_start_time gauge
kube_pod_start_time{namespace="shop",pod="web-w422w6w9ld-m72sd",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1700000000 1700000000
kube_pod_start_time{namespace="shop",pod="web-w422w6w9ld-m72sd",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1700000000 1700000060
# TYPE kube_pod_labels gauge
kube_pod_labels{namespace="shop",pod="web-w422w6w9ld-m72sd",label_pod_template_hash="w422w6w9ld",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1 1700000000
kube_pod_labels{namespace="shop",pod="web-w422w6w9ld-m72sd",label_pod_template_hash="w422w6w9ld",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1 1700000060
# TYPE kube_pod_container_info gauge
kube_pod_container_info{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",image="registry.example.com/web/app:1.0",container_id="containerd://fc5e1f5c3a7a9f10df72c80044879c984d43758ed9f00144dcbdff0d31f02417",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1 1700000000
kube_pod_container_info{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",image="registry.example.com/web/app:1.0",container_id="containerd://fc5e1f5c3a7a9f10df72c80044879c984d43758ed9f00144dcbdff0d31f02417",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1 1700000060
# TYPE kube_pod_container_resource_requests gauge
kube_pod_container_resource_requests{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",node="node-0",resource="cpu",unit="core",job="kube-state-metrics",instance="kube-state-metrics:8080"} 0.25 1700000000
kube_pod_container_resource_requests{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",node="node-0",resource="cpu",unit="core",job="kube-state-metrics",instance="kube-state-metrics:8080"} 0.25 1700000060
# TYPE kube_pod_container_resource_limits gauge
kube_pod_container_resource_limits{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",node="node-0",resource="memory",unit="byte",job="kube-state-metrics",instance="kube-state-metrics:8080"} 134217728 1700000000
kube_pod_container_resource_limits{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",node="node-0",resource="memory",unit="byte",job="kube-state-metrics",instance="kube-state-metrics:8080"} 134217728 1700000060
# TYPE kube_pod_container_status_restarts counter
kube_pod_container_status_restarts_total{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",job="kube-state-metrics",instance="kube-state-metrics:8080"} 0 1700000000
kube_pod_container_status_restarts_total{namespace="shop",pod="web-w422w6w9ld-m72sd",container="app",job="kube-state-metrics",instance="kube-state-metrics:8080"} 0 1700000060
# TYPE kube_replicaset_owner gauge
kube_replicaset_owner{namespace="shop",replicaset="web-w422w6w9ld",owner_kind="Deployment",owner_name="web",owner_is_controller="true",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1 1700000000
kube_replicaset_owner{namespace="shop",replicaset="web-w422w6w9ld",owner_kind="Deployment",owner_name="web",owner_is_controller="true",job="kube-state-metrics",instance="kube-state-metrics:8080"} 1 1700000060
# EOF
"#;
        assert_eq!(text, expected);
        assert_eq!(
            stats,
            WriteStats {
                series: 14,
                samples: 28,
                families: 10
            }
        );
        assert_eq!(series_of(&text).len(), stats.series);
    }

    #[test]
    fn prometheus_import_text_has_millisecond_timestamps_and_total_counter_types() {
        let (open, open_stats) = render(&tiny(), Format::OpenMetrics);
        let (prom, prom_stats) = render(&tiny(), Format::Prometheus);
        assert_eq!(open_stats, prom_stats);
        assert!(prom.starts_with("# TYPE container_cpu_usage_seconds_total counter\n"));
        assert!(!prom.contains("# EOF"));
        let from_open: Vec<String> = open
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (rest, t) = l.rsplit_once(' ').expect("a timestamp");
                format!("{rest} {t}000")
            })
            .collect();
        let from_prom: Vec<&str> = prom.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(from_open, from_prom);
    }

    #[test]
    fn an_oom_kill_restarts_the_cpu_counter_and_is_reported() {
        let mut spec = tiny();
        spec.end = spec.start + 240;
        spec.workloads[0].containers[0].oom_kill_times = vec![spec.start + 90];
        let (text, stats) = render(&spec, Format::OpenMetrics);
        let cpu = "container_cpu_usage_seconds_total";
        assert_eq!(
            values(&text, cpu, r#"container="app""#),
            [30.0, 60.0, 30.0, 60.0]
        );
        // The pod's own cgroup lives on: its counter does not restart.
        let pod_level = values(&text, cpu, r#"container="""#);
        assert!(pod_level.windows(2).all(|w| w[0] < w[1]), "{pod_level:?}");
        let restarts = "kube_pod_container_status_restarts_total";
        assert_eq!(values(&text, restarts, ""), [0.0, 0.0, 1.0, 1.0]);
        let reason = samples(
            &text,
            "kube_pod_container_status_last_terminated_reason",
            "",
        );
        assert_eq!(reason.len(), 2);
        assert!(reason[0].contains(r#"reason="OOMKilled""#));
        assert!(
            reason[0].ends_with(&format!(" 1 {}", spec.start + 120)),
            "{}",
            reason[0]
        );
        // The restarted container has a new ID.
        let info = samples(&text, "kube_pod_container_info", "");
        assert_eq!(series_of(&info.join("\n")).len(), 2);
        assert_eq!(series_of(&text).len(), stats.series);
    }

    #[test]
    fn cfs_counters_exist_only_with_a_cpu_limit() {
        let mut spec = tiny();
        let (text, _) = render(&spec, Format::OpenMetrics);
        assert!(!text.contains("container_cpu_cfs"));
        let app = &mut spec.workloads[0].containers[0];
        app.resources.cpu_limit = Some(MilliCores(500));
        app.throttled_ratio = 0.25;
        let (text, _) = render(&spec, Format::OpenMetrics);
        assert_eq!(
            values(&text, "container_cpu_cfs_periods_total", ""),
            [600.0, 1200.0]
        );
        assert_eq!(
            values(&text, "container_cpu_cfs_throttled_periods_total", ""),
            [150.0, 300.0]
        );
        assert_eq!(
            values(
                &text,
                "kube_pod_container_resource_limits",
                r#"resource="cpu""#
            ),
            [0.5, 0.5]
        );
    }

    #[test]
    fn churn_gives_deployment_pods_new_names_in_one_replicaset() {
        let mut w = tiny().workloads.remove(0);
        w.replicas = 2;
        w.pod_lifetime_s = Some(3600);
        let lives = pods(&w, 0, 3 * 3600 + 1800);
        assert_eq!(lives.len(), 8);
        let mut names: Vec<&str> = lives.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 8, "{names:?}");
        let rs = replicaset_name(&w).expect("a Deployment has a ReplicaSet");
        assert!(
            lives
                .iter()
                .all(|p| p.owner_kind == "ReplicaSet" && p.owner_name == rs)
        );
        assert!(
            lives
                .iter()
                .all(|p| p.name.starts_with(&format!("{rs}-")) && p.name.len() == rs.len() + 6)
        );
        let replica_1: Vec<(i64, i64)> = lives
            .iter()
            .filter(|p| p.replica == 1)
            .map(|p| (p.start, p.end))
            .collect();
        assert_eq!(
            replica_1,
            [(0, 3600), (3600, 7200), (7200, 10800), (10800, 12600)]
        );
        // Same inputs, same names: nothing random.
        assert_eq!(pods(&w, 0, 3 * 3600 + 1800), lives);
    }

    #[test]
    fn the_replicaset_hash_changes_only_with_the_pod_template() {
        let w = tiny().workloads.remove(0);
        let mut churned = w.clone();
        churned.pod_lifetime_s = Some(60);
        churned.containers[0].cpu_cores = constant(3.0);
        assert_eq!(replicaset_name(&w), replicaset_name(&churned));
        let mut resized = w.clone();
        resized.containers[0].resources.cpu_request = Some(MilliCores(300));
        assert_ne!(replicaset_name(&w), replicaset_name(&resized));
    }

    #[test]
    fn statefulset_pods_keep_their_names_and_get_new_uids() {
        let mut spec = tiny();
        let w = &mut spec.workloads[0];
        w.kind = WorkloadKind::StatefulSet;
        w.name = "db".to_string();
        w.pod_lifetime_s = Some(60);
        let lives = pods(w, spec.start, spec.end);
        let names: Vec<&str> = lives.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["db-0", "db-0"]);
        assert_ne!(lives[0].uid, lives[1].uid);
        let (text, stats) = render(&spec, Format::OpenMetrics);
        // One usage series across both pods, two owner series (by uid).
        let cpu = samples(
            &text,
            "container_cpu_usage_seconds_total",
            r#"container="app""#,
        );
        assert_eq!(series_of(&cpu.join("\n")).len(), 1);
        assert_eq!(
            values(
                &text,
                "container_cpu_usage_seconds_total",
                r#"container="app""#
            ),
            [30.0, 30.0]
        );
        let owners = samples(
            &text,
            "kube_pod_owner",
            r#"owner_kind="StatefulSet",owner_name="db""#,
        );
        assert_eq!(series_of(&owners.join("\n")).len(), 2);
        assert_eq!(series_of(&text).len(), stats.series);
    }

    #[test]
    fn cronjob_runs_are_jobs_owned_by_the_cronjob() {
        let mut spec = tiny();
        spec.end = spec.start + 3 * 3600;
        let w = &mut spec.workloads[0];
        w.kind = WorkloadKind::CronJob;
        w.name = "report".to_string();
        w.pod_lifetime_s = Some(3600);
        let lives = pods(w, spec.start, spec.end);
        let jobs: Vec<&str> = lives.iter().map(|p| p.owner_name.as_str()).collect();
        let first = spec.start / 60;
        let expected: Vec<String> = (0..3)
            .map(|i| format!("report-{}", first + i * 60))
            .collect();
        assert_eq!(jobs, expected);
        let (text, _) = render(&spec, Format::OpenMetrics);
        let owners = samples(
            &text,
            "kube_job_owner",
            r#"owner_kind="CronJob",owner_name="report",owner_is_controller="true""#,
        );
        assert_eq!(owners.len(), 180);
        assert_eq!(series_of(&owners.join("\n")).len(), 3);
    }

    #[test]
    fn bare_pods_have_no_owner_as_ksm_says_it() {
        let mut spec = tiny();
        spec.workloads[0].kind = WorkloadKind::Pod;
        let (text, _) = render(&spec, Format::OpenMetrics);
        let owner = samples(&text, "kube_pod_owner", "");
        assert!(owner[0].contains(r#"pod="web",uid="#), "{}", owner[0]);
        assert!(
            owner[0].contains(
                r#"owner_kind="<none>",owner_name="<none>",owner_is_controller="<none>""#
            )
        );
        assert!(!text.contains("kube_replicaset_owner"));
    }

    #[test]
    fn init_containers_report_usage_in_the_first_minute_only() {
        let mut spec = tiny();
        spec.end = spec.start + 600;
        spec.workloads[0].init_containers = vec!["migrate".to_string()];
        let (text, _) = render(&spec, Format::OpenMetrics);
        let init = samples(
            &text,
            "container_memory_working_set_bytes",
            r#"container="migrate""#,
        );
        assert_eq!(init.len(), 1);
        assert_eq!(
            samples(
                &text,
                "kube_pod_init_container_info",
                r#"container="migrate""#
            )
            .len(),
            10
        );
        let pod_memory = values(
            &text,
            "container_memory_working_set_bytes",
            r#"container="""#,
        );
        assert_eq!(pod_memory[0] - pod_memory[1], INIT_MEMORY_BYTES);
    }

    #[test]
    fn labels_are_sanitized_and_values_escaped() {
        let mut spec = tiny();
        let w = &mut spec.workloads[0];
        w.labels.insert(
            "app.kubernetes.io/name".to_string(),
            "say \"hi\"\\\nbye".to_string(),
        );
        let (text, _) = render(&spec, Format::OpenMetrics);
        let labels = samples(&text, "kube_pod_labels", "");
        assert!(
            labels[0].contains(r#"label_app_kubernetes_io_name="say \"hi\"\\\nbye""#),
            "{}",
            labels[0]
        );
    }

    #[test]
    fn hpas_and_nodes_are_described() {
        let mut spec = tiny();
        spec.nodes = vec![NodeSpec {
            name: "n1".to_string(),
            cpu: MilliCores(3920),
            memory: Bytes::gib(15),
        }];
        spec.workloads[0].hpa = Some(HpaSpec {
            resource: ResourceKind::Cpu,
            target_utilization_percent: 70,
        });
        let (text, _) = render(&spec, Format::OpenMetrics);
        let info = samples(&text, "kube_horizontalpodautoscaler_info", "");
        assert!(info[0].contains(
            r#"{namespace="shop",horizontalpodautoscaler="web",scaletargetref_api_version="apps/v1",scaletargetref_kind="Deployment",scaletargetref_name="web","#
        ));
        let target = r#"metric_name="cpu",metric_target_type="utilization""#;
        assert_eq!(
            values(
                &text,
                "kube_horizontalpodautoscaler_spec_target_metric",
                target
            ),
            [70.0, 70.0]
        );
        assert_eq!(
            values(
                &text,
                "kube_node_status_allocatable",
                r#"node="n1",resource="cpu",unit="core""#
            ),
            [3.92, 3.92]
        );
        assert_eq!(
            values(
                &text,
                "kube_node_status_allocatable",
                r#"resource="memory""#
            ),
            [Bytes::gib(15).as_f64(); 2]
        );
        assert!(
            samples(&text, "container_memory_working_set_bytes", "")
                .iter()
                .all(|l| l.contains(r#"instance="n1""#))
        );
    }

    #[test]
    fn odd_usage_values_never_break_the_text() {
        let mut spec = tiny();
        spec.workloads[0].containers[0].cpu_cores = Arc::new(|_, _| f64::INFINITY);
        spec.workloads[0].containers[0].memory_bytes = constant(-5.0);
        let (text, _) = render(&spec, Format::OpenMetrics);
        assert!(samples(&text, "container_cpu_usage_seconds_total", "").is_empty());
        assert_eq!(
            values(
                &text,
                "container_memory_working_set_bytes",
                r#"container="app""#
            ),
            [0.0, 0.0]
        );
        let mut bad = tiny();
        bad.scrape_interval_s = 0;
        assert!(write_openmetrics(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn nan_usage_means_not_running_yet() {
        let mut spec = tiny();
        spec.end = spec.start + 300;
        let born = spec.start + 120;
        let app = &mut spec.workloads[0].containers[0];
        app.cpu_cores = Arc::new(move |t, _| if t < born { f64::NAN } else { 0.5 });
        app.memory_bytes = Arc::new(move |t, _| if t < born { f64::NAN } else { 1000.0 });
        app.resources.cpu_limit = Some(MilliCores(1000));
        let (text, stats) = render(&spec, Format::OpenMetrics);
        let cpu = "container_cpu_usage_seconds_total";
        // Usage series start when the container does, counters from zero.
        assert_eq!(values(&text, cpu, r#"container="app""#), [30.0, 60.0, 90.0]);
        assert_eq!(samples(&text, cpu, r#"container="POD""#).len(), 3);
        assert_eq!(samples(&text, cpu, r#"container="""#).len(), 3);
        assert_eq!(
            samples(&text, "container_memory_working_set_bytes", "").len(),
            9
        );
        assert_eq!(
            samples(&text, "container_cpu_cfs_periods_total", "").len(),
            3
        );
        // What kube-state-metrics knows of the pod is not usage: it stays.
        assert_eq!(samples(&text, "kube_pod_owner", "").len(), 5);
        assert_eq!(series_of(&text).len(), stats.series);
    }

    #[test]
    fn scrapes_are_on_the_grid_from_start() {
        let spec = tiny();
        let plan = Plan::new(&spec);
        let got: Vec<i64> = plan.scrapes(spec.start + 1, spec.start + 200).collect();
        assert_eq!(got, [spec.start + 60]);
        assert_eq!(
            plan.scrapes(spec.start - 100, spec.start + 1)
                .collect::<Vec<_>>(),
            [spec.start]
        );
        assert_eq!(plan.scrapes(spec.start + 30, spec.start + 40).count(), 0);
    }

    #[test]
    fn ramps_are_flat_outside_their_ends() {
        let f = ramp((100, 1.0), (200, 3.0));
        assert_eq!(
            [f(0, 0), f(100, 0), f(150, 7), f(200, 0), f(999, 0)],
            [1.0, 1.0, 2.0, 3.0, 3.0]
        );
    }
}
