//! Workload discovery from kube-state-metrics alone: no cluster access.
//!
//! Pods are mapped to their controlling workload through `kube_pod_owner`,
//! `kube_replicaset_owner` (Deployments) and `kube_job_owner` (CronJobs),
//! using every pod seen in the history window, so pods that came and went
//! still count for their workload. Init containers are never listed: only
//! `kube_pod_container_info` names the containers we size.
//!
//! What is read, and why it stays cheap on a long window:
//!
//! - Labels only (owners, containers, HPAs, pod labels): the series API
//!   over the window, answered from the backend's index without decoding a
//!   sample (`/api/v1/series`; Prometheus, Thanos, Mimir and
//!   VictoriaMetrics all serve it; VictoriaMetrics resolves the window to
//!   whole days, so it may list pods gone up to a day before it).
//! - Pods running at the evaluation time, their start time and requests
//!   and limits: instant queries at that time (default 5-minute lookback).
//! - Pods gone by then: `last_over_time` over the window of those pods' own
//!   series, batched by namespace with a bounded `pod=~` alternation. Their
//!   samples only span their lifetime, so this costs in proportion to the
//!   churn. Start times are read for all of them, requests and limits only
//!   for the pods that can give a container its current values (no running
//!   pod has it; the newest pod), memory limits for the rest (OOM bumps).
//!
//! That is a dozen requests whatever the size of the cluster, plus a few
//! per 100 pods gone during the window.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::MetricsError;
use super::client::{Labels, PromClient};
use super::promql::{self, Op, Scope, Selector};
use crate::domain::{ContainerRef, Resources, WorkloadKind, WorkloadRef};
use crate::recommend::policy::{HpaScaling, NodeCapacity};
use crate::units::{Bytes, MilliCores};

/// One pod seen in the window.
#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    /// Index into [`Inventory::workloads`].
    pub workload: usize,
    pub start: Option<i64>,
    /// Running at the evaluation instant.
    pub alive: bool,
    /// Container name → index into [`Inventory::containers`].
    pub containers: HashMap<String, usize>,
    /// Memory limit per container name, for OOM bumps.
    pub memory_limits: HashMap<String, f64>,
}

/// One workload and what we know of it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadInfo {
    pub workload: WorkloadRef,
    /// Pods running at the evaluation instant.
    pub replicas: u32,
    /// Pods seen over the whole window.
    pub pods_seen: u32,
    pub hpa: HpaScaling,
    /// Labels of one of its pods (`kube_pod_labels`), when asked for.
    pub labels: BTreeMap<String, String>,
}

/// One workload container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerInfo {
    pub target: ContainerRef,
    pub workload: usize,
    /// Requests and limits of the running pods (the newest pod when none runs).
    pub current: Resources,
}

/// Everything discovery found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    pub workloads: Vec<WorkloadInfo>,
    pub containers: Vec<ContainerInfo>,
    pub pods: HashMap<(String, String), PodInfo>,
    pub node_capacity: Option<NodeCapacity>,
    /// Counted data problems: reason → count.
    pub skipped: BTreeMap<String, u64>,
}

impl Inventory {
    pub fn namespaces(&self) -> BTreeSet<&str> {
        self.workloads
            .iter()
            .map(|w| w.workload.namespace.as_str())
            .collect()
    }

    /// Pods seen per namespace: the number of series a usage query returns.
    pub fn pods_per_namespace(&self) -> BTreeMap<&str, usize> {
        let mut out = BTreeMap::new();
        for ((namespace, _), pod) in &self.pods {
            *out.entry(namespace.as_str()).or_default() += pod.containers.len().max(1);
        }
        out
    }

    /// Keeps only the workloads `keep` accepts, with their pods and containers.
    pub fn retain_workloads(&mut self, keep: impl Fn(&WorkloadInfo) -> bool) {
        let kept: Vec<bool> = self.workloads.iter().map(keep).collect();
        let workload_map = index_map(&kept);
        let containers: Vec<bool> = self.containers.iter().map(|c| kept[c.workload]).collect();
        self.retain_containers(&containers);
        retain_marked(&mut self.workloads, &kept);
        for c in &mut self.containers {
            c.workload = workload_map[c.workload];
        }
        self.pods.retain(|_, p| kept[p.workload]);
        for pod in self.pods.values_mut() {
            pod.workload = workload_map[pod.workload];
        }
    }

    /// Keeps the containers `keep` marks (indexed like `containers`); the
    /// pods' references follow.
    pub fn retain_containers(&mut self, keep: &[bool]) {
        let map = index_map(keep);
        retain_marked(&mut self.containers, keep);
        for pod in self.pods.values_mut() {
            pod.containers.retain(|_, c| keep[*c]);
            for c in pod.containers.values_mut() {
                *c = map[*c];
            }
        }
    }

    /// The container a usage series belongs to.
    pub fn container_of(&self, labels: &Labels) -> Option<(usize, &PodInfo)> {
        let namespace = labels.get("namespace")?;
        let pod = labels.get("pod")?;
        let container = labels.get("container")?;
        let info = self.pods.get(&(namespace.clone(), pod.clone()))?;
        info.containers.get(container).map(|&i| (i, info))
    }
}

/// Keeps the items whose index `keep` marks.
pub fn retain_marked<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut marks = keep.iter();
    items.retain(|_| marks.next().copied().unwrap_or(false));
}

/// Old index → new index once the unmarked items are gone (`usize::MAX`
/// for a dropped one).
fn index_map(keep: &[bool]) -> Vec<usize> {
    let mut next = 0;
    keep.iter()
        .map(|&k| {
            if k {
                next += 1;
                next - 1
            } else {
                usize::MAX
            }
        })
        .collect()
}

fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map_or("", String::as_str)
}

fn pod_key(labels: &Labels) -> (String, String) {
    (
        label(labels, "namespace").to_string(),
        label(labels, "pod").to_string(),
    )
}

/// Most pod names in one `pod=~` regex, and its longest text: keeps each
/// query small enough for any backend's limits and quick to parse.
const PODS_PER_QUERY: usize = 100;
const POD_REGEX_BYTES: usize = 8_000;

/// Runs discovery as of `at`, looking back `window_s`.
pub async fn discover(
    client: &PromClient,
    scope: &Scope,
    cluster_scope: &Scope,
    at: i64,
    window_s: i64,
    want_labels: bool,
) -> Result<Inventory, MetricsError> {
    let start = at - window_s;
    let selector = |metric: &str| Selector::new(metric).scoped(scope);
    // Label-only lookups over the window: the series API reads the index,
    // never a sample.

    // Pod → owner, over the window (a set: several kube-state-metrics
    // replicas expose the same pod).
    let mut owners: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    client
        .series(&selector("kube_pod_owner").to_string(), start, at, |l| {
            owners.insert((
                label(l, "namespace").into(),
                label(l, "pod").into(),
                label(l, "owner_kind").into(),
                label(l, "owner_name").into(),
            ));
        })
        .await?;
    let mut rs_owner: HashMap<(String, String), (String, String)> = HashMap::new();
    client
        .series(
            &selector("kube_replicaset_owner").to_string(),
            start,
            at,
            |l| {
                rs_owner.insert(
                    (label(l, "namespace").into(), label(l, "replicaset").into()),
                    (label(l, "owner_kind").into(), label(l, "owner_name").into()),
                );
            },
        )
        .await?;
    let mut job_owner: HashMap<(String, String), (String, String)> = HashMap::new();
    client
        .series(&selector("kube_job_owner").to_string(), start, at, |l| {
            job_owner.insert(
                (label(l, "namespace").into(), label(l, "job_name").into()),
                (label(l, "owner_kind").into(), label(l, "owner_name").into()),
            );
        })
        .await?;
    let mut containers: BTreeSet<(String, String, String)> = BTreeSet::new();
    client
        .series(
            &selector("kube_pod_container_info").to_string(),
            start,
            at,
            |l| {
                containers.insert((
                    label(l, "namespace").into(),
                    label(l, "pod").into(),
                    label(l, "container").into(),
                ));
            },
        )
        .await?;
    // HPAs and the resources they scale on (utilization targets only: those
    // are relative to the request).
    let mut hpa_target: HashMap<(String, String), (String, String)> = HashMap::new();
    client
        .series(
            &selector("kube_horizontalpodautoscaler_info").to_string(),
            start,
            at,
            |l| {
                hpa_target.insert(
                    (
                        label(l, "namespace").into(),
                        label(l, "horizontalpodautoscaler").into(),
                    ),
                    (
                        label(l, "scaletargetref_kind").into(),
                        label(l, "scaletargetref_name").into(),
                    ),
                );
            },
        )
        .await?;
    let mut hpa_metrics: BTreeSet<(String, String, String)> = BTreeSet::new();
    client
        .series(
            &Selector::new("kube_horizontalpodautoscaler_spec_target_metric")
                .eq("metric_target_type", "utilization")
                .scoped(scope)
                .to_string(),
            start,
            at,
            |l| {
                hpa_metrics.insert((
                    label(l, "namespace").into(),
                    label(l, "horizontalpodautoscaler").into(),
                    label(l, "metric_name").into(),
                ));
            },
        )
        .await?;
    let mut hpa_scaling: HashMap<(String, String, String), HpaScaling> = HashMap::new();
    for (namespace, hpa, metric) in hpa_metrics {
        if let Some((kind, name)) = hpa_target.get(&(namespace.clone(), hpa)) {
            let s = hpa_scaling
                .entry((namespace, kind.clone(), name.clone()))
                .or_default();
            match metric.as_str() {
                "cpu" => s.cpu = true,
                "memory" => s.memory = true,
                _ => {}
            }
        }
    }
    let mut pod_labels: HashMap<(String, String), BTreeMap<String, String>> = HashMap::new();
    if want_labels {
        client
            .series(&selector("kube_pod_labels").to_string(), start, at, |l| {
                let labels = l
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix("label_").map(|k| (k.to_string(), v.clone()))
                    })
                    .collect();
                pod_labels.insert(pod_key(l), labels);
            })
            .await?;
    }

    // Running now: the default 5-minute lookback of an instant query.
    let mut alive: BTreeSet<(String, String)> = BTreeSet::new();
    client
        .instant(
            &promql::current(selector("kube_pod_owner"), "namespace, pod"),
            at,
            |l, _| {
                alive.insert(pod_key(l));
            },
        )
        .await?;
    // Start times and requests and limits as exposed now: a pod recreated
    // under the same name, as StatefulSet pods are, must not keep its old
    // values through `last_over_time`.
    let mut starts: HashMap<(String, String), i64> = HashMap::new();
    client
        .instant(
            &promql::current(selector("kube_pod_start_time"), "namespace, pod"),
            at,
            |l, s| record_start(&mut starts, l, s),
        )
        .await?;
    let mut values = Values::default();
    for (metric, kind) in RESOURCE_METRICS {
        client
            .instant(
                &promql::current(selector(metric), VALUE_LABELS),
                at,
                |l, s| values.record(kind, l, s),
            )
            .await?;
    }

    // Pods gone by `at`: only their own series, whose samples span only
    // their lifetime, so this costs in proportion to the churn.
    let no_start: PodSet = owners
        .iter()
        .map(|(namespace, pod, _, _)| (namespace.clone(), pod.clone()))
        .filter(|key| !starts.contains_key(key))
        .collect();
    for (namespace, batch) in pod_batches(&no_start) {
        let metric = selector("kube_pod_start_time")
            .eq("namespace", &namespace)
            .with("pod", Op::Re, &batch);
        client
            .instant(
                &promql::seen(metric, "namespace, pod", window_s),
                at,
                |l, s| record_start(&mut starts, l, s),
            )
            .await?;
    }

    let mut inventory = Inventory {
        node_capacity: node_capacity(client, cluster_scope, at).await?,
        ..Inventory::default()
    };
    let raw = Raw {
        owners: owners.into_iter().collect(),
        rs_owner,
        job_owner,
        alive,
        starts,
        containers: containers.into_iter().collect(),
        hpa_scaling,
        pod_labels,
    };
    assemble_pods(&mut inventory, &raw);

    let (full, memory_only) = gone_pods_needing_values(&inventory, &values);
    let memory_limits = selector("kube_pod_container_resource_limits").eq("resource", "memory");
    let lookups = [
        (RESOURCE_METRICS[0], selector(RESOURCE_METRICS[0].0), &full),
        (RESOURCE_METRICS[1], selector(RESOURCE_METRICS[1].0), &full),
        (RESOURCE_METRICS[1], memory_limits, &memory_only),
    ];
    for ((_, kind), metric, pods) in lookups {
        for (namespace, batch) in pod_batches(pods) {
            let metric = metric
                .clone()
                .eq("namespace", &namespace)
                .with("pod", Op::Re, &batch);
            client
                .instant(&promql::seen(metric, VALUE_LABELS, window_s), at, |l, s| {
                    values.record(kind, l, s)
                })
                .await?;
        }
    }
    inventory.skipped.extend(values.bad_counts());
    apply_values(&mut inventory, &raw.containers, &values.by_container);
    Ok(inventory)
}

/// A pod's start time, when the sample is a plausible one.
fn record_start(starts: &mut HashMap<(String, String), i64>, l: &Labels, s: &[(i64, f64)]) {
    if let Some(&(_, v)) = s.first()
        && v.is_finite()
        && v > 0.0
    {
        starts.insert(pod_key(l), v as i64);
    }
}

/// The requests and limits series of kube-state-metrics.
const RESOURCE_METRICS: [(&str, ValueKind); 2] = [
    ("kube_pod_container_resource_requests", ValueKind::Request),
    ("kube_pod_container_resource_limits", ValueKind::Limit),
];
const VALUE_LABELS: &str = "namespace, pod, container, resource";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueKind {
    Request,
    Limit,
}

/// Requests and limits per pod container, and the samples dropped.
#[derive(Default)]
struct Values {
    by_container: HashMap<(String, String, String), Resources>,
    bad_requests: u64,
    bad_limits: u64,
}

impl Values {
    fn record(&mut self, kind: ValueKind, l: &Labels, s: &[(i64, f64)]) {
        let Some(&(_, v)) = s.first() else { return };
        if !v.is_finite() || v < 0.0 {
            match kind {
                ValueKind::Request => self.bad_requests += 1,
                ValueKind::Limit => self.bad_limits += 1,
            }
            return;
        }
        let key = (
            label(l, "namespace").into(),
            label(l, "pod").into(),
            label(l, "container").into(),
        );
        let r = self.by_container.entry(key).or_default();
        match (label(l, "resource"), kind) {
            ("cpu", ValueKind::Request) => r.cpu_request = Some(MilliCores::from_cores(v)),
            ("cpu", ValueKind::Limit) => r.cpu_limit = Some(MilliCores::from_cores(v)),
            ("memory", ValueKind::Request) => r.memory_request = Some(Bytes::from_f64(v)),
            ("memory", ValueKind::Limit) => r.memory_limit = Some(Bytes::from_f64(v)),
            _ => {}
        }
    }

    fn bad_counts(&self) -> impl Iterator<Item = (String, u64)> {
        [("request", self.bad_requests), ("limit", self.bad_limits)]
            .into_iter()
            .filter(|&(_, n)| n > 0)
            .map(|(what, n)| {
                (
                    format!("NaN or negative {what} samples (kube-state-metrics) ignored"),
                    n,
                )
            })
    }
}

/// The largest allocatable CPU and memory of any node over the last hour.
async fn node_capacity(
    client: &PromClient,
    cluster_scope: &Scope,
    at: i64,
) -> Result<Option<NodeCapacity>, MetricsError> {
    let mut node_cpu = None;
    let mut node_memory = None;
    for resource in ["cpu", "memory"] {
        let s = Selector::new("kube_node_status_allocatable")
            .eq("resource", resource)
            .scoped(cluster_scope);
        client
            .instant(
                &format!("max(last_over_time({s}[1h]))"),
                at,
                |_, samples| {
                    if let Some(&(_, v)) = samples.first()
                        && v.is_finite()
                        && v > 0.0
                    {
                        if resource == "cpu" {
                            node_cpu = Some(MilliCores::from_cores(v));
                        } else {
                            node_memory = Some(Bytes::from_f64(v));
                        }
                    }
                },
            )
            .await?;
    }
    Ok(node_cpu
        .zip(node_memory)
        .map(|(cpu, memory)| NodeCapacity { cpu, memory }))
}

/// Pods by (namespace, name).
type PodSet = BTreeSet<(String, String)>;

/// Pod-name regexes per namespace, bounded in size.
fn pod_batches(pods: &PodSet) -> Vec<(String, String)> {
    let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (namespace, pod) in pods {
        by_namespace.entry(namespace).or_default().push(pod);
    }
    by_namespace
        .into_iter()
        .flat_map(|(namespace, pods)| {
            promql::name_batches(pods, PODS_PER_QUERY, POD_REGEX_BYTES)
                .into_iter()
                .map(move |batch| (namespace.to_string(), batch))
        })
        .collect()
}

/// The gone pods whose requests and limits [`apply_values`] can use:
/// `full` for those that may give a container its current values (no
/// running pod has it, and no gone pod started later), `memory_only` for the
/// rest, whose memory limit still bounds OOM bumps. Pods whose values were
/// already read at `at` need nothing.
fn gone_pods_needing_values(inventory: &Inventory, values: &Values) -> (PodSet, PodSet) {
    // Per container: the best rank among the pods that have it.
    let mut best: HashMap<usize, (bool, i64)> = HashMap::new();
    for pod in inventory.pods.values() {
        for &index in pod.containers.values() {
            let rank = pod_rank(pod);
            let b = best.entry(index).or_insert(rank);
            *b = (*b).max(rank);
        }
    }
    let mut full = BTreeSet::new();
    let mut memory_only = BTreeSet::new();
    for ((namespace, name), pod) in &inventory.pods {
        let read_now = pod.containers.keys().any(|c| {
            values
                .by_container
                .contains_key(&(namespace.clone(), name.clone(), c.clone()))
        });
        if pod.alive || pod.containers.is_empty() || read_now {
            continue;
        }
        let key = (namespace.clone(), name.clone());
        if pod
            .containers
            .values()
            .any(|i| best.get(i) == Some(&pod_rank(pod)))
        {
            full.insert(key);
        } else {
            memory_only.insert(key);
        }
    }
    (full, memory_only)
}

/// Running pods first, then the most recently started.
fn pod_rank(pod: &PodInfo) -> (bool, i64) {
    (pod.alive, pod.start.unwrap_or(i64::MIN))
}

/// What the discovery queries returned, before it is put together.
struct Raw {
    owners: Vec<(String, String, String, String)>,
    rs_owner: HashMap<(String, String), (String, String)>,
    job_owner: HashMap<(String, String), (String, String)>,
    alive: BTreeSet<(String, String)>,
    starts: HashMap<(String, String), i64>,
    containers: Vec<(String, String, String)>,
    hpa_scaling: HashMap<(String, String, String), HpaScaling>,
    pod_labels: HashMap<(String, String), BTreeMap<String, String>>,
}

/// The workload a pod belongs to, from its owner reference.
fn resolve_owner(
    namespace: &str,
    pod: &str,
    kind: &str,
    name: &str,
    raw: &Raw,
) -> Result<WorkloadRef, String> {
    let (kind, name) = match kind {
        "ReplicaSet" => match raw.rs_owner.get(&(namespace.to_string(), name.to_string())) {
            Some((k, n)) if k == "Deployment" => (WorkloadKind::Deployment, n.clone()),
            Some((k, _)) if !k.is_empty() && k != "<none>" => {
                return Err(format!("ReplicaSets owned by {k} are not supported yet"));
            }
            _ => (WorkloadKind::ReplicaSet, name.to_string()),
        },
        "Job" => match raw
            .job_owner
            .get(&(namespace.to_string(), name.to_string()))
        {
            Some((k, n)) if k == "CronJob" => (WorkloadKind::CronJob, n.clone()),
            _ => (WorkloadKind::Job, name.to_string()),
        },
        "StatefulSet" => (WorkloadKind::StatefulSet, name.to_string()),
        "DaemonSet" => (WorkloadKind::DaemonSet, name.to_string()),
        "<none>" | "" => (WorkloadKind::Pod, pod.to_string()),
        other => return Err(format!("pods owned by {other} are not supported yet")),
    };
    Ok(WorkloadRef {
        namespace: namespace.to_string(),
        kind,
        name,
    })
}

/// Workloads, pods and containers, without current values yet.
fn assemble_pods(inventory: &mut Inventory, raw: &Raw) {
    let mut workload_index: HashMap<WorkloadRef, usize> = HashMap::new();
    for (namespace, pod, kind, name) in &raw.owners {
        let workload = match resolve_owner(namespace, pod, kind, name, raw) {
            Ok(w) => w,
            Err(reason) => {
                *inventory.skipped.entry(reason).or_default() += 1;
                continue;
            }
        };
        let key = (namespace.clone(), pod.clone());
        if inventory.pods.contains_key(&key) {
            continue; // a pod with two controller owners: keep the first
        }
        let index = *workload_index.entry(workload.clone()).or_insert_with(|| {
            let hpa = raw
                .hpa_scaling
                .get(&(
                    workload.namespace.clone(),
                    workload.kind.to_string(),
                    workload.name.clone(),
                ))
                .copied()
                .unwrap_or_default();
            inventory.workloads.push(WorkloadInfo {
                workload: workload.clone(),
                replicas: 0,
                pods_seen: 0,
                hpa,
                labels: BTreeMap::new(),
            });
            inventory.workloads.len() - 1
        });
        let alive = raw.alive.contains(&key);
        let info = &mut inventory.workloads[index];
        info.pods_seen += 1;
        if alive {
            info.replicas += 1;
        }
        if let Some(labels) = raw.pod_labels.get(&key)
            && (alive || info.labels.is_empty())
        {
            info.labels = labels.clone();
        }
        inventory.pods.insert(
            key.clone(),
            PodInfo {
                workload: index,
                start: raw.starts.get(&key).copied(),
                alive,
                containers: HashMap::new(),
                memory_limits: HashMap::new(),
            },
        );
    }

    let mut container_index: HashMap<(usize, String), usize> = HashMap::new();
    let mut orphans = 0u64;
    for (namespace, pod, container) in &raw.containers {
        let key = (namespace.clone(), pod.clone());
        let Some(pod_info) = inventory.pods.get_mut(&key) else {
            orphans += 1;
            continue;
        };
        let workload = pod_info.workload;
        let index = *container_index
            .entry((workload, container.clone()))
            .or_insert_with(|| {
                inventory.containers.push(ContainerInfo {
                    target: ContainerRef {
                        workload: inventory.workloads[workload].workload.clone(),
                        container: container.clone(),
                    },
                    workload,
                    current: Resources::default(),
                });
                inventory.containers.len() - 1
            });
        pod_info.containers.insert(container.clone(), index);
    }
    if orphans > 0 {
        *inventory
            .skipped
            .entry("containers of pods without an owner series (kube_pod_owner) ignored".into())
            .or_default() += orphans;
    }
}

/// Current values per container from running pods (else the newest), and
/// each pod's memory limits.
fn apply_values(
    inventory: &mut Inventory,
    containers: &[(String, String, String)],
    values: &HashMap<(String, String, String), Resources>,
) {
    let mut chosen: HashMap<usize, (bool, i64)> = HashMap::new();
    for (namespace, pod, container) in containers {
        let Some(pod_info) = inventory.pods.get_mut(&(namespace.clone(), pod.clone())) else {
            continue;
        };
        let Some(&index) = pod_info.containers.get(container) else {
            continue;
        };
        let values = values
            .get(&(namespace.clone(), pod.clone(), container.clone()))
            .copied()
            .unwrap_or_default();
        if let Some(limit) = values.memory_limit {
            pod_info
                .memory_limits
                .insert(container.clone(), limit.as_f64());
        }
        let rank = pod_rank(pod_info);
        let best = chosen.entry(index).or_insert((false, i64::MIN));
        if rank >= *best {
            let current = &mut inventory.containers[index].current;
            if rank > *best || *current == Resources::default() {
                *current = values;
            } else {
                // Same rank (several running pods): keep the largest values,
                // the conservative reading mid-rollout.
                current.cpu_request = current.cpu_request.max(values.cpu_request);
                current.cpu_limit = current.cpu_limit.max(values.cpu_limit);
                current.memory_request = current.memory_request.max(values.memory_request);
                current.memory_limit = current.memory_limit.max(values.memory_limit);
            }
            *best = rank;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(inventory: &mut Inventory, (raw, values): (Raw, ValueMap)) {
        assemble_pods(inventory, &raw);
        apply_values(inventory, &raw.containers, &values);
    }

    type ValueMap = HashMap<(String, String, String), Resources>;

    fn raw() -> (Raw, ValueMap) {
        let s = |x: &str| x.to_string();
        let raw = Raw {
            owners: vec![
                (
                    s("shop"),
                    s("web-abc12-x1"),
                    s("ReplicaSet"),
                    s("web-abc12"),
                ),
                (
                    s("shop"),
                    s("web-def34-y2"),
                    s("ReplicaSet"),
                    s("web-def34"),
                ),
                (s("shop"), s("db-0"), s("StatefulSet"), s("db")),
                (
                    s("shop"),
                    s("nightly-28000-z"),
                    s("Job"),
                    s("nightly-28000"),
                ),
                (s("shop"), s("lonely"), s("<none>"), s("<none>")),
                (s("kube-system"), s("etcd-node1"), s("Node"), s("node1")),
            ],
            rs_owner: HashMap::from([
                ((s("shop"), s("web-abc12")), (s("Deployment"), s("web"))),
                ((s("shop"), s("web-def34")), (s("Deployment"), s("web"))),
            ]),
            job_owner: HashMap::from([(
                (s("shop"), s("nightly-28000")),
                (s("CronJob"), s("nightly")),
            )]),
            alive: BTreeSet::from([(s("shop"), s("web-def34-y2")), (s("shop"), s("db-0"))]),
            starts: HashMap::from([
                ((s("shop"), s("web-abc12-x1")), 100),
                ((s("shop"), s("web-def34-y2")), 200),
            ]),
            containers: vec![
                (s("shop"), s("web-abc12-x1"), s("app")),
                (s("shop"), s("web-def34-y2"), s("app")),
                (s("shop"), s("web-def34-y2"), s("envoy")),
                (s("shop"), s("db-0"), s("postgres")),
                (s("shop"), s("nightly-28000-z"), s("job")),
                (s("shop"), s("ghost"), s("app")),
            ],
            hpa_scaling: HashMap::from([(
                (s("shop"), s("Deployment"), s("web")),
                HpaScaling {
                    cpu: true,
                    memory: false,
                },
            )]),
            pod_labels: HashMap::new(),
        };
        let values = HashMap::from([
            (
                (s("shop"), s("web-abc12-x1"), s("app")),
                Resources {
                    cpu_request: Some(MilliCores(1000)),
                    ..Default::default()
                },
            ),
            (
                (s("shop"), s("web-def34-y2"), s("app")),
                Resources {
                    cpu_request: Some(MilliCores(500)),
                    memory_limit: Some(Bytes::mib(256)),
                    ..Default::default()
                },
            ),
        ]);
        (raw, values)
    }

    #[test]
    fn only_gone_pods_that_can_give_current_values_are_read_in_full() {
        let (raw, _) = raw();
        let mut inv = Inventory::default();
        assemble_pods(&mut inv, &raw);
        let key = |pod: &str| ("shop".to_string(), pod.to_string());
        let (full, memory_only) = gone_pods_needing_values(&inv, &Values::default());
        // The CronJob's pod is gone and nothing else has its container; the
        // old web pod's app runs in the new one, so only its memory limit
        // (OOM bumps) is read; the bare pod has no container.
        assert_eq!(full, BTreeSet::from([key("nightly-28000-z")]));
        assert_eq!(memory_only, BTreeSet::from([key("web-abc12-x1")]));

        // Nothing running: the newest pod of each container is read in
        // full, older ones for their memory limit only.
        let mut raw = raw;
        raw.alive.clear();
        let mut inv = Inventory::default();
        assemble_pods(&mut inv, &raw);
        let (full, memory_only) = gone_pods_needing_values(&inv, &Values::default());
        assert_eq!(
            full,
            BTreeSet::from([key("web-def34-y2"), key("db-0"), key("nightly-28000-z")])
        );
        assert_eq!(memory_only, BTreeSet::from([key("web-abc12-x1")]));

        // A pod whose values were read at `at` needs nothing more.
        let mut values = Values::default();
        let mut labels = Labels::new();
        for (k, v) in [
            ("namespace", "shop"),
            ("pod", "db-0"),
            ("container", "postgres"),
            ("resource", "cpu"),
        ] {
            labels.insert(k.into(), v.into());
        }
        values.record(ValueKind::Request, &labels, &[(0, 0.5)]);
        let (full, _) = gone_pods_needing_values(&inv, &values);
        assert!(!full.contains(&key("db-0")), "{full:?}");
    }

    #[test]
    fn pods_map_to_their_workloads_across_churn() {
        let mut inv = Inventory::default();
        assemble(&mut inv, raw());
        let names: Vec<String> = inv
            .workloads
            .iter()
            .map(|w| w.workload.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "shop/Deployment/web",
                "shop/StatefulSet/db",
                "shop/CronJob/nightly",
                "shop/Pod/lonely"
            ]
        );
        let web = &inv.workloads[0];
        assert_eq!((web.replicas, web.pods_seen), (1, 2));
        assert!(web.hpa.cpu && !web.hpa.memory);
        // app and envoy of web, postgres, job: sidecars are their own rows.
        let rows: Vec<String> = inv
            .containers
            .iter()
            .map(|c| c.target.to_string())
            .collect();
        assert_eq!(
            rows,
            [
                "shop/Deployment/web:app",
                "shop/Deployment/web:envoy",
                "shop/StatefulSet/db:postgres",
                "shop/CronJob/nightly:job"
            ]
        );
        // The running pod's values win over the older pod's.
        assert_eq!(inv.containers[0].current.cpu_request, Some(MilliCores(500)));
        assert_eq!(
            inv.skipped.get("pods owned by Node are not supported yet"),
            Some(&1)
        );
        assert!(inv.skipped.keys().any(|k| k.contains("without an owner")));
        let mut labels = Labels::new();
        labels.insert("namespace".into(), "shop".into());
        labels.insert("pod".into(), "web-abc12-x1".into());
        labels.insert("container".into(), "app".into());
        assert_eq!(inv.container_of(&labels).map(|(i, _)| i), Some(0));
        labels.insert("container".into(), "istio-init".into());
        assert_eq!(inv.container_of(&labels).map(|(i, _)| i), None);

        // Dropping the Deployment keeps the other indices consistent.
        inv.retain_workloads(|w| w.workload.name != "web");
        assert_eq!(inv.workloads.len(), 3);
        assert_eq!(inv.containers.len(), 2);
        for ((_, pod), info) in &inv.pods {
            assert!(!pod.starts_with("web-"));
            for &c in info.containers.values() {
                assert_eq!(inv.containers[c].workload, info.workload);
            }
        }
    }
}
