//! Renders `tailor backtest`: the recommendations made as of T (a
//! [`Report`]) next to what their values would have met in the replay after
//! T (a [`Backtest`]), as a table, JSON or YAML (contract in
//! `docs/backtest.md`, schema version [`BACKTEST_SCHEMA_VERSION`]), CSV,
//! Markdown or the HTML review page.

use std::io;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::contract::{
    PricingDocument, ReportDocument, ResourcesDocument, cents, finite, timestamp, to_io,
};
use super::review::{node_pool_of, recommendation_id, team_of};
use super::review_text::wrap;
use super::{Format, MIN_TABLE_WIDTH, RenderOptions, Report, cells, strip_credentials};
use crate::backtest::{Backtest, ContainerReplay, Exposure};
use crate::recommend::Recommendation;

/// Bumped when a field is renamed, removed or changes type or meaning.
pub const BACKTEST_SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestDocument {
    pub schema_version: u32,
    pub generated_at: String,
    /// The recommendation instant T.
    pub at: String,
    pub history_seconds: u64,
    pub horizon_seconds: i64,
    pub step_seconds: i64,
    pub source: String,
    /// Queries of the recommendation, then of the replay.
    pub queries: u64,
    pub replay_queries: u64,
    pub pricing: PricingDocument,
    pub totals: BacktestTotalsDocument,
    pub containers: Vec<ContainerReplayDocument>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestTotalsDocument {
    pub containers: u64,
    pub containers_with_oom_kills: u64,
    pub pod_hours: Option<f64>,
    pub saved_usd: Option<f64>,
    pub savings_per_month_usd: Option<f64>,
    pub observed_oom_kills: u64,
    pub observed_restarts: u64,
    pub current: ExposureDocument,
    pub recommended: ExposureDocument,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureDocument {
    pub memory_over_limit_samples: Option<u64>,
    pub would_be_oom_kills: Option<u64>,
    pub memory_over_request_samples: Option<u64>,
    pub cpu_over_limit_seconds: Option<i64>,
    pub cpu_over_request_seconds: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerReplayDocument {
    pub namespace: String,
    pub workload_kind: String,
    pub workload: String,
    pub container: String,
    pub id: Option<String>,
    pub team: Option<String>,
    pub node_pool: Option<String>,
    pub current: ResourcesDocument,
    pub recommended: ResourcesDocument,
    pub savings_per_month_usd: Option<f64>,
    pub skipped_reason: Option<String>,
    pub pod_hours: Option<f64>,
    pub saved_usd: Option<f64>,
    pub cpu_samples: u64,
    pub memory_samples: u64,
    pub cpu_max_millicores: Option<u64>,
    pub memory_max_bytes: Option<u64>,
    pub observed_oom_kills: u32,
    pub observed_restarts: u32,
    pub exposure_current: ExposureDocument,
    pub exposure_recommended: ExposureDocument,
}

impl From<&Exposure> for ExposureDocument {
    fn from(e: &Exposure) -> Self {
        ExposureDocument {
            memory_over_limit_samples: e.memory_over_limit_samples,
            would_be_oom_kills: e.oom_kills,
            memory_over_request_samples: e.memory_over_request_samples,
            cpu_over_limit_seconds: e.cpu_over_limit_seconds,
            cpu_over_request_seconds: e.cpu_over_request_seconds,
        }
    }
}

fn hours(h: f64) -> Option<f64> {
    finite((h * 100.0).round() / 100.0)
}

/// The recommendations in report order, each with its replay.
pub fn rows<'a>(
    report: &'a Report,
    backtest: &'a Backtest,
) -> Vec<(&'a Recommendation, Option<&'a ContainerReplay>)> {
    report
        .sorted_recommendations()
        .into_iter()
        .map(|rec| (rec, backtest.replay_of(&rec.target)))
        .collect()
}

impl BacktestDocument {
    pub fn new(report: &Report, backtest: &Backtest) -> BacktestDocument {
        let report_doc = ReportDocument::from(report);
        let totals = backtest.totals();
        BacktestDocument {
            schema_version: BACKTEST_SCHEMA_VERSION,
            generated_at: report_doc.generated_at,
            at: timestamp(DateTime::<Utc>::from_timestamp(backtest.at, 0).unwrap_or(report.at)),
            history_seconds: report.history_seconds,
            horizon_seconds: backtest.horizon_s,
            step_seconds: backtest.step_s,
            source: strip_credentials(&report.source),
            queries: report.queries,
            replay_queries: backtest.queries,
            pricing: report_doc.pricing,
            totals: BacktestTotalsDocument {
                containers: totals.containers,
                containers_with_oom_kills: totals.containers_with_oom_kills,
                pod_hours: hours(totals.pod_hours),
                saved_usd: cents(totals.saved_usd),
                savings_per_month_usd: report_doc.totals.savings_per_month_usd,
                observed_oom_kills: totals.observed_oom_kills,
                observed_restarts: totals.observed_restarts,
                current: ExposureDocument::from(&totals.current),
                recommended: ExposureDocument::from(&totals.recommended),
            },
            containers: rows(report, backtest)
                .into_iter()
                .map(|(rec, replay)| {
                    let empty = ContainerReplay {
                        target: rec.target.clone(),
                        cpu_samples: 0,
                        memory_samples: 0,
                        cpu_max_millicores: None,
                        memory_max_bytes: None,
                        current: Exposure::default(),
                        recommended: Exposure::default(),
                        observed_oom_kills: 0,
                        observed_restarts: 0,
                        pod_hours: 0.0,
                        saved_usd: 0.0,
                    };
                    let r = replay.unwrap_or(&empty);
                    ContainerReplayDocument {
                        namespace: rec.target.workload.namespace.clone(),
                        workload_kind: rec.target.workload.kind.as_str().to_string(),
                        workload: rec.target.workload.name.clone(),
                        container: rec.target.container.clone(),
                        id: recommendation_id(&rec.target.workload),
                        team: team_of(report, rec),
                        node_pool: node_pool_of(report, rec),
                        current: ResourcesDocument::from(&rec.current),
                        recommended: ResourcesDocument::from(&rec.recommended),
                        savings_per_month_usd: cents(rec.savings_per_month_usd),
                        skipped_reason: rec.skipped_reason.clone(),
                        pod_hours: hours(r.pod_hours),
                        saved_usd: cents(r.saved_usd),
                        cpu_samples: r.cpu_samples,
                        memory_samples: r.memory_samples,
                        cpu_max_millicores: r.cpu_max_millicores.map(|m| m.ceil() as u64),
                        memory_max_bytes: r.memory_max_bytes.map(|b| b.ceil() as u64),
                        observed_oom_kills: r.observed_oom_kills,
                        observed_restarts: r.observed_restarts,
                        exposure_current: ExposureDocument::from(&r.current),
                        exposure_recommended: ExposureDocument::from(&r.recommended),
                    }
                })
                .collect(),
        }
    }
}

/// CSV columns, public API (`docs/backtest.md`); only ever appended to.
pub const BACKTEST_COLUMNS: [&str; 36] = [
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "id",
    "team",
    "node_pool",
    "current_cpu_request_millicores",
    "current_cpu_limit_millicores",
    "current_memory_request_bytes",
    "current_memory_limit_bytes",
    "recommended_cpu_request_millicores",
    "recommended_cpu_limit_millicores",
    "recommended_memory_request_bytes",
    "recommended_memory_limit_bytes",
    "savings_per_month_usd",
    "skipped_reason",
    "pod_hours",
    "saved_usd",
    "cpu_samples",
    "memory_samples",
    "cpu_max_millicores",
    "memory_max_bytes",
    "observed_oom_kills",
    "observed_restarts",
    "current_memory_over_limit_samples",
    "current_would_be_oom_kills",
    "current_memory_over_request_samples",
    "current_cpu_over_limit_seconds",
    "current_cpu_over_request_seconds",
    "recommended_memory_over_limit_samples",
    "recommended_would_be_oom_kills",
    "recommended_memory_over_request_samples",
    "recommended_cpu_over_limit_seconds",
    "recommended_cpu_over_request_seconds",
    "replay_horizon_seconds",
];

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

fn exposure_cells(e: &ExposureDocument) -> [String; 5] {
    [
        opt(e.memory_over_limit_samples),
        opt(e.would_be_oom_kills),
        opt(e.memory_over_request_samples),
        opt(e.cpu_over_limit_seconds),
        opt(e.cpu_over_request_seconds),
    ]
}

fn write_csv(doc: &BacktestDocument, out: &mut impl io::Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(BACKTEST_COLUMNS)?;
    for c in &doc.containers {
        let mut cells = vec![
            c.namespace.clone(),
            c.workload_kind.clone(),
            c.workload.clone(),
            c.container.clone(),
            opt(c.id.clone()),
            opt(c.team.clone()),
            opt(c.node_pool.clone()),
        ];
        for r in [&c.current, &c.recommended] {
            cells.extend([
                opt(r.cpu_request_millicores),
                opt(r.cpu_limit_millicores),
                opt(r.memory_request_bytes),
                opt(r.memory_limit_bytes),
            ]);
        }
        cells.extend([
            c.savings_per_month_usd
                .map_or_else(String::new, |usd| format!("{usd:.2}")),
            opt(c.skipped_reason.clone()),
            opt(c.pod_hours),
            c.saved_usd
                .map_or_else(String::new, |usd| format!("{usd:.2}")),
            c.cpu_samples.to_string(),
            c.memory_samples.to_string(),
            opt(c.cpu_max_millicores),
            opt(c.memory_max_bytes),
            c.observed_oom_kills.to_string(),
            c.observed_restarts.to_string(),
        ]);
        cells.extend(exposure_cells(&c.exposure_current));
        cells.extend(exposure_cells(&c.exposure_recommended));
        cells.push(doc.horizon_seconds.to_string());
        writer.write_record(cells)?;
    }
    writer.flush()
}

/// Pod-seconds as pod-hours for people: `1.5h`, `-` when not applicable.
pub fn pod_hours_cell(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".to_string(),
        Some(0) => "0".to_string(),
        Some(s) => format!("{:.1}h", s as f64 / 3600.0),
    }
}

fn count_cell(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// The lines under the table and the Markdown summary share.
pub fn summary_lines(report: &Report, backtest: &Backtest) -> Vec<String> {
    let t = backtest.totals();
    let at = DateTime::<Utc>::from_timestamp(backtest.at, 0).unwrap_or(report.at);
    vec![
        format!(
            "Recommended at {} from {} of history, replayed over the next {} at {} steps",
            at.format("%Y-%m-%d %H:%M UTC"),
            cells::duration(report.history_seconds),
            cells::duration(backtest.horizon_s.max(0) as u64),
            cells::duration(backtest.step_s.max(0) as u64),
        ),
        format!(
            "Would-be OOM kills: {} with the recommended values (in {} of {} containers), {} with the values at T; observed: {}",
            count_cell(t.recommended.oom_kills),
            t.containers_with_oom_kills,
            t.containers,
            count_cell(t.current.oom_kills),
            t.observed_oom_kills,
        ),
        format!(
            "Memory samples over the limit: {} recommended, {} at T; over the request: {} recommended, {} at T",
            count_cell(t.recommended.memory_over_limit_samples),
            count_cell(t.current.memory_over_limit_samples),
            count_cell(t.recommended.memory_over_request_samples),
            count_cell(t.current.memory_over_request_samples),
        ),
        format!(
            "CPU above the request: {} recommended, {} at T; above the limit: {} recommended, {} at T (pod-hours)",
            pod_hours_cell(t.recommended.cpu_over_request_seconds),
            pod_hours_cell(t.current.cpu_over_request_seconds),
            pod_hours_cell(t.recommended.cpu_over_limit_seconds),
            pod_hours_cell(t.current.cpu_over_limit_seconds),
        ),
        format!(
            "Saved over the replay: {} in {:.1} pod-hours ({}/mo at T)",
            cells::signed_dollars(t.saved_usd),
            t.pod_hours,
            cells::signed_dollars(report.totals().savings_per_month_usd),
        ),
        format!(
            "Source: {}, {} queries to recommend + {} to replay",
            strip_credentials(&report.source),
            report.queries,
            backtest.queries
        ),
    ]
}

fn write_table(
    report: &Report,
    backtest: &Backtest,
    out: &mut impl io::Write,
    options: &RenderOptions,
) -> io::Result<()> {
    let width = options.width.max(MIN_TABLE_WIDTH);
    let header = [
        "WORKLOAD",
        "CONTAINER",
        "OOM",
        "MEM>LIM",
        "CPU>REQ",
        "CPU>LIM",
        "SAVED",
    ];
    let mut table_rows: Vec<[String; 7]> = Vec::new();
    for (rec, replay) in rows(report, backtest) {
        let e = replay.map(|r| r.recommended).unwrap_or_default();
        table_rows.push([
            cells::workload(rec),
            rec.target.container.clone(),
            count_cell(e.oom_kills),
            count_cell(e.memory_over_limit_samples),
            pod_hours_cell(e.cpu_over_request_seconds),
            pod_hours_cell(e.cpu_over_limit_seconds),
            replay.map_or_else(|| "-".to_string(), |r| cells::signed_amount(r.saved_usd)),
        ]);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &table_rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Numbers keep their width; the names share what is left.
    let numbers: usize = widths[2..].iter().sum::<usize>() + 2 * (header.len() - 1);
    let names = width.saturating_sub(numbers).max(20);
    widths[1] = widths[1].min(names / 3).max(9);
    widths[0] = widths[0].min(names.saturating_sub(widths[1])).max(8);
    let line = |cells_: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells_.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let cell = cells::truncate_middle(cell, *w);
            if i < 2 {
                text.push_str(&format!("{cell:<w$}"));
            } else {
                text.push_str(&format!("{cell:>w$}"));
            }
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header.map(str::to_string)))?;
    for row in &table_rows {
        writeln!(out, "{}", line(row))?;
    }
    writeln!(out)?;
    let legend = "Columns are for the recommended values: OOM = would-be OOM kills, \
                  MEM>LIM = memory samples over the limit, CPU>REQ / CPU>LIM = pod-hours \
                  above the request / limit, SAVED = $ over the replay";
    for text in std::iter::once(legend.to_string()).chain(summary_lines(report, backtest)) {
        for line in wrap(&text, width) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

fn write_markdown(
    report: &Report,
    backtest: &Backtest,
    out: &mut impl io::Write,
) -> io::Result<()> {
    writeln!(out, "## Backtest")?;
    writeln!(out)?;
    for text in summary_lines(report, backtest) {
        writeln!(out, "- {text}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| Workload | Container | Would-be OOM kills | Memory samples over limit | CPU above request | CPU above limit | Saved | Observed OOM kills |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|")?;
    for (rec, replay) in rows(report, backtest) {
        let e = replay.map(|r| r.recommended).unwrap_or_default();
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cells::workload(rec).replace('|', "\\|"),
            rec.target.container.replace('|', "\\|"),
            count_cell(e.oom_kills),
            count_cell(e.memory_over_limit_samples),
            pod_hours_cell(e.cpu_over_request_seconds),
            pod_hours_cell(e.cpu_over_limit_seconds),
            replay.map_or_else(|| "-".to_string(), |r| cells::signed_dollars(r.saved_usd)),
            replay.map_or(0, |r| r.observed_oom_kills),
        )?;
    }
    Ok(())
}

/// Writes a backtest in `format`.
pub fn render(
    report: &Report,
    backtest: &Backtest,
    format: Format,
    out: &mut impl io::Write,
    options: &RenderOptions,
) -> io::Result<()> {
    match format {
        Format::Table => write_table(report, backtest, out, options),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &BacktestDocument::new(report, backtest))
                .map_err(to_io)?;
            out.write_all(b"\n")
        }
        Format::Yaml => {
            serde_yaml_ng::to_writer(&mut *out, &BacktestDocument::new(report, backtest))
                .map_err(to_io)
        }
        Format::Csv => write_csv(&BacktestDocument::new(report, backtest), out),
        Format::Markdown => write_markdown(report, backtest, out),
        Format::Html => super::html::write(
            report,
            Some(super::html::BacktestView { report, backtest }),
            out,
        ),
    }
}
