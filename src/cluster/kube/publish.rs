//! The Recommendation resource as people see it: one per workload, created
//! on first need, its status written by tailor alone (values, savings,
//! the proposal to approve, and the rollout record of the latest change).

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{Call, KubeCluster};
use crate::cluster::crd::{
    self, ContainerStatus, Recommendation, RecommendationSpec, RecommendationStatus,
    ResourceValues, TargetRef,
};
use crate::domain::{Resources, WorkloadRef};
use crate::ports::{PortError, Publication};

impl KubeCluster {
    /// The workload's Recommendation, created empty if it does not exist.
    pub(super) async fn recommendation_object(
        &self,
        w: &WorkloadRef,
    ) -> Result<Recommendation, PortError> {
        let name = crd::object_name(w.kind, &w.name);
        let api = Api::<Recommendation>::namespaced(self.client.clone(), &w.namespace);
        let call = |verb| Call {
            verb,
            resource: "recommendations.tailor.dev",
            namespace: Some(&w.namespace),
        };
        if let Some(rec) = self.call(call("get"), api.get_opt(&name)).await? {
            return Ok(rec);
        }
        let mut rec = Recommendation::new(
            &name,
            RecommendationSpec {
                target_ref: TargetRef {
                    api_version: "apps/v1".into(),
                    kind: w.kind.as_str().into(),
                    name: w.name.clone(),
                },
            },
        );
        rec.metadata.namespace = Some(w.namespace.clone());
        let params = PostParams {
            field_manager: Some(self.options.field_manager.clone()),
            ..PostParams::default()
        };
        match self.call(call("create"), api.create(&params, &rec)).await {
            Ok(created) => Ok(created),
            // Created meanwhile (another replica before it lost the lease).
            Err(PortError::Conflict(_)) => self.call(call("get"), api.get(&name)).await,
            Err(e) => Err(e),
        }
    }

    /// Merge-patches the status of the workload's Recommendation.
    pub(super) async fn patch_recommendation_status(
        &self,
        w: &WorkloadRef,
        body: &Value,
    ) -> Result<(), PortError> {
        let name = crd::object_name(w.kind, &w.name);
        let api = Api::<Recommendation>::namespaced(self.client.clone(), &w.namespace);
        let params = PatchParams {
            field_manager: Some(self.options.field_manager.clone()),
            ..PatchParams::default()
        };
        let call = Call {
            verb: "patch",
            resource: "recommendations.tailor.dev/status",
            namespace: Some(&w.namespace),
        };
        self.call(call, api.patch_status(&name, &params, &Patch::Merge(body)))
            .await
            .map(drop)
    }

    pub(super) async fn publish_recommendation(
        &self,
        publication: &Publication,
    ) -> Result<(), PortError> {
        let existing = self.recommendation_object(&publication.workload).await?;
        let body = publication_patch(
            publication,
            existing.status.as_ref(),
            Timestamp::now().as_second(),
        );
        self.patch_recommendation_status(&publication.workload, &body)
            .await
    }
}

/// `app: cpu 500m, memory 1Gi` (the container name only when there are
/// several), as `kubectl get rec` shows it.
fn summary<'a>(containers: impl Iterator<Item = (&'a str, Resources)>) -> String {
    let parts: Vec<(&str, String)> = containers
        .map(|(name, r)| {
            let cpu = r.cpu_request.map_or("-".to_string(), |v| v.to_string());
            let memory = r.memory_request.map_or("-".to_string(), |v| v.to_string());
            (name, format!("cpu {cpu}, memory {memory}"))
        })
        .collect();
    match parts.as_slice() {
        [(_, only)] => only.clone(),
        many => many
            .iter()
            .map(|(name, values)| format!("{name}: {values}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The status merge patch for a publication. `containers[].previous` is
/// kept from the existing status (a merge patch replaces lists whole);
/// the phase, change id and fingerprint are left to the rollout record
/// unless the publication sets a phase; a phase without a proposal clears
/// a stale fingerprint, so an old approval cannot match.
pub(super) fn publication_patch(
    publication: &Publication,
    existing: Option<&RecommendationStatus>,
    now: i64,
) -> Value {
    let previous = |name: &str| {
        existing
            .and_then(|s| s.containers.iter().find(|c| c.name == name))
            .and_then(|c| c.previous.clone())
    };
    let containers: Vec<ContainerStatus> = publication
        .containers
        .iter()
        .map(|r| ContainerStatus {
            name: r.target.container.clone(),
            current: ResourceValues::from(r.current),
            recommended: ResourceValues::from(r.recommended),
            previous: previous(&r.target.container),
            confidence: r.confidence.score,
            skipped_reason: r.skipped_reason.clone(),
        })
        .collect();
    let names = || {
        publication
            .containers
            .iter()
            .map(|r| r.target.container.as_str())
    };
    let current = summary(names().zip(publication.containers.iter().map(|r| r.current)));
    let recommended = summary(names().zip(publication.containers.iter().map(|r| r.recommended)));
    let mut status = json!({
        "summary": {"current": current, "recommended": recommended},
        "containers": containers,
        "savingsPerMonthUsd": (publication.savings_per_month_usd * 100.0).round() / 100.0,
        "reason": publication.reason,
        "lastUpdated": chrono::DateTime::from_timestamp(now, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    });
    if let Some(phase) = &publication.phase {
        status["phase"] = json!(phase);
        let (id, fingerprint) = match &publication.proposal {
            Some((id, fingerprint)) => (json!(id), json!(fingerprint)),
            None => (Value::Null, Value::Null),
        };
        status["changeId"] = id;
        status["fingerprint"] = fingerprint;
    }
    json!({ "status": status })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContainerRef, WorkloadKind};
    use crate::recommend::{Confidence, ConfidenceLevel, Evidence, Recommendation as Rec};
    use crate::units::{Bytes, MilliCores};

    fn web() -> WorkloadRef {
        WorkloadRef {
            namespace: "shop".into(),
            kind: WorkloadKind::Deployment,
            name: "web".into(),
        }
    }

    fn res(cpu_m: u64, mem_mib: u64) -> Resources {
        Resources {
            cpu_request: Some(MilliCores(cpu_m)),
            cpu_limit: None,
            memory_request: Some(Bytes::mib(mem_mib)),
            memory_limit: Some(Bytes::mib(mem_mib)),
        }
    }

    fn rec(container: &str) -> Rec {
        Rec {
            target: ContainerRef {
                workload: web(),
                container: container.into(),
            },
            current: res(500, 1024),
            recommended: res(250, 512),
            confidence: Confidence {
                score: 0.9,
                level: ConfidenceLevel::High,
            },
            savings_per_month_usd: 12.345,
            evidence: Evidence::default(),
            skipped_reason: None,
        }
    }

    fn publication(phase: Option<&str>, proposal: Option<(&str, &str)>) -> Publication {
        Publication {
            workload: web(),
            phase: phase.map(str::to_string),
            containers: vec![rec("app")],
            savings_per_month_usd: 12.345,
            proposal: proposal.map(|(a, b)| (a.to_string(), b.to_string())),
            reason: None,
        }
    }

    #[test]
    fn a_proposal_carries_what_approval_refers_to() {
        let body = publication_patch(&publication(Some("proposed"), Some(("c1", "fp1"))), None, 0);
        let status = &body["status"];
        assert_eq!(status["phase"], "proposed");
        assert_eq!(status["fingerprint"], "fp1");
        assert_eq!(status["changeId"], "c1");
        assert_eq!(status["summary"]["current"], "cpu 500m, memory 1Gi");
        assert_eq!(status["summary"]["recommended"], "cpu 250m, memory 512Mi");
        assert_eq!(status["savingsPerMonthUsd"], 12.35);
        assert_eq!(
            status["containers"][0]["recommended"]["cpuRequestMillicores"],
            250
        );
    }

    #[test]
    fn observing_clears_a_stale_proposal_and_records_leave_the_phase_alone() {
        let body = publication_patch(&publication(Some("observing"), None), None, 0);
        assert_eq!(body["status"]["phase"], "observing");
        assert!(body["status"]["fingerprint"].is_null());
        assert!(
            body["status"]
                .as_object()
                .expect("object")
                .contains_key("fingerprint")
        );

        let existing = RecommendationStatus {
            containers: vec![ContainerStatus {
                name: "app".into(),
                previous: Some(ResourceValues::from(res(1000, 2048))),
                ..ContainerStatus::default()
            }],
            ..RecommendationStatus::default()
        };
        let body = publication_patch(&publication(None, None), Some(&existing), 0);
        let status = body["status"].as_object().expect("object");
        assert!(!status.contains_key("phase"));
        assert!(!status.contains_key("fingerprint"));
        assert_eq!(
            status["containers"][0]["previous"]["cpuRequestMillicores"],
            1000
        );
    }

    #[test]
    fn several_containers_are_named_in_the_summary() {
        let mut p = publication(None, None);
        p.containers.push(rec("sidecar"));
        let body = publication_patch(&p, None, 0);
        assert_eq!(
            body["status"]["summary"]["current"],
            "app: cpu 500m, memory 1Gi; sidecar: cpu 500m, memory 1Gi"
        );
    }
}
