//! The SLO guard: after tailor changes a workload's CPU or memory, decide
//! from the numbers whether the change hurt it.
//!
//! The caller fetches the workload's SLIs (requests, errors, p95 and p99
//! latency per interval) and resource signals (OOM kills, restarts, CPU
//! throttling, readiness) for a *baseline* window before the change and for
//! the *bake* window since the rollout completed, and calls [`evaluate`] every
//! interval with the bake data so far. The first [`Verdict::Breach`] means
//! revert at once; [`Verdict::NoData`] means the SLIs could not be judged
//! (hold and extend the bake, revert at the deadline); missing data never
//! reads as healthy.
//!
//! Each signal is judged on its own rule (see `docs/slo-guard.md`). SLIs need
//! both a practical rise (beyond a budget or tolerance) and a statistically
//! significant one (p < α): the first guards against reverting over noise
//! that is real but harmless, the second against reverting over a noisy
//! minute. Resource signals are discrete events and need no test.
//!
//! ```text
//! Breach: p99 latency 0.412 s vs 0.180 s before (+129 %, tolerance +10 %, p = 0.0004)
//! ```
//!
//! What it is not for: fetching data, reading the clock, or reverting. This
//! module is pure (no I/O, no tokio, no clock), so every verdict can be
//! replayed from its inputs.

mod stats;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use stats::{
    mann_whitney_best_p_value, mann_whitney_greater_p_value, mann_whitney_smallest_p_value, median,
    two_proportion_p_value,
};

/// One interval's SLIs for a workload (end of interval, unix seconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SliSample {
    pub t: i64,
    /// Requests completed within the interval.
    pub requests: f64,
    /// Failed requests within the interval (counted at most `requests`).
    pub errors: f64,
    pub latency_p95_s: Option<f64>,
    pub latency_p99_s: Option<f64>,
}

/// One interval's resource signals (counts are increases within the interval).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    pub t: i64,
    pub oom_kills: u32,
    pub restarts: u32,
    /// Throttled CFS periods over all periods, 0..=1.
    pub throttled_ratio: Option<f64>,
    /// Ready pods over desired pods, 0..=1.
    pub ready_ratio: Option<f64>,
}

/// How strict the guard is. Defaults favour reverting a real regression
/// within minutes over never reverting a harmless change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardPolicy {
    /// Significance level of the error and latency tests.
    pub alpha: f64,
    /// Absolute rise of the error ratio allowed (0.001 = 0.1 percentage points).
    pub error_ratio_budget: f64,
    /// Relative rise of median p95/p99 latency allowed (0.10 = +10 %).
    pub latency_tolerance: f64,
    /// Requests needed on each side before the error test runs.
    pub min_requests: f64,
    /// Absolute rise of the mean throttled ratio allowed (0.10 = 10 points).
    pub throttling_rise: f64,
    /// Ready ratio below which a bake interval breaches.
    pub min_ready_ratio: f64,
    /// Bake intervals with latency needed before a latency test.
    pub min_latency_intervals: usize,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        GuardPolicy {
            alpha: 0.01,
            error_ratio_budget: 0.001,
            latency_tolerance: 0.10,
            min_requests: 50.0,
            throttling_rise: 0.10,
            min_ready_ratio: 0.999,
            min_latency_intervals: 3,
        }
    }
}

/// A [`GuardPolicy`] field outside its range.
#[derive(Clone, Debug, PartialEq, Error)]
#[error("guard policy `{field}` is {value}; expected {expected}")]
pub struct PolicyError {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn alpha_ok(v: f64) -> bool {
    v > 0.0 && v < 1.0
}
fn unit_ok(v: f64) -> bool {
    (0.0..=1.0).contains(&v)
}
fn non_negative_ok(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

impl GuardPolicy {
    /// Checks every field's range; the first field out of range is the error.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let checks: [(&'static str, bool, String, &'static str); 7] = [
            (
                "alpha",
                alpha_ok(self.alpha),
                self.alpha.to_string(),
                "a number between 0 and 1, exclusive",
            ),
            (
                "error_ratio_budget",
                unit_ok(self.error_ratio_budget),
                self.error_ratio_budget.to_string(),
                "a ratio between 0 and 1",
            ),
            (
                "latency_tolerance",
                non_negative_ok(self.latency_tolerance),
                self.latency_tolerance.to_string(),
                "a finite number ≥ 0",
            ),
            (
                "min_requests",
                non_negative_ok(self.min_requests),
                self.min_requests.to_string(),
                "a finite number ≥ 0",
            ),
            (
                "throttling_rise",
                unit_ok(self.throttling_rise),
                self.throttling_rise.to_string(),
                "a ratio between 0 and 1",
            ),
            (
                "min_ready_ratio",
                unit_ok(self.min_ready_ratio),
                self.min_ready_ratio.to_string(),
                "a ratio between 0 and 1",
            ),
            (
                "min_latency_intervals",
                self.min_latency_intervals >= 1,
                self.min_latency_intervals.to_string(),
                "at least 1",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _, _)| !ok) {
            Some((field, _, value, expected)) => Err(PolicyError {
                field,
                value,
                expected,
            }),
            None => Ok(()),
        }
    }

    /// This policy with every out-of-range field replaced by its default:
    /// a NaN α would silently disable the tests, so the guard never uses one.
    fn sanitized(&self) -> GuardPolicy {
        let d = GuardPolicy::default();
        let pick = |v: f64, ok: fn(f64) -> bool, default: f64| if ok(v) { v } else { default };
        GuardPolicy {
            alpha: pick(self.alpha, alpha_ok, d.alpha),
            error_ratio_budget: pick(self.error_ratio_budget, unit_ok, d.error_ratio_budget),
            latency_tolerance: pick(self.latency_tolerance, non_negative_ok, d.latency_tolerance),
            min_requests: pick(self.min_requests, non_negative_ok, d.min_requests),
            throttling_rise: pick(self.throttling_rise, unit_ok, d.throttling_rise),
            min_ready_ratio: pick(self.min_ready_ratio, unit_ok, d.min_ready_ratio),
            min_latency_intervals: self.min_latency_intervals.max(1),
        }
    }
}

/// What a [`Finding`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    ErrorRatio,
    LatencyP95,
    LatencyP99,
    OomKills,
    Restarts,
    Throttling,
    Readiness,
}

impl Signal {
    /// Whether the signal is an SLI (as opposed to a resource signal).
    pub fn is_sli(self) -> bool {
        matches!(
            self,
            Signal::ErrorRatio | Signal::LatencyP95 | Signal::LatencyP99
        )
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::ErrorRatio => "error ratio",
            Signal::LatencyP95 => "p95 latency",
            Signal::LatencyP99 => "p99 latency",
            Signal::OomKills => "OOM kills",
            Signal::Restarts => "restarts",
            Signal::Throttling => "CPU throttling",
            Signal::Readiness => "readiness",
        })
    }
}

/// The comparison of one signal between baseline and bake: the evidence a
/// revert notification carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub signal: Signal,
    /// The baseline's value (error ratio, median latency in seconds, event
    /// count, mean throttled ratio, lowest ready ratio).
    pub baseline: f64,
    /// The bake's value, in the same unit.
    pub observed: f64,
    /// The value `observed` must exceed (for readiness: fall below) to breach.
    pub threshold: f64,
    /// One-sided p-value of the significance test, where there is one.
    pub p_value: Option<f64>,
    pub breach: bool,
    /// One readable sentence with the numbers.
    pub message: String,
}

/// A signal that could not be judged, and why (e.g. too few bake intervals).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub signal: Signal,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every signal that could be judged is within bounds.
    Healthy,
    /// At least one signal breached: revert now.
    Breach,
    /// The SLIs are configured but none could be judged (or nothing at all
    /// could be): hold, extend the bake, revert at the deadline.
    NoData,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Healthy => "healthy",
            Verdict::Breach => "breach",
            Verdict::NoData => "no data",
        })
    }
}

/// The guard's decision with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    /// Every signal checked, breaches first.
    pub findings: Vec<Finding>,
    /// Every signal that could not be checked, with the reason.
    pub skipped: Vec<Skipped>,
    /// Input values dropped because NaN, infinite, negative or out of range.
    pub ignored_samples: usize,
    /// An SLI the baseline has could not be judged yet (too few bake
    /// intervals or requests): a caller must not confirm on this evaluation.
    #[serde(default)]
    pub pending: bool,
}

impl Evaluation {
    pub fn breaches(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.breach)
    }

    /// One line for logs, events and notifications.
    pub fn summary(&self) -> String {
        let mut line = match self.verdict {
            Verdict::Breach => {
                let messages: Vec<&str> = self.breaches().map(|f| f.message.as_str()).collect();
                format!("Breach: {}", messages.join("; "))
            }
            Verdict::NoData => {
                let reasons: Vec<String> = self
                    .skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.signal, s.reason))
                    .collect();
                if reasons.is_empty() {
                    "No data: nothing to judge yet".to_string()
                } else {
                    format!("No data: {}", reasons.join("; "))
                }
            }
            Verdict::Healthy => {
                let names: Vec<String> =
                    self.findings.iter().map(|f| f.signal.to_string()).collect();
                format!("Healthy: {} within bounds", names.join(", "))
            }
        };
        if self.verdict != Verdict::NoData && !self.skipped.is_empty() {
            let names: Vec<String> = self.skipped.iter().map(|s| s.signal.to_string()).collect();
            line.push_str(&format!(" (not judged yet: {})", names.join(", ")));
        }
        if self.ignored_samples > 0 {
            line.push_str(&format!(
                "; {} input values ignored (NaN, infinite, negative or out of range)",
                self.ignored_samples
            ));
        }
        line
    }
}

/// Compares the bake window with the baseline and decides.
///
/// `None` SLIs mean no SLI is configured for the workload: resource signals
/// only. `Some(&[])`, or a bake whose intervals all had zero requests, means
/// the SLIs are configured but missing: [`Verdict::NoData`] unless a resource
/// signal already breaches. Out-of-range policy fields fall back to their
/// defaults (see [`GuardPolicy::validate`]). Never panics.
pub fn evaluate(
    policy: &GuardPolicy,
    baseline_sli: Option<&[SliSample]>,
    bake_sli: Option<&[SliSample]>,
    baseline_res: &[ResourceSample],
    bake_res: &[ResourceSample],
) -> Evaluation {
    let policy = policy.sanitized();
    let mut judge = Judge {
        policy: &policy,
        findings: Vec::new(),
        skipped: Vec::new(),
    };
    let mut ignored = 0;

    let sli_configured = baseline_sli.is_some() || bake_sli.is_some();
    let mut sli_judged = false;
    let mut pending = false;
    if sli_configured {
        let base = SliWindow::clean(baseline_sli.unwrap_or_default(), &mut ignored);
        let bake = SliWindow::clean(bake_sli.unwrap_or_default(), &mut ignored);
        let errors = judge.error_ratio(&base, &bake);
        let p95 = judge.latency(Signal::LatencyP95, &base.p95, &bake.p95);
        let p99 = judge.latency(Signal::LatencyP99, &base.p99, &bake.p99);
        sli_judged = errors || p95 || p99;
        // A signal the baseline carries but the bake cannot judge yet.
        pending = (!errors && base.requests > 0.0)
            || (!p95 && !base.p95.is_empty())
            || (!p99 && !base.p99.is_empty());
    }

    let base = ResourceWindow::clean(baseline_res, false, &mut ignored);
    let bake = ResourceWindow::clean(bake_res, true, &mut ignored);
    judge.events(Signal::OomKills, &base, &bake, |w| w.oom_kills);
    judge.events(Signal::Restarts, &base, &bake, |w| w.restarts);
    judge.throttling(&base, &bake);
    judge.readiness(&base, &bake);

    let Judge {
        mut findings,
        skipped,
        ..
    } = judge;
    let verdict = if findings.iter().any(|f| f.breach) {
        Verdict::Breach
    } else if (sli_configured && !sli_judged) || findings.is_empty() {
        Verdict::NoData
    } else {
        Verdict::Healthy
    };
    // Stable: breaches first, each group in signal order.
    findings.sort_by_key(|f| !f.breach);
    Evaluation {
        verdict,
        findings,
        skipped,
        ignored_samples: ignored,
        pending,
    }
}

fn valid_count(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

fn valid_ratio(v: f64) -> bool {
    (0.0..=1.0).contains(&v)
}

/// The usable SLI values of one window.
struct SliWindow {
    requests: f64,
    errors: f64,
    p95: Vec<f64>,
    p99: Vec<f64>,
}

impl SliWindow {
    fn clean(samples: &[SliSample], ignored: &mut usize) -> Self {
        let mut window = SliWindow {
            requests: 0.0,
            errors: 0.0,
            p95: Vec::new(),
            p99: Vec::new(),
        };
        for s in samples {
            let (requests_ok, errors_ok) = (valid_count(s.requests), valid_count(s.errors));
            if requests_ok && errors_ok {
                window.requests += s.requests;
                // Scrape skew can put an error a hair ahead of its request.
                window.errors += s.errors.min(s.requests);
            } else {
                // A count without its partner would skew the ratio.
                *ignored += usize::from(!requests_ok) + usize::from(!errors_ok);
            }
            // An interval without requests has no latency to speak of.
            let idle = requests_ok && s.requests == 0.0;
            for (value, into) in [
                (s.latency_p95_s, &mut window.p95),
                (s.latency_p99_s, &mut window.p99),
            ] {
                match value {
                    Some(v) if !valid_count(v) => *ignored += 1,
                    Some(v) if !idle => into.push(v),
                    _ => {}
                }
            }
        }
        window
    }
}

/// The usable resource values of one window.
struct ResourceWindow {
    intervals: usize,
    oom_kills: u64,
    restarts: u64,
    throttled: Vec<f64>,
    /// Ready ratios; for the bake, without its first interval.
    ready: Vec<f64>,
}

impl ResourceWindow {
    fn clean(samples: &[ResourceSample], skip_first_ready: bool, ignored: &mut usize) -> Self {
        // The earliest interval of the bake may still be settling.
        let first = samples
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.t)
            .map(|(i, _)| i)
            .filter(|_| skip_first_ready);
        let mut window = ResourceWindow {
            intervals: samples.len(),
            oom_kills: 0,
            restarts: 0,
            throttled: Vec::new(),
            ready: Vec::new(),
        };
        for (i, s) in samples.iter().enumerate() {
            window.oom_kills += u64::from(s.oom_kills);
            window.restarts += u64::from(s.restarts);
            match s.throttled_ratio {
                Some(v) if valid_ratio(v) => window.throttled.push(v),
                Some(_) => *ignored += 1,
                None => {}
            }
            match s.ready_ratio {
                Some(v) if !valid_ratio(v) => *ignored += 1,
                Some(v) if first != Some(i) => window.ready.push(v),
                _ => {}
            }
        }
        window
    }
}

/// Collects findings and skipped signals, one rule per method. Each SLI
/// method returns whether it could judge its signal.
struct Judge<'a> {
    policy: &'a GuardPolicy,
    findings: Vec<Finding>,
    skipped: Vec<Skipped>,
}

impl Judge<'_> {
    fn skip(&mut self, signal: Signal, reason: impl Into<String>) -> bool {
        self.skipped.push(Skipped {
            signal,
            reason: reason.into(),
        });
        false
    }

    /// Pushes the finding unless one of its numbers is not finite.
    fn find(&mut self, finding: Finding) -> bool {
        let numbers = [finding.baseline, finding.observed, finding.threshold];
        if numbers.iter().any(|v| !v.is_finite()) || finding.p_value.is_some_and(|p| !p.is_finite())
        {
            return self.skip(finding.signal, "values too large to compare");
        }
        self.findings.push(finding);
        true
    }

    fn error_ratio(&mut self, base: &SliWindow, bake: &SliWindow) -> bool {
        let signal = Signal::ErrorRatio;
        let need = self.policy.min_requests;
        if bake.requests <= 0.0 {
            return self.skip(signal, "no requests in the bake");
        }
        if base.requests <= 0.0 {
            return self.skip(signal, "no requests in the baseline");
        }
        if base.requests < need || bake.requests < need {
            return self.skip(
                signal,
                format!(
                    "{:.0} requests in the baseline and {:.0} in the bake, need {need:.0} on each side",
                    base.requests, bake.requests
                ),
            );
        }
        let Some(p) =
            two_proportion_p_value(base.errors, base.requests, bake.errors, bake.requests)
        else {
            return self.skip(signal, "request counts too large to compare");
        };
        let (p0, p1) = (base.errors / base.requests, bake.errors / bake.requests);
        let budget = self.policy.error_ratio_budget;
        let breach = p1 - p0 > budget && p < self.policy.alpha;
        self.find(Finding {
            signal,
            baseline: p0,
            observed: p1,
            threshold: p0 + budget,
            p_value: Some(p),
            breach,
            message: format!(
                "error ratio {:.3} % vs {:.3} % before ({} points, budget +{:.3} points, {})",
                p1 * 100.0,
                p0 * 100.0,
                signed((p1 - p0) * 100.0, 3),
                budget * 100.0,
                format_p(p)
            ),
        })
    }

    fn latency(&mut self, signal: Signal, base: &[f64], bake: &[f64]) -> bool {
        let need = self.policy.min_latency_intervals;
        if bake.len() < need {
            return self.skip(
                signal,
                format!(
                    "{} bake intervals with latency so far, need {need}",
                    bake.len()
                ),
            );
        }
        // A test that could not reject even if every bake interval were the
        // worst yet seen is no evidence of health: wait for more intervals
        // (the bake extends up to the grace) instead of calling it healthy.
        if let Some(best) = mann_whitney_best_p_value(base, bake.len())
            && best >= self.policy.alpha
        {
            return self.skip(
                signal,
                format!(
                    "{} baseline and {} bake intervals cannot show a rise at alpha {} (best p = {best:.3}) yet",
                    base.len(),
                    bake.len(),
                    self.policy.alpha
                ),
            );
        }
        let (Some(m0), Some(m1), Some(p)) = (
            median(&mut base.to_vec()),
            median(&mut bake.to_vec()),
            mann_whitney_greater_p_value(base, bake),
        ) else {
            return self.skip(signal, "no baseline intervals with latency");
        };
        let tolerance = self.policy.latency_tolerance;
        let threshold = m0 * (1.0 + tolerance);
        let breach = m1 > threshold && p < self.policy.alpha;
        let change = match (m1 / m0 - 1.0) * 100.0 {
            percent if m0 > 0.0 && percent.is_finite() => format!("{} %", signed(percent, 0)),
            _ if m1 > m0 => "up from about zero".to_string(),
            _ => "no change".to_string(),
        };
        self.find(Finding {
            signal,
            baseline: m0,
            observed: m1,
            threshold,
            p_value: Some(p),
            breach,
            message: format!(
                "{signal} {m1:.3} s vs {m0:.3} s before ({change}, tolerance +{:.0} %, {})",
                tolerance * 100.0,
                format_p(p)
            ),
        })
    }

    /// OOM kills or restarts: more in the bake than the baseline's rate
    /// predicts for the bake's length breaches; with none in the baseline,
    /// any at all does.
    fn events(
        &mut self,
        signal: Signal,
        base: &ResourceWindow,
        bake: &ResourceWindow,
        count: fn(&ResourceWindow) -> u64,
    ) {
        if bake.intervals == 0 {
            self.skip(signal, "no bake intervals yet");
            return;
        }
        let (c0, c1) = (count(base), count(bake));
        let expected = if base.intervals == 0 {
            0.0
        } else {
            c0 as f64 * (bake.intervals as f64 / base.intervals as f64)
        };
        let (one, many) = match signal {
            Signal::OomKills => ("OOM kill", "OOM kills"),
            _ => ("restart", "restarts"),
        };
        let noun = if c1 == 1 { one } else { many };
        self.find(Finding {
            signal,
            baseline: c0 as f64,
            observed: c1 as f64,
            threshold: expected,
            p_value: None,
            breach: c1 as f64 > expected,
            message: format!(
                "{c1} {noun} in {} bake intervals vs {expected:.1} expected from the baseline ({c0} in {} intervals)",
                bake.intervals, base.intervals
            ),
        });
    }

    fn throttling(&mut self, base: &ResourceWindow, bake: &ResourceWindow) {
        let signal = Signal::Throttling;
        if bake.throttled.len() < 2 {
            self.skip(
                signal,
                format!(
                    "{} bake intervals with throttling data, need 2",
                    bake.throttled.len()
                ),
            );
            return;
        }
        let (Some(mean0), Some(mean1)) = (mean(&base.throttled), mean(&bake.throttled)) else {
            self.skip(signal, "no throttling data in the baseline");
            return;
        };
        let allowed = self.policy.throttling_rise;
        self.find(Finding {
            signal,
            baseline: mean0,
            observed: mean1,
            threshold: mean0 + allowed,
            p_value: None,
            breach: mean1 - mean0 > allowed,
            message: format!(
                "CPU throttling {:.1} % of periods vs {:.1} % before ({} points, allowed +{:.1} points)",
                mean1 * 100.0,
                mean0 * 100.0,
                signed((mean1 - mean0) * 100.0, 1),
                allowed * 100.0
            ),
        });
    }

    /// Readiness below the floor after the first bake interval breaches. The
    /// floor drops to the baseline's own lowest ratio, so a workload that
    /// already ran with an unready pod is not reverted for staying that way.
    fn readiness(&mut self, base: &ResourceWindow, bake: &ResourceWindow) {
        let signal = Signal::Readiness;
        let Some(observed) = min(&bake.ready) else {
            self.skip(
                signal,
                "no readiness data after the first bake interval (it may still be settling)",
            );
            return;
        };
        let floor_policy = self.policy.min_ready_ratio;
        let (baseline, floor, before) = match min(&base.ready) {
            Some(low) => (low, floor_policy.min(low), format!("{low:.3} before")),
            None => (
                floor_policy,
                floor_policy,
                "no readiness data before".to_string(),
            ),
        };
        self.find(Finding {
            signal,
            baseline,
            observed,
            threshold: floor,
            p_value: None,
            breach: observed < floor,
            message: format!(
                "lowest ready ratio {observed:.3} after the first bake interval vs {before} (floor {floor:.3})"
            ),
        });
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn min(values: &[f64]) -> Option<f64> {
    values.iter().copied().reduce(f64::min)
}

/// `v` with an explicit sign and `decimals` places; a value that rounds to
/// zero prints as "+0.0", never "-0.0".
fn signed(v: f64, decimals: usize) -> String {
    let shown = format!("{:.*}", decimals, v.abs());
    if shown.bytes().all(|b| b == b'0' || b == b'.') || v >= 0.0 {
        format!("+{shown}")
    } else {
        format!("-{shown}")
    }
}

fn format_p(p: f64) -> String {
    if p < 0.0001 {
        "p < 0.0001".to_string()
    } else {
        format!("p = {p:.4}")
    }
}
