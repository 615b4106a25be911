//! The controllers: Deployments own a ReplicaSet per template and its pods,
//! StatefulSets and DaemonSets own pods directly; a template change rolls
//! one pod per `roll_interval`. Every tick each pod's workload model runs on
//! the pod's current resources, so a tighter limit throttles or OOM-kills.
//! Wall-clock time: this is the live server, not the virtual-time simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::resize::{self, Admission, Requests};
use super::resources::{ResourceType, find};
use super::store::{Store, mix, name_of, namespace_of, now_rfc3339, safe_encode, set};
use super::{ApiServerConfig, ClusterState, Shared, lock};
use crate::domain::Resources;
use crate::sim::models::{Given, respond};

/// Pod annotation naming the workload model its containers run.
pub const MODEL_ANNOTATION: &str = "sim.tailor.dev/model";

/// Upper bounds of `http_request_duration_seconds` (seconds): about 10 %
/// apart from 5 ms to 1 s, where the models' latencies lie, so a rise the
/// SLO guard should see (e.g. a p99 from 50 to 60 ms) crosses a bucket and
/// `histogram_quantile` shows it.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.005, 0.0055, 0.006, 0.0065, 0.007, 0.0075, 0.008, 0.009, 0.01, 0.011, 0.012, 0.0135, 0.015,
    0.0165, 0.018, 0.02, 0.022, 0.025, 0.0275, 0.03, 0.033, 0.036, 0.04, 0.044, 0.048, 0.053,
    0.058, 0.064, 0.07, 0.077, 0.085, 0.093, 0.1, 0.11, 0.12, 0.135, 0.15, 0.165, 0.18, 0.2, 0.22,
    0.25, 0.275, 0.3, 0.33, 0.36, 0.4, 0.44, 0.5, 0.55, 0.6, 0.65, 0.75, 0.85, 1.0, 1.25, 1.5, 2.0,
    2.5, 5.0, 10.0,
];

/// CFS enforcement periods per second (100 ms periods).
const CFS_PERIODS_PER_S: f64 = 10.0;

/// What a pod's model has done so far: the counters `/metrics` serves.
#[derive(Clone, Debug, Default)]
pub struct PodSim {
    pub uid: String,
    pub cpu_seconds: f64,
    pub cfs_periods: f64,
    pub throttled_periods: f64,
    pub memory_bytes: f64,
    pub requests_ok: f64,
    pub requests_error: f64,
    /// Cumulative count per bound of [`LATENCY_BOUNDS`].
    pub buckets: Vec<f64>,
    pub latency_count: f64,
    pub latency_sum: f64,
    /// Unix seconds the container (re)started.
    container_start: f64,
    /// Restarting after an OOM kill until then (Unix seconds).
    down_until: Option<f64>,
}

/// Controller state that is not in the objects.
#[derive(Default)]
pub struct Sim {
    pub pods: BTreeMap<(String, String), PodSim>,
    last_roll: BTreeMap<String, Instant>,
    /// Per workload: the generation being rolled out and since when.
    progress: BTreeMap<String, (i64, Instant)>,
    /// The kubelet's view of each pod's pending resize.
    resizes: BTreeMap<(String, String), PendingResize>,
    next_node: usize,
}

/// A resize the kubelet has seen: the desired values it is about, and
/// where it stands.
#[derive(Clone, Debug, PartialEq)]
struct PendingResize {
    desired: Vec<Resources>,
    state: ResizeState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResizeState {
    /// Allocated; actuated after this many more ticks.
    InProgress(u32),
    /// Waits for room on the node; admission is retried every tick.
    Deferred,
    /// Never retried until the desired values change.
    Infeasible,
}

fn rt(group: &str, version: &str, plural: &str) -> &'static ResourceType {
    find(group, version, plural).unwrap_or_else(|| panic!("{group}/{version}/{plural} is served"))
}

pub async fn run(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(shared.config.tick);
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = unix_now();
        let mut state = lock(&shared.state);
        tick(&mut state, &shared.config, now, Instant::now());
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One pass of every controller, then every pod's model.
pub fn tick(state: &mut ClusterState, config: &ApiServerConfig, now: f64, instant: Instant) {
    let ClusterState { store, sim } = state;
    let deployments: Vec<Value> = store
        .iter(rt("apps", "v1", "deployments"), None)
        .cloned()
        .collect();
    for d in &deployments {
        deployment(store, sim, config, d, instant);
    }
    let statefulsets: Vec<Value> = store
        .iter(rt("apps", "v1", "statefulsets"), None)
        .cloned()
        .collect();
    for s in &statefulsets {
        owned_slots(store, sim, config, s, "StatefulSet", instant);
    }
    let daemonsets: Vec<Value> = store
        .iter(rt("apps", "v1", "daemonsets"), None)
        .cloned()
        .collect();
    for d in &daemonsets {
        owned_slots(store, sim, config, d, "DaemonSet", instant);
    }
    collect_garbage(store);
    pods(store, sim, config, now);
}

fn uid_of(object: &Value) -> String {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn controller_uid(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
        .map(str::to_string)
}

fn owner_reference(owner: &Value, kind: &str) -> Value {
    json!([{
        "apiVersion": "apps/v1", "kind": kind,
        "name": name_of(owner).unwrap_or_default(), "uid": uid_of(owner),
        "controller": true, "blockOwnerDeletion": true,
    }])
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The template's hash, as `pod-template-hash` and revision names use it.
fn template_hash(template: &Value) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    // FNV-1a, then mixed: stable within a process, which is all it needs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    safe_encode(mix(h), 10)
}

fn set_condition(object: &mut Value, kind: &str, status: &str, reason: &str, message: &str) {
    let now = now_rfc3339();
    let condition = json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": now, "lastUpdateTime": now,
    });
    match object
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        Some(conditions) => match conditions.iter_mut().find(|c| c["type"] == kind) {
            Some(existing) => {
                if existing["status"] != status || existing["reason"] != reason {
                    *existing = condition;
                }
            }
            None => conditions.push(condition),
        },
        None => set(object, "/status/conditions", json!([condition])),
    }
}

fn remove_condition(object: &mut Value, kind: &str) {
    if let Some(conditions) = object
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        conditions.retain(|c| c["type"] != kind);
    }
}

/// What a controller asks of [`new_pod`].
struct NewPod<'a> {
    template: &'a Value,
    name: &'a str,
    ns: &'a str,
    owner: Value,
    extra_labels: &'a [(&'a str, &'a str)],
    node: Option<&'a str>,
}

/// A new pod from a template, already running on a node.
fn new_pod(store: &mut Store, sim: &mut Sim, config: &ApiServerConfig, new: NewPod<'_>) {
    let NewPod {
        template,
        name,
        ns,
        owner,
        extra_labels,
        node,
    } = new;
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": ns,
        "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
        "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
        "ownerReferences": owner,
    }, "spec": template.get("spec").cloned().unwrap_or(json!({}))});
    // Keys like `statefulset.kubernetes.io/pod-name` hold a `/`: insert
    // them whole, not as a JSON pointer.
    if let Some(labels) = pod
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        for (k, v) in extra_labels {
            labels.insert((*k).to_string(), json!(v));
        }
    }
    let node = match node {
        Some(node) => node.to_string(),
        None if config.nodes.is_empty() => "node-a".to_string(),
        None => {
            sim.next_node = (sim.next_node + 1) % config.nodes.len();
            config.nodes[sim.next_node].clone()
        }
    };
    set(&mut pod, "/spec/nodeName", json!(node));
    pod["status"] = running_status(&pod);
    if let Err(e) = store.put(rt("", "v1", "pods"), ns, pod) {
        tracing::warn!(pod = name, error = %e, "cannot create a pod");
    }
}

/// A running, ready pod's status.
fn running_status(pod: &Value) -> Value {
    let now = now_rfc3339();
    let statuses: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                    json!({
                        "name": name, "image": c.get("image").cloned().unwrap_or(json!("")),
                        "imageID": "", "containerID": container_id(pod, name, 0),
                        "ready": true, "started": true, "restartCount": 0,
                        "state": {"running": {"startedAt": now}},
                        "resources": c.get("resources").cloned().unwrap_or(json!({})),
                        "allocatedResources": c.pointer("/resources/requests").cloned().unwrap_or(json!({})),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now});
    json!({
        "phase": "Running",
        "conditions": [condition("PodScheduled"), condition("Initialized"),
                       condition("ContainersReady"), condition("Ready")],
        "containerStatuses": statuses,
        "startTime": now, "hostIP": "10.0.0.1", "podIP": "10.1.0.1", "qosClass": "Burstable",
    })
}

fn container_id(pod: &Value, container: &str, restarts: u64) -> String {
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = name_of(pod).unwrap_or_default();
    let mut h: u64 = 0;
    for b in format!("{uid}/{name}/{container}/{restarts}").bytes() {
        h = mix(h ^ u64::from(b));
    }
    format!("containerd://{h:016x}{:016x}", mix(h))
}

fn replicas_of(object: &Value) -> u64 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1)
}

fn generation_of(object: &Value) -> i64 {
    object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn roll_due(sim: &Sim, key: &str, config: &ApiServerConfig, now: Instant) -> bool {
    sim.last_roll
        .get(key)
        .is_none_or(|last| now.duration_since(*last) >= config.roll_interval)
}

/// The Progressing condition, from how long the current generation took.
fn progressing(sim: &mut Sim, key: &str, object: &mut Value, done: bool, now: Instant) {
    let generation = generation_of(object);
    let started = match sim.progress.get(key) {
        Some((g, since)) if *g == generation => *since,
        _ => {
            sim.progress.insert(key.to_string(), (generation, now));
            now
        }
    };
    let deadline = object
        .pointer("/spec/progressDeadlineSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(600);
    if done {
        set_condition(
            object,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            "rollout complete",
        );
    } else if now.duration_since(started).as_secs() >= deadline {
        set_condition(
            object,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            "rollout stalled",
        );
    } else {
        set_condition(
            object,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            "rolling out",
        );
    }
}

fn deployment(store: &mut Store, sim: &mut Sim, config: &ApiServerConfig, d: &Value, now: Instant) {
    let (ns, name, uid) = (namespace_of(d), name_of(d).unwrap_or_default(), uid_of(d));
    let key = format!("deployment/{ns}/{name}");
    let replicas = replicas_of(d);
    let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = template_hash(&template);
    set(
        &mut template,
        "/metadata/labels/pod-template-hash",
        json!(hash),
    );
    let rs_name = format!("{name}-{hash}");
    let replicasets = rt("apps", "v1", "replicasets");
    let pods_rt = rt("", "v1", "pods");

    if store.lookup(replicasets, &ns, &rs_name).is_none() {
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        set(&mut selector, "/matchLabels/pod-template-hash", json!(hash));
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": rs_name, "namespace": ns,
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "ownerReferences": owner_reference(d, "Deployment"),
        }, "spec": {"replicas": 0, "selector": selector, "template": template}});
        if let Err(e) = store.put(replicasets, &ns, rs) {
            tracing::warn!(replicaset = rs_name, error = %e, "cannot create a ReplicaSet");
            return;
        }
    }
    let owned_sets: Vec<Value> = store
        .iter(replicasets, Some(&ns))
        .filter(|rs| controller_uid(rs).as_deref() == Some(uid.as_str()))
        .cloned()
        .collect();
    let Some(new_rs) = owned_sets
        .iter()
        .find(|rs| name_of(rs).as_deref() == Some(rs_name.as_str()))
        .cloned()
    else {
        return;
    };
    let new_uid = uid_of(&new_rs);
    let set_uids: BTreeSet<String> = owned_sets.iter().map(uid_of).collect();
    let pods: Vec<Value> = store
        .iter(pods_rt, Some(&ns))
        .filter(|p| controller_uid(p).is_some_and(|u| set_uids.contains(&u)))
        .cloned()
        .collect();
    let (new, old): (Vec<&Value>, Vec<&Value>) = pods
        .iter()
        .partition(|p| controller_uid(p).as_deref() == Some(new_uid.as_str()));
    let new_count = new.len() as u64;
    // A pod of the new ReplicaSet, from the new template.
    let add_pod = |store: &mut Store, sim: &mut Sim| {
        let pod_name = format!("{rs_name}-{}", store.suffix());
        new_pod(
            store,
            sim,
            config,
            NewPod {
                template: &template,
                name: &pod_name,
                ns: &ns,
                owner: owner_reference(&new_rs, "ReplicaSet"),
                extra_labels: &[],
                node: None,
            },
        );
    };
    if old.is_empty() {
        for _ in new_count..replicas {
            add_pod(store, sim);
        }
        for extra in new.iter().skip(replicas as usize) {
            let pod_name = name_of(extra).unwrap_or_default();
            let _ = store.delete(pods_rt, &ns, &pod_name);
        }
    } else if new.iter().all(|p| is_ready(p)) && roll_due(sim, &key, config, now) {
        // One step: a new pod with the new template, then one old pod goes.
        if new_count < replicas {
            add_pod(store, sim);
        }
        if let Some(victim) = old.first() {
            let pod_name = name_of(victim).unwrap_or_default();
            let _ = store.delete(pods_rt, &ns, &pod_name);
        }
        sim.last_roll.insert(key.clone(), now);
    }

    // Status of the sets and of the Deployment, from the pods as they are now.
    let pods: Vec<Value> = store
        .iter(pods_rt, Some(&ns))
        .filter(|p| controller_uid(p).is_some_and(|u| set_uids.contains(&u)))
        .cloned()
        .collect();
    for rs in &owned_sets {
        let rs_uid = uid_of(rs);
        let mine: Vec<&Value> = pods
            .iter()
            .filter(|p| controller_uid(p).as_deref() == Some(rs_uid.as_str()))
            .collect();
        let ready = mine.iter().filter(|p| is_ready(p)).count();
        let mut rs = rs.clone();
        rs["spec"]["replicas"] = json!(if rs_uid == new_uid {
            replicas
        } else {
            mine.len() as u64
        });
        rs["status"] = json!({
            "replicas": mine.len(), "fullyLabeledReplicas": mine.len(), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": generation_of(&rs),
        });
        let _ = store.put(replicasets, &ns, rs);
    }
    let updated = pods
        .iter()
        .filter(|p| controller_uid(p).as_deref() == Some(new_uid.as_str()))
        .count() as u64;
    let ready = pods.iter().filter(|p| is_ready(p)).count() as u64;
    let total = pods.len() as u64;
    let done = updated == replicas && total == replicas && ready == replicas;
    let Some(mut d) = store
        .lookup(rt("apps", "v1", "deployments"), &ns, &name)
        .cloned()
    else {
        return;
    };
    let conditions = d
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or(json!([]));
    d["status"] = json!({
        "observedGeneration": generation_of(&d), "replicas": total, "updatedReplicas": updated,
        "readyReplicas": ready, "availableReplicas": ready,
        "unavailableReplicas": replicas.saturating_sub(ready), "conditions": conditions,
    });
    let available = ready >= replicas.saturating_sub(replicas / 4);
    let (status, reason) = if available {
        ("True", "MinimumReplicasAvailable")
    } else {
        ("False", "MinimumReplicasUnavailable")
    };
    set_condition(&mut d, "Available", status, reason, "");
    progressing(sim, &key, &mut d, done, now);
    let _ = store.put(rt("apps", "v1", "deployments"), &ns, d);
}

/// StatefulSets (`name-0`…) and DaemonSets (one pod per node): pods owned
/// directly, replaced in place one at a time on a template change.
fn owned_slots(
    store: &mut Store,
    sim: &mut Sim,
    config: &ApiServerConfig,
    owner: &Value,
    kind: &str,
    now: Instant,
) {
    let (ns, name, uid) = (
        namespace_of(owner),
        name_of(owner).unwrap_or_default(),
        uid_of(owner),
    );
    let key = format!("{kind}/{ns}/{name}");
    let pods_rt = rt("", "v1", "pods");
    let template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let revision = format!("{name}-{}", template_hash(&template));
    let slots: Vec<(String, Option<String>)> = if kind == "StatefulSet" {
        (0..replicas_of(owner))
            .map(|i| (format!("{name}-{i}"), None))
            .collect()
    } else {
        config
            .nodes
            .iter()
            .map(|node| {
                let mut h = 0u64;
                for b in node.bytes() {
                    h = mix(h ^ u64::from(b));
                }
                (format!("{name}-{}", safe_encode(h, 5)), Some(node.clone()))
            })
            .collect()
    };
    let owned: Vec<Value> = store
        .iter(pods_rt, Some(&ns))
        .filter(|p| controller_uid(p).as_deref() == Some(uid.as_str()))
        .cloned()
        .collect();
    let slot_names: BTreeSet<&str> = slots.iter().map(|(n, _)| n.as_str()).collect();
    for extra in owned
        .iter()
        .filter(|p| !slot_names.contains(name_of(p).unwrap_or_default().as_str()))
    {
        let _ = store.delete(pods_rt, &ns, &name_of(extra).unwrap_or_default());
    }
    let revision_of = |p: &Value| {
        p.pointer("/metadata/labels/controller-revision-hash")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let labels = [("controller-revision-hash", revision.as_str())];
    let create = |store: &mut Store, sim: &mut Sim, pod_name: &str, node: Option<&str>| {
        let mut extra: Vec<(&str, &str)> = labels.to_vec();
        if kind == "StatefulSet" {
            extra.push(("statefulset.kubernetes.io/pod-name", pod_name));
        }
        new_pod(
            store,
            sim,
            config,
            NewPod {
                template: &template,
                name: pod_name,
                ns: &ns,
                owner: owner_reference(owner, kind),
                extra_labels: &extra,
                node,
            },
        );
    };
    for (pod_name, node) in &slots {
        if store.lookup(pods_rt, &ns, pod_name).is_none() {
            create(store, sim, pod_name, node.as_deref());
        }
    }
    let current: Vec<Value> = slots
        .iter()
        .filter_map(|(n, _)| store.lookup(pods_rt, &ns, n).cloned())
        .collect();
    let stale: Vec<&(String, Option<String>)> = slots
        .iter()
        .filter(|(n, _)| {
            current
                .iter()
                .any(|p| name_of(p).as_deref() == Some(n.as_str()) && revision_of(p) != revision)
        })
        .collect();
    // Highest ordinal first, as StatefulSets roll; `OnDelete` replaces a
    // pod only when someone deletes it.
    let on_delete = owner.pointer("/spec/updateStrategy/type") == Some(&json!("OnDelete"));
    if let Some((pod_name, node)) = stale.last()
        && !on_delete
        && current.iter().all(is_ready)
        && roll_due(sim, &key, config, now)
    {
        let _ = store.delete(pods_rt, &ns, pod_name);
        create(store, sim, pod_name, node.as_deref());
        sim.last_roll.insert(key.clone(), now);
    }
    let current: Vec<Value> = slots
        .iter()
        .filter_map(|(n, _)| store.lookup(pods_rt, &ns, n).cloned())
        .collect();
    let total = current.len() as u64;
    let ready = current.iter().filter(|p| is_ready(p)).count() as u64;
    let updated = current
        .iter()
        .filter(|p| revision_of(p) == revision)
        .count() as u64;
    let desired = slots.len() as u64;
    let owner_rt = if kind == "StatefulSet" {
        rt("apps", "v1", "statefulsets")
    } else {
        rt("apps", "v1", "daemonsets")
    };
    let Some(mut object) = store.lookup(owner_rt, &ns, &name).cloned() else {
        return;
    };
    let conditions = object
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or(json!([]));
    object["status"] = if kind == "StatefulSet" {
        json!({
            "observedGeneration": generation_of(&object), "replicas": total,
            "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": updated,
            "currentReplicas": if updated == total { total } else { total - updated },
            "currentRevision": revision, "updateRevision": revision, "conditions": conditions,
        })
    } else {
        json!({
            "observedGeneration": generation_of(&object), "desiredNumberScheduled": desired,
            "currentNumberScheduled": total, "numberMisscheduled": 0, "numberReady": ready,
            "numberAvailable": ready, "updatedNumberScheduled": updated, "conditions": conditions,
        })
    };
    let done = updated == desired && ready == desired;
    progressing(sim, &key, &mut object, done, now);
    let _ = store.put(owner_rt, &ns, object);
}

/// Deletes ReplicaSets and pods whose controlling owner is gone.
fn collect_garbage(store: &mut Store) {
    let owners: [&ResourceType; 4] = [
        rt("apps", "v1", "deployments"),
        rt("apps", "v1", "replicasets"),
        rt("apps", "v1", "statefulsets"),
        rt("apps", "v1", "daemonsets"),
    ];
    for dependent in [rt("apps", "v1", "replicasets"), rt("", "v1", "pods")] {
        let alive: BTreeSet<String> = owners
            .iter()
            .flat_map(|o| store.iter(o, None).map(uid_of))
            .collect();
        let orphans: Vec<(String, String)> = store
            .iter(dependent, None)
            .filter(|o| controller_uid(o).is_some_and(|u| !alive.contains(&u)))
            .map(|o| (namespace_of(o), name_of(o).unwrap_or_default()))
            .collect();
        for (ns, name) in orphans {
            let _ = store.delete(dependent, &ns, &name);
        }
    }
}

/// Every pod: a status for bare pods, the end of a resize, and one model step.
fn pods(store: &mut Store, sim: &mut Sim, config: &ApiServerConfig, now: f64) {
    let pods_rt = rt("", "v1", "pods");
    let all: Vec<Value> = store.iter(pods_rt, None).cloned().collect();
    let alive: BTreeSet<(String, String)> = all
        .iter()
        .map(|p| (namespace_of(p), name_of(p).unwrap_or_default()))
        .collect();
    sim.pods.retain(|k, _| alive.contains(k));
    sim.resizes.retain(|k, _| alive.contains(k));
    // What the kubelet of each node has allocated, for resize admission.
    let mut allocated: BTreeMap<String, Requests> = BTreeMap::new();
    for p in &all {
        let node = node_of(p);
        let sum = allocated.entry(node).or_default();
        *sum = sum.plus(resize::allocated_requests(p));
    }
    // Replica index and count among the pods of the same owner.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &all {
        let owner = controller_uid(p).unwrap_or_else(|| uid_of(p));
        groups
            .entry(owner)
            .or_default()
            .push(name_of(p).unwrap_or_default());
    }
    let dt = config.tick.as_secs_f64();
    for mut pod in all {
        let key = (namespace_of(&pod), name_of(&pod).unwrap_or_default());
        let before = pod.clone();
        if pod.pointer("/status/phase").is_none() {
            pod["status"] = running_status(&pod);
        }
        let node = node_of(&pod);
        let others = allocated
            .get(&node)
            .copied()
            .unwrap_or_default()
            .minus(resize::allocated_requests(&pod));
        kubelet_resize(sim, config, &mut pod, &key, others, now);
        let owner = controller_uid(&pod).unwrap_or_else(|| uid_of(&pod));
        let group = groups.get(&owner).cloned().unwrap_or_default();
        let replica = group.iter().position(|n| *n == key.1).unwrap_or(0) as u32;
        let replicas = group.len().max(1) as u32;
        step_model(sim, config, &mut pod, &key, replica, replicas, now, dt);
        if pod != before {
            let _ = store.put(pods_rt, &key.0, pod);
        }
    }
}

fn node_of(pod: &Value) -> String {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The kubelet's side of an in-place resize: admit the pod's new desired
/// values against its node, mark `PodResizePending` (`Deferred`,
/// `Infeasible`) or `PodResizeInProgress`, and actuate after
/// `resize_ticks` ticks. `others` is what the node's other pods hold.
fn kubelet_resize(
    sim: &mut Sim,
    config: &ApiServerConfig,
    pod: &mut Value,
    key: &(String, String),
    others: Requests,
    now: f64,
) {
    if resize::actuated(pod) {
        sim.resizes.remove(key);
        remove_condition(pod, resize::PENDING);
        remove_condition(pod, resize::IN_PROGRESS);
        return;
    }
    let desired: Vec<Resources> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(resize::resources_of).collect())
        .unwrap_or_default();
    let known = sim
        .resizes
        .get(key)
        .filter(|p| p.desired == desired)
        .map(|p| p.state);
    let state = match known {
        Some(ResizeState::Infeasible) => return,
        Some(ResizeState::InProgress(left)) => ResizeState::InProgress(left.saturating_sub(1)),
        None | Some(ResizeState::Deferred) => {
            let capacity = Requests {
                cpu: config.node_cpu,
                memory: config.node_memory,
            };
            match resize::admit(resize::desired_requests(pod), others, capacity) {
                Admission::Fits => {
                    resize::allocate(pod);
                    remove_condition(pod, resize::PENDING);
                    set_condition(pod, resize::IN_PROGRESS, "True", "", "");
                    ResizeState::InProgress(config.resize_ticks)
                }
                Admission::Deferred(message) => {
                    remove_condition(pod, resize::IN_PROGRESS);
                    set_condition(pod, resize::PENDING, "True", "Deferred", &message);
                    ResizeState::Deferred
                }
                Admission::Infeasible(message) => {
                    remove_condition(pod, resize::IN_PROGRESS);
                    set_condition(pod, resize::PENDING, "True", "Infeasible", &message);
                    ResizeState::Infeasible
                }
            }
        }
    };
    if state == ResizeState::InProgress(0) {
        for name in resize::actuate(pod) {
            restart_container(sim, pod, key, &name, now);
        }
        remove_condition(pod, resize::IN_PROGRESS);
        sim.resizes.remove(key);
        return;
    }
    sim.resizes
        .insert(key.clone(), PendingResize { desired, state });
}

/// A `RestartContainer` resize restarted `container`: the pod stays, the
/// container starts again (restart count, new container id, model restart).
fn restart_container(sim: &mut Sim, pod: &mut Value, key: &(String, String), name: &str, now: f64) {
    let snapshot = pod.clone();
    let Some(statuses) = pod
        .pointer_mut("/status/containerStatuses")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let Some(s) = statuses.iter_mut().find(|s| s["name"] == name) else {
        return;
    };
    let restarts = s.get("restartCount").and_then(Value::as_u64).unwrap_or(0) + 1;
    s["restartCount"] = json!(restarts);
    s["containerID"] = json!(container_id(&snapshot, name, restarts));
    s["state"] = json!({"running": {"startedAt": rfc3339(now)}});
    let first = snapshot
        .pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        == Some(name);
    if first && let Some(state) = sim.pods.get_mut(key) {
        state.container_start = now;
    }
}

#[allow(clippy::too_many_arguments)]
fn step_model(
    sim: &mut Sim,
    config: &ApiServerConfig,
    pod: &mut Value,
    key: &(String, String),
    replica: u32,
    replicas: u32,
    now: f64,
    dt: f64,
) {
    let Some(model) = pod
        .pointer(&format!(
            "/metadata/annotations/{}",
            MODEL_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|m| config.models.get(m))
    else {
        return;
    };
    let uid = uid_of(pod);
    let state = sim.pods.entry(key.clone()).or_default();
    if state.uid != uid {
        *state = PodSim {
            uid,
            buckets: vec![0.0; LATENCY_BOUNDS.len()],
            container_start: now,
            ..PodSim::default()
        };
    }
    // The model runs on what the container actually has: after an
    // in-place resize that is the actuated `status` values, not the spec.
    let Some(container) = pod
        .pointer("/status/containerStatuses/0")
        .filter(|s| s.get("resources").is_some())
        .or_else(|| pod.pointer("/spec/containers/0"))
        .cloned()
    else {
        return;
    };
    let resources = resize::resources_of(&container);
    if let Some(until) = state.down_until
        && now >= until
    {
        state.down_until = None;
        state.container_start = now;
        set_container_running(pod, now);
    }
    let age = (now - state.container_start).max(0.0) as i64;
    let demand = model
        .workload
        .demand(config.seed, now as i64, replica, replicas, age);
    if demand.is_gap() {
        return;
    }
    let response = respond(
        &model.response,
        &demand,
        &Given::from_resources(&resources, 0.0),
    );
    let requests = demand.requests_per_s.max(0.0) * dt;
    if state.down_until.is_some() {
        state.requests_error += requests;
        state.memory_bytes = 0.0;
        return;
    }
    state.cpu_seconds += response.cpu_used_cores * dt;
    state.memory_bytes = match resources.memory_limit {
        Some(limit) => demand.memory_bytes.min(limit.as_f64()),
        None => demand.memory_bytes,
    };
    if resources.cpu_limit.is_some() {
        let periods = dt * CFS_PERIODS_PER_S;
        state.cfs_periods += periods;
        state.throttled_periods += periods * response.throttled_ratio.clamp(0.0, 1.0);
    }
    let errors = requests * response.error_ratio.clamp(0.0, 1.0);
    state.requests_error += errors;
    state.requests_ok += requests - errors;
    for (count, fraction) in state.buckets.iter_mut().zip(bucket_fractions(
        response.latency_p95_s,
        response.latency_p99_s,
        LATENCY_BOUNDS,
    )) {
        *count += requests * fraction;
    }
    state.latency_count += requests;
    // The median of the model's latency shape sits near half the p95.
    state.latency_sum += requests * response.latency_p95_s * 0.5;
    if response.oom_killed {
        state.down_until = Some(now + model.response.restart_s.max(dt));
        state.memory_bytes = 0.0;
        oom_kill(pod, state.container_start, now);
    }
}

fn rfc3339(unix: f64) -> String {
    chrono::DateTime::from_timestamp(unix as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The first container was OOM-killed: restart count, last state, not ready.
fn oom_kill(pod: &mut Value, started: f64, now: f64) {
    let snapshot = pod.clone();
    if let Some(s) = pod.pointer_mut("/status/containerStatuses/0") {
        let restarts = s.get("restartCount").and_then(Value::as_u64).unwrap_or(0) + 1;
        let name = s
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        s["restartCount"] = json!(restarts);
        s["lastState"] = json!({"terminated": {
            "exitCode": 137, "reason": "OOMKilled",
            "startedAt": rfc3339(started), "finishedAt": rfc3339(now),
            "containerID": s.get("containerID").cloned().unwrap_or(json!("")),
        }});
        s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
        s["ready"] = json!(false);
        s["started"] = json!(false);
        s["containerID"] = json!(container_id(&snapshot, &name, restarts));
    }
    set_condition(
        pod,
        "ContainersReady",
        "False",
        "ContainersNotReady",
        "containers with unready status",
    );
    set_condition(
        pod,
        "Ready",
        "False",
        "ContainersNotReady",
        "containers with unready status",
    );
}

fn set_container_running(pod: &mut Value, now: f64) {
    if let Some(s) = pod.pointer_mut("/status/containerStatuses/0") {
        s["state"] = json!({"running": {"startedAt": rfc3339(now)}});
        s["ready"] = json!(true);
        s["started"] = json!(true);
    }
    set_condition(pod, "ContainersReady", "True", "", "");
    set_condition(pod, "Ready", "True", "", "");
}

/// Cumulative share of requests at or under each bound, shaped so that
/// Prometheus' `histogram_quantile` (linear inside a bucket) reads back
/// `p95` and `p99`: the CDF runs on the line through (p95, 0.95) and
/// (p99, 0.99) inside their buckets, flattened where the line would leave
/// [0, 1], and linear between.
pub fn bucket_fractions(p95: f64, p99: f64, bounds: &[f64]) -> Vec<f64> {
    if !(p95.is_finite() && p99.is_finite()) || p95 <= 0.0 {
        return vec![0.0; bounds.len()];
    }
    let p99 = p99.max(p95 * (1.0 + 1e-9));
    let bucket = |x: f64| {
        let i = bounds.iter().position(|&b| b >= x).unwrap_or(bounds.len());
        let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
        let upper = bounds.get(i).copied().unwrap_or(f64::INFINITY);
        (i, lower, upper)
    };
    let (i95, a1, b1) = bucket(p95);
    let (i99, a2, b2) = bucket(p99);
    let line = 0.04 / (p99 - p95);
    let (fa1, fb1, fa2, fb2) = if i95 == i99 {
        // One bucket: one slope through both points, flattened at 1 so the
        // p99 stays exact.
        let s = if b2.is_finite() && b2 > p99 {
            line.min(0.01 / (b2 - p99))
        } else {
            line
        };
        let fa = (0.99 - s * (p99 - a1)).max(0.0);
        let fb = if b2.is_finite() {
            (0.99 + s * (b2 - p99)).min(1.0)
        } else {
            1.0
        };
        (fa, fb, fa, fb)
    } else if i99 == i95 + 1 {
        // Adjacent buckets share the bound's value m: as low as bucket 2
        // allows (its top at most 1), at least 0.95.
        let u1 = (p95 - a1) / (b1 - a1);
        let u2 = if b2.is_finite() {
            (p99 - a2) / (b2 - a2)
        } else {
            0.0
        };
        let need2 = if b2.is_finite() && u2 < 1.0 {
            (0.99 - u2) / (1.0 - u2)
        } else {
            0.95
        };
        let m = need2.clamp(0.95, 0.99);
        let fa1 = if a1 == 0.0 {
            0.0 // histogram_quantile starts the first bucket at 0
        } else if u1 < 1.0 {
            ((0.95 - u1 * m) / (1.0 - u1)).clamp(0.0, m)
        } else if b1 > 0.0 {
            0.95_f64.min(m) * a1 / b1
        } else {
            0.0
        };
        let fb2 = if b2.is_finite() && u2 > 0.0 {
            (m + (0.99 - m) / u2).min(1.0)
        } else {
            1.0
        };
        (fa1, m, m, fb2)
    } else {
        let s1 = if a1 == 0.0 {
            0.95 / p95 // the first bucket starts at 0
        } else if p95 > a1 {
            line.min(0.95 / (p95 - a1))
        } else {
            line
        };
        let s2 = if b2.is_finite() && b2 > p99 {
            line.min(0.01 / (b2 - p99))
        } else {
            line
        };
        (
            (0.95 - s1 * (p95 - a1)).clamp(0.0, 1.0),
            (0.95 + s1 * (b1 - p95)).clamp(0.0, 0.99 - s2 * (p99 - a2)),
            (0.99 - s2 * (p99 - a2)).clamp(0.0, 1.0),
            if b2.is_finite() {
                (0.99 + s2 * (b2 - p99)).clamp(0.0, 1.0)
            } else {
                1.0
            },
        )
    };
    bounds
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if i < i95 {
                if a1 > 0.0 { fa1 * b / a1 } else { 0.0 }
            } else if i == i95 {
                fb1
            } else if i < i99 {
                // Between the two buckets: linear from (b1, fb1) to (a2, fa2).
                if a2 > b1 {
                    fb1 + (fa2 - fb1) * (b - b1) / (a2 - b1)
                } else {
                    fa2
                }
            } else if i == i99 {
                fb2
            } else {
                1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus' `histogram_quantile` over cumulative counts (+Inf = total).
    fn histogram_quantile(q: f64, bounds: &[f64], cumulative: &[f64], total: f64) -> f64 {
        let rank = q * total;
        let mut previous = 0.0;
        for (i, (&b, &c)) in bounds.iter().zip(cumulative).enumerate() {
            if c >= rank {
                let start = if i == 0 { 0.0 } else { bounds[i - 1] };
                return start + (b - start) * (rank - previous) / (c - previous);
            }
            previous = c;
        }
        bounds[bounds.len() - 1]
    }

    #[test]
    fn histogram_quantile_reads_back_the_model_latencies() {
        // (p95, p99, whether the buckets allow both exactly)
        let cases = [
            (0.12, 0.216, true),
            (0.025, 0.05, true),
            (0.08, 0.128, true),
            (0.5, 2.0, true),
            (0.004, 0.006, false),
            (0.2, 0.9, true),
            (0.11, 0.14, false),
            (0.3, 0.33, false),
        ];
        for (p95, p99, exact) in cases {
            let f = bucket_fractions(p95, p99, LATENCY_BOUNDS);
            assert!(
                f.windows(2).all(|w| w[0] <= w[1] + 1e-12),
                "monotonic {f:?}"
            );
            let got95 = histogram_quantile(0.95, LATENCY_BOUNDS, &f, 1.0);
            let got99 = histogram_quantile(0.99, LATENCY_BOUNDS, &f, 1.0);
            // Inexact: p95 at a bound or in the first bucket, p99 just above.
            let tolerance = if exact { 1e-9 } else { 0.25 };
            assert!(
                (got95 - p95).abs() <= tolerance * p95,
                "p95 {p95}: {got95} {f:?}"
            );
            assert!(
                (got99 - p99).abs() <= 1e-9 * p99,
                "p99 {p99}: {got99} {f:?}"
            );
        }
    }
}
