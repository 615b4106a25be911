//! Runs a scenario: builds the simulated cluster from its fleet, lets
//! history accumulate, starts the real agent against the simulator's ports,
//! advances virtual time minute by minute with the scenario's faults, and
//! measures what the agent did against what the workloads would have done
//! on their original resources.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;

use super::cluster::{SimHandle, SimHpa, SimWorkload, World};
use super::models::{ModelSpec, load_model};
use super::scenario::{Fault, Scenario, ScenarioError};
use crate::agent::{Agent, AgentSettings, AgentStats};
use crate::domain::{ResourceKind, Resources, WorkloadKind, WorkloadRef};
use crate::ports::Silent;
use crate::recommend::policy::NodeCapacity;
use crate::recommend::usage::Window;
use crate::rollout::Phase;
use crate::units::{Bytes, MilliCores};

/// 2026-01-05T00:00:00Z, a Monday: every simulation starts here, so the
/// same seed gives the same numbers.
pub const EPOCH: i64 = 1_767_571_200;

/// Requested resources and what they cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CostSummary {
    pub cpu_request_millicores: u64,
    pub memory_request_bytes: u64,
    /// Requests × unit prices, per month.
    pub requests_usd_per_month: f64,
    /// Nodes needed by first-fit-decreasing bin packing.
    pub nodes: u64,
    pub nodes_usd_per_month: f64,
}

/// What a simulation run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SimReport {
    pub scenario: String,
    pub seed: u64,
    pub workloads: usize,
    pub before: CostSummary,
    pub after: CostSummary,
    /// OOM kills during the agent phase.
    pub oom_kills: u64,
    pub oom_episodes_max_per_workload: u64,
    pub throttled_minutes: u64,
    /// Minutes where a workload did measurably worse than on its original resources.
    pub agent_slo_violation_minutes: u64,
    pub applied: u64,
    pub confirmed: u64,
    pub reverted: u64,
    pub abandoned: u64,
    pub fast_paths: u64,
    pub proposals: u64,
    pub time_to_revert_median_s: Option<i64>,
    pub time_to_revert_max_s: Option<i64>,
    /// Reverts of changes that caused no violation.
    pub false_reverts: u64,
    /// Workloads still doing worse than on their original resources on the last day.
    pub unreverted_regressions: u64,
    /// Those workloads, with their violation minutes on the last day.
    pub regressed_workloads: Vec<String>,
    pub leaks_detected: u64,
    /// Changes confirmed while metrics were down.
    pub confirms_during_gap: u64,
    /// Changes applied while metrics were down.
    pub applied_during_gap: u64,
    /// Workloads and resources the scenario says must stay untouched but changed.
    pub touched_untouchables: Vec<String>,
    /// Patches that reached the cluster twice for the same change and values.
    pub duplicate_patches: u64,
    /// Most changes (not fast paths) in flight at once, checked every minute.
    pub max_in_flight: u64,
}

impl SimReport {
    pub fn cost_ratio(&self) -> f64 {
        if self.before.requests_usd_per_month > 0.0 {
            self.after.requests_usd_per_month / self.before.requests_usd_per_month
        } else {
            1.0
        }
    }
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("models: {0}")]
    Models(String),
    #[error(
        "scenario {scenario}: fleet entry {index} names model {model:?}, which is not in {dir} (have: {have})"
    )]
    UnknownModel {
        scenario: String,
        index: usize,
        model: String,
        dir: String,
        have: String,
    },
    #[error("the agent failed: {0}")]
    Agent(String),
}

fn seed_for(seed: u64, entry: usize, i: u32) -> u64 {
    let x = seed ^ ((entry as u64) << 32) ^ i as u64;
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb)
}

/// Builds the world of a scenario (history not yet simulated).
pub fn build_world(
    scenario: &Scenario,
    models: &BTreeMap<String, ModelSpec>,
    seed: u64,
) -> Result<World, SimError> {
    let start = EPOCH;
    let agent_start = start + scenario.history.as_secs() as i64;
    let end = agent_start + scenario.duration.as_secs() as i64;
    let window = Window {
        start,
        end,
        half_life_s: 86_400.0,
        startup_s: scenario.policy.startup_window.as_secs() as i64,
    };
    let mut workloads = Vec::new();
    for (index, entry) in scenario.fleet.iter().enumerate() {
        let model = models
            .get(&entry.model)
            .ok_or_else(|| SimError::UnknownModel {
                scenario: scenario.name.clone(),
                index,
                model: entry.model.clone(),
                dir: scenario.models.display().to_string(),
                have: models.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        let model = Arc::new(model.clone());
        let base = entry.name.clone().unwrap_or_else(|| entry.model.clone());
        for i in 0..entry.count {
            let name = if entry.count == 1 {
                base.clone()
            } else {
                format!("{base}-{i}")
            };
            let resources = entry
                .resources
                .as_ref()
                .map_or(model.defaults.resources, |r| Resources {
                    cpu_request: r.cpu_request,
                    cpu_limit: r.cpu_limit,
                    memory_request: r.memory_request,
                    memory_limit: r.memory_limit,
                });
            let replicas = entry.replicas.unwrap_or(model.defaults.replicas).max(1);
            let mut w = SimWorkload::new(
                WorkloadRef {
                    namespace: entry.namespace.clone(),
                    kind: WorkloadKind::Deployment,
                    name,
                },
                model.clone(),
                seed_for(seed, index, i),
                resources,
                replicas,
                &window,
                start,
            );
            w.hpa = entry.hpa.as_ref().map(|h| SimHpa {
                resource: h.resource,
                target_utilization: h.target_utilization_percent as f64 / 100.0,
                min_replicas: h.min_replicas,
                max_replicas: h.max_replicas,
            });
            w.mode = entry.mode;
            w.paused = entry.paused;
            w.gitops = entry.gitops;
            workloads.push(w);
        }
    }
    Ok(World {
        now: start,
        start,
        agent_start,
        end,
        window,
        workloads,
        rollouts: BTreeMap::new(),
        events: Vec::new(),
        metrics_down: false,
        gap_minutes: Vec::new(),
        policy: scenario.policy.clone(),
        pricing: scenario.pricing.clone(),
        node: NodeCapacity {
            cpu: scenario.node.cpu,
            memory: scenario.node.memory,
        },
        contention: 0.0,
        patches: Vec::new(),
    })
}

/// Agent settings of a scenario.
pub fn agent_settings(scenario: &Scenario) -> AgentSettings {
    let a = &scenario.agent;
    let mut settings = AgentSettings {
        guardrails: a.guardrails.clone(),
        rollout: a.rollout.to_settings(),
        guard: a.guard.clone(),
        ..AgentSettings::default()
    };
    if let Some(m) = a.plan_interval_minutes {
        settings.plan_interval_s = m * 60;
    }
    if let Some(m) = a.recommend_interval_minutes {
        settings.recommend_interval_s = m * 60;
    }
    settings
}

/// The agent over the simulator's ports.
pub type SimAgent = Agent<SimHandle, SimHandle, SimHandle, SimHandle, Silent>;

/// Runs a future of the simulator to completion. The simulated ports never
/// wait (virtual time), so one poll finishes it; a future that would wait
/// is a bug in a port, reported as an error rather than a hang.
pub fn complete<F: std::future::Future>(future: F) -> Result<F::Output, SimError> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => Ok(output),
        std::task::Poll::Pending => Err(SimError::Agent(
            "a simulated port waited; the simulator never waits".into(),
        )),
    }
}

/// Starts the real agent on the simulator's ports.
pub fn start_agent(
    world: &Rc<RefCell<World>>,
    settings: &AgentSettings,
) -> Result<SimAgent, SimError> {
    let h = SimHandle(world.clone());
    complete(Agent::start(
        h.clone(),
        h.clone(),
        h.clone(),
        h,
        Silent,
        settings.clone(),
    ))?
    .map_err(|e| SimError::Agent(e.to_string()))
}

/// Loads the models a scenario's fleet names (and only those: a scenario
/// that replays no trace runs where the traces are absent).
pub fn load_scenario_models(
    scenario: &Scenario,
    path: &Path,
) -> Result<BTreeMap<String, ModelSpec>, SimError> {
    let dir = scenario.models_dir(path);
    let names: BTreeSet<&str> = scenario.fleet.iter().map(|f| f.model.as_str()).collect();
    names
        .into_iter()
        .map(|name| {
            let file = dir.join(format!("{name}.yaml"));
            if !file.is_file() {
                return Err(SimError::Models(format!(
                    "scenario {} names model {name:?}, but there is no {} (models in {}: {})",
                    scenario.name,
                    file.display(),
                    dir.display(),
                    model_names(&dir)
                )));
            }
            load_model(&file)
                .map(|m| (name.to_string(), m))
                .map_err(|e| SimError::Models(e.to_string()))
        })
        .collect()
}

fn model_names(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names.join(", ")
}

/// Loads a scenario file and its models, and runs it.
pub fn run_file(
    path: &Path,
    seed: Option<u64>,
    progress: &dyn Fn(u64, u64),
) -> Result<SimReport, SimError> {
    let scenario = Scenario::load(path)?;
    let models = load_scenario_models(&scenario, path)?;
    run(&scenario, &models, seed.unwrap_or(scenario.seed), progress)
}

/// Runs a scenario. `progress` gets (minutes done, minutes in all).
pub fn run(
    scenario: &Scenario,
    models: &BTreeMap<String, ModelSpec>,
    seed: u64,
    progress: &dyn Fn(u64, u64),
) -> Result<SimReport, SimError> {
    run_world(scenario, models, seed, progress).map(|(report, _)| report)
}

/// [`run`], also returning the world as the run left it (per-workload
/// outcomes, final resources, every rollout record).
pub fn run_world(
    scenario: &Scenario,
    models: &BTreeMap<String, ModelSpec>,
    seed: u64,
    progress: &dyn Fn(u64, u64),
) -> Result<(SimReport, World), SimError> {
    let world = Rc::new(RefCell::new(build_world(scenario, models, seed)?));
    let (start, agent_start, end) = {
        let w = world.borrow();
        (w.start, w.agent_start, w.end)
    };
    let total_minutes = ((end - start) / 60) as u64;
    let mut done = 0u64;
    while world.borrow().now < agent_start {
        world.borrow_mut().step_minute();
        done += 1;
        if done.is_multiple_of(1440) {
            progress(done, total_minutes);
        }
    }

    let settings = agent_settings(scenario);
    let mut agent = start_agent(&world, &settings)?;
    let restarts: BTreeSet<i64> = scenario
        .agent
        .restarts
        .iter()
        .map(|o| agent_start + o.seconds())
        .collect();
    let mut stats_before_restarts = AgentStats::default();
    let mut leaks: BTreeSet<WorkloadRef> = BTreeSet::new();
    let mut applied_during_gap = 0u64;
    let mut max_in_flight = 0u64;

    while world.borrow().now < end {
        let now = world.borrow().now + 60;
        apply_faults(&mut world.borrow_mut(), scenario, agent_start, now);
        world.borrow_mut().step_minute();
        if restarts.contains(&now) {
            merge_stats(&mut stats_before_restarts, &agent.stats);
            agent = start_agent(&world, &settings)?;
        }
        let applied_before = agent.stats.applied;
        complete(agent.tick())?.map_err(|e| SimError::Agent(e.to_string()))?;
        if world.borrow().metrics_down && agent.stats.applied > applied_before {
            applied_during_gap += agent.stats.applied - applied_before;
        }
        let in_flight = world
            .borrow()
            .rollouts
            .values()
            .filter(|r| !r.phase.is_terminal() && !r.change.fast_path)
            .count() as u64;
        max_in_flight = max_in_flight.max(in_flight);
        for skip in agent.leak_suspects() {
            leaks.insert(skip.clone());
        }
        done += 1;
        if done.is_multiple_of(1440) {
            progress(done, total_minutes);
        }
    }
    progress(total_minutes, total_minutes);
    merge_stats(&mut stats_before_restarts, &agent.stats);
    let stats = stats_before_restarts;
    drop(agent);
    let world = Rc::try_unwrap(world)
        .map_err(|_| SimError::Agent("the world is still shared after the run".into()))?
        .into_inner();
    let mut report = measure(
        scenario,
        seed,
        &world,
        &stats,
        leaks.len() as u64,
        applied_during_gap,
    );
    report.max_in_flight = max_in_flight;
    let mut seen = BTreeSet::new();
    for (id, set) in &world.patches {
        if !seen.insert((id.clone(), format!("{set:?}"))) {
            report.duplicate_patches += 1;
        }
    }
    Ok((report, world))
}

fn merge_stats(into: &mut AgentStats, from: &AgentStats) {
    into.applied += from.applied;
    into.confirmed += from.confirmed;
    into.reverted += from.reverted;
    into.abandoned += from.abandoned;
    into.fast_paths += from.fast_paths;
    into.proposals += from.proposals;
    into.port_errors += from.port_errors;
    into.time_to_revert_s.extend(&from.time_to_revert_s);
}

fn apply_faults(world: &mut World, scenario: &Scenario, agent_start: i64, now: i64) {
    let mut down = false;
    let mut surges: Vec<(Option<&str>, f64)> = Vec::new();
    for fault in &scenario.faults {
        match fault {
            Fault::MetricsGap { at, duration } => {
                let from = agent_start + at.seconds();
                if now > from && now <= from + duration.seconds() {
                    down = true;
                }
            }
            Fault::TrafficSurge {
                at,
                duration,
                factor,
                workload,
            } => {
                let from = agent_start + at.seconds();
                if now > from && now <= from + duration.seconds() {
                    surges.push((workload.as_deref(), *factor));
                }
            }
        }
    }
    if down && !world.metrics_down {
        world.gap_minutes.push((now, now));
    }
    if down && let Some(last) = world.gap_minutes.last_mut() {
        last.1 = now;
    }
    world.metrics_down = down;
    for w in &mut world.workloads {
        w.surge = surges
            .iter()
            .filter(|(prefix, _)| prefix.is_none_or(|p| w.workload.name.starts_with(p)))
            .map(|(_, f)| *f)
            .product();
    }
}

fn measure(
    scenario: &Scenario,
    seed: u64,
    world: &World,
    stats: &AgentStats,
    leaks: u64,
    applied_during_gap: u64,
) -> SimReport {
    let cost = |original: bool| {
        let (requests_usd, nodes_usd, cpu, memory) =
            world.monthly_cost(scenario.node_hour_usd, original);
        CostSummary {
            cpu_request_millicores: cpu.0,
            memory_request_bytes: memory.0,
            requests_usd_per_month: requests_usd,
            nodes: (nodes_usd
                / (scenario.node_hour_usd * crate::recommend::policy::HOURS_PER_MONTH))
                .round() as u64,
            nodes_usd_per_month: nodes_usd,
        }
    };
    let count = |f: fn(&crate::rollout::RolloutRecord) -> bool| {
        world.rollouts.values().filter(|r| f(r)).count() as u64
    };
    let mut report = SimReport {
        scenario: scenario.name.clone(),
        seed,
        workloads: world.workloads.len(),
        before: cost(true),
        after: cost(false),
        // Counted from the persisted records, which survive agent restarts.
        applied: count(|r| r.applied_at.is_some()),
        confirmed: count(|r| r.phase == Phase::Confirmed),
        reverted: count(|r| r.phase == Phase::Reverted),
        abandoned: count(|r| r.phase == Phase::Abandoned),
        fast_paths: count(|r| r.change.fast_path),
        proposals: stats.proposals,
        leaks_detected: leaks,
        applied_during_gap,
        ..SimReport::default()
    };
    for w in &world.workloads {
        report.oom_episodes_max_per_workload = report
            .oom_episodes_max_per_workload
            .max(w.outcome.oom_episodes);
        report.throttled_minutes += w.outcome.throttled_minutes;
        report.agent_slo_violation_minutes += w.outcome.agent_violation_minutes;
        if w.outcome.final_day_violation_minutes > 0 {
            report.unreverted_regressions += 1;
            report.regressed_workloads.push(format!(
                "{} ({} minutes on the last day; {} → {})",
                w.workload,
                w.outcome.final_day_violation_minutes,
                crate::agent::describe_resources(&w.original),
                crate::agent::describe_resources(&w.spec)
            ));
        }
    }
    report.oom_kills = world.workloads.iter().map(|w| w.outcome.oom_episodes).sum();

    // Time to revert: from the first violation after the change to the revert.
    let mut ttr = Vec::new();
    for record in world.rollouts.values() {
        if record.phase == Phase::Reverted
            && let (Some(applied), Some(reverted)) = (record.applied_at, record.reverted_at)
        {
            let w = world
                .workloads
                .iter()
                .find(|w| w.workload == record.change.workload);
            let first = w.and_then(|w| {
                w.outcome
                    .violation_minutes_at
                    .iter()
                    .copied()
                    .find(|&t| t > applied && t <= reverted)
            });
            match first {
                Some(seen) => ttr.push(reverted - seen + 60),
                None => report.false_reverts += 1,
            }
        }
        if record.phase == Phase::Confirmed
            && world
                .gap_minutes
                .iter()
                .any(|&(from, to)| record.updated_at >= from && record.updated_at <= to)
        {
            report.confirms_during_gap += 1;
        }
    }
    ttr.sort_unstable();
    report.time_to_revert_median_s = ttr.get(ttr.len() / 2).copied().filter(|_| !ttr.is_empty());
    report.time_to_revert_max_s = ttr.last().copied();

    for (prefix, resources) in &scenario.expect.untouched {
        for record in world.rollouts.values() {
            if !record.change.workload.name.starts_with(prefix.as_str())
                || record.phase == Phase::Abandoned
            {
                continue;
            }
            for c in &record.change.containers {
                for kind in resources {
                    let changed = match kind {
                        ResourceKind::Cpu => {
                            c.from.cpu_request != c.to.cpu_request
                                || c.from.cpu_limit != c.to.cpu_limit
                        }
                        ResourceKind::Memory => {
                            c.from.memory_request != c.to.memory_request
                                || c.from.memory_limit != c.to.memory_limit
                        }
                    };
                    if changed {
                        report.touched_untouchables.push(format!(
                            "{} {kind} changed by {}",
                            record.change.workload, record.change.id
                        ));
                    }
                }
            }
        }
    }
    report
}

/// The expectations a report does not meet, one sentence each.
pub fn check(scenario: &Scenario, report: &SimReport) -> Vec<String> {
    let e = &scenario.expect;
    let mut failures = Vec::new();
    let mut at_least = |what: &str, got: u64, want: Option<u64>| {
        if let Some(want) = want
            && got < want
        {
            failures.push(format!("{what}: {got}, expected at least {want}"));
        }
    };
    at_least("applied", report.applied, e.applied_min);
    at_least("reverted", report.reverted, e.reverted_min);
    at_least("confirmed", report.confirmed, e.confirmed_min);
    at_least("fast paths", report.fast_paths, e.fast_paths_min);
    at_least("proposals", report.proposals, e.proposals_min);
    at_least(
        "leaks detected",
        report.leaks_detected,
        e.leaks_detected_min,
    );
    let mut at_most = |what: &str, got: u64, want: Option<u64>| {
        if let Some(want) = want
            && got > want
        {
            failures.push(format!("{what}: {got}, expected at most {want}"));
        }
    };
    at_most("applied", report.applied, e.applied_max);
    at_most("reverted", report.reverted, e.reverted_max);
    at_most("false reverts", report.false_reverts, e.false_reverts_max);
    at_most(
        "unreverted regressions",
        report.unreverted_regressions,
        e.unreverted_regressions_max,
    );
    at_most(
        "OOM episodes of one workload",
        report.oom_episodes_max_per_workload,
        e.oom_episodes_per_workload_max,
    );
    at_most(
        "SLO-violation minutes caused by the agent",
        report.agent_slo_violation_minutes,
        e.agent_slo_violation_minutes_max,
    );
    if let Some(max) = e.max_time_to_revert_s
        && let Some(got) = report.time_to_revert_max_s
        && got > max
    {
        failures.push(format!("time to revert: {got} s, expected at most {max} s"));
    }
    if let Some(max) = e.cost_ratio_max
        && report.cost_ratio() > max
    {
        failures.push(format!(
            "cost after/before: {:.3}, expected at most {max}",
            report.cost_ratio()
        ));
    }
    if e.no_confirm_during_gap && (report.confirms_during_gap > 0 || report.applied_during_gap > 0)
    {
        failures.push(format!(
            "{} confirmed and {} applied while metrics were down, expected none",
            report.confirms_during_gap, report.applied_during_gap
        ));
    }
    for t in &report.touched_untouchables {
        failures.push(format!("must stay untouched: {t}"));
    }
    // Invariants every scenario must keep, written or not.
    if report.duplicate_patches > 0 {
        failures.push(format!(
            "{} patches reached the cluster twice",
            report.duplicate_patches
        ));
    }
    let max_in_flight = scenario.agent.guardrails.max_in_flight as u64;
    if report.max_in_flight > max_in_flight {
        failures.push(format!(
            "{} changes were in flight at once, guardrails.max_in_flight is {max_in_flight}",
            report.max_in_flight
        ));
    }
    let observes = scenario.agent.guardrails.mode == crate::plan::Mode::Observe
        && scenario
            .fleet
            .iter()
            .all(|f| f.mode.is_none_or(|m| m == crate::plan::Mode::Observe));
    if observes && report.applied > 0 {
        failures.push(format!("observe mode applied {} changes", report.applied));
    }
    failures
}

/// Bytes and millicores for humans.
pub fn human(cpu_m: u64, memory: u64) -> String {
    format!(
        "{} CPU, {}",
        MilliCores(cpu_m),
        Bytes(memory - memory % Bytes::MIB)
    )
}

/// The human summary of a run; `failures` from [`check`].
pub fn render_table(
    report: &SimReport,
    failures: &[String],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let b = &report.before;
    let a = &report.after;
    let cores = |m: u64| format!("{:.1} cores", m as f64 / 1000.0);
    let gib = |bytes: u64| format!("{:.1} GiB", bytes as f64 / Bytes::GIB as f64);
    let usd = |x: f64| format!("${x:.0}");
    writeln!(
        out,
        "scenario {} (seed {}), {} workloads",
        report.scenario, report.seed, report.workloads
    )?;
    writeln!(out)?;
    writeln!(out, "{:<38}{:>16}{:>16}", "", "before", "after")?;
    writeln!(
        out,
        "{:<38}{:>16}{:>16}",
        "CPU requested",
        cores(b.cpu_request_millicores),
        cores(a.cpu_request_millicores)
    )?;
    writeln!(
        out,
        "{:<38}{:>16}{:>16}",
        "memory requested",
        gib(b.memory_request_bytes),
        gib(a.memory_request_bytes)
    )?;
    writeln!(
        out,
        "{:<38}{:>16}{:>16}",
        "requests, $/month",
        usd(b.requests_usd_per_month),
        usd(a.requests_usd_per_month)
    )?;
    writeln!(
        out,
        "{:<38}{:>16}{:>16}",
        "nodes (first-fit decreasing)",
        format!("{} ({})", b.nodes, usd(b.nodes_usd_per_month)),
        format!("{} ({})", a.nodes, usd(a.nodes_usd_per_month))
    )?;
    writeln!(out)?;
    let ttr = match (report.time_to_revert_median_s, report.time_to_revert_max_s) {
        (Some(m), Some(x)) => format!("median {m} s, max {x} s"),
        _ => "no revert".to_string(),
    };
    let rows: [(&str, String); 9] = [
        (
            "changes applied/confirmed/reverted",
            format!(
                "{} / {} / {}",
                report.applied, report.confirmed, report.reverted
            ),
        ),
        ("abandoned (conflicts)", report.abandoned.to_string()),
        ("fast-path increases", report.fast_paths.to_string()),
        ("time to revert", ttr),
        ("false reverts", report.false_reverts.to_string()),
        (
            "unreverted regressions",
            report.unreverted_regressions.to_string(),
        ),
        (
            "SLO-violation minutes (agent)",
            report.agent_slo_violation_minutes.to_string(),
        ),
        (
            "OOM kills / throttled minutes",
            format!("{} / {}", report.oom_kills, report.throttled_minutes),
        ),
        (
            "leaks detected / proposals",
            format!("{} / {}", report.leaks_detected, report.proposals),
        ),
    ];
    for (label, value) in rows {
        writeln!(out, "{label:<38}{value}")?;
    }
    writeln!(out)?;
    if failures.is_empty() {
        writeln!(out, "expectations: all met")?;
    } else {
        writeln!(out, "expectations: {} not met", failures.len())?;
        for f in failures {
            writeln!(out, "  - {f}")?;
        }
    }
    Ok(())
}
