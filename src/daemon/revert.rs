//! The human commands that act on the cluster without the loop:
//! `tailor revert` (put back `tailor.dev/last-known-good`) and
//! `tailor approve` (approve a proposed change).
//!
//! The revert is a JSON Patch (RFC 6902) whose `test` ops pin each
//! container's name and current `resources` as read, so a concurrent edit
//! makes it fail instead of being clobbered. [`revert_ops`] builds it and is
//! pure; the rest is thin kube-rs I/O.

use std::collections::BTreeMap;

use axum::http::{Request, header};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::cluster::annotations;
use crate::cluster::crd::{Recommendation, ResourceValues};
use crate::domain::{WorkloadKind, WorkloadRef};
use crate::units::{Bytes, MilliCores, Quantity};

/// Why a revert or an approval failed.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error("{0} has no tailor.dev/last-known-good annotation: tailor never changed it")]
    NoLastKnownGood(WorkloadRef),
    #[error(
        "{workload}: tailor.dev/last-known-good is not a JSON map of container values: {reason}"
    )]
    BadAnnotation {
        workload: WorkloadRef,
        reason: String,
    },
    #[error("{workload}: container {container} is no longer in the pod template")]
    ContainerGone {
        workload: WorkloadRef,
        container: String,
    },
    #[error("{0}: tailor only changes Deployments, StatefulSets and DaemonSets")]
    UnsupportedKind(WorkloadRef),
    #[error("{0} changed since it was read (a test op failed); run the command again")]
    Conflict(WorkloadRef),
    #[error("no Recommendation for {0}: tailor has not looked at it yet")]
    NoRecommendation(String),
    #[error("{0} matches several workloads ({1}); name it as NAMESPACE/KIND/NAME")]
    Ambiguous(String, String),
    #[error("{name}: nothing to approve (phase {phase:?}): tailor has no proposal for it")]
    NoProposal { name: String, phase: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
}

/// What a revert did to one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevertOutcome {
    /// Patched: these containers got their last-known-good values back.
    Reverted { containers: Vec<String> },
    /// The workload already has its last-known-good values.
    AlreadyThere,
}

/// Parses `NAMESPACE/KIND/NAME` (kind: `deployment`/`deploy`,
/// `statefulset`/`sts`, `daemonset`/`ds`, any case).
pub fn parse_workload(text: &str) -> Result<WorkloadRef, String> {
    let parts: Vec<&str> = text.split('/').collect();
    let [namespace, kind, name] = parts.as_slice() else {
        return Err(format!(
            "{text:?} is not NAMESPACE/KIND/NAME (e.g. shop/deployment/web)"
        ));
    };
    let kind = parse_kind(kind).ok_or_else(|| {
        format!("{kind:?} is not a kind tailor changes: use deployment, statefulset or daemonset")
    })?;
    if namespace.is_empty() || name.is_empty() {
        return Err(format!("{text:?}: namespace and name must not be empty"));
    }
    Ok(WorkloadRef {
        namespace: namespace.to_string(),
        kind,
        name: name.to_string(),
    })
}

fn parse_kind(text: &str) -> Option<WorkloadKind> {
    Some(match text.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
        "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
        "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
        _ => return None,
    })
}

/// The last-known-good values recorded on `object`.
pub fn last_known_good(
    object: &Value,
    workload: &WorkloadRef,
) -> Result<BTreeMap<String, ResourceValues>, RevertError> {
    let text = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(annotations::LAST_KNOWN_GOOD))
        .and_then(Value::as_str)
        .ok_or_else(|| RevertError::NoLastKnownGood(workload.clone()))?;
    serde_json::from_str(text).map_err(|e| RevertError::BadAnnotation {
        workload: workload.clone(),
        reason: e.to_string(),
    })
}

/// The JSON Patch that gives each container in `known` its values back on
/// `object` (a workload as JSON), or no op when they are already there.
/// Per changed container: `test` its name and its current `resources`, then
/// `add` (replace) `resources` with only cpu and memory changed.
pub fn revert_ops(
    object: &Value,
    workload: &WorkloadRef,
    known: &BTreeMap<String, ResourceValues>,
) -> Result<Vec<Value>, RevertError> {
    let containers = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut ops = Vec::new();
    for (name, values) in known {
        let Some((index, container)) = containers
            .iter()
            .enumerate()
            .find(|(_, c)| c.get("name").and_then(Value::as_str) == Some(name))
        else {
            return Err(RevertError::ContainerGone {
                workload: workload.clone(),
                container: name.clone(),
            });
        };
        let current = container.get("resources");
        let wanted = restored_resources(current, values);
        let empty = Value::Object(Map::new());
        if same_resources(current.unwrap_or(&empty), &wanted) {
            continue;
        }
        let base = format!("/spec/template/spec/containers/{index}");
        ops.push(json!({"op": "test", "path": format!("{base}/name"), "value": name}));
        if let Some(current) = current {
            ops.push(json!({"op": "test", "path": format!("{base}/resources"), "value": current}));
        }
        ops.push(json!({"op": "add", "path": format!("{base}/resources"), "value": wanted}));
    }
    Ok(ops)
}

/// `current` with cpu and memory requests and limits set to `values`
/// (absent values removed); other resources are kept.
fn restored_resources(current: Option<&Value>, values: &ResourceValues) -> Value {
    let mut resources = current
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let cpu = |m: Option<u64>| m.map(|m| MilliCores(m).to_string());
    let memory = |b: Option<u64>| b.map(|b| Bytes(b).to_string());
    for (section, entries) in [
        (
            "requests",
            [
                ("cpu", cpu(values.cpu_request_millicores)),
                ("memory", memory(values.memory_request_bytes)),
            ],
        ),
        (
            "limits",
            [
                ("cpu", cpu(values.cpu_limit_millicores)),
                ("memory", memory(values.memory_limit_bytes)),
            ],
        ),
    ] {
        let mut map = resources
            .get(section)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (key, value) in entries {
            match value {
                Some(text) => {
                    map.insert(key.to_string(), Value::String(text));
                }
                None => {
                    map.remove(key);
                }
            }
        }
        if map.is_empty() {
            resources.remove(section);
        } else {
            resources.insert(section.to_string(), Value::Object(map));
        }
    }
    Value::Object(resources)
}

/// Equal as quantities (`0.5` is `500m`), for cpu and memory in both sections.
fn same_resources(a: &Value, b: &Value) -> bool {
    ["requests", "limits"].iter().all(|section| {
        ["cpu", "memory"].iter().all(|key| {
            let read = |v: &Value| {
                v.get(section)
                    .and_then(|s| s.get(key))
                    .map(|q| match q {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .map(|text| Quantity::parse(&text).map(|q| q.millis_ceil()).ok())
            };
            read(a) == read(b)
        })
    })
}

fn api_resource(workload: &WorkloadRef) -> Result<ApiResource, RevertError> {
    Ok(match workload.kind {
        WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
        WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
        _ => return Err(RevertError::UnsupportedKind(workload.clone())),
    })
}

/// Puts back `workload`'s last-known-good values.
pub async fn revert_workload(
    client: &kube::Client,
    workload: &WorkloadRef,
) -> Result<RevertOutcome, RevertError> {
    let resource = api_resource(workload)?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &workload.namespace, &resource);
    let object = serde_json::to_value(api.get(&workload.name).await?)
        .map_err(|e| RevertError::BadRequest(e.to_string()))?;
    let known = last_known_good(&object, workload)?;
    let ops = revert_ops(&object, workload, &known)?;
    if ops.is_empty() {
        return Ok(RevertOutcome::AlreadyThere);
    }
    let containers = ops
        .iter()
        .filter(|op| {
            op["op"] == "test" && op["path"].as_str().is_some_and(|p| p.ends_with("/name"))
        })
        .filter_map(|op| op["value"].as_str().map(str::to_string))
        .collect();
    let body = serde_json::to_vec(&ops).map_err(|e| RevertError::BadRequest(e.to_string()))?;
    let request = Request::patch(format!(
        "{}/{}?fieldManager=tailor",
        api.resource_url(),
        workload.name
    ))
    .header(header::CONTENT_TYPE, "application/json-patch+json")
    .body(body)
    .map_err(|e| RevertError::BadRequest(e.to_string()))?;
    match client.request_text(request).await {
        Ok(_) => Ok(RevertOutcome::Reverted { containers }),
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 422 => {
            Err(RevertError::Conflict(workload.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every Deployment, StatefulSet and DaemonSet with a last-known-good
/// annotation, in every namespace.
pub async fn workloads_with_last_known_good(
    client: &kube::Client,
) -> Result<Vec<WorkloadRef>, RevertError> {
    let mut found = Vec::new();
    for kind in [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ] {
        let probe = WorkloadRef {
            namespace: String::new(),
            kind,
            name: String::new(),
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(&probe)?);
        for object in api.list_metadata(&ListParams::default()).await? {
            let has = object
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(annotations::LAST_KNOWN_GOOD));
            if let (true, Some(namespace), Some(name)) =
                (has, object.metadata.namespace, object.metadata.name)
            {
                found.push(WorkloadRef {
                    namespace,
                    kind,
                    name,
                });
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Picks the Recommendation `NAMESPACE/WORKLOAD` (or `NAMESPACE/KIND/NAME`)
/// names among `candidates` (namespace, object name, target kind, target name).
pub fn pick_recommendation(
    target: &str,
    candidates: &[(String, String, String)],
) -> Result<String, RevertError> {
    let parts: Vec<&str> = target.split('/').collect();
    let (kind, name) = match parts.as_slice() {
        [_, name] => (None, *name),
        [_, kind, name] => (
            Some(parse_kind(kind).ok_or_else(|| {
                RevertError::BadRequest(format!(
                    "{kind:?} is not deployment, statefulset or daemonset"
                ))
            })?),
            *name,
        ),
        _ => {
            return Err(RevertError::BadRequest(format!(
                "{target:?} is not NAMESPACE/WORKLOAD or NAMESPACE/KIND/NAME"
            )));
        }
    };
    let matching: Vec<&(String, String, String)> = candidates
        .iter()
        .filter(|(_, k, n)| {
            n == name && kind.is_none_or(|kind| k.eq_ignore_ascii_case(kind.as_str()))
        })
        .collect();
    match matching.as_slice() {
        [] => Err(RevertError::NoRecommendation(target.to_string())),
        [(object, _, _)] => Ok(object.clone()),
        many => Err(RevertError::Ambiguous(
            target.to_string(),
            many.iter()
                .map(|(_, k, n)| format!("{k}/{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// Approves the change proposed for `target` (`NAMESPACE/WORKLOAD` or
/// `NAMESPACE/KIND/NAME`): sets `tailor.dev/approved=<status.fingerprint>`
/// on its Recommendation. Returns the Recommendation's name and the
/// fingerprint approved.
pub async fn approve(client: &kube::Client, target: &str) -> Result<(String, String), RevertError> {
    let namespace = target
        .split('/')
        .next()
        .filter(|n| !n.is_empty() && target.contains('/'))
        .ok_or_else(|| RevertError::BadRequest(format!("{target:?} is not NAMESPACE/WORKLOAD")))?;
    let api: Api<Recommendation> = Api::namespaced(client.clone(), namespace);
    let all = api.list(&ListParams::default()).await?;
    let candidates: Vec<(String, String, String)> = all
        .items
        .iter()
        .filter_map(|r| {
            Some((
                r.metadata.name.clone()?,
                r.spec.target_ref.kind.clone(),
                r.spec.target_ref.name.clone(),
            ))
        })
        .collect();
    let object = pick_recommendation(target, &candidates)?;
    let found = all
        .items
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(object.as_str()));
    let status = found.and_then(|r| r.status.clone()).unwrap_or_default();
    let Some(fingerprint) = status.fingerprint.filter(|f| !f.is_empty()) else {
        return Err(RevertError::NoProposal {
            name: format!("{namespace}/{object}"),
            phase: status.phase,
        });
    };
    let patch = json!({"metadata": {"annotations": {annotations::APPROVED: fingerprint}}});
    api.patch(&object, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok((format!("{namespace}/{object}"), fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> WorkloadRef {
        WorkloadRef {
            namespace: "shop".into(),
            kind: WorkloadKind::Deployment,
            name: "web".into(),
        }
    }

    fn object(resources: Option<Value>, annotation: Option<&str>) -> Value {
        let mut container = json!({"name": "app", "image": "x"});
        if let Some(r) = resources {
            container["resources"] = r;
        }
        let mut o = json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": {}},
            "spec": {"template": {"spec": {"containers": [{"name": "sidecar"}, container]}}}
        });
        if let Some(a) = annotation {
            o["metadata"]["annotations"][annotations::LAST_KNOWN_GOOD] = json!(a);
        }
        o
    }

    fn values(cpu_req: Option<u64>, mem_lim: Option<u64>) -> BTreeMap<String, ResourceValues> {
        BTreeMap::from([(
            "app".to_string(),
            ResourceValues {
                cpu_request_millicores: cpu_req,
                cpu_limit_millicores: None,
                memory_request_bytes: None,
                memory_limit_bytes: mem_lim,
            },
        )])
    }

    type Case = (
        &'static str,
        Option<Value>,
        BTreeMap<String, ResourceValues>,
        Vec<Value>,
    );

    #[test]
    fn revert_patches_table() {
        let gi = 1 << 30;
        // (case, current resources, last known good, expected ops)
        let cases: Vec<Case> = vec![
            (
                "changed values: test name and resources, then replace",
                Some(json!({"requests": {"cpu": "250m"}, "limits": {"memory": "512Mi"}})),
                values(Some(500), Some(gi)),
                vec![
                    json!({"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "app"}),
                    json!({"op": "test", "path": "/spec/template/spec/containers/1/resources",
                           "value": {"requests": {"cpu": "250m"}, "limits": {"memory": "512Mi"}}}),
                    json!({"op": "add", "path": "/spec/template/spec/containers/1/resources",
                           "value": {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}}),
                ],
            ),
            (
                "already the same quantities written differently: nothing",
                Some(json!({"requests": {"cpu": "0.5"}, "limits": {"memory": "1073741824"}})),
                values(Some(500), Some(gi)),
                vec![],
            ),
            (
                "a value unset before is removed, other resources kept",
                Some(
                    json!({"requests": {"cpu": "250m", "ephemeral-storage": "1Gi"}, "limits": {"memory": "1Gi"}}),
                ),
                values(None, Some(gi)),
                vec![
                    json!({"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "app"}),
                    json!({"op": "test", "path": "/spec/template/spec/containers/1/resources",
                           "value": {"requests": {"cpu": "250m", "ephemeral-storage": "1Gi"}, "limits": {"memory": "1Gi"}}}),
                    json!({"op": "add", "path": "/spec/template/spec/containers/1/resources",
                           "value": {"requests": {"ephemeral-storage": "1Gi"}, "limits": {"memory": "1Gi"}}}),
                ],
            ),
            (
                "no resources now: only the name can be pinned",
                None,
                values(Some(1500), None),
                vec![
                    json!({"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "app"}),
                    json!({"op": "add", "path": "/spec/template/spec/containers/1/resources",
                           "value": {"requests": {"cpu": "1500m"}}}),
                ],
            ),
        ];
        for (case, current, known, expected) in cases {
            let ops = revert_ops(&object(current, None), &web(), &known);
            assert_eq!(ops.ok(), Some(expected), "{case}");
        }
    }

    #[test]
    fn a_container_gone_is_an_error() {
        let known = BTreeMap::from([("gone".to_string(), ResourceValues::default())]);
        assert!(matches!(
            revert_ops(&object(None, None), &web(), &known),
            Err(RevertError::ContainerGone { .. })
        ));
    }

    #[test]
    fn the_annotation_is_read_or_explained() {
        let o = object(None, Some(r#"{"app":{"cpuRequestMillicores":500}}"#));
        let known = last_known_good(&o, &web()).expect("parses");
        assert_eq!(known["app"].cpu_request_millicores, Some(500));
        assert!(matches!(
            last_known_good(&object(None, None), &web()),
            Err(RevertError::NoLastKnownGood(_))
        ));
        assert!(matches!(
            last_known_good(&object(None, Some("nope")), &web()),
            Err(RevertError::BadAnnotation { .. })
        ));
    }

    #[test]
    fn workload_names_parse() {
        assert_eq!(parse_workload("shop/deploy/web"), Ok(web()));
        assert_eq!(
            parse_workload("db/StatefulSet/pg").map(|w| w.kind),
            Ok(WorkloadKind::StatefulSet)
        );
        for bad in ["shop/web", "shop/job/x", "/deployment/web", "a/b/c/d"] {
            assert!(parse_workload(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn recommendations_are_picked_by_workload() {
        let c = |o: &str, k: &str, n: &str| (o.to_string(), k.to_string(), n.to_string());
        let all = vec![
            c("deployment-web", "Deployment", "web"),
            c("statefulset-db", "StatefulSet", "db"),
            c("daemonset-db", "DaemonSet", "db"),
        ];
        assert_eq!(
            pick_recommendation("shop/web", &all).ok().as_deref(),
            Some("deployment-web")
        );
        assert_eq!(
            pick_recommendation("shop/sts/db", &all).ok().as_deref(),
            Some("statefulset-db")
        );
        assert!(matches!(
            pick_recommendation("shop/db", &all),
            Err(RevertError::Ambiguous(..))
        ));
        assert!(matches!(
            pick_recommendation("shop/api", &all),
            Err(RevertError::NoRecommendation(_))
        ));
        assert!(matches!(
            pick_recommendation("shop", &all),
            Err(RevertError::BadRequest(_))
        ));
    }
}
