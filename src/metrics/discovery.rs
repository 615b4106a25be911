//! Workload discovery from kube-state-metrics alone: no cluster access.
//!
//! Pods are mapped to their controlling workload through `kube_pod_owner`,
//! `kube_replicaset_owner` (Deployments) and `kube_job_owner` (CronJobs),
//! using every pod seen in the history window, so pods that came and went
//! still count for their workload. Init containers are never listed: only
//! `kube_pod_container_info` names the containers we size.
//!
//! All lookups are instant queries over the window: about a dozen queries
//! whatever the size of the cluster.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::MetricsError;
use super::client::{Labels, PromClient};
use super::promql::{self, Scope, Selector};
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
        let mut workload_map = vec![None; self.workloads.len()];
        let mut next = 0;
        for (i, w) in self.workloads.iter().enumerate() {
            if keep(w) {
                workload_map[i] = Some(next);
                next += 1;
            }
        }
        let mut container_map = vec![None; self.containers.len()];
        let mut next = 0;
        for (i, c) in self.containers.iter().enumerate() {
            if workload_map[c.workload].is_some() {
                container_map[i] = Some(next);
                next += 1;
            }
        }
        let mut i = 0;
        self.workloads.retain(|_| {
            i += 1;
            workload_map[i - 1].is_some()
        });
        self.containers
            .retain(|c| workload_map[c.workload].is_some());
        for c in &mut self.containers {
            c.workload = workload_map[c.workload].unwrap_or(usize::MAX);
        }
        self.pods.retain(|_, p| workload_map[p.workload].is_some());
        for pod in self.pods.values_mut() {
            pod.workload = workload_map[pod.workload].unwrap_or(usize::MAX);
            pod.containers.retain(|_, c| container_map[*c].is_some());
            for c in pod.containers.values_mut() {
                *c = container_map[*c].unwrap_or(usize::MAX);
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

fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map_or("", String::as_str)
}

fn pod_key(labels: &Labels) -> (String, String) {
    (
        label(labels, "namespace").to_string(),
        label(labels, "pod").to_string(),
    )
}

/// Runs discovery as of `at`, looking back `window_s`.
pub async fn discover(
    client: &PromClient,
    scope: &Scope,
    cluster_scope: &Scope,
    at: i64,
    window_s: i64,
    want_labels: bool,
) -> Result<Inventory, MetricsError> {
    let w = window_s;
    let seen = |metric: &str, by: &str| promql::seen(Selector::new(metric).scoped(scope), by, w);

    // Pod → owner, over the window.
    let mut owners: Vec<(String, String, String, String)> = Vec::new();
    client
        .instant(
            &seen("kube_pod_owner", "namespace, pod, owner_kind, owner_name"),
            at,
            |l, _| {
                owners.push((
                    label(l, "namespace").into(),
                    label(l, "pod").into(),
                    label(l, "owner_kind").into(),
                    label(l, "owner_name").into(),
                ));
            },
        )
        .await?;
    let mut rs_owner: HashMap<(String, String), (String, String)> = HashMap::new();
    client
        .instant(
            &seen(
                "kube_replicaset_owner",
                "namespace, replicaset, owner_kind, owner_name",
            ),
            at,
            |l, _| {
                rs_owner.insert(
                    (label(l, "namespace").into(), label(l, "replicaset").into()),
                    (label(l, "owner_kind").into(), label(l, "owner_name").into()),
                );
            },
        )
        .await?;
    let mut job_owner: HashMap<(String, String), (String, String)> = HashMap::new();
    client
        .instant(
            &seen(
                "kube_job_owner",
                "namespace, job_name, owner_kind, owner_name",
            ),
            at,
            |l, _| {
                job_owner.insert(
                    (label(l, "namespace").into(), label(l, "job_name").into()),
                    (label(l, "owner_kind").into(), label(l, "owner_name").into()),
                );
            },
        )
        .await?;
    // Running now: the default 5-minute lookback of an instant query.
    let mut alive: BTreeSet<(String, String)> = BTreeSet::new();
    let alive_query = format!(
        "max by (namespace, pod) ({})",
        Selector::new("kube_pod_owner").scoped(scope)
    );
    client
        .instant(&alive_query, at, |l, _| {
            alive.insert(pod_key(l));
        })
        .await?;
    let mut starts: HashMap<(String, String), i64> = HashMap::new();
    client
        .instant(
            &seen("kube_pod_start_time", "namespace, pod"),
            at,
            |l, s| {
                if let Some(&(_, v)) = s.first()
                    && v.is_finite()
                    && v > 0.0
                {
                    starts.insert(pod_key(l), v as i64);
                }
            },
        )
        .await?;
    let mut containers: Vec<(String, String, String)> = Vec::new();
    client
        .instant(
            &seen("kube_pod_container_info", "namespace, pod, container"),
            at,
            |l, _| {
                containers.push((
                    label(l, "namespace").into(),
                    label(l, "pod").into(),
                    label(l, "container").into(),
                ));
            },
        )
        .await?;
    // Requests and limits per pod container: for running pods the values
    // exposed now (a pod recreated under the same name, as StatefulSet pods
    // are, must not keep its old values through `last_over_time`); for pods
    // gone, the last value in the window.
    let mut values: HashMap<(String, String, String), Resources> = HashMap::new();
    let mut now_values: HashMap<(String, String, String), Resources> = HashMap::new();
    let mut bad_values = Vec::new();
    for (metric, is_limit) in [
        ("kube_pod_container_resource_requests", false),
        ("kube_pod_container_resource_limits", true),
    ] {
        let by = "namespace, pod, container, resource";
        let now_query = format!("max by ({by}) ({})", Selector::new(metric).scoped(scope));
        for (query, target) in [
            (seen(metric, by), &mut values),
            (now_query, &mut now_values),
        ] {
            let mut bad = 0u64;
            client
                .instant(&query, at, |l, s| {
                    let Some(&(_, v)) = s.first() else { return };
                    if !v.is_finite() || v < 0.0 {
                        bad += 1;
                        return;
                    }
                    let key = (
                        label(l, "namespace").into(),
                        label(l, "pod").into(),
                        label(l, "container").into(),
                    );
                    let r = target.entry(key).or_default();
                    match (label(l, "resource"), is_limit) {
                        ("cpu", false) => r.cpu_request = Some(MilliCores::from_cores(v)),
                        ("cpu", true) => r.cpu_limit = Some(MilliCores::from_cores(v)),
                        ("memory", false) => r.memory_request = Some(Bytes::from_f64(v)),
                        ("memory", true) => r.memory_limit = Some(Bytes::from_f64(v)),
                        _ => {}
                    }
                })
                .await?;
            if bad > 0 {
                let what = if is_limit { "limit" } else { "request" };
                bad_values.push((
                    format!("NaN or negative {what} samples (kube-state-metrics) ignored"),
                    bad,
                ));
            }
        }
    }
    // Running pods: what is exposed now wins, including "not set".
    for ((namespace, pod, container), r) in values.iter_mut() {
        if alive.contains(&(namespace.clone(), pod.clone())) {
            *r = now_values
                .get(&(namespace.clone(), pod.clone(), container.clone()))
                .copied()
                .unwrap_or_default();
        }
    }
    // HPAs and the resources they scale on (utilization targets only: those
    // are relative to the request).
    let mut hpa_target: HashMap<(String, String), (String, String)> = HashMap::new();
    client
        .instant(
            &seen(
                "kube_horizontalpodautoscaler_info",
                "namespace, horizontalpodautoscaler, scaletargetref_kind, scaletargetref_name",
            ),
            at,
            |l, _| {
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
    let mut hpa_scaling: HashMap<(String, String, String), HpaScaling> = HashMap::new();
    let target_metric = Selector::new("kube_horizontalpodautoscaler_spec_target_metric")
        .eq("metric_target_type", "utilization")
        .scoped(scope);
    client
        .instant(
            &promql::seen(
                target_metric,
                "namespace, horizontalpodautoscaler, metric_name",
                w,
            ),
            at,
            |l, _| {
                let key = (
                    label(l, "namespace").to_string(),
                    label(l, "horizontalpodautoscaler").to_string(),
                );
                if let Some((kind, name)) = hpa_target.get(&key) {
                    let s = hpa_scaling
                        .entry((key.0.clone(), kind.clone(), name.clone()))
                        .or_default();
                    match label(l, "metric_name") {
                        "cpu" => s.cpu = true,
                        "memory" => s.memory = true,
                        _ => {}
                    }
                }
            },
        )
        .await?;
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
    let mut pod_labels: HashMap<(String, String), BTreeMap<String, String>> = HashMap::new();
    if want_labels {
        let s = Selector::new("kube_pod_labels").scoped(scope);
        client
            .instant(
                &format!("last_over_time({s}[{}])", promql::range(w)),
                at,
                |l, _| {
                    let labels = l
                        .iter()
                        .filter_map(|(k, v)| {
                            k.strip_prefix("label_").map(|k| (k.to_string(), v.clone()))
                        })
                        .collect();
                    pod_labels.insert(pod_key(l), labels);
                },
            )
            .await?;
    }

    let mut inventory = Inventory {
        node_capacity: node_cpu
            .zip(node_memory)
            .map(|(cpu, memory)| NodeCapacity { cpu, memory }),
        skipped: bad_values.into_iter().collect(),
        ..Inventory::default()
    };
    assemble(
        &mut inventory,
        Raw {
            owners,
            rs_owner,
            job_owner,
            alive,
            starts,
            containers,
            values,
            hpa_scaling,
            pod_labels,
        },
    );
    Ok(inventory)
}

/// What the discovery queries returned, before it is put together.
struct Raw {
    owners: Vec<(String, String, String, String)>,
    rs_owner: HashMap<(String, String), (String, String)>,
    job_owner: HashMap<(String, String), (String, String)>,
    alive: BTreeSet<(String, String)>,
    starts: HashMap<(String, String), i64>,
    containers: Vec<(String, String, String)>,
    values: HashMap<(String, String, String), Resources>,
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

fn assemble(inventory: &mut Inventory, raw: Raw) {
    let mut workload_index: HashMap<WorkloadRef, usize> = HashMap::new();
    for (namespace, pod, kind, name) in &raw.owners {
        let workload = match resolve_owner(namespace, pod, kind, name, &raw) {
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

    // Containers, with current values from running pods (else the newest).
    let mut container_index: HashMap<(usize, String), usize> = HashMap::new();
    let mut chosen: HashMap<usize, (bool, i64)> = HashMap::new();
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
        let values = raw
            .values
            .get(&(namespace.clone(), pod.clone(), container.clone()))
            .copied()
            .unwrap_or_default();
        if let Some(limit) = values.memory_limit {
            pod_info
                .memory_limits
                .insert(container.clone(), limit.as_f64());
        }
        // Prefer running pods, then the most recently started.
        let rank = (pod_info.alive, pod_info.start.unwrap_or(i64::MIN));
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
    if orphans > 0 {
        *inventory
            .skipped
            .entry("containers of pods without an owner series (kube_pod_owner) ignored".into())
            .or_default() += orphans;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> Raw {
        let s = |x: &str| x.to_string();
        Raw {
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
            values: HashMap::from([
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
            ]),
            hpa_scaling: HashMap::from([(
                (s("shop"), s("Deployment"), s("web")),
                HpaScaling {
                    cpu: true,
                    memory: false,
                },
            )]),
            pod_labels: HashMap::new(),
        }
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
