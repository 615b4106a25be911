//! The control loop: observe → recommend → plan → apply → verify →
//! confirm or revert, written once against the ports so it runs the same
//! against a real cluster and in the simulator.
//!
//! [`Agent::tick`] is called every minute (by the daemon's timer, or by the
//! simulator's virtual clock). Each tick advances every change in flight by
//! at most one step; every `plan_interval` it plans; every
//! `recommend_interval` it refreshes recommendations, and on every tick it
//! asks for urgent ones (new OOM kills, throttling) so fast paths do not wait.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::WorkloadRef;
use crate::guard::{self, GuardPolicy};
use crate::plan::Mode;
use crate::plan::{self, Change, Decision, Guardrails, RateBudget, WorkloadView};
use crate::ports::{
    AgentEvent, ChangeDetail, Clock, Cluster, EventDetail, EventKind, Notifier, PortError,
    Publication, SloSource, UsageSource,
};
use crate::recommend::Recommendation;
use crate::rollout::{self, Next, Phase, RolloutRecord, RolloutSettings, SpecState};

const DAY_S: i64 = 86_400;

/// How the agent runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentSettings {
    pub guardrails: Guardrails,
    pub rollout: RolloutSettings,
    pub guard: GuardPolicy,
    pub plan_interval_s: i64,
    pub recommend_interval_s: i64,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            guardrails: Guardrails::default(),
            rollout: RolloutSettings::default(),
            guard: GuardPolicy::default(),
            plan_interval_s: 300,
            recommend_interval_s: 3600,
        }
    }
}

/// Counters of what the agent did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStats {
    pub applied: u64,
    pub confirmed: u64,
    pub reverted: u64,
    pub abandoned: u64,
    pub fast_paths: u64,
    pub proposals: u64,
    /// Seconds from a regression becoming visible to the revert, per revert.
    pub time_to_revert_s: Vec<i64>,
    pub port_errors: u64,
}

/// The agent and the ports it acts through.
pub struct Agent<C, U, S, K, N> {
    pub cluster: C,
    pub usage: U,
    pub slo: S,
    pub clock: K,
    pub notifier: N,
    pub settings: AgentSettings,
    records: Vec<RolloutRecord>,
    budget: RateBudget,
    recommendations: Vec<Recommendation>,
    last_plan: Option<i64>,
    last_recommend: Option<i64>,
    last_urgent: Option<i64>,
    pub stats: AgentStats,
    /// The last proposal per workload (Observe/Approve modes).
    pub proposals: HashMap<WorkloadRef, Change>,
    /// The proposals of the last plan, each with its workload's mode (for
    /// the digest: `approve` ones wait for a human).
    pub last_proposals: Vec<(Change, Mode)>,
    /// Workloads whose memory keeps growing past every bump.
    leaks: std::collections::BTreeSet<WorkloadRef>,
    /// The metrics backend answered the last time it was asked.
    metrics_ok: bool,
    /// What was last published per workload (only changes are written).
    published: HashMap<WorkloadRef, Publication>,
    /// Reverts RBAC refused, by change id: attempts so far, next try.
    revert_refused: HashMap<String, (u32, i64)>,
}

/// What planning decided for a workload, as published for review.
enum Outcome {
    Applied,
    /// The change's id and fingerprint.
    Proposed(String, String),
    Skipped(String),
}

/// Why a tick could not finish.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cluster: {0}")]
    Cluster(PortError),
}

impl<C, U, S, K, N> Agent<C, U, S, K, N>
where
    C: Cluster,
    U: UsageSource,
    S: SloSource,
    K: Clock,
    N: Notifier,
{
    /// Loads persisted rollouts and resumes them (DESIGN §6).
    pub async fn start(
        cluster: C,
        usage: U,
        slo: S,
        clock: K,
        notifier: N,
        settings: AgentSettings,
    ) -> Result<Self, AgentError> {
        let records = cluster.load_rollouts().await.map_err(AgentError::Cluster)?;
        let budget = RateBudget::new(settings.guardrails.changes_per_hour);
        let mut agent = Agent {
            cluster,
            usage,
            slo,
            clock,
            notifier,
            settings,
            records,
            budget,
            recommendations: Vec::new(),
            last_plan: None,
            last_recommend: None,
            last_urgent: None,
            stats: AgentStats::default(),
            proposals: HashMap::new(),
            last_proposals: Vec::new(),
            leaks: std::collections::BTreeSet::new(),
            metrics_ok: true,
            published: HashMap::new(),
            revert_refused: HashMap::new(),
        };
        agent.recover().await?;
        Ok(agent)
    }

    /// Workloads the leak detector stopped chasing.
    pub fn leak_suspects(&self) -> impl Iterator<Item = &WorkloadRef> {
        self.leaks.iter()
    }

    /// Every persisted record, finished ones included.
    pub fn records(&self) -> &[RolloutRecord] {
        &self.records
    }

    pub fn in_flight(&self) -> usize {
        self.records
            .iter()
            .filter(|r| !r.phase.is_terminal() && !r.change.fast_path)
            .count()
    }

    async fn recover(&mut self) -> Result<(), AgentError> {
        let now = self.clock.now();
        let views = self
            .cluster
            .workloads()
            .await
            .map_err(AgentError::Cluster)?;
        for i in 0..self.records.len() {
            let before = self.records[i].phase;
            match before {
                Phase::Planned => {
                    let spec = spec_state(&views, &self.records[i].change);
                    rollout::recover_planned(&mut self.records[i], spec, now);
                }
                Phase::Baking => {
                    rollout::recover_baking(&mut self.records[i], &self.settings.rollout, now)
                }
                _ => {}
            }
            if self.records[i].phase != before {
                self.persist(i).await;
            }
        }
        Ok(())
    }

    async fn persist(&mut self, i: usize) {
        if let Err(e) = self.cluster.save_rollout(&self.records[i]).await {
            self.stats.port_errors += 1;
            tracing::warn!(change_id = %self.records[i].change.id, error = %e, "could not persist rollout state");
        }
    }

    async fn emit(
        &mut self,
        workload: &WorkloadRef,
        change_id: Option<&str>,
        kind: EventKind,
        message: String,
        detail: Option<EventDetail>,
    ) {
        let event = AgentEvent {
            at: self.clock.now(),
            workload: workload.clone(),
            change_id: change_id.map(str::to_string),
            kind,
            message,
            detail,
        };
        tracing::info!(workload = %event.workload, change_id = event.change_id.as_deref().unwrap_or(""), kind = ?event.kind, "{}", event.message);
        if self.cluster.record_event(&event).await.is_err() {
            self.stats.port_errors += 1;
        }
        self.notifier.notify(&event);
    }

    /// One minute of the loop.
    pub async fn tick(&mut self) -> Result<(), AgentError> {
        let now = self.clock.now();
        for i in 0..self.records.len() {
            let r = &self.records[i];
            let watched = r.phase == Phase::Confirmed
                && now <= r.updated_at + self.settings.rollout.watch_s + rollout::WATCH_WINDOW_S;
            if !r.phase.is_terminal() || watched {
                self.advance(i, now).await;
            }
        }

        let due = |last: Option<i64>, every: i64| last.is_none_or(|l| now - l >= every);
        let mut urgent = Vec::new();
        if due(self.last_recommend, self.settings.recommend_interval_s) {
            match self.usage.recommendations(now).await {
                Ok(r) => {
                    self.recommendations = r;
                    self.last_recommend = Some(now);
                    self.last_urgent = Some(now);
                    self.metrics_ok = true;
                }
                Err(e) => {
                    self.stats.port_errors += 1;
                    self.metrics_ok = false;
                    tracing::warn!(error = %e, "recommendations unavailable; no new changes this cycle");
                }
            }
        } else if let Some(since) = self.last_urgent {
            match self.usage.urgent(since, now).await {
                Ok(r) => {
                    urgent = r;
                    self.last_urgent = Some(now);
                    self.metrics_ok = true;
                }
                Err(_) => {
                    self.stats.port_errors += 1;
                    self.metrics_ok = false;
                }
            }
        }
        if !urgent.is_empty() {
            for r in &urgent {
                if let Some(slot) = self
                    .recommendations
                    .iter_mut()
                    .find(|x| x.target == r.target)
                {
                    *slot = r.clone();
                } else {
                    self.recommendations.push(r.clone());
                }
            }
        }
        if due(self.last_plan, self.settings.plan_interval_s) || !urgent.is_empty() {
            self.last_plan = Some(now);
            self.plan(now).await?;
        }
        Ok(())
    }

    async fn plan(&mut self, now: i64) -> Result<(), AgentError> {
        if !self.metrics_ok {
            // Without fresh usage and SLIs nothing new is started: a change
            // could not be verified, and recommendations may be stale.
            return Ok(());
        }
        let mut views = match self.cluster.workloads().await {
            Ok(v) => v,
            Err(e) => {
                self.stats.port_errors += 1;
                tracing::warn!(error = %e, "cannot list workloads; not planning this cycle");
                return Ok(());
            }
        };
        self.annotate(&mut views, now);
        let in_flight = self.in_flight();
        let decisions = plan::plan(
            now,
            &self.settings.guardrails,
            &views,
            &self.recommendations,
            in_flight,
            &mut self.budget,
        );
        let mut outcomes: HashMap<WorkloadRef, Outcome> = HashMap::new();
        let mode_of = |workload: &WorkloadRef| {
            views
                .iter()
                .find(|v| &v.workload == workload)
                .and_then(|v| v.mode)
                .unwrap_or(self.settings.guardrails.mode)
        };
        let modes: Vec<Mode> = decisions.iter().map(|d| mode_of(d.workload())).collect();
        self.last_proposals.clear();
        for (decision, mode) in decisions.into_iter().zip(modes) {
            match decision {
                Decision::Apply(change) => {
                    outcomes.insert(change.workload.clone(), Outcome::Applied);
                    self.begin(change, now).await
                }
                Decision::Propose(change) => {
                    outcomes.insert(
                        change.workload.clone(),
                        Outcome::Proposed(change.id.clone(), change.fingerprint.clone()),
                    );
                    self.last_proposals.push((change.clone(), mode));
                    if self
                        .proposals
                        .get(&change.workload)
                        .is_none_or(|p| p.fingerprint != change.fingerprint)
                    {
                        self.stats.proposals += 1;
                        self.emit(
                            &change.workload,
                            Some(&change.id),
                            EventKind::Proposed,
                            describe(&change),
                            Some(EventDetail::Change(Box::new(ChangeDetail::proposed(
                                &change, mode,
                            )))),
                        )
                        .await;
                    }
                    self.proposals.insert(change.workload.clone(), change);
                }
                Decision::Skip { workload, reason } => {
                    if reason.contains("leak suspected") && self.leaks.insert(workload.clone()) {
                        self.emit(
                            &workload,
                            None,
                            EventKind::LeakSuspected,
                            reason.clone(),
                            None,
                        )
                        .await;
                    }
                    // A proposal and a skip for the same workload: the
                    // proposal is what people review.
                    outcomes.entry(workload).or_insert(Outcome::Skipped(reason));
                }
            }
        }
        self.publish(&views, outcomes).await;
        Ok(())
    }

    /// Shows every workload's recommendation for review (the Recommendation
    /// resource in a cluster); writes only what changed since last time.
    async fn publish(
        &mut self,
        views: &[WorkloadView],
        mut outcomes: HashMap<WorkloadRef, Outcome>,
    ) {
        for view in views {
            let containers: Vec<Recommendation> = self
                .recommendations
                .iter()
                .filter(|r| r.target.workload == view.workload)
                .cloned()
                .collect();
            if containers.is_empty() {
                continue;
            }
            let has_record = self
                .records
                .iter()
                .any(|r| r.change.workload == view.workload);
            let (phase, proposal, reason) = match outcomes.remove(&view.workload) {
                Some(Outcome::Proposed(id, fingerprint)) => {
                    (Some("proposed".to_string()), Some((id, fingerprint)), None)
                }
                // The rollout record of the change (or the last one) owns the phase.
                Some(Outcome::Applied) => (None, None, None),
                Some(Outcome::Skipped(reason)) if has_record => (None, None, Some(reason)),
                Some(Outcome::Skipped(reason)) => {
                    (Some("observing".to_string()), None, Some(reason))
                }
                None if has_record => (None, None, None),
                None => (Some("observing".to_string()), None, None),
            };
            let publication = Publication {
                workload: view.workload.clone(),
                phase,
                savings_per_month_usd: containers.iter().map(|r| r.savings_per_month_usd).sum(),
                containers,
                proposal,
                reason,
            };
            if self
                .published
                .get(&view.workload)
                .is_some_and(|last| last.shows_the_same(&publication))
            {
                continue;
            }
            match self.cluster.publish(&publication).await {
                Ok(()) => {
                    self.published.insert(view.workload.clone(), publication);
                }
                Err(e) => {
                    self.stats.port_errors += 1;
                    tracing::warn!(workload = %view.workload, error = %e, "recommendation not published; retrying next plan");
                }
            }
        }
    }

    /// Fills in what only the agent knows: holds, cooldowns, OOM bumps, and
    /// which workloads have a change in flight.
    fn annotate(&self, views: &mut [WorkloadView], now: i64) {
        let mut by_workload: HashMap<&WorkloadRef, Vec<&RolloutRecord>> = HashMap::new();
        for r in &self.records {
            by_workload.entry(&r.change.workload).or_default().push(r);
        }
        for view in views.iter_mut() {
            let Some(records) = by_workload.get(&view.workload) else {
                continue;
            };
            for r in records {
                match r.phase {
                    Phase::Confirmed => {
                        view.last_confirmed_at = Some(
                            view.last_confirmed_at
                                .map_or(r.updated_at, |t| t.max(r.updated_at)),
                        );
                    }
                    Phase::Reverted | Phase::Abandoned => {
                        if let Some(until) = r.held_until.filter(|&u| u > now) {
                            view.held_until = Some(view.held_until.map_or(until, |h| h.max(until)));
                        }
                    }
                    _ => view.change_in_flight = true,
                }
                if r.change.fast_path
                    && matches!(r.change.reason, plan::ChangeReason::OomKill)
                    && !view.recent_oom_bumps.contains(&r.planned_at)
                {
                    view.recent_oom_bumps.push(r.planned_at);
                }
                if r.change.fast_path && matches!(r.change.reason, plan::ChangeReason::Throttling) {
                    view.last_throttling_bump = view.last_throttling_bump.max(Some(r.planned_at));
                }
            }
        }
    }

    async fn begin(&mut self, change: Change, now: i64) {
        if change.fast_path {
            self.stats.fast_paths += 1;
        }
        let message = describe(&change);
        let kind = if change.fast_path {
            EventKind::FastPath
        } else {
            EventKind::Applied
        };
        let workload = change.workload.clone();
        let id = change.id.clone();
        self.records.push(RolloutRecord::new(change, now));
        let i = self.records.len() - 1;
        self.persist(i).await;
        let detail = EventDetail::Change(Box::new(ChangeDetail::from_record(&self.records[i])));
        self.emit(&workload, Some(&id), kind, message, Some(detail))
            .await;
        self.advance(i, now).await;
    }

    /// Asks the guard about `(bake.0, bake.1]` against the baseline window.
    /// A metrics backend that cannot answer is missing data, never health.
    async fn evaluate(
        &mut self,
        workload: &WorkloadRef,
        policy: &GuardPolicy,
        baseline: (i64, i64),
        bake: (i64, i64),
    ) -> guard::Evaluation {
        let seasonal = self.settings.rollout.seasonal_baseline;
        let data = async {
            let mut base_sli = self.slo.slis(workload, baseline.0, baseline.1).await?;
            // The same hours yesterday join the baseline, so a daily rise in
            // traffic during the bake is not blamed on the change (DESIGN §5).
            if seasonal
                && let Some(base) = base_sli.as_mut()
                && let Some(yesterday) = self
                    .slo
                    .slis(workload, bake.0 - DAY_S, bake.1 - DAY_S)
                    .await?
            {
                base.extend(yesterday);
            }
            let bake_sli = self.slo.slis(workload, bake.0, bake.1).await?;
            let base_res = self
                .slo
                .resource_signals(workload, baseline.0, baseline.1)
                .await?;
            let bake_res = self.slo.resource_signals(workload, bake.0, bake.1).await?;
            Ok::<_, PortError>((base_sli, bake_sli, base_res, bake_res))
        }
        .await;
        match data {
            Ok((base_sli, bake_sli, base_res, bake_res)) => guard::evaluate(
                policy,
                base_sli.as_deref(),
                bake_sli.as_deref(),
                &base_res,
                &bake_res,
            ),
            Err(_) => {
                self.stats.port_errors += 1;
                self.metrics_ok = false;
                guard::evaluate(policy, Some(&[]), Some(&[]), &[], &[])
            }
        }
    }

    /// The post-confirm comparison of `window` with `baseline`; `None` when
    /// data is missing or the load differed too much to compare.
    async fn watch(
        &mut self,
        workload: &WorkloadRef,
        baseline: (i64, i64),
        window: (i64, i64),
        settings: &RolloutSettings,
    ) -> Option<guard::Evaluation> {
        let base = self
            .slo
            .slis(workload, baseline.0, baseline.1)
            .await
            .ok()??;
        let now = self.slo.slis(workload, window.0, window.1).await.ok()??;
        let volume = |s: &[guard::SliSample]| {
            s.iter()
                .map(|x| x.requests)
                .filter(|r| r.is_finite())
                .sum::<f64>()
        };
        if base.is_empty()
            || now.is_empty()
            || !rollout::comparable(volume(&base), volume(&now), settings.comparable_load)
        {
            return None;
        }
        let base_res = self
            .slo
            .resource_signals(workload, baseline.0, baseline.1)
            .await
            .ok()?;
        let now_res = self
            .slo
            .resource_signals(workload, window.0, window.1)
            .await
            .ok()?;
        let evaluation = guard::evaluate(
            &self.settings.guard,
            Some(&base),
            Some(&now),
            &base_res,
            &now_res,
        );
        Some(evaluation)
    }

    /// Moves record `i` forward by at most one I/O step.
    async fn advance(&mut self, i: usize, now: i64) {
        let settings = self.settings.rollout;
        let before = self.records[i].phase;
        match rollout::next(&self.records[i], &settings, now) {
            Next::Wait => return,
            Next::Apply => {
                let patch = self.records[i].forward_patch();
                let outcome = self.cluster.apply(&patch).await;
                if let Err(PortError::Unavailable(e)) = &outcome {
                    self.stats.port_errors += 1;
                    tracing::warn!(error = %e, "patch not applied; retrying next tick");
                    return;
                }
                let forbidden = matches!(outcome, Err(PortError::Forbidden(_)));
                rollout::on_applied(
                    &mut self.records[i],
                    outcome.map_err(|e| e.to_string()),
                    now,
                );
                if forbidden {
                    // RBAC will refuse the same patch until someone grants the
                    // verb: hold the workload like a revert does, instead of
                    // spending the change budget on it every plan.
                    self.stats.port_errors += 1;
                    self.records[i].held_until = Some(now + settings.hold_after_revert_s);
                }
            }
            Next::CheckRollout { baseline, bake } => {
                // Pods are restarting: only a clear breach reverts now.
                let policy = self.settings.guard.clone();
                let workload = self.records[i].change.workload.clone();
                let evaluation = self.evaluate(&workload, &policy, baseline, bake).await;
                rollout::on_early_evaluation(
                    &mut self.records[i],
                    evaluation,
                    &policy,
                    &settings,
                    now,
                );
                if self.records[i].phase == Phase::RollingOut {
                    match self.cluster.rollout_status(&workload).await {
                        Ok(status) => {
                            rollout::on_rollout(&mut self.records[i], &settings, status, now)
                        }
                        Err(_) => self.stats.port_errors += 1,
                    }
                }
            }
            Next::Evaluate { baseline, bake } => {
                let policy = self.settings.guard.clone();
                let workload = self.records[i].change.workload.clone();
                let evaluation = self.evaluate(&workload, &policy, baseline, bake).await;
                rollout::on_evaluation(&mut self.records[i], &settings, evaluation, now);
            }
            Next::Watch { baseline, window } => {
                let workload = self.records[i].change.workload.clone();
                let evaluation = self.watch(&workload, baseline, window, &settings).await;
                rollout::on_watch(&mut self.records[i], window, evaluation, now);
                if self.records[i].phase == Phase::Confirmed {
                    // Still confirmed: persist the watch mark, nothing to announce.
                    self.persist(i).await;
                    return;
                }
            }
            Next::Revert => {
                let patch = self.records[i].revert_patch();
                if self
                    .revert_refused
                    .get(&self.records[i].change.id)
                    .is_some_and(|&(_, retry_at)| now < retry_at)
                {
                    return;
                }
                let outcome = self.cluster.apply(&patch).await;
                if let Err(PortError::Unavailable(_)) = &outcome {
                    self.stats.port_errors += 1;
                    return;
                }
                if let Err(PortError::Forbidden(why)) = &outcome {
                    // A revert is never given up for want of a permission: the
                    // regressing change stays until it is undone. Retry with
                    // backoff (1, 2, 4 … 30 minutes) and say once what is missing.
                    self.stats.port_errors += 1;
                    let id = self.records[i].change.id.clone();
                    let (attempts, _) = self.revert_refused.get(&id).copied().unwrap_or((0, now));
                    let wait = (60_i64 << attempts.min(5)).min(1800);
                    self.revert_refused
                        .insert(id.clone(), (attempts + 1, now + wait));
                    tracing::error!(change_id = %id, error = %why, retry_in_s = wait, "revert refused by RBAC; grant the permission");
                    if attempts == 0 {
                        let workload = self.records[i].change.workload.clone();
                        self.emit(
                            &workload,
                            Some(&id),
                            EventKind::Trouble,
                            format!("revert refused, retrying until it is allowed: {why}"),
                            None,
                        )
                        .await;
                    }
                    return;
                }
                self.revert_refused.remove(&self.records[i].change.id);
                rollout::on_reverted(
                    &mut self.records[i],
                    &settings,
                    outcome.map_err(|e| e.to_string()),
                    now,
                );
            }
        }
        let after = self.records[i].phase;
        if after == before {
            return;
        }
        self.persist(i).await;
        let record = self.records[i].clone();
        let workload = &record.change.workload;
        let id = Some(record.change.id.as_str());
        let detail = || {
            Some(EventDetail::Change(Box::new(ChangeDetail::from_record(
                &record,
            ))))
        };
        match after {
            Phase::RollingOut => self.stats.applied += 1,
            Phase::Baking => {
                self.emit(
                    workload,
                    id,
                    EventKind::RolledOut,
                    "rollout complete; baking".into(),
                    detail(),
                )
                .await;
            }
            Phase::Confirmed => {
                self.stats.confirmed += 1;
                let summary = record
                    .verdict
                    .as_ref()
                    .map_or(String::new(), |v| v.summary.clone());
                self.emit(
                    workload,
                    id,
                    EventKind::Confirmed,
                    format!("confirmed: {summary}"),
                    detail(),
                )
                .await;
            }
            Phase::Reverting => {
                let reason = record.reason.clone().unwrap_or_default();
                self.emit(
                    workload,
                    id,
                    EventKind::Reverting,
                    format!("reverting: {reason}"),
                    detail(),
                )
                .await;
                // Revert in the same tick: a regression must not wait a minute more.
                Box::pin(self.advance(i, now)).await;
            }
            Phase::Reverted => {
                self.stats.reverted += 1;
                if let Some(seen) = record.regression_seen_at {
                    self.stats.time_to_revert_s.push(now - seen);
                }
                let reason = record.reason.clone().unwrap_or_default();
                self.emit(
                    workload,
                    id,
                    EventKind::Reverted,
                    format!("reverted: {reason}"),
                    detail(),
                )
                .await;
            }
            Phase::Abandoned => {
                self.stats.abandoned += 1;
                let reason = record.reason.clone().unwrap_or_default();
                // A refused permission is trouble to fix, not someone's edit.
                let kind = if reason.contains("forbidden: ") {
                    EventKind::Trouble
                } else {
                    EventKind::Conflict
                };
                self.emit(workload, id, kind, reason, detail()).await;
            }
            Phase::Planned => {}
        }
    }
}

/// Whether the workload shows the change's `from` values, `to` values, or neither.
pub fn spec_state(views: &[WorkloadView], change: &Change) -> SpecState {
    let Some(view) = views.iter().find(|v| v.workload == change.workload) else {
        return SpecState::Other;
    };
    let current = |name: &str| {
        view.containers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r)
    };
    if change
        .containers
        .iter()
        .all(|c| current(&c.container) == Some(c.to))
    {
        SpecState::After
    } else if change
        .containers
        .iter()
        .all(|c| current(&c.container) == Some(c.from))
    {
        SpecState::Before
    } else {
        SpecState::Other
    }
}

/// One line for people: what changes, from what to what, and why.
pub fn describe(change: &Change) -> String {
    let parts: Vec<String> = change
        .containers
        .iter()
        .map(|c| {
            let cpu = |r: &crate::domain::Resources| {
                r.cpu_request.map_or("none".into(), |m| m.to_string())
            };
            let mem = |r: &crate::domain::Resources| {
                r.memory_request.map_or("none".into(), |b| b.to_string())
            };
            format!(
                "{}: cpu {}→{}, memory {}→{}",
                c.container,
                cpu(&c.from),
                cpu(&c.to),
                mem(&c.from),
                mem(&c.to)
            )
        })
        .collect();
    format!(
        "{:?} ({:+.2} $/month): {}",
        change.reason,
        change.savings_per_month_usd,
        parts.join("; ")
    )
}

/// Requests and limits in one short phrase: `cpu 500m/1, memory 1Gi/1Gi`.
pub fn describe_resources(r: &crate::domain::Resources) -> String {
    let cpu = |m: Option<crate::units::MilliCores>| m.map_or("-".to_string(), |m| m.to_string());
    let mem = |b: Option<crate::units::Bytes>| b.map_or("-".to_string(), |b| b.to_string());
    format!(
        "cpu {}/{}, memory {}/{}",
        cpu(r.cpu_request),
        cpu(r.cpu_limit),
        mem(r.memory_request),
        mem(r.memory_limit)
    )
}
