//! The human commands that act on the cluster without the loop: finding the
//! workloads `tailor revert --all` restores (the restore itself is
//! `cluster::kube::KubeCluster::revert_to_last_known_good`, the same JSON
//! Patch discipline the agent uses) and `tailor approve`.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::cluster::annotations;
use crate::cluster::crd::Recommendation;
use crate::domain::{WorkloadKind, WorkloadRef};

/// Why a revert or an approval failed.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error("{0}: tailor only changes Deployments, StatefulSets and DaemonSets")]
    UnsupportedKind(WorkloadRef),
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

fn api_resource(workload: &WorkloadRef) -> Result<ApiResource, RevertError> {
    Ok(match workload.kind {
        WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
        WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
        _ => return Err(RevertError::UnsupportedKind(workload.clone())),
    })
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
