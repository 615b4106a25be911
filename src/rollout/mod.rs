//! The life of one change, as a state machine whose every state is durable.
//!
//! ```text
//! Planned ──apply──> RollingOut ──rollout complete──> Baking ──healthy at deadline──> Confirmed
//!    │                   │ rollout stuck / deadline        │ breach, or no data past the grace
//!    └─conflict─> Abandoned   └──────────────> Reverting <─┘
//!                                                 └──revert applied──> Reverted (workload held)
//! ```
//!
//! The record is persisted through the cluster port on every transition
//! (DESIGN §6): an agent killed at any instant resumes from the last saved
//! phase. This module decides transitions from facts the caller gathered;
//! it performs no I/O and never reads the clock.

use serde::{Deserialize, Serialize};

use crate::guard::{Evaluation, GuardPolicy, Signal, Verdict};
use crate::plan::Change;
use crate::ports::{ContainerPatch, ResourcePatch, RolloutStatus};

/// Where a change is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Decided and recorded; the patch may or may not have reached the cluster.
    Planned,
    /// Patched; waiting for every pod to run the new values.
    RollingOut,
    /// Rolled out; the SLO guard compares the bake window with the baseline.
    Baking,
    Confirmed,
    /// Decided to revert; the revert patch may or may not have reached the cluster.
    Reverting,
    /// Reverted; the workload is held.
    Reverted,
    /// Someone else changed the workload first; nothing of ours is applied.
    Abandoned,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Confirmed | Phase::Reverted | Phase::Abandoned)
    }
}

/// Timings of a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutSettings {
    /// A rollout not complete this long after the patch is reverted.
    pub rollout_timeout_s: i64,
    /// How long the guard watches after the rollout before confirming.
    pub bake_s: i64,
    /// The window before the patch the bake is compared with.
    pub baseline_s: i64,
    /// How long past the bake deadline missing SLI data may delay a verdict
    /// before the change is reverted anyway.
    pub no_data_grace_s: i64,
    /// How long a reverted workload is left alone.
    pub hold_after_revert_s: i64,
    /// Add the bake's hours of the previous day to the SLI baseline.
    #[serde(default = "yes")]
    pub seasonal_baseline: bool,
    /// After the rollout, minutes of warm-up (JIT, caches, JVM heap) left
    /// out of the bake: every rollout costs them, whatever the resources.
    #[serde(default = "default_warmup")]
    pub warmup_s: i64,
    /// While pods roll, only a clear breach reverts: the guard's latency
    /// tolerance and error budget times this factor.
    #[serde(default = "default_early_abort_factor")]
    pub early_abort_factor: f64,
    /// After a confirm, keep comparing each hour with the same hour of the
    /// day before the change for this long: load grows and neighbours get
    /// packed tighter after a bake, and a regression may only show then.
    #[serde(default = "default_watch")]
    pub watch_s: i64,
    /// Hours compared in the watch must carry requests within this share of
    /// each other; otherwise the hour is inconclusive (a Monday is not a Sunday).
    #[serde(default = "default_comparable_load")]
    pub comparable_load: f64,
}

fn default_watch() -> i64 {
    86_400
}

fn default_comparable_load() -> f64 {
    0.2
}

/// Length of one watch comparison.
pub const WATCH_WINDOW_S: i64 = 3600;

fn default_warmup() -> i64 {
    5 * 60
}

fn default_early_abort_factor() -> f64 {
    5.0
}

fn yes() -> bool {
    true
}

impl Default for RolloutSettings {
    fn default() -> Self {
        RolloutSettings {
            rollout_timeout_s: 15 * 60,
            bake_s: 30 * 60,
            baseline_s: 60 * 60,
            no_data_grace_s: 15 * 60,
            hold_after_revert_s: 7 * 86_400,
            seasonal_baseline: true,
            warmup_s: default_warmup(),
            early_abort_factor: default_early_abort_factor(),
            watch_s: default_watch(),
            comparable_load: default_comparable_load(),
        }
    }
}

/// The verdict as recorded: what notifications and `tailor explain` show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub at: i64,
    pub verdict: Verdict,
    pub summary: String,
    pub evaluation: Evaluation,
}

/// Everything the agent persists about one change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    pub change: Change,
    pub phase: Phase,
    pub planned_at: i64,
    pub applied_at: Option<i64>,
    pub baking_since: Option<i64>,
    /// The phase changed last at this instant.
    pub updated_at: i64,
    pub verdict: Option<VerdictRecord>,
    /// Why the change was reverted or abandoned.
    pub reason: Option<String>,
    /// When the regression (or the stuck rollout) was first seen.
    pub regression_seen_at: Option<i64>,
    pub reverted_at: Option<i64>,
    pub held_until: Option<i64>,
    /// End of the last hour the post-confirm watch compared.
    #[serde(default)]
    pub watched_until: Option<i64>,
}

impl RolloutRecord {
    pub fn new(change: Change, now: i64) -> Self {
        RolloutRecord {
            change,
            phase: Phase::Planned,
            planned_at: now,
            applied_at: None,
            baking_since: None,
            updated_at: now,
            verdict: None,
            reason: None,
            regression_seen_at: None,
            reverted_at: None,
            held_until: None,
            watched_until: None,
        }
    }

    /// The patch that applies the change.
    pub fn forward_patch(&self) -> ResourcePatch {
        ResourcePatch {
            workload: self.change.workload.clone(),
            change_id: self.change.id.clone(),
            containers: self
                .change
                .containers
                .iter()
                .map(|c| ContainerPatch {
                    container: c.container.clone(),
                    expect: c.from,
                    set: c.to,
                })
                .collect(),
        }
    }

    /// The patch that puts the previous values back.
    pub fn revert_patch(&self) -> ResourcePatch {
        let mut patch = self.forward_patch();
        for c in &mut patch.containers {
            std::mem::swap(&mut c.expect, &mut c.set);
        }
        patch
    }
}

/// What the cluster shows for the workload's containers right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecState {
    /// Every changed container has its `from` values.
    Before,
    /// Every changed container has its `to` values.
    After,
    /// Anything else: someone else changed it.
    Other,
}

/// What the state machine asks the caller to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Nothing to do this cycle.
    Wait,
    /// Apply the forward patch, then call [`on_applied`].
    Apply,
    /// Evaluate the pods already rolled (call [`on_early_evaluation`]),
    /// then read the rollout status and call [`on_rollout`].
    CheckRollout {
        baseline: (i64, i64),
        bake: (i64, i64),
    },
    /// Gather baseline and bake data, evaluate, then call [`on_evaluation`].
    Evaluate {
        baseline: (i64, i64),
        bake: (i64, i64),
    },
    /// Apply the revert patch, then call [`on_reverted`].
    Revert,
    /// Compare `window` with `baseline` (the same hour on the day before the
    /// change), then call [`on_watch`].
    Watch {
        baseline: (i64, i64),
        window: (i64, i64),
    },
}

/// What to do for a record in its current phase at `now`.
pub fn next(record: &RolloutRecord, settings: &RolloutSettings, now: i64) -> Next {
    match record.phase {
        Phase::Planned => Next::Apply,
        Phase::RollingOut => {
            let applied = record.applied_at.unwrap_or(record.planned_at);
            Next::CheckRollout {
                baseline: (applied - settings.baseline_s, applied),
                bake: (applied, now),
            }
        }
        Phase::Baking => {
            let applied = record.applied_at.unwrap_or(record.planned_at);
            let from = record.baking_since.unwrap_or(now) + settings.warmup_s;
            if now <= from {
                return Next::Wait; // still warming up
            }
            Next::Evaluate {
                baseline: (applied - settings.baseline_s, applied),
                bake: (from, now),
            }
        }
        Phase::Reverting => Next::Revert,
        Phase::Confirmed => {
            let confirmed = record.updated_at;
            let applied = record.applied_at.unwrap_or(record.planned_at);
            let from = record.watched_until.unwrap_or(confirmed);
            let to = from + WATCH_WINDOW_S;
            if to > now || to > confirmed + settings.watch_s {
                return Next::Wait;
            }
            // Whole days back so that the window lies before the change.
            let days = (to - applied + 86_399) / 86_400;
            let shift = days.max(1) * 86_400;
            Next::Watch {
                baseline: (from - shift, to - shift),
                window: (from, to),
            }
        }
        Phase::Reverted | Phase::Abandoned => Next::Wait,
    }
}

fn transition(record: &mut RolloutRecord, phase: Phase, now: i64) {
    record.phase = phase;
    record.updated_at = now;
}

/// Records the evaluation as the verdict and starts a revert citing it.
fn revert_on(record: &mut RolloutRecord, evaluation: Evaluation, context: &str, now: i64) {
    let summary = evaluation.summary();
    let verdict = evaluation.verdict;
    record.verdict = Some(VerdictRecord {
        at: now,
        verdict,
        summary: summary.clone(),
        evaluation,
    });
    start_revert(record, format!("{context}: {summary}"), now);
}

/// Starts a revert for `reason`.
pub fn start_revert(record: &mut RolloutRecord, reason: String, now: i64) {
    record.reason = Some(reason);
    record.regression_seen_at.get_or_insert(now);
    transition(record, Phase::Reverting, now);
}

/// After trying the forward patch: `Ok` moves on; a conflict abandons.
pub fn on_applied(record: &mut RolloutRecord, outcome: Result<(), String>, now: i64) {
    match outcome {
        Ok(()) => {
            record.applied_at = Some(now);
            transition(record, Phase::RollingOut, now);
        }
        Err(why) => {
            record.reason = Some(format!("not applied: {why}"));
            transition(record, Phase::Abandoned, now);
        }
    }
}

/// After a restart, a `Planned` record may or may not have been applied:
/// the cluster tells which.
pub fn recover_planned(record: &mut RolloutRecord, spec: SpecState, now: i64) {
    match spec {
        SpecState::Before => {} // apply as planned
        SpecState::After => {
            record.applied_at.get_or_insert(now);
            transition(record, Phase::RollingOut, now);
        }
        SpecState::Other => {
            record.reason = Some("the workload changed before the patch was applied".into());
            transition(record, Phase::Abandoned, now);
        }
    }
}

/// After reading the rollout status.
pub fn on_rollout(
    record: &mut RolloutRecord,
    settings: &RolloutSettings,
    status: RolloutStatus,
    now: i64,
) {
    let applied = record.applied_at.unwrap_or(record.planned_at);
    if status.complete() {
        record.baking_since = Some(now);
        transition(record, Phase::Baking, now);
    } else if status.failed || now - applied > settings.rollout_timeout_s {
        let why = if status.failed {
            "the rollout failed (progress deadline exceeded)".to_string()
        } else {
            format!(
                "the rollout did not complete within {} minutes ({}/{} pods updated, {} available)",
                settings.rollout_timeout_s / 60,
                status.updated,
                status.replicas,
                status.available
            )
        };
        start_revert(record, why, now);
    }
}

/// Whether a breach seen while pods roll is clear enough to revert before
/// the bake: a resource signal breached (OOM kills, restarts, throttling,
/// readiness); or an SLI breached while throttling rose (the new limits
/// bind); or an SLI breached by `early_abort_factor` times its tolerance.
/// Anything else may be the warm-up every rollout costs, and waits for the
/// bake.
pub fn clear_breach(
    evaluation: &Evaluation,
    policy: &GuardPolicy,
    settings: &RolloutSettings,
) -> bool {
    if evaluation.verdict != Verdict::Breach {
        return false;
    }
    let resource = |s: Signal| {
        matches!(
            s,
            Signal::OomKills | Signal::Restarts | Signal::Throttling | Signal::Readiness
        )
    };
    if evaluation.breaches().any(|f| resource(f.signal)) {
        return true;
    }
    let throttling_rose = evaluation
        .findings
        .iter()
        .any(|f| f.signal == Signal::Throttling && f.observed - f.baseline >= THROTTLING_RISE_SEEN);
    if throttling_rose {
        return true;
    }
    let factor = settings.early_abort_factor;
    evaluation.breaches().any(|f| match f.signal {
        Signal::ErrorRatio => f.observed - f.baseline > policy.error_ratio_budget * factor,
        Signal::LatencyP95 | Signal::LatencyP99 => {
            f.observed > f.baseline * (1.0 + policy.latency_tolerance * factor)
        }
        _ => false,
    })
}

/// A rise of the throttled share of CFS periods that shows limits now bind.
const THROTTLING_RISE_SEEN: f64 = 0.01;

/// While pods roll, a clear breach (see [`clear_breach`]) already reverts
/// (DESIGN §1: abort early); anything else waits for the bake.
pub fn on_early_evaluation(
    record: &mut RolloutRecord,
    evaluation: Evaluation,
    policy: &GuardPolicy,
    settings: &RolloutSettings,
    now: i64,
) {
    if clear_breach(&evaluation, policy, settings) {
        revert_on(record, evaluation, "SLO regression during the rollout", now);
    }
}

/// After the guard evaluated the bake so far.
pub fn on_evaluation(
    record: &mut RolloutRecord,
    settings: &RolloutSettings,
    evaluation: Evaluation,
    now: i64,
) {
    let since = record.baking_since.unwrap_or(now);
    let deadline = since + settings.warmup_s + settings.bake_s;
    let verdict = evaluation.verdict;
    let summary = evaluation.summary();
    match verdict {
        Verdict::Breach => revert_on(record, evaluation, "SLO regression", now),
        // Missing data, or an SLI still pending, extends the bake up to the
        // grace; past it the change is reverted: never confirmed without evidence.
        // A fast-path increase answers OOM kills or throttling: undoing it
        // for want of a comparison would bring those back. It is kept, and
        // the verdict says it was not judged; a breach still reverts it.
        Verdict::NoData | Verdict::Healthy
            if (verdict == Verdict::NoData || evaluation.pending)
                && now >= deadline + settings.no_data_grace_s
                && record.change.fast_path =>
        {
            record.verdict = Some(VerdictRecord {
                at: now,
                verdict,
                summary: format!("kept without a full verdict (fast-path increase): {summary}"),
                evaluation,
            });
            transition(record, Phase::Confirmed, now);
        }
        Verdict::NoData | Verdict::Healthy
            if (verdict == Verdict::NoData || evaluation.pending)
                && now >= deadline + settings.no_data_grace_s =>
        {
            record.verdict = Some(VerdictRecord {
                at: now,
                verdict,
                summary: summary.clone(),
                evaluation,
            });
            start_revert(
                record,
                format!(
                    "SLIs not judged {} minutes past the bake deadline ({summary}): never confirmed without evidence",
                    settings.no_data_grace_s / 60
                ),
                now,
            );
        }
        Verdict::Healthy if now >= deadline && !evaluation.pending => {
            record.verdict = Some(VerdictRecord {
                at: now,
                verdict,
                summary,
                evaluation,
            });
            transition(record, Phase::Confirmed, now);
        }
        _ => {} // keep baking (missing data extends the bake up to the grace)
    }
}

/// After a restart, a bake whose deadline passed without a verdict is
/// reverted (DESIGN §6): the agent cannot vouch for a window it did not watch.
pub fn recover_baking(record: &mut RolloutRecord, settings: &RolloutSettings, now: i64) {
    let since = record.baking_since.unwrap_or(now);
    if now > since + settings.warmup_s + settings.bake_s + settings.no_data_grace_s {
        start_revert(
            record,
            "the agent was down past the end of the bake window; the change was never verified"
                .into(),
            now,
        );
    }
}

/// After a watch comparison: a breach reverts a confirmed change.
pub fn on_watch(
    record: &mut RolloutRecord,
    window: (i64, i64),
    evaluation: Option<Evaluation>,
    now: i64,
) {
    record.watched_until = Some(window.1);
    if let Some(evaluation) = evaluation
        && evaluation.verdict == Verdict::Breach
    {
        revert_on(record, evaluation, "SLO regression after confirmation", now);
    }
}

/// Whether two windows carried comparable load (request volumes within
/// `tolerance` of each other).
pub fn comparable(baseline_requests: f64, window_requests: f64, tolerance: f64) -> bool {
    let (lo, hi) = if baseline_requests <= window_requests {
        (baseline_requests, window_requests)
    } else {
        (window_requests, baseline_requests)
    };
    hi > 0.0 && lo >= hi * (1.0 - tolerance)
}

/// After trying the revert patch.
pub fn on_reverted(
    record: &mut RolloutRecord,
    settings: &RolloutSettings,
    outcome: Result<(), String>,
    now: i64,
) {
    match outcome {
        Ok(()) => {
            record.reverted_at = Some(now);
            record.held_until = Some(now + settings.hold_after_revert_s);
            transition(record, Phase::Reverted, now);
        }
        Err(why) => {
            // Someone changed the workload after us: theirs wins.
            let reason = record.reason.take().unwrap_or_default();
            record.reason = Some(format!("{reason}; revert not applied: {why}"));
            record.held_until = Some(now + settings.hold_after_revert_s);
            transition(record, Phase::Abandoned, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Resources, WorkloadKind, WorkloadRef};
    use crate::guard::Finding;
    use crate::plan::{ChangeReason, ContainerChange};
    use crate::units::MilliCores;

    const T0: i64 = 1_000_000;

    fn record() -> RolloutRecord {
        let from = Resources {
            cpu_request: Some(MilliCores(1000)),
            ..Resources::default()
        };
        let to = Resources {
            cpu_request: Some(MilliCores(750)),
            ..Resources::default()
        };
        RolloutRecord::new(
            Change {
                id: "c1".into(),
                fingerprint: "f1".into(),
                workload: WorkloadRef {
                    namespace: "shop".into(),
                    kind: WorkloadKind::Deployment,
                    name: "web".into(),
                },
                containers: vec![ContainerChange {
                    container: "app".into(),
                    from,
                    to,
                }],
                reason: ChangeReason::Savings,
                savings_per_month_usd: 10.0,
                fast_path: false,
            },
            T0,
        )
    }

    fn evaluation(verdict: Verdict, findings: Vec<Finding>) -> Evaluation {
        Evaluation {
            verdict,
            findings,
            skipped: Vec::new(),
            ignored_samples: 0,
            pending: false,
        }
    }

    fn finding(signal: Signal, baseline: f64, observed: f64, breach: bool) -> Finding {
        Finding {
            signal,
            baseline,
            observed,
            threshold: baseline * 1.1,
            p_value: Some(0.001),
            breach,
            message: format!("{signal} {baseline} → {observed}"),
        }
    }

    fn status(updated: u32, available: u32) -> RolloutStatus {
        RolloutStatus {
            replicas: 3,
            updated,
            available,
            failed: false,
        }
    }

    #[test]
    fn the_happy_path_confirms_after_warm_up_and_bake() {
        let s = RolloutSettings::default();
        let mut r = record();
        assert_eq!(next(&r, &s, T0), Next::Apply);
        on_applied(&mut r, Ok(()), T0 + 60);
        assert_eq!(r.phase, Phase::RollingOut);
        on_rollout(&mut r, &s, status(2, 1), T0 + 120);
        assert_eq!(r.phase, Phase::RollingOut);
        on_rollout(&mut r, &s, status(3, 3), T0 + 240);
        assert_eq!(r.phase, Phase::Baking);
        // Warm-up: nothing is evaluated yet.
        assert_eq!(next(&r, &s, T0 + 240 + s.warmup_s), Next::Wait);
        let at = T0 + 240 + s.warmup_s + 60;
        assert_eq!(
            next(&r, &s, at),
            Next::Evaluate {
                baseline: (T0 + 60 - s.baseline_s, T0 + 60),
                bake: (T0 + 240 + s.warmup_s, at),
            }
        );
        on_evaluation(&mut r, &s, evaluation(Verdict::Healthy, vec![]), at);
        assert_eq!(
            r.phase,
            Phase::Baking,
            "healthy before the deadline keeps baking"
        );
        let deadline = T0 + 240 + s.warmup_s + s.bake_s;
        on_evaluation(&mut r, &s, evaluation(Verdict::Healthy, vec![]), deadline);
        assert_eq!(r.phase, Phase::Confirmed);
        assert!(r.verdict.is_some());
    }

    #[test]
    fn a_breach_reverts_and_holds() {
        let s = RolloutSettings::default();
        let mut r = record();
        on_applied(&mut r, Ok(()), T0);
        on_rollout(&mut r, &s, status(3, 3), T0 + 180);
        let breach = evaluation(
            Verdict::Breach,
            vec![finding(Signal::LatencyP99, 0.1, 0.2, true)],
        );
        on_evaluation(&mut r, &s, breach, T0 + 900);
        assert_eq!(r.phase, Phase::Reverting);
        assert!(
            r.reason
                .as_deref()
                .is_some_and(|x| x.starts_with("SLO regression"))
        );
        assert_eq!(next(&r, &s, T0 + 900), Next::Revert);
        assert_eq!(
            r.revert_patch().containers[0].set,
            r.change.containers[0].from
        );
        on_reverted(&mut r, &s, Ok(()), T0 + 960);
        assert_eq!(r.phase, Phase::Reverted);
        assert_eq!(r.held_until, Some(T0 + 960 + s.hold_after_revert_s));
    }

    #[test]
    fn missing_data_extends_then_reverts_never_confirms() {
        let s = RolloutSettings::default();
        let mut r = record();
        on_applied(&mut r, Ok(()), T0);
        on_rollout(&mut r, &s, status(3, 3), T0);
        let deadline = T0 + s.warmup_s + s.bake_s;
        on_evaluation(&mut r, &s, evaluation(Verdict::NoData, vec![]), deadline);
        assert_eq!(r.phase, Phase::Baking, "extended past the deadline");
        on_evaluation(
            &mut r,
            &s,
            evaluation(Verdict::NoData, vec![]),
            deadline + s.no_data_grace_s,
        );
        assert_eq!(r.phase, Phase::Reverting);
    }

    #[test]
    fn a_pending_sli_never_confirms() {
        let s = RolloutSettings::default();
        let mut r = record();
        on_applied(&mut r, Ok(()), T0);
        on_rollout(&mut r, &s, status(3, 3), T0);
        let deadline = T0 + s.warmup_s + s.bake_s;
        let mut pending = evaluation(Verdict::Healthy, vec![]);
        pending.pending = true;
        on_evaluation(&mut r, &s, pending.clone(), deadline);
        assert_eq!(
            r.phase,
            Phase::Baking,
            "healthy but latency unjudged: keep baking"
        );
        on_evaluation(&mut r, &s, pending.clone(), deadline + s.no_data_grace_s);
        assert_eq!(r.phase, Phase::Reverting);

        // A fast-path increase is kept instead (reverting it would bring
        // the OOM kills back), with a verdict that says it was not judged.
        let mut r = record();
        r.change.fast_path = true;
        on_applied(&mut r, Ok(()), T0);
        on_rollout(&mut r, &s, status(3, 3), T0);
        on_evaluation(&mut r, &s, pending, deadline + s.no_data_grace_s);
        assert_eq!(r.phase, Phase::Confirmed);
        let verdict = r.verdict.as_ref().expect("verdict");
        assert!(
            verdict.summary.starts_with("kept without a full verdict"),
            "{}",
            verdict.summary
        );
        // A breach still reverts it.
        let mut r = record();
        r.change.fast_path = true;
        on_applied(&mut r, Ok(()), T0);
        on_rollout(&mut r, &s, status(3, 3), T0);
        on_evaluation(&mut r, &s, evaluation(Verdict::Breach, vec![]), deadline);
        assert_eq!(r.phase, Phase::Reverting);
    }

    #[test]
    fn stuck_rollouts_and_conflicts() {
        let s = RolloutSettings::default();
        let mut r = record();
        on_applied(&mut r, Ok(()), T0);
        on_rollout(&mut r, &s, status(1, 0), T0 + s.rollout_timeout_s + 1);
        assert_eq!(r.phase, Phase::Reverting);
        assert!(
            r.reason
                .as_deref()
                .is_some_and(|x| x.contains("did not complete"))
        );

        let mut r = record();
        on_applied(&mut r, Err("conflict: resources changed".into()), T0);
        assert_eq!(r.phase, Phase::Abandoned);

        let mut r = record();
        on_applied(&mut r, Ok(()), T0);
        start_revert(&mut r, "test".into(), T0 + 60);
        on_reverted(&mut r, &s, Err("conflict".into()), T0 + 120);
        assert_eq!(
            r.phase,
            Phase::Abandoned,
            "someone else's later change wins"
        );
    }

    #[test]
    fn recovery_after_a_crash() {
        let s = RolloutSettings::default();
        for (spec, phase) in [
            (SpecState::Before, Phase::Planned),
            (SpecState::After, Phase::RollingOut),
            (SpecState::Other, Phase::Abandoned),
        ] {
            let mut r = record();
            recover_planned(&mut r, spec, T0 + 60);
            assert_eq!(r.phase, phase, "{spec:?}");
        }
        let mut r = record();
        on_applied(&mut r, Ok(()), T0);
        on_rollout(&mut r, &s, status(3, 3), T0);
        recover_baking(&mut r, &s, T0 + 60);
        assert_eq!(r.phase, Phase::Baking, "still inside the bake window");
        recover_baking(
            &mut r,
            &s,
            T0 + s.warmup_s + s.bake_s + s.no_data_grace_s + 1,
        );
        assert_eq!(
            r.phase,
            Phase::Reverting,
            "a bake nobody watched is reverted"
        );
    }

    #[test]
    fn only_clear_breaches_abort_a_rollout() {
        let s = RolloutSettings::default();
        let p = GuardPolicy::default();
        let latency = |observed: f64| finding(Signal::LatencyP99, 0.10, observed, true);
        let throttling = |rise: f64| finding(Signal::Throttling, 0.0, rise, false);
        let cases = [
            (vec![latency(0.12)], false, "warm-up sized rise"),
            (vec![latency(0.16)], true, "+60 % is 5× the tolerance"),
            (
                vec![latency(0.12), throttling(0.05)],
                true,
                "throttling rose with latency",
            ),
            (
                vec![latency(0.12), throttling(0.0)],
                false,
                "no resource moved",
            ),
            (
                vec![finding(Signal::OomKills, 0.0, 1.0, true)],
                true,
                "OOM kill",
            ),
        ];
        for (findings, clear, why) in cases {
            assert_eq!(
                clear_breach(&evaluation(Verdict::Breach, findings), &p, &s),
                clear,
                "{why}"
            );
        }
        assert!(!clear_breach(&evaluation(Verdict::Healthy, vec![]), &p, &s));
    }

    #[test]
    fn confirmed_changes_are_watched_against_the_day_before() {
        let s = RolloutSettings::default();
        let mut r = record();
        on_applied(&mut r, Ok(()), T0);
        r.phase = Phase::Confirmed;
        r.updated_at = T0 + 3600;
        assert_eq!(
            next(&r, &s, T0 + 3600 + 1800),
            Next::Wait,
            "the first hour is not over"
        );
        let at = T0 + 7200;
        assert_eq!(
            next(&r, &s, at),
            Next::Watch {
                baseline: (T0 + 3600 - 86_400, T0 + 7200 - 86_400),
                window: (T0 + 3600, T0 + 7200),
            }
        );
        on_watch(&mut r, (T0 + 3600, T0 + 7200), None, at);
        assert_eq!(
            (r.phase, r.watched_until),
            (Phase::Confirmed, Some(T0 + 7200))
        );
        let breach = evaluation(
            Verdict::Breach,
            vec![finding(Signal::LatencyP95, 0.1, 0.2, true)],
        );
        on_watch(&mut r, (T0 + 7200, T0 + 10_800), Some(breach), T0 + 10_800);
        assert_eq!(r.phase, Phase::Reverting);
        // Past the watch, nothing more is compared.
        let mut r = record();
        r.phase = Phase::Confirmed;
        r.updated_at = T0;
        r.watched_until = Some(T0 + s.watch_s);
        assert_eq!(next(&r, &s, T0 + s.watch_s + 7200), Next::Wait);
    }

    #[test]
    fn load_must_be_comparable() {
        assert!(comparable(1000.0, 1100.0, 0.2));
        assert!(comparable(1100.0, 1000.0, 0.2));
        assert!(!comparable(1000.0, 1300.0, 0.2));
        assert!(!comparable(0.0, 0.0, 0.2));
    }
}
