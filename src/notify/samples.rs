//! One sample of each notification, as `tailor notify test` sends them
//! (marked `"test": true`) and as the tests and the docs show them. The
//! numbers are made up but consistent: what a real event would carry.

use crate::domain::{ContainerRef, Resources, WorkloadKind, WorkloadRef};
use crate::guard::{Evaluation, Finding, Signal, Verdict};
use crate::plan::{Change, ChangeReason, ContainerChange, Mode};
use crate::ports::{
    AgentEvent, ChangeDetail, Digest, EventDetail, EventKind, Trouble, TroubleDetail,
};
use crate::recommend::{Confidence, ConfidenceLevel, Evidence, Recommendation};
use crate::rollout::VerdictRecord;
use crate::units::{Bytes, MilliCores};

use super::config::NotifyEvent;
use super::payload::{Context, Payload};

fn workload(namespace: &str, name: &str) -> WorkloadRef {
    WorkloadRef {
        namespace: namespace.into(),
        kind: WorkloadKind::Deployment,
        name: name.into(),
    }
}

fn resources(cpu_m: u64, memory_mib: u64, limit_mib: u64) -> Resources {
    Resources {
        cpu_request: Some(MilliCores(cpu_m)),
        cpu_limit: None,
        memory_request: Some(Bytes::mib(memory_mib)),
        memory_limit: Some(Bytes::mib(limit_mib)),
    }
}

fn change(
    w: &WorkloadRef,
    reason: ChangeReason,
    from: Resources,
    to: Resources,
    usd: f64,
) -> Change {
    Change {
        id: "3f9a1c07b2de".into(),
        fingerprint: "a41c9e0d55f2".into(),
        workload: w.clone(),
        containers: vec![ContainerChange {
            container: "app".into(),
            from,
            to,
        }],
        reason,
        savings_per_month_usd: usd,
        fast_path: matches!(reason, ChangeReason::OomKill | ChangeReason::Throttling),
    }
}

fn finding(signal: Signal, baseline: f64, observed: f64, threshold: f64, breach: bool) -> Finding {
    Finding {
        signal,
        baseline,
        observed,
        threshold,
        p_value: Some(if breach { 0.0004 } else { 0.41 }),
        breach,
        message: format!(
            "{signal} {observed:.4} vs baseline {baseline:.4} (breach above {threshold:.4})"
        ),
    }
}

fn verdict(at: i64, breach: bool) -> VerdictRecord {
    let findings = if breach {
        vec![
            finding(Signal::LatencyP99, 0.180, 0.412, 0.198, true),
            finding(Signal::ErrorRatio, 0.0004, 0.0006, 0.0014, false),
        ]
    } else {
        vec![
            finding(Signal::LatencyP99, 0.180, 0.183, 0.198, false),
            finding(Signal::ErrorRatio, 0.0004, 0.0004, 0.0014, false),
        ]
    };
    let evaluation = Evaluation {
        verdict: if breach {
            Verdict::Breach
        } else {
            Verdict::Healthy
        },
        findings,
        skipped: Vec::new(),
        ignored_samples: 0,
        pending: false,
    };
    VerdictRecord {
        at,
        verdict: evaluation.verdict,
        summary: evaluation.summary(),
        evaluation,
    }
}

fn event(
    at: i64,
    w: &WorkloadRef,
    kind: EventKind,
    message: String,
    detail: Option<EventDetail>,
) -> AgentEvent {
    AgentEvent {
        at,
        workload: w.clone(),
        change_id: match &detail {
            Some(EventDetail::Change(c)) => Some(c.change.id.clone()),
            _ => None,
        },
        kind,
        message,
        detail,
    }
}

/// One agent event of each kind a sink receives by default, at `at`.
pub fn events(at: i64) -> Vec<AgentEvent> {
    let web = workload("shop", "web");
    let worker = workload("batch", "worker");
    let saving = change(
        &web,
        ChangeReason::Savings,
        resources(2000, 4096, 4096),
        resources(500, 1536, 1843),
        187.45,
    );
    let oom = change(
        &worker,
        ChangeReason::OomKill,
        resources(500, 512, 512),
        resources(500, 614, 712),
        -8.35,
    );
    let detail = |c: ChangeDetail| Some(EventDetail::Change(Box::new(c)));
    let confirmed = ChangeDetail {
        verdict: Some(verdict(at, false)),
        ..ChangeDetail::of(&saving)
    };
    let bad = verdict(at, true);
    let reverted = ChangeDetail {
        reason: Some(format!("SLO regression: {}", bad.summary)),
        verdict: Some(bad),
        regression_seen_at: Some(at - 180),
        reverted_at: Some(at),
        held_until: Some(at + 7 * 86_400),
        ..ChangeDetail::of(&saving)
    };
    vec![
        event(
            at,
            &web,
            EventKind::Proposed,
            crate::agent::describe(&saving),
            detail(ChangeDetail::proposed(&saving, Mode::Approve)),
        ),
        event(
            at,
            &web,
            EventKind::Applied,
            crate::agent::describe(&saving),
            detail(ChangeDetail::of(&saving)),
        ),
        event(
            at,
            &worker,
            EventKind::FastPath,
            crate::agent::describe(&oom),
            detail(ChangeDetail::of(&oom)),
        ),
        event(
            at,
            &web,
            EventKind::Confirmed,
            format!(
                "confirmed: {}",
                confirmed
                    .verdict
                    .as_ref()
                    .map_or("", |v| v.summary.as_str())
            ),
            detail(confirmed.clone()),
        ),
        event(
            at,
            &web,
            EventKind::Reverted,
            format!("reverted: {}", reverted.reason.clone().unwrap_or_default()),
            detail(reverted),
        ),
        event(
            at,
            &web,
            EventKind::Conflict,
            "not applied: conflict: the workload changed since it was read".into(),
            detail(ChangeDetail {
                reason: Some(
                    "not applied: conflict: the workload changed since it was read".into(),
                ),
                ..ChangeDetail::of(&saving)
            }),
        ),
        event(
            at,
            &worker,
            EventKind::LeakSuspected,
            "leak suspected: memory grew past 3 increases in 24h; not raising it again".into(),
            None,
        ),
        event(
            at,
            &workload("tailor-system", "tailor"),
            EventKind::Trouble,
            "the metrics backend has not answered for 7 minutes: connection refused".into(),
            Some(EventDetail::Trouble(TroubleDetail {
                problem: Trouble::MetricsUnreachable,
                since: at - 7 * 60,
                error: "unavailable: connection refused".into(),
            })),
        ),
        event(
            at,
            &workload("tailor-system", "tailor"),
            EventKind::Trouble,
            "RBAC: tailor may not patch deployments in shop".into(),
            Some(EventDetail::Trouble(TroubleDetail {
                problem: Trouble::Forbidden,
                since: at,
                error: "forbidden: RBAC: tailor may not patch deployments.apps in shop".into(),
            })),
        ),
    ]
}

fn recommendation(
    w: &WorkloadRef,
    current: Resources,
    recommended: Resources,
    usd: f64,
) -> Recommendation {
    Recommendation {
        target: ContainerRef {
            workload: w.clone(),
            container: "app".into(),
        },
        current,
        recommended,
        confidence: Confidence {
            score: 0.9,
            level: ConfidenceLevel::High,
        },
        savings_per_month_usd: usd,
        evidence: Evidence::default(),
        skipped_reason: None,
    }
}

/// A digest in approve mode: three workloads save, one needs more.
pub fn digest(at: i64) -> Digest {
    let web = workload("shop", "web");
    let search = workload("shop", "search");
    let ledger = workload("payments", "ledger");
    let worker = workload("batch", "worker");
    let web_change = change(
        &web,
        ChangeReason::Savings,
        resources(2000, 4096, 4096),
        resources(500, 1536, 1843),
        187.45,
    );
    Digest {
        at,
        mode: Mode::Approve,
        recommendations: vec![
            recommendation(
                &web,
                resources(2000, 4096, 4096),
                resources(500, 1536, 1843),
                187.45,
            ),
            recommendation(
                &ledger,
                resources(2000, 4096, 4096),
                resources(690, 1821, 1836),
                137.76,
            ),
            recommendation(
                &search,
                resources(2000, 2048, 2048),
                resources(350, 1359, 1360),
                101.88,
            ),
            recommendation(
                &worker,
                resources(500, 512, 512),
                resources(350, 593, 615),
                -8.35,
            ),
        ],
        proposals: vec![(web_change, Mode::Approve)],
    }
}

/// Every sample as a payload marked `test`, for the sinks that receive it.
pub fn payloads(at: i64, context: &Context) -> Vec<Payload> {
    let mut out: Vec<Payload> = events(at)
        .iter()
        .map(|e| Payload::from_event(e, context, super::new_id()))
        .collect();
    out.push(Payload::from_digest(&digest(at), context, super::new_id()));
    for p in &mut out {
        p.test = true;
    }
    debug_assert!(out.iter().any(|p| p.event == NotifyEvent::Digest));
    out
}
