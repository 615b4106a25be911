//! The text table for terminals: one line per container, an indented
//! sub-line for limit changes and skip reasons, then a totals footer. Every
//! line fits `RenderOptions::width` (down to [`MIN_TABLE_WIDTH`]).

use std::io;

use super::cells;
use super::{MIN_TABLE_WIDTH, RenderOptions, Report, strip_credentials};
use crate::recommend::Recommendation;

const GAP: &str = "  ";
/// Widest value cells before they are cut; real values fit well inside
/// (`1500m→1250m`, `~953.7Mi→512Mi`, `+12345.67`).
const MAX_CPU_WIDTH: usize = 13;
const MAX_MEMORY_WIDTH: usize = 17;
const MAX_SAVINGS_WIDTH: usize = 10;
const SUB_LINE_INDENT: &str = "  ";

struct Row {
    workload: String,
    container: String,
    cpu: String,
    memory: String,
    savings: String,
    limits: Option<String>,
    skip: Option<String>,
}

impl Row {
    fn new(rec: &Recommendation) -> Row {
        let skipped = rec.skipped_reason.is_some();
        Row {
            workload: cells::workload(rec),
            container: rec.target.container.clone(),
            cpu: cells::cpu_request_change(rec),
            memory: cells::memory_request_change(rec),
            // A skipped container has nothing to save; a blank reads better
            // than a zero next to the skip reason.
            savings: if skipped {
                String::new()
            } else {
                cells::signed_amount(rec.savings_per_month_usd)
            },
            limits: cells::limits_change(&rec.current, &rec.recommended)
                .map(|limits| format!("limits: {limits}")),
            skip: rec
                .skipped_reason
                .as_ref()
                .map(|reason| format!("skip: {}", cells::one_line(reason))),
        }
    }
}

struct Widths {
    workload: usize,
    container: usize,
    cpu: usize,
    memory: usize,
    savings: usize,
}

impl Widths {
    fn fit(rows: &[Row], width: usize) -> Widths {
        let natural = |header: &str, cell: fn(&Row) -> &str| {
            rows.iter()
                .map(|row| cell(row).chars().count())
                .chain([header.chars().count()])
                .max()
                .unwrap_or(0)
        };
        let cpu = natural("CPU", |r| r.cpu.as_str()).min(MAX_CPU_WIDTH);
        let memory = natural("MEMORY", |r| r.memory.as_str()).min(MAX_MEMORY_WIDTH);
        let savings = natural("$/MO", |r| r.savings.as_str()).min(MAX_SAVINGS_WIDTH);
        let names = width.saturating_sub(cpu + memory + savings + 4 * GAP.len());
        let workload_natural = natural("WORKLOAD", |r| r.workload.as_str());
        let container_natural = natural("CONTAINER", |r| r.container.as_str());
        // Containers get up to a third of the name space, workloads the
        // rest; whichever needs less gives its share back.
        let container = container_natural.min("CONTAINER".len().max(names / 3));
        let workload = workload_natural.min(names.saturating_sub(container));
        let container = container_natural.min(names.saturating_sub(workload));
        Widths {
            workload,
            container,
            cpu,
            memory,
            savings,
        }
    }

    fn line(
        &self,
        workload: &str,
        container: &str,
        cpu: &str,
        memory: &str,
        savings: &str,
    ) -> String {
        let line = format!(
            "{:<ww$}{GAP}{:<cw$}{GAP}{:<pw$}{GAP}{:<mw$}{GAP}{:>sw$}",
            cells::truncate_middle(workload, self.workload),
            cells::truncate_middle(container, self.container),
            cells::truncate_end(cpu, self.cpu),
            cells::truncate_end(memory, self.memory),
            cells::truncate_end(savings, self.savings),
            ww = self.workload,
            cw = self.container,
            pw = self.cpu,
            mw = self.memory,
            sw = self.savings,
        );
        line.trim_end().to_string()
    }
}

pub(super) fn write(
    report: &Report,
    out: &mut impl io::Write,
    options: &RenderOptions,
) -> io::Result<()> {
    let width = options.width.max(MIN_TABLE_WIDTH);
    let rows: Vec<Row> = report
        .sorted_recommendations()
        .into_iter()
        .map(Row::new)
        .collect();

    if rows.is_empty() {
        writeln!(out, "No containers to report.")?;
    } else {
        let widths = Widths::fit(&rows, width);
        writeln!(
            out,
            "{}",
            widths.line("WORKLOAD", "CONTAINER", "CPU", "MEMORY", "$/MO")
        )?;
        for row in &rows {
            writeln!(
                out,
                "{}",
                widths.line(
                    &row.workload,
                    &row.container,
                    &row.cpu,
                    &row.memory,
                    &row.savings
                )
            )?;
            for sub_line in [&row.limits, &row.skip].into_iter().flatten() {
                let room = width - SUB_LINE_INDENT.len();
                writeln!(
                    out,
                    "{SUB_LINE_INDENT}{}",
                    cells::truncate_end(sub_line, room)
                )?;
            }
        }
    }

    writeln!(out)?;
    for line in footer(report) {
        writeln!(
            out,
            "{}",
            cells::truncate_end(&cells::one_line(&line), width)
        )?;
    }
    Ok(())
}

fn footer(report: &Report) -> Vec<String> {
    let totals = report.totals();
    let mut lines = vec![
        format!(
            "Total: {}/mo → {}/mo, savings {}/mo",
            cells::dollars(totals.current_cost_per_month_usd),
            cells::dollars(totals.recommended_cost_per_month_usd),
            cells::signed_dollars(totals.savings_per_month_usd),
        ),
        format!(
            "Requests × replicas: CPU {}, memory {}",
            cells::change(
                totals.current_cpu_request.to_string(),
                totals.recommended_cpu_request.to_string()
            ),
            cells::change(
                cells::memory(Some(totals.current_memory_request)),
                cells::memory(Some(totals.recommended_memory_request))
            ),
        ),
        format!(
            "Containers: {} ({} recommended, {} skipped) at {}",
            totals.containers,
            totals.recommended,
            totals.skipped,
            report.at.format("%Y-%m-%d %H:%M UTC"),
        ),
        format!(
            "Source: {}, {} queries, {} history",
            strip_credentials(&report.source),
            report.queries,
            cells::duration(report.history_seconds),
        ),
    ];
    if !report.skipped_series.is_empty() {
        lines.push(format!(
            "Skipped series: {}",
            cells::skipped_series(&report.skipped_series)
        ));
    }
    lines
}
