//! [`KubeCluster`]: the agent's [`Cluster`] port over the real Kubernetes API
//! through kube-rs. Thin I/O: what a workload looks like to the planner is
//! decided in [`super::view`], what a change sends in [`super::patch`].
//!
//! Every call has a timeout and maps failures onto [`PortError`]: 404 →
//! `NotFound`; 409, 422 (a failed JSON Patch `test`) and 400 → `Conflict`
//! (re-read, never retry blindly); 401/403 → `Forbidden` naming the verb
//! and resource RBAC refused; 429, 5xx, timeouts and connection errors →
//! `Unavailable`. The RBAC this needs is listed in `docs/kubernetes.md`.
//!
//! Workloads annotated `tailor.dev/apply: in-place` on Kubernetes ≥ 1.33
//! are changed by resizing each running pod (`pods/{name}/resize`) instead
//! of patching the template; the rules, and what happens to the template,
//! are in `docs/kubernetes.md` ("In-place resize").

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, GetParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Request;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::annotations;
use super::crd::{self, ContainerStatus, Recommendation, RecommendationStatus, ResourceValues};
use super::patch::{self, InPlaceRecord, KnownGood, PatchOp, PatchPlan, Route};
use super::view::{self, Context, HpaScaling, PodState};
use crate::domain::{Resources, WorkloadKind, WorkloadRef};
use crate::plan::WorkloadView;
use crate::ports::{
    AgentEvent, Cluster, ContainerPatch, EventKind, PortError, Publication, ResourcePatch,
    RolloutStatus,
};
use crate::rollout::RolloutRecord;

mod publish;

/// Objects per list page.
const PAGE: u32 = 500;
/// The events.k8s.io limit on `note`.
const NOTE_MAX_BYTES: usize = 1024;
/// `reportingController` of every event tailor records.
pub const REPORTING_CONTROLLER: &str = "tailor.dev/agent";
const JSON_PATCH: &str = "application/json-patch+json";
/// Event reason when a change asked to go in place goes to the template.
pub const IN_PLACE_FALLBACK: &str = "InPlaceFallback";

/// Which namespaces the adapter looks at, and as whom it writes.
#[derive(Clone, Debug, PartialEq)]
pub struct KubeOptions {
    /// Only these namespaces; empty: all of them.
    pub namespaces: Vec<String>,
    /// Never these (exact names).
    pub exclude_namespaces: Vec<String>,
    /// The field manager recorded on every write (`managedFields`).
    pub field_manager: String,
    /// Longest wait for one API call before it counts as `Unavailable`.
    pub timeout: Duration,
    /// How long an in-place resize may stay `Deferred` (the node has no
    /// room yet) before the change goes to the pod template instead.
    pub resize_deferred_timeout: Duration,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            namespaces: Vec::new(),
            exclude_namespaces: Vec::new(),
            field_manager: "tailor".into(),
            timeout: Duration::from_secs(30),
            resize_deferred_timeout: Duration::from_secs(300),
        }
    }
}

/// The cluster tailor acts on, through the Kubernetes API.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    options: KubeOptions,
    /// `reportingInstance` of events: this pod's name.
    instance: String,
    /// The API server's `major.minor`, read once.
    version: Arc<tokio::sync::OnceCell<(u32, u32)>>,
}

/// One API call, for error messages: `patch deployments.apps in namespace shop`.
#[derive(Clone, Copy, Debug)]
struct Call<'a> {
    verb: &'static str,
    resource: &'static str,
    namespace: Option<&'a str>,
}

impl std::fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        match self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => Ok(()),
        }
    }
}

/// Maps a kube-rs error onto the port's.
fn port_error(err: kube::Error, call: Call<'_>) -> PortError {
    match err {
        kube::Error::Api(status) => {
            let message = &status.message;
            match status.code {
                404 => PortError::NotFound(format!("{call}: {message}")),
                400 | 409 | 422 => PortError::Conflict(format!("{call}: {message}")),
                401 | 403 => {
                    PortError::Forbidden(format!("RBAC: tailor may not {call}: {message}"))
                }
                code => PortError::Unavailable(format!("{call}: HTTP {code}: {message}")),
            }
        }
        other => PortError::Unavailable(format!("{call}: {other}")),
    }
}

fn resource_name(kind: WorkloadKind) -> Result<&'static str, PortError> {
    match kind {
        WorkloadKind::Deployment => Ok("deployments.apps"),
        WorkloadKind::StatefulSet => Ok("statefulsets.apps"),
        WorkloadKind::DaemonSet => Ok("daemonsets.apps"),
        other => Err(unsupported(other)),
    }
}

fn unsupported(kind: WorkloadKind) -> PortError {
    PortError::NotFound(format!(
        "tailor changes Deployments, StatefulSets and DaemonSets, not {kind}s"
    ))
}

fn url_path(workload: &WorkloadRef) -> Result<String, PortError> {
    let ns = Some(workload.namespace.as_str());
    Ok(match workload.kind {
        WorkloadKind::Deployment => Deployment::url_path(&(), ns),
        WorkloadKind::StatefulSet => StatefulSet::url_path(&(), ns),
        WorkloadKind::DaemonSet => DaemonSet::url_path(&(), ns),
        other => return Err(unsupported(other)),
    })
}

/// The uid of the object's controlling owner.
fn controller_uid(meta: &ObjectMeta) -> Option<String> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

/// Why the kubelet will not make an in-place resize, if it will not: a pod
/// whose resize is `Infeasible`, or `Deferred` for longer than `deferred_s`.
pub fn resize_refused(pods: &[PodState], now: i64, deferred_s: i64) -> Option<String> {
    pods.iter().find_map(|p| {
        let pending = p.pending.as_ref()?;
        match pending.reason.as_str() {
            "Infeasible" => Some(format!(
                "pod {}: the kubelet found the resize infeasible ({})",
                p.name, pending.message
            )),
            "Deferred" if pending.since.is_some_and(|t| now - t > deferred_s) => Some(format!(
                "pod {}: the resize was deferred for more than {deferred_s} s ({})",
                p.name, pending.message
            )),
            _ => None,
        }
    })
}

impl KubeCluster {
    pub fn new(client: Client, options: KubeOptions) -> Self {
        let instance = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "tailor".into());
        KubeCluster {
            client,
            options,
            instance,
            version: Arc::default(),
        }
    }

    async fn call<T>(
        &self,
        call: Call<'_>,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, PortError> {
        match tokio::time::timeout(self.options.timeout, request).await {
            Ok(result) => result.map_err(|e| port_error(e, call)),
            Err(_) => Err(PortError::Unavailable(format!(
                "{call}: no answer within {:?}",
                self.options.timeout
            ))),
        }
    }

    fn excluded(&self, namespace: Option<&str>) -> bool {
        namespace.is_some_and(|ns| self.options.exclude_namespaces.iter().any(|x| x == ns))
    }

    /// Every object of a namespaced kind in the selected namespaces.
    async fn list<K>(&self, resource: &'static str) -> Result<Vec<K>, PortError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let mut out = Vec::new();
        if self.options.namespaces.is_empty() {
            let api = Api::<K>::all(self.client.clone());
            out.extend(self.pages(api, resource, None).await?);
        } else {
            for ns in &self.options.namespaces {
                let api = Api::<K>::namespaced(self.client.clone(), ns);
                out.extend(self.pages(api, resource, Some(ns)).await?);
            }
        }
        out.retain(|o| !self.excluded(o.meta().namespace.as_deref()));
        Ok(out)
    }

    async fn pages<K>(
        &self,
        api: Api<K>,
        resource: &'static str,
        namespace: Option<&str>,
    ) -> Result<Vec<K>, PortError>
    where
        K: Resource + Clone + Debug + DeserializeOwned,
    {
        let call = Call {
            verb: "list",
            resource,
            namespace,
        };
        let mut out = Vec::new();
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = self.call(call, api.list(&params)).await?;
            out.extend(page.items);
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => return Ok(out),
            }
        }
    }

    /// Namespaces whose kill switch is on.
    async fn paused_namespaces(&self) -> Result<HashSet<String>, PortError> {
        let api = Api::<Namespace>::all(self.client.clone());
        let namespaces = if self.options.namespaces.is_empty() {
            self.pages(api, "namespaces", None).await?
        } else {
            let mut found = Vec::new();
            for ns in &self.options.namespaces {
                let call = Call {
                    verb: "get",
                    resource: "namespaces",
                    namespace: None,
                };
                found.extend(self.call(call, api.get_opt(ns)).await?);
            }
            found
        };
        Ok(namespaces
            .into_iter()
            .filter(|ns| view::is_true(ns.annotations().get(annotations::PAUSED)))
            .map(|ns| ns.name_any())
            .collect())
    }

    /// Every Recommendation in the selected namespaces.
    async fn recommendations(&self) -> Result<Vec<Recommendation>, PortError> {
        self.list::<Recommendation>("recommendations.tailor.dev")
            .await
    }

    /// The approved fingerprint per (namespace, Recommendation name). A
    /// missing CRD means nothing is approved (tailor cannot act then anyway:
    /// it cannot record a rollout).
    async fn approvals(&self) -> Result<HashMap<(String, String), String>, PortError> {
        let recs = match self.recommendations().await {
            Ok(recs) => recs,
            Err(PortError::NotFound(e)) => {
                tracing::warn!(error = %e, "Recommendation CRD not found; no change is approved");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        Ok(recs
            .into_iter()
            .filter_map(|r| {
                let approved = r.annotations().get(annotations::APPROVED)?.clone();
                Some(((r.namespace()?, r.name_any()), approved))
            })
            .collect())
    }

    /// Which workloads an HPA scales on CPU or memory utilization, for the
    /// daemon (changing those requests moves the HPA's scale point).
    pub async fn hpa_scaling(&self) -> Result<HashMap<WorkloadRef, HpaScaling>, PortError> {
        let hpas = self
            .list::<HorizontalPodAutoscaler>("horizontalpodautoscalers.autoscaling")
            .await?;
        Ok(hpas.iter().filter_map(view::hpa_scaling).collect())
    }

    /// The API server's `major.minor` (`/version`, read once and kept); a
    /// trailing `+` is ignored.
    pub async fn server_version(&self) -> Result<(u32, u32), PortError> {
        self.version
            .get_or_try_init(|| self.read_version())
            .await
            .copied()
    }

    async fn read_version(&self) -> Result<(u32, u32), PortError> {
        let call = Call {
            verb: "get",
            resource: "/version",
            namespace: None,
        };
        let info = self.call(call, self.client.apiserver_version()).await?;
        let number = |text: &str| -> Result<u32, PortError> {
            let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().map_err(|_| {
                PortError::Unavailable(format!(
                    "/version: {:?}.{:?} is not a version",
                    info.major, info.minor
                ))
            })
        };
        Ok((number(&info.major)?, number(&info.minor)?))
    }

    /// Puts back the values in the workload's `tailor.dev/last-known-good`
    /// annotation (for `tailor revert`), the way the agent changes it: in
    /// place for a workload that opted in, else on the template; with
    /// `test` ops like every patch. Nothing is sent when the workload
    /// already has them.
    pub async fn revert_to_last_known_good(&self, workload: &WorkloadRef) -> Result<(), PortError> {
        let object = self.get_json(workload).await?;
        let record = InPlaceRecord::of(&object).filter(InPlaceRecord::holds_pods);
        let states = match &record {
            Some(_) => self.pod_states(&self.pods_of(workload, &object).await?),
            None => Vec::new(),
        };
        let current = |name: &str| {
            let template = patch::template_value(&object, workload, name)?;
            Ok(match &record {
                Some(r) => {
                    let in_place = |c: &str| r.pods_value(c);
                    view::in_place_current(&[(name.to_string(), template)], &in_place, &states)[0].1
                }
                None => template,
            })
        };
        let change_id = format!("revert-{}", Timestamp::now().as_second());
        match patch::last_known_good_change(&object, workload, &change_id, current)? {
            None => Ok(()),
            Some(change) => self.apply_to(&object, &change, KnownGood::Never).await,
        }
    }

    /// Applies `patch` to `object` (the workload as just read): in place
    /// when the workload asks for it and Kubernetes allows it, else on the
    /// template, saying why.
    async fn apply_to(
        &self,
        object: &Value,
        patch: &ResourcePatch,
        known_good: KnownGood,
    ) -> Result<(), PortError> {
        let w = &patch.workload;
        let asks = patch::annotation(object, annotations::APPLY).map(str::trim)
            == Some(annotations::APPLY_IN_PLACE);
        let record = InPlaceRecord::of(object);
        let pods_hold_values = record.as_ref().is_some_and(InPlaceRecord::holds_pods);
        let pods = if asks || pods_hold_values {
            self.pods_of(w, object).await?
        } else {
            Vec::new()
        };
        let version = if asks {
            self.server_version().await?
        } else {
            (0, 0)
        };
        match patch::route(object, w.kind, version, &pods, patch) {
            Route::InPlace { template_too } => {
                self.resize_in_place(
                    object,
                    record.as_ref(),
                    &pods,
                    patch,
                    template_too,
                    known_good,
                )
                .await
            }
            Route::Template { fallback } => {
                if let Some(why) = fallback {
                    self.fell_back(w, &patch.change_id, &why).await;
                }
                let plan = if pods_hold_values {
                    self.check_pods(object, record.as_ref(), &pods, patch)?;
                    let containers = patch::template_containers(object, w, patch)?;
                    let changes = patch::template_changes(patch, &containers);
                    let ours = patch::annotation(object, annotations::CHANGE_ID)
                        == Some(patch.change_id.as_str());
                    let mut notes = vec![(annotations::CHANGE_ID, Some(patch.change_id.clone()))];
                    if known_good.record(ours) {
                        notes.push((
                            annotations::LAST_KNOWN_GOOD,
                            Some(patch::known_good_text(patch)?),
                        ));
                    }
                    notes.push((annotations::IN_PLACE, None));
                    PatchPlan::Patch(patch::workload_ops(object, w, &changes, &notes)?)
                } else {
                    patch::template_patch(object, patch, known_good)?
                };
                match plan {
                    PatchPlan::AlreadyApplied => Ok(()),
                    PatchPlan::Patch(ops) => self.json_patch(w, &ops).await,
                }
            }
        }
    }

    /// Checks the running pods hold what `patch` was planned from (the
    /// workload's current values read from its pods as discovery reads
    /// them), and that each pod holds values tailor knows: the change's
    /// before or after, the template's (a pod its controller recreated), or
    /// the in-place record's. Anything else is someone else's resize: a
    /// `Conflict`. `Ok(true)`: every pod already has the change.
    fn check_pods(
        &self,
        object: &Value,
        record: Option<&InPlaceRecord>,
        pods: &[Value],
        patch: &ResourcePatch,
    ) -> Result<bool, PortError> {
        let w = &patch.workload;
        let states = self.pod_states(pods);
        let mut template = Vec::new();
        for c in &patch.containers {
            template.push((
                c.container.clone(),
                patch::template_value(object, w, &c.container)?,
            ));
        }
        let in_place = |c: &str| record.and_then(|r| r.pods_value(c));
        let current = view::in_place_current(&template, &in_place, &states);
        let ours =
            patch::annotation(object, annotations::CHANGE_ID) == Some(patch.change_id.as_str());
        let everywhere = |values: &dyn Fn(&ContainerPatch) -> Resources| {
            states.iter().all(|p| {
                patch.containers.iter().all(|c| {
                    p.desired
                        .iter()
                        .any(|(n, r)| *n == c.container && *r == values(c))
                })
            })
        };
        if ours && everywhere(&|c| c.set) {
            return Ok(true);
        }
        for (c, (_, held)) in patch.containers.iter().zip(&current) {
            if *held != c.expect && !(ours && *held == c.set) {
                return Err(patch::stale(w, &c.container, held, &c.expect));
            }
        }
        for p in &states {
            for (c, (_, template_value)) in patch.containers.iter().zip(&template) {
                let Some((_, held)) = p.desired.iter().find(|(n, _)| *n == c.container) else {
                    continue;
                };
                let known = [
                    Some(c.expect),
                    Some(c.set),
                    Some(*template_value),
                    in_place(&c.container),
                ];
                if !known.contains(&Some(*held)) {
                    return Err(PortError::Conflict(format!(
                        "{w}: pod {} container {} holds values neither the change, the template                          nor tailor's in-place record has: someone else resized it",
                        p.name, c.container
                    )));
                }
            }
        }
        Ok(false)
    }

    /// Resizes every pod of the workload to `patch`'s values: first the
    /// workload's annotations (change id, last known good, the in-place
    /// record, and with `template_too` the template), pinned like every
    /// patch; then `pods/{name}/resize` on each pod not there yet.
    async fn resize_in_place(
        &self,
        object: &Value,
        record: Option<&InPlaceRecord>,
        pods: &[Value],
        patch: &ResourcePatch,
        template_too: bool,
        known_good: KnownGood,
    ) -> Result<(), PortError> {
        let w = &patch.workload;
        if self.check_pods(object, record, pods, patch)? {
            return Ok(());
        }
        let containers = patch::template_containers(object, w, patch)?;
        let mut next = InPlaceRecord {
            change_id: patch.change_id.clone(),
            containers: record
                .filter(|r| r.holds_pods() && !template_too)
                .map(|r| r.containers.clone())
                .unwrap_or_default(),
            template: template_too,
            fallback: None,
        };
        for (c, (_, template_value)) in patch.containers.iter().zip(&containers) {
            if template_too || c.set != *template_value {
                next.containers
                    .insert(c.container.clone(), ResourceValues::from(c.set));
            } else {
                next.containers.remove(&c.container);
            }
        }
        let changes = if template_too {
            patch::template_changes(patch, &containers)
        } else {
            Vec::new()
        };
        let ours =
            patch::annotation(object, annotations::CHANGE_ID) == Some(patch.change_id.as_str());
        let mut notes = vec![(annotations::CHANGE_ID, Some(patch.change_id.clone()))];
        if known_good.record(ours) {
            notes.push((
                annotations::LAST_KNOWN_GOOD,
                Some(patch::known_good_text(patch)?),
            ));
        }
        notes.push((annotations::IN_PLACE, Some(next.to_json()?)));
        let ops = patch::workload_ops(object, w, &changes, &notes)?;
        self.json_patch(w, &ops).await?;
        for pod in pods {
            let changes = patch::pod_changes(pod, patch)?;
            if changes.is_empty() {
                continue;
            }
            let name = pod
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            match self
                .resize_pod(&w.namespace, name, &patch::resize_ops(pod, &changes))
                .await
            {
                // Gone meanwhile: its replacement starts from the template.
                Err(PortError::NotFound(e)) => {
                    tracing::debug!(pod = name, error = %e, "pod gone before its resize")
                }
                other => other?,
            }
        }
        tracing::info!(workload = %w, change_id = %patch.change_id, pods = pods.len(), template = template_too, "resized in place");
        Ok(())
    }

    /// A workload whose pods tailor resized in place: its current values
    /// come from the running pods, and it is rolling out while a resize is
    /// pending or in progress on any of them.
    async fn read_pods_into(
        &self,
        view: &mut WorkloadView,
        meta: &ObjectMeta,
        selector: Option<&LabelSelector>,
    ) -> Result<(), PortError> {
        let Some(record) = InPlaceRecord::from_annotations(meta.annotations.as_ref())
            .filter(|r| r.fallback.is_none())
        else {
            return Ok(());
        };
        let uid = meta.uid.as_deref().unwrap_or("");
        let pods = self
            .owned_pods(
                &view.workload,
                uid,
                selector.unwrap_or(&LabelSelector::default()),
            )
            .await?;
        let states = self.pod_states(&pods);
        if record.holds_pods() {
            let in_place = |c: &str| record.pods_value(c);
            view.containers = view::in_place_current(&view.containers, &in_place, &states);
        }
        if !states.iter().all(PodState::settled) {
            view.rolling_out = true;
        }
        Ok(())
    }

    /// Logs and records (an Event on the workload) why a change asked to
    /// go in place goes to the template.
    async fn fell_back(&self, workload: &WorkloadRef, change_id: &str, why: &str) {
        tracing::warn!(workload = %workload, change_id, reason = why, "in-place resize not possible; patching the pod template");
        let note = format!("in-place resize not possible, patching the pod template: {why}");
        let event = event_object(
            workload,
            EventText {
                reason: IN_PLACE_FALLBACK,
                type_: "Warning",
                action: "Patch",
                note: &note,
                change_id: Some(change_id),
            },
            &self.instance,
            Timestamp::now(),
        );
        if let Err(e) = self.create_event(workload, &event).await {
            tracing::warn!(workload = %workload, error = %e, "could not record the fallback event");
        }
    }

    /// The running pods of a workload: those its controller owns (through
    /// the ReplicaSets a Deployment owns), not being deleted, not finished,
    /// as JSON exactly as the server holds them.
    async fn pods_of(
        &self,
        workload: &WorkloadRef,
        object: &Value,
    ) -> Result<Vec<Value>, PortError> {
        let uid = object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        let selector: LabelSelector = object
            .pointer("/spec/selector")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        self.owned_pods(workload, uid, &selector).await
    }

    async fn owned_pods(
        &self,
        workload: &WorkloadRef,
        uid: &str,
        selector: &LabelSelector,
    ) -> Result<Vec<Value>, PortError> {
        let uid = uid.to_string();
        let labels = view::selector_text(selector);
        let ns = workload.namespace.as_str();
        let mut owners = HashSet::from([uid.clone()]);
        if workload.kind == WorkloadKind::Deployment {
            let api = Api::<ReplicaSet>::namespaced(self.client.clone(), ns);
            let call = Call {
                verb: "list",
                resource: "replicasets.apps",
                namespace: Some(ns),
            };
            let sets = self
                .call(call, api.list(&ListParams::default().labels(&labels)))
                .await?;
            owners = sets
                .items
                .iter()
                .filter(|rs| controller_uid(&rs.metadata).as_deref() == Some(uid.as_str()))
                .filter_map(|rs| rs.metadata.uid.clone())
                .collect();
        }
        let call = Call {
            verb: "list",
            resource: "pods",
            namespace: Some(ns),
        };
        let mut pods = Vec::new();
        let mut params = ListParams::default().labels(&labels).limit(PAGE);
        loop {
            let request = Request::new(Pod::url_path(&(), Some(ns)))
                .list(&params)
                .map_err(|e| port_error(kube::Error::BuildRequest(e), call))?;
            let page: Value = self
                .call(call, self.client.request::<Value>(request))
                .await?;
            pods.extend(
                page.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            match page.pointer("/metadata/continue").and_then(Value::as_str) {
                Some(token) if !token.is_empty() => params = params.continue_token(token),
                _ => break,
            }
        }
        pods.retain(|p| {
            let owner = p
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
                .and_then(|r| r.get("uid"))
                .and_then(Value::as_str);
            let phase = p.pointer("/status/phase").and_then(Value::as_str);
            owner.is_some_and(|o| owners.contains(o))
                && p.pointer("/metadata/deletionTimestamp").is_none()
                && !matches!(phase, Some("Succeeded" | "Failed"))
        });
        Ok(pods)
    }

    /// Each pod's resize state; a pod that does not read is left out, with
    /// a warning.
    fn pod_states(&self, pods: &[Value]) -> Vec<PodState> {
        pods.iter()
            .filter_map(|p| {
                let state = serde_json::from_value::<Pod>(p.clone())
                    .map_err(|e| e.to_string())
                    .and_then(|pod| view::pod_state(&pod).map_err(|e| e.to_string()));
                match state {
                    Ok(state) => Some(state),
                    Err(e) => {
                        let name = p.pointer("/metadata/name").and_then(Value::as_str);
                        tracing::warn!(pod = name.unwrap_or(""), error = %e, "skipping a pod that does not read");
                        None
                    }
                }
            })
            .collect()
    }

    async fn resize_pod(
        &self,
        namespace: &str,
        name: &str,
        ops: &[PatchOp],
    ) -> Result<(), PortError> {
        let call = Call {
            verb: "patch",
            resource: "pods/resize",
            namespace: Some(namespace),
        };
        let url = Pod::url_path(&(), Some(namespace));
        self.send_json_patch(call, url, name, Some("resize"), ops)
            .await
    }

    /// The template-based rollout of a workload read as JSON.
    fn template_rollout(
        workload: &WorkloadRef,
        object: &Value,
    ) -> Result<RolloutStatus, PortError> {
        let unreadable = |e: serde_json::Error| {
            PortError::Conflict(format!(
                "{workload} does not read as a {}: {e}",
                workload.kind
            ))
        };
        Ok(match workload.kind {
            WorkloadKind::Deployment => view::deployment_rollout(
                &serde_json::from_value(object.clone()).map_err(unreadable)?,
            ),
            WorkloadKind::StatefulSet => view::statefulset_rollout(
                &serde_json::from_value(object.clone()).map_err(unreadable)?,
            ),
            WorkloadKind::DaemonSet => view::daemonset_rollout(
                &serde_json::from_value(object.clone()).map_err(unreadable)?,
            ),
            other => return Err(unsupported(other)),
        })
    }

    /// The rollout of a change resized in place: pods that run with the
    /// values (or a resize the kubelet will not make: the change goes to
    /// the template, or fails when the template already has it).
    async fn in_place_rollout(
        &self,
        workload: &WorkloadRef,
        object: &Value,
        record: &InPlaceRecord,
    ) -> Result<RolloutStatus, PortError> {
        let base = Self::template_rollout(workload, object)?;
        let mut pods = self.pods_of(workload, object).await?;
        if record.holds_pods()
            && self
                .resize_recreated(workload, object, record, &pods)
                .await?
        {
            pods = self.pods_of(workload, object).await?;
        }
        let states = self.pod_states(&pods);
        let now = Timestamp::now().as_second();
        let deferred_s =
            i64::try_from(self.options.resize_deferred_timeout.as_secs()).unwrap_or(i64::MAX);
        if let Some(why) = resize_refused(&states, now, deferred_s) {
            if record.template {
                self.fell_back(
                    workload,
                    &record.change_id,
                    &format!("{why}; the template already has the values, so the change fails"),
                )
                .await;
                return Ok(RolloutStatus {
                    failed: true,
                    ..base
                });
            }
            self.fall_back(workload, object, record, &why).await?;
            let object = self.get_json(workload).await?;
            return Self::template_rollout(workload, &object);
        }
        let mut target = Vec::new();
        for (name, _) in states
            .first()
            .map(|s| s.desired.clone())
            .unwrap_or_default()
        {
            let template = patch::template_value(object, workload, &name)?;
            target.push((name.clone(), record.pods_value(&name).unwrap_or(template)));
        }
        Ok(RolloutStatus {
            updated: view::pods_at(&target, &states),
            failed: false,
            ..base
        })
    }

    /// Pods the controller (re)created from the template while the
    /// workload's values live in the in-place record (a pod evicted, a
    /// scale-up): resized to the record's values too, pinned like every
    /// resize. A pod holding anything else is left alone. `Ok(true)`: some
    /// pod was resized.
    async fn resize_recreated(
        &self,
        workload: &WorkloadRef,
        object: &Value,
        record: &InPlaceRecord,
        pods: &[Value],
    ) -> Result<bool, PortError> {
        let change = record_patch(workload, object, record)?;
        let mut resized = false;
        for pod in pods {
            let changes = patch::pod_changes(pod, &change)?;
            let from_template = changes.iter().all(|c| {
                change
                    .containers
                    .iter()
                    .any(|t| t.container == c.patch.container && t.expect == c.patch.expect)
            });
            if changes.is_empty() || !from_template || patch::resize_blocker(pod, &change).is_some()
            {
                continue;
            }
            let name = pod
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            tracing::info!(workload = %workload, pod = name, change_id = %record.change_id, "resizing a pod its controller created from the template");
            match self
                .resize_pod(&workload.namespace, name, &patch::resize_ops(pod, &changes))
                .await
            {
                Err(PortError::NotFound(_)) => {}
                other => other?,
            }
            resized = true;
        }
        Ok(resized)
    }

    /// Moves an in-place change the kubelet will not make to the template:
    /// a JSON Patch setting the in-place values there (pinned like every
    /// patch), the record marked with why; the controller then rolls pods.
    async fn fall_back(
        &self,
        workload: &WorkloadRef,
        object: &Value,
        record: &InPlaceRecord,
        why: &str,
    ) -> Result<(), PortError> {
        let change = record_patch(workload, object, record)?;
        let containers = patch::template_containers(object, workload, &change)?;
        let changes = patch::template_changes(&change, &containers);
        let marked = InPlaceRecord {
            template: true,
            fallback: Some(why.to_string()),
            ..record.clone()
        };
        let notes = [(annotations::IN_PLACE, Some(marked.to_json()?))];
        let ops = patch::workload_ops(object, workload, &changes, &notes)?;
        self.json_patch(workload, &ops).await?;
        self.fell_back(workload, &record.change_id, why).await;
        Ok(())
    }

    async fn create_event(&self, workload: &WorkloadRef, event: &Event) -> Result<(), PortError> {
        let api = Api::<Event>::namespaced(self.client.clone(), &workload.namespace);
        let call = Call {
            verb: "create",
            resource: "events.events.k8s.io",
            namespace: Some(&workload.namespace),
        };
        self.call(call, api.create(&PostParams::default(), event))
            .await
            .map(drop)
    }

    /// The workload exactly as the server holds it.
    async fn get_json(&self, workload: &WorkloadRef) -> Result<Value, PortError> {
        let call = Call {
            verb: "get",
            resource: resource_name(workload.kind)?,
            namespace: Some(&workload.namespace),
        };
        let request = Request::new(url_path(workload)?)
            .get(&workload.name, &GetParams::default())
            .map_err(|e| port_error(kube::Error::BuildRequest(e), call))?;
        self.call(call, self.client.request::<Value>(request)).await
    }

    async fn json_patch(&self, workload: &WorkloadRef, ops: &[PatchOp]) -> Result<(), PortError> {
        let call = Call {
            verb: "patch",
            resource: resource_name(workload.kind)?,
            namespace: Some(&workload.namespace),
        };
        self.send_json_patch(call, url_path(workload)?, &workload.name, None, ops)
            .await
    }

    /// PATCHes `ops` as `application/json-patch+json` to `name` (or its
    /// `subresource`) under `url`.
    async fn send_json_patch(
        &self,
        call: Call<'_>,
        url: String,
        name: &str,
        subresource: Option<&str>,
        ops: &[PatchOp],
    ) -> Result<(), PortError> {
        let params = PatchParams {
            field_manager: Some(self.options.field_manager.clone()),
            ..PatchParams::default()
        };
        // kube's `Patch::Json` needs its `jsonpatch` feature; the body is the
        // same JSON either way, so only the content type is swapped.
        let body = Patch::Merge(ops);
        let request = Request::new(url);
        let built = match subresource {
            Some(sub) => request.patch_subresource(sub, name, &params, &body),
            None => request.patch(name, &params, &body),
        };
        let mut request = built.map_err(|e| port_error(kube::Error::BuildRequest(e), call))?;
        request.headers_mut().insert(
            "content-type",
            JSON_PATCH.parse().expect("a constant, valid header value"),
        );
        self.call(call, self.client.request::<Value>(request))
            .await
            .map(drop)
    }
}

/// The status merge patch that records `record` on its Recommendation:
/// `containers[].previous` is set on the entries of the existing status (a
/// merge patch replaces lists whole).
fn status_patch(
    record: &RolloutRecord,
    existing: Option<&RecommendationStatus>,
    now: i64,
) -> Value {
    let mut containers: Vec<ContainerStatus> =
        existing.map(|s| s.containers.clone()).unwrap_or_default();
    for change in &record.change.containers {
        let previous = ResourceValues::from(change.from);
        match containers.iter_mut().find(|c| c.name == change.container) {
            Some(c) => c.previous = Some(previous),
            None => containers.push(ContainerStatus {
                name: change.container.clone(),
                current: previous.clone(),
                recommended: ResourceValues::from(change.to),
                previous: Some(previous),
                ..ContainerStatus::default()
            }),
        }
    }
    let last_updated = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    json!({
        "status": {
            "phase": record.phase,
            "changeId": record.change.id,
            "fingerprint": record.change.fingerprint,
            "rollout": record,
            "verdict": record.verdict.as_ref().map(|v| v.summary.clone()),
            "lastUpdated": last_updated,
            "containers": containers,
        }
    })
}

/// `Reverted`, `RolledOut`, … : the Event's reason.
fn reason(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Proposed => "Proposed",
        EventKind::Applied => "Applied",
        EventKind::RolledOut => "RolledOut",
        EventKind::Confirmed => "Confirmed",
        EventKind::Reverting => "Reverting",
        EventKind::Reverted => "Reverted",
        EventKind::Skipped => "Skipped",
        EventKind::Conflict => "Conflict",
        EventKind::FastPath => "FastPath",
        EventKind::LeakSuspected => "LeakSuspected",
        EventKind::Trouble => "Trouble",
    }
}

/// What tailor did or would do: the Event's action.
fn action(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Proposed => "Propose",
        EventKind::Applied | EventKind::FastPath | EventKind::Conflict => "Patch",
        EventKind::RolledOut | EventKind::Confirmed => "Verify",
        EventKind::Reverting | EventKind::Reverted => "Revert",
        EventKind::Skipped => "Skip",
        EventKind::LeakSuspected | EventKind::Trouble => "Observe",
    }
}

fn event_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Reverting
        | EventKind::Reverted
        | EventKind::Conflict
        | EventKind::Trouble
        | EventKind::LeakSuspected => "Warning",
        _ => "Normal",
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What an Event says, apart from where and when.
struct EventText<'a> {
    reason: &'a str,
    type_: &'a str,
    action: &'a str,
    note: &'a str,
    change_id: Option<&'a str>,
}

/// The `events.k8s.io/v1` Event for `event`.
fn agent_event_object(event: &AgentEvent, instance: &str, now: Timestamp) -> Event {
    let text = EventText {
        reason: reason(event.kind),
        type_: event_type(event.kind),
        action: action(event.kind),
        note: &event.message,
        change_id: event.change_id.as_deref(),
    };
    event_object(&event.workload, text, instance, now)
}

/// An `events.k8s.io/v1` Event on a workload, named like client-go's
/// recorder (`<workload>.<nanoseconds in hex>`).
fn event_object(w: &WorkloadRef, text: EventText<'_>, instance: &str, now: Timestamp) -> Event {
    let at = Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now);
    let mut note = truncate(text.note, NOTE_MAX_BYTES).to_string();
    if let Some(id) = text.change_id {
        let suffix = format!(" (change {id})");
        if note.len() + suffix.len() <= NOTE_MAX_BYTES {
            note.push_str(&suffix);
        }
    }
    let prefix = truncate(&w.name, 253 - 17);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}.{:x}", now.as_nanosecond())),
            namespace: Some(w.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(at)),
        action: Some(text.action.into()),
        reason: Some(text.reason.into()),
        note: Some(note),
        type_: Some(text.type_.into()),
        regarding: Some(ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(w.kind.as_str().into()),
            name: Some(w.name.clone()),
            namespace: Some(w.namespace.clone()),
            ..ObjectReference::default()
        }),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.into()),
        ..Event::default()
    }
}

fn keep(workload: &str, result: Result<WorkloadView, view::ViewError>) -> Option<WorkloadView> {
    match result {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::warn!(workload, error = %e, "skipping workload: tailor will not guess its resources");
            None
        }
    }
}

impl Cluster for KubeCluster {
    async fn workloads(&self) -> Result<Vec<WorkloadView>, PortError> {
        let paused = self.paused_namespaces().await?;
        let approvals = self.approvals().await?;
        let context = |kind: WorkloadKind, meta: &ObjectMeta| {
            let ns = meta.namespace.clone().unwrap_or_default();
            let name = meta.name.clone().unwrap_or_default();
            Context {
                namespace_paused: paused.contains(&ns),
                approved_change: approvals.get(&(ns, crd::object_name(kind, &name))).cloned(),
            }
        };
        let label = |kind: WorkloadKind, meta: &ObjectMeta| {
            format!(
                "{}/{kind}/{}",
                meta.namespace.as_deref().unwrap_or(""),
                meta.name.as_deref().unwrap_or("")
            )
        };
        // (view, metadata, selector) of every workload that reads.
        let mut read = Vec::new();
        for d in self.list::<Deployment>("deployments.apps").await? {
            let kind = WorkloadKind::Deployment;
            let ctx = context(kind, &d.metadata);
            if let Some(v) = keep(&label(kind, &d.metadata), view::deployment_view(&d, &ctx)) {
                let selector = d.spec.map(|s| s.selector);
                read.push((v, d.metadata, selector));
            }
        }
        for s in self.list::<StatefulSet>("statefulsets.apps").await? {
            let kind = WorkloadKind::StatefulSet;
            let ctx = context(kind, &s.metadata);
            if let Some(v) = keep(&label(kind, &s.metadata), view::statefulset_view(&s, &ctx)) {
                let selector = s.spec.map(|s| s.selector);
                read.push((v, s.metadata, selector));
            }
        }
        for d in self.list::<DaemonSet>("daemonsets.apps").await? {
            let kind = WorkloadKind::DaemonSet;
            let ctx = context(kind, &d.metadata);
            if let Some(v) = keep(&label(kind, &d.metadata), view::daemonset_view(&d, &ctx)) {
                let selector = d.spec.map(|s| s.selector);
                read.push((v, d.metadata, selector));
            }
        }
        let mut views = Vec::new();
        for (mut v, meta, selector) in read {
            match self.read_pods_into(&mut v, &meta, selector.as_ref()).await {
                Ok(()) => views.push(v),
                Err(e) => {
                    tracing::warn!(workload = %v.workload, error = %e, "skipping workload: its pods, which hold its current values, cannot be read")
                }
            }
        }
        Ok(views)
    }

    async fn apply(&self, patch: &ResourcePatch) -> Result<(), PortError> {
        let object = self.get_json(&patch.workload).await?;
        self.apply_to(&object, patch, KnownGood::UnlessOurs).await
    }

    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, PortError> {
        let object = self.get_json(workload).await?;
        let change_id = patch::annotation(&object, annotations::CHANGE_ID);
        match InPlaceRecord::of(&object) {
            Some(record)
                if Some(record.change_id.as_str()) == change_id && record.fallback.is_none() =>
            {
                self.in_place_rollout(workload, &object, &record).await
            }
            _ => Self::template_rollout(workload, &object),
        }
    }

    async fn load_rollouts(&self) -> Result<Vec<RolloutRecord>, PortError> {
        let mut records = Vec::new();
        for rec in self.recommendations().await? {
            let Some(rollout) = rec.status.and_then(|s| s.rollout) else {
                continue;
            };
            match serde_json::from_value::<RolloutRecord>(rollout) {
                Ok(record) => records.push(record),
                Err(e) => tracing::warn!(
                    recommendation = %format!("{}/{}", rec.metadata.namespace.as_deref().unwrap_or(""), rec.metadata.name.as_deref().unwrap_or("")),
                    error = %e,
                    "skipping a rollout record that does not parse"
                ),
            }
        }
        Ok(records)
    }

    async fn save_rollout(&self, record: &RolloutRecord) -> Result<(), PortError> {
        let w = &record.change.workload;
        let existing = self.recommendation_object(w).await?;
        let body = status_patch(
            record,
            existing.status.as_ref(),
            Timestamp::now().as_second(),
        );
        self.patch_recommendation_status(w, &body).await
    }

    async fn publish(&self, publication: &Publication) -> Result<(), PortError> {
        self.publish_recommendation(publication).await
    }

    async fn record_event(&self, event: &AgentEvent) -> Result<(), PortError> {
        let object = agent_event_object(event, &self.instance, Timestamp::now());
        self.create_event(&event.workload, &object).await
    }
}

/// The patch that moves the template from its values to the ones an
/// in-place record says the pods should have.
fn record_patch(
    workload: &WorkloadRef,
    object: &Value,
    record: &InPlaceRecord,
) -> Result<ResourcePatch, PortError> {
    let containers = record
        .containers
        .iter()
        .map(|(name, values)| {
            Ok(ContainerPatch {
                container: name.clone(),
                expect: patch::template_value(object, workload, name)?,
                set: Resources::from(values.clone()),
            })
        })
        .collect::<Result<Vec<_>, PortError>>()?;
    Ok(ResourcePatch {
        workload: workload.clone(),
        change_id: record.change_id.clone(),
        containers,
    })
}

#[cfg(test)]
mod tests {
    //! The adapter against a canned HTTP server on loopback: the real kube-rs
    //! client, real requests, answers chosen per test.

    use std::sync::{Arc, Mutex};

    use axum::body::Bytes as Body;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};

    use super::*;
    use crate::domain::Resources;
    use crate::plan::{Change, ChangeReason, ContainerChange};
    use crate::ports::ContainerPatch;
    use crate::units::{Bytes, MilliCores};

    /// One request the server saw: method, path and query, content type, body.
    type Seen = Arc<Mutex<Vec<(String, String, String, Value)>>>;

    async fn server(
        respond: impl Fn(&str, &str) -> (u16, Value) + Clone + Send + Sync + 'static,
    ) -> (KubeCluster, Seen) {
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Body| {
                let respond = respond.clone();
                let log = log.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let (code, answer) = respond(method.as_str(), uri.path());
                    log.lock().expect("not poisoned").push((
                        method.to_string(),
                        uri.to_string(),
                        content_type,
                        value,
                    ));
                    (
                        StatusCode::from_u16(code).expect("valid code"),
                        axum::Json(answer),
                    )
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}").parse().expect("valid url");
        let mut config = kube::Config::new(url);
        // kube retries 429/503/504 with backoff by default; answer at once here.
        config.default_retry = false;
        let client = Client::try_from(config).expect("client");
        let options = KubeOptions {
            timeout: Duration::from_secs(5),
            ..KubeOptions::default()
        };
        (KubeCluster::new(client, options), seen)
    }

    fn status(code: u16, reason: &str, message: &str) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "code": code, "reason": reason, "message": message})
    }

    fn web() -> WorkloadRef {
        WorkloadRef {
            namespace: "shop".into(),
            kind: WorkloadKind::Deployment,
            name: "web".into(),
        }
    }

    fn deployment_json(cpu: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {"containers": [
                {"name": "app", "image": "web:1", "resources": {"requests": {"cpu": cpu}}}]}}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                       "readyReplicas": 2, "availableReplicas": 1}
        })
    }

    fn resource_patch() -> ResourcePatch {
        ResourcePatch {
            workload: web(),
            change_id: "c-1".into(),
            containers: vec![ContainerPatch {
                container: "app".into(),
                expect: Resources {
                    cpu_request: Some(MilliCores(500)),
                    ..Resources::default()
                },
                set: Resources {
                    cpu_request: Some(MilliCores(250)),
                    ..Resources::default()
                },
            }],
        }
    }

    #[tokio::test]
    async fn apply_reads_then_sends_a_json_patch_with_test_ops() {
        let (cluster, seen) = server(|_, _| (200, deployment_json("500m"))).await;
        cluster.apply(&resource_patch()).await.expect("applied");
        assert_eq!(
            cluster.rollout_status(&web()).await,
            Ok(RolloutStatus {
                replicas: 2,
                updated: 2,
                available: 1,
                failed: false
            })
        );
        let seen = seen.lock().expect("not poisoned").clone();
        assert_eq!(seen.len(), 3, "get, patch, get");
        assert_eq!(
            (seen[0].0.as_str(), seen[0].1.as_str()),
            ("GET", "/apis/apps/v1/namespaces/shop/deployments/web")
        );
        let (method, uri, content_type, body) = &seen[1];
        assert_eq!(method, "PATCH");
        assert_eq!(
            uri,
            "/apis/apps/v1/namespaces/shop/deployments/web?&fieldManager=tailor"
        );
        assert_eq!(content_type, "application/json-patch+json");
        assert_eq!(
            body[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"})
        );
        assert_eq!(
            body[3],
            json!({"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "250m"})
        );
    }

    #[tokio::test]
    async fn apply_conflicts_without_patching_when_values_moved() {
        let (cluster, seen) = server(|_, _| (200, deployment_json("300m"))).await;
        let err = cluster.apply(&resource_patch()).await.expect_err("stale");
        assert!(matches!(err, PortError::Conflict(_)), "{err:?}");
        assert_eq!(seen.lock().expect("not poisoned").len(), 1, "only the GET");
    }

    #[tokio::test]
    async fn api_errors_map_onto_the_port() {
        type Expect = fn(&PortError) -> bool;
        let rows: [(u16, &str, Expect); 6] = [
            (422, "Invalid", |e| matches!(e, PortError::Conflict(_))),
            (409, "Conflict", |e| matches!(e, PortError::Conflict(_))),
            (404, "NotFound", |e| matches!(e, PortError::NotFound(_))),
            (429, "TooManyRequests", |e| {
                matches!(e, PortError::Unavailable(_))
            }),
            (503, "ServiceUnavailable", |e| {
                matches!(e, PortError::Unavailable(_))
            }),
            (403, "Forbidden", |e| {
                e == &PortError::Forbidden(
                    "RBAC: tailor may not patch deployments.apps in namespace shop: denied".into(),
                )
            }),
        ];
        for (code, reason, expected) in rows {
            let (cluster, _) = server(move |method, _| {
                if method == "GET" {
                    (200, deployment_json("500m"))
                } else {
                    (code, status(code, reason, "denied"))
                }
            })
            .await;
            let err = cluster.apply(&resource_patch()).await.expect_err("refused");
            assert!(expected(&err), "{code}: {err:?}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable() {
        let url = "http://127.0.0.1:9".parse().expect("valid url");
        let client = Client::try_from(kube::Config::new(url)).expect("client");
        let cluster = KubeCluster::new(client, KubeOptions::default());
        let err = cluster.rollout_status(&web()).await.expect_err("refused");
        assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn workloads_skip_unreadable_ones_and_read_namespace_switches() {
        let (cluster, _) = server(|_, path| {
            let list = |items: Vec<Value>| json!({"metadata": {}, "items": items});
            match path {
                "/api/v1/namespaces" => (
                    200,
                    list(vec![json!({"metadata": {"name": "shop", "annotations": {"tailor.dev/paused": "true"}}})]),
                ),
                "/apis/apps/v1/deployments" => {
                    let mut bad = deployment_json("lots");
                    bad["metadata"]["name"] = json!("bad");
                    (200, list(vec![deployment_json("500m"), bad]))
                }
                "/apis/tailor.dev/v1alpha1/recommendations" => (
                    200,
                    list(vec![json!({"apiVersion": "tailor.dev/v1alpha1", "kind": "Recommendation",
                        "metadata": {"name": "deployment-web", "namespace": "shop",
                                     "annotations": {"tailor.dev/approved": "fp-9"}},
                        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}})]),
                ),
                _ => (200, list(vec![])),
            }
        })
        .await;
        let views = cluster.workloads().await.expect("listed");
        assert_eq!(views.len(), 1);
        let v = &views[0];
        assert_eq!(v.workload, web());
        assert!(v.paused && v.ready && !v.rolling_out);
        assert_eq!(v.approved_change.as_deref(), Some("fp-9"));
        assert_eq!(v.containers[0].1.cpu_request, Some(MilliCores(500)));
    }

    fn record() -> RolloutRecord {
        let change = Change {
            id: "c-1".into(),
            fingerprint: "fp-1".into(),
            workload: web(),
            containers: vec![ContainerChange {
                container: "app".into(),
                from: Resources {
                    cpu_request: Some(MilliCores(500)),
                    memory_request: Some(Bytes::mib(256)),
                    ..Resources::default()
                },
                to: Resources {
                    cpu_request: Some(MilliCores(250)),
                    memory_request: Some(Bytes::mib(256)),
                    ..Resources::default()
                },
            }],
            reason: ChangeReason::Savings,
            savings_per_month_usd: 3.5,
            fast_path: false,
        };
        RolloutRecord::new(change, 1_717_718_400)
    }

    #[tokio::test]
    async fn save_creates_the_recommendation_then_writes_status_and_load_reads_it() {
        let (cluster, seen) = server(|method, _| match method {
            "GET" => (404, status(404, "NotFound", "not found")),
            _ => (
                201,
                json!({"apiVersion": "tailor.dev/v1alpha1", "kind": "Recommendation",
                       "metadata": {"name": "deployment-web", "namespace": "shop"},
                       "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}),
            ),
        })
        .await;
        cluster.save_rollout(&record()).await.expect("saved");
        let seen = seen.lock().expect("not poisoned").clone();
        let calls: Vec<(&str, &str)> = seen.iter().map(|s| (s.0.as_str(), s.1.as_str())).collect();
        assert_eq!(
            calls[0],
            (
                "GET",
                "/apis/tailor.dev/v1alpha1/namespaces/shop/recommendations/deployment-web"
            )
        );
        assert_eq!(calls[1].0, "POST");
        assert_eq!(
            seen[1].3["spec"]["targetRef"],
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
        );
        assert_eq!(calls[2].0, "PATCH");
        assert!(calls[2].1.starts_with(
            "/apis/tailor.dev/v1alpha1/namespaces/shop/recommendations/deployment-web/status?"
        ));
        assert_eq!(seen[2].2, "application/merge-patch+json");
        let status = &seen[2].3["status"];
        assert_eq!(status["phase"], "planned");
        assert_eq!(status["changeId"], "c-1");
        assert_eq!(status["fingerprint"], "fp-1");
        assert_eq!(
            status["containers"][0]["previous"],
            json!({"cpuRequestMillicores": 500, "memoryRequestBytes": 268435456})
        );
        let rollout = status["rollout"].clone();

        let (cluster, _) = server(move |_, _| {
            (200, json!({"metadata": {}, "items": [
                {"apiVersion": "tailor.dev/v1alpha1", "kind": "Recommendation",
                 "metadata": {"name": "deployment-web", "namespace": "shop"},
                 "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
                 "status": {"phase": "planned", "rollout": rollout}},
                {"apiVersion": "tailor.dev/v1alpha1", "kind": "Recommendation",
                 "metadata": {"name": "deployment-old", "namespace": "shop"},
                 "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "old"}},
                 "status": {"phase": "planned", "rollout": {"not": "a record"}}}
            ]}))
        })
        .await;
        assert_eq!(cluster.load_rollouts().await, Ok(vec![record()]));
    }

    #[tokio::test]
    async fn events_are_recorded_on_the_workload() {
        let (cluster, seen) = server(|_, _| (201, json!({"metadata": {"name": "web.1"}}))).await;
        let event = AgentEvent {
            at: 0,
            workload: web(),
            change_id: Some("c-1".into()),
            kind: EventKind::Reverted,
            message: "é".repeat(600),
            detail: None,
        };
        cluster.record_event(&event).await.expect("recorded");
        let seen = seen.lock().expect("not poisoned").clone();
        assert_eq!(seen[0].0, "POST");
        assert!(
            seen[0]
                .1
                .starts_with("/apis/events.k8s.io/v1/namespaces/shop/events")
        );
        let body = &seen[0].3;
        assert_eq!(body["reason"], "Reverted");
        assert_eq!(body["type"], "Warning");
        assert_eq!(body["action"], "Revert");
        assert_eq!(body["reportingController"], "tailor.dev/agent");
        assert_eq!(
            body["regarding"],
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop"})
        );
        assert_eq!(body["note"].as_str().map(str::len), Some(1024));
        let time = body["eventTime"].as_str().expect("event time");
        assert_eq!(time.len(), "2025-01-01T00:00:00.000000Z".len(), "{time}");
    }

    #[tokio::test]
    async fn server_version_and_revert_to_last_known_good() {
        let (cluster, seen) = server(|method, path| match (method, path) {
            (_, "/version") => (200, json!({"major": "1", "minor": "33+", "gitVersion": "v1.33.1",
                "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": ""})),
            ("GET", _) => {
                let mut d = deployment_json("250m");
                d["metadata"]["annotations"] = json!({"tailor.dev/last-known-good": r#"{"app":{"cpuRequestMillicores":500}}"#});
                (200, d)
            }
            _ => (200, deployment_json("500m")),
        })
        .await;
        assert_eq!(cluster.server_version().await, Ok((1, 33)));
        cluster
            .revert_to_last_known_good(&web())
            .await
            .expect("reverted");
        let seen = seen.lock().expect("not poisoned").clone();
        let body = &seen[2].3;
        assert_eq!(
            body[3],
            json!({"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "500m"})
        );
    }

    #[test]
    fn the_kubelet_refusing_a_resize_is_read_from_its_condition() {
        let pending = |reason: &str, since: i64| PodState {
            name: "web-1".into(),
            pending: Some(view::ResizePending {
                reason: reason.into(),
                message: "no room".into(),
                since: Some(since),
            }),
            ..PodState::default()
        };
        assert_eq!(
            resize_refused(&[pending("Infeasible", 100)], 100, 300),
            Some("pod web-1: the kubelet found the resize infeasible (no room)".into())
        );
        assert_eq!(resize_refused(&[pending("Deferred", 100)], 400, 300), None);
        assert_eq!(
            resize_refused(&[pending("Deferred", 100)], 401, 300),
            Some("pod web-1: the resize was deferred for more than 300 s (no room)".into())
        );
        assert_eq!(resize_refused(&[PodState::default()], 0, 300), None);
    }
}
