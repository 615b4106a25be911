//! How tailor writes a change: a JSON Patch (RFC 6902) built from the
//! object exactly as the server returned it. `test` ops pin the
//! `resourceVersion`, each container's name at its index and its whole
//! `resources` value, so a concurrent edit makes the API server reject the
//! patch (422) instead of tailor clobbering it (DESIGN §1).
//!
//! Two targets: the workload's pod template ([`resource_patch`],
//! [`workload_ops`]), and, for workloads that opt in, each running pod
//! through the `pods/{name}/resize` subresource ([`resize_ops`]); which one a
//! change takes is decided by [`route`], the Kubernetes 1.33 rules of an
//! in-place resize by [`resize_blocker`].
//!
//! Pure: objects come in as JSON, the ops go out as values.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::annotations;
use super::crd::ResourceValues;
use super::view;
use crate::domain::{Resources, WorkloadKind, WorkloadRef};
use crate::ports::{ContainerPatch, PortError, ResourcePatch};

/// One RFC 6902 operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    Test { path: String, value: Value },
    Add { path: String, value: Value },
    Replace { path: String, value: Value },
    Remove { path: String },
}

/// What to send for a [`ResourcePatch`].
#[derive(Clone, Debug, PartialEq)]
pub enum PatchPlan {
    Patch(Vec<PatchOp>),
    /// The workload already carries this change (an agent that died after
    /// patching retries it): nothing to send.
    AlreadyApplied,
}

/// The `tailor.dev/in-place` annotation: what tailor resized a workload's
/// running pods to, since the pod template may not say it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InPlaceRecord {
    /// The change that last resized the pods (or went to the template).
    pub change_id: String,
    /// Per container, the values the running pods should have where they
    /// differ from the template; with `template`, the values of the change.
    #[serde(default)]
    pub containers: BTreeMap<String, ResourceValues>,
    /// The template was patched too (`updateStrategy: OnDelete`, whose
    /// controller never restarts pods for a template change): the template
    /// is the truth, as for any other workload.
    #[serde(default)]
    pub template: bool,
    /// Why this change went to the template after all (a resize the
    /// kubelet found infeasible, or deferred too long).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

impl InPlaceRecord {
    /// The record on a workload; an unreadable one counts as absent, with
    /// a warning (tailor then trusts the template and the pods).
    pub fn of(object: &Value) -> Option<InPlaceRecord> {
        let text = annotation(object, annotations::IN_PLACE)?;
        match serde_json::from_str(text) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(annotation = annotations::IN_PLACE, error = %e, "ignoring an unreadable annotation");
                None
            }
        }
    }

    /// The values the running pods should have for `container`, when they
    /// differ from the template's.
    pub fn pods_value(&self, container: &str) -> Option<Resources> {
        if !self.holds_pods() {
            return None;
        }
        self.containers.get(container).cloned().map(Resources::from)
    }

    /// The record in a workload's annotations (typed objects).
    pub fn from_annotations(
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Option<InPlaceRecord> {
        let text = annotations?.get(annotations::IN_PLACE)?;
        serde_json::from_str(text).ok()
    }

    /// Whether the record still governs the running pods: the template
    /// does not hold its values and the change did not go to the template.
    pub fn holds_pods(&self) -> bool {
        !self.template && self.fallback.is_none()
    }

    pub fn to_json(&self) -> Result<String, PortError> {
        serde_json::to_string(self)
            .map_err(|e| PortError::Conflict(format!("in-place record not encodable: {e}")))
    }
}

/// How a change reaches the pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A JSON Patch of the pod template; its controller rolls the pods.
    /// `fallback`: why not in place, when the workload asked for it.
    Template { fallback: Option<String> },
    /// `pods/resize` on every pod; `template_too`: the template is patched
    /// in the same write (its controller would not restart pods for it).
    InPlace { template_too: bool },
}

/// Which way `patch` goes for `object` (the workload as JSON) whose pods
/// are `pods`, on a cluster at `version` (major, minor).
pub fn route(
    object: &Value,
    kind: WorkloadKind,
    version: (u32, u32),
    pods: &[Value],
    patch: &ResourcePatch,
) -> Route {
    let fallback = |why: String| Route::Template {
        fallback: Some(why),
    };
    if annotation(object, annotations::APPLY).map(str::trim) != Some(annotations::APPLY_IN_PLACE) {
        return Route::Template { fallback: None };
    }
    if let Some(record) = InPlaceRecord::of(object)
        && record.change_id == patch.change_id
        && let Some(why) = record.fallback
    {
        return fallback(format!(
            "change {} already went to the pod template ({why})",
            patch.change_id
        ));
    }
    if version < (1, 33) {
        return fallback(format!(
            "the cluster runs Kubernetes {}.{}; in-place resize needs 1.33 or later",
            version.0, version.1
        ));
    }
    if pods.is_empty() {
        return fallback("no running pod to resize".into());
    }
    for pod in pods {
        if let Some(why) = resize_blocker(pod, patch) {
            let name = pod
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            return fallback(format!("pod {name}: {why}"));
        }
    }
    let on_delete = object.pointer("/spec/updateStrategy/type") == Some(&json!("OnDelete"));
    Route::InPlace {
        template_too: on_delete && kind != WorkloadKind::Deployment,
    }
}

/// QoS class of a pod from its containers' values, as the API server
/// computes it (a request left unset defaults to the limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

pub fn qos_class(containers: &[Resources]) -> QosClass {
    let any = containers.iter().any(|r| *r != Resources::default());
    if !any {
        return QosClass::BestEffort;
    }
    let guaranteed = containers.iter().all(|r| {
        r.cpu_limit
            .is_some_and(|l| r.cpu_request.is_none_or(|q| q == l))
            && r.memory_limit
                .is_some_and(|l| r.memory_request.is_none_or(|q| q == l))
    });
    if guaranteed {
        QosClass::Guaranteed
    } else {
        QosClass::Burstable
    }
}

/// Why the API server (Kubernetes 1.33, KEP-1287) would refuse to resize
/// `pod` to `patch`'s values in place: a request or limit removed, a
/// memory limit lowered without `resizePolicy: RestartContainer`, or the
/// pod's QoS class changed. `None`: it would accept it.
pub fn resize_blocker(pod: &Value, patch: &ResourcePatch) -> Option<String> {
    let list = pod.pointer("/spec/containers").and_then(Value::as_array)?;
    let mut before = Vec::new();
    let mut after = Vec::new();
    for c in list {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let requirements = c
            .get("resources")
            .and_then(|v| serde_json::from_value::<ResourceRequirements>(v.clone()).ok());
        let Ok(current) = view::resources(name, requirements.as_ref()) else {
            return Some(format!("container {name} has unreadable resources"));
        };
        before.push(current);
        let Some(change) = patch.containers.iter().find(|p| p.container == name) else {
            after.push(current);
            continue;
        };
        let set = change.set;
        after.push(set);
        let removed = [
            (
                "CPU request",
                current.cpu_request.is_some() && set.cpu_request.is_none(),
            ),
            (
                "CPU limit",
                current.cpu_limit.is_some() && set.cpu_limit.is_none(),
            ),
            (
                "memory request",
                current.memory_request.is_some() && set.memory_request.is_none(),
            ),
            (
                "memory limit",
                current.memory_limit.is_some() && set.memory_limit.is_none(),
            ),
        ];
        if let Some((what, _)) = removed.iter().find(|(_, gone)| *gone) {
            return Some(format!(
                "container {name}: the change removes the {what}, which a resize cannot do"
            ));
        }
        if let (Some(was), Some(is)) = (current.memory_limit, set.memory_limit)
            && is < was
            && restart_policy(c, "memory") != "RestartContainer"
        {
            return Some(format!(
                "container {name}: the memory limit goes down ({was} → {is}) and its memory \
                 resizePolicy is not RestartContainer, which Kubernetes 1.33 refuses in place"
            ));
        }
    }
    let (was, is) = (qos_class(&before), qos_class(&after));
    if was != is {
        return Some(format!(
            "the change moves the pod from QoS class {was:?} to {is:?}, which a resize cannot do"
        ));
    }
    None
}

/// A container's `resizePolicy` for `resource` (`cpu`, `memory`):
/// `RestartContainer`, or `NotRequired` (the default, also spelt
/// `PreferNoRestart` from 1.33).
pub fn restart_policy<'a>(container: &'a Value, resource: &str) -> &'a str {
    container
        .get("resizePolicy")
        .and_then(Value::as_array)
        .and_then(|ps| ps.iter().find(|p| p["resourceName"] == resource))
        .and_then(|p| p.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("NotRequired")
}

/// The JSON Patch that moves `patch.containers` from `expect` to `set` on
/// `object`'s pod template (a Deployment, StatefulSet or DaemonSet as JSON).
///
/// A container whose current values are not `expect`, or a container no
/// longer in the template, is a [`PortError::Conflict`]. The values being
/// replaced are recorded as `tailor.dev/last-known-good`, except when the
/// patch carries the change id already on the workload: that is the revert
/// of tailor's own change, and the annotation already holds what it restores.
/// An in-place record on the workload is removed: the template holds the
/// values again.
pub fn resource_patch(object: &Value, patch: &ResourcePatch) -> Result<PatchPlan, PortError> {
    template_patch(object, patch, KnownGood::UnlessOurs)
}

/// Whether a change records the values it replaces as last known good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownGood {
    /// Yes, unless the workload already carries the change's id (the revert
    /// of tailor's own change: the annotation holds what it restores).
    UnlessOurs,
    /// Never (`tailor revert` puts the annotation's own values back).
    Never,
}

impl KnownGood {
    pub fn record(self, ours: bool) -> bool {
        self == KnownGood::UnlessOurs && !ours
    }
}

/// [`resource_patch`], choosing whether last-known-good is written.
pub fn template_patch(
    object: &Value,
    patch: &ResourcePatch,
    known_good: KnownGood,
) -> Result<PatchPlan, PortError> {
    let ours = annotation(object, annotations::CHANGE_ID) == Some(patch.change_id.as_str());
    let containers = template_containers(object, &patch.workload, patch)?;
    let all_set = patch
        .containers
        .iter()
        .zip(&containers)
        .all(|(c, (_, current))| *current == c.set);
    if ours && all_set {
        return Ok(PatchPlan::AlreadyApplied);
    }
    for (c, (_, current)) in patch.containers.iter().zip(&containers) {
        if *current != c.expect {
            return Err(stale(&patch.workload, &c.container, current, &c.expect));
        }
    }
    let changes = template_changes(patch, &containers);
    let mut notes = vec![(annotations::CHANGE_ID, Some(patch.change_id.clone()))];
    if known_good.record(ours) {
        notes.push((annotations::LAST_KNOWN_GOOD, Some(known_good_text(patch)?)));
    }
    notes.push((annotations::IN_PLACE, None));
    workload_ops(object, &patch.workload, &changes, &notes).map(PatchPlan::Patch)
}

/// The conflict for a container whose values moved since the plan.
pub fn stale(
    workload: &WorkloadRef,
    container: &str,
    held: &Resources,
    expected: &Resources,
) -> PortError {
    PortError::Conflict(format!(
        "{workload}: container {container} has {} where the change expected {}",
        describe(held),
        describe(expected)
    ))
}

/// The last-known-good annotation's value for `patch`: its `expect` values.
pub fn known_good_text(patch: &ResourcePatch) -> Result<String, PortError> {
    let known: BTreeMap<&str, ResourceValues> = patch
        .containers
        .iter()
        .map(|c| (c.container.as_str(), ResourceValues::from(c.expect)))
        .collect();
    serde_json::to_string(&known)
        .map_err(|e| PortError::Conflict(format!("last-known-good not encodable: {e}")))
}

/// The values `tailor.dev/last-known-good` holds, per container.
pub fn last_known_good(
    object: &Value,
    workload: &WorkloadRef,
) -> Result<BTreeMap<String, Resources>, PortError> {
    let text = annotation(object, annotations::LAST_KNOWN_GOOD).ok_or_else(|| {
        PortError::NotFound(format!(
            "{workload} has no {} annotation: tailor never changed it",
            annotations::LAST_KNOWN_GOOD
        ))
    })?;
    let known: BTreeMap<String, ResourceValues> = serde_json::from_str(text).map_err(|e| {
        PortError::Conflict(format!(
            "{workload}: annotation {} is not a JSON map of container values: {e}",
            annotations::LAST_KNOWN_GOOD
        ))
    })?;
    Ok(known
        .into_iter()
        .map(|(name, values)| (name, Resources::from(values)))
        .collect())
}

/// The change that puts back `tailor.dev/last-known-good` (for `tailor
/// revert`), from what the workload holds now (`current`, per container).
/// `None`: it already has those values.
pub fn last_known_good_change(
    object: &Value,
    workload: &WorkloadRef,
    change_id: &str,
    current: impl Fn(&str) -> Result<Resources, PortError>,
) -> Result<Option<ResourcePatch>, PortError> {
    let mut patch = ResourcePatch {
        workload: workload.clone(),
        change_id: change_id.to_string(),
        containers: Vec::new(),
    };
    for (name, set) in last_known_good(object, workload)? {
        let held = current(&name)?;
        if held != set {
            patch.containers.push(ContainerPatch {
                container: name,
                expect: held,
                set,
            });
        }
    }
    Ok((!patch.containers.is_empty()).then_some(patch))
}

pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn describe(r: &Resources) -> String {
    let text = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    format!(
        "requests cpu {} memory {}, limits cpu {} memory {}",
        text(r.cpu_request.map(|v| v.to_string())),
        text(r.memory_request.map(|v| v.to_string())),
        text(r.cpu_limit.map(|v| v.to_string())),
        text(r.memory_limit.map(|v| v.to_string())),
    )
}

const TEMPLATE_CONTAINERS: &str = "/spec/template/spec/containers";
const POD_CONTAINERS: &str = "/spec/containers";

/// Each patched container's index in the template and current values.
pub fn template_containers(
    object: &Value,
    workload: &WorkloadRef,
    patch: &ResourcePatch,
) -> Result<Vec<(usize, Resources)>, PortError> {
    let names: Vec<&str> = patch
        .containers
        .iter()
        .map(|c| c.container.as_str())
        .collect();
    containers_at(object, TEMPLATE_CONTAINERS, &workload.to_string(), &names)
}

/// One container's values in the template.
pub fn template_value(
    object: &Value,
    workload: &WorkloadRef,
    container: &str,
) -> Result<Resources, PortError> {
    Ok(containers_at(
        object,
        TEMPLATE_CONTAINERS,
        &workload.to_string(),
        &[container],
    )?[0]
        .1)
}

/// One container's desired values in a pod's spec.
pub fn pod_value(pod: &Value, container: &str) -> Result<Resources, PortError> {
    Ok(containers_at(pod, POD_CONTAINERS, &pod_label(pod), &[container])?[0].1)
}

fn pod_label(pod: &Value) -> String {
    format!(
        "pod {}/{}",
        pod.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(""),
        pod.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    )
}

/// Index and parsed values of each named container of the list at `pointer`.
fn containers_at(
    object: &Value,
    pointer: &str,
    what: &str,
    names: &[&str],
) -> Result<Vec<(usize, Resources)>, PortError> {
    let list = object
        .pointer(pointer)
        .and_then(Value::as_array)
        .ok_or_else(|| PortError::Conflict(format!("{what} has no containers")))?;
    names
        .iter()
        .map(|&name| {
            let index = list
                .iter()
                .position(|x| x.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| {
                    PortError::Conflict(format!("{what}: container {name} is no longer there"))
                })?;
            let requirements = match list[index].get("resources") {
                None => None,
                Some(v) => Some(
                    serde_json::from_value::<ResourceRequirements>(v.clone()).map_err(|e| {
                        PortError::Conflict(format!(
                            "{what}: container {name} has unreadable resources: {e}"
                        ))
                    })?,
                ),
            };
            let current = view::resources(name, requirements.as_ref())
                .map_err(|e| PortError::Conflict(format!("{what}: {e}")))?;
            Ok((index, current))
        })
        .collect()
}

/// JSON Pointer escaping of one reference token (RFC 6901).
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// One container of a pod template or pod spec to move from `expect` to
/// `set`, at `index` in its list.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerChange {
    pub index: usize,
    pub patch: ContainerPatch,
}

/// `patch`'s containers at the indexes `containers` found, each moving from
/// the values the template holds (pinned by `test` ops anyway).
pub fn template_changes(
    patch: &ResourcePatch,
    containers: &[(usize, Resources)],
) -> Vec<ContainerChange> {
    patch
        .containers
        .iter()
        .zip(containers)
        .map(|(c, &(index, held))| ContainerChange {
            index,
            patch: ContainerPatch {
                container: c.container.clone(),
                expect: held,
                set: c.set,
            },
        })
        .collect()
}

/// The JSON Patch of a workload: pin its `resourceVersion`; pin and set
/// each template container of `changes`; then write each annotation of
/// `notes` (`None` removes it, when present).
pub fn workload_ops(
    object: &Value,
    workload: &WorkloadRef,
    changes: &[ContainerChange],
    notes: &[(&str, Option<String>)],
) -> Result<Vec<PatchOp>, PortError> {
    let version = object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| PortError::Conflict(format!("{workload} has no resourceVersion")))?;
    let mut out = vec![PatchOp::Test {
        path: "/metadata/resourceVersion".into(),
        value: Value::String(version.to_string()),
    }];
    container_ops(&mut out, object, TEMPLATE_CONTAINERS, changes);

    let mut written = Map::new();
    let mut removed = Vec::new();
    for (key, value) in notes {
        match value {
            Some(v) => {
                written.insert(key.to_string(), Value::String(v.clone()));
            }
            None if annotation(object, key).is_some() => removed.push(key.to_string()),
            None => {}
        }
    }
    match object.pointer("/metadata/annotations") {
        Some(Value::Object(_)) => {
            for (key, value) in written {
                out.push(PatchOp::Add {
                    path: format!("/metadata/annotations/{}", token(&key)),
                    value,
                });
            }
            for key in removed {
                out.push(PatchOp::Remove {
                    path: format!("/metadata/annotations/{}", token(&key)),
                });
            }
        }
        _ if written.is_empty() => {}
        _ => out.push(PatchOp::Add {
            path: "/metadata/annotations".into(),
            value: Value::Object(written),
        }),
    }
    Ok(out)
}

/// The JSON Patch for `pods/{name}/resize`: each container of `changes`
/// pinned (name at its index, whole `resources` as the pod holds them) and
/// set. Not the pod's `resourceVersion`: the kubelet writes the pod's
/// status all the time, and only the values matter here.
pub fn resize_ops(pod: &Value, changes: &[ContainerChange]) -> Vec<PatchOp> {
    let mut out = Vec::new();
    container_ops(&mut out, pod, POD_CONTAINERS, changes);
    out
}

/// The pod-spec changes that move `pod` to `patch`'s `set` values, for the
/// containers not there yet (from whatever the pod holds).
pub fn pod_changes(pod: &Value, patch: &ResourcePatch) -> Result<Vec<ContainerChange>, PortError> {
    let names: Vec<&str> = patch
        .containers
        .iter()
        .map(|c| c.container.as_str())
        .collect();
    let held = containers_at(pod, POD_CONTAINERS, &pod_label(pod), &names)?;
    Ok(patch
        .containers
        .iter()
        .zip(held)
        .filter(|(c, (_, current))| *current != c.set)
        .map(|(c, (index, current))| ContainerChange {
            index,
            patch: ContainerPatch {
                container: c.container.clone(),
                expect: current,
                set: c.set,
            },
        })
        .collect())
}

fn container_ops(out: &mut Vec<PatchOp>, object: &Value, list: &str, changes: &[ContainerChange]) {
    for change in changes {
        let base = format!("{list}/{}", change.index);
        out.push(PatchOp::Test {
            path: format!("{base}/name"),
            value: Value::String(change.patch.container.clone()),
        });
        let resources = object.pointer(&format!("{base}/resources"));
        if let Some(value) = resources {
            out.push(PatchOp::Test {
                path: format!("{base}/resources"),
                value: value.clone(),
            });
        }
        set_ops(out, &format!("{base}/resources"), resources, &change.patch);
    }
}

/// Ops that set the four values of one container, touching nothing else in
/// `resources` (other resource names, `claims`, values that do not change).
fn set_ops(out: &mut Vec<PatchOp>, base: &str, resources: Option<&Value>, c: &ContainerPatch) {
    let sections = [
        (
            "requests",
            [
                (
                    "cpu",
                    c.expect.cpu_request.map(|v| v.to_string()),
                    c.set.cpu_request.map(|v| v.to_string()),
                ),
                (
                    "memory",
                    c.expect.memory_request.map(|v| v.to_string()),
                    c.set.memory_request.map(|v| v.to_string()),
                ),
            ],
        ),
        (
            "limits",
            [
                (
                    "cpu",
                    c.expect.cpu_limit.map(|v| v.to_string()),
                    c.set.cpu_limit.map(|v| v.to_string()),
                ),
                (
                    "memory",
                    c.expect.memory_limit.map(|v| v.to_string()),
                    c.set.memory_limit.map(|v| v.to_string()),
                ),
            ],
        ),
    ];
    let Some(resources) = resources else {
        let mut value = Map::new();
        for (section, values) in &sections {
            let map: Map<String, Value> = values
                .iter()
                .filter_map(|(name, _, to)| Some((name.to_string(), Value::String(to.clone()?))))
                .collect();
            if !map.is_empty() {
                value.insert(section.to_string(), Value::Object(map));
            }
        }
        out.push(PatchOp::Add {
            path: base.to_string(),
            value: Value::Object(value),
        });
        return;
    };
    for (section, values) in sections {
        let held = resources.get(section).and_then(Value::as_object);
        let Some(held) = held else {
            let map: Map<String, Value> = values
                .iter()
                .filter_map(|(name, _, to)| Some((name.to_string(), Value::String(to.clone()?))))
                .collect();
            if !map.is_empty() {
                out.push(PatchOp::Add {
                    path: format!("{base}/{section}"),
                    value: Value::Object(map),
                });
            }
            continue;
        };
        for (name, from, to) in values {
            // The `test` op pinned the held text; an unchanged value keeps it
            // as written (`0.5` stays `0.5`).
            if from == to {
                continue;
            }
            let path = format!("{base}/{section}/{name}");
            match (held.contains_key(name), to) {
                (true, Some(to)) => out.push(PatchOp::Replace {
                    path,
                    value: json!(to),
                }),
                (false, Some(to)) => out.push(PatchOp::Add {
                    path,
                    value: json!(to),
                }),
                (true, None) => out.push(PatchOp::Remove { path }),
                (false, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WorkloadKind;
    use crate::units::{Bytes, MilliCores};

    fn workload() -> WorkloadRef {
        WorkloadRef {
            namespace: "shop".into(),
            kind: WorkloadKind::Deployment,
            name: "web".into(),
        }
    }

    fn object(annotations: Value, containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "42", "annotations": annotations},
            "spec": {"template": {"spec": {"containers": containers}}}
        })
    }

    fn res(
        cpu_req: Option<u64>,
        mem_req: Option<u64>,
        cpu_lim: Option<u64>,
        mem_lim_mib: Option<u64>,
    ) -> Resources {
        Resources {
            cpu_request: cpu_req.map(MilliCores),
            cpu_limit: cpu_lim.map(MilliCores),
            memory_request: mem_req.map(Bytes::mib),
            memory_limit: mem_lim_mib.map(Bytes::mib),
        }
    }

    fn patch(containers: Vec<(&str, Resources, Resources)>) -> ResourcePatch {
        ResourcePatch {
            workload: workload(),
            change_id: "c-2".into(),
            containers: containers
                .into_iter()
                .map(|(name, expect, set)| ContainerPatch {
                    container: name.into(),
                    expect,
                    set,
                })
                .collect(),
        }
    }

    fn ops_json(plan: PatchPlan) -> Value {
        match plan {
            PatchPlan::Patch(ops) => serde_json::to_value(ops).expect("serializable"),
            PatchPlan::AlreadyApplied => json!("already applied"),
        }
    }

    #[test]
    fn both_values_set() {
        let app = json!({"name": "app", "image": "web:1", "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}});
        let obj = object(
            json!({"team": "shop"}),
            json!([json!({"name": "init-like"}), app]),
        );
        let p = patch(vec![(
            "app",
            res(Some(500), Some(1024), None, Some(1024)),
            res(Some(250), Some(512), None, Some(1024)),
        )]);
        let got = ops_json(resource_patch(&obj, &p).expect("patchable"));
        assert_eq!(
            got,
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "app"},
                {"op": "test", "path": "/spec/template/spec/containers/1/resources", "value": {
                    "requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}},
                {"op": "replace", "path": "/spec/template/spec/containers/1/resources/requests/cpu", "value": "250m"},
                {"op": "replace", "path": "/spec/template/spec/containers/1/resources/requests/memory", "value": "512Mi"},
                {"op": "add", "path": "/metadata/annotations/tailor.dev~1change-id", "value": "c-2"},
                {"op": "add", "path": "/metadata/annotations/tailor.dev~1last-known-good",
                 "value": r#"{"app":{"cpuRequestMillicores":500,"memoryRequestBytes":1073741824,"memoryLimitBytes":1073741824}}"#},
            ])
        );
    }

    #[test]
    fn a_limit_removed_and_a_limit_added() {
        let obj = object(
            Value::Null,
            json!([{"name": "app", "resources": {"requests": {"cpu": "0.5"}, "limits": {"cpu": "1"}}}]),
        );
        let p = patch(vec![(
            "app",
            res(Some(500), None, Some(1000), None),
            res(Some(500), None, None, Some(256)),
        )]);
        let got = ops_json(resource_patch(&obj, &p).expect("patchable"));
        assert_eq!(
            got,
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "app"},
                {"op": "test", "path": "/spec/template/spec/containers/0/resources", "value": {
                    "requests": {"cpu": "0.5"}, "limits": {"cpu": "1"}}},
                {"op": "remove", "path": "/spec/template/spec/containers/0/resources/limits/cpu"},
                {"op": "add", "path": "/spec/template/spec/containers/0/resources/limits/memory", "value": "256Mi"},
                {"op": "add", "path": "/metadata/annotations", "value": {
                    "tailor.dev/change-id": "c-2",
                    "tailor.dev/last-known-good": r#"{"app":{"cpuRequestMillicores":500,"cpuLimitMillicores":1000}}"#}},
            ])
        );
    }

    #[test]
    fn a_section_or_resources_added_where_none_was() {
        let obj = object(
            json!({}),
            json!([{"name": "a", "resources": {"requests": {"cpu": "100m"}}}, {"name": "b"}]),
        );
        let p = patch(vec![
            (
                "a",
                res(Some(100), None, None, None),
                res(Some(100), None, None, Some(128)),
            ),
            (
                "b",
                Resources::default(),
                res(Some(50), Some(64), None, None),
            ),
        ]);
        let PatchPlan::Patch(ops) = resource_patch(&obj, &p).expect("patchable") else {
            panic!("expected a patch");
        };
        let ops = serde_json::to_value(&ops[..5]).expect("serializable");
        assert_eq!(
            ops,
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "a"},
                {"op": "test", "path": "/spec/template/spec/containers/0/resources", "value": {"requests": {"cpu": "100m"}}},
                {"op": "add", "path": "/spec/template/spec/containers/0/resources/limits", "value": {"memory": "128Mi"}},
                {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "b"},
            ])
        );
    }

    #[test]
    fn two_containers() {
        let obj = object(
            json!({"tailor.dev/change-id": "c-1"}),
            json!([
                {"name": "app", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}},
                {"name": "proxy", "resources": {"requests": {"cpu": "200m"}, "limits": {"cpu": "400m"}}},
            ]),
        );
        let p = patch(vec![
            (
                "app",
                res(Some(1000), Some(2048), None, None),
                res(Some(750), Some(2048), None, None),
            ),
            (
                "proxy",
                res(Some(200), None, Some(400), None),
                res(Some(150), None, Some(300), None),
            ),
        ]);
        let got = ops_json(resource_patch(&obj, &p).expect("patchable"));
        assert_eq!(
            got,
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "app"},
                {"op": "test", "path": "/spec/template/spec/containers/0/resources", "value": {"requests": {"cpu": "1", "memory": "2Gi"}}},
                {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "750m"},
                {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "proxy"},
                {"op": "test", "path": "/spec/template/spec/containers/1/resources", "value": {"requests": {"cpu": "200m"}, "limits": {"cpu": "400m"}}},
                {"op": "replace", "path": "/spec/template/spec/containers/1/resources/requests/cpu", "value": "150m"},
                {"op": "replace", "path": "/spec/template/spec/containers/1/resources/limits/cpu", "value": "300m"},
                {"op": "add", "path": "/metadata/annotations/tailor.dev~1change-id", "value": "c-2"},
                {"op": "add", "path": "/metadata/annotations/tailor.dev~1last-known-good",
                 "value": r#"{"app":{"cpuRequestMillicores":1000,"memoryRequestBytes":2147483648},"proxy":{"cpuRequestMillicores":200,"cpuLimitMillicores":400}}"#},
            ])
        );
    }

    #[test]
    fn stale_values_or_a_missing_container_conflict() {
        let obj = object(
            json!({}),
            json!([{"name": "app", "resources": {"requests": {"cpu": "300m"}}}]),
        );
        let stale = patch(vec![(
            "app",
            res(Some(500), None, None, None),
            res(Some(250), None, None, None),
        )]);
        assert_eq!(
            resource_patch(&obj, &stale),
            Err(PortError::Conflict(
                "shop/Deployment/web: container app has requests cpu 300m memory -, limits cpu - memory - \
                 where the change expected requests cpu 500m memory -, limits cpu - memory -"
                    .into()
            ))
        );
        let gone = patch(vec![(
            "db",
            Resources::default(),
            res(Some(1), None, None, None),
        )]);
        assert!(
            matches!(resource_patch(&obj, &gone), Err(PortError::Conflict(m)) if m.contains("no longer"))
        );
        let unreadable = object(
            json!({}),
            json!([{"name": "app", "resources": {"requests": {"cpu": "x"}}}]),
        );
        assert!(matches!(
            resource_patch(&unreadable, &stale),
            Err(PortError::Conflict(_))
        ));
    }

    #[test]
    fn a_retried_patch_is_already_applied_and_a_revert_keeps_last_known_good() {
        let obj = object(
            json!({"tailor.dev/change-id": "c-2", "tailor.dev/last-known-good": "{}"}),
            json!([{"name": "app", "resources": {"requests": {"cpu": "250m"}}}]),
        );
        let forward = patch(vec![(
            "app",
            res(Some(500), None, None, None),
            res(Some(250), None, None, None),
        )]);
        assert_eq!(
            resource_patch(&obj, &forward),
            Ok(PatchPlan::AlreadyApplied)
        );

        let revert = patch(vec![(
            "app",
            res(Some(250), None, None, None),
            res(Some(500), None, None, None),
        )]);
        let got = ops_json(resource_patch(&obj, &revert).expect("patchable"));
        let got = got.as_array().expect("ops");
        assert_eq!(got.len(), 5);
        assert_eq!(
            got[4],
            json!({"op": "add", "path": "/metadata/annotations/tailor.dev~1change-id", "value": "c-2"})
        );
    }

    #[test]
    fn last_known_good_is_put_back() {
        let obj = object(
            json!({"tailor.dev/change-id": "c-2",
                   "tailor.dev/last-known-good": r#"{"app":{"cpuRequestMillicores":500,"memoryLimitBytes":268435456},"proxy":{"cpuRequestMillicores":100}}"#}),
            json!([
                {"name": "app", "resources": {"requests": {"cpu": "250m"}}},
                {"name": "proxy", "resources": {"requests": {"cpu": "100m"}}},
            ]),
        );
        let revert = |obj: &Value| {
            let template = |name: &str| template_value(obj, &workload(), name);
            last_known_good_change(obj, &workload(), "revert-1", template)
        };
        let change = revert(&obj).expect("readable").expect("a change");
        let plan = template_patch(&obj, &change, KnownGood::Never).expect("patchable");
        assert_eq!(
            ops_json(plan),
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "app"},
                {"op": "test", "path": "/spec/template/spec/containers/0/resources", "value": {"requests": {"cpu": "250m"}}},
                {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "500m"},
                {"op": "add", "path": "/spec/template/spec/containers/0/resources/limits", "value": {"memory": "256Mi"}},
                {"op": "add", "path": "/metadata/annotations/tailor.dev~1change-id", "value": "revert-1"},
            ])
        );
        let none = object(json!({}), json!([{"name": "app"}]));
        assert!(matches!(revert(&none), Err(PortError::NotFound(_))));
        let done = object(
            json!({"tailor.dev/last-known-good": r#"{"app":{"cpuRequestMillicores":250}}"#}),
            json!([{"name": "app", "resources": {"requests": {"cpu": "250m"}}}]),
        );
        assert_eq!(revert(&done), Ok(None));
    }

    fn pod(resources: Value, memory_policy: Option<&str>) -> Value {
        let mut c = json!({"name": "app", "resources": resources});
        if let Some(p) = memory_policy {
            c["resizePolicy"] = json!([{"resourceName": "memory", "restartPolicy": p}]);
        }
        json!({"metadata": {"name": "web-1"}, "spec": {"containers": [c]}})
    }

    #[test]
    fn which_way_a_change_goes() {
        let burstable =
            json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}});
        let pods = [pod(burstable.clone(), None)];
        let from = res(Some(500), Some(256), None, Some(512));
        let change = |to: Resources| patch(vec![("app", from, to)]);
        let asking = object(
            json!({"tailor.dev/apply": "in-place"}),
            json!([{"name": "app", "resources": burstable}]),
        );
        let kind = WorkloadKind::Deployment;
        let route_of = |object: &Value, version, pods: &[Value], to| {
            route(object, kind, version, pods, &change(to))
        };
        let cpu_down = res(Some(250), Some(256), None, Some(512));
        assert_eq!(
            route_of(&asking, (1, 33), &pods, cpu_down),
            Route::InPlace {
                template_too: false
            }
        );
        let why = |r: Route| match r {
            Route::Template { fallback } => fallback.unwrap_or_default(),
            other => panic!("{other:?}"),
        };
        let plain = object(json!({}), json!([{"name": "app"}]));
        assert_eq!(
            route_of(&plain, (1, 33), &pods, cpu_down),
            Route::Template { fallback: None }
        );
        assert!(why(route_of(&asking, (1, 32), &pods, cpu_down)).contains("Kubernetes 1.32"));
        assert!(why(route_of(&asking, (1, 33), &[], cpu_down)).contains("no running pod"));
        let memory_limit_down = res(Some(500), Some(256), None, Some(400));
        assert!(
            why(route_of(&asking, (1, 33), &pods, memory_limit_down))
                .starts_with("pod web-1: container app: the memory limit goes down")
        );
        let restartable = [pod(
            json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}),
            Some("RestartContainer"),
        )];
        assert_eq!(
            route_of(&asking, (1, 33), &restartable, memory_limit_down),
            Route::InPlace {
                template_too: false
            }
        );
        let no_limit = res(Some(500), Some(256), None, None);
        assert!(
            why(route_of(&asking, (1, 33), &pods, no_limit)).contains("removes the memory limit")
        );
        let guaranteed = res(Some(500), Some(512), Some(500), Some(512));
        assert!(
            why(route_of(&asking, (1, 33), &pods, guaranteed))
                .contains("QoS class Burstable to Guaranteed")
        );

        let mut on_delete = asking.clone();
        on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert_eq!(
            route(
                &on_delete,
                WorkloadKind::StatefulSet,
                (1, 33),
                &pods,
                &change(cpu_down)
            ),
            Route::InPlace { template_too: true }
        );
        let mut fell_back = asking.clone();
        fell_back["metadata"]["annotations"]["tailor.dev/in-place"] =
            json!(r#"{"changeId":"c-2","template":true,"fallback":"pod web-1: infeasible"}"#);
        assert!(
            why(route_of(&fell_back, (1, 33), &pods, cpu_down))
                .contains("already went to the pod template")
        );
    }

    #[test]
    fn resize_ops_pin_each_pods_values() {
        let p = pod(json!({"requests": {"cpu": "0.5", "memory": "256Mi"}}), None);
        let change = patch(vec![(
            "app",
            res(Some(500), Some(256), None, None),
            res(Some(250), Some(256), None, None),
        )]);
        let changes = pod_changes(&p, &change).expect("readable");
        assert_eq!(
            serde_json::to_value(resize_ops(&p, &changes)).expect("serializable"),
            json!([
                {"op": "test", "path": "/spec/containers/0/name", "value": "app"},
                {"op": "test", "path": "/spec/containers/0/resources", "value": {"requests": {"cpu": "0.5", "memory": "256Mi"}}},
                {"op": "replace", "path": "/spec/containers/0/resources/requests/cpu", "value": "250m"},
            ])
        );
        let done = pod(
            json!({"requests": {"cpu": "250m", "memory": "256Mi"}}),
            None,
        );
        assert_eq!(pod_changes(&done, &change), Ok(Vec::new()));
    }

    #[test]
    fn an_in_place_record_reads_back() {
        let record = InPlaceRecord {
            change_id: "c-1".into(),
            containers: [(
                "app".to_string(),
                ResourceValues::from(res(Some(250), None, None, None)),
            )]
            .into(),
            template: false,
            fallback: None,
        };
        let text = record.to_json().expect("encodable");
        assert_eq!(
            text,
            r#"{"changeId":"c-1","containers":{"app":{"cpuRequestMillicores":250}},"template":false}"#
        );
        let obj = object(json!({"tailor.dev/in-place": text}), json!([]));
        let read = InPlaceRecord::of(&obj).expect("record");
        assert_eq!(
            read.pods_value("app"),
            Some(res(Some(250), None, None, None))
        );
        let on_template = InPlaceRecord {
            template: true,
            ..read
        };
        assert_eq!(
            on_template.pods_value("app"),
            None,
            "the template holds them"
        );
        let broken = object(json!({"tailor.dev/in-place": "{"}), json!([]));
        assert_eq!(InPlaceRecord::of(&broken), None);
    }
}
