//! How tailor writes a change: a JSON Patch (RFC 6902) built from the
//! workload exactly as the server returned it. `test` ops pin the
//! `resourceVersion`, each container's name at its index and its whole
//! `resources` value, so a concurrent edit makes the API server reject the
//! patch (422) instead of tailor clobbering it (DESIGN §1).
//!
//! Pure: the object comes in as JSON, the ops go out as values.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::annotations;
use super::crd::ResourceValues;
use super::view;
use crate::domain::{Resources, WorkloadRef};
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

/// The JSON Patch that moves `patch.containers` from `expect` to `set` on
/// `object` (a Deployment, StatefulSet or DaemonSet as JSON).
///
/// A container whose current values are not `expect`, or a container no
/// longer in the template, is a [`PortError::Conflict`]. The values being
/// replaced are recorded as `tailor.dev/last-known-good`, except when the
/// patch carries the change id already on the workload: that is the revert
/// of tailor's own change, and the annotation already holds what it restores.
pub fn resource_patch(object: &Value, patch: &ResourcePatch) -> Result<PatchPlan, PortError> {
    let current_id = annotation(object, annotations::CHANGE_ID);
    let ours = current_id == Some(patch.change_id.as_str());
    let containers = current_containers(object, &patch.workload, patch)?;
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
            return Err(PortError::Conflict(format!(
                "{}: container {} has {} where the change expected {}",
                patch.workload,
                c.container,
                describe(current),
                describe(&c.expect)
            )));
        }
    }
    ops(object, patch, &containers, !ours).map(PatchPlan::Patch)
}

/// The patch that puts back `tailor.dev/last-known-good` (for
/// `tailor revert`), with the same `test` discipline. It leaves the
/// annotation as it is, so running it twice is harmless. `Ok(None)`: the
/// workload already has those values.
pub fn last_known_good_patch(
    object: &Value,
    workload: &WorkloadRef,
    change_id: &str,
) -> Result<Option<Vec<PatchOp>>, PortError> {
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
    let mut patch = ResourcePatch {
        workload: workload.clone(),
        change_id: change_id.to_string(),
        containers: Vec::new(),
    };
    for (name, values) in known {
        let probe = ResourcePatch {
            containers: vec![ContainerPatch {
                container: name.clone(),
                expect: Resources::default(),
                set: Resources::default(),
            }],
            ..patch.clone()
        };
        let current = current_containers(object, workload, &probe)?[0].1;
        let set = Resources::from(values);
        if current != set {
            patch.containers.push(ContainerPatch {
                container: name,
                expect: current,
                set,
            });
        }
    }
    if patch.containers.is_empty() {
        return Ok(None);
    }
    let containers = current_containers(object, workload, &patch)?;
    ops(object, &patch, &containers, false).map(Some)
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
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

/// Each patched container's index in the template and current values.
fn current_containers(
    object: &Value,
    workload: &WorkloadRef,
    patch: &ResourcePatch,
) -> Result<Vec<(usize, Resources)>, PortError> {
    let list = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .ok_or_else(|| PortError::Conflict(format!("{workload} has no pod template containers")))?;
    patch
        .containers
        .iter()
        .map(|c| {
            let index = list
                .iter()
                .position(|x| x.get("name").and_then(Value::as_str) == Some(&c.container))
                .ok_or_else(|| {
                    PortError::Conflict(format!(
                        "{workload}: container {} is no longer in the pod template",
                        c.container
                    ))
                })?;
            let requirements = match list[index].get("resources") {
                None => None,
                Some(v) => Some(
                    serde_json::from_value::<ResourceRequirements>(v.clone()).map_err(|e| {
                        PortError::Conflict(format!(
                            "{workload}: container {} has unreadable resources: {e}",
                            c.container
                        ))
                    })?,
                ),
            };
            let current = view::resources(&c.container, requirements.as_ref())
                .map_err(|e| PortError::Conflict(format!("{workload}: {e}")))?;
            Ok((index, current))
        })
        .collect()
}

/// JSON Pointer escaping of one reference token (RFC 6901).
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn ops(
    object: &Value,
    patch: &ResourcePatch,
    containers: &[(usize, Resources)],
    record_known_good: bool,
) -> Result<Vec<PatchOp>, PortError> {
    let version = object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| PortError::Conflict(format!("{} has no resourceVersion", patch.workload)))?;
    let mut out = vec![PatchOp::Test {
        path: "/metadata/resourceVersion".into(),
        value: Value::String(version.to_string()),
    }];
    for (c, &(index, _)) in patch.containers.iter().zip(containers) {
        let base = format!("/spec/template/spec/containers/{index}");
        out.push(PatchOp::Test {
            path: format!("{base}/name"),
            value: Value::String(c.container.clone()),
        });
        let resources = object.pointer(&format!("{base}/resources"));
        if let Some(value) = resources {
            out.push(PatchOp::Test {
                path: format!("{base}/resources"),
                value: value.clone(),
            });
        }
        set_ops(&mut out, &format!("{base}/resources"), resources, c);
    }

    let mut written = Map::new();
    written.insert(
        annotations::CHANGE_ID.to_string(),
        Value::String(patch.change_id.clone()),
    );
    if record_known_good {
        let known: BTreeMap<&str, ResourceValues> = patch
            .containers
            .iter()
            .map(|c| (c.container.as_str(), ResourceValues::from(c.expect)))
            .collect();
        let text = serde_json::to_string(&known)
            .map_err(|e| PortError::Conflict(format!("last-known-good not encodable: {e}")))?;
        written.insert(
            annotations::LAST_KNOWN_GOOD.to_string(),
            Value::String(text),
        );
    }
    match object.pointer("/metadata/annotations") {
        Some(Value::Object(_)) => {
            for (key, value) in written {
                out.push(PatchOp::Add {
                    path: format!("/metadata/annotations/{}", token(&key)),
                    value,
                });
            }
        }
        _ => out.push(PatchOp::Add {
            path: "/metadata/annotations".into(),
            value: Value::Object(written),
        }),
    }
    Ok(out)
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
        let ops = last_known_good_patch(&obj, &workload(), "revert-1")
            .expect("patchable")
            .expect("a change");
        assert_eq!(
            serde_json::to_value(ops).expect("serializable"),
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
        assert!(matches!(
            last_known_good_patch(&none, &workload(), "r"),
            Err(PortError::NotFound(_))
        ));
        let done = object(
            json!({"tailor.dev/last-known-good": r#"{"app":{"cpuRequestMillicores":250}}"#}),
            json!([{"name": "app", "resources": {"requests": {"cpu": "250m"}}}]),
        );
        assert_eq!(last_known_good_patch(&done, &workload(), "r"), Ok(None));
    }
}
