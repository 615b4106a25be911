//! The ports the agent is written against. The real cluster (kube-rs), the
//! real metrics backend (Prometheus) and the simulator each implement them,
//! so the same control loop runs in production and in `tailor simulate`.
//!
//! Decisions never happen behind a port: adapters only read and write.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::domain::{Resources, WorkloadRef};
use crate::guard::{ResourceSample, SliSample};
use crate::plan::{Change, Mode, WorkloadView};
use crate::recommend::Recommendation;
use crate::rollout::{RolloutRecord, VerdictRecord};

/// Why a port call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PortError {
    /// The object changed since we read it (JSON Patch `test` failed, 409,
    /// 422): re-read and re-plan, never overwrite.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Worth retrying later (timeouts, 5xx, backend down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// The current time, in unix seconds. Virtual in the simulator.
pub trait Clock {
    fn now(&self) -> i64;
}

/// A change to the resources of some containers of one workload: each
/// container's values must still be `expect` (optimistic concurrency), and
/// become `set`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourcePatch {
    pub workload: WorkloadRef,
    pub containers: Vec<ContainerPatch>,
    /// The change id, recorded on the workload for humans and for recovery.
    pub change_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerPatch {
    pub container: String,
    pub expect: Resources,
    pub set: Resources,
}

/// How far a workload's rollout has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutStatus {
    pub replicas: u32,
    /// Pods running the current template.
    pub updated: u32,
    pub available: u32,
    /// The controller gave up (progress deadline exceeded).
    pub failed: bool,
}

impl RolloutStatus {
    pub fn complete(&self) -> bool {
        !self.failed && self.updated >= self.replicas && self.available >= self.replicas
    }
}

/// Something worth telling people and recording on the workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    pub at: i64,
    pub workload: WorkloadRef,
    pub change_id: Option<String>,
    pub kind: EventKind,
    pub message: String,
    /// The numbers behind `message`, for notifications. Absent on events
    /// recorded before it existed, and on events with nothing to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<EventDetail>,
}

/// What an event is about, in numbers: what changed from what to what, the
/// verdict's evidence, the hold, or what troubles the agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EventDetail {
    Change(Box<ChangeDetail>),
    Trouble(TroubleDetail),
}

/// A change at the moment of the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeDetail {
    /// Containers before → after, the reason, the estimated $/month.
    pub change: Change,
    /// For proposals: the workload's mode, which made it a proposal rather
    /// than a change (`approve`: it waits for a human's approval).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// The SLO guard's verdict with its findings (confirm, revert).
    #[serde(default)]
    pub verdict: Option<VerdictRecord>,
    /// Why the change was reverted or abandoned.
    #[serde(default)]
    pub reason: Option<String>,
    /// When the regression (or stuck rollout) was first seen.
    #[serde(default)]
    pub regression_seen_at: Option<i64>,
    #[serde(default)]
    pub reverted_at: Option<i64>,
    /// The workload is left alone until then (after a revert).
    #[serde(default)]
    pub held_until: Option<i64>,
}

impl ChangeDetail {
    /// A change as a proposal (`mode`: why it was not applied).
    pub fn proposed(change: &Change, mode: Mode) -> Self {
        ChangeDetail {
            mode: Some(mode),
            ..ChangeDetail::of(change)
        }
    }

    /// A change as its rollout record has it now.
    pub fn from_record(record: &RolloutRecord) -> Self {
        ChangeDetail {
            verdict: record.verdict.clone(),
            reason: record.reason.clone(),
            regression_seen_at: record.regression_seen_at,
            reverted_at: record.reverted_at,
            held_until: record.held_until,
            ..ChangeDetail::of(&record.change)
        }
    }

    /// A change with nothing known about it yet beyond itself.
    pub fn of(change: &Change) -> Self {
        ChangeDetail {
            change: change.clone(),
            mode: None,
            verdict: None,
            reason: None,
            regression_seen_at: None,
            reverted_at: None,
            held_until: None,
        }
    }
}

/// Something keeps the agent from working.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TroubleDetail {
    pub problem: Trouble,
    /// When the trouble started (unix seconds).
    pub since: i64,
    /// The last error, as the adapter reported it.
    pub error: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trouble {
    /// The metrics backend has not answered since `since`.
    MetricsUnreachable,
    /// It answers again (after a `MetricsUnreachable`).
    MetricsRecovered,
    /// The Kubernetes API refused a call (RBAC).
    Forbidden,
}

/// What a periodic digest is made of: the latest recommendations and the
/// proposals of the last plan, each with the mode that kept it a proposal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Digest {
    pub at: i64,
    /// `guardrails.mode`.
    pub mode: Mode,
    pub recommendations: Vec<Recommendation>,
    /// Mode `approve`: waits for a human's approval; `observe`: shown only;
    /// `auto`: held back by the in-flight limit or the rate budget.
    pub proposals: Vec<(Change, Mode)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Proposed,
    Applied,
    RolledOut,
    Confirmed,
    Reverting,
    Reverted,
    Skipped,
    Conflict,
    FastPath,
    LeakSuspected,
    Trouble,
}

/// The cluster: workloads, patches, rollouts, durable rollout state, events.
pub trait Cluster {
    fn workloads(&self) -> impl Future<Output = Result<Vec<WorkloadView>, PortError>>;
    fn apply(&self, patch: &ResourcePatch) -> impl Future<Output = Result<(), PortError>>;
    fn rollout_status(
        &self,
        workload: &WorkloadRef,
    ) -> impl Future<Output = Result<RolloutStatus, PortError>>;
    /// Every rollout record the agent persisted that is not finished yet,
    /// plus recent finished ones (for cooldowns and holds).
    fn load_rollouts(&self) -> impl Future<Output = Result<Vec<RolloutRecord>, PortError>>;
    fn save_rollout(&self, record: &RolloutRecord) -> impl Future<Output = Result<(), PortError>>;
    fn record_event(&self, event: &AgentEvent) -> impl Future<Output = Result<(), PortError>>;
    /// Shows a workload's recommendation where people review it (the
    /// Recommendation resource): values, savings, and the proposal to
    /// approve. Clusters without such a place ignore it.
    fn publish(&self, publication: &Publication) -> impl Future<Output = Result<(), PortError>> {
        let _ = publication;
        async { Ok(()) }
    }
}

/// One workload's recommendation as published for review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub workload: WorkloadRef,
    /// `observing`, `proposed` or `held`; `None` leaves the phase to the
    /// rollout record of tailor's latest change.
    pub phase: Option<String>,
    /// Per container, its latest recommendation.
    pub containers: Vec<Recommendation>,
    /// $/month the recommendation saves (negative: it costs).
    pub savings_per_month_usd: f64,
    /// The change proposed for approval: its id and fingerprint.
    pub proposal: Option<(String, String)>,
    /// Why nothing is proposed, when something holds it back.
    pub reason: Option<String>,
}

impl Publication {
    /// Whether `other` would show people the same thing: evidence counts
    /// and sub-cent savings move every refresh without changing the story.
    pub fn shows_the_same(&self, other: &Publication) -> bool {
        let cents = |usd: f64| (usd * 100.0).round() as i64;
        let visible = |r: &Recommendation| {
            (
                r.target.clone(),
                r.current,
                r.recommended,
                r.confidence.level,
                r.skipped_reason.clone(),
            )
        };
        self.workload == other.workload
            && self.phase == other.phase
            && self.proposal == other.proposal
            && self.reason == other.reason
            && cents(self.savings_per_month_usd) == cents(other.savings_per_month_usd)
            && self
                .containers
                .iter()
                .map(visible)
                .eq(other.containers.iter().map(visible))
    }
}

/// Recommendations from usage history, as of `now`.
pub trait UsageSource {
    /// Every container's recommendation.
    fn recommendations(
        &self,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Recommendation>, PortError>>;
    /// Recommendations only for containers with news in `(since, now]` that
    /// must not wait for the next full refresh: OOM kills, heavy throttling.
    fn urgent(
        &self,
        since: i64,
        now: i64,
    ) -> impl Future<Output = Result<Vec<Recommendation>, PortError>>;
}

/// SLIs and resource signals of a workload over `(from, to]`.
pub trait SloSource {
    /// `Ok(None)`: no SLI is configured for this workload.
    fn slis(
        &self,
        workload: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Option<Vec<SliSample>>, PortError>>;
    fn resource_signals(
        &self,
        workload: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<ResourceSample>, PortError>>;
}

/// Tells people; must never block the loop.
pub trait Notifier {
    fn notify(&self, event: &AgentEvent);
    /// The periodic digest (observe and approve modes). Dropped by default.
    fn digest(&self, _digest: &Digest) {}
}

/// An SLO source with no SLI configured and no resource signal seen
/// (tests that drive the agent itself).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSlis;

impl SloSource for NoSlis {
    async fn slis(
        &self,
        _w: &WorkloadRef,
        _from: i64,
        _to: i64,
    ) -> Result<Option<Vec<SliSample>>, PortError> {
        Ok(None)
    }
    async fn resource_signals(
        &self,
        _w: &WorkloadRef,
        _from: i64,
        _to: i64,
    ) -> Result<Vec<ResourceSample>, PortError> {
        Ok(Vec::new())
    }
}

/// A notifier that drops everything (recommend-only runs, tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Notifier for Silent {
    fn notify(&self, _event: &AgentEvent) {}
}
