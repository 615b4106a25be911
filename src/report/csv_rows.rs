//! CSV for spreadsheets: a header, then one row per container with the
//! contract's values flattened (`current_cpu_request_millicores`, …). A null
//! in the JSON contract is an empty cell here, and costs per container are
//! added for sums in a spreadsheet. Columns are public API, listed in
//! `docs/output.md`; new columns are only ever appended.

use std::io;

use super::contract::{RecommendationDocument, ReportDocument, ResourcesDocument};
use super::{Report, monthly_cost_usd};

pub const COLUMNS: [&str; 43] = [
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "replicas",
    "current_cpu_request_millicores",
    "current_cpu_limit_millicores",
    "current_memory_request_bytes",
    "current_memory_limit_bytes",
    "recommended_cpu_request_millicores",
    "recommended_cpu_limit_millicores",
    "recommended_memory_request_bytes",
    "recommended_memory_limit_bytes",
    "confidence_score",
    "confidence_level",
    "savings_per_month_usd",
    "skipped_reason",
    "history_hours",
    "coverage",
    "cpu_samples",
    "memory_samples",
    "cpu_p50_millicores",
    "cpu_p90_millicores",
    "cpu_p95_millicores",
    "cpu_p99_millicores",
    "cpu_max_millicores",
    "cpu_busiest_hour_millicores",
    "memory_peak_percentile_bytes",
    "memory_max_bytes",
    "startup_cpu_max_millicores",
    "startup_memory_max_bytes",
    "cpu_throttled_ratio",
    "oom_kills",
    "restarts",
    "notes",
    "id",
    "team",
    "node_pool",
    "current_cost_per_month_usd",
    "recommended_cost_per_month_usd",
    "approval_status",
    "approval_fingerprint",
    "approve_command",
];

pub(super) fn write(report: &Report, out: &mut impl io::Write) -> io::Result<()> {
    let document = ReportDocument::from(report);
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(COLUMNS)?;
    // The document lists containers in report order, like this.
    for (doc, rec) in document
        .recommendations
        .iter()
        .zip(report.sorted_recommendations())
    {
        let pricing = report.pricing_for(rec);
        let cost = |r| {
            format!(
                "{:.2}",
                monthly_cost_usd(r, rec.evidence.cost_replicas(), &pricing)
            )
        };
        let mut cells = row(doc);
        let approval = doc.approval.as_ref();
        cells.extend([
            doc.id.clone().unwrap_or_default(),
            doc.team.clone().unwrap_or_default(),
            doc.node_pool.clone().unwrap_or_default(),
            cost(&rec.current),
            cost(&rec.recommended),
            approval.map(|a| a.status.clone()).unwrap_or_default(),
            approval
                .and_then(|a| a.fingerprint.clone())
                .unwrap_or_default(),
            approval.and_then(|a| a.command.clone()).unwrap_or_default(),
        ]);
        writer.write_record(cells)?;
    }
    writer.flush()
}

fn row(rec: &RecommendationDocument) -> Vec<String> {
    let e = &rec.evidence;
    let mut cells = vec![
        rec.namespace.clone(),
        rec.workload_kind.clone(),
        rec.workload.clone(),
        rec.container.clone(),
        e.replicas.to_string(),
    ];
    cells.extend(resources(&rec.current));
    cells.extend(resources(&rec.recommended));
    cells.extend([
        opt(rec.confidence.score),
        rec.confidence.level.as_str().to_string(),
        rec.savings_per_month_usd
            .map_or_else(String::new, |usd| format!("{usd:.2}")),
        rec.skipped_reason.clone().unwrap_or_default(),
        opt(e.history_hours),
        opt(e.coverage),
        e.cpu_samples.to_string(),
        e.memory_samples.to_string(),
        opt(e.cpu_p50_millicores),
        opt(e.cpu_p90_millicores),
        opt(e.cpu_p95_millicores),
        opt(e.cpu_p99_millicores),
        opt(e.cpu_max_millicores),
        opt(e.cpu_busiest_hour_millicores),
        opt(e.memory_peak_percentile_bytes),
        opt(e.memory_max_bytes),
        opt(e.startup_cpu_max_millicores),
        opt(e.startup_memory_max_bytes),
        opt(e.cpu_throttled_ratio),
        e.oom_kills.to_string(),
        e.restarts.to_string(),
        e.notes.join("; "),
    ]);
    cells
}

fn resources(r: &ResourcesDocument) -> [String; 4] {
    [
        opt(r.cpu_request_millicores),
        opt(r.cpu_limit_millicores),
        opt(r.memory_request_bytes),
        opt(r.memory_limit_bytes),
    ]
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}
