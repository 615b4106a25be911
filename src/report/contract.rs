//! The JSON and YAML output contract, schema version [`SCHEMA_VERSION`],
//! documented field by field in `docs/output.md`.
//!
//! These structs are the contract: each field is written out by name here
//! and filled by hand from the internal types, so an internal rename fails to
//! compile instead of silently renaming a public field. Additive changes keep
//! the version; renaming, removing or retyping a field bumps it.
//!
//! Floats that are not finite (NaN, ±∞) are written as `null` in both JSON
//! and YAML, so the two formats always parse to the same value.

use std::io;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::review::{approve_command, node_pool_of, recommendation_id, team_of};
use super::{HOURS_PER_MONTH, Report, round_cents, strip_credentials};
use crate::domain::Resources;
use crate::recommend::{ConfidenceLevel, Evidence, Recommendation};

/// Bumped when a field is renamed, removed or changes type or meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportDocument {
    pub schema_version: u32,
    /// RFC 3339, UTC, whole seconds.
    pub generated_at: String,
    pub at: String,
    pub history_seconds: u64,
    pub source: String,
    pub queries: u64,
    pub pricing: PricingDocument,
    pub totals: TotalsDocument,
    pub skipped_series: Vec<SkippedSeriesDocument>,
    pub recommendations: Vec<RecommendationDocument>,
    /// What `tailor report` adds; null from `tailor recommend`.
    pub review: Option<ReviewDocument>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PricingDocument {
    pub cpu_core_hour_usd: Option<f64>,
    pub memory_gib_hour_usd: Option<f64>,
    pub hours_per_month: f64,
    /// Where the default prices come from; null from `tailor recommend`.
    pub source: Option<String>,
    pub node_pools: Vec<NodePoolDocument>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodePoolDocument {
    pub name: String,
    pub cpu_core_hour_usd: Option<f64>,
    pub memory_gib_hour_usd: Option<f64>,
    pub source: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewDocument {
    /// `guardrails.mode` of the config.
    pub mode: String,
    pub team_label: Option<String>,
    pub node_pool_label: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDocument {
    /// `needs-approval`, `fast-path`, `skipped` or `not-managed`.
    pub status: String,
    pub fingerprint: Option<String>,
    pub command: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TotalsDocument {
    pub containers: u64,
    pub recommended: u64,
    pub skipped: u64,
    pub current_cpu_request_millicores: u64,
    pub recommended_cpu_request_millicores: u64,
    pub current_memory_request_bytes: u64,
    pub recommended_memory_request_bytes: u64,
    pub current_cost_per_month_usd: Option<f64>,
    pub recommended_cost_per_month_usd: Option<f64>,
    pub savings_per_month_usd: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedSeriesDocument {
    pub reason: String,
    pub count: u64,
}

/// One container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendationDocument {
    pub namespace: String,
    pub workload_kind: String,
    pub workload: String,
    pub container: String,
    pub current: ResourcesDocument,
    pub recommended: ResourcesDocument,
    pub confidence: ConfidenceDocument,
    pub savings_per_month_usd: Option<f64>,
    pub evidence: EvidenceDocument,
    pub skipped_reason: Option<String>,
    /// The Recommendation approvals are recorded on (`namespace/kind-name`);
    /// null for kinds tailor does not change.
    pub id: Option<String>,
    pub team: Option<String>,
    pub node_pool: Option<String>,
    pub approval: Option<ApprovalDocument>,
}

/// Requests and limits; `None` (null) means not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcesDocument {
    pub cpu_request_millicores: Option<u64>,
    pub cpu_limit_millicores: Option<u64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceDocument {
    pub score: Option<f64>,
    pub level: ConfidenceLevelDocument,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfidenceLevelDocument {
    None,
    Low,
    Medium,
    High,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceDocument {
    pub replicas: u32,
    pub history_hours: Option<f64>,
    pub coverage: Option<f64>,
    pub cpu_samples: u64,
    pub memory_samples: u64,
    pub cpu_p50_millicores: Option<u64>,
    pub cpu_p90_millicores: Option<u64>,
    pub cpu_p95_millicores: Option<u64>,
    pub cpu_p99_millicores: Option<u64>,
    pub cpu_max_millicores: Option<u64>,
    pub cpu_busiest_hour_millicores: Option<u64>,
    pub memory_peak_percentile_bytes: Option<u64>,
    pub memory_max_bytes: Option<u64>,
    pub startup_cpu_max_millicores: Option<u64>,
    pub startup_memory_max_bytes: Option<u64>,
    pub cpu_throttled_ratio: Option<f64>,
    pub oom_kills: u32,
    pub restarts: u32,
    pub notes: Vec<String>,
}

impl From<&Report> for ReportDocument {
    fn from(report: &Report) -> Self {
        let totals = report.totals();
        ReportDocument {
            schema_version: SCHEMA_VERSION,
            generated_at: timestamp(report.generated_at),
            at: timestamp(report.at),
            history_seconds: report.history_seconds,
            source: strip_credentials(&report.source),
            queries: report.queries,
            pricing: PricingDocument {
                cpu_core_hour_usd: finite(report.pricing.cpu_core_hour_usd),
                memory_gib_hour_usd: finite(report.pricing.memory_gib_hour_usd),
                hours_per_month: HOURS_PER_MONTH,
                source: report.review.as_ref().map(|r| r.pricing_source.clone()),
                node_pools: report
                    .review
                    .iter()
                    .flat_map(|r| &r.node_pools)
                    .map(|pool| NodePoolDocument {
                        name: pool.name.clone(),
                        cpu_core_hour_usd: finite(pool.pricing.cpu_core_hour_usd),
                        memory_gib_hour_usd: finite(pool.pricing.memory_gib_hour_usd),
                        source: pool.source.clone(),
                    })
                    .collect(),
            },
            totals: TotalsDocument {
                containers: totals.containers,
                recommended: totals.recommended,
                skipped: totals.skipped,
                current_cpu_request_millicores: totals.current_cpu_request.0,
                recommended_cpu_request_millicores: totals.recommended_cpu_request.0,
                current_memory_request_bytes: totals.current_memory_request.0,
                recommended_memory_request_bytes: totals.recommended_memory_request.0,
                current_cost_per_month_usd: cents(totals.current_cost_per_month_usd),
                recommended_cost_per_month_usd: cents(totals.recommended_cost_per_month_usd),
                savings_per_month_usd: cents(totals.savings_per_month_usd),
            },
            skipped_series: report
                .skipped_series
                .iter()
                .map(|s| SkippedSeriesDocument {
                    reason: s.reason.clone(),
                    count: s.count,
                })
                .collect(),
            recommendations: report
                .sorted_recommendations()
                .into_iter()
                .map(|rec| {
                    let mut doc = RecommendationDocument::from(rec);
                    doc.team = team_of(report, rec);
                    doc.node_pool = node_pool_of(report, rec);
                    doc.approval = report
                        .review
                        .as_ref()
                        .and_then(|r| r.workloads.get(&rec.target.workload))
                        .and_then(|w| w.approval.as_ref())
                        .map(|approval| ApprovalDocument {
                            status: approval.status().to_string(),
                            fingerprint: approval.fingerprint().map(str::to_string),
                            command: approve_command(&rec.target.workload),
                            detail: approval.detail(),
                        });
                    doc
                })
                .collect(),
            review: report.review.as_ref().map(|r| ReviewDocument {
                mode: r.mode.as_str().to_string(),
                team_label: r.team_label.clone(),
                node_pool_label: r.node_pool_label.clone(),
            }),
        }
    }
}

impl From<&Recommendation> for RecommendationDocument {
    fn from(rec: &Recommendation) -> Self {
        RecommendationDocument {
            namespace: rec.target.workload.namespace.clone(),
            workload_kind: rec.target.workload.kind.as_str().to_string(),
            workload: rec.target.workload.name.clone(),
            container: rec.target.container.clone(),
            current: ResourcesDocument::from(&rec.current),
            recommended: ResourcesDocument::from(&rec.recommended),
            confidence: ConfidenceDocument {
                score: finite(rec.confidence.score),
                level: ConfidenceLevelDocument::from(rec.confidence.level),
            },
            savings_per_month_usd: cents(rec.savings_per_month_usd),
            evidence: EvidenceDocument::from(&rec.evidence),
            skipped_reason: rec.skipped_reason.clone(),
            id: recommendation_id(&rec.target.workload),
            team: None,
            node_pool: None,
            approval: None,
        }
    }
}

impl From<&Resources> for ResourcesDocument {
    fn from(r: &Resources) -> Self {
        ResourcesDocument {
            cpu_request_millicores: r.cpu_request.map(|m| m.0),
            cpu_limit_millicores: r.cpu_limit.map(|m| m.0),
            memory_request_bytes: r.memory_request.map(|b| b.0),
            memory_limit_bytes: r.memory_limit.map(|b| b.0),
        }
    }
}

impl From<ConfidenceLevel> for ConfidenceLevelDocument {
    fn from(level: ConfidenceLevel) -> Self {
        match level {
            ConfidenceLevel::None => ConfidenceLevelDocument::None,
            ConfidenceLevel::Low => ConfidenceLevelDocument::Low,
            ConfidenceLevel::Medium => ConfidenceLevelDocument::Medium,
            ConfidenceLevel::High => ConfidenceLevelDocument::High,
        }
    }
}

impl ConfidenceLevelDocument {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfidenceLevelDocument::None => "none",
            ConfidenceLevelDocument::Low => "low",
            ConfidenceLevelDocument::Medium => "medium",
            ConfidenceLevelDocument::High => "high",
        }
    }
}

impl From<&Evidence> for EvidenceDocument {
    fn from(e: &Evidence) -> Self {
        EvidenceDocument {
            replicas: e.replicas,
            history_hours: finite(e.history_hours),
            coverage: finite(e.coverage),
            cpu_samples: e.cpu_samples,
            memory_samples: e.memory_samples,
            cpu_p50_millicores: e.cpu_p50_millicores,
            cpu_p90_millicores: e.cpu_p90_millicores,
            cpu_p95_millicores: e.cpu_p95_millicores,
            cpu_p99_millicores: e.cpu_p99_millicores,
            cpu_max_millicores: e.cpu_max_millicores,
            cpu_busiest_hour_millicores: e.cpu_busiest_hour_millicores,
            memory_peak_percentile_bytes: e.memory_peak_percentile_bytes,
            memory_max_bytes: e.memory_max_bytes,
            startup_cpu_max_millicores: e.startup_cpu_max_millicores,
            startup_memory_max_bytes: e.startup_memory_max_bytes,
            cpu_throttled_ratio: e.cpu_throttled_ratio.and_then(finite),
            oom_kills: e.oom_kills,
            restarts: e.restarts,
            notes: e.notes.clone(),
        }
    }
}

pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

pub(super) fn cents(usd: f64) -> Option<f64> {
    finite(round_cents(usd))
}

pub(super) fn to_io(err: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(err)
}

/// Pretty-printed JSON followed by a newline.
pub fn write_json(report: &Report, out: &mut impl io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &ReportDocument::from(report)).map_err(to_io)?;
    out.write_all(b"\n")
}

pub fn write_yaml(report: &Report, out: &mut impl io::Write) -> io::Result<()> {
    serde_yaml_ng::to_writer(&mut *out, &ReportDocument::from(report)).map_err(to_io)
}
