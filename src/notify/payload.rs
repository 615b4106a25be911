//! The notification payload, schema version [`SCHEMA_VERSION`]: what the
//! generic webhook receives as JSON (`docs/webhook.schema.json`), and what
//! the Slack and Teams renderers turn into messages.
//!
//! Like the report's JSON contract, these structs are written out field by
//! field and filled by hand from the internal types, so an internal rename
//! fails to compile instead of renaming a public field. Every field is
//! always present (`null` when it does not apply). Additive changes keep
//! the version; renaming, removing or retyping a field bumps it.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};

use super::config::{LinkTemplate, NotifyEvent};
use crate::domain::{Resources, WorkloadRef};
use crate::guard::Verdict;
use crate::plan::{Change, ChangeReason, Mode};
use crate::ports::{AgentEvent, ChangeDetail, Digest, EventDetail, Trouble, TroubleDetail};
use crate::report::round_cents;

/// Bumped when a field is renamed, removed or changes type or meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// One notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub schema_version: u32,
    /// Unique per notification, the same on every retry of it: receivers
    /// drop a second delivery of an id they have seen.
    pub id: String,
    pub event: NotifyEvent,
    /// RFC 3339, UTC, whole seconds: when it happened.
    pub at: String,
    /// `prometheus.cluster`, when set.
    pub cluster: Option<String>,
    /// One short line: what happened and to what.
    pub title: String,
    /// One sentence with the numbers.
    pub summary: String,
    /// Sent by `tailor notify test`: a sample, nothing happened.
    pub test: bool,
    pub workload: Option<WorkloadDocument>,
    pub change: Option<ChangeDocument>,
    pub verdict: Option<VerdictDocument>,
    pub revert: Option<RevertDocument>,
    pub trouble: Option<TroubleDocument>,
    pub digest: Option<DigestDocument>,
    pub links: Vec<LinkDocument>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadDocument {
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, …
    pub kind: String,
    pub name: String,
}

/// A change: applied, proposed, confirmed or reverted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeDocument {
    pub id: String,
    /// What a human approves (`tailor.dev/approved` on the Recommendation).
    pub fingerprint: String,
    /// `oom-kill`, `throttling`, `increase` or `savings`.
    pub reason: String,
    /// Made at once (OOM kills, heavy throttling), outside the limits.
    pub fast_path: bool,
    /// Estimated; negative when the change costs more.
    pub savings_per_month_usd: f64,
    /// For proposals: `observe`, `approve` or `auto` (held back by a limit).
    pub mode: Option<String>,
    /// A proposal that waits for a human's approval.
    pub awaiting_approval: bool,
    /// The command that approves it, for proposals awaiting approval.
    pub approve_command: Option<String>,
    pub containers: Vec<ContainerChangeDocument>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerChangeDocument {
    pub container: String,
    pub before: ResourcesDocument,
    pub after: ResourcesDocument,
}

/// CPU in millicores, memory in bytes; `null`: not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcesDocument {
    pub cpu_request_millicores: Option<u64>,
    pub cpu_limit_millicores: Option<u64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

/// The SLO guard's verdict and every number it was made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerdictDocument {
    /// `healthy`, `breach` or `no_data`.
    pub verdict: String,
    pub at: String,
    pub summary: String,
    pub findings: Vec<FindingDocument>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingDocument {
    /// `error ratio`, `p95 latency`, `p99 latency`, `OOM kills`, …
    pub signal: String,
    /// Baseline and bake values, in the signal's unit (a ratio, seconds, a count).
    pub baseline: Option<f64>,
    pub observed: Option<f64>,
    /// The value `observed` had to cross to breach.
    pub threshold: Option<f64>,
    pub p_value: Option<f64>,
    pub breach: bool,
    pub message: String,
}

/// Why a change was reverted, and how long the workload is left alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertDocument {
    pub reason: String,
    pub regression_seen_at: Option<String>,
    pub reverted_at: Option<String>,
    pub held_until: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TroubleDocument {
    /// `metrics-unreachable`, `metrics-recovered` or `forbidden`.
    pub problem: String,
    pub since: String,
    pub error: String,
}

/// The periodic digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigestDocument {
    /// `guardrails.mode`.
    pub mode: String,
    /// Workloads whose recommendations save money.
    pub workloads_with_savings: u64,
    /// Sum over those workloads: what the recommendations would save.
    pub total_savings_per_month_usd: f64,
    /// Sum over workloads whose recommendations cost more (under-provisioned).
    pub total_extra_cost_per_month_usd: f64,
    /// The workloads that save the most, largest first.
    pub top: Vec<DigestWorkloadDocument>,
    /// The proposals of the last plan; approve-mode ones wait for a human.
    pub proposals: Vec<ProposalDocument>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigestWorkloadDocument {
    pub workload: WorkloadDocument,
    pub savings_per_month_usd: f64,
    /// Current → recommended requests and limits.
    pub containers: Vec<ContainerChangeDocument>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProposalDocument {
    pub workload: WorkloadDocument,
    pub change: ChangeDocument,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDocument {
    pub name: String,
    pub url: String,
}

/// What every payload needs beyond its event.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    pub cluster: Option<String>,
    pub links: Vec<LinkTemplate>,
    /// Workloads in the digest's top list.
    pub digest_top: usize,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            cluster: None,
            links: Vec::new(),
            digest_top: super::config::DigestConfig::default().top,
        }
    }
}

/// RFC 3339, UTC, whole seconds.
pub fn timestamp(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn money(v: f64) -> f64 {
    if v.is_finite() { round_cents(v) } else { 0.0 }
}

fn workload_document(w: &WorkloadRef) -> WorkloadDocument {
    WorkloadDocument {
        namespace: w.namespace.clone(),
        kind: w.kind.as_str().to_string(),
        name: w.name.clone(),
    }
}

fn resources_document(r: &Resources) -> ResourcesDocument {
    ResourcesDocument {
        cpu_request_millicores: r.cpu_request.map(|m| m.0),
        cpu_limit_millicores: r.cpu_limit.map(|m| m.0),
        memory_request_bytes: r.memory_request.map(|b| b.0),
        memory_limit_bytes: r.memory_limit.map(|b| b.0),
    }
}

fn reason_text(reason: ChangeReason) -> &'static str {
    match reason {
        ChangeReason::OomKill => "oom-kill",
        ChangeReason::Throttling => "throttling",
        ChangeReason::Increase => "increase",
        ChangeReason::Savings => "savings",
    }
}

/// `tailor approve` for a workload.
pub fn approve_command(w: &WorkloadRef) -> String {
    format!(
        "tailor approve {}/{}/{}",
        w.namespace,
        w.kind.as_str().to_lowercase(),
        w.name
    )
}

fn change_document(change: &Change, mode: Option<Mode>) -> ChangeDocument {
    let awaiting = mode == Some(Mode::Approve);
    ChangeDocument {
        id: change.id.clone(),
        fingerprint: change.fingerprint.clone(),
        reason: reason_text(change.reason).to_string(),
        fast_path: change.fast_path,
        savings_per_month_usd: money(change.savings_per_month_usd),
        mode: mode.map(|m| m.as_str().to_string()),
        awaiting_approval: awaiting,
        approve_command: awaiting.then(|| approve_command(&change.workload)),
        containers: change
            .containers
            .iter()
            .map(|c| ContainerChangeDocument {
                container: c.container.clone(),
                before: resources_document(&c.from),
                after: resources_document(&c.to),
            })
            .collect(),
    }
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Healthy => "healthy",
        Verdict::Breach => "breach",
        Verdict::NoData => "no_data",
    }
}

fn trouble_text(t: Trouble) -> &'static str {
    match t {
        Trouble::MetricsUnreachable => "metrics-unreachable",
        Trouble::MetricsRecovered => "metrics-recovered",
        Trouble::Forbidden => "forbidden",
    }
}

/// `app: cpu 2→500m, memory 4Gi→1Gi`, one per container.
pub fn container_lines(containers: &[ContainerChangeDocument]) -> Vec<String> {
    containers
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c.container,
                describe_resources(&c.before, &c.after)
            )
        })
        .collect()
}

/// [`container_lines`], `; `-separated.
pub fn describe_containers(containers: &[ContainerChangeDocument]) -> String {
    container_lines(containers).join("; ")
}

/// `cpu 2→500m, memory 4Gi→1Gi` (requests), with limits when they move.
pub fn describe_resources(before: &ResourcesDocument, after: &ResourcesDocument) -> String {
    let cpu = |m: Option<u64>| {
        m.map_or("none".to_string(), |m| {
            crate::units::MilliCores(m).to_string()
        })
    };
    let mem = |b: Option<u64>| b.map_or("none".to_string(), |b| crate::units::Bytes(b).to_string());
    let pair = |a: String, b: String| if a == b { a } else { format!("{a}→{b}") };
    let mut text = format!(
        "cpu {}, memory {}",
        pair(
            cpu(before.cpu_request_millicores),
            cpu(after.cpu_request_millicores)
        ),
        pair(
            mem(before.memory_request_bytes),
            mem(after.memory_request_bytes)
        )
    );
    let mut limits = Vec::new();
    if before.cpu_limit_millicores != after.cpu_limit_millicores {
        limits.push(format!(
            "cpu {}",
            pair(
                cpu(before.cpu_limit_millicores),
                cpu(after.cpu_limit_millicores)
            )
        ));
    }
    if before.memory_limit_bytes != after.memory_limit_bytes {
        limits.push(format!(
            "memory {}",
            pair(
                mem(before.memory_limit_bytes),
                mem(after.memory_limit_bytes)
            )
        ));
    }
    if !limits.is_empty() {
        text.push_str(&format!(" (limits: {})", limits.join(", ")));
    }
    text
}

/// `+$12.34/month` or `-$5.00/month`.
pub fn dollars(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "+" };
    format!("{sign}${:.2}/month", v.abs())
}

fn link_values<'a>(
    cluster: &'a Option<String>,
    workload: Option<&'a WorkloadRef>,
    change_id: Option<&'a str>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |p: &str| match p {
        "namespace" => workload.map(|w| w.namespace.clone()),
        "kind" => workload.map(|w| w.kind.as_str().to_string()),
        "name" => workload.map(|w| w.name.clone()),
        "change_id" => change_id.map(str::to_string),
        "cluster" => cluster.clone(),
        _ => None,
    }
}

fn title(event: &AgentEvent) -> String {
    let w = &event.workload;
    let change = match &event.detail {
        Some(EventDetail::Change(c)) => Some(&c.change),
        _ => None,
    };
    match event.kind {
        crate::ports::EventKind::Proposed => format!("Change proposed for {w}"),
        crate::ports::EventKind::Applied => format!("Change applied to {w}"),
        crate::ports::EventKind::FastPath => match change.map(|c| c.reason) {
            Some(ChangeReason::OomKill) => format!("Memory raised after OOM kills: {w}"),
            Some(ChangeReason::Throttling) => format!("CPU raised under heavy throttling: {w}"),
            _ => format!("Urgent increase applied to {w}"),
        },
        crate::ports::EventKind::RolledOut => format!("Change rolled out on {w}, baking"),
        crate::ports::EventKind::Confirmed => format!("Change confirmed on {w}"),
        crate::ports::EventKind::Reverting => format!("Reverting the change on {w}"),
        crate::ports::EventKind::Reverted => format!("Change reverted on {w}"),
        crate::ports::EventKind::Skipped => format!("Skipped {w}"),
        crate::ports::EventKind::Conflict => format!("Change abandoned on {w}"),
        crate::ports::EventKind::LeakSuspected => format!("Memory leak suspected: {w} is held"),
        crate::ports::EventKind::Trouble => match &event.detail {
            Some(EventDetail::Trouble(t)) => match t.problem {
                Trouble::MetricsUnreachable => {
                    let minutes = (event.at - t.since).max(0) / 60;
                    format!("The metrics backend has been unreachable for {minutes} min")
                }
                Trouble::MetricsRecovered => "The metrics backend answers again".to_string(),
                Trouble::Forbidden => "The Kubernetes API denied a call (RBAC)".to_string(),
            },
            _ => "tailor is in trouble".to_string(),
        },
    }
}

impl Payload {
    /// The payload of an agent event.
    pub fn from_event(event: &AgentEvent, context: &Context, id: String) -> Payload {
        let mut change = None;
        let mut verdict = None;
        let mut revert = None;
        let mut trouble = None;
        match &event.detail {
            Some(EventDetail::Change(detail)) => {
                let ChangeDetail {
                    change: c,
                    mode,
                    verdict: v,
                    reason,
                    regression_seen_at,
                    reverted_at,
                    held_until,
                } = detail.as_ref();
                change = Some(change_document(c, *mode));
                verdict = v.as_ref().map(|v| VerdictDocument {
                    verdict: verdict_text(v.verdict).to_string(),
                    at: timestamp(v.at),
                    summary: v.summary.clone(),
                    findings: v
                        .evaluation
                        .findings
                        .iter()
                        .map(|f| FindingDocument {
                            signal: f.signal.to_string(),
                            baseline: finite(f.baseline),
                            observed: finite(f.observed),
                            threshold: finite(f.threshold),
                            p_value: f.p_value.and_then(finite),
                            breach: f.breach,
                            message: f.message.clone(),
                        })
                        .collect(),
                });
                let reverting = matches!(
                    event.kind,
                    crate::ports::EventKind::Reverting | crate::ports::EventKind::Reverted
                );
                if reverting || reverted_at.is_some() {
                    revert = Some(RevertDocument {
                        reason: reason.clone().unwrap_or_default(),
                        regression_seen_at: regression_seen_at.map(timestamp),
                        reverted_at: reverted_at.map(timestamp),
                        held_until: held_until.map(timestamp),
                    });
                }
            }
            Some(EventDetail::Trouble(TroubleDetail {
                problem,
                since,
                error,
            })) => {
                trouble = Some(TroubleDocument {
                    problem: trouble_text(*problem).to_string(),
                    since: timestamp(*since),
                    error: error.clone(),
                });
            }
            None => {}
        }
        let values = link_values(
            &context.cluster,
            Some(&event.workload),
            event.change_id.as_deref(),
        );
        Payload {
            schema_version: SCHEMA_VERSION,
            id,
            event: event.kind.into(),
            at: timestamp(event.at),
            cluster: context.cluster.clone(),
            title: title(event),
            summary: event.message.clone(),
            test: false,
            workload: Some(workload_document(&event.workload)),
            change,
            verdict,
            revert,
            trouble,
            digest: None,
            links: super::links::render(&context.links, &values),
        }
    }

    /// The payload of a digest: the `context.digest_top` workloads that save
    /// the most, the totals, and the proposals.
    pub fn from_digest(digest: &Digest, context: &Context, id: String) -> Payload {
        let document = digest_document(digest, context.digest_top);
        let awaiting = document
            .proposals
            .iter()
            .filter(|p| p.change.awaiting_approval)
            .count();
        let title = format!(
            "tailor digest: {} available across {} workloads",
            dollars(document.total_savings_per_month_usd),
            document.workloads_with_savings
        );
        let summary = format!(
            "{} workloads could save {}; {} would cost {} more; {} proposals, {awaiting} awaiting approval (mode {}).",
            document.workloads_with_savings,
            dollars(document.total_savings_per_month_usd),
            if document.total_extra_cost_per_month_usd > 0.0 {
                "under-provisioned ones"
            } else {
                "none"
            },
            dollars(document.total_extra_cost_per_month_usd),
            document.proposals.len(),
            document.mode
        );
        let values = link_values(&context.cluster, None, None);
        Payload {
            schema_version: SCHEMA_VERSION,
            id,
            event: NotifyEvent::Digest,
            at: timestamp(digest.at),
            cluster: context.cluster.clone(),
            title,
            summary,
            test: false,
            workload: None,
            change: None,
            verdict: None,
            revert: None,
            trouble: None,
            digest: Some(document),
            links: super::links::render(&context.links, &values),
        }
    }
}

/// Sums recommendations per workload and keeps the `top` that save most.
pub fn digest_document(digest: &Digest, top: usize) -> DigestDocument {
    let mut per_workload: BTreeMap<&WorkloadRef, (f64, Vec<ContainerChangeDocument>)> =
        BTreeMap::new();
    for r in &digest.recommendations {
        if r.skipped_reason.is_some() || !r.savings_per_month_usd.is_finite() {
            continue;
        }
        let entry = per_workload.entry(&r.target.workload).or_default();
        entry.0 += r.savings_per_month_usd;
        entry.1.push(ContainerChangeDocument {
            container: r.target.container.clone(),
            before: resources_document(&r.current),
            after: resources_document(&r.recommended),
        });
    }
    let mut saving: Vec<(&WorkloadRef, f64, Vec<ContainerChangeDocument>)> = Vec::new();
    let mut extra_cost = 0.0;
    for (w, (usd, containers)) in per_workload {
        let usd = round_cents(usd);
        if usd > 0.0 {
            saving.push((w, usd, containers));
        } else if usd < 0.0 {
            extra_cost -= usd;
        }
    }
    let total: f64 = saving.iter().map(|(_, usd, _)| usd).sum();
    let workloads_with_savings = saving.len() as u64;
    saving.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    saving.truncate(top);
    let mut proposals: Vec<&(Change, Mode)> = digest.proposals.iter().collect();
    // Those waiting for a human first, then by savings.
    proposals.sort_by(|a, b| {
        (b.1 == Mode::Approve)
            .cmp(&(a.1 == Mode::Approve))
            .then_with(|| {
                b.0.savings_per_month_usd
                    .total_cmp(&a.0.savings_per_month_usd)
            })
            .then_with(|| a.0.workload.cmp(&b.0.workload))
    });
    DigestDocument {
        mode: digest.mode.as_str().to_string(),
        workloads_with_savings,
        total_savings_per_month_usd: money(total),
        total_extra_cost_per_month_usd: money(extra_cost),
        top: saving
            .into_iter()
            .map(|(w, usd, containers)| DigestWorkloadDocument {
                workload: workload_document(w),
                savings_per_month_usd: usd,
                containers,
            })
            .collect(),
        proposals: proposals
            .into_iter()
            .map(|(change, mode)| ProposalDocument {
                workload: workload_document(&change.workload),
                change: change_document(change, Some(*mode)),
            })
            .collect(),
    }
}
