//! The review sections `tailor report` appends to the table and Markdown
//! formats: what approving each workload means (its Recommendation id, the
//! fingerprint, the command), savings by team, and the prices used.
//! Nothing is written for a report without a review (`tailor recommend`).

use std::io;

use super::cells;
use super::review::{
    Approval, ReviewContext, approve_command, recommendation_id, savings_by, team_of,
};
use super::{MIN_TABLE_WIDTH, PricingSummary, RenderOptions, Report};
use crate::domain::WorkloadRef;
use crate::plan::ContainerChange;

/// `app cpu 2→1500m, memory 4Gi→3Gi; limits: memory 8Gi→6Gi` per container.
pub fn step_text(step: &[ContainerChange]) -> String {
    step.iter()
        .map(|c| {
            let mut parts = Vec::new();
            if c.from.cpu_request != c.to.cpu_request {
                parts.push(format!(
                    "cpu {}",
                    cells::change(cells::cpu(c.from.cpu_request), cells::cpu(c.to.cpu_request))
                ));
            }
            if c.from.memory_request != c.to.memory_request {
                parts.push(format!(
                    "memory {}",
                    cells::change(
                        cells::memory(c.from.memory_request),
                        cells::memory(c.to.memory_request)
                    )
                ));
            }
            if let Some(limits) = cells::limits_change(&c.from, &c.to) {
                parts.push(format!("limits: {limits}"));
            }
            format!("{} {}", c.container, parts.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `$0.04048 per vCPU-hour, $0.004445 per GiB-hour`.
pub fn prices_text(pricing: &PricingSummary) -> String {
    format!(
        "${} per vCPU-hour, ${} per GiB-hour",
        pricing.cpu_core_hour_usd, pricing.memory_gib_hour_usd
    )
}

/// One row per workload with a Recommendation id, in report order.
struct ReviewRow<'a> {
    workload: &'a WorkloadRef,
    id: String,
    approval: &'a Approval,
}

fn rows<'a>(report: &'a Report, review: &'a ReviewContext) -> Vec<ReviewRow<'a>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for rec in report.sorted_recommendations() {
        let workload = &rec.target.workload;
        if !seen.insert(workload) {
            continue;
        }
        let approval = review
            .workloads
            .get(workload)
            .and_then(|w| w.approval.as_ref());
        let (Some(id), Some(approval)) = (recommendation_id(workload), approval) else {
            continue;
        };
        out.push(ReviewRow {
            workload,
            id,
            approval,
        });
    }
    out
}

pub(super) fn write_table(
    report: &Report,
    out: &mut impl io::Write,
    options: &RenderOptions,
) -> io::Result<()> {
    let Some(review) = &report.review else {
        return Ok(());
    };
    let width = options.width.max(MIN_TABLE_WIDTH);
    let mut lines = vec![
        String::new(),
        match review.mode {
            crate::plan::Mode::Approve => {
                "Review (guardrails.mode approve): a change is applied once approved with the command shown".to_string()
            }
            mode => format!(
                "Review (guardrails.mode {}: approvals take effect in approve mode)",
                mode.as_str()
            ),
        },
    ];
    for row in rows(report, review) {
        let mut line = format!("{}  {}", row.id, row.approval.status());
        if let Some(fingerprint) = row.approval.fingerprint() {
            line.push_str(&format!("  fingerprint {fingerprint}"));
        }
        lines.push(line);
        match row.approval {
            Approval::NeedsApproval {
                step,
                savings_per_month_usd,
                ..
            } => {
                lines.push(format!(
                    "  {}  ({}/mo)",
                    step_text(step),
                    cells::signed_dollars(*savings_per_month_usd)
                ));
                if let Some(command) = approve_command(row.workload) {
                    lines.push(format!("  {command}"));
                }
            }
            Approval::FastPath { step, .. } => {
                lines.push(format!("  {}: {}", row.approval.detail(), step_text(step)));
            }
            Approval::Skipped { reason } => lines.push(format!("  {}", cells::one_line(reason))),
            Approval::NotManaged => {}
        }
    }
    if let Some(label) = &review.team_label {
        let teams = savings_by(report, |rec| team_of(report, rec))
            .into_iter()
            .map(|(team, usd)| format!("{team} {}", cells::signed_dollars(usd)))
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!("Savings by team (label {label}): {teams}"));
    }
    lines.push(format!(
        "Prices: {} ({})",
        prices_text(&report.pricing),
        review.pricing_source
    ));
    for pool in &review.node_pools {
        lines.push(format!(
            "Node pool {}: {}{}",
            pool.name,
            prices_text(&pool.pricing),
            pool.source
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ));
    }
    for text in lines {
        if text.is_empty() {
            writeln!(out)?;
        }
        let indent = text.len() - text.trim_start().len();
        for line in wrap(&text, width.saturating_sub(indent)) {
            writeln!(out, "{}{line}", &text[..indent])?;
        }
    }
    Ok(())
}

pub(super) fn write_markdown(report: &Report, out: &mut impl io::Write) -> io::Result<()> {
    let Some(review) = &report.review else {
        return Ok(());
    };
    writeln!(out)?;
    writeln!(out, "### Review")?;
    writeln!(out)?;
    writeln!(
        out,
        "`guardrails.mode`: {}. Approving a change records its fingerprint on the workload's Recommendation.",
        review.mode.as_str()
    )?;
    let rows = rows(report, review);
    if !rows.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "| Recommendation | Status | Fingerprint | First step | Approve |"
        )?;
        writeln!(out, "|---|---|---|---|---|")?;
        for row in rows {
            let step = match row.approval {
                Approval::NeedsApproval { step, .. } | Approval::FastPath { step, .. } => {
                    step_text(step)
                }
                other => other.detail(),
            };
            let command = match row.approval {
                Approval::NeedsApproval { .. } => approve_command(row.workload)
                    .map(|c| format!("`{c}`"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.id,
                row.approval.status(),
                row.approval.fingerprint().unwrap_or(""),
                markdown_cell(&step),
                command
            )?;
        }
    }
    if let Some(label) = &review.team_label {
        writeln!(out)?;
        writeln!(out, "### Savings by team (`{label}`)")?;
        writeln!(out)?;
        for (team, usd) in savings_by(report, |rec| team_of(report, rec)) {
            writeln!(
                out,
                "- {}: {}/mo",
                markdown_cell(&team),
                cells::signed_dollars(usd)
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "### Cost model")?;
    writeln!(out)?;
    writeln!(
        out,
        "- default: {} ({})",
        prices_text(&report.pricing),
        markdown_cell(&review.pricing_source)
    )?;
    for pool in &review.node_pools {
        writeln!(
            out,
            "- node pool {}: {}{}",
            markdown_cell(&pool.name),
            prices_text(&pool.pricing),
            pool.source
                .as_deref()
                .map(|s| format!(" ({})", markdown_cell(s)))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Free text in a Markdown table cell: one line, `|` escaped.
fn markdown_cell(text: &str) -> String {
    cells::one_line(text).replace('|', "\\|")
}

/// Word-wraps `text` to `width` columns, continuation lines indented by
/// two spaces; a word longer than a line is cut.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut line, "  ".to_string()));
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.trim().is_empty() {
        lines.push(line);
    }
    lines
        .into_iter()
        .map(|l| cells::truncate_end(&l, width))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn summary_lines_wrap_instead_of_being_cut() {
        assert_eq!(
            wrap("Saved over the replay: +$158.90 in 7142.0 pod-hours", 30),
            ["Saved over the replay:", "  +$158.90 in 7142.0 pod-hours"]
        );
        assert_eq!(
            wrap("Saved over the replay: +$158.90 in 7142.0 pod-hours", 29),
            [
                "Saved over the replay:",
                "  +$158.90 in 7142.0",
                "  pod-hours"
            ]
        );
        assert_eq!(wrap("short", 30), ["short"]);
        assert_eq!(wrap("averyveryverylongword x", 10), ["averyvery…", "  x"]);
    }
}
