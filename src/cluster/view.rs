//! What the planner sees of a workload, read from its Kubernetes object: the
//! pure mapping from k8s-openapi types to [`WorkloadView`],
//! [`RolloutStatus`] and [`HpaScaling`].
//!
//! No I/O: [`super::kube::KubeCluster`] lists the objects and calls these.
//! An unparsable quantity is a [`ViewError`] for that workload, never a guess.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricTarget};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::{annotations, gitops};
use crate::domain::{Resources, WorkloadKind, WorkloadRef};
use crate::plan::{Mode, WorkloadView};
use crate::ports::RolloutStatus;
use crate::units::{Bytes, MilliCores, QuantityError};

/// Why a workload could not be read; the workload is skipped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ViewError {
    #[error("container {container}: {field} {text:?} is not a valid quantity: {source}")]
    Quantity {
        container: String,
        /// `requests.cpu`, `limits.memory`, …
        field: &'static str,
        text: String,
        source: QuantityError,
    },
    #[error("annotation {key}={value:?} is not one of observe, approve, auto")]
    Mode { key: &'static str, value: String },
    #[error("the object has no {0}")]
    Missing(&'static str),
}

/// What else the adapter knows about a workload: its namespace's kill
/// switch, and the approval on its Recommendation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    pub namespace_paused: bool,
    pub approved_change: Option<String>,
}

/// Which resources an HPA scales its target on by `Utilization`: changing
/// their requests moves the HPA's scale point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HpaScaling {
    /// The HPA's name.
    pub hpa: String,
    pub cpu_utilization: bool,
    pub memory_utilization: bool,
}

/// Replica counts read from a workload's spec and status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    desired: u32,
    updated: u32,
    ready: u32,
    available: u32,
    generation: i64,
    observed_generation: i64,
    failed: bool,
}

impl Counts {
    fn rolling_out(&self) -> bool {
        self.observed_generation < self.generation || self.updated < self.desired
    }

    fn rollout(&self) -> RolloutStatus {
        // Status of an older generation says nothing about the new template.
        let current = self.observed_generation >= self.generation;
        RolloutStatus {
            replicas: self.desired,
            updated: if current { self.updated } else { 0 },
            available: self.available,
            failed: self.failed,
        }
    }
}

fn count(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

fn deployment_counts(d: &Deployment) -> Counts {
    let status = d.status.as_ref();
    let failed = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
        });
    Counts {
        desired: count(Some(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))),
        updated: count(status.and_then(|s| s.updated_replicas)),
        ready: count(status.and_then(|s| s.ready_replicas)),
        available: count(status.and_then(|s| s.available_replicas)),
        generation: d.metadata.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
        failed,
    }
}

fn statefulset_counts(s: &StatefulSet) -> Counts {
    let status = s.status.as_ref();
    Counts {
        desired: count(Some(s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))),
        updated: count(status.and_then(|s| s.updated_replicas)),
        ready: count(status.and_then(|s| s.ready_replicas)),
        available: count(status.and_then(|s| s.available_replicas)),
        generation: s.metadata.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
        failed: false,
    }
}

fn daemonset_counts(d: &DaemonSet) -> Counts {
    let status = d.status.as_ref();
    Counts {
        desired: count(status.map(|s| s.desired_number_scheduled)),
        updated: count(status.and_then(|s| s.updated_number_scheduled)),
        ready: count(status.map(|s| s.number_ready)),
        available: count(status.and_then(|s| s.number_available)),
        generation: d.metadata.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
        failed: false,
    }
}

/// A Deployment as the planner sees it.
pub fn deployment_view(d: &Deployment, context: &Context) -> Result<WorkloadView, ViewError> {
    let template = d.spec.as_ref().map(|s| &s.template);
    view(
        WorkloadKind::Deployment,
        &d.metadata,
        template,
        deployment_counts(d),
        context,
    )
}

/// A StatefulSet as the planner sees it.
pub fn statefulset_view(s: &StatefulSet, context: &Context) -> Result<WorkloadView, ViewError> {
    let template = s.spec.as_ref().map(|s| &s.template);
    view(
        WorkloadKind::StatefulSet,
        &s.metadata,
        template,
        statefulset_counts(s),
        context,
    )
}

/// A DaemonSet as the planner sees it: its replicas are the pods scheduled.
pub fn daemonset_view(d: &DaemonSet, context: &Context) -> Result<WorkloadView, ViewError> {
    let template = d.spec.as_ref().map(|s| &s.template);
    view(
        WorkloadKind::DaemonSet,
        &d.metadata,
        template,
        daemonset_counts(d),
        context,
    )
}

pub fn deployment_rollout(d: &Deployment) -> RolloutStatus {
    deployment_counts(d).rollout()
}

pub fn statefulset_rollout(s: &StatefulSet) -> RolloutStatus {
    statefulset_counts(s).rollout()
}

pub fn daemonset_rollout(d: &DaemonSet) -> RolloutStatus {
    daemonset_counts(d).rollout()
}

/// The workload an object's metadata names.
pub fn workload_ref(kind: WorkloadKind, meta: &ObjectMeta) -> Result<WorkloadRef, ViewError> {
    Ok(WorkloadRef {
        namespace: meta
            .namespace
            .clone()
            .ok_or(ViewError::Missing("namespace"))?,
        kind,
        name: meta.name.clone().ok_or(ViewError::Missing("name"))?,
    })
}

fn view(
    kind: WorkloadKind,
    meta: &ObjectMeta,
    template: Option<&PodTemplateSpec>,
    counts: Counts,
    context: &Context,
) -> Result<WorkloadView, ViewError> {
    let workload = workload_ref(kind, meta)?;
    let empty = BTreeMap::new();
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let mode = match annotations.get(annotations::MODE) {
        None => None,
        Some(value) => Some(parse_mode(value).ok_or_else(|| ViewError::Mode {
            key: annotations::MODE,
            value: value.clone(),
        })?),
    };
    let containers = template
        .and_then(|t| t.spec.as_ref())
        .map(|spec| {
            spec.containers
                .iter()
                .map(|c| Ok((c.name.clone(), resources(&c.name, c.resources.as_ref())?)))
                .collect::<Result<Vec<_>, ViewError>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(WorkloadView {
        workload,
        mode,
        paused: context.namespace_paused
            || is_true(annotations.get(annotations::PAUSED))
            || is_true(annotations.get(annotations::OPT_OUT)),
        replicas: counts.desired,
        ready: counts.ready >= counts.desired,
        rolling_out: counts.rolling_out(),
        gitops_managed: gitops_managed(annotations, labels),
        change_in_flight: false,
        approved_change: context.approved_change.clone(),
        containers,
        last_confirmed_at: None,
        held_until: None,
        recent_oom_bumps: Vec::new(),
        last_throttling_bump: None,
    })
}

fn parse_mode(value: &str) -> Option<Mode> {
    match value.trim() {
        "observe" => Some(Mode::Observe),
        "approve" => Some(Mode::Approve),
        "auto" => Some(Mode::Auto),
        _ => None,
    }
}

/// A kill switch reads `true` in any case; anything else is off.
pub fn is_true(value: Option<&String>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Whether a GitOps controller tracks the object (Argo CD annotation or
/// label, Flux labels): it would undo a patch, so tailor leaves it alone.
pub fn gitops_managed(
    annotations: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    annotations.contains_key(gitops::ARGOCD_TRACKING_ID)
        || labels.contains_key(gitops::ARGOCD_INSTANCE_LABEL)
        || labels.contains_key(gitops::FLUX_KUSTOMIZE_NAME)
        || labels.contains_key(gitops::FLUX_HELM_NAME)
}

/// A container's CPU and memory requests and limits, parsed exactly.
pub fn resources(
    container: &str,
    requirements: Option<&ResourceRequirements>,
) -> Result<Resources, ViewError> {
    let Some(r) = requirements else {
        return Ok(Resources::default());
    };
    let get = |map: &Option<BTreeMap<String, Quantity>>, name: &str| {
        map.as_ref().and_then(|m| m.get(name)).map(|q| q.0.clone())
    };
    let err = |field: &'static str, text: &str, source: QuantityError| ViewError::Quantity {
        container: container.to_string(),
        field,
        text: text.to_string(),
        source,
    };
    let cpu = |field: &'static str, text: Option<String>| {
        text.map(|t| t.parse::<MilliCores>().map_err(|e| err(field, &t, e)))
            .transpose()
    };
    let memory = |field: &'static str, text: Option<String>| {
        text.map(|t| t.parse::<Bytes>().map_err(|e| err(field, &t, e)))
            .transpose()
    };
    Ok(Resources {
        cpu_request: cpu("requests.cpu", get(&r.requests, "cpu"))?,
        cpu_limit: cpu("limits.cpu", get(&r.limits, "cpu"))?,
        memory_request: memory("requests.memory", get(&r.requests, "memory"))?,
        memory_limit: memory("limits.memory", get(&r.limits, "memory"))?,
    })
}

/// The workload an HPA scales and on which resources by `Utilization`;
/// `None` for targets tailor does not size (anything but apps/v1
/// Deployments and StatefulSets) or an HPA without a namespace.
pub fn hpa_scaling(hpa: &HorizontalPodAutoscaler) -> Option<(WorkloadRef, HpaScaling)> {
    let spec = hpa.spec.as_ref()?;
    let target = &spec.scale_target_ref;
    let group_ok = target.api_version.as_deref().is_none_or(|v| v == "apps/v1");
    let kind = match target.kind.as_str() {
        "Deployment" => WorkloadKind::Deployment,
        "StatefulSet" => WorkloadKind::StatefulSet,
        _ => return None,
    };
    if !group_ok {
        return None;
    }
    let workload = WorkloadRef {
        namespace: hpa.metadata.namespace.clone()?,
        kind,
        name: target.name.clone(),
    };
    let mut scaling = HpaScaling {
        hpa: hpa.metadata.name.clone().unwrap_or_default(),
        ..HpaScaling::default()
    };
    let utilization = |t: &MetricTarget| t.type_ == "Utilization";
    for metric in spec.metrics.iter().flatten() {
        let on = match (&metric.resource, &metric.container_resource) {
            (Some(r), _) if utilization(&r.target) => Some(r.name.as_str()),
            (_, Some(r)) if utilization(&r.target) => Some(r.name.as_str()),
            _ => None,
        };
        match on {
            Some("cpu") => scaling.cpu_utilization = true,
            Some("memory") => scaling.memory_utilization = true,
            _ => {}
        }
    }
    // autoscaling/v2 defaults to 80 % CPU utilization when no metric is set.
    if spec.metrics.as_ref().is_none_or(|m| m.is_empty()) {
        scaling.cpu_utilization = true;
    }
    Some((workload, scaling))
}

/// A pod of an in-place-managed workload, as far as a resize is concerned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodState {
    pub name: String,
    /// `spec.containers[].resources`: what the pod asks for.
    pub desired: Vec<(String, Resources)>,
    /// `status.containerStatuses[].resources`: what it runs with (the
    /// desired values when the kubelet has not reported any).
    pub actual: Vec<(String, Resources)>,
    /// `PodResizePending`: reason (`Deferred`, `Infeasible`), message, and
    /// since when (unix seconds).
    pub pending: Option<ResizePending>,
    /// `PodResizeInProgress` is set.
    pub in_progress: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResizePending {
    pub reason: String,
    pub message: String,
    pub since: Option<i64>,
}

impl PodState {
    /// Running with what it asks for, no resize pending or in progress.
    pub fn settled(&self) -> bool {
        self.pending.is_none() && !self.in_progress && self.desired == self.actual
    }

    fn desired(&self, container: &str) -> Option<Resources> {
        self.desired
            .iter()
            .find(|(n, _)| n == container)
            .map(|(_, r)| *r)
    }
}

/// A pod's resize state; a quantity that does not parse is an error, as for
/// workloads.
pub fn pod_state(pod: &Pod) -> Result<PodState, ViewError> {
    let desired = pod
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| Ok((c.name.clone(), resources(&c.name, c.resources.as_ref())?)))
                .collect::<Result<Vec<_>, ViewError>>()
        })
        .transpose()?
        .unwrap_or_default();
    let status = pod.status.as_ref();
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    let actual = desired
        .iter()
        .map(|(name, wanted)| {
            let reported = statuses
                .and_then(|ss| ss.iter().find(|s| &s.name == name))
                .and_then(|s| s.resources.as_ref());
            match reported {
                Some(r) => Ok((name.clone(), resources(name, Some(r))?)),
                None => Ok((name.clone(), *wanted)),
            }
        })
        .collect::<Result<Vec<_>, ViewError>>()?;
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let pending = conditions
        .iter()
        .find(|c| c.type_ == "PodResizePending" && c.status == "True")
        .map(|c| ResizePending {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
            since: c.last_transition_time.as_ref().map(|t| t.0.as_second()),
        });
    let in_progress = conditions
        .iter()
        .any(|c| c.type_ == "PodResizeInProgress" && c.status == "True");
    Ok(PodState {
        name: pod.metadata.name.clone().unwrap_or_default(),
        desired,
        actual,
        pending,
        in_progress,
    })
}

/// The current values of an in-place-managed workload, read from its
/// running pods: per container, the values tailor resized the pods to
/// (`in_place`) when some pod has them, else the values every pod shares,
/// else (pods disagree for another reason) the highest of each value, and
/// with no pod at all, `in_place` or the template.
pub fn in_place_current(
    template: &[(String, Resources)],
    in_place: &dyn Fn(&str) -> Option<Resources>,
    pods: &[PodState],
) -> Vec<(String, Resources)> {
    template
        .iter()
        .map(|(name, template_value)| {
            let values: Vec<Resources> = pods.iter().filter_map(|p| p.desired(name)).collect();
            let recorded = in_place(name);
            let current = match recorded {
                Some(r) if values.contains(&r) => r,
                _ if values.is_empty() => recorded.unwrap_or(*template_value),
                _ if values.iter().all(|v| *v == values[0]) => values[0],
                _ => values.iter().fold(Resources::default(), |a, b| Resources {
                    cpu_request: a.cpu_request.max(b.cpu_request),
                    cpu_limit: a.cpu_limit.max(b.cpu_limit),
                    memory_request: a.memory_request.max(b.memory_request),
                    memory_limit: a.memory_limit.max(b.memory_limit),
                }),
            };
            (name.clone(), current)
        })
        .collect()
}

/// Pods that ask for and run with `target` for every container it names,
/// with no resize pending or in progress.
pub fn pods_at(target: &[(String, Resources)], pods: &[PodState]) -> u32 {
    let at = |p: &&PodState| {
        p.settled()
            && target
                .iter()
                .all(|(name, value)| p.desired(name).is_none_or(|d| d == *value))
    };
    u32::try_from(pods.iter().filter(at).count()).unwrap_or(u32::MAX)
}

/// A label selector as the `labelSelector` query parameter writes it.
pub fn selector_text(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "DoesNotExist" => format!("!{}", e.key),
            _ => e.key.clone(),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetStatus, DeploymentCondition, DeploymentSpec, DeploymentStatus,
        StatefulSetSpec, StatefulSetStatus,
    };
    use k8s_openapi::api::autoscaling::v2::{
        CrossVersionObjectReference, HorizontalPodAutoscalerSpec, MetricSpec, ResourceMetricSource,
    };
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;

    fn quantities(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect(),
        )
    }

    fn container(name: &str, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: quantities(requests),
                limits: quantities(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn meta(annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> ObjectMeta {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            generation: Some(3),
            annotations: map(annotations),
            labels: map(labels),
            ..Default::default()
        }
    }

    fn template(containers: Vec<Container>) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers,
                ..Default::default()
            }),
        }
    }

    fn deployment(
        annotations: &[(&str, &str)],
        labels: &[(&str, &str)],
        replicas: i32,
        status: DeploymentStatus,
    ) -> Deployment {
        Deployment {
            metadata: meta(annotations, labels),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector::default(),
                template: template(vec![
                    container(
                        "app",
                        &[("cpu", "250m"), ("memory", "512Mi")],
                        &[("memory", "1Gi")],
                    ),
                    container("sidecar", &[("cpu", "0.1")], &[]),
                ]),
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    fn settled(replicas: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(3),
            replicas: Some(replicas),
            updated_replicas: Some(replicas),
            ready_replicas: Some(replicas),
            available_replicas: Some(replicas),
            ..Default::default()
        }
    }

    #[test]
    fn a_settled_deployment_maps_every_field() {
        let d = deployment(&[("tailor.dev/mode", "auto")], &[], 3, settled(3));
        let context = Context {
            namespace_paused: false,
            approved_change: Some("fp-1".into()),
        };
        let view = deployment_view(&d, &context).expect("valid");
        assert_eq!(view.workload.to_string(), "shop/Deployment/web");
        assert_eq!(view.mode, Some(Mode::Auto));
        assert!(!view.paused && view.ready && !view.rolling_out && !view.gitops_managed);
        assert_eq!(view.replicas, 3);
        assert_eq!(view.approved_change.as_deref(), Some("fp-1"));
        assert_eq!(
            view.containers,
            vec![
                (
                    "app".to_string(),
                    Resources {
                        cpu_request: Some(MilliCores(250)),
                        cpu_limit: None,
                        memory_request: Some(Bytes::mib(512)),
                        memory_limit: Some(Bytes::gib(1)),
                    }
                ),
                (
                    "sidecar".to_string(),
                    Resources {
                        cpu_request: Some(MilliCores(100)),
                        ..Resources::default()
                    }
                ),
            ]
        );
    }

    #[test]
    fn flags_from_annotations_labels_and_status() {
        // (annotations, labels, namespace paused, status, paused, ready, rolling out, gitops)
        type Row<'a> = (
            &'a [(&'a str, &'a str)],
            &'a [(&'a str, &'a str)],
            bool,
            DeploymentStatus,
            (bool, bool, bool, bool),
        );
        let rows: Vec<Row> = vec![
            (&[], &[], false, settled(3), (false, true, false, false)),
            (
                &[("tailor.dev/paused", "true")],
                &[],
                false,
                settled(3),
                (true, true, false, false),
            ),
            (
                &[("tailor.dev/paused", "TRUE")],
                &[],
                false,
                settled(3),
                (true, true, false, false),
            ),
            (
                &[("tailor.dev/paused", "false")],
                &[],
                false,
                settled(3),
                (false, true, false, false),
            ),
            (&[], &[], true, settled(3), (true, true, false, false)),
            (
                &[("tailor.dev/opt-out", "true")],
                &[],
                false,
                settled(3),
                (true, true, false, false),
            ),
            (
                &[(
                    "argocd.argoproj.io/tracking-id",
                    "app:apps/Deployment:shop/web",
                )],
                &[],
                false,
                settled(3),
                (false, true, false, true),
            ),
            (
                &[],
                &[("app.kubernetes.io/instance", "web")],
                false,
                settled(3),
                (false, true, false, true),
            ),
            (
                &[],
                &[("kustomize.toolkit.fluxcd.io/name", "apps")],
                false,
                settled(3),
                (false, true, false, true),
            ),
            (
                &[],
                &[("helm.toolkit.fluxcd.io/name", "web")],
                false,
                settled(3),
                (false, true, false, true),
            ),
            // A new generation the controller has not seen yet.
            (
                &[],
                &[],
                false,
                DeploymentStatus {
                    observed_generation: Some(2),
                    ..settled(3)
                },
                (false, true, true, false),
            ),
            // Pods of the new template still starting.
            (
                &[],
                &[],
                false,
                DeploymentStatus {
                    updated_replicas: Some(1),
                    ready_replicas: Some(2),
                    ..settled(3)
                },
                (false, false, true, false),
            ),
            (
                &[],
                &[],
                false,
                DeploymentStatus::default(),
                (false, false, true, false),
            ),
        ];
        for (i, (annotations, labels, ns_paused, status, expected)) in rows.into_iter().enumerate()
        {
            let d = deployment(annotations, labels, 3, status);
            let context = Context {
                namespace_paused: ns_paused,
                approved_change: None,
            };
            let v = deployment_view(&d, &context).expect("valid");
            assert_eq!(
                (v.paused, v.ready, v.rolling_out, v.gitops_managed),
                expected,
                "row {i}"
            );
        }
    }

    #[test]
    fn bad_values_are_errors_naming_what_is_wrong() {
        let mut d = deployment(&[], &[], 1, settled(1));
        if let Some(spec) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
            spec.containers[1] = container("sidecar", &[], &[("cpu", "lots")]);
        }
        let err = deployment_view(&d, &Context::default()).expect_err("invalid cpu");
        assert_eq!(
            err.to_string(),
            "container sidecar: limits.cpu \"lots\" is not a valid quantity: \"lots\" is not a \
             Kubernetes quantity (examples: 250m, 0.5, 2, 512Mi, 1Gi, 1e3)"
        );
        let d = deployment(&[("tailor.dev/mode", "yolo")], &[], 1, settled(1));
        let err = deployment_view(&d, &Context::default()).expect_err("invalid mode");
        assert_eq!(
            err,
            ViewError::Mode {
                key: "tailor.dev/mode",
                value: "yolo".into()
            }
        );
        let mut d = deployment(&[], &[], 1, settled(1));
        d.metadata.namespace = None;
        assert_eq!(
            deployment_view(&d, &Context::default()),
            Err(ViewError::Missing("namespace"))
        );
    }

    #[test]
    fn rollout_status_of_a_deployment() {
        let rows = [
            (
                settled(3),
                RolloutStatus {
                    replicas: 3,
                    updated: 3,
                    available: 3,
                    failed: false,
                },
            ),
            (
                DeploymentStatus {
                    observed_generation: Some(2),
                    ..settled(3)
                },
                RolloutStatus {
                    replicas: 3,
                    updated: 0,
                    available: 3,
                    failed: false,
                },
            ),
            (
                DeploymentStatus {
                    updated_replicas: Some(1),
                    available_replicas: Some(2),
                    conditions: Some(vec![DeploymentCondition {
                        type_: "Progressing".into(),
                        status: "False".into(),
                        reason: Some("ProgressDeadlineExceeded".into()),
                        ..Default::default()
                    }]),
                    ..settled(3)
                },
                RolloutStatus {
                    replicas: 3,
                    updated: 1,
                    available: 2,
                    failed: true,
                },
            ),
        ];
        for (i, (status, expected)) in rows.into_iter().enumerate() {
            let d = deployment(&[], &[], 3, status);
            assert_eq!(deployment_rollout(&d), expected, "row {i}");
        }
    }

    #[test]
    fn statefulsets_and_daemonsets() {
        let s = StatefulSet {
            metadata: meta(&[("tailor.dev/mode", "approve")], &[]),
            spec: Some(StatefulSetSpec {
                replicas: Some(2),
                template: template(vec![container("db", &[("memory", "4Gi")], &[])]),
                ..Default::default()
            }),
            status: Some(StatefulSetStatus {
                observed_generation: Some(3),
                replicas: 2,
                ready_replicas: Some(2),
                updated_replicas: Some(1),
                available_replicas: Some(2),
                ..Default::default()
            }),
        };
        let v = statefulset_view(&s, &Context::default()).expect("valid");
        assert_eq!(v.workload.kind, WorkloadKind::StatefulSet);
        assert_eq!(
            (v.mode, v.replicas, v.ready, v.rolling_out),
            (Some(Mode::Approve), 2, true, true)
        );
        assert_eq!(
            statefulset_rollout(&s),
            RolloutStatus {
                replicas: 2,
                updated: 1,
                available: 2,
                failed: false
            }
        );

        let d = DaemonSet {
            metadata: meta(&[], &[]),
            spec: Some(DaemonSetSpec {
                template: template(vec![container("agent", &[("cpu", "50m")], &[("cpu", "1")])]),
                ..Default::default()
            }),
            status: Some(DaemonSetStatus {
                observed_generation: Some(3),
                desired_number_scheduled: 5,
                number_ready: 4,
                updated_number_scheduled: Some(5),
                number_available: Some(4),
                ..Default::default()
            }),
        };
        let v = daemonset_view(&d, &Context::default()).expect("valid");
        assert_eq!((v.replicas, v.ready, v.rolling_out), (5, false, false));
        assert_eq!(
            v.containers[0].1,
            Resources {
                cpu_request: Some(MilliCores(50)),
                cpu_limit: Some(MilliCores(1000)),
                ..Resources::default()
            }
        );
        assert_eq!(
            daemonset_rollout(&d),
            RolloutStatus {
                replicas: 5,
                updated: 5,
                available: 4,
                failed: false
            }
        );
    }

    fn hpa(kind: &str, metrics: Option<Vec<(&str, &str)>>) -> HorizontalPodAutoscaler {
        HorizontalPodAutoscaler {
            metadata: ObjectMeta {
                name: Some("web-hpa".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: kind.into(),
                    name: "web".into(),
                },
                max_replicas: 10,
                metrics: metrics.map(|m| {
                    m.into_iter()
                        .map(|(name, target)| MetricSpec {
                            type_: "Resource".into(),
                            resource: Some(ResourceMetricSource {
                                name: name.into(),
                                target: MetricTarget {
                                    type_: target.into(),
                                    ..Default::default()
                                },
                            }),
                            ..Default::default()
                        })
                        .collect()
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn hpa_utilization_targets() {
        let rows = [
            (
                "Deployment",
                Some(vec![("cpu", "Utilization")]),
                Some((true, false)),
            ),
            (
                "Deployment",
                Some(vec![("memory", "Utilization"), ("cpu", "AverageValue")]),
                Some((false, true)),
            ),
            ("StatefulSet", None, Some((true, false))),
            ("Rollout", Some(vec![("cpu", "Utilization")]), None),
        ];
        for (i, (kind, metrics, expected)) in rows.into_iter().enumerate() {
            let got = hpa_scaling(&hpa(kind, metrics));
            assert_eq!(
                got.as_ref()
                    .map(|(_, s)| (s.cpu_utilization, s.memory_utilization)),
                expected,
                "row {i}"
            );
            if let Some((w, s)) = got {
                assert_eq!(
                    (w.namespace.as_str(), w.name.as_str(), s.hpa.as_str()),
                    ("shop", "web", "web-hpa")
                );
            }
        }
    }

    fn pod_with(
        name: &str,
        spec_cpu: &str,
        status_cpu: Option<&str>,
        pending: Option<&str>,
    ) -> Pod {
        let mut status = serde_json::json!({"containerStatuses": [{"name": "app", "image": "", "imageID": "",
            "ready": true, "restartCount": 0}]});
        if let Some(cpu) = status_cpu {
            status["containerStatuses"][0]["resources"] =
                serde_json::json!({"requests": {"cpu": cpu}});
        }
        if let Some(reason) = pending {
            status["conditions"] = serde_json::json!([{"type": "PodResizePending", "status": "True",
                "reason": reason, "message": "no room", "lastTransitionTime": "2025-06-01T00:00:00Z"}]);
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": spec_cpu}}}]},
            "status": status,
        }))
        .expect("pod")
    }

    fn cpu(m: u64) -> Resources {
        Resources {
            cpu_request: Some(MilliCores(m)),
            ..Resources::default()
        }
    }

    #[test]
    fn pods_tell_current_values_and_progress() {
        let settled = pod_state(&pod_with("a", "250m", Some("250m"), None)).expect("reads");
        assert!(settled.settled());
        let resizing = pod_state(&pod_with("b", "250m", Some("500m"), None)).expect("reads");
        assert!(!resizing.settled());
        let pending =
            pod_state(&pod_with("c", "9", Some("500m"), Some("Infeasible"))).expect("reads");
        assert_eq!(
            pending.pending,
            Some(ResizePending {
                reason: "Infeasible".into(),
                message: "no room".into(),
                since: Some(1_748_736_000),
            })
        );
        let unreported = pod_state(&pod_with("d", "250m", None, None)).expect("reads");
        assert_eq!(unreported.actual, unreported.desired);

        let template = [("app".to_string(), cpu(500))];
        let recorded = |_: &str| Some(cpu(250));
        let none = |_: &str| None;
        // Tailor's values where some pod has them (a pod its controller
        // recreated from the template does not hide them).
        let recreated = pod_state(&pod_with("e", "500m", Some("500m"), None)).expect("reads");
        let both = [settled.clone(), recreated.clone()];
        assert_eq!(
            in_place_current(&template, &recorded, &both),
            vec![("app".into(), cpu(250))]
        );
        // The record is stale when no pod has its values.
        assert_eq!(
            in_place_current(&template, &recorded, std::slice::from_ref(&recreated)),
            vec![("app".into(), cpu(500))]
        );
        // Pods that disagree otherwise: the highest values.
        assert_eq!(
            in_place_current(&template, &none, &both),
            vec![("app".into(), cpu(500))]
        );
        assert_eq!(
            in_place_current(&template, &recorded, &[]),
            vec![("app".into(), cpu(250))]
        );
        assert_eq!(
            pods_at(&[("app".into(), cpu(250))], &[settled, resizing, recreated]),
            1
        );
    }

    #[test]
    fn selectors_as_query_text() {
        let selector: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "team", "operator": "Exists"},
            ]
        }))
        .expect("selector");
        assert_eq!(
            selector_text(&selector),
            "app=web,tier=front,env in (prod,staging),!canary,team"
        );
    }
}
