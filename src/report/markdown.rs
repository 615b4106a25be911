//! Markdown for pull requests and chat: a summary paragraph, a GitHub table
//! of the containers with a recommendation, and a list of skipped containers
//! with their reasons.

use std::io;

use super::cells;
use super::{Report, strip_credentials};

pub(super) fn write(report: &Report, out: &mut impl io::Write) -> io::Result<()> {
    let totals = report.totals();
    let sorted = report.sorted_recommendations();

    writeln!(out, "## Rightsizing recommendations")?;
    writeln!(out)?;
    writeln!(
        out,
        "{} containers at {} from {} of history ({} queries to {}): {} recommended, {} skipped. \
         Requested cost {}/mo → {}/mo, savings **{}/mo**.",
        totals.containers,
        report.at.format("%Y-%m-%d %H:%M UTC"),
        cells::duration(report.history_seconds),
        report.queries,
        escape(&strip_credentials(&report.source)),
        totals.recommended,
        totals.skipped,
        cells::dollars(totals.current_cost_per_month_usd),
        cells::dollars(totals.recommended_cost_per_month_usd),
        cells::signed_dollars(totals.savings_per_month_usd),
    )?;

    let (skipped, recommended): (Vec<_>, Vec<_>) = sorted
        .into_iter()
        .partition(|rec| rec.skipped_reason.is_some());

    if !recommended.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "| Workload | Container | CPU | Memory | Limits | $/mo |"
        )?;
        writeln!(out, "|---|---|---|---|---|---:|")?;
        for rec in recommended {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                escape(&cells::workload(rec)),
                escape(&rec.target.container),
                cells::cpu_request_change(rec),
                cells::memory_request_change(rec),
                cells::limits_change(&rec.current, &rec.recommended).unwrap_or_default(),
                cells::signed_amount(rec.savings_per_month_usd),
            )?;
        }
    }

    if !skipped.is_empty() {
        writeln!(out)?;
        writeln!(out, "### Skipped")?;
        writeln!(out)?;
        for rec in skipped {
            writeln!(
                out,
                "- {} / {}: {}",
                escape(&cells::workload(rec)),
                escape(&rec.target.container),
                escape(rec.skipped_reason.as_deref().unwrap_or_default()),
            )?;
        }
    }

    if !report.skipped_series.is_empty() {
        writeln!(out)?;
        writeln!(out, "### Skipped series")?;
        writeln!(out)?;
        for series in &report.skipped_series {
            writeln!(out, "- {}: {}", escape(&series.reason), series.count)?;
        }
    }
    Ok(())
}

/// Backslash-escapes the characters that would start Markdown syntax or end
/// a table cell, so free text (skip reasons) renders as written on one line.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in cells::one_line(text).chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
