//! The review page: one self-contained HTML file (inline CSS, inline SVG
//! charts, a few lines of inline script to filter workloads; no fonts,
//! images or scripts from anywhere else, so it opens offline and from a
//! mail attachment). A Content-Security-Policy forbids every external load.
//!
//! Sections: totals; savings by namespace and by team; top savings; risks
//! (OOM kills, throttling, restarts from the engine's evidence); the review
//! listing (each change's Recommendation id, fingerprint and approve
//! command); the backtest when there is one; per workload the usage
//! percentiles against the current and recommended values; and the cost
//! model. Numbers a test or a script may read carry `data-` attributes in
//! the JSON contract's units (`data-usd` in dollars to the cent).

use std::fmt::Write as _;
use std::io;

use chrono::{DateTime, Utc};

use super::backtest::{pod_hours_cell, rows as backtest_rows, summary_lines};
use super::review::{
    Approval, approve_command, node_pool_of, recommendation_id, risks, savings_by, team_of,
};
use super::review_text::{prices_text, step_text};
use super::{HOURS_PER_MONTH, Report, cells, monthly_cost_usd, round_cents, strip_credentials};
use crate::backtest::{Backtest, ContainerReplay};
use crate::domain::Resources;
use crate::recommend::Recommendation;
use crate::units::{Bytes, MilliCores};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Dollars as a `data-usd` value: cents, no sign games.
fn usd_attr(usd: f64) -> String {
    format!("{:.2}", round_cents(usd))
}

const STYLE: &str = r#"
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa;
  --pos: #2e7d32; --neg: #c62828; --cur: #1565c0; --rec: #2e7d32; --lim: #ef6c00; --box: #90caf9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; max-width: 1180px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 6px; }
p.meta, .muted { color: var(--muted); }
nav a { margin-right: 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin: 16px 0; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card .label { display: block; color: var(--muted); font-size: 12px; }
.card .value { display: block; font-size: 20px; font-weight: 600; }
.good { color: var(--pos); } .bad { color: var(--neg); }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--soft); padding: 1px 4px; border-radius: 4px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg rect.pos { fill: var(--pos); } svg rect.neg { fill: var(--neg); }
svg .box { fill: var(--box); stroke: #1e88e5; }
svg .whisker { stroke: #1e88e5; stroke-width: 2; }
svg .usage { fill: #1e88e5; } svg .startup { fill: none; stroke: #1e88e5; stroke-width: 1.5; }
svg .cur-req, svg .cur-lim { stroke: var(--cur); stroke-width: 2; stroke-dasharray: 5 3; }
svg .cur-lim { stroke-dasharray: 2 2; }
svg .rec-req { stroke: var(--rec); stroke-width: 2.5; } svg .rec-lim { stroke: var(--lim); stroke-width: 2.5; }
.legend span { margin-right: 12px; white-space: nowrap; font-size: 12px; }
.swatch { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 4px; }
article.workload { border: 1px solid var(--line); border-radius: 6px; padding: 12px; margin: 12px 0; }
article.workload .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 12px; }
.badge { display: inline-block; font-size: 12px; border-radius: 10px; padding: 0 8px; background: var(--soft); border: 1px solid var(--line); margin-right: 4px; }
.sev-3 { color: var(--neg); font-weight: 600; } .sev-2 { color: var(--lim); font-weight: 600; }
#filter { width: 320px; padding: 4px 8px; margin: 4px 0 8px; }
@media print { nav, #filter { display: none; } article.workload { break-inside: avoid; } }
"#;

const SCRIPT: &str = r#"
(function () {
  var input = document.getElementById('filter');
  if (!input) { return; }
  input.addEventListener('input', function () {
    var q = input.value.trim().toLowerCase();
    var shown = 0;
    document.querySelectorAll('article.workload').forEach(function (a) {
      var hit = q === '' || a.getAttribute('data-search').indexOf(q) >= 0;
      a.hidden = !hit;
      if (hit) { shown += 1; }
    });
    document.getElementById('filter-count').textContent = shown + ' shown';
  });
})();
"#;

/// A backtest on the page: the report made at its instant T (the page's
/// own report for `tailor backtest`, an earlier one for `tailor report
/// --backtest`) and what the replay after T counted.
#[derive(Clone, Copy, Debug)]
pub struct BacktestView<'a> {
    pub report: &'a Report,
    pub backtest: &'a Backtest,
}

impl BacktestView<'_> {
    /// True when the backtest's recommendations are the page's own.
    fn same_as(&self, report: &Report) -> bool {
        std::ptr::eq(self.report, report)
    }
}

/// Writes the page for `report`, with the backtest section when given.
pub fn write(
    report: &Report,
    backtest: Option<BacktestView<'_>>,
    out: &mut impl io::Write,
) -> io::Result<()> {
    out.write_all(page(report, backtest).as_bytes())
}

/// The whole page as a string.
pub fn page(report: &Report, backtest: Option<BacktestView<'_>>) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let title = match backtest {
        Some(view) if view.same_as(report) => "tailor backtest",
        _ => "tailor rightsizing review",
    };
    let at = report.at.format("%Y-%m-%d %H:%M UTC").to_string();
    let _ = writeln!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(title),
        escape(&at)
    );
    header(&mut html, report, backtest, title);
    summary(&mut html, report);
    by_group(&mut html, report);
    top_savings(&mut html, report);
    risks_section(&mut html, report);
    review_section(&mut html, report);
    if let Some(view) = backtest {
        backtest_section(&mut html, report, view);
    }
    workloads(&mut html, report, backtest);
    cost_model(&mut html, report);
    footer(&mut html, report);
    let _ = writeln!(html, "<script>{SCRIPT}</script>\n</body>\n</html>");
    html
}

fn header(html: &mut String, report: &Report, backtest: Option<BacktestView<'_>>, title: &str) {
    let _ = writeln!(
        html,
        "<header>\n<h1>{}</h1>\n<p class=\"meta\">Recommendations as of <strong>{}</strong> from {} of history · \
         source <code>{}</code> · {} queries · generated {}</p>",
        escape(title),
        escape(&report.at.format("%Y-%m-%d %H:%M UTC").to_string()),
        escape(&cells::duration(report.history_seconds)),
        escape(&strip_credentials(&report.source)),
        report.queries,
        escape(
            &report
                .generated_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        ),
    );
    if let Some(view) = backtest {
        let b = view.backtest;
        let _ = writeln!(
            html,
            "<p class=\"meta\">Backtest: the recommendations made at <strong>{}</strong>, replayed over the {} after it at {} steps ({} queries).</p>",
            escape(&view.report.at.format("%Y-%m-%d %H:%M UTC").to_string()),
            escape(&cells::duration(b.horizon_s.max(0) as u64)),
            escape(&cells::duration(b.step_s.max(0) as u64)),
            b.queries
        );
    }
    html.push_str("<nav><a href=\"#summary\">Totals</a><a href=\"#by-namespace\">By namespace</a>");
    html.push_str("<a href=\"#by-team\">By team</a><a href=\"#top\">Top savings</a><a href=\"#risks\">Risks</a>");
    html.push_str("<a href=\"#review\">Review</a>");
    if backtest.is_some() {
        html.push_str("<a href=\"#backtest\">Backtest</a>");
    }
    html.push_str("<a href=\"#workloads\">Workloads</a><a href=\"#cost-model\">Cost model</a></nav>\n</header>\n");
}

fn card(html: &mut String, id: &str, label: &str, value: &str, attr: &str, class: &str) {
    let _ = writeln!(
        html,
        "<div class=\"card\"><span class=\"label\">{}</span><span class=\"value {class}\" id=\"{id}\" {attr}>{}</span></div>",
        escape(label),
        escape(value)
    );
}

fn summary(html: &mut String, report: &Report) {
    let t = report.totals();
    html.push_str("<section id=\"summary\">\n<h2>Totals</h2>\n<div class=\"cards\">\n");
    card(
        html,
        "total-savings",
        "Savings per month",
        &cells::signed_dollars(t.savings_per_month_usd),
        &format!("data-usd=\"{}\"", usd_attr(t.savings_per_month_usd)),
        if t.savings_per_month_usd >= 0.0 {
            "good"
        } else {
            "bad"
        },
    );
    card(
        html,
        "total-current",
        "Requested now, per month",
        &cells::dollars(t.current_cost_per_month_usd),
        &format!("data-usd=\"{}\"", usd_attr(t.current_cost_per_month_usd)),
        "",
    );
    card(
        html,
        "total-recommended",
        "Recommended, per month",
        &cells::dollars(t.recommended_cost_per_month_usd),
        &format!(
            "data-usd=\"{}\"",
            usd_attr(t.recommended_cost_per_month_usd)
        ),
        "",
    );
    card(
        html,
        "total-containers",
        &format!(
            "Containers ({} recommended, {} skipped)",
            t.recommended, t.skipped
        ),
        &t.containers.to_string(),
        &format!(
            "data-count=\"{}\" data-recommended=\"{}\" data-skipped=\"{}\"",
            t.containers, t.recommended, t.skipped
        ),
        "",
    );
    card(
        html,
        "total-cpu",
        "CPU requested × replicas, cores",
        &format!(
            "{} → {}",
            short(t.current_cpu_request.cores()),
            short(t.recommended_cpu_request.cores())
        ),
        &format!(
            "data-current-millicores=\"{}\" data-recommended-millicores=\"{}\"",
            t.current_cpu_request.0, t.recommended_cpu_request.0
        ),
        "",
    );
    card(
        html,
        "total-memory",
        "Memory requested × replicas, GiB",
        &format!(
            "{} → {}",
            short(t.current_memory_request.gib_f64()),
            short(t.recommended_memory_request.gib_f64())
        ),
        &format!(
            "data-current-bytes=\"{}\" data-recommended-bytes=\"{}\"",
            t.current_memory_request.0, t.recommended_memory_request.0
        ),
        "",
    );
    html.push_str("</div>\n</section>\n");
}

/// `20.8`, `10.06`, `3`: two decimals at most, no trailing zeros.
fn short(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A horizontal bar chart of dollars per month, negative bars to the left
/// of zero.
fn bar_chart(id: &str, caption: &str, rows: &[(String, f64)]) -> String {
    const WIDTH: f64 = 760.0;
    const LABEL: f64 = 230.0;
    const VALUE: f64 = 100.0;
    const ROW: f64 = 24.0;
    let area = WIDTH - LABEL - VALUE;
    let max_pos = rows.iter().map(|r| r.1.max(0.0)).fold(0.0, f64::max);
    let max_neg = rows.iter().map(|r| (-r.1).max(0.0)).fold(0.0, f64::max);
    let span = (max_pos + max_neg).max(f64::MIN_POSITIVE);
    let scale = area / span;
    let zero = LABEL + max_neg * scale;
    let height = ROW * rows.len() as f64 + 24.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"chart bar-chart\" id=\"{id}\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        escape(caption)
    );
    for (i, (label, usd)) in rows.iter().enumerate() {
        let y = 8.0 + i as f64 * ROW;
        let w = (usd.abs() * scale).max(if *usd == 0.0 { 0.0 } else { 1.0 });
        let (x, class) = if *usd >= 0.0 {
            (zero, "pos")
        } else {
            (zero - w, "neg")
        };
        let shown = cells::truncate_middle(label, 34);
        let _ = writeln!(
            svg,
            "<g class=\"bar\" data-key=\"{}\" data-usd=\"{}\"><title>{}: {}/mo</title>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"{class}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\"></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            escape(label),
            usd_attr(*usd),
            escape(label),
            escape(&cells::signed_dollars(*usd)),
            LABEL - 8.0,
            y + 13.0,
            escape(&shown),
            y + 2.0,
            ROW - 6.0,
            LABEL + area + 6.0,
            y + 13.0,
            escape(&cells::signed_dollars(*usd)),
        );
    }
    let bottom = 8.0 + rows.len() as f64 * ROW;
    let _ = writeln!(
        svg,
        "<line class=\"axis\" x1=\"{zero:.1}\" y1=\"4\" x2=\"{zero:.1}\" y2=\"{bottom:.1}\"></line>\n</svg>"
    );
    svg
}

fn by_group(html: &mut String, report: &Report) {
    let namespaces = savings_by(report, |rec| Some(rec.target.workload.namespace.clone()));
    html.push_str("<section id=\"by-namespace\">\n<h2>Savings by namespace</h2>\n");
    if namespaces.is_empty() {
        html.push_str("<p class=\"muted\">No containers.</p>\n");
    } else {
        html.push_str(&bar_chart(
            "chart-namespace",
            "Savings per month by namespace",
            &namespaces,
        ));
    }
    html.push_str("</section>\n<section id=\"by-team\">\n<h2>Savings by team</h2>\n");
    match report.review.as_ref().and_then(|r| r.team_label.as_deref()) {
        Some(label) => {
            let _ = writeln!(
                html,
                "<p class=\"muted\">Team: the pod label <code>{}</code>; <code>(none)</code> where pods do not carry it.</p>",
                escape(label)
            );
            let teams = savings_by(report, |rec| team_of(report, rec));
            if !teams.is_empty() {
                html.push_str(&bar_chart("chart-team", "Savings per month by team", &teams));
            }
        }
        None => html.push_str(
            "<p class=\"muted\" id=\"no-team-label\">No team label configured: set <code>report.team_label</code> \
             (e.g. <code>team</code>) to group savings by the pod label that names the owning team.</p>\n",
        ),
    }
    html.push_str("</section>\n");
}

fn top_savings(html: &mut String, report: &Report) {
    let top = report.review.as_ref().map_or(10, |r| r.top);
    let rows: Vec<(String, f64)> = report
        .sorted_recommendations()
        .into_iter()
        .filter(|rec| rec.savings_per_month_usd > 0.0)
        .take(top)
        .map(|rec| {
            (
                format!("{} · {}", cells::workload(rec), rec.target.container),
                rec.savings_per_month_usd,
            )
        })
        .collect();
    let _ = writeln!(
        html,
        "<section id=\"top\">\n<h2>Top savings</h2>\n<p class=\"muted\">The {} containers whose recommendation saves the most.</p>",
        top
    );
    if rows.is_empty() {
        html.push_str("<p class=\"muted\">No recommendation saves money.</p>\n");
    } else {
        html.push_str(&bar_chart("chart-top", "Top savings per month", &rows));
    }
    html.push_str("</section>\n");
}

fn risks_section(html: &mut String, report: &Report) {
    html.push_str("<section id=\"risks\">\n<h2>Risks</h2>\n<p class=\"muted\">From the history the recommendations were made from: OOM kills raise memory at once, throttling above 10 % of CFS periods vetoes CPU decreases.</p>\n");
    let risks = risks(report);
    if risks.is_empty() {
        html.push_str("<p id=\"no-risks\">No OOM kills, throttling or restarts in the history.</p>\n</section>\n");
        return;
    }
    html.push_str("<table id=\"risk-table\">\n<tr><th>Workload</th><th>Container</th><th>What happened</th><th>Memory request → recommended</th><th>CPU request → recommended</th></tr>\n");
    for risk in risks {
        let rec = risk.rec;
        let _ = writeln!(
            html,
            "<tr class=\"risk sev-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            risk.severity,
            escape(&cells::workload(rec)),
            escape(&rec.target.container),
            escape(&risk.what),
            escape(&cells::memory_request_change(rec)),
            escape(&cells::cpu_request_change(rec)),
        );
    }
    html.push_str("</table>\n</section>\n");
}

fn review_section(html: &mut String, report: &Report) {
    html.push_str("<section id=\"review\">\n<h2>Review and approval</h2>\n");
    let Some(review) = &report.review else {
        html.push_str("<p class=\"muted\">Made by <code>tailor recommend</code>: run <code>tailor report</code> for approvals.</p>\n</section>\n");
        return;
    };
    let _ = writeln!(
        html,
        "<p>guardrails.mode is <code>{}</code>{}. In <code>approve</code> mode tailor applies a change only after a human \
         approves its fingerprint: run the command shown, or annotate the workload's Recommendation with \
         <code>tailor.dev/approved=&lt;fingerprint&gt;</code>. Decreases go in steps, so the first step is shown; \
         the fingerprint is the one the agent proposes for the same current values and recommendation.</p>",
        escape(review.mode.as_str()),
        match review.mode {
            crate::plan::Mode::Approve => "",
            crate::plan::Mode::Observe =>
                ": tailor only proposes; approvals take effect once it runs in approve mode",
            crate::plan::Mode::Auto =>
                ": tailor applies changes within its guardrails without approval",
        }
    );
    let mut seen = std::collections::BTreeSet::new();
    let mut rows = String::new();
    for rec in report.sorted_recommendations() {
        let workload = &rec.target.workload;
        if !seen.insert(workload) {
            continue;
        }
        let Some(approval) = review
            .workloads
            .get(workload)
            .and_then(|w| w.approval.as_ref())
        else {
            continue;
        };
        let id = recommendation_id(workload);
        let (step, command) = match approval {
            Approval::NeedsApproval {
                step,
                savings_per_month_usd,
                ..
            } => (
                format!(
                    "{} ({}/mo)",
                    step_text(step),
                    cells::signed_dollars(*savings_per_month_usd)
                ),
                approve_command(workload)
                    .map(|c| format!("<code class=\"approve\">{}</code>", escape(&c)))
                    .unwrap_or_default(),
            ),
            Approval::FastPath { step, .. } => (
                format!("{}: {}", approval.detail(), step_text(step)),
                String::new(),
            ),
            other => (other.detail(), String::new()),
        };
        let _ = writeln!(
            rows,
            "<tr class=\"approval\" data-status=\"{}\" data-id=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            approval.status(),
            escape(id.as_deref().unwrap_or("")),
            escape(id.as_deref().unwrap_or("-")),
            escape(&format!("{}/{}", workload.namespace, workload.name)),
            approval.status(),
            escape(approval.fingerprint().unwrap_or("-")),
            escape(&step),
            command
        );
    }
    if rows.is_empty() {
        html.push_str("<p class=\"muted\">Nothing to review.</p>\n");
    } else {
        html.push_str("<table id=\"review-table\">\n<tr><th>Recommendation</th><th>Workload</th><th>Status</th><th>Fingerprint</th><th>Change (first step)</th><th>Approve</th></tr>\n");
        html.push_str(&rows);
        html.push_str("</table>\n");
    }
    html.push_str("</section>\n");
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

fn backtest_section(html: &mut String, page_report: &Report, view: BacktestView<'_>) {
    let (report, backtest) = (view.report, view.backtest);
    let t = backtest.totals();
    html.push_str("<section id=\"backtest\">\n<h2>Backtest</h2>\n");
    if !view.same_as(page_report) {
        let _ = writeln!(
            html,
            "<p>What the recommendations made at <strong>{}</strong>, from the history before then, would have met since: \
             the evidence for trusting the ones above. Rows are the containers recommended then.</p>",
            escape(&report.at.format("%Y-%m-%d %H:%M UTC").to_string())
        );
    }
    html.push_str("<ul class=\"muted\">\n");
    for line in summary_lines(report, backtest) {
        let _ = writeln!(html, "<li>{}</li>", escape(&line));
    }
    html.push_str("</ul>\n<div class=\"cards\">\n");
    card(
        html,
        "backtest-oom",
        "Would-be OOM kills (recommended)",
        &count(t.recommended.oom_kills),
        &format!("data-count=\"{}\"", t.recommended.oom_kills.unwrap_or(0)),
        if t.recommended.oom_kills.unwrap_or(0) > 0 {
            "bad"
        } else {
            "good"
        },
    );
    card(
        html,
        "backtest-observed-oom",
        "OOM kills that happened",
        &t.observed_oom_kills.to_string(),
        &format!("data-count=\"{}\"", t.observed_oom_kills),
        "",
    );
    card(
        html,
        "backtest-cpu-over-request",
        "CPU above request (pod-hours)",
        &pod_hours_cell(t.recommended.cpu_over_request_seconds),
        &format!(
            "data-seconds=\"{}\"",
            t.recommended.cpu_over_request_seconds.unwrap_or(0)
        ),
        "",
    );
    card(
        html,
        "backtest-saved",
        &format!(
            "Saved over the {}",
            cells::duration(backtest.horizon_s.max(0) as u64)
        ),
        &cells::signed_dollars(t.saved_usd),
        &format!("data-usd=\"{}\"", usd_attr(t.saved_usd)),
        if t.saved_usd >= 0.0 { "good" } else { "bad" },
    );
    html.push_str(
        "</div>\n<table id=\"backtest-table\">\n<tr><th>Workload</th><th>Container</th>\
        <th class=\"num\">Would-be OOM kills</th><th class=\"num\">Memory samples over limit</th>\
        <th class=\"num\">CPU above request</th><th class=\"num\">CPU above limit</th>\
        <th class=\"num\">Observed OOM kills</th><th class=\"num\">Saved</th></tr>\n",
    );
    for (rec, replay) in backtest_rows(report, backtest) {
        let e = replay.map(|r| r.recommended).unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\" data-usd=\"{}\">{}</td></tr>",
            escape(&cells::workload(rec)),
            escape(&rec.target.container),
            count(e.oom_kills),
            count(e.memory_over_limit_samples),
            escape(&pod_hours_cell(e.cpu_over_request_seconds)),
            escape(&pod_hours_cell(e.cpu_over_limit_seconds)),
            replay.map_or(0, |r| r.observed_oom_kills),
            usd_attr(replay.map_or(0.0, |r| r.saved_usd)),
            escape(&replay.map_or_else(|| "-".into(), |r| cells::signed_dollars(r.saved_usd))),
        );
    }
    html.push_str("</table>\n<p class=\"muted\">Each CPU sample is the average over one step, so time above a value is a lower bound; each memory sample is the peak over one step. Consecutive memory samples over the limit in one pod count as one would-be OOM kill. See docs/backtest.md.</p>\n</section>\n");
}

/// The values one distribution chart shows, in one unit (millicores or
/// bytes).
struct Distribution {
    resource: &'static str,
    /// (label, value) usage points: percentiles and maxima.
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    /// The percentile memory is sized from (memory only).
    peak: Option<f64>,
    max: Option<f64>,
    busiest_hour: Option<f64>,
    startup_max: Option<f64>,
    current_request: Option<f64>,
    current_limit: Option<f64>,
    recommended_request: Option<f64>,
    recommended_limit: Option<f64>,
    /// Replay maximum, when there was a backtest.
    replay_max: Option<f64>,
}

impl Distribution {
    fn text(&self, value: f64) -> String {
        if self.resource == "cpu" {
            MilliCores(value.max(0.0).round() as u64).to_string()
        } else {
            cells::memory(Some(Bytes::from_f64(value.max(0.0))))
        }
    }

    fn usage(&self) -> bool {
        [self.p50, self.p90, self.p99, self.peak, self.max]
            .iter()
            .any(Option::is_some)
    }
}

fn distribution_chart(d: &Distribution) -> String {
    const WIDTH: f64 = 520.0;
    const LEFT: f64 = 12.0;
    const RIGHT: f64 = 24.0;
    const HEIGHT: f64 = 96.0;
    let values = [
        d.p50,
        d.p90,
        d.p99,
        d.peak,
        d.max,
        d.busiest_hour,
        d.startup_max,
        d.current_request,
        d.current_limit,
        d.recommended_request,
        d.recommended_limit,
        d.replay_max,
    ];
    let top = values.iter().flatten().copied().fold(0.0, f64::max) * 1.08;
    let top = if top > 0.0 { top } else { 1.0 };
    let x = |v: f64| LEFT + (v / top).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"dist\" data-resource=\"{}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{} usage against requests and limits\">",
        d.resource, d.resource
    );
    let axis_y = 62.0;
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{0:.1}\" y1=\"14\" x2=\"{0:.1}\" y2=\"{axis_y}\"></line><text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>",
            x(v),
            axis_y + 14.0,
            escape(&d.text(v))
        );
    }
    let _ = writeln!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\"></line>",
        WIDTH - RIGHT
    );
    let title =
        |label: &str, v: f64| format!("<title>{}: {}</title>", escape(label), escape(&d.text(v)));
    // Usage: the box holds the middle of the distribution.
    if let (Some(p50), Some(p90)) = (d.p50, d.p90) {
        let _ = writeln!(
            svg,
            "<rect class=\"box\" x=\"{:.1}\" y=\"30\" width=\"{:.1}\" height=\"18\">{}</rect>",
            x(p50),
            (x(p90) - x(p50)).max(1.0),
            title("p50 to p90 of usage", p90)
        );
    }
    if let (Some(p90), Some(p99)) = (d.p90, d.p99) {
        let _ = writeln!(
            svg,
            "<line class=\"whisker\" x1=\"{:.1}\" y1=\"39\" x2=\"{:.1}\" y2=\"39\">{}</line>",
            x(p90),
            x(p99),
            title("p99 of usage", p99)
        );
    }
    if let Some(peak) = d.peak {
        let _ = writeln!(
            svg,
            "<rect class=\"box\" x=\"{LEFT}\" y=\"30\" width=\"{:.1}\" height=\"18\">{}</rect>",
            (x(peak) - LEFT).max(1.0),
            title("percentile of peaks (sizes the request)", peak)
        );
    }
    if let Some(max) = d.max {
        let _ = writeln!(
            svg,
            "<circle class=\"usage\" cx=\"{:.1}\" cy=\"39\" r=\"4\">{}</circle>",
            x(max),
            title("highest usage seen", max)
        );
    }
    if let Some(hour) = d.busiest_hour {
        let _ = writeln!(
            svg,
            "<path class=\"usage\" d=\"M {0:.1} 24 l 5 5 l -5 5 l -5 -5 z\">{1}</path>",
            x(hour),
            title("mean of the busiest hour of the day", hour)
        );
    }
    if let Some(startup) = d.startup_max {
        let _ = writeln!(
            svg,
            "<circle class=\"startup\" cx=\"{:.1}\" cy=\"54\" r=\"4\">{}</circle>",
            x(startup),
            title("highest usage in the startup window", startup)
        );
    }
    if let Some(replay) = d.replay_max {
        let _ = writeln!(
            svg,
            "<circle class=\"startup\" style=\"stroke:#c62828\" cx=\"{:.1}\" cy=\"22\" r=\"4\">{}</circle>",
            x(replay),
            title("highest usage in the backtest replay", replay)
        );
    }
    for (class, label, value) in [
        ("cur-req", "current request", d.current_request),
        ("cur-lim", "current limit", d.current_limit),
        ("rec-req", "recommended request", d.recommended_request),
        ("rec-lim", "recommended limit", d.recommended_limit),
    ] {
        if let Some(v) = value {
            let _ = writeln!(
                svg,
                "<line class=\"marker {class}\" data-value=\"{v}\" x1=\"{0:.1}\" y1=\"10\" x2=\"{0:.1}\" y2=\"{axis_y}\">{1}</line>",
                x(v),
                title(label, v)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn legend(d: &Distribution) -> String {
    let mut parts = Vec::new();
    let mut push = |swatch: &str, label: &str, value: Option<f64>| {
        if let Some(v) = value {
            parts.push(format!(
                "<span><i class=\"swatch\" style=\"background:{swatch}\"></i>{} {}</span>",
                escape(label),
                escape(&d.text(v))
            ));
        }
    };
    push("#1565c0", "current request", d.current_request);
    push("#1565c0", "current limit", d.current_limit);
    push("#2e7d32", "recommended request", d.recommended_request);
    push("#ef6c00", "recommended limit", d.recommended_limit);
    push("#90caf9", "p50", d.p50);
    push("#90caf9", "p90", d.p90);
    push("#1e88e5", "p99", d.p99);
    push("#90caf9", "sizing percentile of peaks", d.peak);
    push("#1e88e5", "max", d.max);
    push("#1e88e5", "busiest hour", d.busiest_hour);
    push("#ffffff", "startup max", d.startup_max);
    push("#c62828", "replay max", d.replay_max);
    format!("<div class=\"legend\">{}</div>\n", parts.join(""))
}

fn distributions(rec: &Recommendation, replay: Option<&ContainerReplay>) -> [Distribution; 2] {
    let e = &rec.evidence;
    let m = |v: Option<u64>| v.map(|v| v as f64);
    let cpu = |r: &Resources| (m(r.cpu_request.map(|c| c.0)), m(r.cpu_limit.map(|c| c.0)));
    let mem = |r: &Resources| {
        (
            m(r.memory_request.map(|b| b.0)),
            m(r.memory_limit.map(|b| b.0)),
        )
    };
    [
        Distribution {
            resource: "cpu",
            p50: m(e.cpu_p50_millicores),
            p90: m(e.cpu_p90_millicores),
            p99: m(e.cpu_p99_millicores),
            peak: None,
            max: m(e.cpu_max_millicores),
            busiest_hour: m(e.cpu_busiest_hour_millicores),
            startup_max: m(e.startup_cpu_max_millicores),
            current_request: cpu(&rec.current).0,
            current_limit: cpu(&rec.current).1,
            recommended_request: cpu(&rec.recommended).0,
            recommended_limit: cpu(&rec.recommended).1,
            replay_max: replay.and_then(|r| r.cpu_max_millicores),
        },
        Distribution {
            resource: "memory",
            p50: None,
            p90: None,
            p99: None,
            peak: m(e.memory_peak_percentile_bytes),
            max: m(e.memory_max_bytes),
            busiest_hour: None,
            startup_max: m(e.startup_memory_max_bytes),
            current_request: mem(&rec.current).0,
            current_limit: mem(&rec.current).1,
            recommended_request: mem(&rec.recommended).0,
            recommended_limit: mem(&rec.recommended).1,
            replay_max: replay.and_then(|r| r.memory_max_bytes),
        },
    ]
}

fn workloads(html: &mut String, report: &Report, backtest: Option<BacktestView<'_>>) {
    html.push_str("<section id=\"workloads\">\n<h2>Workloads</h2>\n<p class=\"muted\">Per container: the usage percentiles of the engine's decaying histogram \
        (recent samples weigh more) against the current values (blue, dashed) and the recommended ones (green request, orange limit). \
        Hover a mark for its value.</p>\n<input id=\"filter\" type=\"search\" placeholder=\"Filter by namespace, workload, container, team…\" aria-label=\"Filter workloads\"> \
        <span id=\"filter-count\" class=\"muted\"></span>\n");
    for (i, rec) in report.sorted_recommendations().into_iter().enumerate() {
        let workload = &rec.target.workload;
        let id = recommendation_id(workload);
        let team = team_of(report, rec);
        let pool = node_pool_of(report, rec);
        let replay = backtest.and_then(|view| view.backtest.replay_of(&rec.target));
        // The values the replay held usage against, when they are not this
        // page's recommendation.
        let replayed = backtest
            .filter(|view| !view.same_as(report))
            .and_then(|view| {
                view.report
                    .recommendations
                    .iter()
                    .find(|r| r.target == rec.target)
                    .map(|r| (view.report.at, r.recommended))
            });
        let search = format!(
            "{} {} {} {} {}",
            cells::workload(rec),
            workload.kind,
            rec.target.container,
            team.as_deref().unwrap_or(""),
            pool.as_deref().unwrap_or("")
        )
        .to_lowercase();
        let pricing = report.pricing_for(rec);
        let replicas = rec.evidence.cost_replicas();
        let _ = write!(
            html,
            "<article class=\"workload\" id=\"w-{i}\" data-key=\"{}\" data-savings-usd=\"{}\" data-current-usd=\"{}\" data-recommended-usd=\"{}\" data-search=\"{}\">\n\
             <h3>{} <span class=\"badge\">{}</span> · {} <span class=\"{}\">{}/mo</span></h3>\n<p>",
            escape(&rec.target.to_string()),
            usd_attr(rec.savings_per_month_usd),
            usd_attr(monthly_cost_usd(&rec.current, replicas, &pricing)),
            usd_attr(monthly_cost_usd(&rec.recommended, replicas, &pricing)),
            escape(&search),
            escape(&cells::workload(rec)),
            escape(workload.kind.as_str()),
            escape(&rec.target.container),
            if rec.savings_per_month_usd >= 0.0 {
                "good"
            } else {
                "bad"
            },
            escape(&cells::signed_dollars(rec.savings_per_month_usd)),
        );
        if let Some(id) = &id {
            let _ = write!(
                html,
                "<span class=\"badge rec-id\">Recommendation <code>{}</code></span>",
                escape(id)
            );
        }
        if let Some(team) = &team {
            let _ = write!(html, "<span class=\"badge\">team {}</span>", escape(team));
        }
        if let Some(pool) = &pool {
            let _ = write!(
                html,
                "<span class=\"badge\">node pool {}</span>",
                escape(pool)
            );
        }
        let e = &rec.evidence;
        let _ = writeln!(
            html,
            "<span class=\"badge\">{} replica{}</span><span class=\"badge\">confidence {:.2}</span><span class=\"badge\">{:.0} h history, coverage {:.0} %</span></p>",
            e.replicas,
            if e.replicas == 1 { "" } else { "s" },
            rec.confidence.score,
            e.history_hours,
            e.coverage * 100.0
        );
        if let Some(reason) = &rec.skipped_reason {
            let _ = writeln!(
                html,
                "<p class=\"muted skip\">Kept as is: {}</p>",
                escape(reason)
            );
        }
        let _ = writeln!(
            html,
            "<table class=\"values\"><tr><th></th><th>CPU request</th><th>CPU limit</th><th>Memory request</th><th>Memory limit</th></tr>\n\
             <tr><th>current</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n\
             <tr><th>recommended</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
            escape(&cells::cpu(rec.current.cpu_request)),
            escape(&cells::cpu(rec.current.cpu_limit)),
            escape(&cells::memory(rec.current.memory_request)),
            escape(&cells::memory(rec.current.memory_limit)),
            escape(&cells::cpu(rec.recommended.cpu_request)),
            escape(&cells::cpu(rec.recommended.cpu_limit)),
            escape(&cells::memory(rec.recommended.memory_request)),
            escape(&cells::memory(rec.recommended.memory_limit)),
        );
        html.push_str("<div class=\"charts\">\n");
        for d in distributions(rec, replay) {
            let _ = writeln!(
                html,
                "<div><h4>{}</h4>",
                if d.resource == "cpu" {
                    "CPU"
                } else {
                    "Memory (peak per interval)"
                }
            );
            if d.usage() {
                html.push_str(&distribution_chart(&d));
                html.push_str(&legend(&d));
            } else {
                html.push_str("<p class=\"muted nodata\">No usage samples.</p>\n");
            }
            html.push_str("</div>\n");
        }
        html.push_str("</div>\n");
        if let Some(r) = replay {
            let x = &r.recommended;
            let values = match replayed {
                Some((at, values)) => format!(
                    "the values recommended at {} (CPU request {}, limit {}; memory request {}, limit {})",
                    at.format("%Y-%m-%d %H:%M UTC"),
                    cells::cpu(values.cpu_request),
                    cells::cpu(values.cpu_limit),
                    cells::memory(values.memory_request),
                    cells::memory(values.memory_limit)
                ),
                None => "the recommended values".to_string(),
            };
            let _ = writeln!(
                html,
                "<p class=\"replay\">Backtest with {}: {} would-be OOM kill(s), {} memory sample(s) over the limit, CPU above the request {}, above the limit {}; {} saved over {:.1} pod-hours; {} OOM kill(s) happened.</p>",
                escape(&values),
                escape(&count(x.oom_kills)),
                escape(&count(x.memory_over_limit_samples)),
                escape(&pod_hours_cell(x.cpu_over_request_seconds)),
                escape(&pod_hours_cell(x.cpu_over_limit_seconds)),
                escape(&cells::signed_dollars(r.saved_usd)),
                r.pod_hours,
                r.observed_oom_kills
            );
        }
        if !e.notes.is_empty() {
            html.push_str("<ul class=\"notes muted\">");
            for note in &e.notes {
                let _ = write!(html, "<li>{}</li>", escape(note));
            }
            html.push_str("</ul>\n");
        }
        if let Some(approval) = report
            .review
            .as_ref()
            .and_then(|r| r.workloads.get(workload))
            .and_then(|w| w.approval.as_ref())
        {
            let command = match approval {
                Approval::NeedsApproval { .. } => approve_command(workload)
                    .map(|c| format!(": <code class=\"approve\">{}</code>", escape(&c)))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let _ = writeln!(
                html,
                "<p class=\"approval\">Approval: <strong>{}</strong>{}{} — {}</p>",
                approval.status(),
                approval
                    .fingerprint()
                    .map(|f| format!(" (fingerprint <code>{}</code>)", escape(f)))
                    .unwrap_or_default(),
                command,
                escape(&approval.detail())
            );
        }
        html.push_str("</article>\n");
    }
    html.push_str("</section>\n");
}

fn cost_model(html: &mut String, report: &Report) {
    html.push_str("<section id=\"cost-model\">\n<h2>Cost model</h2>\n");
    let _ = writeln!(
        html,
        "<p>Cost per month = replicas × (CPU request in cores × price per vCPU-hour + memory request in GiB × price per GiB-hour) × {HOURS_PER_MONTH} hours. \
         An unset request costs 0; limits are not priced. Jobs and CronJobs are billed for the share of time their pods ran. \
         Prices change the money shown, never a recommendation.</p>"
    );
    let source = report
        .review
        .as_ref()
        .map_or_else(|| "not recorded".to_string(), |r| r.pricing_source.clone());
    html.push_str("<table id=\"prices\">\n<tr><th>Applies to</th><th class=\"num\">$ per vCPU-hour</th><th class=\"num\">$ per GiB-hour</th><th>Source</th><th class=\"num\">Containers</th></tr>\n");
    let pools: Vec<Option<String>> = report
        .recommendations
        .iter()
        .map(|rec| {
            node_pool_of(report, rec)
                .filter(|p| report.review.as_ref().is_some_and(|r| r.pool(p).is_some()))
        })
        .collect();
    let _ = writeln!(
        html,
        "<tr class=\"price\" data-pool=\"\"><td>default</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
        report.pricing.cpu_core_hour_usd,
        report.pricing.memory_gib_hour_usd,
        escape(&source),
        pools.iter().filter(|p| p.is_none()).count()
    );
    if let Some(review) = &report.review {
        for pool in &review.node_pools {
            let _ = writeln!(
                html,
                "<tr class=\"price\" data-pool=\"{0}\"><td>node pool <code>{0}</code></td><td class=\"num\">{1}</td><td class=\"num\">{2}</td><td>{3}</td><td class=\"num\">{4}</td></tr>",
                escape(&pool.name),
                pool.pricing.cpu_core_hour_usd,
                pool.pricing.memory_gib_hour_usd,
                escape(pool.source.as_deref().unwrap_or("set in the config")),
                pools
                    .iter()
                    .filter(|p| p.as_deref() == Some(pool.name.as_str()))
                    .count()
            );
        }
        if let Some(label) = &review.node_pool_label {
            let _ = writeln!(
                html,
                "</table>\n<p class=\"muted\">A pod's node pool is the value of the node label <code>{}</code> (<code>kube_node_labels</code>) on the node it ran on; a workload takes the pool its pods ran on longest.</p>",
                escape(label)
            );
            html.push_str("</section>\n");
            return;
        }
    }
    let _ = writeln!(
        html,
        "</table>\n<p class=\"muted\">Default prices: {}. Set <code>pricing.node_pools</code> to price pools differently.</p>\n</section>",
        escape(&prices_text(&report.pricing))
    );
}

fn footer(html: &mut String, report: &Report) {
    html.push_str("<footer>\n<h2>About this report</h2>\n");
    if !report.skipped_series.is_empty() {
        let _ = writeln!(
            html,
            "<p>Data problems while reading usage: {}.</p>",
            escape(&cells::skipped_series(&report.skipped_series))
        );
    }
    let generated: DateTime<Utc> = report.generated_at;
    let _ = writeln!(
        html,
        "<p class=\"muted\">tailor {} · generated {} · the same numbers are in <code>--format json</code> (docs/output.md) and <code>--format csv</code>.</p>\n</footer>",
        env!("CARGO_PKG_VERSION"),
        escape(&generated.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_elements_and_attributes() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn bars_go_left_of_zero_when_negative() {
        let svg = bar_chart(
            "c",
            "caption",
            &[("shop".to_string(), 30.0), ("batch <x>".to_string(), -10.0)],
        );
        assert_eq!(svg.matches("<g class=\"bar\"").count(), 2);
        assert!(
            svg.contains("data-key=\"batch &lt;x&gt;\" data-usd=\"-10.00\""),
            "{svg}"
        );
        // Zero sits a quarter into the 430-wide area: 230 + 10 × 430/40.
        assert!(svg.contains("x1=\"337.5\""), "{svg}");
        assert!(svg.contains("<rect class=\"neg\" x=\"230.0\""), "{svg}");
        assert!(svg.contains("<rect class=\"pos\" x=\"337.5\""), "{svg}");
    }
}
