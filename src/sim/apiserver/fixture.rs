//! The cluster the server starts with: a YAML file of workloads built from
//! the workload models (`simulations/e2e/cluster.yaml`), turned into
//! namespaces, nodes, Deployments, StatefulSets, DaemonSets and HPAs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::controllers::MODEL_ANNOTATION;
use super::resources::by_kind;
use super::store::{Store, namespace_of};
use super::{ApiServerConfig, ApiServerError};
use crate::cluster::{annotations, gitops};
use crate::sim::models::load_model;
use crate::sim::scenario::FleetEntry;
use crate::units::{Bytes, MilliCores};

/// `cluster.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Folder of the workload models, relative to the file.
    #[serde(default = "default_models")]
    pub models: PathBuf,
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
    /// Allocatable per node, as Kubernetes quantities.
    #[serde(default)]
    pub node_cpu: Option<String>,
    #[serde(default)]
    pub node_memory: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// `1s`, `500ms`.
    #[serde(default)]
    pub tick: Option<String>,
    #[serde(default)]
    pub roll_interval: Option<String>,
    #[serde(default)]
    pub deployments: Vec<FleetEntry>,
    #[serde(default)]
    pub statefulsets: Vec<FleetEntry>,
    #[serde(default)]
    pub daemonsets: Vec<FleetEntry>,
    /// Any other objects (LimitRanges, PDBs…), as manifests.
    #[serde(default)]
    pub objects: Vec<Value>,
}

fn default_models() -> PathBuf {
    PathBuf::from("../../models")
}

/// Reads a cluster file and the models it names into a config (port 0).
pub fn load_cluster(path: &Path) -> Result<ApiServerConfig, ApiServerError> {
    let problem = |message: String| ApiServerError::Cluster {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    let file: ClusterFile = serde_yaml_ng::from_str(&text).map_err(|e| problem(e.to_string()))?;
    let models_dir = if file.models.is_absolute() {
        file.models.clone()
    } else {
        path.parent().unwrap_or(Path::new(".")).join(&file.models)
    };
    // Only the models the file names: others may need data (traces) that
    // is not there.
    let mut models = BTreeMap::new();
    for entry in file
        .deployments
        .iter()
        .chain(&file.statefulsets)
        .chain(&file.daemonsets)
    {
        if !models.contains_key(&entry.model) {
            let path = models_dir.join(format!("{}.yaml", entry.model));
            if !path.is_file() {
                return Err(problem(format!(
                    "no model {:?} in {}",
                    entry.model,
                    models_dir.display()
                )));
            }
            models.insert(entry.model.clone(), load_model(&path)?);
        }
    }
    let duration = |key: &str, text: &Option<String>, default: Duration| match text {
        None => Ok(default),
        Some(t) => humantime::parse_duration(t).map_err(|e| problem(format!("`{key}`: {e}"))),
    };
    let defaults = ApiServerConfig::default();
    let mut config = ApiServerConfig {
        tick: duration("tick", &file.tick, defaults.tick)?,
        roll_interval: duration("roll_interval", &file.roll_interval, defaults.roll_interval)?,
        ..defaults
    };
    if let Some(nodes) = file.nodes {
        config.nodes = nodes;
    }
    if let Some(cpu) = &file.node_cpu {
        config.node_cpu = cpu
            .parse::<MilliCores>()
            .map_err(|e| problem(format!("`node_cpu`: {e}")))?;
    }
    if let Some(memory) = &file.node_memory {
        config.node_memory = memory
            .parse::<Bytes>()
            .map_err(|e| problem(format!("`node_memory`: {e}")))?;
    }
    if let Some(seed) = file.seed {
        config.seed = seed;
    }
    config.fleet = file.deployments;
    config.statefulsets = file.statefulsets;
    config.daemonsets = file.daemonsets;
    config.objects = file.objects;
    config.models = models;
    Ok(config)
}

/// Creates the config's objects in an empty store.
pub fn populate(store: &mut Store, config: &ApiServerConfig) -> Result<(), ApiServerError> {
    let create = |store: &mut Store, object: Value| -> Result<(), ApiServerError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let what = format!(
            "{kind} {}",
            object.pointer("/metadata/name").unwrap_or(&Value::Null)
        );
        let rt = by_kind(api_version, kind).ok_or_else(|| ApiServerError::Fixture {
            what: what.clone(),
            source: super::ApiError::bad_request(format!("{api_version} {kind} is not served")),
        })?;
        let ns = if rt.namespaced {
            let ns = namespace_of(&object);
            if ns.is_empty() {
                "default".to_string()
            } else {
                ns
            }
        } else {
            String::new()
        };
        store
            .put(rt, &ns, object)
            .map(|_| ())
            .map_err(|source| ApiServerError::Fixture { what, source })
    };
    let workloads = config
        .fleet
        .iter()
        .map(|e| ("Deployment", e))
        .chain(config.statefulsets.iter().map(|e| ("StatefulSet", e)))
        .chain(config.daemonsets.iter().map(|e| ("DaemonSet", e)));
    let mut namespaces: BTreeSet<String> = ["default".to_string()].into();
    namespaces.extend(workloads.clone().map(|(_, e)| e.namespace.clone()));
    namespaces.extend(
        config
            .objects
            .iter()
            .map(namespace_of)
            .filter(|ns| !ns.is_empty()),
    );
    let declared: BTreeSet<String> = config
        .objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .filter_map(|o| o.pointer("/metadata/name")?.as_str().map(str::to_string))
        .collect();
    for ns in namespaces.difference(&declared) {
        create(
            store,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )?;
    }
    for node in &config.nodes {
        create(
            store,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node,
                "labels": {"kubernetes.io/hostname": node}},
                "status": {"allocatable": {"cpu": config.node_cpu.to_string(),
                    "memory": config.node_memory.to_string(), "pods": "110"},
                    "capacity": {"cpu": config.node_cpu.to_string(),
                    "memory": config.node_memory.to_string(), "pods": "110"}}}),
        )?;
    }
    for object in &config.objects {
        create(store, object.clone())?;
    }
    for (kind, entry) in workloads {
        for object in workload_objects(kind, entry, config) {
            create(store, object)?;
        }
    }
    Ok(())
}

fn quantity_map(cpu: Option<MilliCores>, memory: Option<Bytes>) -> Value {
    let mut map = serde_json::Map::new();
    if let Some(cpu) = cpu {
        map.insert("cpu".into(), json!(cpu.to_string()));
    }
    if let Some(memory) = memory {
        map.insert("memory".into(), json!(memory.to_string()));
    }
    Value::Object(map)
}

/// The workload (and its HPA) for each of an entry's `count` copies.
fn workload_objects(kind: &str, entry: &FleetEntry, config: &ApiServerConfig) -> Vec<Value> {
    let Some(model) = config.models.get(&entry.model) else {
        return Vec::new();
    };
    let prefix = entry.name.clone().unwrap_or_else(|| entry.model.clone());
    let replicas = entry.replicas.unwrap_or(model.defaults.replicas);
    let r = model.defaults.resources;
    let (cpu_request, cpu_limit, memory_request, memory_limit) = match &entry.resources {
        Some(y) => (y.cpu_request, y.cpu_limit, y.memory_request, y.memory_limit),
        None => (r.cpu_request, r.cpu_limit, r.memory_request, r.memory_limit),
    };
    let resources = json!({
        "requests": quantity_map(cpu_request, memory_request),
        "limits": quantity_map(cpu_limit, memory_limit),
    });
    let mut out = Vec::new();
    for i in 0..entry.count {
        let name = if entry.count == 1 {
            prefix.clone()
        } else {
            format!("{prefix}-{i}")
        };
        let ns = &entry.namespace;
        let mut workload_annotations = serde_json::Map::new();
        let mut labels = serde_json::Map::new();
        labels.insert("app".into(), json!(name));
        if let Some(mode) = entry.mode {
            workload_annotations.insert(annotations::MODE.into(), json!(mode.as_str()));
        }
        if entry.paused {
            workload_annotations.insert(annotations::PAUSED.into(), json!("true"));
        }
        if entry.gitops {
            workload_annotations.insert(
                gitops::ARGOCD_TRACKING_ID.into(),
                json!(format!("{name}:apps/{kind}:{ns}/{name}")),
            );
            labels.insert(gitops::ARGOCD_INSTANCE_LABEL.into(), json!(name));
        }
        let template = json!({
            "metadata": {"labels": {"app": name},
                         "annotations": {MODEL_ANNOTATION: entry.model}},
            "spec": {"containers": [{
                "name": "app", "image": format!("registry.example/{}:1.0", entry.model),
                "resources": resources,
            }]},
        });
        let mut spec = json!({"selector": {"matchLabels": {"app": name}}, "template": template});
        match kind {
            "Deployment" => {
                spec["replicas"] = json!(replicas);
                spec["progressDeadlineSeconds"] = json!(600);
                spec["strategy"] = json!({"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
            }
            "StatefulSet" => {
                spec["replicas"] = json!(replicas);
                spec["serviceName"] = json!(name);
            }
            _ => {}
        }
        out.push(json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "annotations": workload_annotations},
            "spec": spec,
        }));
        if let Some(hpa) = &entry.hpa {
            out.push(json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name},
                    "minReplicas": hpa.min_replicas, "maxReplicas": hpa.max_replicas,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": hpa.resource.to_string(),
                        "target": {"type": "Utilization",
                                   "averageUtilization": hpa.target_utilization_percent}}}],
                },
            }));
        }
    }
    out
}
