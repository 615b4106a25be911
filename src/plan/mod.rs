//! The planner: each cycle it turns the latest recommendations, and what the
//! cluster adapter knows of each workload, into at most a few [`Change`]s to
//! apply, and a readable reason for every workload it leaves alone.
//!
//! Pure: no I/O, no wall clock, no tokio. The caller passes `now` (unix
//! seconds) and keeps the [`RateBudget`] across cycles, so the simulator can
//! drive it and a replayed cycle decides the same way.
//!
//! - [`guardrails`]: the `guardrails:` config section and its checks.
//! - [`budget`]: the hourly change budget (a `governor` bucket on injected time).
//! - [`step`]: how far one change moves a value.
//!
//! Every rule, its key, default and reason text is in `docs/guardrails.md`.
//! Not for: talking to the cluster, verifying a change, or recording state;
//! the rollout owns that and reports it back through [`WorkloadView`].
//!
//! ```
//! use tailor::plan::{plan, Guardrails, Mode, RateBudget};
//!
//! let guardrails = Guardrails { mode: Mode::Auto, ..Guardrails::default() };
//! let mut budget = RateBudget::new(guardrails.changes_per_hour);
//! let decisions = plan(1_717_718_400, &guardrails, &[], &[], 0, &mut budget);
//! assert!(decisions.is_empty());
//! ```

pub mod budget;
pub mod guardrails;
pub mod step;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{duration_text, namespace_regex};
use crate::domain::{Resources, WorkloadRef};
use crate::recommend::Recommendation;

pub use budget::RateBudget;
pub use guardrails::{Day, FreezeWindow, Guardrails, InvalidGuardrail, Mode, TimeOfDay};
use step::{Stepping, is_increase};

/// Above this share of throttled CFS periods, a CPU increase takes the fast
/// path. It is the default policy's throttling veto ratio.
pub const THROTTLING_FAST_PATH_RATIO: f64 = 0.10;

/// What the planner knows of a workload. The cluster adapter fills it from
/// the workload's spec, status and annotations, and the rollout from its
/// records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadView {
    pub workload: WorkloadRef,
    /// Per-workload override of `guardrails.mode` (an annotation).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Kill switch on the workload or its namespace (`tailor.dev/paused=true`).
    #[serde(default)]
    pub paused: bool,
    /// Desired replicas (pods scheduled, for a DaemonSet).
    pub replicas: u32,
    /// Every pod is Ready.
    pub ready: bool,
    /// A rollout (any, not only ours) has not finished.
    pub rolling_out: bool,
    /// A self-healing GitOps controller owns the spec: never patch it.
    #[serde(default)]
    pub gitops_managed: bool,
    /// A change to this workload is being rolled out or verified; the SLO
    /// guard owns it until it is confirmed or reverted.
    #[serde(default)]
    pub change_in_flight: bool,
    /// The fingerprint of the change a human approved (Approve mode).
    #[serde(default)]
    pub approved_change: Option<String>,
    /// Current spec values per container name.
    pub containers: Vec<(String, Resources)>,
    /// When tailor's last change to it was confirmed (unix seconds).
    #[serde(default)]
    pub last_confirmed_at: Option<i64>,
    /// No normal change before this instant (set after a revert).
    #[serde(default)]
    pub held_until: Option<i64>,
    /// When tailor raised memory after OOM kills (unix seconds).
    #[serde(default)]
    pub recent_oom_bumps: Vec<i64>,
    /// When tailor last raised CPU on the throttling fast path (unix seconds).
    #[serde(default)]
    pub last_throttling_bump: Option<i64>,
}

/// Why a change is made. The order is the priority: risk first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeReason {
    /// Memory increase after OOM kills (fast path).
    OomKill,
    /// CPU increase while heavily throttled (fast path).
    Throttling,
    /// Under-provisioned, not urgently.
    Increase,
    /// Only decreases: money back.
    Savings,
}

/// One container's values before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerChange {
    pub container: String,
    pub from: Resources,
    pub to: Resources,
}

/// One rollout: every container of one workload that moves this cycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Unique per change: workload, containers, to-values and `now`.
    pub id: String,
    /// Workload and to-values only: what a human approves. The same target
    /// values keep the same fingerprint from cycle to cycle.
    pub fingerprint: String,
    pub workload: WorkloadRef,
    /// Sorted by container name.
    pub containers: Vec<ContainerChange>,
    pub reason: ChangeReason,
    /// Estimated saving of this step (negative when it costs more): each
    /// container's recommended saving times the smallest share of a request
    /// gap this step closes. Exact when the step goes the whole way or one
    /// request moves.
    pub savings_per_month_usd: f64,
    /// Made at once, outside `max_in_flight` and the rate budget.
    pub fast_path: bool,
}

/// What the planner decided for a workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Decision {
    /// Make this change now.
    Apply(Change),
    /// Leave the workload alone this cycle, and why.
    Skip {
        workload: WorkloadRef,
        reason: String,
    },
    /// What tailor would apply, for humans: Observe mode, Approve mode
    /// without approval, or an Apply held back by `max_in_flight` or the
    /// rate budget (then a `Skip` with the reason follows).
    Propose(Change),
}

impl Decision {
    pub fn workload(&self) -> &WorkloadRef {
        match self {
            Decision::Apply(change) | Decision::Propose(change) => &change.workload,
            Decision::Skip { workload, .. } => workload,
        }
    }
}

/// Plans one cycle.
///
/// `in_flight` counts normal changes being rolled out or verified now; fast
/// paths neither count against it nor use the budget. Each workload in
/// `workloads` or `recommendations` gets one decision (a held-back change
/// gets a `Propose` and a `Skip`). Output order: fast paths, then changes
/// by priority (OOM kill, throttling, increase, then savings descending,
/// then name), then skips by workload.
pub fn plan(
    now: i64,
    guardrails: &Guardrails,
    workloads: &[WorkloadView],
    recommendations: &[Recommendation],
    in_flight: usize,
    budget: &mut RateBudget,
) -> Vec<Decision> {
    let excluded = ExcludedNamespaces::compile(&guardrails.exclude_namespaces);
    let mut by_workload: BTreeMap<&WorkloadRef, Vec<&Recommendation>> = BTreeMap::new();
    for rec in recommendations {
        by_workload
            .entry(&rec.target.workload)
            .or_default()
            .push(rec);
    }

    let mut seen = BTreeSet::new();
    let mut fast = Vec::new();
    let mut normal = Vec::new();
    let mut skips = Vec::new();
    for view in workloads {
        if !seen.insert(&view.workload) {
            continue; // reported twice by the adapter: the first one counts
        }
        let recs = by_workload.remove(&view.workload).unwrap_or_default();
        match assess(now, guardrails, &excluded, view, &recs) {
            Assessment::Skip(reason) => skips.push((view.workload.clone(), reason)),
            Assessment::FastPath { change, apply } => fast.push((change, apply)),
            Assessment::Normal { change, may_apply } => normal.push((change, may_apply)),
        }
    }
    for workload in by_workload.into_keys() {
        skips.push((workload.clone(), reasons::not_in_cluster()));
    }

    fast.sort_by(|a, b| priority(&a.0, &b.0));
    normal.sort_by(|a, b| priority(&a.0, &b.0));
    skips.sort();

    let mut decisions: Vec<Decision> = fast
        .into_iter()
        .map(|(change, apply)| {
            if apply {
                Decision::Apply(change)
            } else {
                Decision::Propose(change)
            }
        })
        .collect();
    let mut slots = guardrails.max_in_flight.saturating_sub(in_flight);
    for (change, may_apply) in normal {
        let held_back = if !may_apply {
            None
        } else if slots == 0 {
            Some(reasons::in_flight(guardrails.max_in_flight))
        } else if !budget.try_take(now) {
            Some(reasons::rate_limit(guardrails.changes_per_hour))
        } else {
            slots -= 1;
            decisions.push(Decision::Apply(change));
            continue;
        };
        let workload = change.workload.clone();
        decisions.push(Decision::Propose(change));
        if let Some(reason) = held_back {
            decisions.push(Decision::Skip { workload, reason });
        }
    }
    decisions.extend(
        skips
            .into_iter()
            .map(|(workload, reason)| Decision::Skip { workload, reason }),
    );
    decisions
}

/// Risk first (the reason's order), then savings descending, then name.
fn priority(a: &Change, b: &Change) -> Ordering {
    a.reason
        .cmp(&b.reason)
        .then_with(|| b.savings_per_month_usd.total_cmp(&a.savings_per_month_usd))
        .then_with(|| a.workload.cmp(&b.workload))
}

enum Assessment {
    Skip(String),
    /// `apply` is false in Observe mode.
    FastPath {
        change: Change,
        apply: bool,
    },
    /// `may_apply` is false when the mode only allows a proposal.
    Normal {
        change: Change,
        may_apply: bool,
    },
}

/// A container with a usable recommendation.
struct Target<'a> {
    name: &'a str,
    current: &'a Resources,
    rec: &'a Recommendation,
}

fn assess(
    now: i64,
    g: &Guardrails,
    excluded: &ExcludedNamespaces,
    view: &WorkloadView,
    recs: &[&Recommendation],
) -> Assessment {
    use Assessment::Skip;
    if g.paused {
        return Skip(reasons::paused_globally());
    }
    if view.paused {
        return Skip(reasons::paused_workload());
    }
    if let Some(reason) = excluded.reason(&view.workload.namespace) {
        return Skip(reason);
    }
    if view.gitops_managed {
        return Skip(reasons::gitops());
    }
    if view.change_in_flight {
        return Skip(reasons::own_change_in_flight());
    }
    if recs.is_empty() {
        return Skip(reasons::no_recommendation());
    }

    let mut notes = Vec::new();
    let mut targets: Vec<Target<'_>> = Vec::new();
    for rec in recs {
        let name = rec.target.container.as_str();
        if targets.iter().any(|t| t.name == name) {
            continue;
        }
        if let Some(why) = &rec.skipped_reason {
            notes.push(format!("{name}: {why}"));
            continue;
        }
        match view.containers.iter().find(|(n, _)| n == name) {
            Some((_, current)) => targets.push(Target { name, current, rec }),
            None => notes.push(format!("{name}: not in the workload's spec")),
        }
    }
    targets.sort_by(|a, b| a.name.cmp(b.name));
    if targets.iter().all(|t| t.rec.recommended == *t.current) {
        return Skip(reasons::nothing_to_change(&notes));
    }
    let mode = view.mode.unwrap_or(g.mode);
    let leak_bumps = leak_bumps(now, g, view);

    // An OOM kill already answered by a later change is not news: only kills
    // after tailor's last change to the workload (when their time is known)
    // take the fast path again.
    let last_change = view
        .recent_oom_bumps
        .iter()
        .copied()
        .max()
        .max(view.last_confirmed_at);
    let oom = targets.iter().any(|t| {
        t.rec.evidence.oom_kills > 0
            && t.rec
                .evidence
                .last_oom_kill_at
                .is_none_or(|kill| last_change.is_none_or(|change| kill > change))
            && raises(t.current, &t.rec.recommended, Resource::Memory)
    });
    // CFS throttling comes from the CPU limit alone, so the fast path is for
    // raising or removing a limit that exists. Its evidence spans the whole
    // history window, pods from before a bump included: one throttling bump
    // per cooldown; further increases take the normal, baked path.
    let throttling_bump_due = view
        .last_throttling_bump
        .is_none_or(|at| now >= at.saturating_add(secs(g.cooldown)));
    let throttled = throttling_bump_due
        && targets.iter().any(|t| {
            t.rec
                .evidence
                .cpu_throttled_ratio
                .is_some_and(|r| r > THROTTLING_FAST_PATH_RATIO)
                && t.current.cpu_limit.is_some()
                && step::is_increase(
                    t.current.cpu_limit.map(|v| v.0),
                    t.rec.recommended.cpu_limit.map(|v| v.0),
                    true,
                )
        });
    if oom || throttled {
        let reason = if oom {
            ChangeReason::OomKill
        } else {
            ChangeReason::Throttling
        };
        let Some(change) = build_change(now, view, &targets, Stepping::IncreasesOnly, reason)
        else {
            return Skip(reasons::nothing_to_change(&notes));
        };
        if let Some(reason) = leak_bumps.filter(|_| change.raises(Resource::Memory)) {
            return Skip(reason);
        }
        return Assessment::FastPath {
            change,
            apply: mode != Mode::Observe,
        };
    }

    let stepping = Stepping::Limited {
        max_decrease_ratio: g.max_decrease_ratio,
    };
    let Some(change) = build_change(now, view, &targets, stepping, ChangeReason::Savings) else {
        return Skip(reasons::below_rounding());
    };
    if let Some(reason) = leak_bumps.filter(|_| change.raises(Resource::Memory)) {
        return Skip(reason);
    }
    if view.replicas == 0 {
        return Skip(reasons::scaled_to_zero());
    }
    if view.replicas == 1 && !g.allow_single_replica {
        return Skip(reasons::single_replica());
    }
    if !view.ready {
        return Skip(reasons::not_ready());
    }
    if view.rolling_out {
        return Skip(reasons::rolling_out());
    }
    if let Some((i, window)) = g.freeze_window_at(now) {
        return Skip(reasons::frozen(i, window));
    }
    if let Some(confirmed) = view.last_confirmed_at {
        let until = confirmed.saturating_add(secs(g.cooldown));
        if now < until {
            return Skip(reasons::cooldown(now, confirmed, until, g.cooldown));
        }
    }
    if let Some(until) = view.held_until.filter(|&until| until > now) {
        return Skip(reasons::held(until, g.hold_after_revert));
    }
    if change.reason == ChangeReason::Savings {
        let waste: f64 = change
            .containers
            .iter()
            .filter_map(|c| targets.iter().find(|t| t.name == c.container))
            .map(|t| t.rec.savings_per_month_usd)
            .sum();
        if waste < g.min_monthly_savings_usd {
            return Skip(reasons::savings_too_small(waste, g.min_monthly_savings_usd));
        }
    }
    let may_apply = match mode {
        Mode::Observe => false,
        Mode::Approve => view.approved_change.as_deref() == Some(change.fingerprint.as_str()),
        Mode::Auto => true,
    };
    Assessment::Normal { change, may_apply }
}

/// The leak reason when OOM bumps within `leak_window` reached `leak_max_bumps`.
fn leak_bumps(now: i64, g: &Guardrails, view: &WorkloadView) -> Option<String> {
    let since = now.saturating_sub(secs(g.leak_window));
    let bumps = view
        .recent_oom_bumps
        .iter()
        .filter(|&&t| t > since && t <= now)
        .count();
    (bumps >= g.leak_max_bumps as usize).then(|| reasons::leak(bumps, g))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resource {
    Cpu,
    Memory,
}

/// True when `to` raises the request or the limit of `resource`.
fn raises(from: &Resources, to: &Resources, resource: Resource) -> bool {
    let (request, limit) = match resource {
        Resource::Cpu => (
            (from.cpu_request.map(|v| v.0), to.cpu_request.map(|v| v.0)),
            (from.cpu_limit.map(|v| v.0), to.cpu_limit.map(|v| v.0)),
        ),
        Resource::Memory => (
            (
                from.memory_request.map(|v| v.0),
                to.memory_request.map(|v| v.0),
            ),
            (from.memory_limit.map(|v| v.0), to.memory_limit.map(|v| v.0)),
        ),
    };
    is_increase(request.0, request.1, false) || is_increase(limit.0, limit.1, true)
}

impl Change {
    fn raises(&self, resource: Resource) -> bool {
        self.containers
            .iter()
            .any(|c| raises(&c.from, &c.to, resource))
    }

    fn raises_anything(&self) -> bool {
        self.raises(Resource::Cpu) || self.raises(Resource::Memory)
    }
}

/// The change stepping makes, or `None` when no value moves. A normal
/// change (`reason` Savings) that raises anything becomes an Increase.
fn build_change(
    now: i64,
    view: &WorkloadView,
    targets: &[Target<'_>],
    stepping: Stepping,
    reason: ChangeReason,
) -> Option<Change> {
    let mut containers = Vec::new();
    let mut savings = 0.0;
    for t in targets {
        let to = step::step(t.current, &t.rec.recommended, stepping);
        if to == *t.current {
            continue;
        }
        savings += t.rec.savings_per_month_usd * request_share(t.current, &to, &t.rec.recommended);
        containers.push(ContainerChange {
            container: t.name.to_string(),
            from: *t.current,
            to,
        });
    }
    if containers.is_empty() {
        return None;
    }
    let canonical = canonical_text(&view.workload, &containers);
    let mut change = Change {
        id: short_hash(&format!("{canonical}@{now}")),
        fingerprint: short_hash(&canonical),
        workload: view.workload.clone(),
        containers,
        reason,
        savings_per_month_usd: savings,
        fast_path: stepping == Stepping::IncreasesOnly,
    };
    if reason == ChangeReason::Savings && change.raises_anything() {
        change.reason = ChangeReason::Increase;
    }
    Some(change)
}

/// The smallest share of a request gap (current → recommended) that `to`
/// closes; 1 when no request differs from the recommendation.
fn request_share(from: &Resources, to: &Resources, rec: &Resources) -> f64 {
    let share = |f: Option<u64>, t: Option<u64>, r: Option<u64>| {
        let (f, t, r) = (
            f.unwrap_or(0) as f64,
            t.unwrap_or(0) as f64,
            r.unwrap_or(0) as f64,
        );
        (f != r).then(|| ((f - t) / (f - r)).clamp(0.0, 1.0))
    };
    [
        share(
            from.cpu_request.map(|v| v.0),
            to.cpu_request.map(|v| v.0),
            rec.cpu_request.map(|v| v.0),
        ),
        share(
            from.memory_request.map(|v| v.0),
            to.memory_request.map(|v| v.0),
            rec.memory_request.map(|v| v.0),
        ),
    ]
    .into_iter()
    .flatten()
    .fold(1.0, f64::min)
}

/// `ns/Kind/name|container:cpu_req,cpu_lim,mem_req,mem_lim|…` with `-` for
/// unset. Stable across releases: approvals refer to its hash.
fn canonical_text(workload: &WorkloadRef, containers: &[ContainerChange]) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let mut text = workload.to_string();
    for c in containers {
        let to = &c.to;
        text.push_str(&format!(
            "|{}:{},{},{},{}",
            c.container,
            opt(to.cpu_request.map(|v| v.0)),
            opt(to.cpu_limit.map(|v| v.0)),
            opt(to.memory_request.map(|v| v.0)),
            opt(to.memory_limit.map(|v| v.0)),
        ));
    }
    text
}

/// 12 hex digits of FNV-1a 64: stable across Rust releases and processes,
/// unlike `std`'s hasher. Not a security boundary: approving already needs
/// write access to the workload.
fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:012x}", hash >> 16)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// `guardrails.exclude_namespaces`, compiled once per cycle.
struct ExcludedNamespaces(Vec<(usize, String, Option<regex::Regex>)>);

impl ExcludedNamespaces {
    fn compile(patterns: &[String]) -> Self {
        ExcludedNamespaces(
            patterns
                .iter()
                .enumerate()
                .map(|(i, p)| (i, p.clone(), namespace_regex(p).ok()))
                .collect(),
        )
    }

    /// Why `namespace` is excluded, if it is. An invalid pattern (validation
    /// refuses it; this is the fallback) excludes everything.
    fn reason(&self, namespace: &str) -> Option<String> {
        self.0.iter().find_map(|(i, pattern, regex)| match regex {
            Some(regex) if regex.is_match(namespace) => {
                Some(reasons::excluded(namespace, *i, pattern))
            }
            Some(_) => None,
            None => Some(reasons::invalid_exclude(*i, pattern)),
        })
    }
}

/// Every skip reason: a sentence naming the guardrail and how to change it.
/// `docs/guardrails.md` quotes them; keep the two in step.
mod reasons {
    use std::time::Duration;

    use super::{FreezeWindow, Guardrails, duration_text};

    fn show(d: Duration) -> String {
        duration_text::format(d)
    }

    /// A span in seconds, rounded up to whole minutes.
    fn span(secs: i64) -> String {
        let secs = u64::try_from(secs).unwrap_or(0).div_ceil(60) * 60;
        show(Duration::from_secs(secs))
    }

    fn utc(t: i64) -> String {
        chrono::DateTime::from_timestamp(t, 0).map_or_else(
            || format!("unix time {t}"),
            |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    }

    pub fn paused_globally() -> String {
        "paused: guardrails.paused is true (the kill switch), so tailor changes nothing; set it to false to resume".into()
    }

    pub fn paused_workload() -> String {
        "paused: the workload or its namespace is annotated tailor.dev/paused=true; remove the annotation to resume".into()
    }

    pub fn excluded(namespace: &str, i: usize, pattern: &str) -> String {
        format!(
            "excluded: namespace {namespace} matches guardrails.exclude_namespaces[{i}] ({pattern:?}); remove the pattern to let tailor change it"
        )
    }

    pub fn invalid_exclude(i: usize, pattern: &str) -> String {
        format!(
            "excluded: guardrails.exclude_namespaces[{i}] ({pattern:?}) is not a valid regex, so tailor changes nothing; fix the pattern"
        )
    }

    pub fn gitops() -> String {
        "managed by GitOps with self-heal: tailor would be reverted by it; change the source instead".into()
    }

    pub fn own_change_in_flight() -> String {
        "a change to this workload is still being rolled out or verified; the next one waits for its verdict".into()
    }

    pub fn no_recommendation() -> String {
        "no recommendation for this workload yet; tailor needs its usage history first".into()
    }

    pub fn not_in_cluster() -> String {
        "not found in the cluster: there is a recommendation but the workload was not reported (deleted, or not readable by tailor)".into()
    }

    pub fn nothing_to_change(notes: &[String]) -> String {
        if notes.is_empty() {
            "nothing to change: the recommendation equals the current values".into()
        } else {
            format!("nothing to change: {}", notes.join("; "))
        }
    }

    pub fn below_rounding() -> String {
        "nothing to change this step: the decrease allowed by guardrails.max_decrease_ratio is less than one rounding step (5m CPU, 1Mi memory)".into()
    }

    pub fn leak(bumps: usize, g: &Guardrails) -> String {
        format!(
            "memory leak suspected: {bumps} OOM bumps in {}; not raising memory again; fix the leak, or raise guardrails.leak_max_bumps ({}) if the growth is real",
            show(g.leak_window),
            g.leak_max_bumps
        )
    }

    pub fn scaled_to_zero() -> String {
        "scaled to zero: no pod runs to verify a change against; tailor waits until it runs again"
            .into()
    }

    pub fn single_replica() -> String {
        "single replica: a rollout restarts the only pod; set guardrails.allow_single_replica: true to allow it".into()
    }

    pub fn not_ready() -> String {
        "not ready: some pods are not Ready; tailor waits until the workload is healthy before changing it".into()
    }

    pub fn rolling_out() -> String {
        "rollout in progress: tailor waits until it finishes, so its own change can be verified alone".into()
    }

    pub fn frozen(i: usize, window: &FreezeWindow) -> String {
        format!(
            "freeze window: guardrails.freeze_windows[{i}] ({window}) is in effect; changes resume when it ends, or remove the window"
        )
    }

    pub fn cooldown(now: i64, confirmed: i64, until: i64, cooldown: Duration) -> String {
        format!(
            "cooldown: a change was confirmed {} ago and guardrails.cooldown is {}; the next change may come in {} (lower guardrails.cooldown to shorten it)",
            span(now.saturating_sub(confirmed)),
            show(cooldown),
            span(until.saturating_sub(now)),
        )
    }

    pub fn held(until: i64, hold: Duration) -> String {
        format!(
            "held after a revert until {} (guardrails.hold_after_revert is {}); clear the hold to retry sooner",
            utc(until),
            show(hold),
        )
    }

    pub fn savings_too_small(waste: f64, min: f64) -> String {
        format!(
            "savings too small: ${waste:.2}/month is below guardrails.min_monthly_savings_usd (${min:.2}); lower it to act on smaller waste"
        )
    }

    pub fn in_flight(max_in_flight: usize) -> String {
        format!(
            "another change is in flight (max_in_flight={max_in_flight}); this one waits for its verdict (raise guardrails.max_in_flight to run more at once)"
        )
    }

    pub fn rate_limit(per_hour: u32) -> String {
        format!(
            "rate limit: {per_hour} changes per hour (guardrails.changes_per_hour), one at a time; this one waits for the budget to refill (raise guardrails.changes_per_hour to go faster)"
        )
    }
}
