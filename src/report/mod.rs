//! Renders the result of `tailor recommend`: a [`Report`] written as a text
//! table for terminals, JSON or YAML for machines, CSV for spreadsheets,
//! Markdown for pull requests and chat, or one self-contained HTML page for
//! a FinOps review ([`html`]). Also owns the cost model that prices requests
//! in $/month, and renders `tailor backtest` results ([`backtest`]).
//!
//! JSON and YAML follow a versioned contract (`docs/output.md`) built from
//! dedicated serde structs in [`contract`], so renaming an internal type or
//! field never changes the output by accident. Every format lists containers
//! in the same order: largest savings first, then by namespace, workload and
//! container.
//!
//! Nothing here decides what to recommend or talks to Prometheus; the caller
//! passes a finished [`Report`] and a writer.

pub mod backtest;
pub mod contract;
pub mod html;
pub mod review;

mod cells;
mod csv_rows;
mod markdown;
mod review_text;
mod table;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::domain::Resources;
use crate::recommend::Recommendation;
use crate::units::{Bytes, MilliCores};

/// Hours in the month used for every $/month figure (365 × 24 / 12).
pub use crate::recommend::policy::HOURS_PER_MONTH;

/// Everything one `tailor recommend` run produced, ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// When the report was produced (wall clock).
    pub generated_at: DateTime<Utc>,
    /// The evaluation instant: history ends here.
    pub at: DateTime<Utc>,
    /// Length of usage history requested, ending at `at`.
    pub history_seconds: u64,
    /// Prometheus URL, credentials stripped (rendering strips them again).
    pub source: String,
    /// Queries sent to Prometheus.
    pub queries: u64,
    pub pricing: PricingSummary,
    pub recommendations: Vec<Recommendation>,
    /// Data problems counted while reading usage, e.g. "NaN sample dropped".
    pub skipped_series: Vec<SkippedSeries>,
    /// Teams, node pools and approvals, for `tailor report`; `None` for
    /// `tailor recommend`.
    pub review: Option<review::ReviewContext>,
}

/// Prices the cost model uses, per unit of request per hour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PricingSummary {
    pub cpu_core_hour_usd: f64,
    pub memory_gib_hour_usd: f64,
}

/// How many series or samples were dropped for one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSeries {
    pub reason: String,
    pub count: u64,
}

/// Sums over every container in a report. Requests are multiplied by
/// replicas; costs use [`monthly_cost_usd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Totals {
    pub current_cpu_request: MilliCores,
    pub recommended_cpu_request: MilliCores,
    pub current_memory_request: Bytes,
    pub recommended_memory_request: Bytes,
    pub current_cost_per_month_usd: f64,
    pub recommended_cost_per_month_usd: f64,
    /// Sum of each recommendation's `savings_per_month_usd`.
    pub savings_per_month_usd: f64,
    pub containers: u64,
    /// Containers with a recommendation (not skipped).
    pub recommended: u64,
    pub skipped: u64,
}

impl Report {
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            current_cpu_request: MilliCores(0),
            recommended_cpu_request: MilliCores(0),
            current_memory_request: Bytes(0),
            recommended_memory_request: Bytes(0),
            current_cost_per_month_usd: 0.0,
            recommended_cost_per_month_usd: 0.0,
            savings_per_month_usd: 0.0,
            containers: 0,
            recommended: 0,
            skipped: 0,
        };
        for rec in &self.recommendations {
            let replicas = u64::from(rec.evidence.replicas);
            let cpu = |r: &Resources| r.cpu_request.map_or(0, |m| m.0).saturating_mul(replicas);
            let memory =
                |r: &Resources| r.memory_request.map_or(0, |b| b.0).saturating_mul(replicas);
            totals.current_cpu_request.0 = totals
                .current_cpu_request
                .0
                .saturating_add(cpu(&rec.current));
            totals.recommended_cpu_request.0 = totals
                .recommended_cpu_request
                .0
                .saturating_add(cpu(&rec.recommended));
            totals.current_memory_request.0 = totals
                .current_memory_request
                .0
                .saturating_add(memory(&rec.current));
            totals.recommended_memory_request.0 = totals
                .recommended_memory_request
                .0
                .saturating_add(memory(&rec.recommended));
            let pricing = self.pricing_for(rec);
            totals.current_cost_per_month_usd +=
                monthly_cost_usd(&rec.current, rec.evidence.cost_replicas(), &pricing);
            totals.recommended_cost_per_month_usd +=
                monthly_cost_usd(&rec.recommended, rec.evidence.cost_replicas(), &pricing);
            totals.savings_per_month_usd += rec.savings_per_month_usd;
            totals.containers += 1;
            if rec.skipped_reason.is_some() {
                totals.skipped += 1;
            } else {
                totals.recommended += 1;
            }
        }
        totals
    }

    /// Recommendations in report order: savings (to the cent) descending,
    /// then namespace, workload name, workload kind and container.
    pub fn sorted_recommendations(&self) -> Vec<&Recommendation> {
        let mut sorted: Vec<&Recommendation> = self.recommendations.iter().collect();
        sorted.sort_by(|a, b| {
            sort_cents(b.savings_per_month_usd)
                .cmp(&sort_cents(a.savings_per_month_usd))
                .then_with(|| {
                    a.target
                        .workload
                        .namespace
                        .cmp(&b.target.workload.namespace)
                })
                .then_with(|| a.target.workload.name.cmp(&b.target.workload.name))
                .then_with(|| a.target.workload.kind.cmp(&b.target.workload.kind))
                .then_with(|| a.target.container.cmp(&b.target.container))
        });
        sorted
    }
}

/// What `resources` cost per month for `replicas` pods (see
/// [`crate::recommend::policy::monthly_cost`]).
pub fn monthly_cost_usd(resources: &Resources, replicas: f64, pricing: &PricingSummary) -> f64 {
    crate::recommend::policy::monthly_cost(
        resources,
        replicas,
        &crate::config::PricingConfig {
            cpu_core_hour_usd: pricing.cpu_core_hour_usd,
            memory_gib_hour_usd: pricing.memory_gib_hour_usd,
            ..crate::config::PricingConfig::default()
        },
    )
}

/// Rounds dollars to cents, the precision every output shows (never `-0`).
pub fn round_cents(usd: f64) -> f64 {
    let rounded = (usd * 100.0).round() / 100.0;
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// Sort key: whole cents, with NaN after every number so it sorts last.
fn sort_cents(usd: f64) -> i64 {
    if usd.is_nan() {
        i64::MIN
    } else {
        // `as` saturates for huge values, which keeps the order.
        (usd * 100.0).round() as i64
    }
}

/// Removes `user:password@` and the query string from a URL, so a source
/// written into a report (often pasted into tickets) never carries secrets.
pub fn strip_credentials(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // Userinfo first: a stray `?` or `#` in a password must not hide its `@`.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let stripped = format!("{scheme}{host}{path}");
    let end = stripped.find(['?', '#']).unwrap_or(stripped.len());
    stripped[..end].to_string()
}

/// An output format of `tailor recommend --output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Table,
    Json,
    Yaml,
    Csv,
    Markdown,
    /// One self-contained page (inline CSS and SVG, works offline).
    Html,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Table,
        Format::Json,
        Format::Yaml,
        Format::Csv,
        Format::Markdown,
        Format::Html,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Csv => "csv",
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An output format name that is not one of [`Format::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format {0:?}; expected one of: table, json, yaml, csv, markdown, html")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// The narrowest table laid out: the value columns take up to 48
/// columns, and names need room to stay recognisable.
pub const MIN_TABLE_WIDTH: usize = 60;

/// Presentation settings for the human formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Terminal width in columns for the table. Below
    /// [`MIN_TABLE_WIDTH`] the table is laid out for that minimum.
    pub width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { width: 80 }
    }
}

/// Writes `report` to `out` in `format`.
pub fn render(
    report: &Report,
    format: Format,
    out: &mut impl io::Write,
    options: &RenderOptions,
) -> io::Result<()> {
    match format {
        Format::Table => {
            table::write(report, out, options)?;
            review_text::write_table(report, out, options)
        }
        Format::Json => contract::write_json(report, out),
        Format::Yaml => contract::write_yaml(report, out),
        Format::Csv => csv_rows::write(report, out),
        Format::Markdown => {
            markdown::write(report, out)?;
            review_text::write_markdown(report, out)
        }
        Format::Html => html::write(report, None, out),
    }
}
